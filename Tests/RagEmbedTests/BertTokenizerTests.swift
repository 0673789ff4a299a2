import Testing
import RagEmbed

/// Token ids compared with HuggingFace `tokenizers` (ids in Fixtures/tokenizer_cases.json).
struct BertTokenizerTests {
    static let tinyVocabulary = Fixtures.tinyModel + "/vocab.txt"
    static let lower = try! BertTokenizer(vocabularyFile: tinyVocabulary, configuration: .init(lowercase: true, maxLength: 24))
    static let cased = try! BertTokenizer(vocabularyFile: tinyVocabulary, configuration: .init(lowercase: false, maxLength: 24))
    static let miniLM = Result { try SentenceModelFolder(path: Fixtures.miniLM).makeTokenizer() }

    @Test(arguments: Fixtures.tokenizerCases)
    func lowercasedTinyVocabulary(_ c: Fixtures.TokenizerCase) {
        #expect(Self.lower.encode(c.text) == c.tiny)
    }

    @Test(arguments: Fixtures.tokenizerCases)
    func casedTinyVocabulary(_ c: Fixtures.TokenizerCase) {
        #expect(Self.cased.encode(c.text) == c.tiny_cased)
    }

    @Test(.enabled(if: Fixtures.miniLMPresent, "needs models/all-MiniLM-L6-v2 (make model)"),
          arguments: Fixtures.tokenizerCases)
    func miniLMVocabulary(_ c: Fixtures.TokenizerCase) throws {
        let tokenizer = try Self.miniLM.get()
        #expect(tokenizer.configuration.maxLength == 256)
        #expect(tokenizer.encode(c.text) == c.minilm)
    }

    /// Every string of minilm_tokens.json (over 1,000: scripts, emoji, controls, code, URLs, long words, real
    /// documentation text; see Fixtures/corpus.py) gives exactly HuggingFace's ids, truncated at 256, and the
    /// untruncated count.
    @Test(.enabled(if: Fixtures.miniLMPresent, "needs models/all-MiniLM-L6-v2 (make model)"))
    func miniLMCorpus() throws {
        let tokenizer = try Self.miniLM.get()
        let corpus = Fixtures.miniLMTokens
        #expect(corpus.cases.count == corpus.count)
        #expect(corpus.cases.count >= 1000)
        #expect(corpus.cases.contains { $0.n > 256 } && corpus.cases.contains { $0.t.isEmpty })
        var mismatches = 0
        for c in corpus.cases {
            let ids = tokenizer.encode(c.t)
            let count = tokenizer.tokenCount(c.t)
            if ids != c.ids || count != c.n {
                mismatches += 1
                if mismatches <= 20 {
                    Issue.record("\(c.t.debugDescription.prefix(120)): ids \(ids) expected \(c.ids); count \(count) expected \(c.n)")
                }
            }
        }
        #expect(mismatches == 0, "\(mismatches) of \(corpus.cases.count) strings differ")
        print("minilm_tokens.json: \(corpus.cases.count) strings, \(corpus.cases.count - mismatches) identical, "
              + "\(corpus.cases.filter { $0.n > 256 }.count) truncated at 256")
    }

    @Test func wordPieceContinuationAndUnknown() throws {
        let tokenizer = try BertTokenizer(vocabulary: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "a"])
        #expect(tokenizer.encode("unaffable") == [2, 4, 5, 6, 3])
        // One unmatched piece makes the whole word unknown.
        #expect(tokenizer.pieces("unaffablez a") == [1, 7])
        #expect(tokenizer.pieces(String(repeating: "a", count: 101)) == [1])
    }

    @Test func truncationKeepsSeparator() {
        let text = String(repeating: "hello world ", count: 100)
        let ids = Self.lower.encode(text)
        #expect(ids.count == 24)
        #expect(ids.first == Self.lower.classID)
        #expect(ids.last == Self.lower.separatorID)
        #expect(Self.lower.tokenCount(text) == 2 + Self.lower.pieces(text).count)
        #expect(Self.lower.tokenCount(text) > 24)
    }

    @Test func emptyTextIsClassAndSeparator() {
        #expect(Self.lower.encode("") == [Self.lower.classID, Self.lower.separatorID])
        #expect(Self.lower.tokenCount("") == 2)
    }

    @Test func vocabularyWithoutUnknownTokenIsRejected() {
        #expect(throws: EmbedError.self) {
            try BertTokenizer(vocabulary: ["[CLS]", "[SEP]", "a"])
        }
    }
}

import Foundation  // only for NFD (`decomposedStringWithCanonicalMapping`) when accents are stripped

/// BERT's tokenizer: basic tokenization (text cleaning, optional lower-casing and accent stripping, CJK
/// ideographs and punctuation as separate words) followed by greedy longest-match-first WordPiece.
///
/// It reproduces HuggingFace `tokenizers`' `BertNormalizer` + `BertPreTokenizer` + `WordPiece` (what
/// sentence-transformers runs), including special tokens such as `[SEP]` written literally in the text,
/// which become their ids. The tests compare its output with that library's on tricky strings.
public struct BertTokenizer: Sendable {
    /// Tokenizer settings (HuggingFace `tokenizer_config.json` names in brackets).
    public struct Configuration: Sendable, Equatable {
        /// Lower-case the text (`do_lower_case`).
        public var lowercase: Bool
        /// Strip accents: NFD, then drop nonspacing marks (`strip_accents`); nil follows `lowercase`.
        public var stripAccents: Bool?
        /// Make each CJK ideograph a word of its own (`tokenize_chinese_chars`).
        public var tokenizeChineseCharacters: Bool
        /// Words longer than this many characters become the unknown token.
        public var maxInputCharactersPerWord: Int
        /// The most tokens ``encode(_:)`` returns, `[CLS]` and `[SEP]` included.
        public var maxLength: Int
        public var unknownToken: String
        public var classToken: String
        public var separatorToken: String
        public var padToken: String
        public var maskToken: String

        public init(lowercase: Bool = true, stripAccents: Bool? = nil, tokenizeChineseCharacters: Bool = true,
                    maxInputCharactersPerWord: Int = 100, maxLength: Int = 512,
                    unknownToken: String = "[UNK]", classToken: String = "[CLS]", separatorToken: String = "[SEP]",
                    padToken: String = "[PAD]", maskToken: String = "[MASK]") {
            self.lowercase = lowercase
            self.stripAccents = stripAccents
            self.tokenizeChineseCharacters = tokenizeChineseCharacters
            self.maxInputCharactersPerWord = maxInputCharactersPerWord
            self.maxLength = maxLength
            self.unknownToken = unknownToken
            self.classToken = classToken
            self.separatorToken = separatorToken
            self.padToken = padToken
            self.maskToken = maskToken
        }
    }

    public let configuration: Configuration
    /// Id of the unknown token.
    public let unknownID: Int32
    /// Id of `[CLS]`, first in every encoding.
    public let classID: Int32
    /// Id of `[SEP]`, last in every encoding.
    public let separatorID: Int32
    /// Id of the padding token (0 in BERT vocabularies).
    public let padID: Int32
    /// Number of entries in the vocabulary.
    public var vocabularySize: Int { tokens.count }

    private let tokens: [String]
    /// Word-initial pieces by their UTF-8 bytes.
    private let initialPieces: [ArraySlice<UInt8>: Int32]
    /// Continuation pieces (`##xyz`) by the UTF-8 bytes after `##`.
    private let continuationPieces: [ArraySlice<UInt8>: Int32]
    /// Longest piece in bytes, to bound the search.
    private let maxPieceBytes: Int
    /// Special tokens matched literally in the raw text, longest first.
    private let specials: [(scalars: [Unicode.Scalar], id: Int32)]
    private let stripAccents: Bool

    /// A tokenizer over `vocabulary` (index = id), as listed in `vocab.txt`.
    public init(vocabulary: [String], configuration: Configuration = Configuration()) throws {
        guard configuration.maxLength >= 2 else {
            throw EmbedError(.unsupportedModel, "maximum sequence length \(configuration.maxLength) leaves no room for [CLS] and [SEP]")
        }
        guard vocabulary.count <= Int(Int32.max) else { throw EmbedError(.unsupportedModel, "vocabulary too large") }
        self.configuration = configuration
        self.tokens = vocabulary
        self.stripAccents = configuration.stripAccents ?? configuration.lowercase
        var initial: [ArraySlice<UInt8>: Int32] = [:]
        var continuation: [ArraySlice<UInt8>: Int32] = [:]
        var longest = 0
        initial.reserveCapacity(vocabulary.count)
        for (index, token) in vocabulary.enumerated() {
            let bytes = Array(token.utf8)
            // The first occurrence wins, as when HuggingFace builds its map from vocab.txt.
            if bytes.starts(with: [0x23, 0x23]) {
                let key = ArraySlice(bytes.dropFirst(2))
                if continuation[key] == nil { continuation[key] = Int32(index) }
                longest = max(longest, bytes.count - 2)
            } else {
                let key = ArraySlice(bytes)
                if initial[key] == nil { initial[key] = Int32(index) }
                longest = max(longest, bytes.count)
            }
        }
        self.initialPieces = initial
        self.continuationPieces = continuation
        self.maxPieceBytes = longest

        func id(of token: String, _ role: String) throws -> Int32 {
            guard let id = initial[ArraySlice(Array(token.utf8))] else {
                throw EmbedError(.malformedFile, "the vocabulary has no \(role) token \(token)")
            }
            return id
        }
        unknownID = try id(of: configuration.unknownToken, "unknown")
        classID = try id(of: configuration.classToken, "class")
        separatorID = try id(of: configuration.separatorToken, "separator")
        padID = (try? id(of: configuration.padToken, "padding")) ?? 0
        var specials: [(scalars: [Unicode.Scalar], id: Int32)] = []
        for token in [configuration.unknownToken, configuration.classToken, configuration.separatorToken,
                      configuration.padToken, configuration.maskToken] where !token.isEmpty {
            if let id = initial[ArraySlice(Array(token.utf8))], !specials.contains(where: { $0.id == id }) {
                specials.append((Array(token.unicodeScalars), id))
            }
        }
        self.specials = specials.sorted { $0.scalars.count > $1.scalars.count }
    }

    /// A tokenizer over the vocabulary file at `path` (one token per line, the line number is the id).
    public init(vocabularyFile path: String, configuration: Configuration = Configuration()) throws {
        let bytes = try ModelFile.read(path)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw EmbedError(.malformedFile, path: path, "vocabulary is not valid UTF-8")
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.hasSuffix("\r") ? String(line.dropLast()) : String(line)
        }
        if lines.last == "" { lines.removeLast() }
        guard !lines.isEmpty else { throw EmbedError(.malformedFile, path: path, "vocabulary is empty") }
        do {
            try self.init(vocabulary: lines, configuration: configuration)
        } catch var error as EmbedError {
            error.path = path
            throw error
        }
    }

    /// The token string of `id`, if it is in the vocabulary.
    public func token(for id: Int32) -> String? {
        tokens.indices.contains(Int(id)) ? tokens[Int(id)] : nil
    }

    /// The model input for `text`: `[CLS]`, the WordPiece ids, `[SEP]`, truncated to
    /// `configuration.maxLength` tokens in all (the words past the window are not even tokenized).
    public func encode(_ text: String) -> [Int32] {
        var ids: [Int32] = [classID]
        ids.reserveCapacity(min(configuration.maxLength, text.utf8.count / 3 + 8))
        appendPieces(of: text, to: &ids, limit: configuration.maxLength - 1)
        ids.append(separatorID)
        return ids
    }

    /// The WordPiece ids of `text` without `[CLS]`/`[SEP]` and without truncation.
    public func pieces(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        appendPieces(of: text, to: &ids, limit: .max)
        return ids
    }

    /// How many tokens `text` has with `[CLS]` and `[SEP]` before truncation; ``encode(_:)`` keeps at
    /// most `configuration.maxLength` of them.
    public func tokenCount(_ text: String) -> Int {
        pieces(text).count + 2
    }

    // MARK: Pipeline

    /// Splits `text` on the special tokens it contains literally, then tokenizes the pieces in between,
    /// appending ids to `ids` until it holds `limit` of them.
    private func appendPieces(of text: String, to ids: inout [Int32], limit: Int) {
        let scalars = Array(text.unicodeScalars)
        var state = WordState()
        var segmentStart = 0
        var i = 0
        while i < scalars.count, ids.count < limit {
            if let (length, id) = special(at: i, in: scalars) {
                tokenize(scalars[segmentStart..<i], into: &ids, limit: limit, state: &state)
                if ids.count < limit { ids.append(id) }
                i += length
                segmentStart = i
            } else {
                i += 1
            }
        }
        if ids.count < limit {
            tokenize(scalars[segmentStart..<scalars.count], into: &ids, limit: limit, state: &state)
        }
        if ids.count > limit { ids.removeLast(ids.count - limit) }
    }

    /// The special token starting at `index`, if any (longest first).
    private func special(at index: Int, in scalars: [Unicode.Scalar]) -> (Int, Int32)? {
        let first = scalars[index]
        for (pattern, id) in specials where pattern.first == first && index + pattern.count <= scalars.count {
            var match = true
            for k in 1..<pattern.count where scalars[index + k] != pattern[k] {
                match = false
                break
            }
            if match { return (pattern.count, id) }
        }
        return nil
    }

    /// Scratch reused across the words of one call.
    private struct WordState {
        var word: [Unicode.Scalar] = []
        var bytes: [UInt8] = []
        var boundaries: [Int] = []
        var found: [Int32] = []
        /// Normalised forms of non-ASCII scalars seen in this call.
        var cache: [Unicode.Scalar: [Unicode.Scalar]] = [:]
    }

    /// Normalises and pre-tokenizes `segment`, running WordPiece on each word.
    private func tokenize(_ segment: ArraySlice<Unicode.Scalar>, into ids: inout [Int32], limit: Int,
                          state: inout WordState) {
        state.word.removeAll(keepingCapacity: true)
        for scalar in segment {
            if ids.count >= limit { return }
            let v = scalar.value
            if v < 0x80 {
                if v == 0x20 || v == 0x09 || v == 0x0A || v == 0x0D {
                    flush(&state, into: &ids)
                } else if v < 0x20 || v == 0x7F {
                    continue  // control character: dropped
                } else if Self.isASCIIPunctuation(v) {
                    flush(&state, into: &ids)
                    state.word.append(scalar)
                    flush(&state, into: &ids)
                } else if configuration.lowercase, v >= 0x41, v <= 0x5A {
                    state.word.append(Unicode.Scalar(v + 0x20)!)
                } else {
                    state.word.append(scalar)
                }
                continue
            }
            if v == 0xFFFD { continue }
            let properties = scalar.properties
            switch properties.generalCategory {
            case .control, .format, .privateUse, .surrogate:
                continue
            default:
                break
            }
            if properties.isWhitespace {
                flush(&state, into: &ids)
                continue
            }
            let isCJK = configuration.tokenizeChineseCharacters && Self.isCJKIdeograph(v)
            if isCJK { flush(&state, into: &ids) }
            for out in normalized(scalar, cache: &state.cache) {
                if Self.isPunctuation(out) {
                    flush(&state, into: &ids)
                    state.word.append(out)
                    flush(&state, into: &ids)
                } else if out.properties.isWhitespace {
                    flush(&state, into: &ids)
                } else {
                    state.word.append(out)
                }
            }
            if isCJK { flush(&state, into: &ids) }
        }
        flush(&state, into: &ids)
    }

    /// Accent stripping (NFD, nonspacing marks dropped) then lower-casing of one non-ASCII scalar.
    private func normalized(_ scalar: Unicode.Scalar, cache: inout [Unicode.Scalar: [Unicode.Scalar]]) -> [Unicode.Scalar] {
        guard stripAccents || configuration.lowercase else { return [scalar] }
        if let known = cache[scalar] { return known }
        var result: [Unicode.Scalar] = [scalar]
        if stripAccents {
            result = String(Character(scalar)).decomposedStringWithCanonicalMapping.unicodeScalars
                .filter { $0.properties.generalCategory != .nonspacingMark }
        }
        if configuration.lowercase {
            result = result.flatMap { Array($0.properties.lowercaseMapping.unicodeScalars) }
        }
        cache[scalar] = result
        return result
    }

    /// WordPiece on the word collected in `state.word`, then clears it.
    private func flush(_ state: inout WordState, into ids: inout [Int32]) {
        guard !state.word.isEmpty else { return }
        defer { state.word.removeAll(keepingCapacity: true) }
        if state.word.count > configuration.maxInputCharactersPerWord {
            ids.append(unknownID)
            return
        }
        state.bytes.removeAll(keepingCapacity: true)
        state.boundaries.removeAll(keepingCapacity: true)
        state.boundaries.append(0)
        for scalar in state.word {
            state.bytes.append(contentsOf: UTF8.encode(scalar)!)
            state.boundaries.append(state.bytes.count)
        }
        state.found.removeAll(keepingCapacity: true)
        var start = 0
        let count = state.word.count
        while start < count {
            var end = count
            var match: Int32?
            let table = start == 0 ? initialPieces : continuationPieces
            while end > start {
                let lo = state.boundaries[start], hi = state.boundaries[end]
                if hi - lo <= maxPieceBytes, let id = table[state.bytes[lo..<hi]] {
                    match = id
                    break
                }
                end -= 1
            }
            guard let id = match else {
                ids.append(unknownID)  // one unmatched piece makes the whole word unknown
                return
            }
            state.found.append(id)
            start = end
        }
        ids.append(contentsOf: state.found)
    }

    // MARK: Character classes

    /// ASCII punctuation as BERT counts it: every printable non-alphanumeric ASCII character.
    static func isASCIIPunctuation(_ v: UInt32) -> Bool {
        (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v)
    }

    /// BERT punctuation: ASCII punctuation or a Unicode `P*` general category.
    static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.value < 0x80 { return isASCIIPunctuation(scalar.value) }
        switch scalar.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    /// The CJK Unified Ideographs blocks BERT isolates (not kana, hangul or CJK punctuation).
    static func isCJKIdeograph(_ v: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
            || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v) || (0x2B920...0x2CEAF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }
}

import Testing
import RagEmbed

/// The real all-MiniLM-L6-v2 (fetched by `make model`) against numpy reference embeddings.
@Suite(.enabled(if: Fixtures.miniLMPresent, "needs models/all-MiniLM-L6-v2 (make model)"))
struct MiniLMTests {
    /// Loaded once for the suite; a load failure fails each test with its message.
    static let loaded = Result { try BertEmbedder(modelFolder: Fixtures.miniLM) }

    @Test func identity() throws {
        let e = try Self.loaded.get()
        #expect(e.dimensions == 384)
        #expect(e.maxSequenceLength == 256)
        #expect(e.modelID == "all-MiniLM-L6-v2@53aa51172d14;mean;norm;256")
    }

    @Test func matchesReferenceEmbeddings() throws {
        let e = try Self.loaded.get()
        let reference = Fixtures.miniLMReference
        let vectors = try e.embed(reference.map(\.text))
        for (v, r) in zip(vectors, reference) {
            #expect(e.tokenIDs(r.text) == r.ids)
            let c = cosine(v, r.embedding)
            #expect(c >= 0.9999, "\(r.text.prefix(40)): cosine \(c)")
            #expect(maxAbsDifference(v, r.embedding) < 1e-5)
        }
    }

    /// 255 texts of 2 to 256 tokens, 25 of them truncated from longer ones (Fixtures/corpus.py), against numpy
    /// float64 embeddings (minilm_encoder_reference.*): cosine ≥ 0.9999 for every one; prints the minimum.
    @Test func matchesEncoderReference() throws {
        let e = try Self.loaded.get()
        let cases = Fixtures.miniLMEncoderTexts.cases
        let reference = Fixtures.miniLMEncoderVectors(dimensions: e.dimensions)
        #expect(cases.count >= 200 && reference.count == cases.count)
        let lengths = cases.map(\.ids.count)
        #expect(lengths.min() == 2 && lengths.max() == 256 && cases.filter { $0.n > 256 }.count >= 10)
        let vectors = try e.embed(cases.map(\.t))
        var lowest = (cosine: 1.0, index: 0)
        var largestDifference: Float = 0
        for (index, (v, r)) in zip(vectors, reference).enumerated() {
            #expect(e.tokenIDs(cases[index].t) == cases[index].ids, "\(cases[index].t.prefix(40))")
            let c = cosine(v, r)
            #expect(c >= 0.9999, "\(cases[index].t.debugDescription.prefix(60)) (\(lengths[index]) tokens): cosine \(c)")
            if c < lowest.cosine { lowest = (c, index) }
            largestDifference = max(largestDifference, maxAbsDifference(v, r))
        }
        print("minilm_encoder_reference: \(cases.count) texts of \(lengths.min()!)-\(lengths.max()!) tokens, minimum cosine "
              + "\(lowest.cosine) (\(lengths[lowest.index]) tokens), largest coordinate difference \(largestDifference)")
    }

    /// A token budget per pass splits batches (down to one text of 256 tokens per pass) without changing any vector.
    @Test func tokenBudgetSplitsBatchesWithoutChangingVectors() throws {
        let e = try Self.loaded.get()
        let small = try BertEmbedder(modelFolder: Fixtures.miniLM, configuration: .init(maxTokensPerPass: 200))
        let texts = Fixtures.miniLMEncoderTexts.cases.map(\.t)
        #expect(texts.map(e.tokenCount).reduce(0, +) > 2000, "enough tokens for several passes")
        for (a, b) in zip(try e.embed(texts), try small.embed(texts)) {
            #expect(maxAbsDifference(a, b) < 1e-5)
        }
    }

    /// A workspace never grows beyond what the budget needs, however large the passes before.
    @Test func workspaceStaysWithinTheTokenBudget() throws {
        let e = try Self.loaded.get()
        let workspace = BertModel.Workspace()
        let long = [[Int32]](repeating: [Int32](repeating: 1000, count: 256), count: 8)
        for count in [1, 2, 3, 5, 8] {
            _ = e.model.encode(Array(long.prefix(count)), pooling: e.folder.pooling, normalize: true, workspace: workspace,
                               maxTokens: 1024)
        }
        #expect(workspace.capacityTokens(hidden: e.dimensions) >= 1024)
        #expect(workspace.capacityTokens(hidden: e.dimensions) <= 2048, "one pass beyond the budget (8 × 256) may need its size")
        _ = e.model.encode(Array(long.prefix(2)), pooling: e.folder.pooling, normalize: true, workspace: workspace, maxTokens: 1024)
        #expect(workspace.capacityTokens(hidden: e.dimensions) <= 2048)
    }

    @Test func publishedSimilarity() throws {
        let e = try Self.loaded.get()
        let v = try e.embed(["A man is eating food.", "A man is eating a piece of bread.", "The new movie is awesome."])
        let related = cosine(v[0], v[1]), unrelated = cosine(v[0], v[2])
        #expect(abs(related - 0.755) < 0.01)
        #expect(unrelated < 0.2)
    }
}

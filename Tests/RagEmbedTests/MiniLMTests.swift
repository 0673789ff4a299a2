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

    @Test func publishedSimilarity() throws {
        let e = try Self.loaded.get()
        let v = try e.embed(["A man is eating food.", "A man is eating a piece of bread.", "The new movie is awesome."])
        let related = cosine(v[0], v[1]), unrelated = cosine(v[0], v[2])
        #expect(abs(related - 0.755) < 0.01)
        #expect(unrelated < 0.2)
    }
}

import RagCore
import RagQuery
import RagStore
import RagTestSupport
import Testing

struct BM25Tests {
    /// Three one-line chunks; scores below were computed by hand from
    /// idf = ln(1 + (N - df + 0.5) / (df + 0.5)) and tf·(k1+1) / (tf + k1·(1 - b + b·dl/avgdl)), k1 = 0.9, b = 0.4,
    /// N = 3, avgdl = 7/3.
    func withCorpus(_ body: (Searcher) throws -> Void) throws {
        try withTemporaryDirectory { dir in
            let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 64 << 20))
            let analyzer = Analyzer()
            func file(_ path: String, _ text: String) -> IndexChange {
                .upsert(PreparedFile(path: path, size: 1, mtimeNanos: 1, contentHash: SHA256.hash(Array(text.utf8)), title: nil, tags: [],
                                     chunks: [PreparedChunk(text: text, lines: 1...1, headings: [], analyzer: analyzer)]))
            }
            try store.apply([file("/d/one.md", "apple banana"), file("/d/two.txt", "apple apple cherry"), file("/e/three.md", "banana date")])
            try body(Searcher(store: store, parameters: BM25Parameters(k1: 0.9, b: 0.4)))
        }
    }

    @Test func matchesHandComputedScores() throws {
        try withCorpus { (searcher: Searcher) throws in
            let hits = try searcher.searchBM25("apple", k: 10)
            #expect(hits.map(\.path) == ["/d/two.txt", "/d/one.md"])
            #expect(abs(hits[0].score - 0.594771) < 1e-5)
            #expect(abs(hits[1].score - 0.483079) < 1e-5)
            let both = try searcher.searchBM25("apple cherry", k: 1)
            #expect(both.count == 1)
            #expect(abs(both[0].score - 1.525230) < 1e-5)
        }
    }

    @Test func topKAndFilters() throws {
        try withCorpus { (searcher: Searcher) throws in
            #expect(try searcher.searchBM25("apple banana", k: 1).count == 1)
            #expect(try searcher.searchBM25("banana", k: 10, filter: ChunkFilter(pathPrefixes: ["/e"])).map(\.path) == ["/e/three.md"])
            #expect(try searcher.searchBM25("apple", k: 10, filter: ChunkFilter(extensions: ["txt"])).map(\.path) == ["/d/two.txt"])
            // A filtered query still fills k from the allowed chunks.
            #expect(try searcher.searchBM25("apple banana", k: 2, filter: ChunkFilter(extensions: ["md"])).count == 2)
            #expect(try searcher.searchBM25("zebra", k: 10).isEmpty)
            #expect(try searcher.searchBM25("the of and", k: 10).isEmpty, "stop words alone match nothing")
            #expect(try searcher.searchBM25("apple", k: 10, includeText: false).allSatisfy { $0.text == nil })
        }
    }

    @Test func pathPrefixMatchesWholeComponents() {
        let file = FileInfo(path: "/docs/ops/guide.md", fileExtension: "md", tags: [], mtimeNanos: 0, chunks: 1)
        #expect(ChunkFilter(pathPrefixes: ["/docs/ops"]).matches(file))
        #expect(ChunkFilter(pathPrefixes: ["/docs/ops/"]).matches(file))
        #expect(!ChunkFilter(pathPrefixes: ["/docs/op"]).matches(file))
        #expect(ChunkFilter(pathPrefixes: ["/docs/ops/guide.md"]).matches(file))
    }
}

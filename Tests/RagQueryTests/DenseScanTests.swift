import RagCore
@testable import RagQuery
import RagStore
import RagTestSupport
import Testing

/// The dense scan split over threads finds exactly what one thread finds, with filters.
struct DenseScanTests {
    @Test func splitScanEqualsSingleScan() throws {
        try withTemporaryDirectory { dir in
            let embedder = FakeEmbedder()
            let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 64 << 20))
            try store.configureModel(id: embedder.modelID, dimensions: embedder.dimensions)
            let analyzer = Analyzer()
            var rng = SeededGenerator(seed: 5)
            let changes: [IndexChange] = (0..<60).map { f in
                let chunks = (0..<Int.random(in: 1...9, using: &rng)).map { c in
                    PreparedChunk(text: (0..<12).map { _ in MaxScoreTests.word(&rng) }.joined(separator: " ") + " \(f) \(c)",
                                  lines: (c + 1)...(c + 1), headings: [], analyzer: analyzer)
                }
                return .upsert(PreparedFile(path: "/r\(f % 3)/f\(f).\(f % 2 == 0 ? "md" : "txt")", size: 1, mtimeNanos: Int64(f),
                                            contentHash: SHA256.hash(Array("\(f)".utf8)), title: nil, tags: [], chunks: chunks))
            }
            try store.apply(changes)
            let inputs = try store.embeddingInputs(store.chunksWithoutEmbedding(limit: 10_000))
            try store.storeEmbeddings(zip(inputs, try embedder.embed(inputs.map(\.text))).map { (id: $0.id, hash: $0.hash, vector: $1) })
            let searcher = Searcher(store: store, embedder: embedder)
            let filters = [ChunkFilter(), ChunkFilter(extensions: ["md"]), ChunkFilter(pathPrefixes: ["/r1"]),
                           ChunkFilter(access: AccessView(client: .daemon, hiddenRoots: ["/r0"], permissionRoots: []))]
            func all() throws -> [[[(UInt32, Double)]]] {
                try (0..<20).map { q in
                    let vector = try embedder.embed([MaxScoreTests.word(&rng) + " \(q)"])[0]
                    return try filters.flatMap { filter in
                        try [1, 2, 3, 7].map { try searcher.denseCandidates(vector, k: 10, filter: filter, threads: $0) }
                    }
                }
            }
            let before = try all()
            for runs in before {
                for group in stride(from: 0, to: runs.count, by: 4) {
                    for t in 1..<4 {
                        #expect(runs[group + t].map(\.0) == runs[group].map(\.0))
                        #expect(runs[group + t].map(\.1) == runs[group].map(\.1))
                    }
                }
            }
        }
    }
}

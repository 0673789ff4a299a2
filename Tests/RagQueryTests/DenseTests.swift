import Dispatch
import Foundation
import Logging
import RagCore
import RagIngest
import RagQuery
import RagStore
import RagTestSupport
import Testing

@Suite(.timeLimit(.minutes(2)))
struct DenseTests {
    func prepared(_ path: String, _ texts: [String]) -> IndexChange {
        let analyzer = Analyzer()
        return .upsert(PreparedFile(path: path, size: 1, mtimeNanos: 1, contentHash: SHA256.hash(Array(texts.joined().utf8)), title: nil, tags: [],
                                    chunks: texts.enumerated().map { PreparedChunk(text: $0.1, lines: ($0.0 + 1)...($0.0 + 1), headings: [], analyzer: analyzer) }))
    }

    /// Embeds everything pending with `worker` synchronously (the worker's loop, one pass).
    func embedAll(_ store: Store, _ embedder: FakeEmbedder) throws {
        let ids = store.chunksWithoutEmbedding(limit: 10_000)
        let inputs = try store.embeddingInputs(ids)
        let vectors = try embedder.embed(inputs.map(\.text))
        try store.storeEmbeddings(zip(inputs, vectors).map { (id: $0.id, hash: $0.hash, vector: $1) })
    }

    @Test func vectorsAreCachedByContentAndSurviveRestart() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let embedder = FakeEmbedder()
            do {
                let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 64 << 20))
                #expect(try store.configureModel(id: embedder.modelID, dimensions: embedder.dimensions) == nil)
                try store.apply([prepared("/d/a.md", ["apple banana", "cherry date"])])
                #expect(store.embeddingCounts == (2, 0))
                try embedAll(store, embedder)
                #expect(store.embeddingCounts == (2, 2))
                // Re-chunked file: the unchanged chunk keeps its vector; a deleted text that comes back is served from the cache.
                try store.apply([prepared("/d/a.md", ["apple banana", "elderberry fig"])])
                #expect(store.embeddingCounts == (2, 1))
                try embedAll(store, embedder)
                try store.apply([prepared("/d/b.md", ["cherry date"])])
                #expect(store.embeddingCounts == (3, 3), "cached vector reused without embedding")
                #expect(embedder.embeddedTexts == ["apple banana", "cherry date", "elderberry fig"])
            }
            let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 64 << 20))
            try store.configureModel(id: embedder.modelID, dimensions: embedder.dimensions)
            #expect(store.embeddingCounts == (3, 3), "vectors load at start")
            // Another model: nothing is reused.
            #expect(try store.configureModel(id: "other", dimensions: 8) == embedder.modelID)
            #expect(store.embeddingCounts == (3, 0))
        }
    }

    @Test func workerEmbedsPendingChunks() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let embedder = FakeEmbedder()
            let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 64 << 20))
            try store.configureModel(id: embedder.modelID, dimensions: embedder.dimensions)
            try store.apply([prepared("/d/a.md", (0..<100).map { "text number \($0)" })])
            let batches = DispatchSemaphore(value: 0)
            let worker = EmbedWorker(store: store, embedder: embedder, batchSize: 16,
                                     logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })) { batches.signal() }
            #expect(worker.pending == 100)
            let finished = DispatchSemaphore(value: 0)
            Thread { worker.run(); finished.signal() }.start()
            while worker.pending > 0 {
                #expect(batches.wait(timeout: .now() + 60) == .success, "the worker makes progress")
            }
            worker.stop()
            #expect(finished.wait(timeout: .now() + 60) == .success)
            #expect(store.embeddingCounts == (100, 100))
            #expect(embedder.embeddedTexts.count == 100)
        }
    }

    @Test func denseAndHybridRankingWithFilters() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let embedder = FakeEmbedder()
            let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 64 << 20))
            try store.configureModel(id: embedder.modelID, dimensions: embedder.dimensions)
            try store.apply([prepared("/d/fruit.md", ["apple banana cherry"]), prepared("/d/car.txt", ["engine wheel brake"]),
                             prepared("/e/mix.md", ["apple engine"])])
            try embedAll(store, embedder)
            let searcher = Searcher(store: store, embedder: embedder)
            let dense = try searcher.searchDense("banana cherry apple", k: 3)
            #expect(dense.first?.path == "/d/fruit.md")
            // Vectors are stored as float16: a cosine moves by at most 2⁻¹¹.
            #expect(abs((dense.first?.score ?? 0) - 1) < 5e-4, "identical bag of words: cosine 1")
            #expect(dense.first?.dense == dense.first?.score)
            #expect(try searcher.searchDense("apple", k: 3, filter: ChunkFilter(pathPrefixes: ["/e"])).map(\.path) == ["/e/mix.md"])
            #expect(try searcher.searchDense("apple", k: 10, filter: ChunkFilter(extensions: ["txt"])).map(\.path) == ["/d/car.txt"],
                    "a filtered dense query still returns what exists")

            let rrf = try searcher.searchHybrid("apple engine", k: 3, fusion: .reciprocalRank(k: 60))
            #expect(rrf.first?.path == "/e/mix.md")
            // mix.md is first in both rankings: 2 / 61.
            #expect(abs((rrf.first?.score ?? 0) - 2.0 / 61.0) < 1e-9)
            #expect(rrf.first?.bm25 != nil && rrf.first?.dense != nil)
            let weighted = try searcher.searchHybrid("apple engine", k: 3, fusion: .weighted(denseWeight: 0.5))
            #expect(weighted.first?.path == "/e/mix.md")
            // Best BM25 normalises to 1 and the cosine of identical bags is 1: 0.5 + 0.5.
            #expect(abs((weighted.first?.score ?? 0) - 1.0) < 5e-4)
            // Repeated queries reuse the cached query vector.
            let before = embedder.embeddedTexts.count
            _ = try searcher.searchDense("apple engine", k: 3)
            #expect(embedder.embeddedTexts.count == before)
        }
    }

    @Test func tagAndTimeFiltersApplyToEveryRetriever() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let embedder = FakeEmbedder()
            let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 64 << 20))
            try store.configureModel(id: embedder.modelID, dimensions: embedder.dimensions)
            let analyzer = Analyzer()
            func file(_ path: String, tags: [String], mtime: Int64) -> IndexChange {
                .upsert(PreparedFile(path: path, size: 1, mtimeNanos: mtime, contentHash: SHA256.hash(Array(path.utf8)), title: nil, tags: tags,
                                     chunks: [PreparedChunk(text: "apple orchard notes", lines: 1...1, headings: [], analyzer: analyzer)]))
            }
            try store.apply([file("/d/old.md", tags: ["Fruit"], mtime: 1_000_000_000), file("/d/new.md", tags: ["garden"], mtime: 5_000_000_000)])
            try embedAll(store, embedder)
            let searcher = Searcher(store: store, embedder: embedder)
            let byTag = ChunkFilter(tags: ["fruit"])
            #expect(try searcher.searchBM25("apple", k: 5, filter: byTag).map(\.path) == ["/d/old.md"])
            #expect(try searcher.searchDense("apple", k: 5, filter: byTag).map(\.path) == ["/d/old.md"])
            #expect(try searcher.searchHybrid("apple", k: 5, filter: byTag, fusion: .weighted(denseWeight: 0.7)).map(\.path) == ["/d/old.md"])
            let recent = ChunkFilter(modifiedAfterNanos: 2_000_000_000)
            #expect(try searcher.searchBM25("apple", k: 5, filter: recent).map(\.path) == ["/d/new.md"])
            #expect(try searcher.searchDense("apple", k: 5, filter: recent).map(\.path) == ["/d/new.md"])
        }
    }
}

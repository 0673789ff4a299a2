import RagCore
import RagStore
import RagTestSupport
import Testing

/// Freed chunk ids are reused (never inside the transaction that freed them, never while a query that could have
/// seen the old chunk runs), so the in-memory tables stay proportional to the live chunks under steady edits.
@Suite(.timeLimit(.minutes(5)))
struct ChunkIDReuseTests {
    let analyzer = Analyzer()

    /// `/d/f<n>.md` at `version`: two chunks whose text is unique to the version.
    func file(_ n: Int, version: Int, chunks: Int = 2) -> PreparedFile {
        let texts = (0..<chunks).map { "file\(n) version\(version) part\($0) common words" }
        return PreparedFile(path: "/d/f\(n).md", size: 1, mtimeNanos: Int64(version), contentHash: SHA256.hash(Array("\(n)/\(version)".utf8)),
                            title: nil, tags: [],
                            chunks: texts.enumerated().map { PreparedChunk(text: $1, lines: ($0 * 2 + 1)...($0 * 2 + 2), headings: [], analyzer: analyzer) })
    }

    func ids(_ store: Store, _ n: Int) throws -> Set<UInt32> {
        Set(try #require(try store.file(path: "/d/f\(n).md")).chunkIDs)
    }

    /// Gives every chunk without a vector a made-up one.
    func embedPending(_ store: Store, dimensions: Int) throws {
        let inputs = try store.embeddingInputs(store.chunksWithoutEmbedding(limit: 100_000))
        try store.storeEmbeddings(inputs.map { input in
            (id: input.id, hash: input.hash, vector: (0..<dimensions).map { Float(input.hash.bytes[$0 % 32]) / 255 + 0.01 })
        })
    }

    @Test func tablesStayBoundedUnderALongEditLoop() throws {
        try withTemporaryDirectory { dir in
            let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 64 << 20, maxMapSize: 1 << 30, embeddingCacheOrphans: 50))
            try store.configureModel(id: "made-up", dimensions: 8)
            try store.apply((0..<50).map { .upsert(file($0, version: 0)) })
            try embedPending(store, dimensions: 8)
            // 10,000 rewrites of the same 50 files, five files per transaction.
            for round in 1...2_000 {
                try store.apply((0..<5).map { k in .upsert(file((round * 5 + k) % 50, version: round)) })
                if round % 10 == 0 { try embedPending(store, dimensions: 8) }
            }
            try embedPending(store, dimensions: 8)
            let live = store.counts.chunks
            #expect(live == 100)
            let (lengths, vectorRows, embedded) = store.withChunkTable { ($0.lengths.count, $0.vectors.scales.count, $0.vectors.count) }
            #expect(embedded == live)
            // The smallest table is 1,024 rows; without reuse the ids would have reached 20,100.
            #expect(lengths <= max(1024, 4 * live))
            #expect(vectorRows <= max(1024, 4 * live))
            let usage = store.chunkIDUsage
            #expect(usage.next <= UInt32(live + 10 + 1))
            #expect(usage.quarantined == 0)
            #expect(store.embeddingCacheOrphans.count <= 50)
        }
    }

    @Test func noIDIsReusedInsideTheTransactionThatFreedIt() throws {
        try withTemporaryDirectory { dir in
            let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 64 << 20))
            try store.apply([.upsert(file(0, version: 0, chunks: 3)), .upsert(file(1, version: 0, chunks: 3))])
            let old0 = try ids(store, 0), old1 = try ids(store, 1)
            // One transaction: file 0 deleted, file 1 rewritten entirely, file 2 created.
            try store.apply([.delete(path: "/d/f0.md"), .upsert(file(1, version: 1, chunks: 3)), .upsert(file(2, version: 1, chunks: 3))])
            let new1 = try ids(store, 1), new2 = try ids(store, 2)
            #expect(new1.isDisjoint(with: old0.union(old1)))
            #expect(new2.isDisjoint(with: old0.union(old1)))
            // Every posting of the new chunks survived the deletion of the old ones.
            let partZero = try store.withSnapshot { snapshot in
                var found: Set<UInt32> = []
                try snapshot.postings("version1") { page in
                    for offset in stride(from: 0, to: page.count, by: Store.postingSize) {
                        found.insert(UInt32(page[offset]) << 24 | UInt32(page[offset + 1]) << 16 | UInt32(page[offset + 2]) << 8 | UInt32(page[offset + 3]))
                    }
                }
                return found
            }
            #expect(partZero == new1.union(new2))
            #expect(store.counts.chunks == 6)
            // The next transaction reuses the freed ids.
            try store.apply([.upsert(file(3, version: 2, chunks: 3))])
            #expect(try ids(store, 3).isSubset(of: old0.union(old1)))
        }
    }

    @Test func idsFreedWhileAQueryRunsWaitForItToEnd() throws {
        try withTemporaryDirectory { dir in
            let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 64 << 20))
            try store.apply([.upsert(file(0, version: 0))])
            let old = try ids(store, 0)
            try store.withPinnedChunkIDs {
                try store.apply([.delete(path: "/d/f0.md")])
                try store.apply([.upsert(file(1, version: 1))])
                #expect(try ids(store, 1).isDisjoint(with: old))
                #expect(store.chunkIDUsage.quarantined == old.count)
            }
            // A query that began after the delete does not hold the ids back.
            try store.withPinnedChunkIDs {
                try store.apply([.upsert(file(2, version: 2))])
                #expect(try ids(store, 2) == old)
            }
            #expect(store.chunkIDUsage.quarantined == 0)
        }
    }

    @Test func aReopenedStoreRebuildsTheFreeList() throws {
        try withTemporaryDirectory { dir in
            var live: Set<UInt32> = []
            do {
                let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 64 << 20))
                try store.apply((0..<10).map { .upsert(file($0, version: 0)) })
                for round in 1...30 { try store.apply([.upsert(file(round % 10, version: round))]) }
                // Free ids in the middle (files 0-4 deleted) and at the top (the last rewrite's old chunks).
                try store.apply((0..<5).map { .delete(path: "/d/f\($0).md") })
                for n in 5..<10 { live.formUnion(try ids(store, n)) }
            }
            let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 64 << 20))
            let usage = store.chunkIDUsage
            // The counter comes down to just above the highest live id; every id below it not live is free.
            #expect(usage.next == live.max()! + 1)
            #expect(usage.free == Int(usage.next) - 1 - live.count)
            #expect(usage.quarantined == 0)
            // New chunks take the lowest free ids first.
            try store.apply([.upsert(file(20, version: 0, chunks: 3))])
            let expected = Set((1..<usage.next).filter { !live.contains($0) }.sorted().prefix(3))
            #expect(try ids(store, 20) == expected)
            #expect(store.counts.chunks == live.count + 3)
        }
    }
}

/// The embedding cache keeps orphaned vectors (of texts no live chunk has) up to a limit, oldest evicted first.
@Suite(.timeLimit(.minutes(2)))
struct EmbeddingCachePruningTests {
    let analyzer = Analyzer()

    func file(_ text: String) -> IndexChange {
        .upsert(PreparedFile(path: "/d/a.md", size: 1, mtimeNanos: 1, contentHash: SHA256.hash(Array(text.utf8)), title: nil, tags: [],
                             chunks: [PreparedChunk(text: text, lines: 1...1, headings: [], analyzer: analyzer)]))
    }

    func embedPending(_ store: Store) throws -> Int {
        let inputs = try store.embeddingInputs(store.chunksWithoutEmbedding(limit: 1000))
        try store.storeEmbeddings(inputs.map { (id: $0.id, hash: $0.hash, vector: [1, 2, 3, Float($0.text.count)]) })
        return inputs.count
    }

    @Test func aReturningTextKeepsItsVectorWithinTheLimitAndOldOrphansAreEvicted() throws {
        try withTemporaryDirectory { dir in
            let index = dir + "/index"
            do {
                let store = try Store(directory: index, configuration: .init(mapSize: 64 << 20, embeddingCacheOrphans: 3))
                try store.configureModel(id: "m", dimensions: 4)
                try store.apply([file("text zero")])
                #expect(try embedPending(store) == 1)
                // Rewritten: "text zero" is an orphan; its vector stays cached.
                for n in 1...3 {
                    try store.apply([file("text \(n)")])
                    #expect(try embedPending(store) == 1)
                }
                #expect(store.embeddingCacheOrphans.count == 3)
                // "text zero" came back: its vector is taken from the cache and it is no longer an orphan.
                try store.apply([file("text zero")])
                #expect(store.embeddingCounts.embedded == 1)
                #expect(try embedPending(store) == 0)
                #expect(store.embeddingCacheOrphans.count == 3)
                // Four more texts: the limit holds, the oldest orphans ("text 1", "text 2") are evicted.
                for n in 4...7 {
                    try store.apply([file("text \(n)")])
                    #expect(try embedPending(store) == 1)
                    #expect(store.embeddingCacheOrphans.count <= 3)
                }
                try store.apply([file("text 1")])
                #expect(try embedPending(store) == 1)
            }
            // Reopened: the orphan list is the same; the most recent orphans ("text 6", "text 5") are still cached.
            let store = try Store(directory: index, configuration: .init(mapSize: 64 << 20, embeddingCacheOrphans: 3))
            try store.configureModel(id: "m", dimensions: 4)
            #expect(store.embeddingCacheOrphans.count == 3)
            try store.apply([file("text 6")])
            #expect(store.embeddingCounts.embedded == 1)
            try store.apply([file("text 5")])
            #expect(store.embeddingCounts.embedded == 1)
            // "text 2" was evicted long ago.
            try store.apply([file("text 2")])
            #expect(store.embeddingCounts.embedded == 0)
        }
    }

    @Test func aVectorOfAChunkDeletedWhileItWasEmbeddedIsAnOrphan() throws {
        try withTemporaryDirectory { dir in
            let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 64 << 20, embeddingCacheOrphans: 1))
            try store.configureModel(id: "m", dimensions: 4)
            try store.apply([file("early")])
            let inputs = try store.embeddingInputs(store.chunksWithoutEmbedding(limit: 10))
            try store.apply([.delete(path: "/d/a.md")])
            try store.storeEmbeddings(inputs.map { (id: $0.id, hash: $0.hash, vector: [1, 0, 0, 0]) })
            #expect(store.embeddingCacheOrphans.count == 1)
            try store.apply([file("early")])
            #expect(store.embeddingCounts.embedded == 1)
            #expect(store.embeddingCacheOrphans.count == 0)
        }
    }

    @Test func withALimitOfZeroNoOrphanIsKept() throws {
        try withTemporaryDirectory { dir in
            let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 64 << 20, embeddingCacheOrphans: 0))
            try store.configureModel(id: "m", dimensions: 4)
            try store.apply([file("one")])
            _ = try embedPending(store)
            try store.apply([file("two")])
            #expect(store.embeddingCacheOrphans.count == 0)
            try store.apply([file("one")])
            #expect(store.embeddingCounts.embedded == 0)
        }
    }
}

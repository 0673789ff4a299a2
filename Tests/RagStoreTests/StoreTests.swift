import Foundation
import Synchronization
import RagCore
import RagStore
import RagTestSupport
import Testing

struct StoreTests {
    let analyzer = Analyzer()

    func file(_ path: String, _ chunks: [(String, ClosedRange<Int>, [String])], hash: String = "h") -> PreparedFile {
        PreparedFile(path: path, size: 10, mtimeNanos: 5, contentHash: SHA256.hash(Array(hash.utf8)), title: "T", tags: ["a", "b"],
                     chunks: chunks.map { PreparedChunk(text: $0.0, lines: $0.1, headings: $0.2, analyzer: analyzer) })
    }

    func postings(_ store: Store, _ term: String) throws -> [UInt32: UInt16] {
        try store.withSnapshot { snapshot in
            var result: [UInt32: UInt16] = [:]
            try snapshot.postings(term) { page in
                for offset in stride(from: 0, to: page.count, by: Store.postingSize) {
                    let id = UInt32(page[offset]) << 24 | UInt32(page[offset + 1]) << 16 | UInt32(page[offset + 2]) << 8 | UInt32(page[offset + 3])
                    result[id] = UInt16(page[offset + 4]) << 8 | UInt16(page[offset + 5])
                }
            }
            return result
        }
    }

    /// A gzipped file counts as what it holds; `.rst.txt` as reST.
    @Test(arguments: [("/d/a.md", "md"), ("/d/A.MD.GZ", "md"), ("/d/os.rst.txt", "rst"), ("/d/os.rst.txt.gz", "rst"),
                      ("/d/x.gz", "gz"), ("/d/.gz", ""), ("/d/Makefile", ""), ("/d/p.html.gz", "html")])
    func fileExtensions(_ path: String, _ ext: String) {
        #expect(Store.fileExtension(of: path) == ext)
    }

    @Test func roundTripsFilesChunksAndPostings() throws {
        try withTemporaryDirectory { dir in
            let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 64 << 20))
            let summary = try store.apply([.upsert(file("/d/a.md", [("# Cursors\nlmdb cursors cursors", 1...2, ["Cursors"]),
                                                                     ("plain text here", 4...4, ["Cursors"])]))])
            #expect(summary.chunksAdded == 2)
            let record = try #require(try store.file(path: "/d/a.md"))
            #expect(record.title == "T")
            #expect(record.tags == ["a", "b"])
            #expect(record.chunkIDs.count == 2)
            let chunk = try #require(try store.chunk(id: record.chunkIDs[0]))
            #expect(chunk.lines == 1...2)
            #expect(chunk.headings == ["Cursors"])
            #expect(chunk.text == "# Cursors\nlmdb cursors cursors")
            // The first chunk starts with its heading line: "cursor" three times. The second chunk gets its
            // heading trail indexed with it: once.
            let cursorPostings = try postings(store, "cursor")
            #expect(cursorPostings == [record.chunkIDs[0]: 3, record.chunkIDs[1]: 1])
            #expect(store.counts.files == 1)
            #expect(store.counts.chunks == 2)
        }
    }

    @Test func unchangedChunksKeepTheirIDs() throws {
        try withTemporaryDirectory { dir in
            let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 64 << 20))
            try store.apply([.upsert(file("/d/a.md", [("alpha one", 1...1, []), ("beta two", 3...3, [])]))])
            let before = try #require(try store.file(path: "/d/a.md")).chunkIDs
            // Insert a chunk in front: the others move down but keep their ids.
            let summary = try store.apply([.upsert(file("/d/a.md", [("gamma zero", 1...1, []), ("alpha one", 3...3, []), ("beta two", 5...5, [])], hash: "h2"))])
            #expect(summary.chunksKept == 2)
            #expect(summary.chunksAdded == 1)
            let after = try #require(try store.file(path: "/d/a.md")).chunkIDs
            #expect(Array(after[1...]) == before)
            #expect(try store.chunk(id: before[0])?.lines == 3...3, "line range follows the text")
            // Removing a chunk removes its postings.
            try store.apply([.upsert(file("/d/a.md", [("gamma zero", 1...1, [])], hash: "h3"))])
            #expect(try postings(store, "alpha").isEmpty)
            #expect(try store.chunk(id: before[0]) == nil)
            #expect(store.counts.chunks == 1)
        }
    }

    @Test func deleteAndTouch() throws {
        try withTemporaryDirectory { dir in
            let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 64 << 20))
            try store.apply([.upsert(file("/d/a.md", [("alpha", 1...1, [])])), .upsert(file("/d/b.md", [("alpha beta", 1...1, [])]))])
            try store.apply([.touch(path: "/d/a.md", size: 99, mtimeNanos: 77)])
            #expect(try store.file(path: "/d/a.md")?.mtimeNanos == 77)
            #expect(try store.file(path: "/d/a.md")?.size == 99)
            try store.apply([.delete(path: "/d/b.md")])
            #expect(try store.file(path: "/d/b.md") == nil)
            #expect(try postings(store, "beta").isEmpty)
            #expect(try postings(store, "alpha").count == 1)
            #expect(store.counts == (1, 1))
        }
    }

    @Test func reopensWithTheSameContents() throws {
        try withTemporaryDirectory { dir in
            do {
                let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 64 << 20))
                try store.apply([.upsert(file("/d/a.md", [("alpha", 1...1, []), ("beta", 2...2, [])]))])
            }
            let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 64 << 20))
            #expect(store.counts == (1, 2))
            #expect(try store.allFiles().keys.sorted() == ["/d/a.md"])
            let average = store.withChunkTable { $0.averageLength }
            #expect(average == 1)
        }
    }

    @Test func longPathsAreStored() throws {
        try withTemporaryDirectory { dir in
            let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 64 << 20))
            let path = "/" + String(repeating: "deep/", count: 150) + "x.md"
            try store.apply([.upsert(file(path, [("alpha", 1...1, [])]))])
            #expect(try store.file(path: path)?.path == path)
            try store.apply([.delete(path: path)])
            #expect(store.counts == (0, 0))
        }
    }

    @Test func refusesAnotherSchemaVersion() throws {
        try withTemporaryDirectory { dir in
            _ = try Store(directory: dir + "/index", configuration: .init(mapSize: 64 << 20))
            // Simulate an index written by another analyzer version.
            try Store.overwriteMetaForTesting(directory: dir + "/index", key: "analyzer", value: 9999)
            #expect {
                _ = try Store(directory: dir + "/index", configuration: .init(mapSize: 64 << 20))
            } throws: { error in
                guard let error = error as? StoreError else { return false }
                return error.code == .schemaMismatch && error.message.contains("--rebuild-index")
            }
        }
    }

    @Test func extensions() {
        #expect(Store.fileExtension(of: "/a/b/Guide.RST.txt") == "rst")
        #expect(Store.fileExtension(of: "/a/b.md") == "md")
        #expect(Store.fileExtension(of: "/a/.hidden") == "")
        #expect(Store.fileExtension(of: "/a/README") == "")
    }
}

/// The map grows when full (while readers keep reading), up to its ceiling; at the ceiling a write fails cleanly.
struct MapGrowthTests {
    let analyzer = Analyzer()

    /// A file of `chunks` chunks of distinct words.
    func bulky(_ n: Int, chunks: Int = 40) -> PreparedFile {
        let texts = (0..<chunks).map { c in (0..<150).map { "w\(n)x\(c)y\($0)" }.joined(separator: " ") }
        return PreparedFile(path: "/d/f\(n).md", size: 1, mtimeNanos: 1, contentHash: SHA256.hash(Array("\(n)".utf8)), title: nil, tags: [],
                            chunks: texts.enumerated().map { PreparedChunk(text: $1, lines: ($0 + 1)...($0 + 1), headings: [], analyzer: analyzer) })
    }

    @Test func growsWhileReadersRead() throws {
        try withTemporaryDirectory { dir in
            let resized = Mutex<[(Int, Int)]>([])
            let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 1 << 20, maxMapSize: 256 << 20,
                                                                                    onMapResize: { from, to in resized.withLock { $0.append((from, to)) } }))
            let stop = Mutex(false)
            let reads = Mutex(0)
            let group = DispatchGroup()
            let running = DispatchSemaphore(value: 0)
            // Readers on threads of their own: on a two-core machine the global queue may run only two of them,
            // and the third would never signal `running`.
            for _ in 0..<3 {
                group.enter()
                Thread {
                    defer { group.leave() }
                    var first = true
                    while !stop.withLock({ $0 }) {
                        defer { if first { first = false; running.signal() } }
                        // Snapshots held for a moment, so growth has to wait for them.
                        _ = try? store.withSnapshot { snapshot in try snapshot.documentFrequency("w0x0y0") }
                        _ = try? store.file(path: "/d/f0.md")
                        reads.withLock { $0 += 1 }
                    }
                }.start()
            }
            // The readers are reading before the writes (and the resizes) begin.
            for _ in 0..<3 { running.wait() }
            for n in 0..<60 { try store.apply([.upsert(bulky(n))]) }
            stop.withLock { $0 = true }
            group.wait()
            let usage = store.mapUsage
            #expect(usage.size > 1 << 20)
            #expect(usage.maximum == 256 << 20)
            #expect(usage.used <= usage.size)
            #expect(!resized.withLock { $0 }.isEmpty)
            #expect(resized.withLock { $0 }.allSatisfy { $0.1 > $0.0 })
            #expect(reads.withLock { $0 } > 0)
            #expect(store.counts.files == 60)
            #expect(try store.file(path: "/d/f59.md")?.chunkIDs.count == 40)
        }
    }

    @Test func failsCleanlyAtTheCeiling() throws {
        try withTemporaryDirectory { dir in
            let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 1 << 20, maxMapSize: 2 << 20))
            var written = 0
            var failure: StoreError?
            for n in 0..<200 {
                do {
                    try store.apply([.upsert(bulky(n))])
                    written += 1
                } catch let error as StoreError {
                    failure = error
                    break
                }
            }
            let error = try #require(failure)
            #expect(error.code == .mapFull)
            #expect(error.message.contains("max_map_size_mb"))
            #expect(store.mapUsage.size == 2 << 20)
            // Everything committed before is intact and readable; the failed write left nothing behind.
            #expect(store.counts.files == written)
            #expect(try store.allFiles().count == written)
            #expect(try store.file(path: "/d/f\(written).md") == nil)
            #expect(try store.file(path: "/d/f0.md")?.chunkIDs.count == 40)
            // Deleting is always possible (it may grow the map into a reserve beyond the ceiling), and makes room.
            try store.apply((0..<written).map { .delete(path: "/d/f\($0).md") })
            #expect(store.mapUsage.size <= (2 << 20) + Store.deletionReserve(2 << 20))
            try store.apply([.upsert(bulky(written))])
            #expect(store.counts.files == 1)
        }
    }
}

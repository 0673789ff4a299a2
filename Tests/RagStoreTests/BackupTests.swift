import Foundation
import Synchronization
import RagCore
@testable import RagStore
import RagTestSupport
import Testing

struct BackupTests {
    let analyzer = Analyzer()

    /// A file of `chunks` chunks of distinct words.
    func bulky(_ n: Int, chunks: Int = 40) -> PreparedFile {
        let texts = (0..<chunks).map { c in (0..<150).map { "w\(n)x\(c)y\($0)" }.joined(separator: " ") }
        return PreparedFile(path: "/d/f\(n).md", size: 1000, mtimeNanos: 1, contentHash: SHA256.hash(Array("\(n)".utf8)), title: nil, tags: [],
                            chunks: texts.enumerated().map { PreparedChunk(text: $1, lines: ($0 + 1)...($0 + 1), headings: [], analyzer: analyzer) })
    }

    /// The interleaving that could deadlock, forced: a write needs the map to grow while the copy holds the gate. The
    /// growth waits for the copy, the copy does not wait for it, and the copy is the snapshot from before the write.
    @Test func aMapGrowthDuringTheCopyWaitsForIt() throws {
        try withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(atPath: dir + "/state", withIntermediateDirectories: false)
            let store = try Store(directory: dir + "/state/index", configuration: .init(mapSize: 1 << 20, maxMapSize: 1 << 30))
            for n in 0..<4 { try store.apply([.upsert(bulky(n))]) }
            #expect(store.indexedBytes == 4000)
            let writer = DispatchSemaphore(value: 0)
            let written = Mutex<(any Error)?>(nil)
            var sizeDuringCopy = 0
            let result = try store.backup(to: dir + "/copy", indexFolder: "index") {
                sizeDuringCopy = store.mapUsage.size
                // Far more than the room the backup made: this write must grow the map, and so wait for the copy.
                Thread {
                    defer { writer.signal() }
                    do { try store.apply((4..<40).map { .upsert(bulky($0)) }) } catch { written.withLock { $0 = error } }
                }.start()
                let deadline = Date().addingTimeInterval(60)
                while store.env.resizesWaiting.load(ordering: .relaxed) == 0 && Date() < deadline { sched_yield() }
                #expect(store.env.resizesWaiting.load(ordering: .relaxed) == 1, "the writer waits to grow the map")
            }
            writer.wait()
            #expect(written.withLock { $0 } == nil)
            #expect(store.counts.files == 40)
            #expect(store.mapUsage.size > sizeDuringCopy)
            #expect(result.path == dir + "/copy")
            var st = stat()
            #expect(stat(dir + "/copy/index/data.mdb", &st) == 0 && Int(st.st_size) == result.bytes)
            let copy = try Store(directory: dir + "/copy/index")
            #expect(copy.counts.files == 4)
            #expect(try copy.file(path: "/d/f3.md")?.chunkIDs.count == 40)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["copy", "state"])
        }
    }

    @Test func refusesABusyOrBadDestinationAndCleansUp() throws {
        try withTemporaryDirectory { dir in
            let store = try Store(directory: dir + "/index")
            try store.apply([.upsert(bulky(0, chunks: 2))])
            try writeFile(dir + "/taken/file", "x")
            for destination in ["copy", dir + "/taken", dir + "/no/such/parent", dir + "/a/./b", dir + "/"] {
                #expect(throws: BackupError.self, "\(destination)") { try store.backup(to: destination) }
            }
            // A second backup while one runs is refused.
            var nested: BackupError?
            _ = try store.backup(to: dir + "/one", indexFolder: "index") {
                do { _ = try store.backup(to: dir + "/two") } catch { nested = error as? BackupError }
            }
            #expect(nested?.kind == .busy)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["index", "one", "taken"])
        }
    }
}

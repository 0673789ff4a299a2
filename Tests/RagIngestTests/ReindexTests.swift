import Foundation
import Glibc
import Logging
import RagIngest
import RagStore
import RagTestSupport
import Testing

/// `reindex`: files named by `ChangeSet.reread` are read and chunked again even when nothing about them changed.
@Suite struct ReindexTests {
    /// Rewrites `path` with `text` (same length) and puts its modification time back, as an edit the size and mtime
    /// check cannot see.
    func rewriteKeepingTimestamp(_ path: String, _ text: String) throws {
        var st = stat()
        #expect(stat(path, &st) == 0)
        try writeFile(path, text)
        var times = [st.st_atim, st.st_mtim]
        #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
    }

    @Test func rereadFindsAnEditTheScanMisses() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = dir + "/docs"
            try writeFile(docs + "/sub/a.md", "# A\n\nalpha beta\n")
            try writeFile(docs + "/b.md", "# B\n\ngamma\n")
            let store = try Store(directory: dir + "/index", configuration: StoreConfiguration(mapSize: 64 << 20))
            let indexer = Indexer(store: store, configuration: IndexerConfiguration(sources: [SourceSpec(root: docs)]), logger: Logger(label: "test"))
            try indexer.reconcile()
            try rewriteKeepingTimestamp(docs + "/sub/a.md", "# A\n\nzulus beta\n")

            #expect(try indexer.reconcile() == WriteSummary(), "size and mtime unchanged: a rescan skips the file")
            var folder = ChangeSet()
            folder.folders = [docs + "/sub"]
            folder.reread = [docs + "/sub"]
            let summary = try indexer.apply(folder)
            #expect(summary.filesWritten == 1 && summary.chunksAdded == 1 && summary.chunksRemoved == 1, "\(summary)")
            let text = try store.files(under: docs + "/sub").values.flatMap(\.chunkIDs).compactMap { try store.chunk(id: $0)?.text }
            #expect(text.contains { $0.contains("zulus") })

            // An unchanged file forced again is written again; its chunk keeps its id.
            let before = try store.file(path: docs + "/b.md")?.chunkIDs
            var file = ChangeSet()
            file.files = [docs + "/b.md"]
            file.reread = [docs + "/b.md"]
            let again = try indexer.apply(file)
            #expect(again.filesWritten == 1 && again.chunksKept == 1 && again.chunksAdded == 0, "\(again)")
            #expect(try store.file(path: docs + "/b.md")?.chunkIDs == before)
            let status = indexer.status
            #expect(status.phase == .idle && status.done == 1 && status.total == 1)
            #expect(status.written.filesWritten == 2 + 1 + 1, "two at first, then one each")
            #expect(status.rate() != nil)
        }
    }
}

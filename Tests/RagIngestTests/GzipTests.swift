import Foundation
import Logging
import RagGzip
import RagStore
import RagTestSupport
import Testing
@testable import RagIngest

@Suite struct GzipTests {
    let text = Array((0..<2000).map { "line \($0) of the gzipped guide\n" }.joined().utf8)

    @Test func roundTrip() {
        #expect(Gzip.decompress(gzipCompress(text), limit: 1 << 20) == .success(text))
        #expect(Gzip.decompress(gzipCompress(text, level: 0), limit: 1 << 20) == .success(text), "stored blocks")
    }

    @Test func membersFollowOneAnother() {
        let joined = gzipCompress(Array("first\n".utf8)) + gzipCompress(Array("second\n".utf8))
        #expect(Gzip.decompress(joined, limit: 100) == .success(Array("first\nsecond\n".utf8)))
        #expect(Gzip.decompress(gzipCompress(Array("x".utf8)) + [0, 0, 0, 0], limit: 100) == .success(Array("x".utf8)),
                "zero padding after the last member is ignored")
    }

    @Test func emptyInputAndEmptyContent() {
        #expect(Gzip.decompress([], limit: 10) == .success([]))
        #expect(Gzip.decompress(gzipCompress([]), limit: 10) == .success([]))
    }

    @Test func notGzip() {
        #expect(Gzip.decompress(Array("# plain markdown\n".utf8), limit: 100) == .failure(.corrupt("not gzip data (no gzip magic number)")))
        #expect(Gzip.decompress([0x1F], limit: 100) == .failure(.corrupt("not gzip data (no gzip magic number)")))
    }

    @Test func corruptData() {
        var damaged = gzipCompress(text)
        for i in 20..<60 { damaged[i] ^= 0x5A }
        guard case .failure(.corrupt(let message)) = Gzip.decompress(damaged, limit: 1 << 20) else {
            Issue.record("damaged data was accepted")
            return
        }
        #expect(!message.isEmpty)
        // A wrong checksum in the trailer.
        var badCRC = gzipCompress(text)
        badCRC[badCRC.count - 6] ^= 0xFF
        #expect(Gzip.decompress(badCRC, limit: 1 << 20) == .failure(.corrupt("incorrect data check")))
    }

    @Test(arguments: [1, 8, 100, 2])
    func truncated(_ cut: Int) {
        let whole = gzipCompress(text)
        let part = Array(whole.dropLast(cut == 2 ? whole.count / 2 : cut))
        #expect(Gzip.decompress(part, limit: 1 << 20) == .failure(.corrupt("truncated (the compressed data ends early)")))
        // A prefix of a file still gives what it holds (`get` on a large file reads only its start).
        let prefix = Gzip.decompressedPrefix(part, limit: 1 << 20)
        #expect(prefix.map { text.starts(with: $0) } == true)
    }

    /// 64 MiB of zeros in about 64 KiB: inflating stops at the limit.
    @Test func bombStopsAtTheLimit() {
        let bomb = gzipCompress([UInt8](repeating: 0, count: 64 << 20), level: 9)
        #expect(bomb.count < 100_000)
        #expect(Gzip.decompress(bomb, limit: 1 << 20) == .failure(.tooLarge(limit: 1 << 20)))
        #expect(Gzip.decompressedPrefix(bomb, limit: 1000) == [UInt8](repeating: 0, count: 1000))
        // The limit is inclusive.
        #expect(Gzip.decompress(gzipCompress(text), limit: text.count) == .success(text))
        #expect(Gzip.decompress(gzipCompress(text), limit: text.count - 1) == .failure(.tooLarge(limit: text.count - 1)))
    }
}

/// Gzipped documents through the indexer: read decompressed in the inner format; bombs, corrupt and truncated files
/// skipped with one log line each, nothing else affected.
@Suite struct GzipIndexingTests {
    @Test func gzippedDocumentsAreIndexedOrSkipped() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = dir + "/docs"
            let markdown = "# Guide\n\nThe zebra crossing is documented here.\n"
            try writeFile(docs + "/guide.md.gz", gzipCompress(markdown))
            try writeFile(docs + "/page.html.gz", gzipCompress("<title>Page</title>\n<h2>Part</h2>\n<p>okapi facts</p>\n"))
            try writeFile(docs + "/empty.txt.gz", [])
            try writeFile(docs + "/plain.md", "# Plain\n\nunaffected\n")
            var corrupt = gzipCompress(String(repeating: "corrupt text ", count: 500))
            for i in 30..<50 { corrupt[i] ^= 0xA5 }
            try writeFile(docs + "/corrupt.md.gz", corrupt)
            let whole = gzipCompress(String(repeating: "truncated text ", count: 500))
            try writeFile(docs + "/truncated.rst.gz", Array(whole.prefix(whole.count / 2)))
            try writeFile(docs + "/bomb.txt.gz", gzipCompress([UInt8](repeating: 0x61, count: 4 << 20), level: 9))
            try writeFile(docs + "/fake.md.gz", "not gzip at all\n")

            let captured = CapturedLog()
            let store = try Store(directory: dir + "/index", configuration: StoreConfiguration(mapSize: 64 << 20))
            let indexer = Indexer(store: store,
                                  configuration: IndexerConfiguration(sources: [SourceSpec(root: docs)], maxFileBytes: 1 << 20),
                                  logger: Logger(label: "test") { _ in CapturingLogHandler(log: captured) })
            try indexer.reconcile()
            try indexer.reconcile()  // a second pass logs nothing again

            let guide = try #require(try store.file(path: docs + "/guide.md.gz"))
            #expect(guide.title == "Guide")
            #expect(guide.size == UInt64(try FileManager.default.attributesOfItem(atPath: docs + "/guide.md.gz")[.size] as! Int),
                    "the size is the file's, compressed")
            let chunks = try guide.chunkIDs.map { try #require(try store.chunk(id: $0)) }
            #expect(chunks.map(\.text) == ["# Guide\n\nThe zebra crossing is documented here."])
            #expect(chunks.map(\.lines) == [1...3], "lines of the decompressed text")
            let page = try #require(try store.file(path: docs + "/page.html.gz"))
            #expect(page.title == "Page")
            #expect(try page.chunkIDs.map { try #require(try store.chunk(id: $0)).headings } == [["Page", "Part"]])
            #expect(try store.file(path: docs + "/empty.txt.gz")?.chunkIDs == [])
            #expect(try store.file(path: docs + "/plain.md") != nil)
            for skipped in ["corrupt.md.gz", "truncated.rst.gz", "bomb.txt.gz", "fake.md.gz"] {
                #expect(try store.file(path: docs + "/" + skipped) == nil, "\(skipped)")
            }
            #expect(indexer.status.skippedBinary == 3, "corrupt, truncated, not gzip")
            #expect(indexer.status.skippedTooLarge == 1, "the bomb")
            #expect(captured.count("skipping compressed file that cannot be decompressed") == 3)
            #expect(captured.count("skipping file over the size cap") == 1)

            // A bomb that replaces an indexed file removes it.
            try writeFile(docs + "/guide.md.gz", gzipCompress([UInt8](repeating: 0x62, count: 2 << 20)))
            try indexer.reconcile()
            #expect(try store.file(path: docs + "/guide.md.gz") == nil)
            #expect(captured.count("skipping file over the size cap") == 2)
        }
    }
}

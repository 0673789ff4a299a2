import RagGzip
import RagTestSupport
import Testing

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

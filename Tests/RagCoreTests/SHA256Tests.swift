import RagCore
import Testing

@Suite("SHA-256")
struct SHA256Tests {
    /// NIST / FIPS 180-4 example vectors.
    static let vectors: [(message: String, digest: String)] = [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (
            "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        ),
        (
            "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"
        ),
    ]

    @Test("NIST vectors", arguments: vectors)
    func nistVector(message: String, digest: String) {
        #expect(SHA256.hash(Array(message.utf8)).hex == digest)
        #expect(SHA256.hash(message.utf8).hex == digest)
    }

    @Test func oneMillionA() {
        let message = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(SHA256.hash(message).hex == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        // Same message fed in uneven pieces.
        var hasher = SHA256()
        var offset = 0
        var step = 1
        while offset < message.count {
            let end = min(message.count, offset + step)
            hasher.update(message[offset..<end])
            offset = end
            step = step * 3 % 1021 + 1
        }
        #expect(hasher.finalize().hex == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// Lengths around the padding boundaries (55/56/63/64 bytes) split at odd offsets.
    @Test(arguments: [0, 1, 55, 56, 57, 63, 64, 65, 119, 127, 128, 129, 1000])
    func incrementalEqualsOneShot(length: Int) {
        let data = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        let expected = SHA256.hash(data)
        for split in [0, 1, 3, 7, 31, 55, 63, 64, 65, 99] where split <= length {
            var hasher = SHA256()
            hasher.update(data[..<split])
            hasher.update(data[split...])
            #expect(hasher.finalize() == expected, "split at \(split)")
        }
        // Three-way split including empty updates.
        var hasher = SHA256()
        hasher.update([UInt8]())
        hasher.update(data.prefix(length / 3))
        hasher.update(data.dropFirst(length / 3).prefix(length / 3))
        hasher.update([UInt8]())
        hasher.update(data.dropFirst(2 * (length / 3)))
        #expect(hasher.finalize() == expected)
    }

    @Test func nonContiguousCollection() {
        let message = "The quick brown fox jumps over the lazy dog"
        // A lazily mapped collection has no contiguous storage.
        let lazyBytes = message.utf8.lazy.map { $0 }
        #expect(SHA256.hash(lazyBytes).hex == "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592")
        let big = (0..<10_000).lazy.map { UInt8(truncatingIfNeeded: $0) }
        #expect(SHA256.hash(big) == SHA256.hash(Array(big)))
    }

    @Test func contentHashHexRoundTrip() throws {
        let hash = SHA256.hash(Array("abc".utf8))
        #expect(hash.bytes.count == 32)
        #expect(hash.description == hash.hex)
        let parsed = try #require(ContentHash(hex: hash.hex))
        #expect(parsed == hash)
        #expect(ContentHash(hex: hash.hex.uppercased()) == hash)
        #expect(hash.prefix64 == 0xba78_16bf_8f01_cfea)
    }

    @Test(arguments: ["", "abc", String(repeating: "0", count: 63), String(repeating: "0", count: 65),
                      String(repeating: "g", count: 64), String(repeating: "00", count: 33)])
    func contentHashRejectsBadHex(text: String) {
        #expect(ContentHash(hex: text) == nil)
    }
}

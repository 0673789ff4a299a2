import Testing
@testable import RagIngest

@Suite struct TextDecodingTests {
    @Test func plainUTF8() throws {
        let decoded = try #require(TextDecoding.decode(Array("héllo\r\nworld\n".utf8)))
        #expect(decoded.text == "héllo\r\nworld\n")
        #expect(!decoded.hadInvalidUTF8)
    }

    @Test func emptyIsText() throws {
        let decoded = try #require(TextDecoding.decode([]))
        #expect(decoded.text.isEmpty)
    }

    @Test func byteOrderMarkIsDropped() throws {
        let decoded = try #require(TextDecoding.decode([0xEF, 0xBB, 0xBF] + Array("# Title\n".utf8)))
        #expect(decoded.text == "# Title\n")
        #expect(!decoded.hadInvalidUTF8)
    }

    @Test func invalidUTF8IsRepairedAndFlagged() throws {
        let decoded = try #require(TextDecoding.decode([0x61, 0xFF, 0x62, 0xC3]))
        #expect(decoded.text == "a\u{FFFD}b\u{FFFD}")
        #expect(decoded.hadInvalidUTF8)
    }

    @Test(arguments: [
        [UInt8](arrayLiteral: 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00),  // PNG header
        Array("text with a NUL\u{0} inside".utf8),
        [0xFF, 0xFE, 0x41, 0x00],  // UTF-16LE with BOM
        Array(repeating: 0x01, count: 40) + Array(repeating: 0x41, count: 60),  // 40% control bytes
    ])
    func binaryIsRejected(_ bytes: [UInt8]) {
        #expect(TextDecoding.decode(bytes) == nil)
    }

    @Test func fewControlBytesAndLateNULAreText() throws {
        // 20% control bytes is still text (form feeds and tabs never count).
        let mostlyText: [UInt8] = Array(repeating: 0x1B, count: 20) + Array(repeating: 0x41, count: 80) + [0x0C, 0x09]
        #expect(TextDecoding.decode(mostlyText) != nil)
        let lateNUL = Array(repeating: UInt8(0x61), count: 9000) + [0x00]
        let decoded = try #require(TextDecoding.decode(lateNUL))
        #expect(decoded.text.utf8.count == 9001)
    }
}

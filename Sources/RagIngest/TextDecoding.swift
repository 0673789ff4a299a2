/// Text decoded from a file's bytes.
public struct DecodedText: Sendable {
    /// The decoded text (BOM removed, line breaks untouched).
    public var text: String
    /// True when the bytes were not valid UTF-8 and were repaired with U+FFFD.
    public var hadInvalidUTF8: Bool

    public init(text: String, hadInvalidUTF8: Bool) {
        self.text = text
        self.hadInvalidUTF8 = hadInvalidUTF8
    }
}

/// Turns raw file bytes into text, refusing files that look binary.
public enum TextDecoding {
    /// How many leading bytes are inspected for the binary check.
    public static let sniffLength = 8192

    /// Decodes `bytes` as UTF-8.
    ///
    /// Returns `nil` when the bytes look binary: a NUL byte in the first 8 KiB, or more than 30% of those bytes
    /// being control bytes other than `\t`, `\n`, `\r` and `\f`. Invalid UTF-8 is decoded lossily (U+FFFD) and
    /// flagged. A leading UTF-8 BOM is dropped. CRLF and lone CR are kept as they are.
    public static func decode(_ bytes: [UInt8]) -> DecodedText? {
        var body = bytes[...]
        if body.count >= 3, body[0] == 0xEF, body[1] == 0xBB, body[2] == 0xBF {
            body = body.dropFirst(3)
        }
        if looksBinary(body) { return nil }
        if let text = String(validating: body, as: UTF8.self) {
            return DecodedText(text: text, hadInvalidUTF8: false)
        }
        return DecodedText(text: String(decoding: body, as: UTF8.self), hadInvalidUTF8: true)
    }

    /// The binary heuristic applied to the first `sniffLength` bytes.
    static func looksBinary(_ bytes: ArraySlice<UInt8>) -> Bool {
        let sample = bytes.prefix(sniffLength)
        if sample.isEmpty { return false }
        var control = 0
        for byte in sample {
            if byte == 0 { return true }
            if (byte < 0x20 && byte != 0x09 && byte != 0x0A && byte != 0x0D && byte != 0x0C) || byte == 0x7F {
                control += 1
            }
        }
        return control * 10 > sample.count * 3
    }
}

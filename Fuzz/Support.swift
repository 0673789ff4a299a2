// Shared by every fuzz target (compiled into each by bench/fuzz).
#if canImport(Glibc)
import Glibc
#endif

/// Stops the run with `message` when an invariant fails, so libFuzzer saves the input as a crash.
@inline(__always)
func invariant(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() {
        printError("invariant failed: \(message())")
        abort()
    }
}

func printError(_ message: String) {
    var line = Array((message + "\n").utf8)
    _ = write(2, &line, line.count)
}

/// The input as text, decoded as the daemon decodes files (invalid UTF-8 becomes U+FFFD).
func fuzzText(_ data: UnsafePointer<UInt8>?, _ size: Int) -> String {
    guard let data, size > 0 else { return "" }
    return String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
}

/// Lines as the chunker counts them: `\n`, `\r\n` and `\r` end a line; a leading byte order mark is skipped.
func splitLines(_ text: String) -> [ArraySlice<UInt8>] {
    var bytes = Array(text.utf8)
    if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
    var lines: [ArraySlice<UInt8>] = []
    var start = 0
    var i = 0
    while i < bytes.count {
        if bytes[i] == 0x0A || bytes[i] == 0x0D {
            lines.append(bytes[start..<i])
            if bytes[i] == 0x0D, i + 1 < bytes.count, bytes[i + 1] == 0x0A { i += 1 }
            start = i + 1
        }
        i += 1
    }
    if start < bytes.count { lines.append(bytes[start...]) }
    return lines
}

func lineCount(_ text: String) -> Int { splitLines(text).count }

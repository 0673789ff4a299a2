// libFuzzer target: the YAML front-matter parser.
import RagIngest

/// A fence line: three `char`s, then only spaces or tabs.
private func isFence(_ line: ArraySlice<UInt8>, _ char: UInt8) -> Bool {
    line.count >= 3 && line.prefix(3).allSatisfy { $0 == char } && line.dropFirst(3).allSatisfy { $0 == 0x20 || $0 == 0x09 }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrontMatter(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = fuzzText(data, size)
    let lines = splitLines(text)
    // Where the block must end, found independently: the first `---`/`...` line after an opening `---`.
    var expectedCount: Int?
    if let first = lines.first, isFence(first, 0x2D),
       let close = lines.indices.dropFirst().first(where: { isFence(lines[$0], 0x2D) || isFence(lines[$0], 0x2E) }) {
        expectedCount = close + 1
    }
    let frontMatter = FrontMatter.parse(text)
    invariant(frontMatter?.lineCount == expectedCount,
              "front matter of \(frontMatter?.lineCount ?? -1) lines, expected \(expectedCount ?? -1)")
    guard let frontMatter else { return 0 }
    if let title = frontMatter.title { invariant(!title.isEmpty, "empty title") }
    invariant(frontMatter.tags.allSatisfy { !$0.isEmpty }, "empty tag in \(frontMatter.tags)")
    return 0
}

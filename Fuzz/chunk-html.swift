// libFuzzer target: the HTML chunker (visible text, boilerplate, headings, pre and tables).
import RagIngest

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTML(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = fuzzText(data, size)
    checkChunks(text, format: .html)
    let document = Chunker().parse(text, format: .html)
    invariant((document.title?.utf8.count ?? 0) <= 512, "title longer than 512 bytes")
    for chunk in document.chunks {
        invariant(chunk.headings.count <= 7, "trail of \(chunk.headings.count) headings")
        invariant(chunk.headings.allSatisfy { !$0.isEmpty && $0.utf8.count <= 512 }, "empty or overlong heading")
    }
    invariant(Chunker().parse(text, format: .html) == document, "two parses differ")
    return 0
}

// libFuzzer target: the Markdown chunker (with front matter).
import RagIngest

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMarkdown(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    checkChunks(fuzzText(data, size), format: .markdown)
    return 0
}

// libFuzzer target: the reStructuredText chunker, and plain text on the same input.
import RagIngest

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzReST(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = fuzzText(data, size)
    checkChunks(text, format: .restructuredText)
    checkChunks(text, format: .plainText)
    return 0
}

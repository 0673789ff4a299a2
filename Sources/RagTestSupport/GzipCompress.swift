import CZlib

/// `bytes` compressed as one gzip member with zlib (tests write `.gz` documents with it).
public func gzipCompress(_ bytes: [UInt8], level: Int32 = 6) -> [UInt8] {
    let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    stream.initialize(to: z_stream())
    defer { stream.deallocate() }
    // windowBits 15 + 16: a gzip header and trailer; memLevel 8 (zlib's default).
    precondition(deflateInit2_(stream, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY, zlibVersion(),
                               Int32(MemoryLayout<z_stream>.size)) == Z_OK)
    defer { deflateEnd(stream) }
    var input = bytes
    var output = [UInt8](repeating: 0, count: Int(deflateBound(stream, UInt(bytes.count))) + 64)
    let status = input.withUnsafeMutableBufferPointer { inp in
        output.withUnsafeMutableBufferPointer { out -> Int32 in
            stream.pointee.next_in = inp.baseAddress
            stream.pointee.avail_in = UInt32(inp.count)
            stream.pointee.next_out = out.baseAddress
            stream.pointee.avail_out = UInt32(out.count)
            return deflate(stream, Z_FINISH)
        }
    }
    precondition(status == Z_STREAM_END)
    output.removeSubrange(Int(stream.pointee.total_out)...)
    return output
}

public func gzipCompress(_ text: String) -> [UInt8] { gzipCompress(Array(text.utf8)) }

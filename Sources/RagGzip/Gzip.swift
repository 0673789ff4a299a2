import CZlib

/// Why gzip data could not be decompressed.
public enum GzipFailure: Error, Sendable, Equatable {
    /// The decompressed data is larger than the limit (inflating stopped there: a gzip bomb costs at most the limit).
    case tooLarge(limit: Int)
    /// Not gzip data, or damaged (zlib's message, or a description such as "truncated").
    case corrupt(String)
}

/// gzip decompression (RFC 1952) with zlib, bounded in output.
public enum Gzip {
    /// Decompresses `bytes`, a gzip file: its members one after another (as `gzip -d` does; anything after the last
    /// member that is not one is ignored). Empty input decompresses to nothing. Fails with `.tooLarge` as soon as
    /// the output would exceed `limit` bytes, and with `.corrupt` on damaged or truncated data.
    public static func decompress(_ bytes: [UInt8], limit: Int) -> Result<[UInt8], GzipFailure> {
        let (output, end) = inflate(bytes, limit: limit)
        switch end {
        case .complete: return .success(output)
        case .limitReached: return .failure(.tooLarge(limit: limit))
        case .truncated: return .failure(.corrupt("truncated (the compressed data ends early)"))
        case .error(let message): return .failure(.corrupt(message))
        }
    }

    /// The first `limit` bytes (at most) of the decompressed data, also from data that ends early (a prefix of a
    /// file); nil when the data is damaged before `limit` bytes are out.
    public static func decompressedPrefix(_ bytes: [UInt8], limit: Int) -> [UInt8]? {
        let (output, end) = inflate(bytes, limit: limit)
        if case .error = end { return nil }
        return output.count > limit ? Array(output[..<limit]) : output
    }

    enum End: Equatable {
        case complete, limitReached, truncated
        case error(String)
    }

    /// Inflates up to `limit + 1` bytes of output.
    static func inflate(_ bytes: [UInt8], limit: Int) -> ([UInt8], End) {
        if bytes.isEmpty { return ([], .complete) }
        guard bytes.count >= 2, bytes[0] == 0x1F, bytes[1] == 0x8B else {
            return ([], .error("not gzip data (no gzip magic number)"))
        }
        // z_stream keeps a pointer to itself: it must not move between calls.
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer { stream.deallocate() }
        guard inflateInit2_(stream, 16 + MAX_WBITS, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            return ([], .error("zlib could not be initialised"))
        }
        defer { inflateEnd(stream) }

        let cap = max(0, limit) + 1
        var output = [UInt8](repeating: 0, count: min(cap, max(64 << 10, min(bytes.count * 4, 1 << 20))))
        var produced = 0
        var consumed = 0
        var end = End.truncated
        bytes.withUnsafeBufferPointer { input in
            while true {
                if produced == output.count {
                    if produced >= cap { end = .limitReached; return }
                    output.append(contentsOf: repeatElement(0, count: min(cap - produced, max(output.count, 64 << 10))))
                }
                let inputChunk = min(input.count - consumed, Int(UInt32.max >> 1))
                let outputChunk = min(output.count - produced, Int(UInt32.max >> 1))
                stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress! + consumed)
                stream.pointee.avail_in = UInt32(inputChunk)
                let status = output.withUnsafeMutableBufferPointer { out -> Int32 in
                    stream.pointee.next_out = out.baseAddress! + produced
                    stream.pointee.avail_out = UInt32(outputChunk)
                    return CZlib.inflate(stream, Z_NO_FLUSH)
                }
                consumed += inputChunk - Int(stream.pointee.avail_in)
                produced += outputChunk - Int(stream.pointee.avail_out)
                switch status {
                case Z_STREAM_END:
                    // Another member follows only if it starts with the magic number; anything else is ignored.
                    if consumed + 1 < input.count, input[consumed] == 0x1F, input[consumed + 1] == 0x8B,
                       inflateReset(stream) == Z_OK {
                        continue
                    }
                    end = produced > limit ? .limitReached : .complete
                    return
                case Z_OK:
                    if produced > limit { end = .limitReached; return }
                case Z_BUF_ERROR:
                    // No progress: out of input (the data ends early) or of output room (grown above).
                    if consumed == input.count { end = .truncated; return }
                    if produced > limit { end = .limitReached; return }
                case Z_NEED_DICT:
                    end = .error("needs a preset dictionary (not a gzip file)")
                    return
                default:
                    let message = stream.pointee.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                    end = .error(message)
                    return
                }
                if consumed == input.count, stream.pointee.avail_out > 0 {
                    // All input used and output room left without the end of the stream: the data ends early.
                    end = .truncated
                    return
                }
            }
        }
        output.removeSubrange(min(produced, output.count)...)
        return (output, end)
    }
}

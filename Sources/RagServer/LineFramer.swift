import NIOCore

/// A request line longer than the limit arrived; the connection is answered and closed.
struct LineTooLongError: Error {
    let limit: Int
}

/// Splits the inbound stream at `\n` (a trailing `\r` is dropped), refusing lines over `maximumLineBytes`
/// before buffering more than that, so a client cannot grow the daemon's memory with one endless line.
struct LineFramer: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    let maximumLineBytes: Int
    private var scanned = 0

    init(maximumLineBytes: Int) { self.maximumLineBytes = maximumLineBytes }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let view = buffer.readableBytesView
        if let newline = view.dropFirst(scanned).firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - view.startIndex
            scanned = 0
            if length > maximumLineBytes { throw LineTooLongError(limit: maximumLineBytes) }
            var line = buffer.readSlice(length: length)!
            buffer.moveReaderIndex(forwardBy: 1)
            if line.readableBytesView.last == UInt8(ascii: "\r") { line = line.getSlice(at: line.readerIndex, length: line.readableBytes - 1)! }
            context.fireChannelRead(wrapInboundOut(line))
            return .continue
        }
        scanned = view.count
        if view.count > maximumLineBytes { throw LineTooLongError(limit: maximumLineBytes) }
        return .needMoreData
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A final line without a newline is still a request.
        if try decode(context: context, buffer: &buffer) == .continue { return .continue }
        if buffer.readableBytes > 0 {
            let line = buffer.readSlice(length: buffer.readableBytes)!
            scanned = 0
            context.fireChannelRead(wrapInboundOut(line))
        }
        return .needMoreData
    }
}

import Glibc
import Logging
import NIOCore
import NIOPosix
import RagProtocol
import RagQuery
import ServiceLifecycle
import Synchronization

/// Settings of the socket server.
public struct ServerConfiguration: Sendable {
    /// Where to bind the Unix socket (ignored when `inheritedSocket` is set).
    public var socketPath: String
    /// Permission bits of the socket file.
    public var socketMode: UInt32
    /// Group to give the socket file, if any.
    public var socketGroup: String?
    /// User to give the socket file, if any (needs root).
    public var socketOwner: String?
    /// A listening socket handed over by systemd (`sd_listen_fds`), used instead of binding.
    public var inheritedSocket: Int32?
    /// Longest request line accepted; a longer one is answered `request_too_large` and the connection closed.
    public var maximumLineBytes: Int
    public var limits: RequestLimits
    /// Connections beyond this are answered `unavailable` and closed.
    public var maximumConnections: Int
    /// Threads answering requests (LMDB reads are blocking).
    public var workerThreads: Int

    public init(socketPath: String, socketMode: UInt32 = 0o660, socketGroup: String? = nil, socketOwner: String? = nil, inheritedSocket: Int32? = nil,
                maximumLineBytes: Int = 1 << 20, limits: RequestLimits = .init(), maximumConnections: Int = 256, workerThreads: Int = 4) {
        self.socketPath = socketPath
        self.socketMode = socketMode
        self.socketGroup = socketGroup
        self.socketOwner = socketOwner
        self.inheritedSocket = inheritedSocket
        self.maximumLineBytes = maximumLineBytes
        self.limits = limits
        self.maximumConnections = maximumConnections
        self.workerThreads = workerThreads
    }
}

public struct ServerError: Error, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// The newline-delimited JSON server on a Unix domain socket, run as a `Service`: binds in `run()`, answers until
/// graceful shutdown, then stops accepting, closes, and removes the socket file it created.
public final class SocketServer: Service, Sendable {
    private let configuration: ServerConfiguration
    private let responder: any RequestResponder
    private let logger: Logger
    private let onBound: @Sendable () -> Void
    private let connections = Atomic<Int>(0)

    public init(configuration: ServerConfiguration, responder: any RequestResponder, logger: Logger, onBound: @escaping @Sendable () -> Void = {}) {
        self.configuration = configuration
        self.responder = responder
        self.logger = logger
        self.onBound = onBound
    }

    public func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pool = NIOThreadPool(numberOfThreads: max(1, configuration.workerThreads))
        pool.start()
        do {
            try await serve(group: group, pool: pool)
        } catch {
            try? await group.shutdownGracefully()
            try? await pool.shutdownGracefully()
            throw error
        }
        try? await group.shutdownGracefully()
        try? await pool.shutdownGracefully()
    }

    private func serve(group: MultiThreadedEventLoopGroup, pool: NIOThreadPool) async throws {
        let configuration = self.configuration
        let responder = self.responder
        let logger = self.logger
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .childChannelInitializer { [self] channel in
                let active = connections.wrappingAdd(1, ordering: .relaxed).newValue
                channel.closeFuture.whenComplete { _ in self.connections.wrappingSubtract(1, ordering: .relaxed) }
                if active > configuration.maximumConnections {
                    logger.warning("refusing connection over the limit", metadata: ["limit": "\(configuration.maximumConnections)"])
                    var buffer = channel.allocator.buffer(capacity: 128)
                    var bytes: [UInt8] = []
                    Reply.failure(id: .null, WireError(.unavailable, "too many connections (limit \(configuration.maximumConnections))")).write(to: &bytes)
                    bytes.append(0x0A)
                    buffer.writeBytes(bytes)
                    return channel.writeAndFlush(buffer).flatMap { channel.close() }
                }
                return PeerCredentials.read(channel).flatMapThrowing { client in
                    guard let client else {
                        logger.warning("refusing a connection whose credentials the kernel did not report")
                        channel.close(promise: nil)
                        return
                    }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFramer(maximumLineBytes: configuration.maximumLineBytes)))
                    try channel.pipeline.syncOperations.addHandler(ConnectionHandler(responder: responder, pool: pool, limits: configuration.limits,
                                                                                     client: client, logger: logger))
                }
            }
        let channel: any Channel
        var createdPath: String? = nil
        if let fd = configuration.inheritedSocket {
            channel = try await bootstrap.withBoundSocket(fd).get()
            logger.notice("serving on an inherited socket", metadata: ["socket.fd": "\(fd)"])
        } else {
            let path = configuration.socketPath
            try SocketServer.prepareSocketPath(path)
            // Create the socket file with no access for others, then set the configured mode and group.
            let oldMask = umask(0o177)
            do {
                channel = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
            } catch {
                umask(oldMask)
                throw ServerError(message: "cannot bind \(path): \(error)")
            }
            umask(oldMask)
            createdPath = path
            if chmod(path, mode_t(configuration.socketMode)) != 0 {
                logger.warning("cannot set the socket's mode", metadata: ["socket.path": "\(path)", "error": "\(String(cString: strerror(errno)))"])
            }
            var owner = uid_t.max, group = gid_t.max  // -1: unchanged
            if let name = configuration.socketOwner, !name.isEmpty {
                if let uid = UInt32(name) ?? SocketServer.userID(name) { owner = uid } else {
                    logger.warning("unknown socket owner", metadata: ["socket.owner": "\(name)"])
                }
            }
            if let name = configuration.socketGroup, !name.isEmpty {
                if let gid = UInt32(name) ?? getgrnam(name)?.pointee.gr_gid { group = gid } else {
                    logger.warning("unknown socket group", metadata: ["socket.group": "\(name)"])
                }
            }
            if (owner != uid_t.max || group != gid_t.max) && chown(path, owner, group) != 0 {
                logger.warning("cannot set the socket's owner or group", metadata: ["socket.owner": "\(configuration.socketOwner ?? "")",
                    "socket.group": "\(configuration.socketGroup ?? "")", "error": "\(String(cString: strerror(errno)))"])
            }
            logger.notice("listening", metadata: ["socket.path": "\(path)", "socket.mode": "\(String(configuration.socketMode, radix: 8))"])
        }
        onBound()
        // Serve until graceful shutdown (SIGTERM/SIGINT), or until cancelled.
        try? await gracefulShutdown()
        try? await channel.close()
        if let createdPath { unlink(createdPath) }
        logger.notice("socket closed")
    }

    static func userID(_ name: String) -> UInt32? { getpwnam(name)?.pointee.pw_uid }

    /// Refuses to steal the socket of a running daemon; removes a stale socket file left by a crash.
    static func prepareSocketPath(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else {
            throw ServerError(message: "\(path) exists and is not a socket; refusing to replace it")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw ServerError(message: "socket path \(path) is longer than \(MemoryLayout.size(ofValue: address.sun_path) - 1) bytes")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (n, b) in bytes.enumerated() { raw[n] = b }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if connected == 0 {
            throw ServerError(message: "another process is already serving on \(path)")
        }
    }
}

/// One connection: decodes each line, answers it on the worker pool, and writes replies in request order.
final class ConnectionHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let responder: any RequestResponder
    private let pool: NIOThreadPool
    private let limits: RequestLimits
    private let client: Client
    private let logger: Logger
    /// Completes when the previous request's reply has been written (event-loop confined).
    private var tail: EventLoopFuture<Void>?

    init(responder: any RequestResponder, pool: NIOThreadPool, limits: RequestLimits, client: Client, logger: Logger) {
        self.responder = responder
        self.pool = pool
        self.limits = limits
        self.client = client
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        let bytes = Array(line.readableBytesView)
        // Blank lines are ignored (keep-alive friendly).
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return }
        let eventLoop = context.eventLoop
        let channel = context.channel
        let responder = self.responder
        let limits = self.limits
        let client = self.client
        let logger = self.logger
        let previous = tail ?? eventLoop.makeSucceededVoidFuture()
        let pool = self.pool
        let next = previous.flatMap { _ -> EventLoopFuture<[UInt8]> in
            pool.runIfActive(eventLoop: eventLoop) {
                ConnectionHandler.answer(bytes, responder: responder, limits: limits, client: client, logger: logger)
            }
        }.flatMap { reply -> EventLoopFuture<Void> in
            var buffer = channel.allocator.buffer(capacity: reply.count + 1)
            buffer.writeBytes(reply)
            buffer.writeInteger(UInt8(0x0A))
            return channel.writeAndFlush(buffer)
        }
        tail = next.flatMapErrorThrowing { _ in }  // a failed write (peer gone) must not block later replies
    }

    /// Decodes and answers one line; every failure becomes an error reply.
    static func answer(_ line: [UInt8], responder: any RequestResponder, limits: RequestLimits, client: Client, logger: Logger) -> [UInt8] {
        let decoded = RequestDecoder.decode(line: line, limits: limits)
        let reply: JSONValue
        switch decoded.result {
        case .failure(let error):
            logger.debug("bad request", metadata: ["error": "\(error)"])
            reply = Reply.failure(id: decoded.id, error)
        case .success(let request):
            do {
                reply = Reply.success(id: decoded.id, try responder.respond(to: request, from: client))
            } catch let error as WireError {
                reply = Reply.failure(id: decoded.id, error)
            } catch {
                logger.error("request failed", metadata: ["error": "\(error)"])
                reply = Reply.failure(id: decoded.id, WireError(.internal, "internal error; see the daemon's log"))
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        reply.write(to: &out)
        return out
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let tooLong = error as? LineTooLongError {
            var bytes: [UInt8] = []
            Reply.failure(id: .null, WireError(.requestTooLarge, "request line exceeds \(tooLong.limit) bytes; closing the connection")).write(to: &bytes)
            bytes.append(0x0A)
            var buffer = context.channel.allocator.buffer(capacity: bytes.count)
            buffer.writeBytes(bytes)
            let channel = context.channel
            let previous = tail ?? context.eventLoop.makeSucceededVoidFuture()
            previous.whenComplete { _ in
                channel.writeAndFlush(buffer).whenComplete { _ in channel.close(promise: nil) }
            }
            return
        }
        if let io = error as? IOError, io.errnoCode == ECONNRESET || io.errnoCode == EPIPE {
            context.close(promise: nil)
            return
        }
        logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }
}

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
    /// Time limits and backpressure of each connection.
    public var connection: ConnectionLimits

    public init(socketPath: String, socketMode: UInt32 = 0o660, socketGroup: String? = nil, socketOwner: String? = nil, inheritedSocket: Int32? = nil,
                maximumLineBytes: Int = 1 << 20, limits: RequestLimits = .init(), maximumConnections: Int = 256, workerThreads: Int = 4,
                connection: ConnectionLimits = .init()) {
        self.socketPath = socketPath
        self.socketMode = socketMode
        self.socketGroup = socketGroup
        self.socketOwner = socketOwner
        self.inheritedSocket = inheritedSocket
        self.maximumLineBytes = maximumLineBytes
        self.limits = limits
        self.maximumConnections = maximumConnections
        self.workerThreads = workerThreads
        self.connection = connection
    }
}

/// What one connection may cost: time limits, and bounds on what ragd holds for a client that sends faster than it
/// reads its replies.
public struct ConnectionLimits: Sendable {
    /// A request other than `sync` not answered this long after it arrived is answered `timeout`.
    public var requestTimeoutMs: Int
    /// A connection with no complete request, no reply written and no request being answered this long is closed.
    public var idleTimeoutSeconds: Int
    /// Requests received and not yet answered; at this many ragd stops reading the connection.
    public var maximumPipelinedRequests: Int
    /// High-water mark of the replies written and not yet read by the client; above it ragd answers nothing more on
    /// the connection (and so, soon, stops reading it) until the client has read half of them.
    public var maximumReplyBufferBytes: Int

    public init(requestTimeoutMs: Int = 10_000, idleTimeoutSeconds: Int = 300, maximumPipelinedRequests: Int = 64,
                maximumReplyBufferBytes: Int = 1 << 20) {
        self.requestTimeoutMs = requestTimeoutMs
        self.idleTimeoutSeconds = idleTimeoutSeconds
        self.maximumPipelinedRequests = maximumPipelinedRequests
        self.maximumReplyBufferBytes = maximumReplyBufferBytes
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
    private let onShutdown: @Sendable () -> Void
    private let metrics: ServerMetrics
    private let connections = Atomic<Int>(0)
    private let refusals = Atomic<Int>(0)

    /// `onShutdown` is called when graceful shutdown begins, before the server waits for the requests in flight: it
    /// should make requests that wait (`sync`) return.
    public init(configuration: ServerConfiguration, responder: any RequestResponder, logger: Logger, metrics: ServerMetrics = ServerMetrics(),
                onBound: @escaping @Sendable () -> Void = {}, onShutdown: @escaping @Sendable () -> Void = {}) {
        self.configuration = configuration
        self.metrics = metrics
        self.responder = responder
        self.logger = logger
        self.onBound = onBound
        self.onShutdown = onShutdown
    }

    public func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pool = NIOThreadPool(numberOfThreads: max(1, configuration.workerThreads))
        // `sync` waits (up to its timeout_ms) for the indexer, and `backup` copies the index; they get threads of their
        // own so that waiting clients never hold the threads searches run on.
        let syncPool = NIOThreadPool(numberOfThreads: max(1, configuration.workerThreads))
        pool.start()
        syncPool.start()
        // The pools stop first: work that completes hops to the event loop, which must still be running then.
        func shutdown() async {
            try? await pool.shutdownGracefully()
            try? await syncPool.shutdownGracefully()
            try? await group.shutdownGracefully()
        }
        do {
            try await serve(group: group, pools: ConnectionHandler.Pools(work: pool, sync: syncPool))
        } catch {
            await shutdown()
            throw error
        }
        await shutdown()
    }

    private func serve(group: MultiThreadedEventLoopGroup, pools: ConnectionHandler.Pools) async throws {
        let configuration = self.configuration
        let responder = self.responder
        let logger = self.logger
        let metrics = self.metrics
        let highWater = max(1, configuration.connection.maximumReplyBufferBytes)
        let acceptFailures = Atomic<Int>(0)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: Int32(clamping: min(4096, max(256, configuration.maximumConnections))))
            // Accept bursts of connections in one go; connections over the limit are refused at once, so they cost little.
            .serverChannelOption(ChannelOptions.maxMessagesPerRead, value: 64)
            .serverChannelInitializer { channel in
                // Out of file descriptors: pause accepting for 100 ms rather than spinning on a pending connection.
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptBackoffHandler(shouldForwardIOErrorCaught: false) { error in
                        if acceptFailures.wrappingAdd(1, ordering: .relaxed).oldValue % 100 == 0 {
                            logger.warning("cannot accept a connection; retrying in 100 ms", metadata: ["error": "\(error)"])
                        }
                        return .milliseconds(100)
                    })
                }
            }
            .childChannelOption(ChannelOptions.writeBufferWaterMark, value: .init(low: highWater / 2, high: highWater))
            .childChannelInitializer { [self] channel in
                let active = connections.wrappingAdd(1, ordering: .relaxed).newValue
                channel.closeFuture.whenComplete { _ in self.connections.wrappingSubtract(1, ordering: .relaxed) }
                if active > configuration.maximumConnections {
                    // Logged once per 1,000 refusals, so that a flood of connections cannot flood the log.
                    let refused = refusals.wrappingAdd(1, ordering: .relaxed).oldValue
                    if refused % 1000 == 0 {
                        logger.warning("refusing connections over the limit", metadata: ["limit": "\(configuration.maximumConnections)",
                                                                                        "refused.total": "\(refused + 1)"])
                    }
                    // Answered once the channel is active (a write in the initializer would wait for that forever).
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(RefusingHandler(limit: configuration.maximumConnections, metrics: metrics))
                    }
                }
                return PeerCredentials.read(channel).flatMapThrowing { client in
                    guard let client else {
                        logger.warning("refusing a connection whose credentials the kernel did not report")
                        channel.close(promise: nil)
                        return
                    }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFramer(maximumLineBytes: configuration.maximumLineBytes)))
                    try channel.pipeline.syncOperations.addHandler(ConnectionHandler(responder: responder, pools: pools, limits: configuration.limits,
                                                                                     connection: configuration.connection, client: client,
                                                                                     maximumLineBytes: configuration.maximumLineBytes, logger: logger,
                                                                                     metrics: metrics))
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
        onShutdown()
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

/// A connection over `max_connections`: answered `unavailable` as soon as it is active, then closed; nothing it
/// sends is read.
final class RefusingHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let limit: Int
    let metrics: ServerMetrics
    init(limit: Int, metrics: ServerMetrics) {
        self.limit = limit
        self.metrics = metrics
    }

    func channelActive(context: ChannelHandlerContext) {
        metrics.failed(.unavailable)
        var bytes: [UInt8] = []
        Reply.failure(id: .null, WireError(.unavailable, "too many connections (limit \(limit))")).write(to: &bytes)
        bytes.append(0x0A)
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// One connection: queues each line, answers one request at a time on a worker thread, and writes the replies in
/// request order. Bounded: at `maximumPipelinedRequests` unanswered requests it stops reading the socket; while the
/// replies the client has not read exceed the write buffer's high-water mark it answers nothing more (so it soon
/// stops reading too); a request not answered within the time limit is answered `timeout`; an idle connection is
/// closed; when the peer goes away, queued requests are dropped and a reply being computed is discarded.
/// Event-loop confined, except the closures run on the worker pools, which only see `Sendable` values.
final class ConnectionHandler: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The worker threads: `work` answers requests, `sync` waits for the indexer and makes backups.
    struct Pools: Sendable {
        let work: NIOThreadPool
        let sync: NIOThreadPool
    }

    private struct Queued {
        let line: [UInt8]
        let received: NIODeadline
    }

    private let responder: any RequestResponder
    private let pools: Pools
    private let limits: RequestLimits
    private let connection: ConnectionLimits
    private let client: Client
    private let maximumLineBytes: Int
    private let requestTimeout: TimeAmount
    private let idleTimeout: TimeAmount
    private let logger: Logger
    private let metrics: ServerMetrics

    private var context: ChannelHandlerContext?
    /// Lines received and not yet started, oldest first.
    private var queue = CircularBuffer<Queued>()
    private var queuedBytes = 0
    /// The request started last has not been answered yet.
    private var replyPending = false
    /// A worker is still on the request started last (possibly after its `timeout` reply): the next waits for it, so
    /// one connection never occupies more than one worker.
    private var workerBusy = false
    /// A `read` was held back because the connection is over its limits.
    private var readHeld = false
    /// The last complete request received or reply written.
    private var lastActivity = NIODeadline.now()
    private var idleCheck: Scheduled<Void>?
    /// A line over the limit arrived: answer `request_too_large` after the earlier replies, then close.
    private var lineTooLong: Int?
    /// Counts started requests, so that a timer that was already due when its request completed cannot answer the next.
    private var started = 0

    init(responder: any RequestResponder, pools: Pools, limits: RequestLimits, connection: ConnectionLimits, client: Client,
         maximumLineBytes: Int, logger: Logger, metrics: ServerMetrics = ServerMetrics()) {
        self.responder = responder
        self.pools = pools
        self.limits = limits
        self.connection = connection
        self.client = client
        self.maximumLineBytes = maximumLineBytes
        self.requestTimeout = .milliseconds(Int64(max(1, connection.requestTimeoutMs)))
        self.idleTimeout = .seconds(Int64(max(1, connection.idleTimeoutSeconds)))
        self.logger = logger
        self.metrics = metrics
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        lastActivity = .now()
        if context.channel.isActive { armIdleCheck(after: idleTimeout) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleCheck?.cancel()
        idleCheck = nil
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        lastActivity = .now()
        if idleCheck == nil { armIdleCheck(after: idleTimeout) }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleCheck?.cancel()
        idleCheck = nil
        let unanswered = queue.count + (replyPending ? 1 : 0)
        if unanswered > 0 {
            logger.debug("connection closed with requests unanswered; dropping them", metadata: ["requests": "\(unanswered)"])
        }
        queue.removeAll()
        queuedBytes = 0
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        // Blank lines are ignored (keep-alive friendly).
        if line.readableBytesView.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return }
        let now = NIODeadline.now()
        lastActivity = now
        queue.append(Queued(line: Array(line.readableBytesView), received: now))
        queuedBytes += line.readableBytes
        drain()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { drain() }
        context.fireChannelWritabilityChanged()
    }

    /// Holds reads back while the connection is over its limits (NIO asks again after every read with autoRead).
    func read(context: ChannelHandlerContext) {
        if overLimits {
            readHeld = true
        } else {
            context.read()
        }
    }

    private var overLimits: Bool {
        lineTooLong != nil || queue.count + (replyPending ? 1 : 0) >= connection.maximumPipelinedRequests || queuedBytes >= maximumLineBytes
    }

    /// Starts the next request when the previous one is answered, its worker free and the client reading its replies;
    /// resumes reading when back under the limits.
    private func drain() {
        guard let context else { return }
        while !replyPending, !workerBusy, context.channel.isWritable, let next = queue.popFirst() {
            queuedBytes -= next.line.count
            let decoded = RequestDecoder.decode(line: next.line, limits: limits)
            switch decoded.result {
            case .failure(let error):
                logger.debug("bad request", metadata: ["error": "\(error)"])
                write(failure: error, id: decoded.id)
            case .success(let request):
                switch request {
                case .sync, .backup:
                    start(request, id: decoded.id, received: next.received, deadline: nil, on: pools.sync)
                default:
                    let deadline = next.received + requestTimeout
                    if NIODeadline.now() >= deadline {
                        write(failure: timeoutError, id: decoded.id)
                    } else {
                        start(request, id: decoded.id, received: next.received, deadline: deadline, on: pools.work)
                    }
                }
            }
        }
        if let limit = lineTooLong, queue.isEmpty, !replyPending {
            lineTooLong = nil
            let channel = context.channel
            write(failure: WireError(.requestTooLarge, "request line exceeds \(limit) bytes; closing the connection"), id: .null)?.whenComplete { _ in
                channel.close(promise: nil)
            }
            return
        }
        if readHeld && !overLimits {
            readHeld = false
            context.read()
        }
    }

    /// Answers `request` on `pool`. With a deadline, the client gets `timeout` when it passes: the work itself cannot
    /// be interrupted, but its result is then discarded, and work that has not started by the deadline is skipped.
    private func start(_ request: Request, id: JSONValue, received: NIODeadline, deadline: NIODeadline?, on pool: NIOThreadPool) {
        guard let context else { return }
        replyPending = true
        workerBusy = true
        started += 1
        let number = started
        let channel = context.channel
        let responder = self.responder
        let client = self.client
        let logger = self.logger
        let timeoutMs = connection.requestTimeoutMs
        // The reply is serialised on the worker too, to keep the event loop free for accepting and framing.
        let work = pool.runIfActive(eventLoop: context.eventLoop) { () -> Answer? in
            // The peer is gone: nobody will read the reply.
            guard channel.isActive else { return nil }
            let answer: Answer
            if let deadline, NIODeadline.now() >= deadline {
                let error = ConnectionHandler.timeoutError(ms: timeoutMs)
                answer = Answer(reply: Reply.failure(id: id, error), outcome: .failed(error.code))
            } else if case .sync(let timeout, let vectors) = request {
                // A sync's timeout counts from its arrival, time spent waiting for a thread included.
                let waited = Double((NIODeadline.now() - received).nanoseconds) / 1e9
                answer = ConnectionHandler.answer(.sync(timeout: max(0, timeout - waited), vectors: vectors), id: id, responder: responder, client: client, logger: logger)
            } else {
                answer = ConnectionHandler.answer(request, id: id, responder: responder, client: client, logger: logger)
            }
            return answer
        }
        let timer = deadline.map { deadline in
            context.eventLoop.scheduleTask(deadline: deadline) { [self] in
                guard replyPending, started == number else { return }
                replyPending = false
                logger.debug("request timed out", metadata: ["request.id": "\(id.serialized())", "limit.ms": "\(timeoutMs)"])
                write(failure: timeoutError, id: id)
                drain()
            }
        }
        work.whenComplete { [self] result in
            timer?.cancel()
            workerBusy = false
            if replyPending {
                replyPending = false
                switch result {
                case .success(let answer?):
                    record(answer.outcome)
                    write(line: answer.line)
                case .success(nil):
                    break
                case .failure(let error):
                    // The pool is shutting down.
                    write(failure: WireError(.unavailable, "ragd is stopping: \(error)"), id: id)
                }
            }
            drain()
        }
    }

    /// How a request ended, for the metrics: a search answered (with its mode and time), another op answered, or
    /// an error.
    enum Outcome: Sendable {
        case searched(SearchMode, nanoseconds: Int64)
        case answered
        case failed(WireErrorCode)
    }

    /// A reply line (serialised on the worker, to keep the event loop free for accepting and framing) and its outcome.
    struct Answer: Sendable {
        let line: [UInt8]
        let outcome: Outcome
        init(reply: JSONValue, outcome: Outcome) {
            line = ConnectionHandler.line(reply)
            self.outcome = outcome
        }
    }

    /// Answers one decoded request; every failure becomes an error reply.
    static func answer(_ request: Request, id: JSONValue, responder: any RequestResponder, client: Client, logger: Logger) -> Answer {
        let started = NIODeadline.now()
        do {
            let reply = Reply.success(id: id, try responder.respond(to: request, from: client))
            if case .search(let search) = request {
                return Answer(reply: reply, outcome: .searched(search.mode, nanoseconds: (NIODeadline.now() - started).nanoseconds))
            }
            return Answer(reply: reply, outcome: .answered)
        } catch let error as WireError {
            return Answer(reply: Reply.failure(id: id, error), outcome: .failed(error.code))
        } catch {
            logger.error("request failed", metadata: ["error": "\(error)"])
            return Answer(reply: Reply.failure(id: id, WireError(.internal, "internal error; see the daemon's log")), outcome: .failed(.internal))
        }
    }

    private func record(_ outcome: Outcome) {
        switch outcome {
        case .searched(let mode, let nanoseconds): metrics.searched(mode, nanoseconds: nanoseconds)
        case .answered: break
        case .failed(let code): metrics.failed(code)
        }
    }

    static func timeoutError(ms: Int) -> WireError {
        WireError(.timeout, "not answered within \(ms) ms (limits.request_timeout_ms)")
    }

    private var timeoutError: WireError { ConnectionHandler.timeoutError(ms: connection.requestTimeoutMs) }

    /// Writes an error reply and counts it.
    @discardableResult
    private func write(failure error: WireError, id: JSONValue) -> EventLoopFuture<Void>? {
        metrics.failed(error.code)
        return write(Reply.failure(id: id, error))
    }

    /// `reply` serialised, with its newline.
    static func line(_ reply: JSONValue) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(1024)
        reply.write(to: &bytes)
        bytes.append(0x0A)
        return bytes
    }

    @discardableResult
    private func write(_ reply: JSONValue) -> EventLoopFuture<Void>? {
        write(line: ConnectionHandler.line(reply))
    }

    /// Writes one reply line; a completed write counts as activity.
    @discardableResult
    private func write(line bytes: [UInt8]) -> EventLoopFuture<Void>? {
        guard let context else { return nil }
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        let promise = context.eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenSuccess { [self] in lastActivity = .now() }
        context.writeAndFlush(wrapOutboundOut(buffer), promise: promise)
        return promise.futureResult
    }

    /// Closes the connection once nothing has happened on it for the idle time; a request being answered (a long
    /// `sync`, say) keeps it open.
    private func armIdleCheck(after delay: TimeAmount) {
        guard let context else { return }
        idleCheck = context.eventLoop.scheduleTask(in: delay) { [self] in
            guard let context = self.context else { return }
            if workerBusy {
                armIdleCheck(after: idleTimeout)
                return
            }
            let idle = NIODeadline.now() - lastActivity
            if idle >= idleTimeout {
                logger.debug("closing an idle connection", metadata: ["idle.seconds": "\(connection.idleTimeoutSeconds)"])
                idleCheck = nil
                context.close(promise: nil)
            } else {
                armIdleCheck(after: idleTimeout - idle)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let tooLong = error as? LineTooLongError {
            lineTooLong = tooLong.limit
            drain()
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

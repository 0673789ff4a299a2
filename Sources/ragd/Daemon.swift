import ArgumentParser
import Dispatch
import Glibc
import Logging
import NIOPosix
import RagConfig
import RagCore
import RagIngest
import RagProtocol
import RagQuery
import RagServer
import RagStore
import RagSystemd
import ServiceLifecycle
import UnixSignals

/// The ragd version, reported by `--version` and `status`.
let ragdVersion = "0.1.0"

@main
struct Daemon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ragd",
        abstract: "Keeps a documentation knowledge base indexed and answers retrieval queries over a Unix socket.",
        discussion: """
            ragd indexes the documentation folders given by --source (or the [[source]] tables of the configuration \
            file) into an LMDB index in --state-dir, keeps it in line with the disk, and answers newline-delimited \
            JSON requests (search, status, get, ping) on --socket. It runs in the foreground; SIGTERM or SIGINT stop \
            it cleanly. Flags override the configuration file. See docs/protocol.md for the protocol.
            """,
        version: ragdVersion)

    @Option(name: .long, help: ArgumentHelp("A documentation folder to index (repeatable); replaces the configured sources.", valueName: "dir"))
    var source: [String] = []

    @Option(name: .long, help: ArgumentHelp("Folder for the index and lock file (overrides state_dir).", valueName: "dir"))
    var stateDir: String?

    @Option(name: .long, help: ArgumentHelp("Path of the Unix socket to serve on (overrides socket.path).", valueName: "path"))
    var socket: String?

    @Option(name: .long, help: ArgumentHelp("TOML configuration file (default: $CONFIGURATION_DIRECTORY/ragd.toml when set).", valueName: "file"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error, critical (overrides log_level).", valueName: "level"))
    var logLevel: String?

    @Flag(name: .long, help: "Delete the index and rebuild it from the sources (needed after an incompatible upgrade).")
    var rebuildIndex = false

    func run() async throws {
        let settings: DaemonConfiguration
        do {
            settings = try resolvedConfiguration()
        } catch let error as ConfigError {
            printError("\(error)")
            throw ExitCode(78)  // EX_CONFIG
        } catch let error as ValidationError {
            printError(error.message)
            throw ExitCode(64)  // EX_USAGE
        }
        let level = Logger.Level(rawValue: settings.logLevel) ?? .info
        let journal = Systemd.stderrIsJournal
        LoggingSystem.bootstrap { label in
            if journal {
                var handler = JournaldLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
            var handler = StderrLogHandler(label: label, journal: journal)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "ragd")
        do {
            try await serve(settings, logger: logger)
        } catch let error as ExitCode {
            throw error
        } catch {
            logger.critical("ragd cannot run", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
    }

    /// The configuration file (if any) with the command-line flags applied on top.
    func resolvedConfiguration() throws -> DaemonConfiguration {
        var settings: DaemonConfiguration
        if let config {
            settings = try DaemonConfiguration.load(path: config)
        } else if let dir = getenv("CONFIGURATION_DIRECTORY").map({ String(cString: $0) }), access(dir + "/ragd.toml", R_OK) == 0 {
            settings = try DaemonConfiguration.load(path: dir + "/ragd.toml")
        } else {
            settings = DaemonConfiguration()
        }
        if !source.isEmpty {
            settings.sources = try source.map { SourceSettings(path: try absolutePath($0)) }
        }
        if let stateDir { settings.stateDirectory = try absolutePath(stateDir) }
        if let socket { settings.socket.path = try absolutePath(socket) }
        if let logLevel {
            guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown log level '\(logLevel)'") }
            settings.logLevel = logLevel
        }
        guard !settings.sources.isEmpty else {
            throw ValidationError("no sources: give --source DIR or [[source]] tables in the configuration file")
        }
        return settings
    }

    func absolutePath(_ path: String) throws -> String {
        if path.hasPrefix("/") { return normalize(path) }
        guard let cwd = getcwd(nil, 0) else { throw ValidationError("cannot resolve \(path): no working directory") }
        defer { free(cwd) }
        return normalize(String(cString: cwd) + "/" + path)
    }

    func normalize(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/") {
            if part == "." || part.isEmpty { continue }
            if part == ".." { _ = parts.popLast(); continue }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    func serve(_ settings: DaemonConfiguration, logger: Logger) async throws {
        let started = DispatchTime.now()
        try makeDirectories(settings.stateDirectory, mode: 0o700)
        let lock = try StateLock(directory: settings.stateDirectory)
        defer { withExtendedLifetime(lock) {} }
        let indexDirectory = settings.stateDirectory + "/index"
        if rebuildIndex {
            logger.notice("deleting the index for a rebuild", metadata: ["index.path": "\(indexDirectory)"])
            unlink(indexDirectory + "/data.mdb")
            unlink(indexDirectory + "/lock.mdb")
        }
        let store = try Store(directory: indexDirectory, configuration: StoreConfiguration(mapSize: settings.index.mapSizeMB << 20))
        let counts = store.counts
        logger.notice("index open", metadata: ["index.path": "\(indexDirectory)", "files": "\(counts.files)", "chunks": "\(counts.chunks)"])

        let sources = settings.sources.map {
            SourceSpec(root: $0.path, include: $0.include, exclude: $0.exclude, followSymlinks: $0.followSymlinks, skipHidden: $0.skipHidden)
        }
        for source in sources where access(source.root, R_OK | X_OK) != 0 {
            logger.warning("source folder is not readable now; it will be scanned when it is", metadata: ["source.path": "\(source.root)", "error": "\(String(cString: strerror(errno)))"])
        }
        let indexer = Indexer(store: store, configuration: IndexerConfiguration(
            sources: sources,
            chunking: ChunkingConfiguration(targetTokens: settings.chunking.targetTokens, maxTokens: settings.chunking.maxTokens,
                                            overlapTokens: settings.chunking.overlapTokens),
            maxFileBytes: UInt64(settings.limits.maxFileBytes)), logger: logger)
        let searcher = Searcher(store: store, parameters: BM25Parameters(k1: settings.bm25.k1, b: settings.bm25.b))
        let sourceRoots = sources.map(\.root)
        let responder = IndexResponder(searcher: searcher) {
            let status = indexer.status
            let perSource: [JSONValue] = store.withChunkTable { table in
                var files = [Int](repeating: 0, count: sourceRoots.count)
                var chunks = [Int](repeating: 0, count: sourceRoots.count)
                for info in table.files.values {
                    if let n = sourceRoots.firstIndex(where: { info.path.hasPrefix($0 + "/") }) {
                        files[n] += 1
                        chunks[n] += info.chunks
                    }
                }
                return sourceRoots.indices.map { n in
                    .object([("path", .string(sourceRoots[n])), ("files", .int(Int64(files[n]))), ("chunks", .int(Int64(chunks[n])))])
                }
            }
            let counts = store.counts
            let uptime = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
            return [
                ("state", .string(status.state.rawValue)),
                ("pending", .int(Int64(status.pending))),
                ("files", .int(Int64(counts.files))),
                ("chunks", .int(Int64(counts.chunks))),
                ("progress", .object([("done", .int(Int64(status.done))), ("total", .int(Int64(status.total)))])),
                ("sources", .array(perSource)),
                ("skipped", .object([("binary", .int(Int64(status.skippedBinary))), ("too_large", .int(Int64(status.skippedTooLarge))),
                                     ("unreadable", .int(Int64(status.unreadable)))])),
                ("scans", .int(Int64(status.scans))),
                ("last_scan_s", .double((status.lastScanSeconds * 1000).rounded() / 1000)),
                ("modes", ["bm25"]),
                ("index_path", .string(indexDirectory)),
                ("version", .string(ragdVersion)),
                ("protocol", .int(Int64(ragProtocolVersion))),
                ("uptime_s", .double((uptime * 10).rounded() / 10)),
            ]
        }
        let inherited = Systemd.inheritedListeningSocket()
        let server = SocketServer(
            configuration: ServerConfiguration(
                socketPath: settings.socket.path, socketMode: settings.socket.mode, socketGroup: settings.socket.group,
                inheritedSocket: inherited, maximumLineBytes: settings.limits.maxRequestBytes,
                limits: RequestLimits(maxK: settings.limits.maxK, maxQueryBytes: settings.limits.maxQueryBytes),
                maximumConnections: settings.limits.maxConnections),
            responder: responder, logger: logger,
            onBound: { Systemd.notify("READY=1") })
        if inherited == nil {
            try makeDirectories(parentFolder(of: settings.socket.path), mode: 0o755)
        }
        let indexerService = IndexerService(indexer: indexer, rescanInterval: settings.index.rescanIntervalSeconds, logger: logger)
        // Last, so that it is the first told of a graceful shutdown and sends STOPPING=1 at once.
        let watchdog = WatchdogService(logger: logger, probe: { (try? store.withSnapshot { _ in true }) ?? false })
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: indexerService), .init(service: server), .init(service: watchdog)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        // Sent before the indexer runs, so its STATUS=ready always comes later, whenever the socket is bound.
        Systemd.notify("STATUS=reconciling the index")
        try await group.run()
        Systemd.notify("STOPPING=1")
        logger.notice("stopped")
    }

    func parentFolder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    func makeDirectories(_ path: String, mode: mode_t) throws {
        var current = ""
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, mode) != 0 && errno != EEXIST {
                throw ServerError(message: "cannot create \(current): \(String(cString: strerror(errno)))")
            }
        }
    }
}

func printError(_ message: String) {
    var line = "ragd: error: \(message)\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

/// An exclusive `flock` on `<state>/ragd.lock`: two daemons never share one index.
final class StateLock {
    let fd: Int32
    init(directory: String) throws {
        let path = directory + "/ragd.lock"
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ServerError(message: "cannot open \(path): \(String(cString: strerror(errno)))") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            close(fd)
            throw ServerError(message: "another ragd is using the state directory \(directory)")
        }
    }
    deinit { close(fd) }
}

/// Runs reconciliation passes on a dedicated thread: one at start-up, then every `rescanInterval` seconds.
/// On graceful shutdown the pass in flight stops after its current transaction commits.
struct IndexerService: Service {
    let indexer: Indexer
    let rescanInterval: Int
    let logger: Logger

    func run() async throws {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        defer { pool.shutdownGracefully { _ in } }
        try await withGracefulShutdownHandler {
            var first = true
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                do {
                    try await pool.runIfActive { try indexer.reconcile() }
                    let counts = indexer.store.counts
                    if !Task.isShuttingDownGracefully {
                        Systemd.notify("STATUS=ready; \(counts.files) files, \(counts.chunks) chunks")
                    }
                    if first {
                        logger.notice("index ready", metadata: ["files": "\(counts.files)", "chunks": "\(counts.chunks)",
                                                                "scan.seconds": "\(indexer.status.lastScanSeconds)"])
                    }
                } catch {
                    logger.error("reconciliation failed; retrying at the next scan", metadata: ["error": "\(error)"])
                }
                first = false
                if Task.isShuttingDownGracefully { break }
                if rescanInterval > 0 {
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(rescanInterval)) }
                } else {
                    try? await gracefulShutdown()
                }
            }
        } onGracefulShutdown: {
            indexer.requestStop()
        }
    }
}

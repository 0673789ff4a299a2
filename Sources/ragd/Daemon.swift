import ArgumentParser
import Dispatch
import Foundation
import Glibc
import Logging
import Metrics
import NIOPosix
import Prometheus
import RagConfig
import RagCore
import RagIngest
import RagProtocol
import RagQuery
import RagServer
import RagStore
import RagSystemd
import ServiceLifecycle
import Synchronization
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
            JSON requests (search, status, sources, get, files, sync, reindex, ping) on --socket. It runs in the \
            foreground and logs to stderr (to the journal under systemd). Flags override the configuration file. \
            ragctl(1) is its command-line client; docs/protocol.md describes the protocol.

            Signals:
              SIGTERM, SIGINT  stop cleanly: the write in flight commits, the socket goes
              SIGHUP           re-read the configuration: sources, access, log level

            Environment:
              CONFIGURATION_DIRECTORY  its ragd.toml is read when --config is not given
              RAGD_MODEL               a model folder to try before the default places
              NOTIFY_SOCKET, LISTEN_FDS  systemd readiness and socket activation

            Files:
              /etc/ragd/ragd.toml  the configuration under systemd
              /run/ragd/ragd.sock  the default socket

            Exit status:
              0   stopped cleanly (SIGTERM or SIGINT)
              1   could not run (the log says why)
              64  usage error (bad flag or value, no sources)
              78  bad configuration file (the message names file, line and key)
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

    @Option(name: .long, help: ArgumentHelp("Sentence-transformers model folder for dense and hybrid search (overrides [model] path).", valueName: "dir"))
    var model: String?

    @Option(name: .long, help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error, critical (overrides log_level).", valueName: "level"))
    var logLevel: String?

    @Flag(name: .long, help: "Delete the index and rebuild it from the sources (needed after an incompatible upgrade).")
    var rebuildIndex = false

    func run() async throws {
        HeapPolicy.configure()
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
        LogLevelControl.set(level)
        LoggingSystem.bootstrap { label in
            if journal {
                var handler = JournaldLogHandler(label: label)
                handler.logLevel = level
                handler.levelProvider = { LogLevelControl.level }
                return handler
            }
            return StderrLogHandler(label: label, journal: journal)
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
        if let model { settings.model.path = try absolutePath(model) }
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
        let registry = PrometheusCollectorRegistry()
        let metricsFactory = Daemon.metricsFactory(registry)
        MetricsSystem.bootstrap(metricsFactory)
        let ingestMetrics = IngestMetrics(factory: metricsFactory)
        try makeDirectories(settings.stateDirectory, mode: 0o700)
        let lock = try StateLock(directory: settings.stateDirectory)
        defer { withExtendedLifetime(lock) {} }
        let indexDirectory = settings.stateDirectory + "/index"
        if rebuildIndex {
            logger.notice("deleting the index for a rebuild", metadata: ["index.path": "\(indexDirectory)"])
            unlink(indexDirectory + "/data.mdb")
            unlink(indexDirectory + "/lock.mdb")
        }
        let store = try Store(directory: indexDirectory, configuration: StoreConfiguration(
            mapSize: settings.index.mapSizeMB << 20, maxMapSize: settings.index.maxMapSizeMB << 20,
            embeddingCacheOrphans: settings.index.embeddingCacheOrphans,
            onMapResize: { from, to in
                logger.notice("index map grown", metadata: ["map.from_mb": "\(from >> 20)", "map.to_mb": "\(to >> 20)",
                                                            "map.max_mb": "\(settings.index.maxMapSizeMB)"])
            }))
        let counts = store.counts
        logger.notice("index open", metadata: ["index.path": "\(indexDirectory)", "files": "\(counts.files)", "chunks": "\(counts.chunks)"])

        let sources = settings.sources.map {
            SourceSpec(root: $0.path, include: $0.include, exclude: $0.exclude, followSymlinks: $0.followSymlinks, skipHidden: $0.skipHidden)
        }
        // A missing or unreadable source folder is reported (once) by the first scan.
        let indexer = Indexer(store: store, configuration: IndexerConfiguration(
            sources: sources,
            chunking: ChunkingConfiguration(targetTokens: settings.chunking.targetTokens, maxTokens: settings.chunking.maxTokens,
                                            overlapTokens: settings.chunking.overlapTokens),
            maxFileBytes: UInt64(settings.limits.maxFileBytes)), logger: logger)
        let sink = EventSink()
        let watcher: Watcher?
        do {
            watcher = try Watcher(sources: sources, logger: logger, metrics: ingestMetrics) { events in sink.deliver(events) }
        } catch {
            watcher = nil
            logger.error("cannot watch the sources; changes are picked up by the periodic rescan only", metadata: ["error": "\(error)"])
        }
        let embeddings = Embeddings(store: store)
        let firstPassLogged = Atomic<Bool>(false)
        let loop = IngestLoop(indexer: indexer, watcher: watcher,
                              configuration: .init(rescanInterval: settings.index.rescanIntervalSeconds), logger: logger,
                              metrics: ingestMetrics) { status in
            embeddings.worker?.wake()
            embeddings.reportStatus()
            HeapPolicy.trimIfDue()
            if status.scans == 1 && firstPassLogged.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged {
                let counts = store.counts
                logger.notice("index ready", metadata: ["files": "\(counts.files)", "chunks": "\(counts.chunks)",
                                                        "scan.seconds": "\((status.lastScanSeconds * 1000).rounded() / 1000)"])
            }
        }
        sink.target.withLock { $0 = loop }
        let searcher = Searcher(store: store, parameters: BM25Parameters(k1: settings.bm25.k1, b: settings.bm25.b),
                                embedder: nil, queryCacheSize: settings.model.queryCache)
        embeddings.setIngestFault { let fault = loop.fault; return fault.blocked ? fault.lastError : nil }
        embeddings.setIngestStarting { indexer.status.state == .starting }
        /// The sources `view` may see, with their file and chunk counts.
        let visibleSources: @Sendable (AccessView) -> [JSONValue] = { view in
            let sourceRoots = indexer.configuration.sources.map(\.root).filter(view.showsSource)
            return store.withChunkTable { table in
                var files = [Int](repeating: 0, count: sourceRoots.count)
                var chunks = [Int](repeating: 0, count: sourceRoots.count)
                for info in table.files.values {
                    if let n = sourceRoots.firstIndex(where: { info.path.hasPrefix($0 + "/") }) {
                        files[n] += 1
                        chunks[n] += info.chunks
                    }
                }
                return sourceRoots.indices.map { n in
                    .object([("path", .string(sourceRoots[n])), ("files", .int(Int64(files[n]))), ("chunks", .int(Int64(chunks[n])))]
                            + Daemon.watchFields(root: sourceRoots[n], watcher: watcher))
                }
            }
        }
        var responder = IndexResponder(searcher: searcher, sync: { timeout, vectors in
            let deadline = Date().addingTimeInterval(timeout)
            guard loop.sync(timeout: timeout) else { return false }
            return !vectors || embeddings.waitUntilCaughtUp(timeout: max(0, deadline.timeIntervalSinceNow))
        }) { view in
            let status = indexer.status
            let watch = watcher?.status
            let perSource = visibleSources(view)
            var counts = store.counts
            if !view.hiddenRoots.isEmpty {
                // Totals without the hidden sources' files, so the counts do not betray them.
                counts = store.withChunkTable { table in
                    var files = 0, chunks = 0
                    for info in table.files.values where !view.hiddenRoots.contains(where: { info.path.hasPrefix($0 + "/") }) {
                        files += 1
                        chunks += info.chunks
                    }
                    return (files, chunks)
                }
            }
            let embeddingsPending = embeddings.pending
            let embedded = store.embeddingCounts.embedded
            let phase = embeddings.phase
            let pending = loop.pending + embeddingsPending
            let state: IndexerStatus.State = status.state == .starting ? .starting : (pending > 0 ? .indexing : .ready)
            let uptime = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
            let fault = loop.fault
            let map = store.mapUsage
            let fields: [(String, JSONValue)] = [
                ("state", .string(state.rawValue)),
                ("pending", .int(Int64(pending))),
                ("ingest_blocked", .bool(fault.blocked)),
                ("last_error", fault.lastError.map { .string($0) } ?? .null),
                ("ingest_retries", .int(Int64(fault.failures))),
                ("index_map", .object([("size_mb", .int(Int64(map.size >> 20))), ("max_mb", .int(Int64(map.maximum >> 20))),
                                       ("used_mb", .double((Double(map.used) / 1048576 * 10).rounded() / 10))])),
                ("files", .int(Int64(counts.files))),
                ("chunks", .int(Int64(counts.chunks))),
                ("progress", Daemon.progressFields(status)),
                ("sources", .array(perSource)),
                ("watch", .object([
                    ("enabled", .bool(watcher != nil)),
                    ("folders", .int(Int64(watch?.watchedFolders ?? 0))),
                    ("unwatched_folders", .int(Int64(watch?.unwatchedFolders ?? 0))),
                    ("limit_reached", .bool(watch?.limitReached ?? false)),
                    ("overflows", .int(Int64(watch?.overflows ?? 0))),
                ])),
                ("skipped", .object([("binary", .int(Int64(status.skippedBinary))), ("too_large", .int(Int64(status.skippedTooLarge))),
                                     ("unreadable", .int(Int64(status.unreadable)))])),
                ("scans", .int(Int64(status.scans))),
                ("last_scan_s", .double((status.lastScanSeconds * 1000).rounded() / 1000)),
                ("modes", searcher.embedder == nil ? ["bm25"] : ["bm25", "dense", "hybrid"]),
                ("embeddings", .object([
                    ("model", phase.embedder.map { .string($0.modelID) } ?? .null),
                    ("dimensions", .int(Int64(phase.embedder?.dimensions ?? 0))),
                    ("embedded", .int(Int64(embedded))),
                    ("pending", .int(Int64(embeddingsPending))),
                    ("total", .int(Int64(embedded + embeddingsPending))),
                    ("rate", phase.worker?.rate.map { .double(($0 * 10).rounded() / 10) } ?? .null),
                    ("state", .string(phase.state(pending: embeddingsPending))),
                    ("reason", phase.reason.map { .string($0) } ?? .null),
                ])),
                ("since_start", Daemon.sinceStartFields(status.written, vectors: phase.worker?.embedded ?? 0)),
                ("index_path", .string(indexDirectory)),
                ("version", .string(ragdVersion)),
                ("protocol", .int(Int64(ragProtocolVersion))),
                ("uptime_s", .double((uptime * 10).rounded() / 10)),
            ]
            return view.hiddenRoots.isEmpty ? fields : Daemon.withoutDaemonWideFigures(fields)
        }
        responder.defaultFusion = settings.search.fusion == "weighted" ? .weighted(denseWeight: settings.search.denseWeight)
            : .reciprocalRank(k: settings.search.rrfK)
        responder.sources = visibleSources
        responder.reindex = { path, view in try Daemon.reindex(path, view: view, indexer: indexer, loop: loop, store: store) }
        responder.access.current = Daemon.accessPolicy(settings)
        responder.logger = logger
        responder.ingestBlocked = { let fault = loop.fault; return fault.blocked ? fault.lastError ?? "unknown error" : nil }
        responder.stopping = { loop.waitersAreReleased }
        responder.denseUnavailable = { embeddings.phase.reason ?? (embeddings.phase.loading ? "the embedding model is still loading" : nil) }
        let gauges = IndexGauges(factory: metricsFactory)
        responder.metrics = {
            // Gauges are read when asked for; counters and histograms are updated as things happen.
            let counts = store.counts
            gauges.files.record(counts.files)
            gauges.chunks.record(counts.chunks)
            gauges.bytes.record(Int64(clamping: store.indexedBytes))
            gauges.embeddingsPending.record(embeddings.pending)
            return registry.emitToString()
        }
        let access = responder.access
        let inherited = Systemd.inheritedListeningSocket()
        let maximumConnections = OpenFileLimit.connectionLimit(configured: settings.limits.maxConnections, logger: logger)
        let server = SocketServer(
            configuration: ServerConfiguration(
                socketPath: settings.socket.path, socketMode: settings.socket.mode, socketGroup: settings.socket.group, socketOwner: settings.socket.owner,
                inheritedSocket: inherited, maximumLineBytes: settings.limits.maxRequestBytes,
                limits: RequestLimits(maxK: settings.limits.maxK, maxQueryBytes: settings.limits.maxQueryBytes),
                maximumConnections: maximumConnections,
                connection: ConnectionLimits(requestTimeoutMs: settings.limits.requestTimeoutMs, idleTimeoutSeconds: settings.limits.idleTimeoutSeconds,
                                             maximumPipelinedRequests: settings.limits.maxPipelinedRequests,
                                             maximumReplyBufferBytes: settings.limits.maxReplyBufferBytes)),
            responder: responder, logger: logger, metrics: ServerMetrics(factory: metricsFactory),
            onBound: { Systemd.notify("READY=1") },
            onShutdown: {
                loop.releaseWaiters()
                embeddings.releaseWaiters()
            })
        if inherited == nil {
            try makeDirectories(parentFolder(of: settings.socket.path), mode: 0o755)
        }
        let indexerService = IndexerService(loop: loop, logger: logger)
        let embedService = EmbedService(embeddings: embeddings, settings: settings.model, searcher: searcher, logger: logger, metrics: ingestMetrics)
        // Trap SIGHUP before READY=1 is sent, so an early reload request cannot kill the daemon.
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        let reloadService = ReloadService(signals: hangups, logger: logger, current: settings) { [self] in
            try resolvedConfiguration()
        } apply: { old, new in
            if new.sources != old.sources {
                let specs = new.sources.map {
                    SourceSpec(root: $0.path, include: $0.include, exclude: $0.exclude, followSymlinks: $0.followSymlinks, skipHidden: $0.skipHidden)
                }
                indexer.setSources(specs)
                watcher?.setSources(specs)
                loop.requestRescan()
                logger.notice("sources changed", metadata: ["sources": "\(specs.map(\.root))"])
            }
            access.current = Daemon.accessPolicy(new)
            LogLevelControl.set(Logger.Level(rawValue: new.logLevel) ?? .info)
            var needRestart: [String] = []
            if new.stateDirectory != old.stateDirectory { needRestart.append("state_dir") }
            if new.socket != old.socket { needRestart.append("socket") }
            if new.chunking != old.chunking { needRestart.append("chunking") }
            if new.bm25 != old.bm25 { needRestart.append("bm25") }
            if new.limits != old.limits { needRestart.append("limits") }
            if new.index != old.index { needRestart.append("index") }
            if new.model != old.model { needRestart.append("model") }
            if new.search != old.search { needRestart.append("search") }
            if !needRestart.isEmpty {
                logger.warning("some changed settings take effect only after a restart", metadata: ["settings": "\(needRestart)"])
            }
        }
        // Last, so that it is the first told of a graceful shutdown and sends STOPPING=1 at once. WATCHDOG=1 only
        // while a read transaction succeeds and neither the ingest loop nor the embedder is stuck.
        let watchdog = WatchdogService(logger: logger, probe: {
            ((try? store.withSnapshot { _ in true }) ?? false) && loop.isHealthy() && (embeddings.worker?.isHealthy() ?? true)
        })
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: indexerService), .init(service: embedService), .init(service: server), .init(service: reloadService),
                       .init(service: watchdog)],
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

/// Re-reads the configuration on SIGHUP (`systemctl reload ragd`): sources are added or dropped without a
/// restart, the log level follows; other changes are reported as needing a restart. A bad file is refused
/// with the same error as at start-up, and the running configuration stays.
struct ReloadService: Service {
    let signals: UnixSignalsSequence
    let logger: Logger
    let current: DaemonConfiguration
    let load: @Sendable () throws -> DaemonConfiguration
    let apply: @Sendable (DaemonConfiguration, DaemonConfiguration) -> Void

    func run() async throws {
        var active = current
        for await _ in signals.cancelOnGracefulShutdown() {
            Systemd.notify("RELOADING=1\nMONOTONIC_USEC=\(Systemd.monotonicMicroseconds)")
            logger.notice("reloading the configuration")
            do {
                let next = try load()
                apply(active, next)
                active = next
                Systemd.notify("READY=1\nSTATUS=configuration reloaded")
                logger.notice("configuration reloaded")
            } catch {
                Systemd.notify("READY=1\nSTATUS=configuration reload failed; running with the previous one")
                logger.error("configuration reload failed; keeping the running configuration", metadata: ["error": "\(error)"])
            }
        }
    }
}

/// The embedding side's state: loading the model, running, or unavailable (with the reason).
final class Embeddings: Sendable {
    struct Phase: Sendable {
        var loading = true
        var embedder: (any Embedder)?
        var worker: EmbedWorker?
        var reason: String?

        func state(pending: Int) -> String {
            if loading { return "loading" }
            if embedder == nil { return "unavailable" }
            return pending > 0 ? "embedding" : "ready"
        }
    }
    let store: Store
    private let current = Mutex(Phase())
    private let faultProvider = ProviderSlot<String?>()
    /// Sets where to learn why ingest is blocked (nil when it is not), for the STATUS= line.
    func setIngestFault(_ provider: @escaping @Sendable () -> String?) { faultProvider.set(provider) }
    func ingestFault() -> String? { faultProvider() ?? nil }
    private let startingProvider = ProviderSlot<Bool>()
    /// Sets where to learn whether the first reconciliation is still running (no `ready` before it ends).
    func setIngestStarting(_ provider: @escaping @Sendable () -> Bool) { startingProvider.set(provider) }
    func ingestStarting() -> Bool { startingProvider() ?? false }
    private let waitersReleased = Atomic<Bool>(false)
    /// Broadcast on every change of phase and after every embedding batch.
    private let progress = NSCondition()
    init(store: Store) { self.store = store }

    var phase: Phase { current.withLock { $0 } }
    var worker: EmbedWorker? { phase.worker }
    func set(_ phase: Phase) {
        current.withLock { $0 = phase }
        changed()
        reportStatus()
    }

    func changed() {
        progress.lock()
        progress.broadcast()
        progress.unlock()
    }

    /// Tells systemd where things stand: `ready; N files, M chunks` only once vectors have caught up too.
    func reportStatus() {
        let counts = store.counts
        let waiting = pending
        if let fault = ingestFault() {
            StatusReporter.shared.report("ingest blocked: \(fault)")
        } else if waiting > 0 && !phase.loading {
            StatusReporter.shared.report("embedding; \(store.embeddingCounts.embedded)/\(counts.chunks) chunks have vectors")
        } else if waiting > 0 {
            StatusReporter.shared.report("serving BM25; loading the embedding model")
        } else if ingestStarting() {
            // The model may be known unavailable before the first pass has indexed anything.
            StatusReporter.shared.report("reconciling the index")
        } else {
            StatusReporter.shared.report("ready; \(counts.files) files, \(counts.chunks) chunks")
        }
    }

    /// Waits until the model is loaded (or known unavailable) and every chunk has its vector.
    func waitUntilCaughtUp(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        progress.lock()
        defer { progress.unlock() }
        while phase.loading || pending > 0 {
            if waitersReleased.load(ordering: .relaxed) || !progress.wait(until: deadline) { return !phase.loading && pending == 0 }
        }
        return true
    }

    /// Makes every `waitUntilCaughtUp`, now or later, return at once (at shutdown).
    func releaseWaiters() {
        waitersReleased.store(true, ordering: .relaxed)
        changed()
    }

    /// Chunks still waiting for a vector; while the model loads, every chunk without one.
    var pending: Int {
        let phase = self.phase
        if phase.loading { let counts = store.embeddingCounts; return max(0, counts.chunks - counts.embedded) }
        return phase.worker?.pending ?? 0
    }
}

/// Loads the model in the background (the socket answers BM25 meanwhile), then runs the embedding worker on its
/// own thread until graceful shutdown.
struct EmbedService: Service {
    let embeddings: Embeddings
    let settings: ModelSettings
    let searcher: Searcher
    let logger: Logger
    let metrics: IngestMetrics

    func run() async throws {
        let threads = max(1, settings.threads)
        let pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
        defer { pool.shutdownGracefully { _ in } }
        let model = try await pool.runIfActive { loadEmbedder(settings, logger: logger) }
        guard let embedder = model.embedder else {
            embeddings.set(.init(loading: false, embedder: nil, worker: nil, reason: model.reason))
            try? await gracefulShutdown()
            return
        }
        let store = embeddings.store
        do {
            if let previous = try await pool.runIfActive({ try store.configureModel(id: embedder.modelID, dimensions: embedder.dimensions) }) {
                logger.notice("the embedding model changed; re-embedding every chunk in the background while BM25 keeps answering",
                              metadata: ["model.previous": "\(previous)", "model": "\(embedder.modelID)"])
            }
        } catch {
            let reason = "cannot load the stored vectors: \(error)"
            logger.error("dense retrieval is unavailable; serving BM25 only", metadata: ["reason": "\(reason)"])
            embeddings.set(.init(loading: false, embedder: nil, worker: nil, reason: reason))
            try? await gracefulShutdown()
            return
        }
        let worker = EmbedWorker(store: store, embedder: embedder, batchSize: settings.batchSize, logger: logger, metrics: metrics) { [embeddings] in
            embeddings.changed()
            embeddings.reportStatus()
            HeapPolicy.trimIfDue()
        }
        searcher.setEmbedder(embedder)
        embeddings.set(.init(loading: false, embedder: embedder, worker: worker, reason: nil))
        // Each thread runs single-threaded BLAS products, so queries embed side by side with them.
        try await withGracefulShutdownHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<threads { group.addTask { try await pool.runIfActive { worker.run() } } }
                try await group.waitForAll()
            }
        } onGracefulShutdown: {
            worker.stop()
        }
    }
}

/// Forwards watcher events to the ingest loop, which is created after the watcher.
final class EventSink: Sendable {
    let target = Mutex<IngestLoop?>(nil)
    func deliver(_ events: [WatchEvent]) {
        target.withLock { $0 }?.push(events)
    }
}

/// Runs the watcher and the ingest loop (on a dedicated thread): the start-up reconciliation, then live
/// changes and periodic rescans. On graceful shutdown the batch in flight commits and the loop stops.
struct IndexerService: Service {
    let loop: IngestLoop
    let logger: Logger

    func run() async throws {
        loop.watcher?.start()
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        defer { pool.shutdownGracefully { _ in } }
        let started = ContinuousClock.now
        try await withGracefulShutdownHandler {
            async let progress: Void = reportProgress()
            try await pool.runIfActive { loop.run() }
            _ = await progress
        } onGracefulShutdown: {
            loop.stop()
        }
        loop.watcher?.stop()
        _ = started
    }

    /// While a large pass runs, tells systemd how far it got (`STATUS=indexing 1200/5183 files`).
    private func reportProgress() async {
        var first = true
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let status = loop.indexer.status
            if status.total > 0 && status.pending > 0 {
                StatusReporter.shared.report("indexing \(status.done)/\(status.total) files")
                if first { logger.notice("indexing", metadata: ["files.total": "\(status.total)"]) }
                first = false
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
        }
    }
}

/// The index's size, set when metrics are read.
struct IndexGauges: Sendable {
    let files, chunks, bytes, embeddingsPending: Metrics.Gauge
    init(factory: any MetricsFactory) {
        files = Metrics.Gauge(label: "ragd_indexed_files", factory: factory)
        chunks = Metrics.Gauge(label: "ragd_indexed_chunks", factory: factory)
        bytes = Metrics.Gauge(label: "ragd_indexed_bytes", factory: factory)
        embeddingsPending = Metrics.Gauge(label: "ragd_embeddings_pending", factory: factory)
    }
}

extension Daemon {
    /// A swift-metrics factory over `registry`, with histogram buckets fitted to each timer (defaults: 5 ms to 10 s).
    static func metricsFactory(_ registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = [
            ServerMetrics.queryDurationLabel: [.microseconds(500), .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10),
                                               .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
                                               .seconds(1), .microseconds(2_500_000), .seconds(10)],
            IngestMetrics.changeToSearchableLabel: [.milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                                                    .milliseconds(250), .milliseconds(500), .seconds(1), .microseconds(2_500_000), .seconds(5),
                                                    .seconds(10), .seconds(30), .seconds(60)],
            IngestMetrics.embeddingBatchLabel: [.milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                                                .milliseconds(500), .seconds(1), .microseconds(2_500_000), .seconds(5), .seconds(10), .seconds(30)],
        ]
        return factory
    }

    /// The access rules of the configured sources.
    static func accessPolicy(_ settings: DaemonConfiguration) -> AccessPolicy {
        AccessPolicy(sources: settings.sources.map {
            SourceAccess(root: $0.path, users: $0.allowUsers, groups: $0.allowGroups, respectFilePermissions: $0.respectFilePermissions)
        })
    }
}

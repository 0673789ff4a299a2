#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import RagCore

/// Everything `ragd` reads from its TOML configuration file (see `config/ragd.toml`).
///
/// Every key is optional; the defaults below apply. Unknown keys are errors, so a typo never
/// silently falls back to a default. Relative paths are resolved against the folder that holds
/// the configuration file and all paths are normalised (no `.`/`..`, no trailing `/`).
public struct DaemonConfiguration: Sendable, Equatable {
    /// `state_dir`: where the LMDB environment lives.
    public var stateDirectory: String
    /// `log_level`: one of ``DaemonConfiguration/logLevels``.
    public var logLevel: String
    /// `[socket]`: the Unix socket queries arrive on.
    public var socket: SocketSettings
    /// `[[source]]`: the folders to index (none by default).
    public var sources: [SourceSettings]
    /// `[chunking]`: how documents are cut into passages.
    public var chunking: ChunkingSettings
    /// `[bm25]`: ranking parameters.
    public var bm25: BM25Settings
    /// `[limits]`: resource caps.
    public var limits: LimitSettings
    /// `[index]`: LMDB and rescanning.
    public var index: IndexSettings
    /// `[model]`: the embedding model for dense and hybrid search.
    public var model: ModelSettings = ModelSettings()
    /// `[search]`: hybrid fusion defaults.
    public var search: SearchSettings = SearchSettings()

    /// Accepted `log_level` values, least to most severe (the swift-log level names).
    public static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    public init(
        stateDirectory: String = "/var/lib/ragd",
        logLevel: String = "info",
        socket: SocketSettings = SocketSettings(),
        sources: [SourceSettings] = [],
        chunking: ChunkingSettings = ChunkingSettings(),
        bm25: BM25Settings = BM25Settings(),
        limits: LimitSettings = LimitSettings(),
        index: IndexSettings = IndexSettings()
    ) {
        self.stateDirectory = stateDirectory
        self.logLevel = logLevel
        self.socket = socket
        self.sources = sources
        self.chunking = chunking
        self.bm25 = bm25
        self.limits = limits
        self.index = index
    }

    /// Reads and validates the configuration file at `path`; throws ``ConfigError``.
    public static func load(path: String) throws -> DaemonConfiguration {
        let bytes = try readFile(path)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigError(file: path, message: "the file is not valid UTF-8")
        }
        return try parse(text, file: path)
    }

    /// Parses and validates configuration `text`; `file` names it in errors and is the base
    /// for relative paths (a relative `file` is taken relative to the working directory).
    public static func parse(_ text: String, file: String) throws -> DaemonConfiguration {
        let root: TOMLTable
        do {
            root = try TOML.parse(text)
        } catch let error as TOMLError {
            throw ConfigError(file: file, line: error.line, column: error.column, message: error.message)
        }
        let reader = ConfigReader(file: file, baseDirectory: ConfigPath.directory(of: ConfigPath.absolute(file)))
        return try reader.read(root)
    }

    private static func readFile(_ path: String) throws -> [UInt8] {
        func failure(_ what: String) -> ConfigError {
            ConfigError(file: path, message: "\(what): \(String(cString: strerror(errno)))")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure("cannot open the configuration file") }
        defer { close(fd) }
        var contents: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw failure("cannot read the configuration file")
            }
            if n == 0 { break }
            contents.append(contentsOf: chunk[0..<n])
            if contents.count > 16 << 20 {
                throw ConfigError(file: path, message: "the configuration file is larger than 16 MiB")
            }
        }
        return contents
    }
}

/// `[model]`.
public struct ModelSettings: Sendable, Equatable {
    /// `path`: a sentence-transformers model folder (BERT family). Unset: ragd looks in its default places.
    public var path: String?
    /// `enabled`: set false to run BM25 only.
    public var enabled: Bool
    /// `batch_size`: chunks per encoder call.
    public var batchSize: Int
    /// `query_cache`: query embeddings kept for repeated queries.
    public var queryCache: Int
    /// `threads`: embedding threads (each runs one-threaded BLAS products, so queries are never queued behind them).
    public var threads: Int
    public init(path: String? = nil, enabled: Bool = true, batchSize: Int = 32, queryCache: Int = 256, threads: Int = 2) {
        self.path = path
        self.enabled = enabled
        self.batchSize = batchSize
        self.queryCache = queryCache
        self.threads = threads
    }
}

/// `[search]`.
public struct SearchSettings: Sendable, Equatable {
    /// `fusion`: `rrf` or `weighted`, for hybrid queries that do not choose.
    public var fusion: String
    /// `dense_weight`: weight of the dense score in weighted fusion.
    public var denseWeight: Double
    /// `rrf_k`: the constant of reciprocal rank fusion.
    public var rrfK: Double
    /// Defaults chosen on SciFact's train qrels (bench/tune_fusion.py): weighted fusion with dense weight 0.7.
    public init(fusion: String = "weighted", denseWeight: Double = 0.7, rrfK: Double = 60) {
        self.fusion = fusion
        self.denseWeight = denseWeight
        self.rrfK = rrfK
    }
}

/// `[socket]`.
public struct SocketSettings: Sendable, Equatable {
    /// `path`: the socket file.
    public var path: String
    /// `mode`: permission bits of the socket file (at most 0o777).
    public var mode: UInt32
    /// `group`: group to own the socket file; `nil` (or `""` in the file) keeps the default.
    public var group: String?
    /// `owner`: user to own the socket file (needs root); `nil` (or `""`) keeps the daemon's user.
    public var owner: String?

    public init(path: String = "/run/ragd/ragd.sock", mode: UInt32 = 0o660, group: String? = nil, owner: String? = nil) {
        self.path = path
        self.mode = mode
        self.group = group
        self.owner = owner
    }
}

/// One `[[source]]`: a folder to index.
public struct SourceSettings: Sendable, Equatable {
    /// `path`: absolute, normalised folder path.
    public var path: String
    /// `include`: a file of a supported format (RagIngest's `DocumentFormat`, the one list of indexed file names) is
    /// indexed if its path relative to ``path`` matches one of these (empty: every such file)...
    public var include: [GlobPattern]
    /// `exclude`: ...and none of these.
    public var exclude: [GlobPattern]
    /// `follow_symlinks`: follow symbolic links to files and folders.
    public var followSymlinks: Bool
    /// `skip_hidden`: skip dot-files and dot-folders such as `.git`.
    public var skipHidden: Bool
    /// `allow_users`: uids that may see this source (names are resolved when the file is read). With `allowGroups`
    /// both nil the source is open to every client that can connect; root and the daemon's own uid always see it.
    public var allowUsers: [UInt32]?
    /// `allow_groups`: gids whose members (primary or supplementary group of the client process) may see it.
    public var allowGroups: [UInt32]?
    /// `respect_file_permissions`: return a file's hits only to clients whose uid and groups may read it.
    public var respectFilePermissions: Bool

    /// The default `include` list: empty, so every file of a supported format is indexed (which formats, by which
    /// name endings, is decided in one place: `DocumentFormat`).
    public static let defaultInclude: [GlobPattern] = []

    public init(
        path: String,
        include: [GlobPattern] = SourceSettings.defaultInclude,
        exclude: [GlobPattern] = [],
        followSymlinks: Bool = false,
        skipHidden: Bool = true,
        allowUsers: [UInt32]? = nil,
        allowGroups: [UInt32]? = nil,
        respectFilePermissions: Bool = false
    ) {
        self.path = path
        self.include = include
        self.exclude = exclude
        self.followSymlinks = followSymlinks
        self.skipHidden = skipHidden
        self.allowUsers = allowUsers
        self.allowGroups = allowGroups
        self.respectFilePermissions = respectFilePermissions
    }
}

/// `[chunking]`, in analyzer tokens.
public struct ChunkingSettings: Sendable, Equatable {
    /// `target_tokens`: preferred chunk size.
    public var targetTokens: Int
    /// `max_tokens`: hard upper bound (≥ target).
    public var maxTokens: Int
    /// `overlap_tokens`: tokens repeated between neighbouring chunks (< target).
    public var overlapTokens: Int

    public init(targetTokens: Int = 200, maxTokens: Int = 256, overlapTokens: Int = 32) {
        self.targetTokens = targetTokens
        self.maxTokens = maxTokens
        self.overlapTokens = overlapTokens
    }
}

/// `[bm25]`.
public struct BM25Settings: Sendable, Equatable {
    /// `k1`: term-frequency saturation (> 0).
    public var k1: Double
    /// `b`: length normalisation (0...1).
    public var b: Double

    public init(k1: Double = 0.9, b: Double = 0.4) {
        self.k1 = k1
        self.b = b
    }
}

/// `[limits]`; all strictly positive.
public struct LimitSettings: Sendable, Equatable {
    /// Upper bounds of the time limits, so that they stay far from overflowing a nanosecond clock.
    public static let maxRequestTimeoutMs = 86_400_000
    public static let maxIdleTimeoutSeconds = 31_536_000

    /// `max_file_bytes`: bigger files are skipped.
    public var maxFileBytes: Int
    /// `max_request_bytes`: cap on one request line on the socket.
    public var maxRequestBytes: Int
    /// `max_k`: largest number of results one query may ask for.
    public var maxK: Int
    /// `max_query_bytes`: longest accepted query text.
    public var maxQueryBytes: Int
    /// `max_connections`: concurrent socket connections.
    public var maxConnections: Int
    /// `request_timeout_ms`: a request (other than `sync`) not answered this long after it arrived is answered `timeout`.
    public var requestTimeoutMs: Int
    /// `idle_timeout_seconds`: a connection with no complete request, no reply written and nothing being answered
    /// for this long is closed.
    public var idleTimeoutSeconds: Int
    /// `max_pipelined_requests`: requests one connection may have sent and not yet had answered; beyond this ragd
    /// stops reading that connection.
    public var maxPipelinedRequests: Int
    /// `max_reply_buffer_bytes`: replies a connection has not read yet that ragd holds before it stops answering
    /// (and reading) that connection.
    public var maxReplyBufferBytes: Int

    public init(
        maxFileBytes: Int = 16_777_216,
        maxRequestBytes: Int = 1_048_576,
        maxK: Int = 1000,
        maxQueryBytes: Int = 8192,
        maxConnections: Int = 256,
        requestTimeoutMs: Int = 10_000,
        idleTimeoutSeconds: Int = 300,
        maxPipelinedRequests: Int = 64,
        maxReplyBufferBytes: Int = 1_048_576
    ) {
        self.maxFileBytes = maxFileBytes
        self.maxRequestBytes = maxRequestBytes
        self.maxK = maxK
        self.maxQueryBytes = maxQueryBytes
        self.maxConnections = maxConnections
        self.requestTimeoutMs = requestTimeoutMs
        self.idleTimeoutSeconds = idleTimeoutSeconds
        self.maxPipelinedRequests = maxPipelinedRequests
        self.maxReplyBufferBytes = maxReplyBufferBytes
    }
}

/// `[index]`.
public struct IndexSettings: Sendable, Equatable {
    /// `map_size_mb`: LMDB map size in MiB at start (> 0).
    public var mapSizeMB: Int
    /// `max_map_size_mb`: the map grows automatically (doubling) up to this many MiB (≥ `map_size_mb`).
    public var maxMapSizeMB: Int
    /// `rescan_interval_seconds`: periodic rescan period; 0 turns it off.
    public var rescanIntervalSeconds: Int
    /// `embedding_cache_orphans`: cached vectors kept for texts no chunk has any more (so a returning text is not
    /// embedded again); the oldest beyond this many are deleted. 0 keeps none.
    public var embeddingCacheOrphans: Int

    /// Default ceiling of the map (virtual address space, not disk).
    public static let defaultMaxMapSizeMB = 65536

    /// Default of `embedding_cache_orphans` (about 15 MiB of 384-dimension vectors).
    public static let defaultEmbeddingCacheOrphans = 10_000

    public init(mapSizeMB: Int = 4096, maxMapSizeMB: Int = IndexSettings.defaultMaxMapSizeMB, rescanIntervalSeconds: Int = 300,
                embeddingCacheOrphans: Int = IndexSettings.defaultEmbeddingCacheOrphans) {
        self.mapSizeMB = mapSizeMB
        self.maxMapSizeMB = max(mapSizeMB, maxMapSizeMB)
        self.rescanIntervalSeconds = rescanIntervalSeconds
        self.embeddingCacheOrphans = embeddingCacheOrphans
    }
}

// MARK: - Reading and validation

private struct ConfigReader {
    let file: String
    let baseDirectory: String

    func fail(_ key: String?, _ line: Int?, _ message: String) -> ConfigError {
        ConfigError(file: file, line: line, key: key, message: message)
    }

    func read(_ root: TOMLTable) throws -> DaemonConfiguration {
        var config = DaemonConfiguration()
        try checkKeys(root, prefix: "", allowed: ["state_dir", "log_level", "socket", "source", "chunking", "bm25", "limits", "index", "model", "search"])

        if let model = try table(root, "model", prefix: "") {
            let p = "model."
            try checkKeys(model, prefix: p, allowed: ["path", "enabled", "batch_size", "query_cache", "threads"])
            if let (v, line) = try integer(model, "threads", prefix: p) {
                guard v >= 1, v <= 64 else { throw fail(p + "threads", line, "must be between 1 and 64, got \(v)") }
                config.model.threads = v
            }
            if let (path, line) = try string(model, "path", prefix: p) {
                guard !path.isEmpty else { throw fail(p + "path", line, "must not be empty") }
                config.model.path = ConfigPath.resolve(path, against: baseDirectory)
            }
            if let value = model["enabled"] {
                guard let flag = value.boolValue else { throw fail(p + "enabled", value.line, "expected a boolean, got \(value.typeName)") }
                config.model.enabled = flag
            }
            if let (v, line) = try integer(model, "batch_size", prefix: p) {
                guard v > 0, v <= 1024 else { throw fail(p + "batch_size", line, "must be between 1 and 1024, got \(v)") }
                config.model.batchSize = v
            }
            if let (v, line) = try integer(model, "query_cache", prefix: p) {
                guard v >= 0 else { throw fail(p + "query_cache", line, "must not be negative, got \(v)") }
                config.model.queryCache = v
            }
        }
        if let search = try table(root, "search", prefix: "") {
            let p = "search."
            try checkKeys(search, prefix: p, allowed: ["fusion", "dense_weight", "rrf_k"])
            if let (name, line) = try string(search, "fusion", prefix: p) {
                guard ["rrf", "weighted"].contains(name) else { throw fail(p + "fusion", line, "must be 'rrf' or 'weighted', got '\(name)'") }
                config.search.fusion = name
            }
            if let (w, line) = try number(search, "dense_weight", prefix: p) {
                guard w >= 0, w <= 1 else { throw fail(p + "dense_weight", line, "must be between 0 and 1, got \(w)") }
                config.search.denseWeight = w
            }
            if let (k, line) = try number(search, "rrf_k", prefix: p) {
                guard k > 0, k.isFinite else { throw fail(p + "rrf_k", line, "must be a finite number greater than 0, got \(k)") }
                config.search.rrfK = k
            }
        }

        if let (dir, line) = try string(root, "state_dir", prefix: "") {
            guard !dir.isEmpty else { throw fail("state_dir", line, "must not be empty") }
            config.stateDirectory = ConfigPath.resolve(dir, against: baseDirectory)
        }
        if let (level, line) = try string(root, "log_level", prefix: "") {
            guard DaemonConfiguration.logLevels.contains(level) else {
                throw fail("log_level", line, "must be one of \(DaemonConfiguration.logLevels.joined(separator: ", ")); got '\(level)'")
            }
            config.logLevel = level
        }

        if let socket = try table(root, "socket", prefix: "") {
            let p = "socket."
            try checkKeys(socket, prefix: p, allowed: ["path", "mode", "group", "owner"])
            if let (path, line) = try string(socket, "path", prefix: p) {
                guard !path.isEmpty else { throw fail(p + "path", line, "must not be empty") }
                config.socket.path = ConfigPath.resolve(path, against: baseDirectory)
            }
            if let value = socket["mode"] {
                config.socket.mode = try mode(value, key: p + "mode")
            }
            if let (owner, line) = try string(socket, "owner", prefix: p), !owner.isEmpty {
                guard UInt32(owner) != nil || DaemonConfiguration.userID(owner) != nil else { throw fail(p + "owner", line, "unknown user '\(owner)'") }
                config.socket.owner = owner
            }
            if let (group, _) = try string(socket, "group", prefix: p) {
                config.socket.group = group.isEmpty ? nil : group
            }
        }

        config.sources = try sources(root["source"])

        if let chunking = try table(root, "chunking", prefix: "") {
            let p = "chunking."
            try checkKeys(chunking, prefix: p, allowed: ["target_tokens", "max_tokens", "overlap_tokens"])
            let target = try integer(chunking, "target_tokens", prefix: p)
            let max = try integer(chunking, "max_tokens", prefix: p)
            let overlap = try integer(chunking, "overlap_tokens", prefix: p)
            if let (v, line) = target {
                guard v > 0 else { throw fail(p + "target_tokens", line, "must be greater than 0, got \(v)") }
                config.chunking.targetTokens = v
            }
            if let (v, line) = max {
                guard v > 0 else { throw fail(p + "max_tokens", line, "must be greater than 0, got \(v)") }
                config.chunking.maxTokens = v
            }
            if let (v, line) = overlap {
                guard v >= 0 else { throw fail(p + "overlap_tokens", line, "must not be negative, got \(v)") }
                config.chunking.overlapTokens = v
            }
            let c = config.chunking
            if c.targetTokens > c.maxTokens {
                let (key, line) = target.map { ("target_tokens", $0.line) } ?? ("max_tokens", max!.line)
                throw fail(p + key, line, "target_tokens (\(c.targetTokens)) must not exceed max_tokens (\(c.maxTokens))")
            }
            if c.overlapTokens >= c.targetTokens {
                let (key, line) = overlap.map { ("overlap_tokens", $0.line) } ?? ("target_tokens", target!.line)
                throw fail(p + key, line, "overlap_tokens (\(c.overlapTokens)) must be less than target_tokens (\(c.targetTokens))")
            }
        }

        if let bm25 = try table(root, "bm25", prefix: "") {
            let p = "bm25."
            try checkKeys(bm25, prefix: p, allowed: ["k1", "b"])
            if let (k1, line) = try number(bm25, "k1", prefix: p) {
                guard k1 > 0, k1.isFinite else { throw fail(p + "k1", line, "must be a finite number greater than 0, got \(k1)") }
                config.bm25.k1 = k1
            }
            if let (b, line) = try number(bm25, "b", prefix: p) {
                guard b >= 0, b <= 1 else { throw fail(p + "b", line, "must be between 0 and 1, got \(b)") }
                config.bm25.b = b
            }
        }

        if let limits = try table(root, "limits", prefix: "") {
            let p = "limits."
            let keys: [(String, WritableKeyPath<LimitSettings, Int>)] = [
                ("max_file_bytes", \.maxFileBytes),
                ("max_request_bytes", \.maxRequestBytes),
                ("max_k", \.maxK),
                ("max_query_bytes", \.maxQueryBytes),
                ("max_connections", \.maxConnections),
                ("max_pipelined_requests", \.maxPipelinedRequests),
                ("max_reply_buffer_bytes", \.maxReplyBufferBytes),
            ]
            let times: [(String, WritableKeyPath<LimitSettings, Int>, Int)] = [
                ("request_timeout_ms", \.requestTimeoutMs, LimitSettings.maxRequestTimeoutMs),
                ("idle_timeout_seconds", \.idleTimeoutSeconds, LimitSettings.maxIdleTimeoutSeconds),
            ]
            try checkKeys(limits, prefix: p, allowed: keys.map(\.0) + times.map(\.0))
            for (key, path) in keys {
                if let (v, line) = try integer(limits, key, prefix: p) {
                    guard v > 0 else { throw fail(p + key, line, "must be greater than 0, got \(v)") }
                    config.limits[keyPath: path] = v
                }
            }
            for (key, path, maximum) in times {
                if let (v, line) = try integer(limits, key, prefix: p) {
                    guard v > 0, v <= maximum else { throw fail(p + key, line, "must be between 1 and \(maximum), got \(v)") }
                    config.limits[keyPath: path] = v
                }
            }
        }

        if let index = try table(root, "index", prefix: "") {
            let p = "index."
            try checkKeys(index, prefix: p, allowed: ["map_size_mb", "max_map_size_mb", "rescan_interval_seconds", "embedding_cache_orphans"])
            if let (v, line) = try integer(index, "map_size_mb", prefix: p) {
                guard v > 0, v <= 1 << 24 else { throw fail(p + "map_size_mb", line, "must be between 1 and 16777216 (16 TiB), got \(v)") }
                config.index.mapSizeMB = v
                config.index.maxMapSizeMB = max(config.index.maxMapSizeMB, v)
            }
            if let (v, line) = try integer(index, "max_map_size_mb", prefix: p) {
                guard v > 0, v <= 1 << 24 else { throw fail(p + "max_map_size_mb", line, "must be between 1 and 16777216 (16 TiB), got \(v)") }
                guard v >= config.index.mapSizeMB else {
                    throw fail(p + "max_map_size_mb", line, "must not be less than map_size_mb (\(config.index.mapSizeMB)), got \(v)")
                }
                config.index.maxMapSizeMB = v
            }
            if let (v, line) = try integer(index, "rescan_interval_seconds", prefix: p) {
                guard v >= 0 else { throw fail(p + "rescan_interval_seconds", line, "must not be negative (0 turns rescanning off), got \(v)") }
                config.index.rescanIntervalSeconds = v
            }
            if let (v, line) = try integer(index, "embedding_cache_orphans", prefix: p) {
                guard v >= 0, v <= 100_000_000 else {
                    throw fail(p + "embedding_cache_orphans", line, "must be between 0 (keep none) and 100000000, got \(v)")
                }
                config.index.embeddingCacheOrphans = v
            }
        }
        return config
    }

    func sources(_ value: TOMLValue?) throws -> [SourceSettings] {
        guard let value else { return [] }
        guard let elements = value.arrayValue else {
            throw fail("source", value.line, "expected an array of tables ([[source]]), got \(value.typeName)")
        }
        var result: [SourceSettings] = []
        var seen: [String: Int] = [:]
        for (n, element) in elements.enumerated() {
            let p = "source[\(n)]."
            guard let t = element.tableValue else {
                throw fail("source[\(n)]", element.line, "expected a table, got \(element.typeName)")
            }
            try checkKeys(t, prefix: p, allowed: ["path", "include", "exclude", "follow_symlinks", "skip_hidden", "allow_users", "allow_groups",
                                                 "respect_file_permissions"])
            guard let (rawPath, pathLine) = try string(t, "path", prefix: p) else {
                throw fail(p + "path", element.line, "missing required key (the folder to index)")
            }
            guard !rawPath.isEmpty else { throw fail(p + "path", pathLine, "must not be empty") }
            let path = ConfigPath.resolve(rawPath, against: baseDirectory)
            if let first = seen[path] {
                throw fail(p + "path", pathLine, "duplicate source path '\(path)' (already listed at line \(first))")
            }
            seen[path] = pathLine
            var source = SourceSettings(path: path)
            if let include = try globs(t, "include", prefix: p) {
                guard !include.patterns.isEmpty else {
                    throw fail(p + "include", include.line, "must list at least one pattern (nothing would be indexed)")
                }
                source.include = include.patterns
            }
            if let exclude = try globs(t, "exclude", prefix: p) { source.exclude = exclude.patterns }
            if let (v, _) = try bool(t, "follow_symlinks", prefix: p) { source.followSymlinks = v }
            if let (v, _) = try bool(t, "skip_hidden", prefix: p) { source.skipHidden = v }
            source.allowUsers = try principals(t, "allow_users", prefix: p, kind: .user)
            source.allowGroups = try principals(t, "allow_groups", prefix: p, kind: .group)
            if let (v, _) = try bool(t, "respect_file_permissions", prefix: p) { source.respectFilePermissions = v }
            result.append(source)
        }
        return result
    }

    func mode(_ value: TOMLValue, key: String) throws -> UInt32 {
        let mode: Int64
        switch value.kind {
        case .integer(let v):
            mode = v
        case .string(let s):
            var digits = Substring(s)
            if digits.hasPrefix("0o") { digits = digits.dropFirst(2) }
            guard !digits.isEmpty, digits.count <= 4, digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "7") }) else {
                throw fail(key, value.line, "expected octal digits such as \"0660\", got \"\(s)\"")
            }
            mode = Int64(digits, radix: 8)!
        default:
            throw fail(key, value.line, "expected a string of octal digits (\"0660\") or an integer (0o660), got \(value.typeName)")
        }
        guard mode >= 0, mode <= 0o777 else {
            throw fail(key, value.line, "must be between 0 and 0o777, got 0o\(String(mode, radix: 8))")
        }
        return UInt32(mode)
    }

    // MARK: Typed accessors

    func checkKeys(_ table: TOMLTable, prefix: String, allowed: [String]) throws {
        for (key, value) in table.entries where !allowed.contains(key) {
            var message = "unknown key"
            if let guess = closestKey(to: key, in: allowed) {
                message += " (did you mean '\(guess)'?)"
            } else {
                message += "; expected one of: \(allowed.joined(separator: ", "))"
            }
            throw fail(prefix + key, value.line, message)
        }
    }

    func table(_ t: TOMLTable, _ key: String, prefix: String) throws -> TOMLTable? {
        guard let v = t[key] else { return nil }
        guard let table = v.tableValue else {
            throw fail(prefix + key, v.line, "expected a table ([\(prefix + key)]), got \(v.typeName)")
        }
        return table
    }

    func string(_ t: TOMLTable, _ key: String, prefix: String) throws -> (String, line: Int)? {
        guard let v = t[key] else { return nil }
        guard let s = v.stringValue else { throw fail(prefix + key, v.line, "expected a string, got \(v.typeName)") }
        return (s, v.line)
    }

    func integer(_ t: TOMLTable, _ key: String, prefix: String) throws -> (Int, line: Int)? {
        guard let v = t[key] else { return nil }
        guard let i = v.integerValue else { throw fail(prefix + key, v.line, "expected an integer, got \(v.typeName)") }
        guard let int = Int(exactly: i) else { throw fail(prefix + key, v.line, "integer \(i) is out of range") }
        return (int, v.line)
    }

    /// A float or an integer.
    func number(_ t: TOMLTable, _ key: String, prefix: String) throws -> (Double, line: Int)? {
        guard let v = t[key] else { return nil }
        switch v.kind {
        case .float(let d): return (d, v.line)
        case .integer(let i): return (Double(i), v.line)
        default: throw fail(prefix + key, v.line, "expected a number, got \(v.typeName)")
        }
    }

    func bool(_ t: TOMLTable, _ key: String, prefix: String) throws -> (Bool, line: Int)? {
        guard let v = t[key] else { return nil }
        guard let b = v.boolValue else { throw fail(prefix + key, v.line, "expected a boolean (true or false), got \(v.typeName)") }
        return (b, v.line)
    }

    func globs(_ t: TOMLTable, _ key: String, prefix: String) throws -> (patterns: [GlobPattern], line: Int)? {
        guard let v = t[key] else { return nil }
        guard let elements = v.arrayValue else {
            throw fail(prefix + key, v.line, "expected an array of glob strings, got \(v.typeName)")
        }
        var patterns: [GlobPattern] = []
        for (n, element) in elements.enumerated() {
            let elementKey = "\(prefix)\(key)[\(n)]"
            guard let text = element.stringValue else {
                throw fail(elementKey, element.line, "expected a string, got \(element.typeName)")
            }
            do {
                patterns.append(try GlobPattern(text))
            } catch let error as GlobError {
                throw fail(elementKey, element.line, error.description)
            }
        }
        return (patterns, v.line)
    }

    enum PrincipalKind { case user, group }

    /// A list of user or group names (or numeric ids, as integers or digit strings), resolved to ids now.
    func principals(_ t: TOMLTable, _ key: String, prefix: String, kind: PrincipalKind) throws -> [UInt32]? {
        guard let v = t[key] else { return nil }
        let what = kind == .user ? "user" : "group"
        guard let elements = v.arrayValue else {
            throw fail(prefix + key, v.line, "expected an array of \(what) names or ids, got \(v.typeName)")
        }
        var ids: [UInt32] = []
        for (n, element) in elements.enumerated() {
            let elementKey = "\(prefix)\(key)[\(n)]"
            let id: UInt32
            if let i = element.integerValue {
                guard let exact = UInt32(exactly: i), exact != UInt32.max else { throw fail(elementKey, element.line, "\(i) is not a valid \(what) id") }
                id = exact
            } else if let name = element.stringValue {
                if let numeric = UInt32(name), numeric != UInt32.max {
                    id = numeric
                } else if let resolved = kind == .user ? DaemonConfiguration.userID(name) : DaemonConfiguration.groupID(name) {
                    id = resolved
                } else {
                    throw fail(elementKey, element.line, "unknown \(what) '\(name)'")
                }
            } else {
                throw fail(elementKey, element.line, "expected a \(what) name or id, got \(element.typeName)")
            }
            if !ids.contains(id) { ids.append(id) }
        }
        return ids
    }

    /// The allowed key within edit distance 2 of a misspelt `key`, if any.
    func closestKey(to key: String, in allowed: [String]) -> String? {
        let a = Array(key.utf8)
        var best: (String, Int)? = nil
        for candidate in allowed {
            let b = Array(candidate.utf8)
            var previous = Array(0...b.count)
            for i in 1...max(a.count, 1) where !a.isEmpty {
                var current = [i] + Array(repeating: 0, count: b.count)
                for j in stride(from: 1, through: b.count, by: 1) {
                    let cost = a[i - 1] == b[j - 1] ? 0 : 1
                    current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                }
                previous = current
            }
            let distance = a.isEmpty ? b.count : previous[b.count]
            if distance <= 2, distance < a.count, best.map({ distance < $0.1 }) ?? true { best = (candidate, distance) }
        }
        return best?.0
    }
}

// MARK: - Paths

/// Pure path arithmetic on `/`-separated strings.
enum ConfigPath {
    /// `path` made absolute against the working directory and normalised.
    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return normalize(path) }
        return resolve(path, against: currentDirectory())
    }

    /// `path` if absolute, else `base/path`; normalised either way.
    static func resolve(_ path: String, against base: String) -> String {
        normalize(path.hasPrefix("/") ? path : base + "/" + path)
    }

    /// Removes empty and `.` components and applies `..` (never above `/`).
    static func normalize(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." {
                _ = parts.popLast()
                continue
            }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    /// The folder containing the absolute path `path`.
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: 4097)
        return buffer.withUnsafeMutableBufferPointer { pointer in
            guard getcwd(pointer.baseAddress, pointer.count) != nil else { return "/" }
            return String(cString: pointer.baseAddress!)
        }
    }
}

extension DaemonConfiguration {
    /// The uid of a user name from the system's user database (`getpwnam_r`), or nil.
    public static func userID(_ name: String) -> UInt32? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>? = nil
        var buffer = [CChar](repeating: 0, count: 16384)
        let status = getpwnam_r(name, &entry, &buffer, buffer.count, &result)
        guard status == 0, result != nil else { return nil }
        return entry.pw_uid
    }

    /// The gid of a group name from the system's group database (`getgrnam_r`), or nil.
    public static func groupID(_ name: String) -> UInt32? {
        var entry = group()
        var result: UnsafeMutablePointer<group>? = nil
        var buffer = [CChar](repeating: 0, count: 65536)
        let status = getgrnam_r(name, &entry, &buffer, buffer.count, &result)
        guard status == 0, result != nil else { return nil }
        return entry.gr_gid
    }
}

import Dispatch
import Glibc
import Logging
import RagCore
import RagGzip
import RagProtocol
import RagQuery
import RagStore
import Synchronization

/// Answers decoded requests. Blocking (LMDB reads, file reads): call it from a thread pool, never an event loop.
public protocol RequestResponder: Sendable {
    /// The reply's fields after `id` and `ok`, or a `WireError`. `client` is the peer's kernel-reported identity.
    func respond(to request: Request, from client: Client) throws -> [(String, JSONValue)]
}

/// The current access rules, replaced on reload.
public final class AccessControl: Sendable {
    private let policy: Mutex<AccessPolicy>
    public init(_ policy: AccessPolicy = AccessPolicy()) { self.policy = Mutex(policy) }
    public var current: AccessPolicy {
        get { policy.withLock { $0 } }
        set { policy.withLock { $0 = newValue } }
    }
}

/// The daemon's responder: search and get over the store, status from the ingest side.
public struct IndexResponder: RequestResponder {
    public let searcher: Searcher
    /// Fields of the `status` reply (`state`, `pending`, `files`, `chunks`, …) as the client may see them.
    public let status: @Sendable (AccessView) -> [(String, JSONValue)]
    /// The `sources` reply's list: the sources the client may see, with their counts.
    public var sources: @Sendable (AccessView) -> [JSONValue] = { _ in [] }
    /// Who may see which source.
    public var access = AccessControl()
    /// Where refusals are logged (with the client's pid and uid).
    public var logger = Logger(label: "ragd.access")
    /// Waits until changes made before the call are applied (and, with `vectors`, embedded); false on timeout.
    public let sync: @Sendable (Double, Bool) -> Bool
    /// Largest file text returned by `get`.
    public var maxGetBytes: Int
    /// Fusion used by hybrid searches that do not choose one.
    public var defaultFusion: Fusion
    /// Why dense modes are unavailable right now (nil when they are available).
    public var denseUnavailable: @Sendable () -> String?
    /// Why ingest is blocked right now (nil when it is not): `sync` then answers `unavailable` at once.
    public var ingestBlocked: @Sendable () -> String? = { nil }
    /// Whether the daemon is stopping (a `sync` that returns false then was cut short, not timed out).
    public var stopping: @Sendable () -> Bool = { false }
    /// The `metrics` reply's text (Prometheus text format); nil when the daemon keeps no metrics.
    public var metrics: (@Sendable () -> String)? = nil
    /// Queues a forced re-read of `path` (everything the client may see when nil) and returns the reply's fields;
    /// throws `not_found` for a path outside the sources the client may see.
    public var reindex: @Sendable (String?, AccessView) throws -> [(String, JSONValue)] = { _, _ in
        throw WireError(.unsupported, "this daemon cannot reindex")
    }

    public init(searcher: Searcher, maxGetBytes: Int = 4 << 20, sync: @escaping @Sendable (Double, Bool) -> Bool = { _, _ in true },
                status: @escaping @Sendable (AccessView) -> [(String, JSONValue)]) {
        self.searcher = searcher
        self.maxGetBytes = maxGetBytes
        self.defaultFusion = .weighted(denseWeight: 0.7)
        self.denseUnavailable = { "no embedding model is loaded" }
        self.sync = sync
        self.status = status
    }

    public func respond(to request: Request, from client: Client) throws -> [(String, JSONValue)] {
        let view = access.current.view(for: client)
        switch request {
        case .ping:
            return [("pong", true), ("protocol", .int(Int64(ragProtocolVersion)))]
        case .status:
            let fields = status(view)
            refused(view, op: "status")
            return fields
        case .sources:
            let list = sources(view)
            refused(view, op: "sources")
            return [("sources", .array(list))]
        case .search(let search):
            defer { refused(view, op: "search") }
            return try self.search(search, view: view)
        case .get(let get):
            defer { refused(view, op: "get") }
            return try self.get(get, view: view)
        case .files(let prefix):
            let records = try prefix.map { try searcher.store.files(under: $0) } ?? searcher.store.allFiles()
            let list: [JSONValue] = records.keys.sorted().compactMap { path in
                guard !view.restricts || view.admits(path: path) else { return nil }
                let record = records[path]!
                return .object([("path", .string(path)), ("size", .int(Int64(record.size))), ("mtime_ns", .int(record.mtimeNanos)),
                                ("sha256", .string(record.contentHash.hex)), ("chunks", .int(Int64(record.chunkIDs.count))),
                                ("title", record.title.map { .string($0) } ?? .null), ("tags", .array(record.tags.map { .string($0) }))])
            }
            refused(view, op: "files")
            return [("files", .array(list))]
        case .metrics:
            // Totals and rates cover every source: only for clients from whom no source is hidden.
            guard view.hiddenRoots.isEmpty else {
                deny(view, op: "metrics")
                throw WireError(.permissionDenied, "metrics count every source; they are answered to root, to ragd's own user and to clients every source admits")
            }
            guard let metrics else { throw WireError(.unsupported, "this daemon keeps no metrics") }
            return [("text", .string(metrics()))]
        case .backup(let destination):
            guard access.current.trustedUIDs.contains(client.uid) else {
                deny(view, op: "backup")
                throw WireError(.permissionDenied, "a backup copies every source; only root and ragd's own user may make one")
            }
            return try backup(to: destination)
        case .reindex(let path):
            defer { refused(view, op: "reindex") }
            return try reindex(path, view)
        case .sync(let timeout, let vectors):
            let started = DispatchTime.now().uptimeNanoseconds
            guard sync(timeout, vectors) else {
                if let reason = ingestBlocked() {
                    throw WireError(.unavailable, "ingest is blocked (\(reason)); searches answer from the index as it is until it resumes")
                }
                if stopping() { throw WireError(.unavailable, "ragd is stopping; changes were not all applied") }
                throw WireError(.timeout, "changes were not all applied within \(Int(timeout * 1000)) ms")
            }
            let waited = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6
            return [("waited_ms", .double((waited * 1000).rounded() / 1000))]
        }
    }

    /// Logs a refused op like other refusals.
    private func deny(_ view: AccessView, op: String) {
        logger.notice("access refused", metadata: ["client.pid": "\(view.client.pid)", "client.uid": "\(view.client.uid)", "op": "\(op)",
                                                   "files.withheld": "0", "sources.hidden": "\(view.hiddenRoots.count)"])
    }

    /// A backup of the index into `destination` (see `Store.backup`), logged.
    private func backup(to destination: String) throws -> [(String, JSONValue)] {
        logger.notice("backup started", metadata: ["backup.path": "\(destination)"])
        do {
            let result = try searcher.store.backup(to: destination)
            logger.notice("backup written", metadata: ["backup.path": "\(result.path)", "backup.bytes": "\(result.bytes)",
                                                       "backup.seconds": "\((result.seconds * 1000).rounded() / 1000)"])
            return [("path", .string(result.path)), ("bytes", .int(Int64(result.bytes))),
                    ("took_ms", .double((result.seconds * 1e6).rounded() / 1000))]
        } catch {
            logger.error("backup failed", metadata: ["backup.path": "\(destination)", "error": "\(error.message)"])
            switch error.kind {
            case .destination: throw WireError(.invalidArgument, "field 'dest': \(error.message)")
            case .busy: throw WireError(.unavailable, error.message)
            case .failed: throw WireError(.internal, "backup failed: \(error.message)")
            }
        }
    }

    /// One log line per request that hid sources or withheld files from its client.
    private func refused(_ view: AccessView, op: String) {
        let withheld = view.withheldFiles
        let hidesSources = !view.hiddenRoots.isEmpty && (op == "status" || op == "sources")
        guard withheld > 0 || hidesSources else { return }
        logger.notice("access refused", metadata: ["client.pid": "\(view.client.pid)", "client.uid": "\(view.client.uid)", "op": "\(op)",
                                                   "files.withheld": "\(withheld)", "sources.hidden": "\(view.hiddenRoots.count)"])
    }

    private func search(_ request: SearchRequest, view: AccessView) throws -> [(String, JSONValue)] {
        let started = DispatchTime.now().uptimeNanoseconds
        let filter = ChunkFilter(pathPrefixes: request.filter.pathPrefixes, extensions: request.filter.extensions, tags: request.filter.tags,
                                 modifiedAfterNanos: request.filter.modifiedAfter.map { seconds in
                                     // Clamped: a date centuries away must not overflow (and trap).
                                     let nanos = (seconds * 1e9).rounded()
                                     return nanos >= 9.2e18 ? Int64.max : (nanos <= -9.2e18 ? Int64.min : Int64(nanos))
                                 }, access: view)
        let hits: [QueryHit]
        do {
            switch request.mode {
            case .bm25:
                hits = try searcher.searchBM25(request.query, k: request.k, filter: filter, includeText: request.includeText)
            case .dense, .hybrid:
                guard searcher.embedder != nil else {
                    let reason = denseUnavailable() ?? "no embedding model is loaded"
                    throw WireError(.unsupported, "mode '\(request.mode.rawValue)' needs dense vectors: \(reason); use mode 'bm25'")
                }
                if request.mode == .dense {
                    hits = try searcher.searchDense(request.query, k: request.k, filter: filter, includeText: request.includeText)
                } else {
                    var fusion = defaultFusion
                    switch request.fusion.method {
                    case .rrf: fusion = .reciprocalRank(k: 60)
                    case .weighted:
                        if case .weighted(let w) = defaultFusion { fusion = .weighted(denseWeight: w) } else { fusion = .weighted(denseWeight: 0.7) }
                    case nil: break
                    }
                    if let weight = request.fusion.denseWeight {
                        if case .reciprocalRank = fusion, request.fusion.method == nil { fusion = .weighted(denseWeight: weight) }
                        if case .weighted = fusion { fusion = .weighted(denseWeight: weight) }
                    }
                    hits = try searcher.searchHybrid(request.query, k: request.k, filter: filter, fusion: fusion, includeText: request.includeText)
                }
            }
        } catch let error as QueryError {
            throw WireError(.unavailable, error.message)
        }
        let results: [JSONValue] = hits.map { hit in
            var fields: [(String, JSONValue)] = [
                ("path", .string(hit.path)),
                ("lines", [.int(Int64(hit.lines.lowerBound)), .int(Int64(hit.lines.upperBound))]),
                ("heading", .string(hit.headings.joined(separator: " > "))),
                ("headings", .array(hit.headings.map { .string($0) })),
                ("score", .double(hit.score)),
                ("bm25", hit.bm25.map { .double($0) } ?? .null),
                ("dense", hit.dense.map { .double($0) } ?? .null),
                ("chunk", .int(Int64(hit.chunkID))),
            ]
            if let text = hit.text { fields.append(("text", .string(text))) }
            return .object(fields)
        }
        let tookMs = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6
        return [("results", .array(results)), ("mode", .string(request.mode.rawValue)),
                ("took_ms", .double((tookMs * 1000).rounded() / 1000))]
    }

    private func get(_ request: GetRequest, view: AccessView) throws -> [(String, JSONValue)] {
        switch request.target {
        case .chunk(let id):
            // A hidden file's chunk is answered exactly like a missing one.
            guard let chunk = try searcher.store.chunk(id: id), let file = try searcher.store.fileRecord(id: chunk.fileID),
                  !view.restricts || view.admits(path: file.path) else {
                throw WireError(.notFound, "no chunk \(id) in the index")
            }
            return [("chunk", .int(Int64(id))), ("path", .string(file.path)),
                    ("lines", [.int(Int64(chunk.lines.lowerBound)), .int(Int64(chunk.lines.upperBound))]),
                    ("heading", .string(chunk.headings.joined(separator: " > "))),
                    ("headings", .array(chunk.headings.map { .string($0) })), ("text", .string(chunk.text))]
        case .file(let path, let lines):
            // Only indexed files may be read, so `get` cannot be used to read arbitrary files as the daemon's user.
            guard try searcher.store.file(path: path) != nil, !view.restricts || view.admits(path: path) else {
                throw WireError(.notFound, "\(path) is not an indexed file")
            }
            guard var bytes = readFile(path) else {
                throw WireError(.notFound, "\(path) is indexed but cannot be read now: \(String(cString: strerror(errno)))")
            }
            // A gzipped document's lines are those of its decompressed text, as indexed.
            if path.lowercased().hasSuffix(".gz") {
                guard let inflated = Gzip.decompressedPrefix(bytes, limit: maxGetBytes) else {
                    throw WireError(.notFound, "\(path) is indexed but cannot be decompressed now")
                }
                bytes = inflated
            }
            var text = String(decoding: bytes, as: UTF8.self)
            var lineList = text.split(separator: "\n", omittingEmptySubsequences: false)
            if lineList.last == "" { lineList.removeLast() }
            let total = lineList.count
            var range = 1...max(total, 1)
            if let lines {
                guard lines.lowerBound <= max(total, 1) else {
                    throw WireError(.invalidArgument, "\(path) has \(total) lines; asked for \(lines.lowerBound)-\(lines.upperBound)")
                }
                range = lines.lowerBound...min(lines.upperBound, max(total, 1))
            }
            if total > 0 {
                text = lineList[(range.lowerBound - 1)..<min(range.upperBound, total)].map { $0.hasSuffix("\r") ? String($0.dropLast()) : String($0) }.joined(separator: "\n")
            } else {
                text = ""
            }
            return [("path", .string(path)), ("lines", [.int(Int64(range.lowerBound)), .int(Int64(range.upperBound))]),
                    ("total_lines", .int(Int64(total))), ("text", .string(text))]
        }
    }

    private func readFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { errno = EINVAL; return nil }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while out.count < maxGetBytes {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue } else { return nil } }
            if n == 0 { break }
            out.append(contentsOf: buffer[0..<n])
        }
        if out.count > maxGetBytes { out.removeSubrange(maxGetBytes...) }
        return out
    }
}

/// Version of the wire protocol, reported by `ping` and `status`. Additive changes keep it.
public let ragProtocolVersion = 1

/// Machine-readable error codes of the wire protocol (documented in docs/protocol.md).
public struct WireErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    /// The line is not a JSON object, or lacks `id` or `op`.
    public static let badRequest = WireErrorCode(rawValue: "bad_request")
    /// `op` names no operation.
    public static let unknownOp = WireErrorCode(rawValue: "unknown_op")
    /// A field has the wrong type or an out-of-range value (the message names the field).
    public static let invalidArgument = WireErrorCode(rawValue: "invalid_argument")
    /// The request is valid but this daemon cannot serve it yet (for example dense retrieval).
    public static let unsupported = WireErrorCode(rawValue: "unsupported")
    /// `get` named a path or chunk that is not in the index.
    public static let notFound = WireErrorCode(rawValue: "not_found")
    /// The request line exceeded the size limit; the connection is closed after this reply.
    public static let requestTooLarge = WireErrorCode(rawValue: "request_too_large")
    /// The daemon cannot answer right now (shutting down, store unavailable).
    public static let unavailable = WireErrorCode(rawValue: "unavailable")
    /// `sync` did not catch up within its timeout.
    public static let timeout = WireErrorCode(rawValue: "timeout")
    /// The client may not use this op (`metrics`, `backup`: see docs/security.md).
    public static let permissionDenied = WireErrorCode(rawValue: "permission_denied")
    /// A bug or an unexpected failure; details are in the daemon's log.
    public static let `internal` = WireErrorCode(rawValue: "internal")

    /// Every code above.
    public static let all: [WireErrorCode] = [.badRequest, .unknownOp, .invalidArgument, .unsupported, .notFound, .requestTooLarge,
                                              .unavailable, .timeout, .permissionDenied, .internal]
}

/// An error that is answered on the wire as `{"code":…,"message":…}`.
public struct WireError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: WireErrorCode
    public var message: String
    public init(_ code: WireErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "\(code): \(message)" }
}

/// Retrieval strategy of a search.
public enum SearchMode: String, Sendable, CaseIterable {
    case bm25, dense, hybrid
}

/// Metadata restrictions applied before the top-k is cut.
public struct SearchFilter: Sendable, Equatable {
    /// Keep hits whose absolute path starts with one of these (a folder prefix matches whole components).
    public var pathPrefixes: [String] = []
    /// Keep hits whose file extension (without the dot, lower-case; `rst.txt` counts as `rst`, `md.gz` as `md`) is
    /// one of these.
    public var extensions: [String] = []
    /// Keep hits whose file's front matter lists at least one of these tags (case-insensitive).
    public var tags: [String] = []
    /// Keep hits whose file was modified after this time (seconds since the epoch).
    public var modifiedAfter: Double?
    public init(pathPrefixes: [String] = [], extensions: [String] = [], tags: [String] = [], modifiedAfter: Double? = nil) {
        self.pathPrefixes = pathPrefixes
        self.extensions = extensions
        self.tags = tags
        self.modifiedAfter = modifiedAfter
    }
    public var isEmpty: Bool { pathPrefixes.isEmpty && extensions.isEmpty && tags.isEmpty && modifiedAfter == nil }
}

/// How a hybrid search fuses its two rankings; nil fields take the daemon's defaults.
public struct FusionRequest: Sendable, Equatable {
    public enum Method: String, Sendable { case rrf, weighted }
    public var method: Method?
    /// Weight of the dense score in `weighted` fusion, 0…1.
    public var denseWeight: Double?
    public init(method: Method? = nil, denseWeight: Double? = nil) {
        self.method = method
        self.denseWeight = denseWeight
    }
}

public struct SearchRequest: Sendable, Equatable {
    public var query: String
    public var k: Int
    public var mode: SearchMode
    public var filter: SearchFilter
    public var fusion: FusionRequest
    /// Whether hits carry their text (default true).
    public var includeText: Bool
    public init(query: String, k: Int = 10, mode: SearchMode = .hybrid, filter: SearchFilter = .init(), fusion: FusionRequest = .init(),
                includeText: Bool = true) {
        self.query = query
        self.k = k
        self.mode = mode
        self.filter = filter
        self.fusion = fusion
        self.includeText = includeText
    }
}

public struct GetRequest: Sendable, Equatable {
    /// A chunk by its id (as reported in search hits), or a file's line range by path.
    public enum Target: Sendable, Equatable {
        case chunk(UInt32)
        case file(path: String, lines: ClosedRange<Int>?)
    }
    public var target: Target
    public init(target: Target) { self.target = target }
}

/// A decoded request.
public enum Request: Sendable, Equatable {
    case search(SearchRequest)
    case status
    case get(GetRequest)
    case ping
    /// Wait until every change made on disk before the request is searchable (at most `timeout` seconds).
    case sync(timeout: Double, vectors: Bool)
    /// The indexed files (optionally under a path prefix) with size, mtime, content hash and chunk count.
    case files(pathPrefix: String?)
    /// The configured sources the client may see, with their file and chunk counts.
    case sources
    /// The daemon's counters, gauges and histograms in the Prometheus text format.
    case metrics
    /// A compacted copy of the index into a new folder `destination` (absolute), from which ragd can start.
    case backup(destination: String)
    /// Read and chunk again the files at or below `path` (every source the client may see when nil), even unchanged.
    case reindex(path: String?)
}

/// Limits applied while decoding requests.
public struct RequestLimits: Sendable {
    public var maxK: Int
    public var maxQueryBytes: Int
    public init(maxK: Int = 1000, maxQueryBytes: Int = 8192) {
        self.maxK = maxK
        self.maxQueryBytes = maxQueryBytes
    }
}

/// One request line, decoded: its `id` (echoed back, any JSON scalar) and either the request or why it was refused.
public struct DecodedRequest: Sendable {
    public var id: JSONValue
    public var result: Result<Request, WireError>
}

public enum RequestDecoder {
    /// Decodes one line (without its newline). Never throws: a bad line yields an error result with the best `id` found.
    public static func decode<C: Collection>(line: C, limits: RequestLimits = .init()) -> DecodedRequest where C.Element == UInt8 {
        let value: JSONValue
        do {
            value = try JSONParser.parse(line)
        } catch {
            return DecodedRequest(id: .null, result: .failure(WireError(.badRequest, "malformed JSON: \(error)")))
        }
        guard case .object = value else {
            return DecodedRequest(id: .null, result: .failure(WireError(.badRequest, "a request must be a JSON object, got \(value.typeName)")))
        }
        let id = value["id"] ?? .null
        switch id {
        case .null:
            return DecodedRequest(id: .null, result: .failure(WireError(.badRequest, "missing field 'id'")))
        case .array, .object:
            return DecodedRequest(id: .null, result: .failure(WireError(.badRequest, "field 'id' must be a number or a string")))
        default: break
        }
        guard let opValue = value["op"] else {
            return DecodedRequest(id: id, result: .failure(WireError(.badRequest, "missing field 'op'")))
        }
        guard let op = opValue.stringValue else {
            return DecodedRequest(id: id, result: .failure(WireError(.invalidArgument, "field 'op' must be a string, got \(opValue.typeName)")))
        }
        do {
            return DecodedRequest(id: id, result: .success(try decode(op: op, value, limits: limits)))
        } catch let error as WireError {
            return DecodedRequest(id: id, result: .failure(error))
        } catch {
            return DecodedRequest(id: id, result: .failure(WireError(.internal, "\(error)")))
        }
    }

    private static func decode(op: String, _ value: JSONValue, limits: RequestLimits) throws -> Request {
        switch op {
        case "ping": return .ping
        case "status": return .status
        case "sources": return .sources
        case "metrics": return .metrics
        case "backup":
            guard let dest = value["dest"]?.stringValue, dest.hasPrefix("/"), dest.count > 1,
                  !dest.split(separator: "/", omittingEmptySubsequences: false).dropFirst().contains(where: { $0.isEmpty || $0 == "." || $0 == ".." })
            else {
                throw WireError(.invalidArgument, "field 'dest' must be an absolute path without '.', '..' or empty components")
            }
            return .backup(destination: dest)
        case "reindex":
            guard let p = value["path"], p != .null else { return .reindex(path: nil) }
            guard let path = p.stringValue, path.hasPrefix("/") else {
                throw WireError(.invalidArgument, "field 'path' must be an absolute path")
            }
            // `/srv/docs/` names the folder `/srv/docs`.
            var trimmed = Substring(path)
            while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
            return .reindex(path: String(trimmed))
        case "search": return .search(try decodeSearch(value, limits: limits))
        case "get": return .get(try decodeGet(value))
        case "files":
            var prefix: String? = nil
            if let p = value["path_prefix"], p != .null {
                guard let s = p.stringValue, s.hasPrefix("/") else {
                    throw WireError(.invalidArgument, "field 'path_prefix' must be an absolute path")
                }
                prefix = s
            }
            return .files(pathPrefix: prefix)
        case "sync":
            var timeout = 10.0
            if let t = value["timeout_ms"], t != .null {
                guard let ms = t.intValue, ms >= 0, ms <= 600_000 else {
                    throw WireError(.invalidArgument, "field 'timeout_ms' must be an integer between 0 and 600000")
                }
                timeout = Double(ms) / 1000
            }
            var vectors = true
            if let v = value["vectors"], v != .null {
                guard let flag = v.boolValue else { throw WireError(.invalidArgument, "field 'vectors' must be a boolean") }
                vectors = flag
            }
            return .sync(timeout: timeout, vectors: vectors)
        default:
            throw WireError(.unknownOp, "unknown op '\(op)'; expected one of search, status, sources, get, files, sync, reindex, ping, metrics, backup")
        }
    }

    private static func decodeSearch(_ value: JSONValue, limits: RequestLimits) throws -> SearchRequest {
        guard let queryValue = value["query"] else { throw WireError(.invalidArgument, "missing field 'query'") }
        guard let query = queryValue.stringValue else {
            throw WireError(.invalidArgument, "field 'query' must be a string, got \(queryValue.typeName)")
        }
        if query.utf8.count > limits.maxQueryBytes {
            throw WireError(.invalidArgument, "field 'query' is \(query.utf8.count) bytes; the limit is \(limits.maxQueryBytes)")
        }
        var request = SearchRequest(query: query)
        if let kValue = value["k"], kValue != .null {
            guard let k = kValue.intValue else {
                throw WireError(.invalidArgument, "field 'k' must be an integer, got \(kValue.typeName == "number" ? "a fraction" : kValue.typeName)")
            }
            guard k >= 1 && k <= limits.maxK else {
                throw WireError(.invalidArgument, "field 'k' must be between 1 and \(limits.maxK), got \(k)")
            }
            request.k = k
        }
        if let modeValue = value["mode"], modeValue != .null {
            guard let name = modeValue.stringValue else {
                throw WireError(.invalidArgument, "field 'mode' must be a string, got \(modeValue.typeName)")
            }
            guard let mode = SearchMode(rawValue: name) else {
                throw WireError(.invalidArgument, "field 'mode' must be one of bm25, dense, hybrid, got '\(name)'")
            }
            request.mode = mode
        }
        if let fusionValue = value["fusion"], fusionValue != .null {
            guard let name = fusionValue.stringValue, let method = FusionRequest.Method(rawValue: name) else {
                throw WireError(.invalidArgument, "field 'fusion' must be 'rrf' or 'weighted'")
            }
            request.fusion.method = method
        }
        if let weightValue = value["dense_weight"], weightValue != .null {
            guard let weight = weightValue.doubleValue, weight >= 0, weight <= 1 else {
                throw WireError(.invalidArgument, "field 'dense_weight' must be a number between 0 and 1")
            }
            request.fusion.denseWeight = weight
        }
        if let textValue = value["text"], textValue != .null {
            guard let flag = textValue.boolValue else {
                throw WireError(.invalidArgument, "field 'text' must be a boolean, got \(textValue.typeName)")
            }
            request.includeText = flag
        }
        if let filterValue = value["filter"], filterValue != .null {
            guard let members = filterValue.objectValue else {
                throw WireError(.invalidArgument, "field 'filter' must be an object, got \(filterValue.typeName)")
            }
            for (key, member) in members {
                switch key {
                case "path_prefix":
                    request.filter.pathPrefixes = try stringList(member, field: "filter.path_prefix")
                    for prefix in request.filter.pathPrefixes where !prefix.hasPrefix("/") {
                        throw WireError(.invalidArgument, "field 'filter.path_prefix' must hold absolute paths, got '\(prefix)'")
                    }
                case "ext":
                    request.filter.extensions = try stringList(member, field: "filter.ext").map(normalizeExtension)
                case "tags":
                    request.filter.tags = try stringList(member, field: "filter.tags").map { $0.lowercased() }
                case "modified_after":
                    if let seconds = member.doubleValue, seconds.isFinite {
                        request.filter.modifiedAfter = seconds
                    } else if let text = member.stringValue, let seconds = parseTimestamp(text) {
                        request.filter.modifiedAfter = seconds
                    } else {
                        throw WireError(.invalidArgument, "field 'filter.modified_after' must be seconds since the epoch or an ISO 8601 date (2026-11-27 or 2026-11-27T10:00:00Z)")
                    }
                default:
                    throw WireError(.invalidArgument, "unknown filter field '\(key)'; expected path_prefix, ext, tags or modified_after")
                }
            }
        }
        return request
    }

    /// `2026-11-27`, `2026-11-27T10:00:00Z` or with a `±hh:mm` offset, as seconds since the epoch (UTC).
    public static func parseTimestamp(_ text: String) -> Double? {
        let bytes = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= bytes.count else { return nil }
            var value = 0
            for b in bytes[range] { guard b >= 48 && b <= 57 else { return nil }; value = value * 10 + Int(b - 48) }
            return value
        }
        guard bytes.count >= 10, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
              let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              (1...12).contains(month), (1...31).contains(day) else { return nil }
        var seconds = 0
        var offset = 0
        if bytes.count > 10 {
            guard bytes.count >= 19, bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: " "),
                  let h = number(11..<13), let m = number(14..<16), let sec = number(17..<19), h < 24, m < 60, sec < 61 else { return nil }
            seconds = h * 3600 + m * 60 + sec
            var rest = bytes[19...]
            if rest.first == UInt8(ascii: ".") { rest = rest.drop(while: { $0 == UInt8(ascii: ".") || ($0 >= 48 && $0 <= 57) }) }
            if rest.first == UInt8(ascii: "Z") { rest = rest.dropFirst() }
            else if let sign = rest.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
                let tz = Array(rest.dropFirst())
                guard tz.count == 5, tz[2] == UInt8(ascii: ":"),
                      let oh = Int(String(decoding: tz[0..<2], as: UTF8.self)), let om = Int(String(decoding: tz[3..<5], as: UTF8.self)) else { return nil }
                offset = (oh * 3600 + om * 60) * (sign == UInt8(ascii: "+") ? 1 : -1)
                rest = []
            }
            guard rest.isEmpty else { return nil }
        }
        // Days from the civil date (proleptic Gregorian), after Howard Hinnant's algorithm.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146097 + doe - 719468
        return Double(days * 86400 + seconds - offset)
    }

    /// `.MD` → `md`; `rst.txt` → `rst`; `md.gz` → `md` (gzipped files count as what they hold).
    public static func normalizeExtension(_ ext: String) -> String {
        var e = ext.lowercased()
        while e.hasPrefix(".") { e.removeFirst() }
        if e.hasSuffix(".gz"), e.count > 3 { e.removeLast(3) }
        if e == "rst.txt" { return "rst" }
        return e
    }

    private static func stringList(_ value: JSONValue, field: String) throws -> [String] {
        if let s = value.stringValue { return [s] }
        guard let items = value.arrayValue else {
            throw WireError(.invalidArgument, "field '\(field)' must be a string or an array of strings, got \(value.typeName)")
        }
        return try items.map { item in
            guard let s = item.stringValue else {
                throw WireError(.invalidArgument, "field '\(field)' must hold strings, got \(item.typeName)")
            }
            return s
        }
    }

    private static func decodeGet(_ value: JSONValue) throws -> GetRequest {
        if let chunkValue = value["chunk"], chunkValue != .null {
            guard let id = chunkValue.intValue, id >= 0, id <= Int(UInt32.max) else {
                throw WireError(.invalidArgument, "field 'chunk' must be a chunk id (a non-negative integer)")
            }
            return GetRequest(target: .chunk(UInt32(id)))
        }
        guard let pathValue = value["path"] else {
            throw WireError(.invalidArgument, "get needs 'path' (with optional 'lines') or 'chunk'")
        }
        guard let path = pathValue.stringValue, path.hasPrefix("/") else {
            throw WireError(.invalidArgument, "field 'path' must be an absolute path")
        }
        var lines: ClosedRange<Int>? = nil
        if let linesValue = value["lines"], linesValue != .null {
            guard let pair = linesValue.arrayValue, pair.count == 2, let first = pair[0].intValue, let last = pair[1].intValue,
                first >= 1, last >= first
            else {
                throw WireError(.invalidArgument, "field 'lines' must be [first, last] with 1 <= first <= last")
            }
            lines = first...last
        }
        return GetRequest(target: .file(path: path, lines: lines))
    }
}

/// Builders for reply lines.
public enum Reply {
    /// `{"id":…,"ok":true, …fields}` as one line without the newline.
    public static func success(id: JSONValue, _ fields: [(String, JSONValue)]) -> JSONValue {
        .object([("id", id), ("ok", true)] + fields)
    }

    /// `{"id":…,"ok":false,"error":{"code":…,"message":…}}`.
    public static func failure(id: JSONValue, _ error: WireError) -> JSONValue {
        .object([
            ("id", id), ("ok", false),
            ("error", .object([("code", .string(error.code.rawValue)), ("message", .string(error.message))])),
        ])
    }
}

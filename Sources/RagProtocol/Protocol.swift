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
    /// A bug or an unexpected failure; details are in the daemon's log.
    public static let `internal` = WireErrorCode(rawValue: "internal")
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
    /// Keep hits whose file extension (without the dot, lower-case; `rst.txt` counts as `rst`) is one of these.
    public var extensions: [String] = []
    public init(pathPrefixes: [String] = [], extensions: [String] = []) {
        self.pathPrefixes = pathPrefixes
        self.extensions = extensions
    }
    public var isEmpty: Bool { pathPrefixes.isEmpty && extensions.isEmpty }
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
            throw WireError(.unknownOp, "unknown op '\(op)'; expected one of search, status, get, files, sync, ping")
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
                default:
                    throw WireError(.invalidArgument, "unknown filter field '\(key)'; expected path_prefix or ext")
                }
            }
        }
        return request
    }

    /// `.MD` → `md`; `rst.txt` → `rst`.
    public static func normalizeExtension(_ ext: String) -> String {
        var e = ext.lowercased()
        while e.hasPrefix(".") { e.removeFirst() }
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

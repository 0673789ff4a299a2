import ArgumentParser
import Dispatch
import Foundation
import Glibc
import Logging
import MCP
import RagProtocol

/// `ragctl mcp`: a Model Context Protocol server on stdin/stdout whose tools ask ragd over its socket.
struct MCPServe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp",
        abstract: "Serve ragd's search to AI agents: a Model Context Protocol server on stdin/stdout.",
        discussion: """
            Register it with an MCP client, e.g. `claude mcp add ragd -- ragctl mcp`. Tools: search and get \
            (see docs/mcp.md). Each tool call connects to ragd anew, so ragd may be started or restarted while \
            the server runs; a call that cannot reach ragd returns an error result. Standard output carries only \
            MCP messages, diagnostics go to standard error. The server exits 0 when standard input is closed, \
            after answering the requests it has read.
            """)

    @Flag(name: .long, help: "Log debugging details to standard error.")
    var verbose = false

    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        // A client that goes away must not kill us on a write to the closed pipe: writes fail with EPIPE instead.
        signal(SIGPIPE, SIG_IGN)
        // The SDK's transport makes stdin and stdout non-blocking; they may be shared with a terminal or a parent.
        let stdinFlags = fcntl(0, F_GETFL), stdoutFlags = fcntl(1, F_GETFL)
        defer {
            if stdinFlags >= 0 { _ = fcntl(0, F_SETFL, stdinFlags) }
            if stdoutFlags >= 0 { _ = fcntl(1, F_SETFL, stdoutFlags) }
        }
        var logger = Logger(label: "ragctl.mcp") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = verbose ? .debug : .warning
        let tools = RagdTools(socketPath: Client.socketPath(connection.socket))

        // RagCtl's main is synchronous: run the async server on the concurrency pool and wait for it here.
        let outcome = Outcome()
        let finished = DispatchSemaphore(value: 0)
        Task {
            do { try await Self.serve(tools: tools, logger: logger) } catch { outcome.error = error }
            finished.signal()
        }
        finished.wait()
        if let error = outcome.error {
            printError("mcp server failed: \(error)")
            throw ExitCode(1)
        }
    }

    /// Answers MCP requests until standard input ends.
    static func serve(tools: RagdTools, logger: Logger) async throws {
        let server = Server(
            name: "ragd",
            version: RagCtl.configuration.version,
            title: "ragd documentation search",
            instructions: """
                Searches the local documentation folders indexed by ragd. Use `search` to find passages, cite them \
                as path:first-last, and `get` to read more lines of a file.
                """,
            capabilities: .init(tools: .init(listChanged: false)))
        await server.withMethodHandler(ListTools.self) { _ in
            ListTools.Result(tools: [RagdTools.search, RagdTools.get])
        }
        await server.withMethodHandler(CallTool.self) { params in
            try await tools.call(params)
        }
        try await server.start(transport: DrainingStdioTransport(logger: logger))
        logger.debug("serving MCP on stdio", metadata: ["socket": "\(tools.socketPath)"])
        await server.waitUntilCompleted()
        logger.debug("standard input closed; exiting")
    }

    /// The server task's failure, handed to the waiting thread (written before the semaphore is signalled).
    private final class Outcome: @unchecked Sendable {
        var error: (any Error)?
    }
}

/// A tool call the arguments of which are wrong: reported to the agent as an error result.
struct ToolArgumentError: Error {
    var message: String
}

/// The MCP tools, each a request to ragd.
struct RagdTools: Sendable {
    let socketPath: String

    static let readOnly = Tool.Annotations(readOnlyHint: true, idempotentHint: true, openWorldHint: false)

    static let search = Tool(
        name: "search",
        title: "Search the documentation",
        description: """
            Search the local documentation indexed by ragd (Markdown, reStructuredText, plain-text and HTML files, \
            also gzipped) and return the best-matching passages, best first. Each hit gives the file's absolute path \
            and line range as path:first-last (1-based, inclusive, lines of the file on disk, decompressed for .gz), \
            its heading trail, its score and the passage text, so an answer can cite it; use `get` to read around a \
            hit. Modes: `hybrid` (the \
            default; words and meaning combined), `bm25` (exact words: identifiers, option names, error messages), \
            `dense` (meaning, for paraphrased questions). Filters narrow the files searched.
            """,
        inputSchema: [
            "type": "object",
            "properties": [
                "query": ["type": "string", "description": "What to look for: a question, keywords or an identifier."],
                "k": ["type": "integer", "minimum": 1, "description": "Number of hits to return (default 10)."],
                "mode": ["type": "string", "enum": ["hybrid", "bm25", "dense"],
                         "description": "Retrieval mode (default hybrid). dense and hybrid need ragd's embedding model."],
                "path_prefix": ["type": "array", "items": ["type": "string"],
                                "description": "Only files under one of these absolute folders (or these files)."],
                "ext": ["type": "array", "items": ["type": "string"],
                        "description": "Only files with one of these extensions, e.g. [\"md\", \"rst\"]."],
                "tags": ["type": "array", "items": ["type": "string"],
                         "description": "Only files whose front matter has one of these tags."],
                "modified_after": ["type": "string",
                                   "description": "Only files modified after this time: ISO 8601 (2026-11-27, 2026-11-27T10:00:00Z) or seconds since the epoch."],
            ],
            "required": ["query"],
            "additionalProperties": false,
        ],
        annotations: readOnly,
        outputSchema: [
            "type": "object",
            "properties": [
                "results": [
                    "type": "array",
                    "items": [
                        "type": "object",
                        "properties": [
                            "path": ["type": "string"],
                            "lines": ["type": "array", "items": ["type": "integer"], "description": "[first, last]"],
                            "heading": ["type": "string"],
                            "headings": ["type": "array", "items": ["type": "string"]],
                            "score": ["type": "number"],
                            "bm25": ["type": ["number", "null"]],
                            "dense": ["type": ["number", "null"]],
                            "chunk": ["type": "integer"],
                            "text": ["type": "string"],
                        ],
                    ],
                ],
                "mode": ["type": "string"],
                "took_ms": ["type": "number"],
            ],
            "required": ["results"],
        ])

    static let get = Tool(
        name: "get",
        title: "Read lines of an indexed file",
        description: """
            Read a file indexed by ragd, whole or a range of lines, as it is on disk now, e.g. the context around a \
            search hit. Each line is prefixed with its number and a tab. `path` is the absolute path that `search` \
            reports; only indexed files can be read. `start` and `end` are 1-based and inclusive; without them the \
            whole file is returned (at most 4 MiB), an `end` beyond the file is clipped.
            """,
        inputSchema: [
            "type": "object",
            "properties": [
                "path": ["type": "string", "description": "Absolute path of an indexed file."],
                "start": ["type": "integer", "minimum": 1, "description": "First line (default 1)."],
                "end": ["type": "integer", "minimum": 1, "description": "Last line (default: the end of the file)."],
            ],
            "required": ["path"],
            "additionalProperties": false,
        ],
        annotations: readOnly,
        outputSchema: [
            "type": "object",
            "properties": [
                "path": ["type": "string"],
                "lines": ["type": "array", "items": ["type": "integer"], "description": "[first, last] returned"],
                "total_lines": ["type": "integer"],
                "text": ["type": "string", "description": "The lines joined by newlines, without numbers."],
            ],
            "required": ["path", "text"],
        ])

    /// Runs a tool. Bad arguments, ragd's errors and an unreachable ragd become error results the agent can read;
    /// only an unknown tool is a protocol error.
    func call(_ params: CallTool.Parameters) async throws -> CallTool.Result {
        let arguments = params.arguments ?? [:]
        do {
            switch params.name {
            case "search": return try await search(arguments)
            case "get": return try await get(arguments)
            default: throw MCPError.invalidParams("unknown tool '\(params.name)'; the tools are search and get")
            }
        } catch let error as ToolArgumentError {
            return CallTool.Result(content: [.text(text: error.message, annotations: nil, _meta: nil)], isError: true)
        } catch let error as ClientError {
            return CallTool.Result(content: [.text(text: error.description, annotations: nil, _meta: nil)], isError: true)
        }
    }

    func search(_ arguments: [String: Value]) async throws -> CallTool.Result {
        try Self.expect(arguments, only: ["query", "k", "mode", "path_prefix", "ext", "tags", "modified_after"], tool: "search")
        guard let query = arguments["query"]?.stringValue else {
            throw ToolArgumentError(message: "search needs 'query', a string")
        }
        var fields: [(String, JSONValue)] = [("query", .string(query))]
        if let k = arguments["k"] { fields.append(("k", JSONValue(mcp: k))) }
        if let mode = arguments["mode"] { fields.append(("mode", JSONValue(mcp: mode))) }
        var filter: [(String, JSONValue)] = []
        for name in ["path_prefix", "ext", "tags"] {
            if let value = arguments[name] { filter.append((name, JSONValue(mcp: value))) }
        }
        if let after = arguments["modified_after"] {
            // Epoch seconds may come as a number or as a numeric string, as with `ragctl search --modified-after`.
            filter.append(("modified_after", after.stringValue.flatMap(Double.init).map { .double($0) } ?? JSONValue(mcp: after)))
        }
        if !filter.isEmpty { fields.append(("filter", .object(filter))) }

        let reply = try await ragd("search", fields)
        let hits = reply["results"]?.arrayValue ?? []
        let mode = reply["mode"]?.stringValue ?? "?"
        var text: String
        if hits.isEmpty {
            text = "No results for \"\(query)\" (mode \(mode)). Try other words, another mode, or fewer filters."
        } else {
            text = "\(hits.count) result\(hits.count == 1 ? "" : "s") for \"\(query)\" (mode \(mode)), best first. "
                + "Cite a hit as path:first-last; `get` reads more of its file."
            for (n, hit) in hits.enumerated() {
                var header = "[\(n + 1)] \(Self.citation(hit))"
                if let heading = hit["heading"]?.stringValue, !heading.isEmpty { header += " | \(heading)" }
                header += " | score \(format3(hit["score"]?.doubleValue ?? 0))"
                var body = hit["text"]?.stringValue ?? ""
                while body.hasSuffix("\n") { body.removeLast() }
                text += "\n\n" + header + "\n" + body
            }
        }
        return Self.result(text, structured: Value(ragdReply: reply))
    }

    func get(_ arguments: [String: Value]) async throws -> CallTool.Result {
        try Self.expect(arguments, only: ["path", "start", "end"], tool: "get")
        guard let path = arguments["path"]?.stringValue else { throw ToolArgumentError(message: "get needs 'path', a string") }
        guard path.hasPrefix("/") else {
            throw ToolArgumentError(message: "'path' must be absolute, as search reports it: \(path)")
        }
        let start = try Self.lineNumber(arguments["start"], "start")
        let end = try Self.lineNumber(arguments["end"], "end")
        var fields: [(String, JSONValue)] = [("path", .string(path))]
        if start != nil || end != nil {
            // ragd clips a last line beyond the end of the file.
            fields.append(("lines", [.int(Int64(start ?? 1)), .int(Int64(end ?? Int(Int32.max)))]))
        }
        let reply = try await ragd("get", fields)
        let body = reply["text"]?.stringValue ?? ""
        let lines = reply["lines"]?.arrayValue?.compactMap(\.intValue) ?? []
        let first = lines.first ?? 1
        var text = Self.citation(reply)
        if let total = reply["total_lines"]?.intValue { text += " (the file has \(total) lines)" }
        let numbered = body.split(separator: "\n", omittingEmptySubsequences: false)
        let width = String(first + numbered.count - 1).count
        for (i, line) in numbered.enumerated() {
            let number = String(first + i)
            text += "\n" + String(repeating: " ", count: width - number.count) + number + "\t" + line
        }
        return Self.result(text, structured: Value(ragdReply: reply))
    }

    /// A successful result: `text` for the agent, `structured` as structured content.
    static func result(_ text: String, structured: Value) -> CallTool.Result {
        let content: Value? = structured
        return CallTool.Result(content: [.text(text: text, annotations: nil, _meta: nil)], structuredContent: content)
    }

    /// One request to ragd on a thread of its own (the socket client blocks), so the concurrency pool stays free.
    func ragd(_ op: String, _ fields: [(String, JSONValue)]) async throws -> JSONValue {
        let path = socketPath
        return try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try Client(path: path).call(op, fields) })
            }
        }
    }

    /// `path:first-last` of a hit or a `get` reply.
    static func citation(_ reply: JSONValue) -> String {
        let path = reply["path"]?.stringValue ?? "?"
        let lines = reply["lines"]?.arrayValue?.compactMap(\.intValue) ?? []
        return lines.count == 2 ? "\(path):\(lines[0])-\(lines[1])" : path
    }

    static func expect(_ arguments: [String: Value], only names: [String], tool: String) throws {
        if let unknown = arguments.keys.sorted().first(where: { !names.contains($0) }) {
            throw ToolArgumentError(message: "\(tool) has no argument '\(unknown)'; its arguments are \(names.joined(separator: ", "))")
        }
    }

    static func lineNumber(_ value: Value?, _ name: String) throws -> Int? {
        guard let value, value != .null else { return nil }
        let number = value.intValue ?? value.doubleValue.flatMap { Int(exactly: $0) }
        guard let number, number >= 1, number <= Int(Int32.max) else {
            throw ToolArgumentError(message: "'\(name)' must be a line number, 1 or more; got \(value)")
        }
        return number
    }
}

extension JSONValue {
    /// An MCP argument as ragd's JSON.
    init(mcp value: Value) {
        switch value {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(Int64(i))
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .data:
            // A string that looked like a data: URL when decoded; give ragd the string back.
            let encoded = (try? JSONEncoder().encode(value)).flatMap { try? JSONDecoder().decode(String.self, from: $0) }
            self = .string(encoded ?? "")
        case .array(let items): self = .array(items.map { JSONValue(mcp: $0) })
        case .object(let members): self = .object(members.sorted { $0.key < $1.key }.map { ($0.key, JSONValue(mcp: $0.value)) })
        }
    }
}

extension Value {
    /// A reply of ragd as structured content, without the envelope (`id`, `ok`).
    init(ragdReply reply: JSONValue) {
        guard case .object(let members) = reply else { self.init(ragd: reply); return }
        self.init(ragd: .object(members.filter { $0.0 != "id" && $0.0 != "ok" }))
    }

    init(ragd json: JSONValue) {
        switch json {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(Int(i))
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .array(let items): self = .array(items.map { Value(ragd: $0) })
        case .object(let members):
            self = .object(Dictionary(members.map { ($0.0, Value(ragd: $0.1)) }, uniquingKeysWith: { _, last in last }))
        }
    }
}

import Foundation
import Glibc
import MCP
import RagProtocol
import RagTestSupport
import SystemPackage
import Testing

/// `ragctl mcp` end to end: the real ragd, `ragctl mcp` as a child process, and the MCP SDK's client on its stdio.
/// The client (its message loop, StdioTransport's polling) runs on the cooperative pool, two threads here: beside the
/// blocking tests of other suites it waits for them, up to the length of the whole run, hence the time limit;
/// `make test` runs these tests on their own.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct MCPTests {
    static let install = "# Install\n\nRun the installer.\n\n## Keys\n\nImport the signing keys with gpg\nbefore adding the repository.\n"

    @Test func initializeListAndCallTools() async throws {
        try await withTemporaryDirectory { (dir: String) async throws in
            let docs = dir + "/docs"
            try writeFile(docs + "/install.md", Self.install)
            try writeFile(docs + "/notes.txt", "Plain notes about lmdb cursors and signing.\n")
            let daemon = try DaemonProcess.start(sources: [docs], in: dir)
            try daemon.waitUntilIndexed()
            let server = try MCPServerProcess(socket: daemon.socketPath, stderrPath: dir + "/mcp.err")
            let client = Client(name: "ragd-tests", version: "1.0")

            let initialized = try await client.connect(transport: server.transport)
            #expect(initialized.serverInfo.name == "ragd")
            let version = try runProgram(DaemonProcess.ragctl, ["--version"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(initialized.serverInfo.version == version)
            #expect(initialized.capabilities.tools != nil)

            let tools = try await client.listTools().tools
            #expect(Set(tools.map(\.name)) == ["search", "get"])
            let searchTool = try #require(tools.first { $0.name == "search" })
            #expect(searchTool.description?.contains("path:first-last") == true)
            #expect(searchTool.inputSchema.objectValue?["required"] == ["query"])
            let searchArguments = searchTool.inputSchema.objectValue?["properties"]?.objectValue ?? [:]
            #expect(Set(searchArguments.keys) == ["query", "k", "mode", "path_prefix", "ext", "tags", "modified_after"])
            #expect(searchArguments["mode"]?.objectValue?["enum"] == ["hybrid", "bm25", "dense"])
            let getTool = try #require(tools.first { $0.name == "get" })
            #expect(getTool.inputSchema.objectValue?["required"] == ["path"])
            #expect(Set((getTool.inputSchema["properties"]?.objectValue ?? [:]).keys) == ["path", "start", "end"])

            // A search cites the file and the lines that hold the matching text.
            let found = try await call(client, "search", ["query": "signing keys gpg", "k": 3, "mode": "bm25"])
            #expect(found.isError != true, "\(found.text)")
            #expect(found.text.contains("[1] \(docs)/install.md:5-8 | Install > Keys | score "), "\(found.text)")
            #expect(found.text.contains("## Keys\n\nImport the signing keys with gpg\nbefore adding the repository."))
            let top = try #require(found.structured?["results"]?.arrayValue?.first)
            #expect(top["path"] == .string(docs + "/install.md"))
            #expect(top["heading"] == "Install > Keys")
            let range = top["lines"]?.arrayValue?.compactMap { $0.intValue } ?? []
            let fileLines = Self.install.split(separator: "\n", omittingEmptySubsequences: false)
            #expect(range == [5, 8])
            if range.count == 2, range[0] >= 1, range[0] <= range[1], range[1] <= fileLines.count {
                #expect(fileLines[(range[0] - 1)..<range[1]].joined(separator: "\n").contains("Import the signing keys with gpg"))
            }

            // Filters reach the daemon.
            let onlyText = try await call(client, "search", ["query": "signing", "mode": "bm25", "ext": ["txt"]])
            #expect(onlyText.structured?["results"]?.arrayValue?.compactMap { $0["path"]?.stringValue } == [docs + "/notes.txt"])
            let elsewhere = try await call(client, "search", ["query": "signing", "mode": "bm25", "path_prefix": [.string(dir + "/other")]])
            #expect(elsewhere.isError != true)
            #expect(elsewhere.text.hasPrefix("No results"), "\(elsewhere.text)")
            let future = try await call(client, "search", ["query": "signing", "mode": "bm25", "modified_after": "2999-01-01"])
            #expect(future.structured?["results"]?.arrayValue?.isEmpty == true)

            let read = try await call(client, "get", ["path": .string(docs + "/install.md"), "start": 7, "end": 8])
            #expect(read.isError != true, "\(read.text)")
            #expect(read.text.hasPrefix("\(docs)/install.md:7-8"))
            #expect(read.text.hasSuffix("\n7\tImport the signing keys with gpg\n8\tbefore adding the repository."), "\(read.text)")
            #expect(read.structured?["text"] == "Import the signing keys with gpg\nbefore adding the repository.")

            // Errors are tool results the agent can read, not failures of the server.
            let badMode = try await call(client, "search", ["query": "signing", "mode": "fast"])
            #expect(badMode.isError == true)
            #expect(badMode.text.contains("invalid_argument") && badMode.text.contains("mode"), "\(badMode.text)")
            let unknownArgument = try await call(client, "search", ["query": "signing", "limit": 3])
            #expect(unknownArgument.isError == true)
            #expect(unknownArgument.text.contains("'limit'"))
            let notIndexed = try await call(client, "get", ["path": "/etc/passwd"])
            #expect(notIndexed.isError == true)
            #expect(notIndexed.text.contains("not_found"))
            await #expect(throws: MCPError.self) { try await call(client, "delete", [:]) }

            #expect(daemon.stop() == 0)
            let unreachable = try await call(client, "search", ["query": "signing"])
            #expect(unreachable.isError == true)
            #expect(unreachable.text.contains("Is ragd running?"), "\(unreachable.text)")
            try await client.ping()

            // End of standard input ends the server cleanly.
            await client.disconnect()
            #expect(server.closeInputAndWait() == 0)
            let log = (try? String(contentsOfFile: dir + "/mcp.err", encoding: .utf8)) ?? ""
            #expect(!log.contains("Fatal error"), "\(log)")
        }
    }

    /// Requests written, then end of input while a tool call is still waiting for ragd: the server answers every
    /// request before it exits 0, and its stdout holds only JSON-RPC. ragd is played by the test, so that its reply
    /// comes after the end of input.
    @Test func requestsInFlightAtEndOfInputAreAnswered() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let listener = try listenUnixStream(dir + "/fake.sock")
            defer { close(listener) }
            let server = try MCPServerProcess(socket: dir + "/fake.sock", stderrPath: dir + "/mcp.err")
            let requests = [
                #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"sh","version":"1"}}}"#,
                #"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
                #"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
                #"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"search","arguments":{"query":"keys","mode":"bm25"}}}"#,
                #"{"jsonrpc":"2.0","id":"four","method":"tools/call","params":{"name":"get","arguments":{"path":"relative.md"}}}"#,
            ]
            try server.writeInput(requests.joined(separator: "\n") + "\n")

            // The search reaches "ragd"; only then does the server's input end.
            let connection = try acceptOne(listener, timeoutMilliseconds: 60_000)
            defer { close(connection) }
            let request = try JSONParser.parse(try #require(try readLine(connection)))
            #expect(request["op"] == "search")
            #expect(request["query"] == "keys")
            server.closeInput()
            // A server that quit at end of input would close the connection now (readable: end of stream); one that
            // waits for the reply does not.
            var pfd = pollfd(fd: connection, events: Int16(POLLIN), revents: 0)
            #expect(poll(&pfd, 1, 1000) == 0, "the server closed its ragd connection before the reply")
            let reply = #"{"id":\#(request["id"]?.serialized() ?? "1"),"ok":true,"results":[],"mode":"bm25","took_ms":0.1}"# + "\n"
            _ = reply.withCString { send(connection, $0, strlen($0), Int32(MSG_NOSIGNAL)) }

            let output = server.readOutputToEnd()
            #expect(server.closeInputAndWait() == 0)
            let replies = try output.split(separator: "\n").map { try JSONParser.parse(String($0)) }
            #expect(replies.count == 4, "\(output)")
            for reply in replies { #expect(reply["jsonrpc"] == "2.0") }
            let byID = Dictionary(replies.map { ($0["id"]?.serialized() ?? "", $0) }, uniquingKeysWith: { a, _ in a })
            #expect(Set(byID.keys) == ["1", "2", "3", "\"four\""])
            #expect(byID["2"]?["result"]?["tools"]?.arrayValue?.count == 2)
            #expect(byID["3"]?["result"]?["isError"] == nil)
            #expect(byID["3"]?["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue?.hasPrefix("No results for \"keys\"") == true)
            #expect(byID["\"four\""]?["result"]?["isError"] == true)
        }
    }

    /// Calls `tool` and returns its text and structured content.
    func call(_ client: Client, _ tool: String, _ arguments: [String: Value]) async throws -> (text: String, structured: Value?, isError: Bool?) {
        let result = try await client.send(CallTool.request(.init(name: tool, arguments: arguments))).value
        let text = result.content.map { content -> String in
            if case .text(let text, _, _) = content { return text }
            return ""
        }.joined()
        return (text, result.structuredContent, result.isError)
    }
}

/// `ragctl mcp --socket PATH` as a child process, its stdin and stdout connected to `transport`.
final class MCPServerProcess {
    let process = Process()
    let transport: StdioTransport
    private let toServer: Int32
    private let fromServer: Int32
    private var inputClosed = false

    init(socket: String, stderrPath: String) throws {
        // Socket pairs, as libuv gives a child's stdio: created close-on-exec, so that no other child started
        // meanwhile holds an end open (the server would never see end of input). [0] is ours, [1] the child's.
        var input: [Int32] = [-1, -1], output: [Int32] = [-1, -1]
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        guard socketpair(AF_UNIX, type, 0, &input) == 0 else { throw TestSupportError("socketpair: \(String(cString: strerror(errno)))") }
        guard socketpair(AF_UNIX, type, 0, &output) == 0 else {
            close(input[0]); close(input[1])
            throw TestSupportError("socketpair: \(String(cString: strerror(errno)))")
        }
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: DaemonProcess.ragctl)
        process.arguments = ["mcp", "--socket", socket]
        process.standardInput = FileHandle(fileDescriptor: input[1])
        process.standardOutput = FileHandle(fileDescriptor: output[1])
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        defer {
            // The child has its copies (or failed to start).
            close(input[1])
            close(output[1])
        }
        do { try process.run() } catch {
            close(input[0]); close(output[0])
            throw error
        }
        toServer = input[0]
        fromServer = output[0]
        transport = StdioTransport(input: FileDescriptor(rawValue: fromServer), output: FileDescriptor(rawValue: toServer))
    }

    /// Writes `text` to the server's standard input (for tests that speak JSON-RPC themselves).
    func writeInput(_ text: String) throws {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { write(toServer, $0.baseAddress! + sent, $0.count - sent) }
            guard n > 0 else { throw TestSupportError("write to the server: \(String(cString: strerror(errno)))") }
            sent += n
        }
    }

    /// Everything the server writes to its standard output until it closes it.
    func readOutputToEnd() -> String {
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fromServer, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            output += chunk[0..<n]
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Closes the server's standard input.
    func closeInput() {
        if !inputClosed {
            inputClosed = true
            close(toServer)
        }
    }

    /// Closes the server's standard input and returns its exit status.
    func closeInputAndWait() -> Int32 {
        closeInput()
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        if !inputClosed { close(toServer) }
        close(fromServer)
    }
}

/// Accepts one connection on `listener`, waiting at most `timeoutMilliseconds`.
func acceptOne(_ listener: Int32, timeoutMilliseconds: Int32) throws -> Int32 {
    var pfd = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
    guard poll(&pfd, 1, timeoutMilliseconds) == 1 else { throw TestSupportError("no connection within \(timeoutMilliseconds) ms") }
    let fd = accept(listener, nil, nil)
    guard fd >= 0 else { throw TestSupportError("accept: \(String(cString: strerror(errno)))") }
    _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    var timeout = timeval(tv_sec: 60, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    return fd
}

/// One line read from `fd` (without its newline), or nil at end of stream. Reads a byte at a time: tests only.
func readLine(_ fd: Int32) throws -> String? {
    var line: [UInt8] = []
    var byte: UInt8 = 0
    while true {
        let n = read(fd, &byte, 1)
        if n < 0 && errno == EINTR { continue }
        if n < 0 { throw TestSupportError("read: \(String(cString: strerror(errno)))") }
        if n == 0 { return line.isEmpty ? nil : String(decoding: line, as: UTF8.self) }
        if byte == 0x0A { return String(decoding: line, as: UTF8.self) }
        line.append(byte)
    }
}

extension Value {
    /// The member `key` of an object.
    subscript(key: String) -> Value? { objectValue?[key] }
}

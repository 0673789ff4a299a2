import Foundation
import RagProtocol
import RagTestSupport
import Testing

/// Abusive clients against the real daemon: clients that never read, stall mid-line, disconnect mid-request, open
/// too many connections, or ask for too much. Each time, other clients keep being answered.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct LimitsTests {
    func json(_ line: String) throws -> JSONValue { try JSONParser.parse(line) }

    /// `count` files sharing the word "zebra", about 1 KB of text each, so that one search can return big replies.
    func makeCorpus(_ dir: String, count: Int = 1200) throws -> String {
        let docs = dir + "/docs"
        let words = "lmdb socket journal watchdog chunk heading posting stemmer query vector daemon reload folder burst kernel".split(separator: " ")
        for n in 0..<count {
            var body = "zebra"
            for i in 0..<150 { body += " " + words[(n * 7 + i * 3) % words.count] }
            try writeFile(docs + "/part\(n / 200)/doc\(n).md", "# Document \(n)\n\n\(body)\n")
        }
        return docs
    }

    /// Starts ragd on `docs` with BM25 only and `limits` as the `[limits]` table, and waits until it has indexed them.
    func startDaemon(_ docs: String, in dir: String, limits: String = "", arguments: [String] = []) throws -> DaemonProcess {
        try writeFile(dir + "/ragd.toml", "[model]\nenabled = false\n\n[limits]\n\(limits)\n")
        let daemon = try DaemonProcess.start(sources: [docs], in: dir, extraArguments: ["--config", dir + "/ragd.toml"] + arguments)
        // `sync`, not STATUS=ready: without a model, "ready" can be announced before the first scan has finished.
        let sync = try JSONParser.parse(daemon.client().request(#"{"id":0,"op":"sync","timeout_ms":120000}"#))
        guard sync["ok"] == true else { throw TestSupportError("sync failed: \(sync.serialized())") }
        return daemon
    }

    func searchLine(id: Int, k: Int) -> String {
        #"{"id":\#(id),"op":"search","query":"zebra","k":\#(k),"mode":"bm25"}"#
    }

    /// A client that pipelines searches and never reads its replies: ragd stops reading it instead of buffering
    /// replies, its memory stays flat, and other clients are answered meanwhile.
    @Test func clientThatNeverReadsCannotGrowMemory() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = try makeCorpus(dir)
            let daemon = try startDaemon(docs, in: dir)
            let pid = daemon.process.processIdentifier
            let other = try daemon.client()
            // Warm up the allocator with a few big replies, then take the baseline.
            for n in 0..<5 { #expect(try json(other.request(searchLine(id: n, k: 100)))["ok"] == true) }
            let baseline = try residentBytes(pid)
            let descriptors = try openDescriptors(pid)

            // Each reply is about 100 KB: 10,000 of them unbounded would be a gigabyte.
            let hog = try RawClient(path: daemon.socketPath)
            let requests = 10_000
            var bytes = Array((0..<requests).map { searchLine(id: $0, k: 100) + "\n" }.joined().utf8)[...]
            var stalled = false
            while !bytes.isEmpty {
                let n = hog.sendSome(bytes)
                if n > 0 {
                    bytes = bytes.dropFirst(n)
                    continue
                }
                // Safety valve: a regression must fail the test, not exhaust the machine.
                let grown = try residentBytes(pid) - baseline
                #expect(grown < 256 << 20, "ragd grew by \(grown >> 20) MiB while a client did not read")
                if grown >= 256 << 20 { return }
                // The socket is full: ragd has stopped reading if it stays full for 3 s.
                if !hog.waitWritable(milliseconds: 3000) { stalled = true; break }
            }
            #expect(stalled, "ragd kept reading a client that never reads (all \(requests) requests were taken)")
            let stalledRSS = try residentBytes(pid)
            // Others are answered while the hog's replies wait.
            for n in 0..<20 {
                let reply = try json(other.request(searchLine(id: 100 + n, k: 100)))
                #expect(reply["ok"] == true)
                #expect(reply["results"]?.arrayValue?.count == 100)
            }
            let after = try residentBytes(pid)
            #expect(after - baseline < 64 << 20, "RSS grew from \(baseline >> 20) to \(after >> 20) MiB (\(stalledRSS >> 20) MiB when stalled)")
            #expect(after - stalledRSS < 16 << 20, "RSS kept growing while the hog was stalled: \(stalledRSS >> 20) → \(after >> 20) MiB")
            // Its replies were kept, in order, for when it reads.
            let reader = LineReader(fd: hog.fd)
            for n in 0..<5 {
                let line = try #require(try reader.readLine())
                #expect(try json(line)["id"] == .int(Int64(n)))
            }
            // Closed while ragd was not reading it: ragd still notices, and lets go of it.
            hog.close()
            let deadline = Date().addingTimeInterval(30)
            while try openDescriptors(pid) > descriptors && Date() < deadline {
                #expect(try json(other.request(#"{"id":1,"op":"ping"}"#))["ok"] == true)
            }
            #expect(try openDescriptors(pid) <= descriptors, "the closed hog's socket is released")
            #expect(daemon.stop() == 0)
        }
    }

    /// A client that sends half a line and stalls, and one that goes quiet after a request, are closed after the idle
    /// time; a client sending requests is served throughout.
    @Test func idleAndHalfLineClientsAreClosed() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = try makeCorpus(dir, count: 20)
            let daemon = try startDaemon(docs, in: dir, limits: "idle_timeout_seconds = 1")
            let staller = try daemon.client()
            try staller.send(raw: Array(#"{"id":1,"op":"sea"#.utf8))
            let quiet = try daemon.client()
            #expect(try json(quiet.request(#"{"id":1,"op":"ping"}"#))["ok"] == true)
            let started = Date()
            // Served meanwhile, on a fresh connection for each burst.
            for n in 0..<10 {
                #expect(try json(daemon.client().request(searchLine(id: n, k: 5)))["ok"] == true)
            }
            #expect(try staller.readLine() == nil, "the half-line staller is closed without a reply")
            #expect(try quiet.readLine() == nil, "the quiet client is closed")
            let waited = Date().timeIntervalSince(started)
            #expect(waited >= 0.9 && waited < 10, "closed after \(waited) s; the idle time is 1 s")
            #expect(try json(daemon.client().request(#"{"id":2,"op":"ping"}"#))["ok"] == true)
            #expect(daemon.stop() == 0)
        }
    }

    /// Connections beyond max_connections are answered `unavailable` and closed; a freed slot is usable again.
    @Test func connectionsOverTheLimitAreRefused() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = try makeCorpus(dir, count: 5)
            let daemon = try startDaemon(docs, in: dir, limits: "max_connections = 4")
            // startDaemon's connection may not be seen closed yet: retry until each of the 4 is served.
            var clients = try (0..<4).map { _ in try servedClient(daemon) }
            for _ in 0..<3 {
                let extra = try daemon.client()
                let reply = try json(#require(try extra.readLine()))
                #expect(reply["ok"] == false)
                #expect(reply["error"]?["code"] == "unavailable")
                #expect(reply["error"]?["message"]?.stringValue?.contains("limit 4") == true)
                #expect(try extra.readLine() == nil, "closed after the refusal")
            }
            for client in clients { #expect(try json(client.request(#"{"id":2,"op":"ping"}"#))["ok"] == true) }
            // Closing one frees its slot (once ragd has seen the close).
            clients.removeLast()
            clients.append(try servedClient(daemon))
            #expect(daemon.stop() == 0)
        }
    }

    /// ragd raises its soft open-file limit to the hard one, logs it, and clamps max_connections to fit.
    @Test func maxConnectionsIsClampedToTheOpenFileLimit() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = try makeCorpus(dir, count: 5)
            try writeFile(dir + "/ragd.toml", "[model]\nenabled = false\n\n[limits]\nmax_connections = 100000\n")
            let daemon = try DaemonProcess(arguments: ["--config", dir + "/ragd.toml", "--source", docs, "--state-dir", dir + "/state",
                                                       "--socket", dir + "/ragd.sock"],
                                           socketPath: dir + "/ragd.sock", workDirectory: dir, launcher: ["prlimit", "--nofile=100:300", "--"])
            try daemon.waitUntilReady()
            #expect(daemon.log.contains("open-file limit"))
            #expect(daemon.log.contains("nofile=300"), "the soft limit is raised to the hard one")
            #expect(daemon.log.contains("limits.max_connections exceeds what the open-file limit allows"))
            #expect(daemon.log.contains("max_connections=236"), "300 less the 64 kept for ragd")
            #expect(try json(daemon.client().request(#"{"id":1,"op":"ping"}"#))["ok"] == true)
            #expect(daemon.stop() == 0)
        }
    }

    /// Clients that disconnect with requests queued or running do not disturb others, and leave nothing behind.
    @Test func clientsDisconnectingMidRequest() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = try makeCorpus(dir)
            let daemon = try startDaemon(docs, in: dir, arguments: ["--log-level", "debug"])
            let pid = daemon.process.processIdentifier
            let other = try daemon.client()
            #expect(try json(other.request(searchLine(id: 0, k: 10)))["ok"] == true)
            let descriptors = try openDescriptors(pid)
            for round in 0..<20 {
                let leaver = try RawClient(path: daemon.socketPath)
                #expect(leaver.sendSome(Array((0..<50).map { searchLine(id: $0, k: 1000) + "\n" }.joined().utf8)[...]) > 0)
                leaver.close()
                let reply = try json(other.request(searchLine(id: round, k: 10)))
                #expect(reply["ok"] == true)
                #expect(reply["id"] == .int(Int64(round)))
            }
            try daemon.waitForLog(containing: "connection closed with requests unanswered; dropping them", timeout: 60)
            // Every leaver's descriptor is closed.
            let deadline = Date().addingTimeInterval(30)
            while try openDescriptors(pid) > descriptors && Date() < deadline {
                _ = try other.request(#"{"id":1,"op":"ping"}"#)
            }
            #expect(try openDescriptors(pid) <= descriptors)
            #expect(try json(other.request(#"{"id":2,"op":"ping"}"#))["ok"] == true)
            #expect(daemon.stop() == 0)
            #expect(!daemon.log.contains("ERROR"), "\(daemon.log.split(separator: "\n").filter { $0.contains("ERROR") }.prefix(5))")
        }
    }

    /// A request not answered within request_timeout_ms is answered `timeout`, in order; the connection stays usable.
    @Test func slowRequestsAreAnsweredTimeout() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = try makeCorpus(dir)
            let daemon = try startDaemon(docs, in: dir, limits: "request_timeout_ms = 1")
            let client = try daemon.client()
            try client.send(raw: Array((0..<40).map { searchLine(id: $0, k: 1000) + "\n" }.joined().utf8))
            var timeouts = 0
            for n in 0..<40 {
                let reply = try json(#require(try client.readLine()))
                #expect(reply["id"] == .int(Int64(n)), "replies stay in request order")
                if reply["ok"] == false {
                    #expect(reply["error"]?["code"] == "timeout")
                    #expect(reply["error"]?["message"]?.stringValue?.contains("request_timeout_ms") == true)
                    timeouts += 1
                }
            }
            #expect(timeouts > 0)
            // `sync` has its own timeout and is not cut short.
            let sync = try json(client.request(#"{"id":"s","op":"sync","timeout_ms":60000}"#))
            #expect(sync["ok"] == true, "\(sync.serialized())")
            let reply = try json(client.request(#"{"id":"p","op":"ping"}"#))
            #expect(reply["id"] == "p")
            #expect(daemon.stop() == 0)
        }
    }

    /// `sync` waits on threads of its own: more waiting syncs than search workers do not hold up searches, and a
    /// graceful stop answers them at once instead of waiting for their timeout.
    @Test func waitingSyncsHoldNoSearchWorkerNorTheStop() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = try makeCorpus(dir, count: 5)
            let daemon = try DaemonProcess.start(sources: [docs], in: dir)
            let client = try daemon.client()
            #expect(try json(client.request(#"{"id":0,"op":"sync","timeout_ms":120000}"#))["ok"] == true)
            // Enough new text to keep the embedder busy for a while.
            for n in 0..<600 {
                let body = (0..<120).map { "term\(n)x\($0)" }.joined(separator: " ")
                try writeFile(docs + "/new/\(n).md", "# New \(n)\n\n\(body)\n")
            }
            let waiters = try (0..<8).map { _ in try RawClient(path: daemon.socketPath) }
            for (n, waiter) in waiters.enumerated() {
                #expect(waiter.sendSome(Array(#"{"id":\#(n),"op":"sync","timeout_ms":120000}"#.utf8 + [0x0A])[...]) > 0)
            }
            let search = try json(client.request(searchLine(id: 1, k: 3)))
            #expect(search["ok"] == true, "a search is answered while 8 syncs wait")
            let status = try json(client.request(#"{"id":2,"op":"status"}"#))
            let pending = status["embeddings"]?["pending"]?.intValue ?? 0
            #expect(pending > 0, "the syncs were still waiting (vectors pending) when the search was answered")
            let started = Date()
            #expect(daemon.stop() == 0)
            #expect(Date().timeIntervalSince(started) < 20, "waiting syncs do not hold up a graceful stop")
            for waiter in waiters {
                let reply = try json(#require(try LineReader(fd: waiter.fd).readLine()))
                #expect(reply["ok"] == true || reply["error"]?["code"] == "unavailable", "\(reply.serialized())")
            }
        }
    }

    /// The configured max_k and max_query_bytes are enforced per request and keep the connection open.
    @Test func configuredKAndQueryLimits() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = try makeCorpus(dir, count: 20)
            let daemon = try startDaemon(docs, in: dir, limits: "max_k = 5\nmax_query_bytes = 16")
            let client = try daemon.client()
            let tooMany = try json(client.request(searchLine(id: 1, k: 6)))
            #expect(tooMany["error"]?["code"] == "invalid_argument")
            #expect(tooMany["error"]?["message"]?.stringValue?.contains("5") == true)
            let long = try json(client.request(#"{"id":2,"op":"search","query":"zebra zebra zebra","mode":"bm25"}"#))
            #expect(long["error"]?["code"] == "invalid_argument")
            #expect(long["error"]?["message"]?.stringValue?.contains("16") == true)
            let fine = try json(client.request(#"{"id":3,"op":"search","query":"zebra zebra","k":5,"mode":"bm25"}"#))
            #expect(fine["results"]?.arrayValue?.count == 5)
            #expect(daemon.stop() == 0)
        }
    }
}

/// A connection that ragd answers, retrying for at most 10 s while it refuses new ones (it sees closed connections
/// asynchronously, and a refused one may be closed before the request is even sent).
func servedClient(_ daemon: DaemonProcess) throws -> LineClient {
    let deadline = Date().addingTimeInterval(10)
    while true {
        let client = try daemon.client()
        if (try? JSONParser.parse(client.request(#"{"id":"c","op":"ping"}"#)))?["ok"] == true { return client }
        guard Date() < deadline else { throw TestSupportError("no connection was served within 10 s") }
    }
}

/// VmRSS of process `pid`, in bytes.
func residentBytes(_ pid: Int32) throws -> Int {
    let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else {
        throw TestSupportError("no VmRSS for \(pid)")
    }
    return kb * 1024
}

/// Open file descriptors of process `pid`.
func openDescriptors(_ pid: Int32) throws -> Int {
    try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count
}

/// A non-blocking client socket, for sending without reading.
final class RawClient {
    let fd: Int32
    private var closed = false

    init(path: String) throws {
        fd = try connectUnixStream(path)
    }

    /// Sends what the socket takes now; 0 when it is full.
    func sendSome(_ bytes: ArraySlice<UInt8>) -> Int {
        let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
        return max(0, n)
    }

    /// Whether the socket became writable within the time.
    func waitWritable(milliseconds: Int32) -> Bool {
        var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        return poll(&pfd, 1, milliseconds) > 0
    }

    func close() {
        if !closed { Glibc.close(fd); closed = true }
    }

    deinit { close() }
}

/// Reads reply lines from a descriptor it does not own (blocking, 60 s at most per read).
final class LineReader {
    let fd: Int32
    private var buffer: [UInt8] = []
    init(fd: Int32) { self.fd = fd }

    func readLine() throws -> String? {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 60_000) > 0 else { throw TestSupportError("no reply within 60 s") }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw TestSupportError("recv: \(String(cString: strerror(errno)))")
            }
            if n == 0 { return nil }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }
}

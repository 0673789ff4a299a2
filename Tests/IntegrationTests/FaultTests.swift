import Foundation
import RagProtocol
import Synchronization
import RagTestSupport
import Testing

/// Shared helpers for the hostile-file and resource-fault tests: status polling with deadlines, log line counts,
/// and the comparison of a daemon's index with a fresh index of the same files.
struct FaultHarness {
    let dir: String
    let docs: String
    let daemon: DaemonProcess
    let client: LineClient

    func json(_ line: String) throws -> JSONValue { try JSONParser.parse(line) }

    func status() throws -> JSONValue { try json(client.request(#"{"id":1,"op":"status"}"#)) }

    func sync(timeoutMS: Int = 60000) throws -> JSONValue {
        try json(client.request(#"{"id":2,"op":"sync","timeout_ms":\#(timeoutMS)}"#))
    }

    func paths(_ query: String, k: Int = 50) throws -> [String] {
        let reply = try json(client.request(#"{"id":3,"op":"search","query":"\#(query)","k":\#(k),"mode":"bm25"}"#))
        return reply["results"]?.arrayValue?.compactMap { $0["path"]?.stringValue } ?? []
    }

    /// path → "sha256/chunks" as the daemon has them.
    func indexed() throws -> [String: String] { try FaultHarness.files(client) }

    static func files(_ client: LineClient) throws -> [String: String] {
        let reply = try JSONParser.parse(try client.request(#"{"id":4,"op":"files"}"#))
        var result: [String: String] = [:]
        for file in reply["files"]?.arrayValue ?? [] {
            result[file["path"]?.stringValue ?? "?"] = "\(file["sha256"]?.stringValue ?? "?")/\(file["chunks"]?.intValue ?? -1)"
        }
        return result
    }

    /// Polls `status` until `condition` holds; fails after `timeout` seconds with the last status.
    @discardableResult
    func waitForStatus(timeout: Double = 90, _ what: String, _ condition: (JSONValue) -> Bool) throws -> JSONValue {
        let deadline = Date().addingTimeInterval(timeout)
        var last = try status()
        while !condition(last) {
            guard Date() < deadline else {
                throw TestSupportError("status never showed \(what) within \(timeout) s: \(last.serialized())\nlog:\n\(daemon.log.suffix(4000))")
            }
            // Polling interval (the deadline above is what bounds the wait).
            _ = poll(nil, 0, 50)
            last = try status()
        }
        return last
    }

    /// How many lines of the daemon's output contain `text`.
    func logCount(_ text: String) -> Int {
        daemon.log.split(separator: "\n").filter { $0.contains(text) }.count
    }

    /// The index a fresh daemon (new state folder, same sources and configuration) builds of the same files.
    func freshIndex(config: String? = nil, sourceFlag: Bool = true) throws -> [String: String] {
        let name = "fresh-\(UInt32.random(in: 0...UInt32.max))"
        var arguments = (sourceFlag ? ["--source", docs] : []) + ["--state-dir", dir + "/" + name, "--socket", dir + "/" + name + ".sock"]
        if let config { arguments += ["--config", config] }
        let fresh = try DaemonProcess(arguments: arguments, socketPath: dir + "/" + name + ".sock", workDirectory: dir)
        try fresh.waitUntilReady()
        let client = try fresh.client()
        let synced = try JSONParser.parse(try client.request(#"{"id":2,"op":"sync","timeout_ms":120000}"#))
        #expect(synced["ok"] == true, "fresh index sync: \(synced.serialized())")
        let files = try FaultHarness.files(client)
        #expect(fresh.stop() == 0)
        return files
    }

    /// Asserts the daemon's index equals a fresh index of the same files.
    /// (With `sourceFlag` false, the sources are those of `config`.)
    func expectMatchesFreshIndex(config: String? = nil, sourceFlag: Bool = true, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let synced = try sync()
        #expect(synced["ok"] == true, "sync: \(synced.serialized())", sourceLocation: sourceLocation)
        let mine = try indexed()
        let fresh = try freshIndex(config: config, sourceFlag: sourceFlag)
        #expect(!fresh.isEmpty, sourceLocation: sourceLocation)
        #expect(mine == fresh, "index differs from a fresh one: only here \(Set(mine.keys).subtracting(fresh.keys).sorted().prefix(5)), only fresh \(Set(fresh.keys).subtracting(mine.keys).sorted().prefix(5)), different \(mine.keys.filter { fresh[$0] != nil && fresh[$0] != mine[$0] }.sorted().prefix(5))", sourceLocation: sourceLocation)
    }
}

/// Text that does not compress into few postings: distinct words per file.
func bulkText(_ n: Int, words: Int) -> String {
    var text = "# Bulk \(n)\n\n"
    for w in 0..<words {
        text += "word\(n)x\(w) "
        if w % 12 == 11 { text += "\n" }
        if w % 120 == 119 { text += "\n" }
    }
    return text + "\n"
}

var isRoot: Bool { geteuid() == 0 }

/// Resource faults: the LMDB map filling up (grown automatically up to a ceiling, then a clear blocked state) and
/// the state folder's disk filling up. Queries keep working, nothing is corrupted, ingest resumes by itself.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct FaultTests {
    @Test func mapGrowsAutomaticallyUpToTheCeiling() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = dir + "/docs"
            for n in 0..<120 { try writeFile(docs + "/bulk/f\(n).md", bulkText(n, words: 1500)) }
            let config = dir + "/ragd.toml"
            try writeFile(config, "[index]\nmap_size_mb = 1\nmax_map_size_mb = 512\n[model]\nenabled = false\n")
            let daemon = try DaemonProcess.start(sources: [docs], in: dir, extraArguments: ["--config", config])
            let h = FaultHarness(dir: dir, docs: docs, daemon: daemon, client: try daemon.client())
            // Queries run all along: each growth waits for their read transactions and they wait for it.
            let stop = Mutex(false)
            let answers = Mutex((ok: 0, failed: 0))
            let done = DispatchSemaphore(value: 0)
            let socketPath = daemon.socketPath
            // A thread of its own: the global queue may be busy with other suites' work until the sync is over.
            Thread {
                defer { done.signal() }
                guard let client = try? LineClient(path: socketPath) else { answers.withLock { $0.failed += 1 }; return }
                var n = 0
                repeat {
                    n += 1
                    let reply = try? JSONParser.parse(client.request(#"{"id":1,"op":"search","query":"word\#(n % 120)x\#(n % 1500)","mode":"bm25"}"#))
                    answers.withLock { if reply?["ok"] == true { $0.ok += 1 } else { $0.failed += 1 } }
                } while !stop.withLock({ $0 })
            }.start()
            #expect(try h.sync()["ok"] == true)
            stop.withLock { $0 = true }
            done.wait()
            #expect(answers.withLock { $0.failed } == 0)
            #expect(answers.withLock { $0.ok } > 0)
            let status = try h.status()
            #expect(status["ingest_blocked"] == false)
            #expect(status["files"] == 120)
            #expect((status["index_map"]?["size_mb"]?.intValue ?? 0) > 1, "the map grew: \(status.serialized())")
            #expect(status["index_map"]?["max_mb"] == 512)
            #expect(h.logCount("index map grown") >= 1)
            #expect(h.logCount("indexing is blocked") == 0)
            #expect(try h.paths("word119x1499") == [docs + "/bulk/f119.md"])
            try h.expectMatchesFreshIndex(config: config)
            #expect(daemon.stop() == 0)
        }
    }

    @Test func mapCeilingBlocksIngestWhileQueriesWorkThenResumes() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = dir + "/docs"
            try writeFile(docs + "/small.md", "# Small\n\nthe resilient tardigrade survives\n")
            let config = dir + "/ragd.toml"
            try writeFile(config, "[index]\nmap_size_mb = 1\nmax_map_size_mb = 2\n[model]\nenabled = false\n")
            let daemon = try DaemonProcess.start(sources: [docs], in: dir, extraArguments: ["--config", config])
            let h = FaultHarness(dir: dir, docs: docs, daemon: daemon, client: try daemon.client())
            #expect(try h.sync()["ok"] == true)
            // Far more text than a 2 MiB map holds.
            for n in 0..<200 { try writeFile(docs + "/bulk/f\(n).md", bulkText(n, words: 1500)) }
            let blocked = try h.waitForStatus("ingest_blocked with a few retries") {
                $0["ingest_blocked"] == true && ($0["ingest_retries"]?.intValue ?? 0) >= 3
            }
            #expect(blocked["last_error"]?.stringValue?.contains("max_map_size_mb") == true, "\(blocked.serialized())")
            #expect(blocked["index_map"]?["size_mb"] == 2)
            #expect((blocked["files"]?.intValue ?? 0) > 1, "the bulk files that fit were indexed")
            // systemd is told too.
            let notified = try daemon.notify.wait(for: "STATUS=ingest blocked", timeout: 30)
            #expect(notified.contains("max_map_size_mb"))
            let ctl = try runProgram(DaemonProcess.ragctl, ["status", "--socket", daemon.socketPath])
            #expect(ctl.stdout.contains("ingest:   blocked, retrying: the index map is full"), "\(ctl.stdout)")
            // Queries keep working on what is indexed; sync says why it cannot finish, at once.
            #expect(try h.paths("tardigrade") == [docs + "/small.md"])
            let sync = try h.sync(timeoutMS: 30000)
            #expect(sync["error"]?["code"] == "unavailable", "\(sync.serialized())")
            #expect(sync["error"]?["message"]?.stringValue?.contains("blocked") == true)
            #expect(h.logCount("indexing is blocked") == 1, "one error line for the fault, not one per retry")
            // Room returns: the bulk goes away; ingest resumes by itself, without a restart.
            try FileManager.default.removeItem(atPath: docs + "/bulk")
            try writeFile(docs + "/after.md", "# After\n\nthe patient axolotl regrows\n")
            try h.waitForStatus("ingest resuming") { $0["ingest_blocked"] == false }
            #expect(try h.sync()["ok"] == true)
            #expect(try h.paths("axolotl") == [docs + "/after.md"])
            #expect(try h.paths("tardigrade") == [docs + "/small.md"])
            #expect(h.logCount("indexing resumed") == 1)
            try h.expectMatchesFreshIndex(config: config)
            #expect(daemon.stop() == 0)
        }
    }

    @Test(.enabled(if: isRoot && FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare"),
                   "needs root and unshare: the state folder is a small tmpfs in a private mount namespace"))
    func diskFullBlocksIngestWhileQueriesWorkThenResumes() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = dir + "/docs"
            let state = dir + "/state"
            try writeFile(docs + "/small.md", "# Small\n\nthe resilient tardigrade survives\n")
            try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
            let config = dir + "/ragd.toml"
            try writeFile(config, "[index]\nmap_size_mb = 256\n[model]\nenabled = false\n")
            // ragd runs in a mount namespace of its own where the state folder is a 4 MiB tmpfs; the test reaches
            // it through /proc/<pid>/root.
            let launcher = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            "mount -t tmpfs -o size=4m ragd-test-state \"$RAGD_TEST_STATE\" && exec \"$0\" \"$@\""]
            let daemon = try DaemonProcess(arguments: ["--source", docs, "--state-dir", state, "--socket", dir + "/ragd.sock", "--config", config],
                                           socketPath: dir + "/ragd.sock", workDirectory: dir, environment: ["RAGD_TEST_STATE": state],
                                           launcher: launcher)
            try daemon.waitUntilReady()
            let h = FaultHarness(dir: dir, docs: docs, daemon: daemon, client: try daemon.client())
            #expect(try h.sync()["ok"] == true)
            let privateState = "/proc/\(daemon.process.processIdentifier)/root" + state
            #expect(FileManager.default.fileExists(atPath: privateState + "/index/data.mdb"))
            #expect(!FileManager.default.fileExists(atPath: state + "/index/data.mdb"), "the index lives on the private tmpfs")
            // Fill the tmpfs.
            let filler = privateState + "/filler"
            let fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            #expect(fd >= 0)
            let block = [UInt8](repeating: 0x55, count: 65536)
            var written = 0
            while true {
                let n = block.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                written += n
            }
            close(fd)
            #expect(written > 0 && written < 8 << 20)
            for n in 0..<40 { try writeFile(docs + "/bulk/f\(n).md", bulkText(n, words: 1500)) }
            let blocked = try h.waitForStatus("ingest_blocked with a few retries") {
                $0["ingest_blocked"] == true && ($0["ingest_retries"]?.intValue ?? 0) >= 3
            }
            #expect(blocked["last_error"]?.stringValue?.contains("No space left on device") == true, "\(blocked.serialized())")
            #expect(try h.paths("tardigrade") == [docs + "/small.md"], "queries keep working")
            #expect(try h.sync(timeoutMS: 30000)["error"]?["code"] == "unavailable")
            #expect(h.logCount("indexing is blocked") == 1, "one error line for the fault, not one per retry")
            // Room returns: ingest resumes by itself, without a restart.
            #expect(unlink(filler) == 0)
            try h.waitForStatus("ingest resuming") { $0["ingest_blocked"] == false }
            #expect(try h.sync()["ok"] == true)
            #expect(try h.paths("word39x1499") == [docs + "/bulk/f39.md"])
            #expect(h.logCount("indexing resumed") == 1)
            try h.expectMatchesFreshIndex(config: config)
            #expect(daemon.stop() == 0)
        }
    }
}

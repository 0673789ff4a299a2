import Foundation
import Glibc
import RagCore
import RagProtocol
import RagTestSupport
import Synchronization
import Testing

/// The Prometheus text exposition format (0.0.4), parsed strictly enough to catch a malformed reply: every sample
/// belongs to a family declared by a `# TYPE` line before it, names and label names are valid, label values are
/// quoted with escapes, values are Prometheus floats, and each histogram's buckets are cumulative up to `+Inf`, which
/// equals its `_count`.
struct Exposition {
    struct Sample: Equatable {
        var name: String
        var labels: [String: String]
        var value: Double
    }
    var types: [String: String] = [:]
    var samples: [Sample] = []

    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    init(_ text: String) throws {
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
            func fail(_ why: String) -> Malformed { Malformed(description: "line \(number + 1) '\(line)': \(why)") }
            if line.hasPrefix("#") {
                let parts = line.split(separator: " ", maxSplits: 3).map(String.init)
                if parts.count >= 2 && parts[1] == "TYPE" {
                    guard parts.count == 4, Exposition.isName(parts[2]),
                          ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[3]) else { throw fail("bad TYPE line") }
                    guard types[parts[2]] == nil else { throw fail("second TYPE line for \(parts[2])") }
                    types[parts[2]] = parts[3]
                }
                continue
            }
            var rest = Substring(line)
            let name = String(rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" })
            guard Exposition.isName(name) else { throw fail("bad metric name") }
            rest = rest.dropFirst(name.count)
            var labels: [String: String] = [:]
            if rest.first == "{" {
                rest = rest.dropFirst()
                while rest.first != "}" {
                    let label = String(rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" })
                    guard !label.isEmpty, !label.first!.isNumber else { throw fail("bad label name") }
                    rest = rest.dropFirst(label.count)
                    guard rest.hasPrefix("=\"") else { throw fail("no =\" after \(label)") }
                    rest = rest.dropFirst(2)
                    var value = ""
                    while let c = rest.first, c != "\"" {
                        rest = rest.dropFirst()
                        if c == "\\" {
                            guard let escaped = rest.first else { throw fail("dangling escape") }
                            rest = rest.dropFirst()
                            switch escaped {
                            case "n": value.append("\n")
                            case "\\", "\"": value.append(escaped)
                            default: throw fail("bad escape \\\(escaped)")
                            }
                        } else {
                            value.append(c)
                        }
                    }
                    guard rest.first == "\"" else { throw fail("unterminated label value") }
                    rest = rest.dropFirst()
                    guard labels.updateValue(value, forKey: label) == nil else { throw fail("repeated label \(label)") }
                    if rest.first == "," { rest = rest.dropFirst() } else if rest.first != "}" { throw fail("expected , or }") }
                }
                rest = rest.dropFirst()
            }
            guard rest.first == " " else { throw fail("no space before the value") }
            let fields = rest.dropFirst().split(separator: " ")
            guard (1...2).contains(fields.count), let value = Exposition.float(fields[0]) else { throw fail("bad value") }
            guard let family = Exposition.family(of: name, in: types) else { throw fail("sample before its TYPE line") }
            if types[family] == "histogram" && name == family + "_bucket" && labels["le"] == nil { throw fail("bucket without le") }
            samples.append(Sample(name: name, labels: labels, value: value))
        }
        try checkHistograms()
    }

    static func isName(_ name: String) -> Bool {
        guard let first = name.first, first.isLetter || first == "_" || first == ":" else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == ":") }
    }

    static func float(_ text: Substring) -> Double? {
        switch text {
        case "+Inf": return .infinity
        case "-Inf": return -.infinity
        case "NaN": return .nan
        default: return Double(text)
        }
    }

    /// The declared family a sample name belongs to (`x_bucket`, `x_sum`, `x_count` belong to histogram `x`).
    static func family(of name: String, in types: [String: String]) -> String? {
        if types[name] != nil { return name }
        for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
            let base = String(name.dropLast(suffix.count))
            if types[base] == "histogram" || types[base] == "summary" { return base }
        }
        return nil
    }

    private func checkHistograms() throws {
        for (family, type) in types where type == "histogram" {
            let series = Set(samples.filter { $0.name == family + "_count" }.map(\.labels))
            for labels in series {
                let buckets = samples.filter { $0.name == family + "_bucket" && $0.labels.filter { $0.key != "le" } == labels }
                    .map { (Exposition.float(Substring($0.labels["le"]!)) ?? .nan, $0.value) }.sorted { $0.0 < $1.0 }
                guard let last = buckets.last, last.0 == .infinity else { throw Malformed(description: "\(family)\(labels): no +Inf bucket") }
                guard zip(buckets, buckets.dropFirst()).allSatisfy({ $0.1 <= $1.1 }) else {
                    throw Malformed(description: "\(family)\(labels): buckets not cumulative")
                }
                guard last.1 == value(family + "_count", labels) else { throw Malformed(description: "\(family)\(labels): +Inf bucket is not _count") }
            }
        }
    }

    /// The value of the one sample `name` with exactly `labels` (nil when absent).
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        let matching = samples.filter { $0.name == name && $0.labels == labels }
        return matching.count == 1 ? matching[0].value : nil
    }
}

@Suite(.serialized, .timeLimit(.minutes(10)))
struct MetricsBackupTests {
    func json(_ line: String) throws -> JSONValue { try JSONParser.parse(line) }

    func metrics(_ client: LineClient) throws -> Exposition {
        let reply = try json(client.request(#"{"id":"m","op":"metrics"}"#))
        #expect(reply["ok"] == true, "\(reply.serialized())")
        return try Exposition(try #require(reply["text"]?.stringValue))
    }

    /// SHA-256 by path of the Markdown files under `folder` as on disk now.
    func disk(_ folder: String) throws -> [String: String] {
        var result: [String: String] = [:]
        let enumerator = FileManager.default.enumerator(atPath: folder)
        while let relative = enumerator?.nextObject() as? String {
            let path = folder + "/" + relative
            guard relative.hasSuffix(".md"), let data = FileManager.default.contents(atPath: path) else { continue }
            result[path] = SHA256.hash(Array(data)).hex
        }
        return result
    }

    func fileSizes(_ paths: some Sequence<String>) -> Double {
        paths.reduce(0.0) { sum, path in
            var st = stat()
            return sum + (stat(path, &st) == 0 ? Double(st.st_size) : 0)
        }
    }

    @Test func countersGaugesAndHistogramsMoveByWhatHappened() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = dir + "/docs"
            try writeFile(docs + "/cats.md", "# Pets\n\nA kitten is a young cat. Kittens like to sleep in warm places.\n")
            try writeFile(docs + "/cars.md", "# Engines\n\nThe combustion engine burns petrol to turn the crankshaft.\n")
            // No periodic rescan: every rescan counted is one this test knows of.
            try writeFile(dir + "/ragd.toml", "[index]\nrescan_interval_seconds = 0\n")
            let daemon = try DaemonProcess.start(sources: [docs], in: dir, extraArguments: ["--config", dir + "/ragd.toml"])
            let client = try daemon.client()
            #expect(try json(client.request(#"{"id":0,"op":"sync","timeout_ms":120000}"#))["ok"] == true)
            let before = try metrics(client)
            var status = try json(client.request(#"{"id":1,"op":"status"}"#))
            #expect(before.value("ragd_indexed_files") == 2)
            #expect(before.value("ragd_indexed_chunks") == status["chunks"]?.doubleValue)
            #expect(before.value("ragd_indexed_bytes") == fileSizes([docs + "/cats.md", docs + "/cars.md"]))
            #expect(before.value("ragd_embeddings_pending") == 0)
            #expect(before.value("ragd_rescans_total") == status["scans"]?.doubleValue)
            #expect(before.value("ragd_inotify_overflows_total") == 0)
            #expect((before.value("ragd_embedding_batch_seconds_count") ?? 0) >= 1, "the start-up vectors were embedded")
            #expect(before.types["ragd_query_duration_seconds"] == "histogram")
            #expect(before.types["ragd_errors_total"] == "counter")
            #expect(before.types["ragd_indexed_bytes"] == "gauge")

            // Three new files, each renamed in from outside the source: one watcher event per file.
            let staging = dir + "/staging"
            let added = (0..<3).map { docs + "/new\($0).md" }
            for (n, path) in added.enumerated() {
                try writeFile(staging + "/new\(n).md", "# New \(n)\n\nThe harbour ferry number \(n) leaves at dawn.\n")
                #expect(rename(staging + "/new\(n).md", path) == 0)
            }
            #expect(try json(client.request(#"{"id":2,"op":"sync","timeout_ms":120000}"#))["ok"] == true)
            for n in 0..<2 {
                #expect(try json(client.request(#"{"id":3,"op":"search","query":"harbour ferry \#(n)","mode":"bm25"}"#))["ok"] == true)
            }
            #expect(try json(client.request(#"{"id":4,"op":"search","query":"where do baby felines nap","mode":"dense"}"#))["ok"] == true)
            #expect(try json(client.request("this is not json"))["error"]?["code"] == "bad_request")
            let after = try metrics(client)
            status = try json(client.request(#"{"id":5,"op":"status"}"#))

            func delta(_ name: String, _ labels: [String: String] = [:]) -> Double? {
                guard let a = after.value(name, labels), let b = before.value(name, labels) else { return nil }
                return a - b
            }
            #expect(after.value("ragd_indexed_files") == 5)
            #expect(after.value("ragd_indexed_chunks") == status["chunks"]?.doubleValue)
            #expect(after.value("ragd_indexed_bytes") == fileSizes([docs + "/cats.md", docs + "/cars.md"] + added))
            #expect(after.value("ragd_embeddings_pending") == 0)
            #expect(delta("ragd_queries_total", ["mode": "bm25"]) == 2)
            #expect(delta("ragd_queries_total", ["mode": "dense"]) == 1)
            #expect(delta("ragd_queries_total", ["mode": "hybrid"]) == 0)
            #expect(delta("ragd_query_duration_seconds_count", ["mode": "bm25"]) == 2)
            #expect(delta("ragd_query_duration_seconds_count", ["mode": "dense"]) == 1)
            #expect((delta("ragd_query_duration_seconds_sum", ["mode": "dense"]) ?? 0) > 0)
            #expect(delta("ragd_errors_total", ["code": "bad_request"]) == 1)
            for code in WireErrorCode.all where code != .badRequest {
                #expect(delta("ragd_errors_total", ["code": code.rawValue]) == 0, "\(code)")
            }
            #expect(delta("ragd_change_to_searchable_seconds_count") == 3)
            #expect((delta("ragd_change_to_searchable_seconds_sum") ?? 0) > 0)
            #expect((delta("ragd_embedding_batch_seconds_count") ?? 0) >= 1, "the new files' vectors")
            #expect(delta("ragd_rescans_total") == 0)
            #expect(after.value("ragd_rescans_total") == status["scans"]?.doubleValue)

            // ragctl prints the same text, and writes it atomically into a file.
            let printed = try runProgram(DaemonProcess.ragctl, ["metrics", "--socket", daemon.socketPath])
            #expect(printed.status == 0, "\(printed.stderr)")
            #expect(try Exposition(printed.stdout).value("ragd_indexed_files") == 5)
            let written = try runProgram(DaemonProcess.ragctl, ["metrics", "--socket", daemon.socketPath, "--output", dir + "/ragd.prom"])
            #expect(written.status == 0, "\(written.stderr)")
            #expect(try Exposition(String(contentsOfFile: dir + "/ragd.prom", encoding: .utf8)).value("ragd_indexed_files") == 5)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("ragd.prom.") }.isEmpty, "no temporary file left")
            #expect(daemon.stop() == 0)
        }
    }

    /// A backup taken while a writer adds and edits files, restored by starting a second ragd on it.
    @Test func hotBackupDuringWritesRestoresAndReconciles() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = dir + "/docs"
            let count = 120
            // Each file keeps its own token through every edit, so it is findable whichever version is indexed.
            @Sendable func text(_ n: Int, _ edits: Int) -> String {
                "# File \(n)\n\nThe token tok\(n)x marks this file.\n" + (0..<edits).map { "\nEdit \($0) of file \(n): " + (0..<40).map { "w\(n)e\($0)" }.joined(separator: " ") + "\n" }.joined()
            }
            for n in 0..<count { try writeFile(docs + "/f\(n).md", text(n, 0)) }
            // A small map that grows while the writer writes; no model, so the restored daemon's work is BM25 indexing.
            let config = dir + "/ragd.toml"
            try writeFile(config, "[index]\nmap_size_mb = 1\nmax_map_size_mb = 1024\n[model]\nenabled = false\n")
            let first = try DaemonProcess(arguments: ["--source", docs, "--state-dir", dir + "/state", "--socket", dir + "/a.sock", "--config", config],
                                          socketPath: dir + "/a.sock", workDirectory: dir)
            try first.waitUntilReady()
            let client = try first.client()
            #expect(try json(client.request(#"{"id":1,"op":"sync","timeout_ms":120000}"#))["ok"] == true)
            #expect(try json(client.request(#"{"id":2,"op":"status"}"#))["files"] == .int(Int64(count)))

            // The writer adds a file and edits another, in turns, until told to stop; it signals each write.
            let stop = Mutex(false)
            let wrote = DispatchSemaphore(value: 0)
            let finished = DispatchSemaphore(value: 0)
            let failures = Mutex<[String]>([])
            Thread {
                defer { finished.signal() }
                var k = 0
                while !stop.withLock({ $0 }) {
                    do {
                        if k % 2 == 0 {
                            try writeFile(docs + "/new/n\(k).md", "# New \(k)\n\nThe token fresh\(k)x is new.\n")
                        } else {
                            try writeFile(docs + "/f\(k % count).md", text(k % count, k / count + 1))
                        }
                    } catch {
                        failures.withLock { $0.append("\(error)") }
                    }
                    k += 1
                    wrote.signal()
                }
            }.start()
            for _ in 0..<20 { wrote.wait() }
            let backup = dir + "/backup"
            let reply = try json(client.request(#"{"id":3,"op":"backup","dest":"\#(backup)"}"#))
            // Changes after the backup, which the restored daemon must pick up from the disk.
            for _ in 0..<20 { wrote.wait() }
            stop.withLock { $0 = true }
            finished.wait()
            #expect(failures.withLock { $0 }.isEmpty)
            #expect(reply["ok"] == true, "\(reply.serialized())\n\(first.log)")
            #expect(reply["path"]?.stringValue == backup)
            #expect((reply["bytes"]?.intValue ?? 0) > 0)
            #expect(reply["took_ms"]?.doubleValue != nil)
            #expect(try FileManager.default.contentsOfDirectory(atPath: backup) == ["index"])
            #expect(try FileManager.default.contentsOfDirectory(atPath: backup + "/index") == ["data.mdb"])
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".partial-") }.isEmpty)
            #expect(first.log.contains("backup written"))
            // The first daemon kept indexing through the backup.
            #expect(try json(client.request(#"{"id":4,"op":"sync","timeout_ms":120000}"#))["ok"] == true)
            #expect(first.stop() == 0)

            // Restore: a second ragd on the copy, same sources.
            let second = try DaemonProcess(arguments: ["--source", docs, "--state-dir", backup, "--socket", dir + "/b.sock", "--config", config],
                                           socketPath: dir + "/b.sock", workDirectory: dir)
            try second.waitUntilReady()
            let restored = try second.client()
            // It answers at once, from the copy: every file indexed before the backup began is found, whether or not the
            // reconciliation has reached it.
            let status = try json(restored.request(#"{"id":5,"op":"status"}"#))
            #expect(["starting", "indexing", "ready"].contains(status["state"]?.stringValue ?? ""), "\(status.serialized())")
            let opened = second.log.split(separator: "\n").first { $0.contains("index open") }
            let openedFiles = opened?.split(separator: " ").first { $0.hasPrefix("files=") }.flatMap { Int($0.dropFirst(6)) } ?? 0
            #expect(openedFiles >= count, "the copy held the files when it was opened: \(opened ?? "")")
            for n in 0..<count {
                let hits = try json(restored.request(#"{"id":6,"op":"search","query":"tok\#(n)x","k":1,"mode":"bm25","text":false}"#))
                #expect(hits["results"]?.arrayValue?.first?["path"]?.stringValue == docs + "/f\(n).md", "\(hits.serialized())")
            }
            // After the reconciliation the index is the disk: every path with its content hash.
            #expect(try json(restored.request(#"{"id":7,"op":"sync","timeout_ms":120000}"#))["ok"] == true)
            let files = try json(restored.request(#"{"id":8,"op":"files"}"#))["files"]?.arrayValue ?? []
            var indexed: [String: String] = [:]
            for file in files { indexed[file["path"]?.stringValue ?? "?"] = file["sha256"]?.stringValue }
            let onDisk = try disk(docs)
            #expect(indexed == onDisk, "indexed \(indexed.count), on disk \(onDisk.count)")
            #expect(second.stop() == 0)
        }
    }

    @Test func backupRefusesBadDestinationsAndLeavesNothing() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = dir + "/docs"
            try writeFile(docs + "/a.md", "# A\n\nalpha\n")
            try writeFile(dir + "/full/x", "x")
            try FileManager.default.createDirectory(atPath: dir + "/empty", withIntermediateDirectories: false)
            try writeFile(dir + "/ragd.toml", "[model]\nenabled = false\n")
            let daemon = try DaemonProcess.start(sources: [docs], in: dir, extraArguments: ["--config", dir + "/ragd.toml"])
            let client = try daemon.client()
            for (dest, code) in [("relative", "invalid_argument"), ("\(dir)/a/../b", "invalid_argument"), ("\(dir)/full", "invalid_argument"),
                                 ("\(dir)/full/x", "invalid_argument"), ("\(dir)/missing/b", "invalid_argument")] {
                let reply = try json(client.request(#"{"id":1,"op":"backup","dest":"\#(dest)"}"#))
                #expect(reply["error"]?["code"]?.stringValue == code, "\(dest): \(reply.serialized())")
            }
            // An empty folder is taken over; ragctl resolves a relative path against its own folder.
            let made = try runProgram("/bin/sh", ["-c", "cd \(dir) && exec \(DaemonProcess.ragctl) backup --socket \(daemon.socketPath) empty/"])
            #expect(made.status == 0, "\(made.stderr)")
            #expect(made.stdout.hasPrefix("backup written to \(dir)/empty: "), "\(made.stdout)")
            #expect(FileManager.default.fileExists(atPath: dir + "/empty/index/data.mdb"))
            let again = try runProgram(DaemonProcess.ragctl, ["backup", "--socket", daemon.socketPath, dir + "/empty"])
            #expect(again.status == 4)
            #expect(again.stderr.contains("not empty"))
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".partial-") }.isEmpty)
            #expect(daemon.stop() == 0)
        }
    }

    /// Metrics only for clients from whom no source is hidden; backups only for root and ragd's user.
    @Test(.enabled(if: getuid() == 0, "switching a client's uid needs root"))
    func metricsAndBackupsAreForTrustedClients() throws {
        try withTemporaryDirectory { (dir: String) throws in
            chmod(dir, 0o777)  // other users must reach the socket, and could write a backup here
            try writeFile(dir + "/public/open.md", "# Open\n\nThe harbour schedule lists every ferry.\n")
            try writeFile(dir + "/secret/plans.md", "# Plans\n\nThe ferry merger codename is bluefin.\n")
            let config = dir + "/ragd.toml"
            try writeFile(config, """
                [socket]
                mode = "0666"
                [model]
                enabled = false
                [[source]]
                path = "public"
                [[source]]
                path = "secret"
                allow_users = [4343]
                """)
            let socket = dir + "/ragd.sock"
            let daemon = try DaemonProcess(arguments: ["--config", config, "--state-dir", dir + "/state", "--socket", socket],
                                           socketPath: socket, workDirectory: dir)
            try daemon.waitUntilReady()
            let metrics = #"{"id":1,"op":"metrics"}"#
            let backup = #"{"id":2,"op":"backup","dest":"\#(dir)/copy"}"#
            // Nobody may not see the secret source: no metrics, no backup.
            let outsider = try AccessTests().requests([metrics, backup], socket: socket)
            #expect(outsider.map { $0["error"]?["code"]?.stringValue } == ["permission_denied", "permission_denied"])
            // A client every source admits reads the metrics, but may not copy the index.
            let member = try AccessTests().requests([metrics, backup], socket: socket, uid: "4343")
            #expect(member[0]["ok"] == true)
            #expect(member[1]["error"]?["code"] == "permission_denied")
            #expect(!FileManager.default.fileExists(atPath: dir + "/copy"))
            #expect(daemon.log.contains("op=backup"))
            // Root may do both; the refusals were counted.
            let client = try daemon.client()
            let text = try #require(try json(client.request(metrics))["text"]?.stringValue)
            #expect(try Exposition(text).value("ragd_errors_total", ["code": "permission_denied"]) == 3)
            #expect(try json(client.request(backup))["ok"] == true)
            #expect(daemon.stop() == 0)
        }
    }
}

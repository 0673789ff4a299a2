import Foundation
import Glibc
import RagTestSupport
import Testing

/// ragctl against a real daemon: readable output, documented exit codes, clear errors.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct RagctlTests {
    @Test func searchStatusGetAndExitCodes() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = dir + "/docs"
            try writeFile(docs + "/install.md", "# Install\n\n## Keys\n\nImport the signing keys with gpg.\n")
            let daemon = try DaemonProcess.start(sources: [docs], in: dir)
            try daemon.waitUntilIndexed()
            let env = ["RAGD_SOCKET": daemon.socketPath]
            let ctl = DaemonProcess.ragctl

            let search = try runProgram(ctl, ["search", "signing keys", "-k", "3"], environment: env)
            #expect(search.status == 0, "\(search.stderr)")
            #expect(search.stdout.contains("\(docs)/install.md:3-5"))
            #expect(search.stdout.contains("Install > Keys"))
            #expect(search.stdout.contains("**signing**"), "matched terms are marked")

            let filtered = try runProgram(ctl, ["search", "signing", "--mode", "bm25", "--tag", "nothing-has-this", "--modified-after", "2000-01-01", "--fail-empty"], environment: env)
            #expect(filtered.status == 1, "tag filter applied: \(filtered.stdout)")
            let json = try runProgram(ctl, ["search", "signing", "--json", "--socket", daemon.socketPath])
            #expect(json.status == 0)
            #expect(json.stdout.hasPrefix("{\"id\":1,\"ok\":true"))

            let status = try runProgram(ctl, ["status"], environment: env)
            #expect(status.status == 0)
            #expect(status.stdout.contains("state:    ready"))
            #expect(status.stdout.contains("files:    1"))

            let get = try runProgram(ctl, ["get", docs + "/install.md:3-5"], environment: env)
            #expect(get.stdout == "## Keys\n\nImport the signing keys with gpg.\n")

            #expect(try runProgram(ctl, ["search", "zebra", "--mode", "bm25", "--fail-empty"], environment: env).status == 1)
            #expect(try runProgram(ctl, ["search"], environment: env).status == 2)
            #expect(try runProgram(ctl, ["search", "x", "-k", "0"], environment: env).status == 2)
            let bad = try runProgram(ctl, ["get", docs + "/install.md:90-95"], environment: env)
            #expect(bad.status == 4)
            #expect(bad.stderr.contains("invalid_argument"))
            let missing = try runProgram(ctl, ["get", "/etc/passwd"], environment: env)
            #expect(missing.status == 4)
            daemon.stop()

            let unreachable = try runProgram(ctl, ["status"], environment: env)
            #expect(unreachable.status == 3)
            #expect(unreachable.stderr.contains("Is ragd running?"))
            #expect(!unreachable.stderr.contains("Fatal error"))
        }
    }

    // MARK: Golden output

    /// A small fixed documentation folder, and a daemon on it without an embedding model (so every field is stable).
    func withGoldenDaemon(_ body: (_ docs: String, _ daemon: DaemonProcess, _ env: [String: String]) throws -> Void) throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = dir + "/docs"
            try writeFile(docs + "/guide/install.md", """
                ---
                title: Installing
                tags: [setup, keys]
                ---
                # Install

                Download the package and check its signature.

                ## Keys

                Import the signing keys with gpg before the first upgrade.

                ## Upgrade

                Run the upgrade command; the keys are checked again.

                """)
            try writeFile(docs + "/ops/rotate.rst", """
                Rotating keys
                =============

                Signing keys expire every year. Rotate them with the key tool.

                Revocation
                ----------

                A compromised key is revoked at once.

                """)
            try writeFile(docs + "/faq.txt", "Why does the daemon refuse to start?\n\nIt needs at least one source folder.\n")
            try writeFile(dir + "/ragd.toml", "[model]\nenabled = false\n")
            let daemon = try DaemonProcess.start(sources: [docs], in: dir, extraArguments: ["--config", dir + "/ragd.toml"])
            try daemon.waitUntilIndexed()
            try body(docs, daemon, ["RAGD_SOCKET": daemon.socketPath])
            daemon.stop()
        }
    }

    @Test func goldenHumanAndJSONOutput() throws {
        try withGoldenDaemon { docs, _, env in
            let ctl = DaemonProcess.ragctl
            func run(_ arguments: [String]) throws -> String {
                let result = try runProgram(ctl, arguments, environment: env)
                #expect(result.status == 0, "ragctl \(arguments): \(result.stderr)")
                #expect(!result.stdout.contains("\u{1B}"), "no escape sequences when stdout is not a terminal")
                return normalized(result.stdout, docs: docs)
            }
            expectGolden(try run(["search", "signing keys", "--mode", "bm25", "-k", "3"]), "search.txt")
            expectGolden(try run(["search", "signing keys", "--mode", "bm25", "-k", "2", "--json"]), "search.json")
            let jsonl = try run(["search", "signing keys", "--mode", "bm25", "-k", "2", "--jsonl"])
            expectGolden(jsonl, "search.jsonl")
            #expect(jsonl.split(separator: "\n").count == 2, "one line per hit")
            expectGolden(try run(["search", "signing keys", "--mode", "bm25", "--path-prefix", docs + "/ops", "--full"]), "search-full.txt")
            expectGolden(try run(["search", "zebra", "--mode", "bm25"]), "search-empty.txt")
            expectGolden(try run(["status"]), "status.txt")
            expectGolden(try stableStatus(try run(["status", "--json"])), "status.json")
            expectGolden(try run(["sources"]), "sources.txt")
            expectGolden(try run(["sources", "--json"]), "sources.json")
            expectGolden(try run(["get", docs + "/ops/rotate.rst:4"]), "get.txt")
            expectGolden(try run(["ping"]), "ping.txt")
            expectGolden(try run(["reindex", docs + "/guide"]), "reindex.txt")
            expectGolden(try run(["reindex", "--json"]), "reindex.json")
            expectGolden(try run(["reindex", docs + "/faq.txt", "--no-wait"]), "reindex-no-wait.txt")
        }
    }

    /// The fields of a `status --json` reply that do not depend on time or the machine, as sorted JSON.
    func stableStatus(_ text: String) throws -> String {
        guard let reply = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw TestSupportError("not a JSON object: \(text)")
        }
        var stable: [String: Any] = [:]
        for key in ["ok", "state", "pending", "files", "chunks", "sources", "skipped", "modes", "protocol", "version", "since_start",
                    "ingest_blocked", "last_error", "ingest_retries"] {
            stable[key] = reply[key]
        }
        let progress = reply["progress"] as? [String: Any] ?? [:]
        stable["progress"] = ["done": progress["done"] ?? "missing", "total": progress["total"] ?? "missing", "phase": progress["phase"] ?? "missing"]
        let embeddings = reply["embeddings"] as? [String: Any] ?? [:]
        stable["embeddings"] = embeddings.filter { ["model", "embedded", "pending", "total", "rate", "state", "reason"].contains($0.key) }
        let watch = reply["watch"] as? [String: Any] ?? [:]
        stable["watch"] = watch.filter { ["enabled", "unwatched_folders", "limit_reached", "overflows"].contains($0.key) }
        let data = try JSONSerialization.data(withJSONObject: stable, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    @Test func searchColoursOnlyOnATerminalWithoutNoColor() throws {
        try withGoldenDaemon { docs, daemon, env in
            let command = "\(DaemonProcess.ragctl) search 'signing keys' --mode bm25 -k 1"
            let colour = try inTerminal(command, environment: env.merging(["TERM": "xterm", "NO_COLOR": ""]) { $1 })
            #expect(colour.status == 0)
            #expect(colour.stdout.contains("\u{1B}[1;33mSigning\u{1B}[0m \u{1B}[1;33mkeys\u{1B}[0m"), "matches in bold yellow: \(colour.stdout)")
            #expect(colour.stdout.contains("\u{1B}[1m\(docs)/"), "the citation in bold")
            #expect(!colour.stdout.contains("**"))
            for (name, value) in [("NO_COLOR", "1"), ("TERM", "dumb")] {
                var changed = env.merging(["TERM": "xterm", "NO_COLOR": ""]) { $1 }
                changed[name] = value
                let plain = try inTerminal(command, environment: changed)
                #expect(plain.status == 0)
                #expect(!plain.stdout.contains("\u{1B}"), "\(name)=\(value): \(plain.stdout)")
                #expect(plain.stdout.contains("**Signing** **keys**"), "\(name)=\(value): matches marked in text")
            }
            let piped = try runProgram(DaemonProcess.ragctl, ["search", "signing keys", "--mode", "bm25", "-k", "1"], environment: env.merging(["TERM": "xterm", "NO_COLOR": ""]) { $1 })
            #expect(!piped.stdout.contains("\u{1B}") && piped.stdout.contains("**Signing** **keys**"))
            _ = daemon
        }
    }

    // MARK: Exit codes

    @Test func exitCodesOfEveryCommand() throws {
        try withGoldenDaemon { docs, daemon, env in
            let ctl = DaemonProcess.ragctl
            let cases: [([String], Int32)] = [
                (["search", "signing"], 4),  // hybrid needs the model, which is disabled: unsupported
                (["search", "signing", "--mode", "bm25"], 0),
                (["search", "zebra", "--mode", "bm25"], 0),
                (["search", "zebra", "--mode", "bm25", "--fail-empty"], 1),
                (["search", "zebra", "--mode", "bm25", "--jsonl", "--fail-empty"], 1),
                (["search", "signing", "--mode", "bm25", "--fail-empty", "--jsonl"], 0),
                (["search", "x", "--json", "--jsonl"], 2),
                (["search", "x", "--mode", "fuzzy"], 2),
                (["search", "x", "--path-prefix", "relative"], 2),
                (["search", "x", "-k", "100000", "--mode", "bm25"], 4),
                (["status"], 0),
                (["status", "--json"], 0),
                (["status", "--until-ready"], 0),
                (["status", "--interval", "1"], 2),
                (["status", "--watch", "--interval", "0"], 2),
                (["sources"], 0),
                (["sources", "extra"], 2),
                (["get", docs + "/faq.txt"], 0),
                (["get", docs + "/faq.txt:1-2", "--json"], 0),
                (["get", docs + "/nothing.md"], 4),
                (["get"], 2),
                (["get", docs + "/faq.txt", "--chunk", "1"], 2),
                (["reindex", docs + "/faq.txt"], 0),
                (["reindex", docs + "/ops/"], 0),
                (["reindex", "--no-wait"], 0),
                (["reindex", "/etc"], 4),
                (["reindex", docs + "/nothing.md"], 4),
                (["reindex", "a", "b"], 2),
                (["ping"], 0),
                (["ping", "--bogus"], 2),
                (["nosuch"], 2),
                (["--version"], 0),
            ]
            for (arguments, expected) in cases {
                let result = try runProgram(ctl, arguments, environment: env)
                #expect(result.status == expected, "ragctl \(arguments.joined(separator: " ")): \(result.stdout) \(result.stderr)")
                if expected >= 2 { #expect(result.stderr.hasPrefix("ragctl: "), "errors name the program: \(result.stderr)") }
            }
            daemon.stop()
            for arguments in [["search", "x"], ["status"], ["status", "--watch", "--until-ready"], ["sources"], ["get", docs + "/faq.txt"],
                              ["reindex"], ["ping"]] {
                let result = try runProgram(ctl, arguments, environment: env)
                #expect(result.status == 3, "ragctl \(arguments) with ragd stopped: \(result.stderr)")
                #expect(result.stderr.contains("Is ragd running?"))
            }
            // A socket file that is not one: still unreachable.
            let notASocket = try runProgram(ctl, ["ping", "--socket", docs + "/faq.txt"])
            #expect(notASocket.status == 3, "\(notASocket.stderr)")
        }
    }

    @Test func aDaemonThatAnswersGarbageIsAnError() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let fake = try FakeDaemon(in: dir, replies: ["ping": ["!this is not json"], "status": ["!{\"id\":99,\"ok\":true}"]])
            defer { fake.stop() }
            let garbage = try runProgram(DaemonProcess.ragctl, ["ping", "--socket", fake.path])
            #expect(garbage.status == 4)
            #expect(garbage.stderr.contains("unexpected answer from ragd"))
            let wrongID = try runProgram(DaemonProcess.ragctl, ["status", "--socket", fake.path])
            #expect(wrongID.status == 4, "\(wrongID.stderr)")
        }
    }

    // MARK: status while indexing (a fake daemon gives the states a real one passes through too fast)

    static let indexing = """
        "state":"starting","pending":1692,"files":192,"chunks":384,"ingest_blocked":false,\
        "progress":{"done":192,"total":1500,"phase":"writing","elapsed_s":0.5,"rate":240.0},\
        "sources":[{"path":"/srv/docs","files":192,"chunks":384,"watch":"watching","watched_folders":12}],\
        "skipped":{"binary":1,"too_large":0,"unreadable":2},\
        "embeddings":{"model":null,"dimensions":0,"embedded":0,"pending":384,"total":384,"rate":null,"state":"loading","reason":null},\
        "version":"0.1.0","protocol":1
        """
    static let embedding = """
        "state":"indexing","pending":900,"files":1500,"chunks":3000,"ingest_blocked":true,"last_error":"the disk is full",\
        "progress":{"done":1500,"total":1500,"phase":"idle","elapsed_s":6.2,"rate":241.9},\
        "sources":[{"path":"/srv/docs","files":1500,"chunks":3000,"watch":"watching","watched_folders":12}],\
        "embeddings":{"model":"all-MiniLM-L6-v2@0123456789ab;mean;norm;256","dimensions":384,"embedded":2100,"pending":900,\
        "total":3000,"rate":50.0,"state":"embedding","reason":null},"version":"0.1.0","protocol":1
        """
    static let ready = """
        "state":"ready","pending":0,"files":1500,"chunks":3000,"ingest_blocked":false,\
        "progress":{"done":1500,"total":1500,"phase":"idle","elapsed_s":6.2,"rate":241.9},\
        "sources":[{"path":"/srv/docs","files":1500,"chunks":3000,"watch":"watching","watched_folders":12}],\
        "embeddings":{"model":"all-MiniLM-L6-v2@0123456789ab;mean;norm;256","dimensions":384,"embedded":3000,"pending":0,\
        "total":3000,"rate":null,"state":"ready","reason":null},"version":"0.1.0","protocol":1
        """

    @Test func statusProgressRateAndETA() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let fake = try FakeDaemon(in: dir, replies: ["status": [Self.indexing, Self.embedding, Self.ready]])
            defer { fake.stop() }
            let env = ["RAGD_SOCKET": fake.path]
            var blocks: [String] = []
            for _ in 0..<3 {
                let result = try runProgram(DaemonProcess.ragctl, ["status"], environment: env)
                #expect(result.status == 0)
                blocks.append(result.stdout)
            }
            expectGolden(blocks.joined(separator: "--\n"), "status-progress.txt")
            #expect(blocks[0].contains("progress: 192/1500 files (12%), 240 files/s, ETA 6s"), "(1500-192)/240 = 5.45 s")
            #expect(blocks[1].contains("vectors:  2100/3000 chunks (70%), 50.0 chunks/s, ETA 18s"))
        }
    }

    @Test func statusWatchUntilReadyPrintsOneLinePerSample() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let fake = try FakeDaemon(in: dir, replies: ["status": [Self.indexing, Self.embedding, Self.ready]])
            defer { fake.stop() }
            let result = try runProgram(DaemonProcess.ragctl, ["status", "--watch", "--until-ready", "--interval", "0.01", "--socket", fake.path])
            #expect(result.status == 0)
            expectGolden(result.stdout, "status-watch.txt")
            #expect(fake.ops == ["status", "status", "status"], "stops at the first ready sample")

            let fakeJSON = try FakeDaemon(in: dir, replies: ["status": [Self.indexing, Self.ready]])
            defer { fakeJSON.stop() }
            let json = try runProgram(DaemonProcess.ragctl, ["status", "--until-ready", "--json", "--interval", "0.01", "--socket", fakeJSON.path])
            let lines = json.stdout.split(separator: "\n")
            #expect(json.status == 0 && lines.count == 2)
            for line in lines { #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "JSON lines: \(line)") }
        }
    }

    @Test func statusOnATerminalDrawsBarsAndRedrawsInPlace() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let fake = try FakeDaemon(in: dir, replies: ["status": [Self.indexing, Self.embedding, Self.ready]])
            defer { fake.stop() }
            let env = ["TERM": "xterm", "NO_COLOR": ""]
            let result = try inTerminal("\(DaemonProcess.ragctl) status --watch --until-ready --interval 0.01 --socket \(fake.path)", environment: env)
            #expect(result.status == 0)
            let bar = "[\u{1B}[32m###\u{1B}[0m---------------------]  192/1500 files  240 files/s, ETA 6s"
            #expect(result.stdout.contains("progress: " + bar), "\(result.stdout.debugDescription)")
            #expect(result.stdout.contains("vectors:  [\u{1B}[32m################\u{1B}[0m--------]  2100/3000 chunks  50.0 chunks/s, ETA 18s"))
            #expect(result.stdout.contains("\u{1B}[9A\r\u{1B}[J"), "the first block (9 lines) is redrawn in place")
            #expect(result.stdout.hasSuffix("version:  0.1.0\n"))
        }
    }

    @Test func statusWatchUntilReadyOnARealDaemon() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = dir + "/docs"
            for n in 0..<40 { try writeFile(docs + "/doc\(n).md", "# Doc \(n)\n\nText about topic \(n) and signing keys.\n") }
            let daemon = try DaemonProcess.start(sources: [docs], in: dir)
            // No wait for the index: ragctl waits, whatever the state it starts from.
            let result = try runProgram(DaemonProcess.ragctl, ["status", "--watch", "--until-ready", "--interval", "0.05", "--socket", daemon.socketPath])
            #expect(result.status == 0, "\(result.stderr)")
            let lines = result.stdout.split(separator: "\n").map(String.init)
            let shape = try Regex(#"^state=(starting|indexing|ready) pending=\d+ files=\d+ chunks=\d+( [a-z_]+=\S+)*$"#)
            for line in lines { #expect(line.wholeMatch(of: shape) != nil, "plain key=value lines: \(line)") }
            #expect(lines.last?.hasPrefix("state=ready pending=0 files=40 chunks=40") == true, "\(lines)")
            #expect(lines.dropLast().allSatisfy { !$0.hasPrefix("state=ready") }, "stops at the first ready sample")
            #expect(!result.stdout.contains("\u{1B}"))

            // Ctrl-C ends --watch with status 0.
            let watch = Process()
            watch.executableURL = URL(fileURLWithPath: DaemonProcess.ragctl)
            watch.arguments = ["status", "--watch", "--interval", "0.05", "--socket", daemon.socketPath]
            let out = Pipe()
            watch.standardOutput = out
            let exited = DispatchSemaphore(value: 0)
            watch.terminationHandler = { _ in exited.signal() }
            try watch.run()
            var seen = Data()
            while !seen.contains(0x0A) {
                let chunk = out.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                seen.append(chunk)
            }
            kill(watch.processIdentifier, SIGINT)
            if exited.wait(timeout: .now() + 60) == .timedOut {
                Issue.record("ragctl status --watch did not end on SIGINT")
                kill(watch.processIdentifier, SIGKILL)
            }
            watch.waitUntilExit()
            #expect(watch.terminationReason == .exit && watch.terminationStatus == 0)
            #expect(String(decoding: seen, as: UTF8.self).hasPrefix("state=ready"))
            daemon.stop()
        }
    }

    // MARK: reindex

    @Test func reindexReadsAgainAFileTheScanCannotSeeChanged() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = dir + "/docs"
            let file = docs + "/notes/a.md"
            try writeFile(file, "# Notes\n\nalpha beta gamma\n")
            try writeFile(docs + "/b.md", "# B\n\ndelta\n")
            try writeFile(dir + "/ragd.toml", "[model]\nenabled = false\n")
            let arguments = ["--config", dir + "/ragd.toml"]
            var daemon = try DaemonProcess.start(sources: [docs], in: dir, extraArguments: arguments)
            try daemon.waitUntilIndexed()
            #expect(daemon.stop() == 0)
            // Edited while ragd is down, same size and modification time: the start-up scan cannot tell.
            var st = stat()
            #expect(stat(file, &st) == 0)
            try writeFile(file, "# Notes\n\nzulus beta gamma\n")
            var times = [st.st_atim, st.st_mtim]
            #expect(utimensat(AT_FDCWD, file, &times, 0) == 0)
            daemon = try DaemonProcess.start(sources: [docs], in: dir, extraArguments: arguments)
            try daemon.waitUntilIndexed()
            let env = ["RAGD_SOCKET": daemon.socketPath]
            let ctl = DaemonProcess.ragctl
            #expect(try runProgram(ctl, ["search", "zulus", "--mode", "bm25", "--fail-empty"], environment: env).status == 1, "the index is stale")

            let reindex = try runProgram(ctl, ["reindex", file], environment: env)
            #expect(reindex.status == 0, "\(reindex.stderr)")
            #expect(reindex.stdout.hasPrefix("reindexed \(file): 1 file written; chunks: 1 new, 0 unchanged, 1 removed ("), "\(reindex.stdout)")
            let found = try runProgram(ctl, ["search", "zulus", "--mode", "bm25", "--fail-empty"], environment: env)
            #expect(found.status == 0)
            #expect(found.stdout.contains("\(file):1-3"))

            // Everything again: both files are read and written again, their chunks kept.
            let all = try runProgram(ctl, ["reindex", "--json"], environment: env)
            let summary = try JSONSerialization.jsonObject(with: Data(all.stdout.utf8)) as? [String: Any]
            #expect(summary?["files"] as? Int == 2)
            #expect(summary?["files_written"] as? Int == 2)
            #expect(summary?["chunks_kept"] as? Int == 2 && summary?["chunks_added"] as? Int == 0)
            daemon.stop()
        }
    }

    // MARK: Help, completions, manual pages

    /// Every command's help: exit 0 and every option it takes.
    static let options: [String: [String]] = [
        "search": ["<query>", "-k", "--mode", "--path-prefix", "--ext", "--tag", "--modified-after", "--json", "--jsonl", "--full", "--fail-empty", "--socket"],
        "status": ["--json", "--watch", "--until-ready", "--interval", "--socket"],
        "sources": ["--json", "--socket"],
        "get": ["<path[:lines]>", "--chunk", "--json", "--socket"],
        "reindex": ["<path>", "--no-wait", "--json", "--socket"],
        "ping": ["--socket"],
    ]

    @Test func helpDocumentsEveryCommand() throws {
        let help = try runProgram(DaemonProcess.ragctl, ["--help"])
        #expect(help.status == 0)
        for command in Self.options.keys { #expect(help.stdout.contains("  \(command) "), "\(command) listed") }
        for text in ["Exit status:", "RAGD_SOCKET", "NO_COLOR", "  3  ragd unreachable"] { #expect(help.stdout.contains(text)) }
        for (command, options) in Self.options {
            for arguments in [[command, "--help"], ["help", command]] {
                let result = try runProgram(DaemonProcess.ragctl, arguments)
                #expect(result.status == 0, "ragctl \(arguments)")
                #expect(result.stdout.contains("USAGE: ragctl \(command)"))
                for option in options { #expect(result.stdout.contains(option), "ragctl \(command) --help mentions \(option)") }
            }
        }
        let daemonHelp = try runProgram(DaemonProcess.binary, ["--help"])
        #expect(daemonHelp.status == 0)
        for flag in ["--source", "--state-dir", "--socket", "--config", "--model", "--log-level", "--rebuild-index", "Exit status:", "SIGHUP"] {
            #expect(daemonHelp.stdout.contains(flag))
        }
    }

    @Test func completionsAndManualPagesAreGeneratedAndValid() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
            let build = (DaemonProcess.ragctl as NSString).deletingLastPathComponent
            let generated = dir + "/generated"
            let make = try runProgram("/usr/bin/make", ["-C", root, "--no-print-directory", "completions", "man", "BUILD_DIR=\(build)", "GEN_DIR=\(generated)"])
            #expect(make.status == 0, "\(make.stdout)\(make.stderr)")
            let bash = generated + "/completions/ragctl.bash", zsh = generated + "/completions/_ragctl", fish = generated + "/completions/ragctl.fish"
            let page1 = generated + "/man/ragctl.1", page8 = generated + "/man/ragd.8"

            #expect(try runProgram("/bin/bash", ["-n", bash]).status == 0)
            // The completion function offers the subcommands and a subcommand's options.
            let script = """
                source \(bash)
                COMP_WORDS=(ragctl re); COMP_CWORD=1; COMP_LINE='ragctl re'; COMP_POINT=${#COMP_LINE}; _ragctl ragctl re ragctl
                echo "${COMPREPLY[*]}"
                COMP_WORDS=(ragctl reindex --); COMP_CWORD=2; COMP_LINE='ragctl reindex --'; COMP_POINT=${#COMP_LINE}; _ragctl ragctl -- reindex
                echo "${COMPREPLY[*]}"
                """
            let completion = try runProgram("/bin/bash", ["-c", script], environment: ["PATH": build + ":/usr/bin:/bin"])
            let lines = completion.stdout.split(separator: "\n")
            #expect(lines.first == "reindex", "\(completion.stdout)\(completion.stderr)")
            #expect(lines.count == 2 && lines[1].contains("--no-wait") && lines[1].contains("--socket"), "\(completion.stdout)")
            for (shell, file) in [("zsh", zsh), ("fish", fish)] {
                guard let path = ["/usr/bin/\(shell)", "/bin/\(shell)"].first(where: { (path: String) in access(path, X_OK) == 0 }) else { continue }
                let check = try runProgram(path, ["-n", file])
                #expect(check.status == 0, "\(shell) -n: \(check.stderr)")
            }
            if access("/usr/bin/fish", X_OK) == 0 {
                let offered = try runProgram("/usr/bin/fish", ["-c", "source \(fish); complete -C 'ragctl status --'"], environment: ["PATH": build + ":/usr/bin:/bin"])
                #expect(offered.stdout.contains("--until-ready"), "\(offered.stdout)\(offered.stderr)")
            }

            #expect(access("/usr/bin/groff", X_OK) == 0 || access("/usr/bin/man", X_OK) == 0, "groff or man is needed to check the pages")
            for page in [page1, page8] {
                if access("/usr/bin/groff", X_OK) == 0 {
                    let groff = try runProgram("/usr/bin/groff", ["-man", "-ww", "-z", page])
                    #expect(groff.status == 0 && groff.stderr.isEmpty, "\(page): \(groff.stderr)")
                }
                if access("/usr/bin/man", X_OK) == 0 {
                    let man = try runProgram("/usr/bin/man", ["--warnings", "-l", page], environment: ["MANPAGER": "cat", "MANWIDTH": "80"])
                    #expect(man.status == 0 && man.stderr.isEmpty, "\(page): \(man.stderr)")
                }
            }
            let ragctlPage = try String(contentsOfFile: page1, encoding: .utf8)
            #expect(ragctlPage.hasPrefix(".\\\" Generated by scripts/gen-man.py"))
            #expect(ragctlPage.contains(".TH RAGCTL 1 "))
            for command in Self.options.keys { #expect(ragctlPage.contains(".SS \"\(command)\""), "\(command) in ragctl(1)") }
            for section in ["SYNOPSIS", "COMMANDS", "ENVIRONMENT", "\"EXIT STATUS\"", "\"SEE ALSO\""] {
                #expect(ragctlPage.contains(".SH \(section)"), "\(section) in ragctl(1)")
            }
            #expect(ragctlPage.contains("\\fB\\-\\-until\\-ready\\fR"))
            let ragdPage = try String(contentsOfFile: page8, encoding: .utf8)
            for text in [".TH RAGD 8 ", ".SH SIGNALS", ".SH FILES", "\\fB\\-\\-state\\-dir\\fR", ".BR ragctl (1)"] {
                #expect(ragdPage.contains(text), "\(text) in ragd(8)")
            }

            // install and uninstall put them where the distributions look, and take them away.
            let destination = dir + "/root"
            let common = ["-C", root, "--no-print-directory", "BUILD_DIR=\(build)", "GEN_DIR=\(generated)", "DESTDIR=\(destination)", "PREFIX=/usr"]
            let install = try runProgram("/usr/bin/make", common + ["install-completions", "install-man"])
            #expect(install.status == 0, "\(install.stderr)")
            let installed = ["/usr/share/bash-completion/completions/ragctl", "/usr/share/zsh/vendor-completions/_ragctl",
                             "/usr/share/fish/vendor_completions.d/ragctl.fish", "/usr/share/man/man1/ragctl.1", "/usr/share/man/man8/ragd.8"]
            for path in installed { #expect(access(destination + path, R_OK) == 0, "\(path) installed") }
            #expect(try runProgram("/usr/bin/make", common + ["uninstall-completions", "uninstall-man"]).status == 0)
            for path in installed { #expect(access(destination + path, F_OK) != 0, "\(path) removed") }
        }
    }
}

// MARK: Helpers

/// Runs a shell command line with a pseudo-terminal as its stdout (util-linux `script`); the output's line ends are
/// turned back into `\n`.
func inTerminal(_ command: String, environment: [String: String]) throws -> ProcessOutput {
    var result = try runProgram("/usr/bin/script", ["-qec", command, "/dev/null"], environment: environment)
    result.stdout = result.stdout.replacingOccurrences(of: "\r\n", with: "\n")
    return result
}

/// `text` with the docs folder as `$DOCS`, times as `<t>` and scores rounded to 3 decimals.
func normalized(_ text: String, docs: String) -> String {
    var text = text.replacingOccurrences(of: docs, with: "$DOCS")
    let patterns: [(String, (Substring) -> String)] = [
        (#"[0-9]+(\.[0-9]+)? ms"#, { _ in "<t> ms" }),
        (#"\([0-9]+(\.[0-9]+)? s\)"#, { _ in "(<t> s)" }),
        (#""(took_ms|seconds)":[0-9.e+-]+"#, { match in String(match.prefix { $0 != ":" }) + ":0" }),
        (#""(score|bm25|dense)":-?[0-9][0-9.e+-]*"#, { match in
            let (key, value) = (match.prefix { $0 != ":" }, match.drop { $0 != ":" }.dropFirst())
            return "\(key):\(((Double(value) ?? .nan) * 1000).rounded() / 1000)"
        }),
    ]
    for (pattern, replacement) in patterns {
        let source = text
        text = source.replacing(try! Regex(pattern)) { replacement(source[$0.range]) }
    }
    return text
}

/// Compares `actual` with `Fixtures/ragctl/<name>`; with `RAGCTL_UPDATE_GOLDENS=1` writes it instead.
func expectGolden(_ actual: String, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Fixtures/ragctl/" + name
    if ProcessInfo.processInfo.environment["RAGCTL_UPDATE_GOLDENS"] == "1" {
        try? actual.write(toFile: path, atomically: true, encoding: .utf8)
        return
    }
    guard let expected = try? String(contentsOfFile: path, encoding: .utf8) else {
        Issue.record("no golden file \(path); run with RAGCTL_UPDATE_GOLDENS=1 to write it", sourceLocation: sourceLocation)
        return
    }
    #expect(actual == expected, "output differs from \(name)", sourceLocation: sourceLocation)
}

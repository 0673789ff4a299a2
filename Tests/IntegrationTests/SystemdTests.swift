import Foundation
import RagProtocol
import RagTestSupport
import Testing

/// ragd's side of the systemd contract, against stand-ins: sd_notify messages on a NotifyListener, socket
/// activation through `systemd-socket-activate`, structured logging to a fake journal socket, and the unit files.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct SystemdTests {
    static func executable(_ name: String) -> String? {
        ["/usr/bin/", "/bin/", "/usr/sbin/", "/sbin/"].map { $0 + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// The package's root folder.
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    func makeDocs(_ dir: String) throws -> String {
        let docs = dir + "/docs"
        try writeFile(docs + "/install.md", "# Install\n\nUse apt to install the package.\n\n## Keys\n\nImport the signing keys.\n")
        try writeFile(docs + "/notes.txt", "Plain notes about lmdb cursors.\n")
        return docs
    }

    func json(_ line: String) throws -> JSONValue { try JSONParser.parse(line) }

    @Test func readyStatusAndStoppingNotifications() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = try makeDocs(dir)
            let daemon = try DaemonProcess.start(sources: [docs], in: dir)
            // READY=1 means the socket answers.
            #expect(try json(daemon.client().request(#"{"id":1,"op":"ping"}"#))["ok"] == true)
            // After the indexing pass: STATUS=ready; N files, M chunks, matching what status reports.
            let status = try daemon.notify.wait(for: "STATUS=ready")
            let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("STATUS=ready") })
            let reply = try json(daemon.client().request(#"{"id":2,"op":"status"}"#))
            let files = try #require(reply["files"]?.intValue)
            let chunks = try #require(reply["chunks"]?.intValue)
            #expect(files == 2)
            #expect(line == "STATUS=ready; \(files) files, \(chunks) chunks")
            #expect(daemon.stop() == 0)
            try daemon.notify.wait(for: "STOPPING=1", timeout: 10)
            let history = daemon.notify.history()
            #expect(!history.contains { $0.contains("WATCHDOG=1") }, "no watchdog without WATCHDOG_USEC: \(history)")
            // Whichever of binding and indexing finished first, the status systemd shows last is the index's.
            let statuses = history.flatMap { $0.split(separator: "\n") }.filter { $0.hasPrefix("STATUS=") }
            #expect(statuses.last == line, "\(history)")
        }
    }

    @Test func watchdogKeepAlivesWhenEnabled() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = try makeDocs(dir)
            let daemon = try DaemonProcess(arguments: ["--source", docs, "--state-dir", dir + "/state", "--socket", dir + "/ragd.sock"],
                                           socketPath: dir + "/ragd.sock", workDirectory: dir,
                                           environment: ["WATCHDOG_USEC": "200000"])
            try daemon.waitUntilReady()
            // Keep-alives every 100 ms: wait for several.
            for _ in 0..<3 { try daemon.notify.wait(for: "WATCHDOG=1", timeout: 10) }
            #expect(daemon.stop() == 0)
            try daemon.notify.wait(for: "STOPPING=1", timeout: 10)
            #expect(daemon.log.contains("watchdog enabled"))
        }
    }

    @Test func watchdogFollowsWatchdogPid() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = try makeDocs(dir)
            let arguments = ["--source", docs, "--state-dir", dir + "/state", "--socket", dir + "/ragd.sock"]
            // WATCHDOG_PID names ragd itself (the shell execs ragd, keeping its pid): keep-alives flow.
            var daemon = try DaemonProcess(arguments: arguments, socketPath: dir + "/ragd.sock", workDirectory: dir,
                                           environment: ["WATCHDOG_USEC": "200000"],
                                           launcher: ["/bin/sh", "-c", #"WATCHDOG_PID=$$ exec "$0" "$@""#])
            try daemon.waitUntilReady()
            try daemon.notify.wait(for: "WATCHDOG=1", timeout: 10)
            #expect(daemon.stop() == 0)

            // WATCHDOG_PID names another process: the watchdog is not ragd's business.
            daemon = try DaemonProcess(arguments: arguments, socketPath: dir + "/ragd.sock", workDirectory: dir,
                                       environment: ["WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"])
            try daemon.waitUntilReady()
            try daemon.waitUntilIndexed()
            #expect(daemon.stop() == 0)
            try daemon.notify.wait(for: "STOPPING=1", timeout: 10)
            let notices = daemon.notify.received()
            #expect(!notices.contains { $0.contains("WATCHDOG=1") }, "\(notices)")
            #expect(!daemon.log.contains("watchdog enabled"))
        }
    }

    @Test(.enabled(if: SystemdTests.executable("systemd-socket-activate") != nil, "needs systemd-socket-activate"))
    func socketActivation() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = try makeDocs(dir)
            let activated = dir + "/activated.sock"
            let unused = dir + "/unused/ragd.sock"
            // systemd-socket-activate passes only the environment named with -E.
            let daemon = try DaemonProcess(
                arguments: ["--source", docs, "--state-dir", dir + "/state", "--socket", unused],
                socketPath: activated, workDirectory: dir,
                launcher: [SystemdTests.executable("systemd-socket-activate")!, "-l", activated, "-E", "NOTIFY_SOCKET"])
            try daemon.waitForLog(containing: "Listening on \(activated)")
            // The first connection starts ragd, which answers on the socket it inherited as fd 3.
            let client = try LineClient(path: activated)
            #expect(try json(client.request(#"{"id":1,"op":"ping"}"#))["pong"] == true)
            try daemon.waitUntilReady()
            try daemon.waitUntilIndexed()
            let status = try json(client.request(#"{"id":2,"op":"status"}"#))
            #expect(status["files"] == 2)
            #expect(daemon.stop() == 0)
            #expect(daemon.log.contains("serving on an inherited socket"))
            // ragd neither bound its configured path nor removed the inherited one.
            #expect(!FileManager.default.fileExists(atPath: unused))
            #expect(!FileManager.default.fileExists(atPath: dir + "/unused"))
            var st = stat()
            #expect(lstat(activated, &st) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK, "the activated socket is still there")
        }
    }

    @Test(.enabled(if: SystemdTests.executable("unshare") != nil, "needs unshare(1) to give ragd a private /run/systemd/journal"))
    func journalFields() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = try makeDocs(dir)
            try FileManager.default.createDirectory(atPath: dir + "/journal", withIntermediateDirectories: true)
            let journal = try JournalListener(path: dir + "/journal/socket")
            // In a private mount namespace, /run/systemd/journal is the test's folder, so the daemon's
            // sd_journal_sendv reaches the listener.
            var launcher = [SystemdTests.executable("unshare")!, "--mount", "--propagation", "private"]
            if geteuid() != 0 { launcher += ["--map-root-user"] }
            launcher += ["/bin/sh", "-c", """
                set -e
                mount -t tmpfs tmpfs /run/systemd
                mkdir /run/systemd/journal
                mount --bind "$RAGD_TEST_JOURNAL" /run/systemd/journal
                exec "$0" "$@"
                """]
            let socket = dir + "/ragd.sock"
            let daemon = try DaemonProcess(
                arguments: ["--source", docs, "--state-dir", dir + "/state", "--socket", socket],
                socketPath: socket, workDirectory: dir, environment: ["RAGD_TEST_JOURNAL": dir + "/journal"],
                launcher: launcher, journalStream: true)
            try daemon.waitUntilReady()
            let listening = try journal.wait(timeout: 30) { $0["MESSAGE"] == "listening" }
            #expect(listening["PRIORITY"] == "5")
            #expect(listening["SYSLOG_IDENTIFIER"] == "ragd")
            #expect(listening["SOCKET_PATH"] == socket)
            #expect(listening["SOCKET_MODE"] == "660")
            #expect(listening["LOGGER_LABEL"] == "ragd")
            #expect(listening["CODE_FILE"]?.hasSuffix(".swift") == true)
            #expect(listening["CODE_LINE"].flatMap { Int($0) } != nil)
            #expect(listening["CODE_FUNC"]?.isEmpty == false)
            let indexed = try journal.wait(timeout: 30) { $0["MESSAGE"] == "index ready" }
            #expect(indexed["FILES"] == "2")
            #expect(indexed["SCAN_SECONDS"] != nil)
            #expect(daemon.stop() == 0)
            try journal.wait(timeout: 10) { $0["MESSAGE"] == "stopped" }
            // Nothing went to stderr: the journal has it all.
            #expect(!daemon.log.contains("listening"), "\(daemon.log)")
        }
    }

    @Test(.enabled(if: SystemdTests.executable("systemd-analyze") != nil, "needs systemd-analyze"))
    func unitsVerifyAndAreHardened() throws {
        let script = SystemdTests.packageRoot + "/bench/check-units.sh"
        let result = try runProgram("/bin/bash", [script, DaemonProcess.binary])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        let output = result.stdout + result.stderr
        for service in ["ragd.service", "ragd-metrics.service"] {
            let line = try #require(output.split(separator: "\n").first { $0.contains("Overall exposure level for \(service):") })
            let figure = try #require(line.split(separator: ":").last?.split(separator: " ").first.flatMap { Double($0) })
            #expect(figure <= 2.0, "\(line)")
        }
    }
}

extension SystemdTests {
    @Test(.enabled(if: SystemdTests.executable("make") != nil, "needs make"))
    func makeInstallAndUninstall() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let root = dir + "/root"
            let make = SystemdTests.executable("make")!
            let variables = ["DESTDIR=\(root)", "PREFIX=/opt/ragd", "BUILD_DIR=\((DaemonProcess.binary as NSString).deletingLastPathComponent)"]
            let install = try runProgram(make, ["-C", SystemdTests.packageRoot, "install"] + variables)
            #expect(install.status == 0, "\(install.stdout)\(install.stderr)")
            for binary in ["ragd", "ragctl"] {
                #expect(FileManager.default.isExecutableFile(atPath: root + "/opt/ragd/bin/" + binary))
            }
            #expect(FileManager.default.fileExists(atPath: root + "/opt/ragd/share/doc/ragd/README.md"))
            let service = try String(contentsOfFile: root + "/etc/systemd/system/ragd.service", encoding: .utf8)
            #expect(service.contains("\nExecStart=/opt/ragd/bin/ragd "), "ExecStart follows the prefix")
            #expect(!service.contains("/usr/local/"))
            #expect(FileManager.default.fileExists(atPath: root + "/etc/systemd/system/ragd.socket"))
            let metrics = try String(contentsOfFile: root + "/etc/systemd/system/ragd-metrics.service", encoding: .utf8)
            #expect(metrics.contains("\nExecStart=/opt/ragd/bin/ragctl metrics "), "ExecStart follows the prefix")
            #expect(FileManager.default.fileExists(atPath: root + "/etc/systemd/system/ragd-metrics.timer"))
            #expect(FileManager.default.fileExists(atPath: root + "/opt/ragd/share/doc/ragd/operations.md"))

            // The installed configuration parses and has no source: ragd refuses it until one is listed.
            let config = root + "/etc/ragd/ragd.toml"
            let text = try String(contentsOfFile: config, encoding: .utf8)
            #expect(!text.contains("examples/docs"))
            let refused = try runProgram(DaemonProcess.binary, ["--config", config, "--state-dir", dir + "/state", "--socket", dir + "/s.sock"])
            #expect(refused.status == 64, "\(refused.stderr)")
            #expect(refused.stderr.contains("no sources"))
            let docs = dir + "/docs"
            try writeFile(docs + "/a.md", "# A\n\nalpha\n")
            let daemon = try DaemonProcess(arguments: ["--config", config, "--source", docs, "--state-dir", dir + "/state", "--socket", dir + "/s.sock"],
                                           socketPath: dir + "/s.sock", workDirectory: dir)
            try daemon.waitUntilReady()
            #expect(daemon.stop() == 0)

            // A second install keeps the administrator's configuration; uninstall keeps it too.
            try writeFile(config, text + "\n# edited\n")
            #expect(try runProgram(make, ["-C", SystemdTests.packageRoot, "install"] + variables).status == 0)
            #expect(try String(contentsOfFile: config, encoding: .utf8).hasSuffix("# edited\n"))
            let uninstall = try runProgram(make, ["-C", SystemdTests.packageRoot, "uninstall"] + variables)
            #expect(uninstall.status == 0, "\(uninstall.stdout)\(uninstall.stderr)")
            #expect(!FileManager.default.fileExists(atPath: root + "/opt/ragd/bin/ragd"))
            #expect(!FileManager.default.fileExists(atPath: root + "/etc/systemd/system/ragd.service"))
            #expect(!FileManager.default.fileExists(atPath: root + "/etc/systemd/system/ragd-metrics.timer"))
            #expect(!FileManager.default.fileExists(atPath: root + "/opt/ragd/share/doc/ragd"))
            #expect(FileManager.default.fileExists(atPath: config))
        }
    }
}

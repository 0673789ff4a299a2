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

    @Test(.enabled(if: SystemdTests.executable("systemd-analyze") != nil, "needs systemd-analyze"))
    func unitsVerifyAndAreHardened() throws {
        let script = SystemdTests.packageRoot + "/bench/check-units.sh"
        let result = try runProgram("/bin/bash", [script, DaemonProcess.binary])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        let output = result.stdout + result.stderr
        let line = try #require(output.split(separator: "\n").first { $0.contains("Overall exposure level for ragd.service:") })
        let figure = try #require(line.split(separator: ":").last?.split(separator: " ").first.flatMap { Double($0) })
        #expect(figure <= 2.0, "\(line)")
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
            #expect(!FileManager.default.fileExists(atPath: root + "/opt/ragd/share/doc/ragd"))
            #expect(FileManager.default.fileExists(atPath: config))
        }
    }
}

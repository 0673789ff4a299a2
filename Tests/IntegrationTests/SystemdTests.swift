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

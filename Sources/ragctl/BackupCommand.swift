import ArgumentParser
import Glibc
import RagProtocol

/// `ragctl backup DEST`: asks ragd for a hot, compacted copy of its index in a new folder.
struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy ragd's index into a new folder while ragd keeps serving.",
        discussion: """
            DEST must not exist, or be an empty folder, and must be writable by ragd (it writes the copy, not ragctl). \
            Start a ragd with --state-dir DEST to use the copy: it reconciles it with the sources first. Only root and \
            ragd's own user may make a backup. ragctl waits as long as the copy takes.
            """)

    @Argument(help: ArgumentHelp("The folder to create (relative paths are taken from the current folder).", valueName: "dest"))
    var destination: String

    @Flag(name: .long, help: "Print the daemon's JSON reply as is.")
    var json = false

    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try withClientErrors {
            // No receive timeout: a large index takes a while to copy.
            let client = try Client(path: Client.socketPath(connection.socket), timeoutSeconds: 0)
            let reply = try client.call("backup", [("dest", .string(Backup.absolute(destination)))])
            if json {
                print(reply.serialized())
                return
            }
            let bytes = reply["bytes"]?.intValue ?? 0
            let ms = reply["took_ms"]?.doubleValue ?? 0
            print("backup written to \(reply["path"]?.stringValue ?? destination): \(bytes) bytes in \(format3(ms)) ms")
        }
    }

    /// `path` made absolute against the current folder, without `.`, `..`, empty components or a trailing slash.
    static func absolute(_ path: String) -> String {
        var full = path
        if !path.hasPrefix("/"), let cwd = getcwd(nil, 0) {
            full = String(cString: cwd) + "/" + path
            free(cwd)
        }
        var parts: [Substring] = []
        for part in full.split(separator: "/") {
            if part == "." { continue }
            if part == ".." { _ = parts.popLast(); continue }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }
}

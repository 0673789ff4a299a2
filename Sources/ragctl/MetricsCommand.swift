import ArgumentParser
import Glibc
import RagProtocol

/// `ragctl metrics`: ragd's metrics in the Prometheus text format, on stdout or atomically into a file (for
/// node_exporter's textfile collector).
struct Metrics: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print ragd's metrics in the Prometheus text format.",
        discussion: """
            With --output FILE the text is written to a temporary file beside FILE, synced and renamed over it, so a \
            reader such as node_exporter's textfile collector never sees a partial file (exit status 1 if FILE cannot \
            be written). ragd answers only root, its own user, and clients from whom no source is hidden.
            """)

    @Option(name: .long, help: ArgumentHelp("Write to this file (replaced atomically) instead of stdout.", valueName: "file"))
    var output: String?

    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try withClientErrors {
            let reply = try connection.connect().call("metrics")
            guard let text = reply["text"]?.stringValue else { throw ClientError.protocolError("no 'text' in the metrics reply") }
            guard let output else {
                print(text, terminator: text.hasSuffix("\n") ? "" : "\n")
                return
            }
            do {
                try Metrics.replace(output, with: Array(text.utf8))
            } catch let error as FileError {
                printError(error.message)
                throw ExitCode(1)
            }
        }
    }

    struct FileError: Error { let message: String }

    /// Writes `bytes` to a temporary file in `path`'s folder (mode 0644), syncs it and renames it to `path`.
    static func replace(_ path: String, with bytes: [UInt8]) throws {
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { throw FileError(message: "cannot create \(temporary): \(String(cString: strerror(errno)))") }
        var failure: String?
        var written = 0
        while written < bytes.count && failure == nil {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 && errno != EINTR { failure = "cannot write \(temporary): \(String(cString: strerror(errno)))" }
            if n > 0 { written += n }
        }
        if failure == nil && (fchmod(fd, 0o644) != 0 || fsync(fd) != 0) { failure = "cannot sync \(temporary): \(String(cString: strerror(errno)))" }
        close(fd)
        if failure == nil && rename(temporary, path) != 0 { failure = "cannot rename \(temporary) to \(path): \(String(cString: strerror(errno)))" }
        if let failure {
            unlink(temporary)
            throw FileError(message: failure)
        }
    }
}

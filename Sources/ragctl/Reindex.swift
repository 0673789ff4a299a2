import ArgumentParser
import Glibc
import RagProtocol

struct Reindex: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read and chunk again a file, a folder or every source, even if unchanged.",
        discussion: """
            For an index that may have missed a change (a file edited and its time stamp put back) or after a \
            chunking change. Unchanged chunks keep their ids, and vectors come from the cache, so only new text \
            is embedded. Waits until the files are indexed again, showing the progress on a terminal, then \
            prints what was written (counts include any other change indexed meanwhile). PATH must be inside a \
            source you may see.
            """)

    @Argument(help: ArgumentHelp("A file or folder inside a source (default: every source you may see).", valueName: "path"),
              completion: .file())
    var path: String?

    @Flag(name: .long, help: "Return once the request is queued, without waiting.")
    var noWait = false

    @Flag(name: .long, help: "Print the result as one JSON object.")
    var json = false

    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try withClientErrors {
            let client = try connection.connect()
            let target = path.map(absolutePath)
            let before = try client.call("status")
            let started = monotonicSeconds()
            let queued = try client.call("reindex", target.map { [("path", .string($0))] } ?? [])
            let name = target ?? "every source"
            let count = queued["files"]?.intValue ?? 0
            if noWait {
                print(json ? queued.serialized() : "queued \(name) for reindexing (\(count) indexed file\(count == 1 ? "" : "s"))")
                return
            }
            let block = LiveBlock()
            while true {
                do {
                    _ = try client.call("sync", [("timeout_ms", .int(Terminal.interactive ? 250 : 2000)), ("vectors", false)])
                    break
                } catch ClientError.daemon(let code, _) where code == "timeout" {
                    guard Terminal.interactive, !json else { continue }
                    let status = try client.call("status")
                    block.show(["reindexing \(name): " + (StatusView.passProgress(status) ?? "waiting for the indexer")])
                }
            }
            let after = try client.call("status")
            let seconds = monotonicSeconds() - started
            func delta(_ field: String) -> Int {
                StatusView.int(after["since_start"]?[field]) - StatusView.int(before["since_start"]?[field])
            }
            if json {
                let result: JSONValue = .object([
                    ("path", target.map { .string($0) } ?? .null), ("files", .int(Int64(count))),
                    ("files_written", .int(Int64(delta("files_written")))), ("files_deleted", .int(Int64(delta("files_deleted")))),
                    ("chunks_added", .int(Int64(delta("chunks_added")))), ("chunks_kept", .int(Int64(delta("chunks_kept")))),
                    ("chunks_removed", .int(Int64(delta("chunks_removed")))), ("seconds", .double((seconds * 1000).rounded() / 1000)),
                ])
                print(result.serialized())
                return
            }
            block.show([])
            let written = delta("files_written")
            var summary = "reindexed \(name): \(written) file\(written == 1 ? "" : "s") written"
            if delta("files_deleted") > 0 { summary += ", \(delta("files_deleted")) removed" }
            summary += "; chunks: \(delta("chunks_added")) new, \(delta("chunks_kept")) unchanged, \(delta("chunks_removed")) removed"
            print(summary + style(" (\(formatSeconds(seconds)))", .dim))
        }
    }
}

/// `path` made absolute against the working directory, with `.` and `..` resolved and no trailing slash.
func absolutePath(_ path: String) -> String {
    var full = path
    if !path.hasPrefix("/"), let cwd = getcwd(nil, 0) {
        full = String(cString: cwd) + "/" + path
        free(cwd)
    }
    var parts: [Substring] = []
    for part in full.split(separator: "/") where part != "." {
        if part == ".." { _ = parts.popLast() } else { parts.append(part) }
    }
    return "/" + parts.joined(separator: "/")
}

func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// `0.42 s`, `12.3 s`, `4m05s`.
func formatSeconds(_ seconds: Double) -> String {
    seconds < 60 ? "\((seconds * (seconds < 10 ? 100 : 10)).rounded() / (seconds < 10 ? 100 : 10)) s" : formatDuration(seconds)
}

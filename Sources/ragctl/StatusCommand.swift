import ArgumentParser
import Glibc
import RagProtocol

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the daemon's state, sources, files, chunks and pending work.",
        discussion: """
            While ragd indexes, a progress bar shows the files of the pass in flight and the chunks waiting for \
            their vectors, each with its rate and the time left (plain text when stdout is not a terminal). \
            --watch samples again every --interval seconds, redrawing in place on a terminal and printing one \
            line per sample otherwise (one JSON object per line with --json), until Ctrl-C (status 0) or, with \
            --until-ready, until ragd is ready (Ctrl-C then exits with 130).
            """)

    @Flag(name: .long, help: "Print the daemon's JSON reply as is (one line per sample with --watch).")
    var json = false

    @Flag(name: .long, help: "Keep sampling, until Ctrl-C.")
    var watch = false

    @Flag(name: .long, help: "Keep sampling until ragd is ready: nothing pending, every vector computed (implies --watch).")
    var untilReady = false

    @Option(name: .long, help: ArgumentHelp("Seconds between samples with --watch (default 1).", valueName: "seconds"))
    var interval: Double?

    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        if let interval {
            guard watch || untilReady else { throw ValidationError("--interval needs --watch or --until-ready") }
            guard interval > 0, interval <= 3600 else { throw ValidationError("--interval must be more than 0 and at most 3600 seconds") }
        }
    }

    func run() throws {
        try withClientErrors {
            guard watch || untilReady else {
                let reply = try connection.connect().call("status")
                print(json ? reply.serialized() : StatusView.lines(reply).joined(separator: "\n"))
                return
            }
            exitOnInterrupt(failing: untilReady)
            let block = LiveBlock()
            while true {
                let reply = try connection.connect().call("status")
                if json {
                    Terminal.write(reply.serialized() + "\n")
                } else if Terminal.interactive {
                    block.show(StatusView.lines(reply))
                } else {
                    Terminal.write(StatusView.line(reply) + "\n")
                }
                if untilReady && reply["state"]?.stringValue == "ready" { return }
                pause(seconds: interval ?? 1)
            }
        }
    }
}

/// Sleeps `seconds`, resuming after signals.
func pause(seconds: Double) {
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - seconds.rounded(.down)) * 1e9))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}

/// How `status` replies are shown: a block of labelled lines, or one `key=value` line per sample.
enum StatusView {
    static func int(_ value: JSONValue?) -> Int { value?.intValue ?? 0 }

    /// `done/total unit` with a bar on a terminal, the percentage elsewhere, then the rate and time left.
    static func progress(done: Int, total: Int, rate: Double?, unit: String) -> String {
        let percent = total > 0 ? Int((Double(done) / Double(total) * 100).rounded(.down)) : 0
        let timing = rateAndETA(done: done, total: total, rate: rate, unit: unit)
        if Terminal.interactive {
            return "\(progressBar(done: done, total: total))  \(done)/\(total) \(unit)" + (timing.isEmpty ? "" : "  " + timing)
        }
        return "\(done)/\(total) \(unit) (\(percent)%)" + (timing.isEmpty ? "" : ", " + timing)
    }

    /// The indexer's pass in flight, or nil when it is idle.
    static func passProgress(_ reply: JSONValue) -> String? {
        let progress = reply["progress"]
        switch progress?["phase"]?.stringValue {
        case "scanning":
            return "scanning the sources for changes"
        case "writing":
            let total = int(progress?["total"])
            guard total > 0 else { return nil }
            return self.progress(done: int(progress?["done"]), total: total, rate: progress?["rate"]?.doubleValue, unit: "files")
        default:
            return nil
        }
    }

    /// The vectors: computed of needed, loading, unavailable.
    static func vectors(_ reply: JSONValue) -> String? {
        guard let embeddings = reply["embeddings"] else { return nil }
        let embedded = int(embeddings["embedded"]), pending = int(embeddings["pending"])
        let total = embeddings["total"]?.intValue ?? embedded + pending
        let model = embeddings["model"]?.stringValue.map { String($0.prefix { $0 != "@" }) }
        switch embeddings["state"]?.stringValue {
        case "loading":
            return "loading the model (\(pending) chunks waiting)"
        case "unavailable":
            return "unavailable: " + (embeddings["reason"]?.stringValue ?? "no model")
        case "embedding":
            return progress(done: embedded, total: total, rate: embeddings["rate"]?.doubleValue, unit: "chunks")
        default:
            return "\(embedded)/\(total) chunks" + (model.map { " (\($0))" } ?? "")
        }
    }

    /// The labelled block of a `status` reply.
    static func lines(_ reply: JSONValue) -> [String] {
        let state = reply["state"]?.stringValue ?? "?"
        var lines = ["state:    " + style(state, state == "ready" ? .green : .yellow), "pending:  \(int(reply["pending"]))"]
        if let progress = passProgress(reply) { lines.append("progress: " + progress) }
        if let vectors = vectors(reply) { lines.append("vectors:  " + vectors) }
        if reply["ingest_blocked"] == true {
            lines.append("ingest:   " + style("blocked", .red) + ", retrying: \(reply["last_error"]?.stringValue ?? "unknown error")")
        }
        lines.append("files:    \(int(reply["files"]))")
        lines.append("chunks:   \(int(reply["chunks"]))")
        for source in reply["sources"]?.arrayValue ?? [] {
            let watch = source["watch"]?.stringValue.map { ", " + $0 } ?? ""
            lines.append("source:   \(source["path"]?.stringValue ?? "?")  (\(int(source["files"])) files, \(int(source["chunks"])) chunks\(watch))")
        }
        if let skipped = reply["skipped"] {
            let b = int(skipped["binary"]), l = int(skipped["too_large"]), u = int(skipped["unreadable"])
            if b + l + u > 0 { lines.append("skipped:  \(b) binary, \(l) too large, \(u) unreadable") }
        }
        if let version = reply["version"]?.stringValue { lines.append("version:  \(version)") }
        return lines
    }

    /// One `key=value` line of a `status` reply, for logs and pipes.
    static func line(_ reply: JSONValue) -> String {
        var fields = ["state=\(reply["state"]?.stringValue ?? "?")", "pending=\(int(reply["pending"]))",
                      "files=\(int(reply["files"]))", "chunks=\(int(reply["chunks"]))"]
        let progress = reply["progress"]
        switch progress?["phase"]?.stringValue {
        case "scanning":
            fields.append("progress=scanning")
        case "writing" where int(progress?["total"]) > 0:
            let done = int(progress?["done"]), total = int(progress?["total"])
            fields.append("progress=\(done)/\(total)")
            if let rate = progress?["rate"]?.doubleValue, rate > 0 {
                fields += ["rate=\(formatRate(rate))/s", "eta=\(formatDuration(Double(total - done) / rate))"]
            }
        default: break
        }
        if let embeddings = reply["embeddings"] {
            let embedded = int(embeddings["embedded"])
            let total = embeddings["total"]?.intValue ?? embedded + int(embeddings["pending"])
            switch embeddings["state"]?.stringValue {
            case "loading", "unavailable":
                fields.append("vectors=\(embeddings["state"]?.stringValue ?? "?")")
            default:
                fields.append("vectors=\(embedded)/\(total)")
                if let rate = embeddings["rate"]?.doubleValue, rate > 0, embedded < total {
                    fields += ["vector_rate=\(formatRate(rate))/s", "vector_eta=\(formatDuration(Double(total - embedded) / rate))"]
                }
            }
        }
        if reply["ingest_blocked"] == true { fields.append("ingest=blocked") }
        return fields.joined(separator: " ")
    }
}

struct Sources: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the sources you may see, with their counts and watch state.",
        discussion: """
            WATCH is watching (changes are seen at once), missing (the folder is gone; its return is watched for), \
            unwatched (it could not be watched: only the periodic rescan sees changes) or off (inotify is not \
            available).
            """)

    @Flag(name: .long, help: "Print the daemon's JSON reply as is.")
    var json = false

    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try withClientErrors {
            let reply = try connection.connect().call("sources")
            if json {
                print(reply.serialized())
                return
            }
            let sources = reply["sources"]?.arrayValue ?? []
            guard !sources.isEmpty else {
                print("no sources you may see")
                return
            }
            // The path last, so that the columns line up whatever its length.
            var rows = [["FILES", "CHUNKS", "WATCH", "PATH"]]
            for source in sources {
                var watch = source["watch"]?.stringValue ?? "?"
                if let folders = source["watched_folders"]?.intValue, watch == "watching" {
                    watch += " (\(folders) folder\(folders == 1 ? "" : "s"))"
                }
                rows.append(["\(StatusView.int(source["files"]))", "\(StatusView.int(source["chunks"]))", watch,
                             source["path"]?.stringValue ?? "?"])
            }
            let widths = (0..<3).map { column in rows.map { $0[column].count }.max() ?? 0 }
            for (n, row) in rows.enumerated() {
                let files = String(repeating: " ", count: widths[0] - row[0].count) + row[0]
                let chunks = String(repeating: " ", count: widths[1] - row[1].count) + row[1]
                let watch = row[2] + String(repeating: " ", count: widths[2] - row[2].count)
                let line = "\(files)  \(chunks)  \(watch)  \(row[3])"
                print(n == 0 ? style(line, .bold) : line)
            }
        }
    }
}

import Glibc
import Logging
import RagSystemd
import Synchronization

/// The daemon's log level, shared by every logger and changed on reload.
enum LogLevelControl {
    private static let value = Atomic<Int>(2)
    static var level: Logger.Level { Logger.Level.allCases[value.load(ordering: .relaxed)] }
    static func set(_ level: Logger.Level) { value.store(Logger.Level.allCases.firstIndex(of: level) ?? 2, ordering: .relaxed) }
}

/// Writes one line per event to stderr: `LEVEL message key=value …`. Under systemd (stderr is the journal)
/// each line starts with the syslog priority prefix `<N>` that journald turns into PRIORITY, and no timestamp.
struct StderrLogHandler: LogHandler {
    /// The process-wide level (changed by a configuration reload).
    var logLevel: Logger.Level {
        get { LogLevelControl.level }
        set { LogLevelControl.set(newValue) }
    }
    var metadata: Logger.Metadata = [:]
    let label: String
    let journal: Bool

    init(label: String, journal: Bool) {
        self.label = label
        self.journal = journal
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var line = ""
        if journal {
            line = "<\(JournaldLogHandler.priority(event.level))>"
        } else {
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            var seconds = now.tv_sec
            var parts = tm()
            gmtime_r(&seconds, &parts)
            let millis = now.tv_nsec / 1_000_000
            func pad(_ v: Int32, _ width: Int = 2) -> String { String(repeating: "0", count: max(0, width - String(v).count)) + String(v) }
            line = "\(parts.tm_year + 1900)-\(pad(parts.tm_mon + 1))-\(pad(parts.tm_mday))T\(pad(parts.tm_hour)):\(pad(parts.tm_min)):\(pad(parts.tm_sec)).\(pad(Int32(millis), 3))Z "
        }
        line += "\(event.level.rawValue.uppercased()) \(event.message)"
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        for key in merged.keys.sorted() {
            let value = "\(merged[key]!)"
            let quoted = value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" }) || value.isEmpty
            line += " \(key)=" + (quoted ? "\"" + value.replacingOccurrences(of: "\"", with: "\\\"") + "\"" : value)
        }
        line = line.replacingOccurrences(of: "\n", with: "\\n") + "\n"
        line.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = write(2, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 { if errno == EINTR { continue } else { return } }
                offset += n
            }
        }
    }
}

extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        guard contains(target) else { return self }
        return split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}

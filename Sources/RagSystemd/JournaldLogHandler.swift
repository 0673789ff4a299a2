import CSystemd
import Glibc
import Logging

/// A swift-log handler that writes each event to the systemd journal with `sd_journal_sendv`, as structured
/// fields: `MESSAGE`, `PRIORITY`, `SYSLOG_IDENTIFIER=ragd`, `CODE_FILE`, `CODE_LINE`, `CODE_FUNC`, `LOGGER_LABEL`,
/// and one field per metadata key (`file.path` becomes `FILE_PATH`). Events the journal refuses are dropped.
public struct JournaldLogHandler: LogHandler {
    /// The level: `levelProvider`'s answer when one is set (so a configuration reload can change it), else a fixed one.
    public var logLevel: Logger.Level {
        get { levelProvider?() ?? fixedLevel }
        set { fixedLevel = newValue }
    }
    private var fixedLevel: Logger.Level = .info
    /// Supplies the current level on every check, when set.
    public var levelProvider: (@Sendable () -> Logger.Level)?
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    /// The logger's label, sent as `LOGGER_LABEL`.
    public let label: String
    /// Sent as `SYSLOG_IDENTIFIER`.
    public var identifier = "ragd"

    public init(label: String) {
        self.label = label
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        _ = JournaldLogHandler.send(fields(of: event))
    }

    /// The journal fields of `event`, in the order they are sent: the fixed fields, then the metadata sorted by key.
    /// Metadata comes from the provider, the handler and the event, later ones winning.
    public func fields(of event: LogEvent) -> [(name: String, value: String)] {
        var fields: [(name: String, value: String)] = [
            ("MESSAGE", "\(event.message)"),
            ("PRIORITY", String(JournaldLogHandler.priority(event.level))),
            ("SYSLOG_IDENTIFIER", identifier),
            ("CODE_FILE", event.file),
            ("CODE_LINE", String(event.line)),
            ("CODE_FUNC", event.function),
            ("LOGGER_LABEL", label),
        ]
        var merged = metadataProvider?.get() ?? [:]
        merged.merge(metadata) { _, new in new }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        if let error = event.error, merged["error"] == nil { merged["error"] = "\(error)" }
        let reserved = Set(fields.map(\.name))
        for key in merged.keys.sorted() {
            var name = JournaldLogHandler.fieldName(key)
            if reserved.contains(name) { name = String(("F_" + name).prefix(64)) }
            fields.append((name, "\(merged[key]!)"))
        }
        return fields
    }

    /// The syslog priority of `level`: trace and debug 7, info 6, notice 5, warning 4, error 3, critical 2.
    public static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    /// A valid journal field name for a metadata key: uppercase, characters outside `[A-Z0-9_]` turned into `_`,
    /// prefixed with `F_` when it would start with `_` or a digit (or be empty), at most 64 characters.
    public static func fieldName(_ key: String) -> String {
        var name = ""
        for scalar in key.unicodeScalars {
            switch scalar {
            case "a"..."z": name.unicodeScalars.append(Unicode.Scalar(scalar.value - 32)!)
            case "A"..."Z", "0"..."9", "_": name.unicodeScalars.append(scalar)
            default: name += "_"
            }
        }
        if name.isEmpty || name.first == "_" || name.first!.isNumber { name = "F_" + name }
        return String(name.prefix(64))
    }

    /// Sends one entry of `NAME=value` fields to the journal; false when the journal refused it.
    public static func send(_ fields: [(name: String, value: String)]) -> Bool {
        var bytes: [UInt8] = []
        var ends: [Int] = []
        for field in fields {
            bytes += field.name.utf8
            bytes.append(UInt8(ascii: "="))
            bytes += field.value.utf8
            ends.append(bytes.count)
        }
        return bytes.withUnsafeMutableBytes { raw in
            var vectors: [iovec] = []
            vectors.reserveCapacity(ends.count)
            var start = 0
            for end in ends {
                vectors.append(iovec(iov_base: raw.baseAddress! + start, iov_len: end - start))
                start = end
            }
            return sd_journal_sendv(vectors, Int32(vectors.count)) >= 0
        }
    }
}

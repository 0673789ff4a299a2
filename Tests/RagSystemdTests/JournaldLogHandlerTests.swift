import Logging
import RagSystemd
import Testing

struct JournaldLogHandlerTests {
    @Test(arguments: [
        ("file.path", "FILE_PATH"),
        ("error", "ERROR"),
        ("scan.seconds", "SCAN_SECONDS"),
        ("socket-mode", "SOCKET_MODE"),
        ("Already_UPPER_9", "ALREADY_UPPER_9"),
        ("_private", "F__PRIVATE"),
        ("9lives", "F_9LIVES"),
        ("", "F_"),
        ("größe", "GR__E"),
    ])
    func metadataKeysBecomeJournalFieldNames(key: String, name: String) {
        #expect(JournaldLogHandler.fieldName(key) == name)
    }

    @Test func longKeysAreCutTo64Characters() {
        #expect(JournaldLogHandler.fieldName(String(repeating: "a", count: 100)) == String(repeating: "A", count: 64))
    }

    @Test func prioritiesFollowSyslog() {
        let expected: [(Logger.Level, Int)] = [(.trace, 7), (.debug, 7), (.info, 6), (.notice, 5), (.warning, 4), (.error, 3), (.critical, 2)]
        for (level, priority) in expected {
            #expect(JournaldLogHandler.priority(level) == priority)
        }
    }

    @Test func eventFieldsCarryMessageSourceAndMetadata() {
        var handler = JournaldLogHandler(label: "ragd")
        handler[metadataKey: "socket.path"] = "/run/old.sock"
        handler[metadataKey: "component"] = "server"
        let event = LogEvent(level: .notice, message: "listening\nsecond line",
                             metadata: ["socket.path": "/run/ragd/ragd.sock", "message": "shadow"], source: nil,
                             file: "ragd/Daemon.swift", function: "serve(_:logger:)", line: 42)
        let fields = handler.fields(of: event)
        #expect(fields.map(\.name) == ["MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "CODE_FILE", "CODE_LINE", "CODE_FUNC",
                                       "LOGGER_LABEL", "COMPONENT", "F_MESSAGE", "SOCKET_PATH"])
        #expect(fields.map(\.value) == ["listening\nsecond line", "5", "ragd", "ragd/Daemon.swift", "42", "serve(_:logger:)",
                                        "ragd", "server", "shadow", "/run/ragd/ragd.sock"])
    }
}

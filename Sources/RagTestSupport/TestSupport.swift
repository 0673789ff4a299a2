import Foundation
import Glibc

/// Thrown by test helpers when the daemon or the file system misbehaves.
public struct TestSupportError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Runs `body` with a fresh 0700 temporary folder that is removed afterwards.
public func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
    let path = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}

/// Synchronous variant of `withTemporaryDirectory`.
public func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
    let path = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

/// Creates a fresh 0700 folder under the temporary directory and returns its canonical path.
public func makeTemporaryDirectory() throws -> String {
    let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    var template = Array((base.hasSuffix("/") ? base : base + "/").appending("ragd-test-XXXXXX").utf8CString)
    guard let created = mkdtemp(&template) else { throw TestSupportError("mkdtemp failed: \(String(cString: strerror(errno)))") }
    guard let resolved = realpath(created, nil) else { return String(cString: created) }
    defer { free(resolved) }
    return String(cString: resolved)
}

/// Writes `contents` to `path`, creating parent folders.
public func writeFile(_ path: String, _ contents: String) throws {
    try writeFile(path, Array(contents.utf8))
}

public func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    let folder = (path as NSString).deletingLastPathComponent
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
        throw TestSupportError("cannot write \(path)")
    }
}

/// A datagram socket read continuously on a thread of its own, as systemd and journald read theirs (a sender is
/// never blocked or dropped by a full queue: `net.unix.max_dgram_qlen` is only 10 here). Each datagram is decoded
/// and kept until a `wait` matches it.
final class DatagramListener<Message>: @unchecked Sendable {
    let path: String
    private let fd: Int32
    private let decode: (ArraySlice<UInt8>) -> Message?
    /// Messages not yet matched by `wait`, and every message, oldest first.
    private var unmatched: [Message] = []
    private var all: [Message] = []
    private var closed = false
    private let condition = NSCondition()
    private let readerDone = DispatchSemaphore(value: 0)

    init(path: String, datagramBytes: Int, receiveBufferBytes: Int32? = nil, decode: @escaping (ArraySlice<UInt8>) -> Message?) throws {
        self.path = path
        self.decode = decode
        fd = try bindDatagramSocket(path)
        if var size = receiveBufferBytes {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        Thread { [self] in
            readLoop(datagramBytes: datagramBytes)
            readerDone.signal()
        }.start()
    }

    deinit {
        condition.lock()
        closed = true
        condition.unlock()
        shutdown(fd, Int32(SHUT_RDWR))
        readerDone.wait()
        close(fd)
        unlink(path)
    }

    private func readLoop(datagramBytes: Int) {
        var buffer = [UInt8](repeating: 0, count: datagramBytes)
        while true {
            condition.lock()
            let stop = closed
            condition.unlock()
            if stop { return }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, 200)
            if ready < 0 && errno != EINTR { return }
            guard ready > 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            guard n > 0, let message = decode(buffer[0..<n]) else { continue }
            condition.lock()
            all.append(message)
            unmatched.append(message)
            condition.broadcast()
            condition.unlock()
        }
    }

    /// Waits for a message satisfying `matches` (received before this call or later); each message is matched once.
    /// On timeout throws `failure(unmatched)`.
    func wait(timeout: Double, where matches: (Message) -> Bool, failure: ([Message]) -> String) throws -> Message {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let index = unmatched.firstIndex(where: matches) { return unmatched.remove(at: index) }
            guard condition.wait(until: deadline) else {
                if let index = unmatched.firstIndex(where: matches) { return unmatched.remove(at: index) }
                throw TestSupportError(failure(unmatched))
            }
        }
    }

    func discardReceived() {
        condition.lock()
        unmatched.removeAll()
        condition.unlock()
    }

    func history() -> [Message] {
        condition.lock()
        defer { condition.unlock() }
        return all
    }

    func received() -> [Message] {
        condition.lock()
        defer { condition.unlock() }
        return unmatched
    }
}

/// Listens on a datagram socket the way systemd does for `sd_notify`, so tests can await READY=1 and
/// STATUS= messages instead of sleeping.
public final class NotifyListener: Sendable {
    public let path: String
    private let listener: DatagramListener<String>

    public init(path: String) throws {
        self.path = path
        listener = try DatagramListener(path: path, datagramBytes: 65536) { String(decoding: $0, as: UTF8.self) }
    }

    /// Forgets every notification received so far.
    public func discardReceived() { listener.discardReceived() }

    /// Waits for a notification containing a line that starts with `prefix` (for example `READY=1`), whether it
    /// arrived before this call or arrives later; each notification is matched once. Returns its text.
    @discardableResult
    public func wait(for prefix: String, timeout: Double = 120) throws -> String {
        try listener.wait(timeout: timeout, where: { $0.split(separator: "\n").contains(where: { $0.hasPrefix(prefix) }) },
                          failure: { _ in "no \(prefix) notification within \(timeout) s" })
    }

    /// Every notification received so far, matched or not, oldest first, without waiting.
    public func history() -> [String] { listener.history() }

    /// Every notification received so far and not yet matched by `wait(for:)`, oldest first, without waiting.
    public func received() -> [String] { listener.received() }
}

/// Creates a close-on-exec datagram socket bound to `path` (a Unix socket path).
func bindDatagramSocket(_ path: String) throws -> Int32 {
    try unixSocket(path, type: SOCK_DGRAM, verb: "bind") { bind($0, $1, $2) }
}

/// A close-on-exec Unix socket of `type` on which `action` (bind or connect) was done with `path`'s address.
private func unixSocket(_ path: String, type: __socket_type, verb: String,
                        _ action: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Int32) throws -> Int32 {
    let fd = socket(AF_UNIX, Int32(type.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw TestSupportError("socket: \(String(cString: strerror(errno)))") }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
        close(fd)
        throw TestSupportError("socket path too long: \(path)")
    }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in for (n, b) in bytes.enumerated() { raw[n] = b } }
    let rc = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { action(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard rc == 0 else {
        let message = String(cString: strerror(errno))
        close(fd)
        throw TestSupportError("\(verb) \(path): \(message)")
    }
    return fd
}

/// A stand-in for journald's native socket (`/run/systemd/journal/socket`): receives the datagrams that
/// `sd_journal_sendv` sends and decodes their fields, so tests can await a log entry.
public final class JournalListener: Sendable {
    /// One journal entry: its fields in the order sent (a field may repeat).
    public struct Entry: Sendable, CustomStringConvertible {
        public var fields: [(name: String, value: String)]
        /// The first value of field `name`.
        public subscript(name: String) -> String? { fields.first(where: { $0.name == name })?.value }
        public var description: String { fields.map { "\($0.name)=\($0.value)" }.joined(separator: " | ") }
    }

    public let path: String
    private let listener: DatagramListener<Entry>

    /// Binds the socket with a 4 MiB receive buffer and reads every datagram at once, as journald does.
    public init(path: String) throws {
        self.path = path
        listener = try DatagramListener(path: path, datagramBytes: 1 << 20, receiveBufferBytes: 4 << 20, decode: JournalListener.decode)
    }

    /// Waits for an entry satisfying `matches` (received before this call or later); each entry is matched once.
    @discardableResult
    public func wait(timeout: Double = 120, where matches: (Entry) -> Bool) throws -> Entry {
        try listener.wait(timeout: timeout, where: matches, failure: { unmatched in
            "no matching journal entry within \(timeout) s; received:\n" + unmatched.map(\.description).joined(separator: "\n")
        })
    }

    /// Decodes journald's native protocol: `NAME=value\n`, or `NAME\n`, a 64-bit little-endian length, the value
    /// and `\n` for values that contain newlines. Nil if the datagram is malformed.
    public static func decode(_ bytes: ArraySlice<UInt8>) -> Entry? {
        var fields: [(name: String, value: String)] = []
        var i = bytes.startIndex
        while i < bytes.endIndex {
            guard let stop = bytes[i...].firstIndex(where: { $0 == UInt8(ascii: "=") || $0 == 0x0A }) else { return nil }
            let name = String(decoding: bytes[i..<stop], as: UTF8.self)
            if bytes[stop] == UInt8(ascii: "=") {
                let end = bytes[stop...].firstIndex(of: 0x0A) ?? bytes.endIndex
                fields.append((name, String(decoding: bytes[(stop + 1)..<end], as: UTF8.self)))
                i = end + 1
            } else {
                guard bytes.endIndex - (stop + 1) >= 8 else { return nil }
                var length = 0
                for k in 0..<8 { length |= Int(bytes[stop + 1 + k]) << (8 * k) }
                let start = stop + 9
                guard length >= 0, bytes.endIndex - start >= length + 1 else { return nil }
                fields.append((name, String(decoding: bytes[start..<(start + length)], as: UTF8.self)))
                i = start + length + 1
            }
        }
        return Entry(fields: fields)
    }
}

/// A close-on-exec stream socket connected to the Unix socket at `path`.
public func connectUnixStream(_ path: String) throws -> Int32 {
    try unixSocket(path, type: SOCK_STREAM, verb: "connect") { connect($0, $1, $2) }
}

/// A close-on-exec stream socket listening at `path`.
public func listenUnixStream(_ path: String, backlog: Int32 = 8) throws -> Int32 {
    let fd = try unixSocket(path, type: SOCK_STREAM, verb: "bind") { bind($0, $1, $2) }
    guard listen(fd, backlog) == 0 else {
        let message = String(cString: strerror(errno))
        close(fd)
        throw TestSupportError("listen \(path): \(message)")
    }
    return fd
}

/// A line-oriented client of ragd's socket for tests: raw bytes out, one reply line in.
public final class LineClient {
    private let fd: Int32
    private var buffer: [UInt8] = []

    public init(path: String) throws {
        fd = try connectUnixStream(path)
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// Sends raw bytes (no newline added).
    public func send(raw bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw TestSupportError("send: \(String(cString: strerror(errno)))")
            }
            sent += n
        }
    }

    /// Sends `line` plus a newline and returns the reply line (without its newline).
    public func request(_ line: String) throws -> String {
        try send(raw: Array(line.utf8) + [0x0A])
        guard let reply = try readLine() else { throw TestSupportError("connection closed before a reply to \(line.prefix(200))") }
        return reply
    }

    /// The next reply line, or nil at end of stream.
    public func readLine() throws -> String? {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == ECONNRESET { return nil }
                throw TestSupportError("recv: \(String(cString: strerror(errno)))")
            }
            if n == 0 { return nil }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }
}

/// A real `ragd` child process with a notify socket, for integration tests.
public final class DaemonProcess {
    public let process = Process()
    public let socketPath: String
    public let notify: NotifyListener
    public let logPath: String

    /// The ragd executable: `$RAGD_BINARY`, else `.build/debug/ragd` of this package.
    public static var binary: String {
        if let path = ProcessInfo.processInfo.environment["RAGD_BINARY"], !path.isEmpty { return path }
        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return package.appendingPathComponent(".build/debug/ragd").path
    }

    /// Starts ragd with `arguments` (sources, state dir and socket are up to the caller) in `workDirectory`.
    /// With a `launcher` (a program and its arguments), runs `launcher + [ragd] + arguments` instead, for ragd under
    /// `systemd-socket-activate` or `unshare`; the launcher must exec ragd so that the pid stays ragd's. With
    /// `journalStream`, sets `JOURNAL_STREAM` to the log file's device and inode, as systemd does when stderr is the journal.
    public init(arguments: [String], socketPath: String, workDirectory: String, environment: [String: String] = [:],
                launcher: [String] = [], journalStream: Bool = false) throws {
        self.socketPath = socketPath
        guard FileManager.default.isExecutableFile(atPath: DaemonProcess.binary) else {
            throw TestSupportError("ragd is not built at \(DaemonProcess.binary); run `swift build` first (make test does)")
        }
        notify = try NotifyListener(path: workDirectory + "/notify-\(UInt32.random(in: 0...UInt32.max)).sock")
        logPath = workDirectory + "/ragd-\(UInt32.random(in: 0...UInt32.max)).log"
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = FileHandle(forWritingAtPath: logPath)!
        if let program = launcher.first {
            process.executableURL = URL(fileURLWithPath: program.hasPrefix("/") ? program : "/usr/bin/" + program)
            process.arguments = Array(launcher.dropFirst()) + [DaemonProcess.binary] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: DaemonProcess.binary)
            process.arguments = arguments
        }
        var env = ProcessInfo.processInfo.environment
        env["NOTIFY_SOCKET"] = notify.path
        env.removeValue(forKey: "LISTEN_FDS")
        env.removeValue(forKey: "LISTEN_PID")
        env.removeValue(forKey: "JOURNAL_STREAM")
        if journalStream {
            var st = stat()
            guard stat(logPath, &st) == 0 else { throw TestSupportError("stat \(logPath): \(String(cString: strerror(errno)))") }
            env["JOURNAL_STREAM"] = "\(st.st_dev):\(st.st_ino)"
        }
        for (key, value) in environment { env[key] = value }
        process.environment = env
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    /// Starts ragd on `sources` with its state and socket inside `directory`, and waits until its socket answers.
    public static func start(sources: [String], in directory: String, extraArguments: [String] = []) throws -> DaemonProcess {
        let socket = directory + "/ragd.sock"
        var arguments: [String] = []
        for source in sources { arguments += ["--source", source] }
        arguments += ["--state-dir", directory + "/state", "--socket", socket] + extraArguments
        let daemon = try DaemonProcess(arguments: arguments, socketPath: socket, workDirectory: directory)
        try daemon.waitUntilReady()
        return daemon
    }

    /// Waits for READY=1 (socket bound).
    public func waitUntilReady(timeout: Double = 120) throws {
        do { try notify.wait(for: "READY=1", timeout: timeout) } catch {
            throw TestSupportError("ragd did not become ready: \(error); log:\n\(log)")
        }
    }

    /// Waits for the notification sent when a reconciliation pass has finished (`STATUS=ready`).
    public func waitUntilIndexed(timeout: Double = 120) throws {
        do { try notify.wait(for: "STATUS=ready", timeout: timeout) } catch {
            throw TestSupportError("ragd did not finish indexing: \(error); log:\n\(log)")
        }
    }

    public func client() throws -> LineClient { try LineClient(path: socketPath) }

    /// The daemon's output so far.
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Waits until the output contains `text`, woken by inotify whenever the log file is written.
    public func waitForLog(containing text: String, timeout: Double = 120) throws {
        let watch = inotify_init1(Int32(IN_CLOEXEC))
        guard watch >= 0 else { throw TestSupportError("inotify_init1: \(String(cString: strerror(errno)))") }
        defer { close(watch) }
        guard inotify_add_watch(watch, logPath, UInt32(IN_MODIFY)) >= 0 else {
            throw TestSupportError("inotify_add_watch \(logPath): \(String(cString: strerror(errno)))")
        }
        let deadline = Date().addingTimeInterval(timeout)
        var events = [UInt8](repeating: 0, count: 4096)
        while !log.contains(text) {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { throw TestSupportError("no '\(text)' in the output within \(timeout) s; output:\n\(log)") }
            var pfd = pollfd(fd: watch, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, Int32(remaining * 1000)) > 0 {
                _ = events.withUnsafeMutableBytes { read(watch, $0.baseAddress, $0.count) }
            }
        }
    }

    /// Sends `signal` and waits for the exit; returns the exit status (or the signal number if killed).
    @discardableResult
    public func stop(signal: Int32 = SIGTERM) -> Int32 {
        if process.isRunning { kill(process.processIdentifier, signal) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// The result of running a program to completion.
public struct ProcessOutput: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs `executable` with `arguments` and waits; output is captured through files, so large outputs cannot block it.
public func runProgram(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> ProcessOutput {
    let dir = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    FileManager.default.createFile(atPath: dir + "/out", contents: nil)
    FileManager.default.createFile(atPath: dir + "/err", contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    for (key, value) in environment { env[key] = value }
    process.environment = env
    process.standardOutput = FileHandle(forWritingAtPath: dir + "/out")
    process.standardError = FileHandle(forWritingAtPath: dir + "/err")
    process.standardInput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    return ProcessOutput(status: process.terminationStatus,
                         stdout: (try? String(contentsOfFile: dir + "/out", encoding: .utf8)) ?? "",
                         stderr: (try? String(contentsOfFile: dir + "/err", encoding: .utf8)) ?? "")
}

extension DaemonProcess {
    /// The ragctl executable built next to ragd.
    public static var ragctl: String {
        (binary as NSString).deletingLastPathComponent + "/ragctl"
    }
}

/// A small deterministic generator (SplitMix64) for reproducible random tests.
public struct SeededGenerator: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

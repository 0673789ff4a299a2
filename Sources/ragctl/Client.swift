import Glibc
import RagProtocol

/// Exit codes of ragctl (documented in `ragctl --help`).
enum Exit {
    static let ok: Int32 = 0
    static let noResults: Int32 = 1
    static let usage: Int32 = 2
    static let unreachable: Int32 = 3
    static let daemonError: Int32 = 4
}

/// Why a request failed: the daemon could not be reached, or it answered with an error.
enum ClientError: Error, CustomStringConvertible {
    case unreachable(path: String, reason: String)
    case protocolError(String)
    case daemon(code: String, message: String)

    var description: String {
        switch self {
        case .unreachable(let path, let reason) where reason == String(cString: strerror(EACCES)):
            return "cannot reach ragd at \(path): \(reason). Ask for access to the socket (its group, SocketGroup= of ragd.socket), or point ragctl at another socket with --socket or RAGD_SOCKET."
        case .unreachable(let path, let reason):
            return "cannot reach ragd at \(path): \(reason). Is ragd running? Start it (make run, or systemctl start ragd), or point ragctl at its socket with --socket or RAGD_SOCKET."
        case .protocolError(let message):
            return "unexpected answer from ragd: \(message)"
        case .daemon(let code, let message):
            return "ragd answered \(code): \(message)"
        }
    }

    var exitCode: Int32 {
        switch self {
        case .unreachable: return Exit.unreachable
        case .protocolError, .daemon: return Exit.daemonError
        }
    }
}

/// A blocking connection to ragd: one request line out, one reply line in.
final class Client {
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var nextID: Int64 = 1

    /// The socket path: `--socket`, else `$RAGD_SOCKET`, else ragd's default.
    static func socketPath(_ option: String?) -> String {
        if let option, !option.isEmpty { return option }
        if let env = getenv("RAGD_SOCKET"), env.pointee != 0 { return String(cString: env) }
        return "/run/ragd/ragd.sock"
    }

    init(path: String, timeoutSeconds: Int = 60) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ClientError.unreachable(path: path, reason: String(cString: strerror(errno))) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            throw ClientError.unreachable(path: path, reason: "socket path too long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (n, b) in bytes.enumerated() { raw[n] = b } }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw ClientError.unreachable(path: path, reason: reason)
        }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// Sends `{"id":n,"op":op,…fields}` and returns the reply object; throws `.daemon` for `ok: false`.
    func call(_ op: String, _ fields: [(String, JSONValue)] = []) throws -> JSONValue {
        let id = nextID
        nextID += 1
        var out: [UInt8] = []
        JSONValue.object([("id", .int(id)), ("op", .string(op))] + fields).write(to: &out)
        out.append(0x0A)
        var sent = 0
        while sent < out.count {
            let n = out.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ClientError.protocolError("send failed: \(String(cString: strerror(errno)))")
            }
            sent += n
        }
        let line = try readLine()
        let reply: JSONValue
        do { reply = try JSONParser.parse(line) } catch { throw ClientError.protocolError("\(error)") }
        guard reply["id"] == .int(id) else { throw ClientError.protocolError("reply id does not match request id \(id)") }
        if reply["ok"]?.boolValue != true {
            let error = reply["error"]
            throw ClientError.daemon(code: error?["code"]?.stringValue ?? "unknown", message: error?["message"]?.stringValue ?? "no message")
        }
        return reply
    }

    private func readLine() throws -> [UInt8] {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = Array(buffer[..<newline])
                buffer.removeSubrange(...newline)
                return line
            }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN { throw ClientError.protocolError("timed out waiting for the reply") }
                throw ClientError.protocolError("receive failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { throw ClientError.protocolError("connection closed before the reply") }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }
}

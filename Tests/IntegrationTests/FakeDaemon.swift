import Foundation
import Glibc
import RagProtocol
import RagTestSupport
import Synchronization

/// A stand-in for ragd on a Unix socket that answers each op with canned reply fields, in order (the last one
/// repeats), so that ragctl's rendering of states a real daemon passes through too fast (indexing, embedding) can
/// be checked exactly. A reply starting with `!` is sent raw instead (a broken daemon).
final class FakeDaemon: Sendable {
    let path: String
    private let listener: Int32
    private let replies: Mutex<[String: [String]]>
    /// The ops received, in order.
    private let received = Mutex<[String]>([])
    private let finished = DispatchSemaphore(value: 0)

    /// `replies`: op → the JSON members of each successive reply (`"state":"ready","files":3`).
    init(in directory: String, replies: [String: [String]]) throws {
        path = directory + "/fake-\(UInt32.random(in: 0...UInt32.max)).sock"
        self.replies = Mutex(replies)
        listener = try listenUnixStream(path)
        Thread { [self] in
            serve()
            finished.signal()
        }.start()
    }

    var ops: [String] { received.withLock { $0 } }

    /// One connection at a time, as ragctl makes them.
    private func serve() {
        while true {
            let connection = accept(listener, nil, nil)
            if connection < 0 {
                if errno == EINTR { continue }
                return
            }
            var buffer: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            reading: while true {
                let n = chunk.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                buffer.append(contentsOf: chunk[0..<n])
                while let newline = buffer.firstIndex(of: 0x0A) {
                    let line = Array(buffer[..<newline])
                    buffer.removeSubrange(...newline)
                    let request = try? JSONParser.parse(line)
                    let op = request?["op"]?.stringValue ?? "?"
                    received.withLock { $0.append(op) }
                    let body: String = replies.withLock { replies in
                        guard var queue = replies[op], let first = queue.first else { return "" }
                        if queue.count > 1 { queue.removeFirst() }
                        replies[op] = queue
                        return first
                    }
                    let id = request?["id"]?.serialized() ?? "null"
                    let reply = body.hasPrefix("!") ? String(body.dropFirst()) + "\n"
                        : body.isEmpty ? "{\"id\":\(id),\"ok\":false,\"error\":{\"code\":\"unknown_op\",\"message\":\"fake: no reply for \(op)\"}}\n"
                        : "{\"id\":\(id),\"ok\":true,\(body)}\n"
                    let bytes = Array(reply.utf8)
                    guard bytes.withUnsafeBytes({ send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count else { break reading }
                }
            }
            close(connection)
        }
    }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        finished.wait()
        unlink(path)
    }
}

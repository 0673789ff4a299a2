import Glibc
import NIOCore
import RagQuery

/// Reads a connected Unix socket's peer identity from the kernel: pid, uid and gid (`SO_PEERCRED`, fixed when the
/// client called `connect`) and its supplementary groups (`SO_PEERGROUPS`).
enum PeerCredentials {
    /// `struct ucred`.
    struct Ucred: Sendable {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    static let maximumGroups = 256
    /// `SO_PEERGROUPS` from linux/socket.h (Linux 4.13+).
    static let peerGroupsOption: Int32 = 59

    /// The client, or nil when the kernel does not say (the connection is then refused).
    static func read(_ channel: any Channel) -> EventLoopFuture<Client?> {
        guard let provider = channel as? any SocketOptionProvider else { return channel.eventLoop.makeSucceededFuture(nil) }
        let credentials: EventLoopFuture<Ucred> = provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SO_PEERCRED)
        return credentials.flatMap { cred -> EventLoopFuture<Client?> in
            let groups: EventLoopFuture<InlineArray<256, UInt32>> =
                provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: peerGroupsOption)
            return groups.map { slots -> Client? in
                Client(pid: cred.pid, uid: cred.uid, gid: cred.gid, groups: decodeGroups(slots, pid: cred.pid))
            }.flatMapErrorThrowing { _ in
                // More than 256 groups (ERANGE) or an old kernel: ask /proc; fail closed on groups if that fails too.
                Client(pid: cred.pid, uid: cred.uid, gid: cred.gid, groups: procGroups(pid: cred.pid) ?? [])
            }
        }.recover { _ in nil }
    }

    /// The kernel returns the groups sorted, and the buffer was zeroed, so zeros after the first slot are padding.
    /// A leading zero is either group 0 or an empty list: /proc decides (group 0 is left out if it cannot).
    static func decodeGroups(_ slots: InlineArray<256, UInt32>, pid: Int32) -> [UInt32] {
        var groups: [UInt32] = []
        for n in 0..<slots.count {
            let g = slots[n]
            if g == 0 && n > 0 { break }
            groups.append(g)
        }
        if groups.first == 0 {
            let fromProc = procGroups(pid: pid) ?? []
            if !fromProc.contains(0) { groups.removeFirst() }
        }
        return groups
    }

    /// The `Groups:` line of /proc/PID/status.
    static func procGroups(pid: Int32) -> [UInt32]? {
        let fd = open("/proc/\(pid)/status", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 16 {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix("Groups:") {
            return line.dropFirst("Groups:".count).split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { UInt32($0) }
        }
        return nil
    }
}

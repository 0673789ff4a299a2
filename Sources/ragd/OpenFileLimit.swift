import Glibc
import Logging

/// The open-file limit (RLIMIT_NOFILE): every client connection is a file descriptor.
enum OpenFileLimit {
    /// RLIM_INFINITY (all bits set), which Swift cannot import from the C macro.
    private static let infinity = rlim_t.max

    /// Descriptors kept for ragd itself: LMDB, inotify, the event loop, the listening socket, files being indexed or
    /// read for `get`, the journal, and connections accepted only to be refused.
    static let reserved = 64

    /// Raises the soft limit to the hard limit (no privilege needed) and returns the effective soft limit.
    static func raise() -> (soft: Int, hard: Int, error: String?) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return (1024, 1024, String(cString: strerror(errno))) }
        var error: String? = nil
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            // An infinite hard limit cannot be the soft one; the kernel's fs.nr_open is the real ceiling then.
            if raised.rlim_cur == infinity { raised.rlim_cur = rlim_t(nrOpen() ?? 1 << 20) }
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 {
                limit = raised
            } else {
                error = String(cString: strerror(errno))
            }
        }
        func int(_ value: rlim_t) -> Int { value == infinity || value > rlim_t(Int.max) ? Int.max : Int(value) }
        return (int(limit.rlim_cur), int(limit.rlim_max), error)
    }

    /// The configured `max_connections`, clamped (with a warning) so that connections cannot use up the descriptors
    /// ragd needs for itself; logs the effective limit.
    static func connectionLimit(configured: Int, logger: Logger) -> Int {
        let limit = raise()
        if let error = limit.error {
            logger.warning("cannot raise the open-file limit", metadata: ["error": "\(error)", "nofile.soft": "\(limit.soft)", "nofile.hard": "\(limit.hard)"])
        }
        let allowed = max(1, limit.soft - reserved)
        logger.info("open-file limit", metadata: ["nofile": "\(limit.soft)", "max_connections": "\(min(configured, allowed))"])
        if configured > allowed {
            logger.warning("limits.max_connections exceeds what the open-file limit allows; clamped",
                           metadata: ["configured": "\(configured)", "max_connections": "\(allowed)", "nofile": "\(limit.soft)",
                                      "reserved": "\(reserved)"])
            return allowed
        }
        return configured
    }

    private static func nrOpen() -> Int? {
        let fd = open("/proc/sys/fs/nr_open", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        return Int(String(decoding: buffer[0..<n].prefix(while: { $0 >= 0x30 && $0 <= 0x39 }), as: UTF8.self))
    }
}

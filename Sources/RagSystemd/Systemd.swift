import Dispatch
import Synchronization
import CSystemd
import Glibc

/// The service manager's side channels: readiness and status notifications, and socket activation.
public enum Systemd {
    /// Sends `state` (for example `READY=1`, `STATUS=…`, `STOPPING=1`, `WATCHDOG=1`) to `$NOTIFY_SOCKET`.
    /// Returns false when not run under a notify-aware manager or the send failed; never throws.
    @discardableResult
    public static func notify(_ state: String) -> Bool {
        sd_notify(0, state) > 0
    }

    /// The first listening socket passed by socket activation (`LISTEN_FDS`/`LISTEN_PID`), or nil.
    /// Clears the environment variables so child processes do not inherit them.
    public static func inheritedListeningSocket() -> Int32? {
        let count = sd_listen_fds(1)
        guard count >= 1 else { return nil }
        let fd = SD_LISTEN_FDS_START
        guard sd_is_socket_unix(fd, Int32(SOCK_STREAM.rawValue), 1, nil, 0) > 0 else { return nil }
        return fd
    }

    /// CLOCK_MONOTONIC in microseconds, for `MONOTONIC_USEC=` with `RELOADING=1`.
    public static var monotonicMicroseconds: UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }

    /// Whether stderr is connected to the journal (`$JOURNAL_STREAM` matches stderr's device and inode).
    public static var stderrIsJournal: Bool {
        guard let value = getenv("JOURNAL_STREAM") else { return false }
        let parts = String(cString: value).split(separator: ":")
        guard parts.count == 2, let dev = UInt64(parts[0]), let ino = UInt64(parts[1]) else { return false }
        var st = stat()
        guard fstat(2, &st) == 0 else { return false }
        return UInt64(st.st_dev) == dev && UInt64(st.st_ino) == ino
    }
}


/// Sends `STATUS=` lines to the service manager off the caller's thread, keeping only the newest one while a
/// send is in flight, so a slow or stuck notification reader can never stall indexing.
public final class StatusReporter: Sendable {
    private let queue = DispatchQueue(label: "ragd.status")
    private let latest = Mutex<(text: String?, scheduled: Bool)>((nil, false))

    public init() {}

    /// The daemon's reporter.
    public static let shared = StatusReporter()

    /// Reports `text` (without the `STATUS=` prefix) soon; an older unsent text is replaced.
    public func report(_ text: String) {
        let schedule: Bool = latest.withLock { state in
            state.text = text
            defer { state.scheduled = true }
            return !state.scheduled
        }
        guard schedule else { return }
        queue.async { [self] in
            while true {
                let next: String? = latest.withLock { state in
                    guard let text = state.text else {
                        state.scheduled = false
                        return nil
                    }
                    state.text = nil
                    return text
                }
                guard let next else { return }
                Systemd.notify("STATUS=" + next)
            }
        }
    }
}

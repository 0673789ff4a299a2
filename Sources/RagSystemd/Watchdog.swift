import CSystemd
import Logging
import ServiceLifecycle

/// Keeps systemd's watchdog (`WatchdogSec=`) fed while ragd is healthy, and tells systemd when a graceful shutdown
/// starts (`STOPPING=1`).
///
/// When the watchdog is enabled it sends `WATCHDOG=1` every half timeout, but only while `probe` passes, so a
/// wedged daemon gets restarted. When it is disabled the service just waits for graceful shutdown.
public struct WatchdogService: Service {
    /// The watchdog timeout, or nil when the watchdog is disabled.
    public let timeout: Duration?
    private let probe: @Sendable () -> Bool
    private let notify: @Sendable (String) -> Void
    private let logger: Logger

    /// A watchdog with the timeout systemd asked for (`WATCHDOG_USEC`, for this process per `WATCHDOG_PID`).
    public init(logger: Logger, probe: @escaping @Sendable () -> Bool) {
        self.init(timeout: WatchdogService.configuredTimeout(), logger: logger, probe: probe,
                  notify: { Systemd.notify($0) })
    }

    /// A watchdog with an explicit `timeout` (nil: disabled) that reports through `notify`.
    public init(timeout: Duration?, logger: Logger, probe: @escaping @Sendable () -> Bool,
                notify: @escaping @Sendable (String) -> Void) {
        self.timeout = timeout
        self.probe = probe
        self.notify = notify
        self.logger = logger
    }

    /// The timeout from `sd_watchdog_enabled`, or nil when systemd expects no keep-alives from this process.
    public static func configuredTimeout() -> Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(clamping: usec))
    }

    public func run() async throws {
        let notify = self.notify
        await withGracefulShutdownHandler {
            guard let timeout else {
                try? await gracefulShutdown()
                return
            }
            let interval = timeout / 2
            logger.info("watchdog enabled", metadata: ["watchdog.timeout": "\(timeout)"])
            var healthy = true
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                if probe() {
                    if !healthy { logger.notice("health check passes again; feeding the watchdog") }
                    healthy = true
                    notify("WATCHDOG=1")
                } else if healthy {
                    logger.warning("health check failed; withholding watchdog keep-alives")
                    healthy = false
                }
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            }
        } onGracefulShutdown: {
            notify("STOPPING=1")
        }
    }
}

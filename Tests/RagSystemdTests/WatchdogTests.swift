import Logging
import RagSystemd
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing

/// Collects log messages in memory.
final class RecordingLog: Sendable {
    let messages = Mutex<[String]>([])

    var logger: Logger {
        Logger(label: "test") { _ in Handler(log: self) }
    }

    struct Handler: LogHandler {
        let log: RecordingLog
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) { log.messages.withLock { $0.append("\(event.level): \(event.message)") } }
    }
}

@Suite(.timeLimit(.minutes(1)))
struct WatchdogTests {
    @Test func feedsOnlyWhileTheProbePassesAndSaysStoppingOnShutdown() async throws {
        let probes = Atomic<Int>(0)
        let (notifications, sink) = AsyncStream.makeStream(of: (String, Int).self)
        let log = RecordingLog()
        let watchdog = WatchdogService(
            timeout: .milliseconds(20), logger: log.logger,
            probe: { probes.wrappingAdd(1, ordering: .relaxed).newValue > 3 },
            notify: { sink.yield(($0, probes.load(ordering: .relaxed))) })
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup { group in
                group.addTask { try await watchdog.run() }
                var iterator = notifications.makeAsyncIterator()
                for _ in 0..<3 {
                    let (state, probesSoFar) = try #require(await iterator.next())
                    #expect(state == "WATCHDOG=1")
                    #expect(probesSoFar > 3, "no keep-alive while the probe fails")
                }
                trigger.triggerGracefulShutdown()
                var rest: [String] = []
                while let (state, _) = await iterator.next() {
                    rest.append(state)
                    if state == "STOPPING=1" { break }
                }
                #expect(rest.last == "STOPPING=1")
                try await group.waitForAll()
            }
        }
        let messages = log.messages.withLock { $0 }
        #expect(messages.filter { $0.hasPrefix("warning: health check failed") }.count == 1, "\(messages)")
        #expect(messages.contains { $0.hasPrefix("notice: health check passes again") }, "\(messages)")
    }

    @Test func disabledWatchdogOnlyWaitsForShutdown() async throws {
        let probes = Atomic<Int>(0)
        let sent = Mutex<[String]>([])
        let watchdog = WatchdogService(
            timeout: nil, logger: RecordingLog().logger,
            probe: { probes.wrappingAdd(1, ordering: .relaxed); return true },
            notify: { state in sent.withLock { $0.append(state) } })
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup { group in
                group.addTask { try await watchdog.run() }
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        #expect(sent.withLock { $0 } == ["STOPPING=1"])
        #expect(probes.load(ordering: .relaxed) == 0)
    }

    @Test func cancellationStopsItWithoutStopping() async throws {
        let sent = Mutex<[String]>([])
        let watchdog = WatchdogService(timeout: .seconds(3600), logger: RecordingLog().logger, probe: { true },
                                       notify: { state in sent.withLock { $0.append(state) } })
        let task = Task { try await watchdog.run() }
        task.cancel()
        try await task.value
        #expect(!sent.withLock { $0 }.contains("STOPPING=1"))
    }
}

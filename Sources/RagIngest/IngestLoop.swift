import CoreMetrics
import Dispatch
import Foundation
import Logging
import Synchronization

/// The single writer: takes what the watcher reports, coalesces bursts, and applies them with the `Indexer`;
/// runs the start-up reconciliation and the periodic rescans. Runs on the thread that calls `run()`.
public final class IngestLoop: Sendable {
    /// Settings of the loop.
    public struct Configuration: Sendable {
        /// A change is applied once no new event came for this long…
        public var quietPeriod: Duration
        /// …or once the first waiting change is this old, whichever comes first.
        public var maximumDelay: Duration
        /// Full reconciliation every this many seconds (0 = never; the start-up pass always runs).
        public var rescanInterval: Int
        public init(quietPeriod: Duration = .milliseconds(2), maximumDelay: Duration = .milliseconds(50), rescanInterval: Int = 300) {
            self.quietPeriod = quietPeriod
            self.maximumDelay = maximumDelay
            self.rescanInterval = rescanInterval
        }
    }

    private struct Queue {
        var changes = ChangeSet()
        /// Sequence number of the last event batch pushed, and of the last one fully applied.
        var pushed: UInt64 = 0
        var applied: UInt64 = 0
        var firstEvent: ContinuousClock.Instant?
        var lastEvent: ContinuousClock.Instant?
        /// Items taken by the pass in flight.
        var inFlight = 0
        /// While ingest is blocked: no pass starts before this instant, whatever events arrive.
        var retryAt: ContinuousClock.Instant?
        /// When each waiting change in an indexed place was first reported (for `changeToSearchable`).
        var seen: [String: ContinuousClock.Instant] = [:]
    }

    /// Why ingest stopped (index map at its ceiling, disk full, I/O error), for `status`.
    public struct Fault: Sendable, Equatable {
        /// True from a failed pass until a pass succeeds.
        public var blocked = false
        /// The error of the last failed pass (kept after recovery until the next failure, for operators).
        public var lastError: String?
        /// Failed passes in a row.
        public var failures = 0
        public init() {}
    }

    public let indexer: Indexer
    public let watcher: Watcher?
    private let configuration: Configuration
    private let logger: Logger
    private let queue = Mutex(Queue())
    private let wakeUp = DispatchSemaphore(value: 0)
    /// Signalled whenever `applied` advances.
    private let progress = NSCondition()
    private let stopped = Atomic<Bool>(false)
    private let waitersReleased = Atomic<Bool>(false)
    private let busySince = Atomic<UInt64>(0)
    private let onPass: @Sendable (IndexerStatus) -> Void
    private let faultState = Mutex(Fault())
    private let metrics: IngestMetrics

    /// Whether ingest is blocked and why.
    public var fault: Fault { faultState.withLock { $0 } }

    /// Delay before retry number `failures` of a blocked pass: 1 s, doubling, at most 30 s.
    public static func retryDelay(failures: Int) -> Duration {
        .seconds(min(30, 1 << min(max(failures - 1, 0), 5)))
    }

    /// `onPass` is called on the loop's thread after each applied batch (for STATUS= notifications). Passes and
    /// the latency of changes are recorded in `metrics` before `sync` waiters are released.
    public init(indexer: Indexer, watcher: Watcher?, configuration: Configuration, logger: Logger, metrics: IngestMetrics = IngestMetrics(),
                onPass: @escaping @Sendable (IndexerStatus) -> Void = { _ in }) {
        self.indexer = indexer
        self.watcher = watcher
        self.configuration = configuration
        self.logger = logger
        self.onPass = onPass
        self.metrics = metrics
        // The start-up reconciliation is the first piece of work.
        queue.withLock { queue in
            queue.changes.everything = true
            queue.pushed = 1
            queue.firstEvent = .now
            queue.lastEvent = .distantPastForQuiet
        }
    }

    /// Hands watcher events to the loop (any thread).
    public func push(_ events: [WatchEvent]) {
        guard !events.isEmpty else { return }
        enqueue(seen: events.compactMap(latencyKey)) { changes in for event in events { changes.add(event) } }
    }

    /// Has the next pass read and chunk again the given files and every file below the given folders, even those
    /// unchanged on disk (`reindex`); unchanged chunks keep their ids and vectors. A `sync` after this call waits for it.
    public func reindex(files: [String], folders: [String]) {
        guard !files.isEmpty || !folders.isEmpty else { return }
        enqueue { changes in
            changes.files.formUnion(files)
            changes.folders.formUnion(folders)
            changes.reread.formUnion(files + folders)
        }
    }

    /// Adds work under the lock; `keys` are the changes' latency keys (see `latencyKey`), timed from now.
    private func enqueue(seen keys: [String] = [], _ add: (inout ChangeSet) -> Void) {
        let now = ContinuousClock.now
        queue.withLock { queue in
            add(&queue.changes)
            for key in keys where queue.seen[key] == nil { queue.seen[key] = now }
            queue.pushed += 1
            if queue.firstEvent == nil { queue.firstEvent = now }
            queue.lastEvent = now
        }
        wakeUp.signal()
    }

    /// The key under which a change's first report is remembered, nil for changes outside what the sources index
    /// (editor files, excluded names) and for full rescans.
    private func latencyKey(_ event: WatchEvent) -> String? {
        switch event {
        case .file(let path): return indexer.source(for: path)?.acceptsFile(path: path) == true ? "f" + path : nil
        case .folder(let path): return indexer.source(for: path) != nil ? "d" + path : nil
        case .moved(let from, let to, _): return "m" + from + "\u{0}" + to
        case .rescanAll: return nil
        }
    }

    /// Asks for a full reconciliation soon (configuration reload, manual request).
    public func requestRescan() { push([.rescanAll]) }

    /// Changes seen but not yet applied: waiting items plus files of the pass in flight.
    public var pending: Int {
        let (waiting, inFlight) = queue.withLock { ($0.changes.count, $0.inFlight) }
        return waiting + max(inFlight, indexer.status.pending)
    }

    /// Waits until every change made on disk before this call is applied: the watcher's kernel queue is read,
    /// then the loop must catch up. Returns false on timeout, and at once while ingest is blocked (see `fault`).
    public func sync(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        if let watcher { _ = watcher.drain(timeout: timeout) }
        let target = queue.withLock { $0.pushed }
        progress.lock()
        defer { progress.unlock() }
        while queue.withLock({ $0.applied }) < target {
            if faultState.withLock({ $0.blocked }) { return false }
            if stopped.load(ordering: .relaxed) || waitersReleased.load(ordering: .relaxed) || !progress.wait(until: deadline) {
                return queue.withLock { $0.applied } >= target
            }
        }
        return true
    }

    /// Makes every `sync`, waiting now or later, return at once (at shutdown: clients waiting must not delay it,
    /// and the loop itself stops only after the socket server has).
    public func releaseWaiters() {
        waitersReleased.store(true, ordering: .relaxed)
        progress.lock()
        progress.broadcast()
        progress.unlock()
    }

    /// Whether ``releaseWaiters()`` was called.
    public var waitersAreReleased: Bool { waitersReleased.load(ordering: .relaxed) }

    /// Whether the loop is idle or its pass in flight has progressed recently (for the watchdog): a pass that has
    /// committed nothing for `maxStallSeconds` counts as stuck.
    public func isHealthy(maxStallSeconds: Double = 120) -> Bool {
        let since = busySince.load(ordering: .relaxed)
        guard since != 0 else { return true }
        let progress = max(since, indexer.lastProgressNanos)
        return Double(DispatchTime.now().uptimeNanoseconds - progress) / 1e9 < maxStallSeconds
    }

    /// Stops after the batch in flight commits.
    public func stop() {
        stopped.store(true, ordering: .relaxed)
        indexer.requestStop()
        wakeUp.signal()
        progress.lock()
        progress.broadcast()
        progress.unlock()
    }

    /// The loop; returns after `stop()`.
    public func run() {
        var nextRescan = ContinuousClock.now + .seconds(max(configuration.rescanInterval, 1))
        while !stopped.load(ordering: .relaxed) {
            let now = ContinuousClock.now
            let (hasWork, wait): (Bool, Duration?) = queue.withLock { queue in
                guard !queue.changes.isEmpty, let first = queue.firstEvent, let last = queue.lastEvent else { return (false, nil) }
                if let retryAt = queue.retryAt, retryAt > now { return (false, retryAt - now) }
                let quietLeft = configuration.quietPeriod - (now - last)
                let delayLeft = configuration.maximumDelay - (now - first)
                let left = min(quietLeft, delayLeft)
                return left <= .zero ? (true, nil) : (false, left)
            }
            if !hasWork {
                var timeout: Duration
                if let wait { timeout = wait } else if configuration.rescanInterval > 0 { timeout = max(nextRescan - now, .zero) } else { timeout = .seconds(3600) }
                if wait == nil && configuration.rescanInterval > 0 && now >= nextRescan {
                    nextRescan = now + .seconds(configuration.rescanInterval)
                    watcher?.rewatchMissingRoots()
                    push([.rescanAll])
                    continue
                }
                timeout = max(timeout, .microseconds(200))
                let nanos = Int(timeout.components.seconds) * 1_000_000_000 + Int(timeout.components.attoseconds / 1_000_000_000)
                _ = wakeUp.wait(timeout: .now() + .nanoseconds(nanos))
                continue
            }
            let (changes, sequence, seen) = queue.withLock { queue -> (ChangeSet, UInt64, [String: ContinuousClock.Instant]) in
                let taken = queue.changes
                let seen = queue.seen
                queue.changes = ChangeSet()
                queue.seen = [:]
                queue.firstEvent = nil
                queue.lastEvent = nil
                queue.inFlight = taken.count
                return (taken, queue.pushed, seen)
            }
            if changes.everything { watcher?.rewatchMissingRoots() }
            busySince.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed)
            defer { busySince.store(0, ordering: .relaxed) }
            var failed = false
            do {
                try indexer.apply(changes)
                let committed = ContinuousClock.now
                for first in seen.values { metrics.changeToSearchable.recordNanoseconds((committed - first).nanoseconds) }
                if changes.everything { metrics.rescans.increment() }
                let recovered: Fault? = faultState.withLock { fault in
                    guard fault.blocked else { return nil }
                    defer { fault.blocked = false; fault.failures = 0 }
                    return fault
                }
                if let recovered {
                    logger.notice("indexing resumed", metadata: ["failed_attempts": "\(recovered.failures)"])
                }
            } catch {
                failed = true
                let message = "\(error)"
                let (first, failures): (Bool, Int) = faultState.withLock { fault in
                    let first = !fault.blocked || fault.lastError != message
                    fault.blocked = true
                    fault.lastError = message
                    fault.failures += 1
                    return (first, fault.failures)
                }
                let delay = IngestLoop.retryDelay(failures: failures)
                if first {
                    // Once per distinct failure: retries with the same error stay quiet until it changes or clears.
                    logger.error("indexing is blocked; queries keep answering from the index as it is, and the changes are retried with backoff (at most every 30 s)",
                                 metadata: ["error": "\(message)"])
                }
                // Retry the whole reconciliation from the disk's state after the backoff, rather than losing the
                // changes or spinning; events arriving meanwhile wait for it too.
                let retry = ContinuousClock.now + delay
                queue.withLock { queue in
                    queue.changes.everything = true
                    queue.seen.merge(seen) { min($0, $1) }
                    queue.changes.reread.formUnion(changes.reread)
                    queue.firstEvent = queue.firstEvent ?? retry
                    queue.lastEvent = queue.lastEvent ?? retry
                    queue.retryAt = retry
                    queue.inFlight = 0
                }
            }
            if stopped.load(ordering: .relaxed) { break }
            queue.withLock { queue in
                queue.inFlight = 0
                if !failed {
                    queue.applied = max(queue.applied, sequence)
                    queue.retryAt = nil
                }
            }
            progress.lock()
            progress.broadcast()
            progress.unlock()
            onPass(indexer.status)
        }
        progress.lock()
        progress.broadcast()
        progress.unlock()
    }
}

extension Duration {
    /// The duration in whole nanoseconds (saturating).
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? (seconds < 0 ? .min : .max) : product &+ attoseconds / 1_000_000_000
    }
}

extension ContinuousClock.Instant {
    /// An instant long enough ago that the quiet period has certainly passed.
    static var distantPastForQuiet: ContinuousClock.Instant { .now - .seconds(3600) }
}

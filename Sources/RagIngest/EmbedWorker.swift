import CoreMetrics
import Dispatch
import Logging
import RagCore
import RagStore
import Synchronization

/// Computes the vectors of chunks that lack one, on the thread that calls `run()`, off the query path.
/// A file is searchable by BM25 as soon as its text commits; its vectors follow. Vectors are cached by
/// (model, content hash), so unchanged text is never embedded twice.
public final class EmbedWorker: Sendable {
    public let store: Store
    public let embedder: any Embedder
    private let batchSize: Int
    private let logger: Logger
    private let wakeUp = DispatchSemaphore(value: 0)
    private let stopped = Atomic<Bool>(false)
    /// Chunks whose embedding failed, with the content that failed (not retried until restart; an id reused by
    /// other content is tried again).
    private let failed = Mutex([UInt32: ContentHash]())
    /// Chunks another thread of this worker is embedding now (`run()` may run on several threads).
    private let claimed = Mutex(Set<UInt32>())
    private let embeddedCount = Atomic<Int>(0)
    /// Uptime (ns) when the worker last found work after being idle (0 while idle), and the count at that moment.
    private let stretchStart = Atomic<UInt64>(0)
    private let stretchBase = Atomic<Int>(0)
    private let busySince = Atomic<UInt64>(0)
    private let onBatch: @Sendable () -> Void
    private let metrics: IngestMetrics
    /// The store error that stops vectors from being saved (map at its ceiling, disk full), logged once.
    private let storeFault = Mutex<String?>(nil)

    /// `onBatch` is called on the worker's thread after each batch of vectors is stored, and whenever it finds
    /// nothing left to embed. Each batch's encoding time is recorded in `metrics`.
    public init(store: Store, embedder: any Embedder, batchSize: Int = 64, logger: Logger, metrics: IngestMetrics = IngestMetrics(),
                onBatch: @escaping @Sendable () -> Void = {}) {
        self.store = store
        self.embedder = embedder
        self.batchSize = batchSize
        self.logger = logger
        self.onBatch = onBatch
        self.metrics = metrics
    }

    /// Chunks still waiting for a vector.
    public var pending: Int {
        let (chunks, embedded) = store.embeddingCounts
        return max(0, chunks - embedded - failed.withLock { $0.count })
    }

    /// Vectors computed since start.
    public var embedded: Int { embeddedCount.load(ordering: .relaxed) }

    /// Vectors per second since the worker last found work after being idle; nil while idle or before the first
    /// batch is stored.
    public var rate: Double? {
        let start = stretchStart.load(ordering: .relaxed)
        let count = embedded - stretchBase.load(ordering: .relaxed)
        guard start != 0, count > 0 else { return nil }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds &- start) / 1e9
        return seconds > 0 ? Double(count) / seconds : nil
    }

    /// Whether the worker is idle or has made progress recently (for the watchdog).
    public func isHealthy(maxBatchSeconds: Double = 120) -> Bool {
        let since = busySince.load(ordering: .relaxed)
        guard since != 0 else { return true }
        return Double(DispatchTime.now().uptimeNanoseconds - since) / 1e9 < maxBatchSeconds
    }

    /// New chunks were committed: look for work.
    public func wake() { wakeUp.signal() }

    public func stop() {
        stopped.store(true, ordering: .relaxed)
        for _ in 0..<8 { wakeUp.signal() }
    }

    /// Whether "embedding chunks" was logged and "embeddings up to date" not yet: shared by the worker's threads,
    /// so each stretch of work is logged once, not once per thread.
    private let announced = Atomic<Bool>(false)

    /// The worker loop; returns after `stop()`. May run on several threads at once (each embeds its own batches).
    public func run() {
        while !stopped.load(ordering: .relaxed) {
            var skip = failed.withLock { $0 }
            var candidates = store.chunksWithoutEmbedding(limit: batchSize * 4 + skip.count)
            let reused = candidates.filter { skip[$0] != nil }
            if !reused.isEmpty, let current = try? store.embeddingInputs(reused) {
                // Chunk ids are reused: a failed id that now holds other content is not skipped.
                let changed = current.filter { skip[$0.id] != $0.hash }.map(\.id)
                if !changed.isEmpty {
                    failed.withLock { failed in for id in changed { failed[id] = nil } }
                    for id in changed { skip[id] = nil }
                }
            }
            candidates = candidates.filter { skip[$0] == nil }
            let ids: [UInt32] = claimed.withLock { claimed in
                let mine = Array(candidates.filter { !claimed.contains($0) }.prefix(batchSize))
                claimed.formUnion(mine)
                return mine
            }
            defer { claimed.withLock { $0.subtract(ids) } }
            if ids.isEmpty {
                if !candidates.isEmpty {
                    // Everything left is being embedded by another thread.
                    _ = wakeUp.wait(timeout: .now() + .milliseconds(50))
                    continue
                }
                stretchStart.store(0, ordering: .relaxed)
                onBatch()
                if announced.compareExchange(expected: true, desired: false, ordering: .relaxed).exchanged {
                    logger.info("embeddings up to date", metadata: ["embedded": "\(embedded)"])
                }
                _ = wakeUp.wait(timeout: .now() + .seconds(30))
                continue
            }
            if pending > batchSize, announced.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged {
                logger.info("embedding chunks", metadata: ["chunks.pending": "\(pending)", "model": "\(embedder.modelID)"])
            }
            let now = DispatchTime.now().uptimeNanoseconds
            busySince.store(now, ordering: .relaxed)
            defer { busySince.store(0, ordering: .relaxed) }
            if stretchStart.load(ordering: .relaxed) == 0 {
                stretchBase.store(embedded, ordering: .relaxed)
                stretchStart.store(now, ordering: .relaxed)
            }
            do {
                let inputs = try store.embeddingInputs(Array(ids))
                let encoding = DispatchTime.now().uptimeNanoseconds
                let vectors = try embedder.embed(inputs.map(\.text))
                metrics.embeddingBatch.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - encoding))
                guard vectors.count == inputs.count else { throw IngestError("the embedder returned \(vectors.count) vectors for \(inputs.count) texts") }
                try store.storeEmbeddings(zip(inputs, vectors).map { (id: $0.id, hash: $0.hash, vector: $1) })
                embeddedCount.add(inputs.count, ordering: .relaxed)
                if storeFault.withLock({ fault in defer { fault = nil }; return fault != nil }) {
                    logger.notice("vectors are being saved again")
                }
                // Chunks deleted meanwhile have no input; they drop out of the scan by themselves.
                onBatch()
            } catch let error as StoreError {
                // The store cannot take writes (map at its ceiling, disk full): not the chunks' fault. Log once, wait,
                // and retry the same chunks later.
                let message = "\(error)"
                if storeFault.withLock({ fault in defer { fault = message }; return fault != message }) {
                    logger.error("cannot save vectors; retrying every 10 s meanwhile", metadata: ["error": "\(message)"])
                }
                _ = wakeUp.wait(timeout: .now() + .seconds(10))
            } catch {
                // Retry one by one so a single bad input does not hold back the others.
                for id in ids {
                    var hash: ContentHash?
                    do {
                        let inputs = try store.embeddingInputs([id])
                        hash = inputs.first?.hash
                        let vectors = try embedder.embed(inputs.map(\.text))
                        try store.storeEmbeddings(zip(inputs, vectors).map { (id: $0.id, hash: $0.hash, vector: $1) })
                        embeddedCount.add(inputs.count, ordering: .relaxed)
                    } catch {
                        logger.error("embedding failed; this chunk stays BM25-only until restart", metadata: ["error": "\(error)", "chunk": "\(id)"])
                        // Content unknown (it could not be read): matches no content, so retried once readable.
                        failed.withLock { $0[id] = hash ?? ContentHash(bytes: [UInt8](repeating: 0, count: 32)) }
                    }
                }
            }
        }
    }
}

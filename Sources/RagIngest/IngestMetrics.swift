import CoreMetrics

/// The ingest side's instruments (swift-metrics), made by `factory`: ragd passes its Prometheus factory, tests and
/// tools get the global one (a no-op unless bootstrapped).
public struct IngestMetrics: Sendable {
    public static let changeToSearchableLabel = "ragd_change_to_searchable_seconds"
    public static let embeddingBatchLabel = "ragd_embedding_batch_seconds"
    public static let rescansLabel = "ragd_rescans_total"
    public static let overflowsLabel = "ragd_inotify_overflows_total"

    /// Per change the watcher reported (a file, a folder, a rename) in an indexed place: from its first event to
    /// the commit of the pass that applied it.
    public let changeToSearchable: CoreMetrics.Timer
    /// Time to embed one batch of chunks (the encoder alone, not the write).
    public let embeddingBatch: CoreMetrics.Timer
    /// Full reconciliation passes completed (start-up, periodic, after an overflow, a reload or a failure).
    public let rescans: Counter
    /// `IN_Q_OVERFLOW` events: the kernel dropped inotify events and every source is reconciled.
    public let overflows: Counter

    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        changeToSearchable = CoreMetrics.Timer(label: Self.changeToSearchableLabel, dimensions: [], factory: factory)
        embeddingBatch = CoreMetrics.Timer(label: Self.embeddingBatchLabel, dimensions: [], factory: factory)
        rescans = Counter(label: Self.rescansLabel, dimensions: [], factory: factory)
        overflows = Counter(label: Self.overflowsLabel, dimensions: [], factory: factory)
    }
}

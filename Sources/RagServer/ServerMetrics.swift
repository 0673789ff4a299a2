import CoreMetrics
import RagProtocol

/// The socket server's instruments (swift-metrics), made by `factory`: ragd passes its Prometheus factory, tests
/// and tools get the global one (a no-op unless bootstrapped). Every reply written is counted once: a search that
/// succeeded in `ragd_queries_total` (and its time in `ragd_query_duration_seconds`), any failure in
/// `ragd_errors_total` by code.
public struct ServerMetrics: Sendable {
    public static let queriesLabel = "ragd_queries_total"
    public static let queryDurationLabel = "ragd_query_duration_seconds"
    public static let errorsLabel = "ragd_errors_total"

    private let factory: any MetricsFactory
    private let queries: [SearchMode: Counter]
    private let durations: [SearchMode: CoreMetrics.Timer]
    private let errors: [WireErrorCode: Counter]

    /// Creates every series up front (at zero), so that rates over them are defined from the start.
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
        var queries: [SearchMode: Counter] = [:]
        var durations: [SearchMode: CoreMetrics.Timer] = [:]
        for mode in SearchMode.allCases {
            queries[mode] = Counter(label: Self.queriesLabel, dimensions: [("mode", mode.rawValue)], factory: factory)
            durations[mode] = CoreMetrics.Timer(label: Self.queryDurationLabel, dimensions: [("mode", mode.rawValue)], factory: factory)
        }
        self.queries = queries
        self.durations = durations
        errors = Dictionary(uniqueKeysWithValues: WireErrorCode.all.map {
            ($0, Counter(label: Self.errorsLabel, dimensions: [("code", $0.rawValue)], factory: factory))
        })
    }

    /// A search answered, and the time spent answering it.
    func searched(_ mode: SearchMode, nanoseconds: Int64) {
        queries[mode]?.increment()
        durations[mode]?.recordNanoseconds(nanoseconds)
    }

    /// An error reply.
    func failed(_ code: WireErrorCode) {
        if let counter = errors[code] {
            counter.increment()
        } else {
            Counter(label: Self.errorsLabel, dimensions: [("code", code.rawValue)], factory: factory).increment()
        }
    }
}

import Glibc
import Synchronization
import RagCore
import RagStore

/// BM25 parameters. The defaults are Pyserini's for BEIR (k1 = 0.9, b = 0.4).
public struct BM25Parameters: Sendable, Equatable {
    /// Term-frequency saturation.
    public var k1: Double
    /// Length normalisation: 0 ignores chunk length, 1 normalises fully.
    public var b: Double
    public init(k1: Double = 0.9, b: Double = 0.4) {
        self.k1 = k1
        self.b = b
    }
}

/// Metadata restrictions, applied to candidates before the top-k is cut.
public struct ChunkFilter: Sendable, Equatable {
    /// Absolute path prefixes; a prefix matches whole path components (`/a/b` matches `/a/b/c.md`, not `/a/bc.md`).
    public var pathPrefixes: [String]
    /// Lower-case extensions without the dot.
    public var extensions: [String]
    /// Lower-case front-matter tags; a file matches when it has any of them.
    public var tags: [String]
    /// Files modified after this time only (nanoseconds since the epoch).
    public var modifiedAfterNanos: Int64?
    /// What the asking client may see (nil: everything). Checked last, so refusals count only files that would
    /// otherwise have been candidates.
    public var access: AccessView?
    public init(pathPrefixes: [String] = [], extensions: [String] = [], tags: [String] = [], modifiedAfterNanos: Int64? = nil,
                access: AccessView? = nil) {
        self.pathPrefixes = pathPrefixes
        self.extensions = extensions
        self.tags = tags
        self.modifiedAfterNanos = modifiedAfterNanos
        self.access = access.flatMap { $0.restricts ? $0 : nil }
    }
    public var isEmpty: Bool { pathPrefixes.isEmpty && extensions.isEmpty && tags.isEmpty && modifiedAfterNanos == nil && access == nil }

    public func matches(_ file: FileInfo) -> Bool {
        if !extensions.isEmpty && !extensions.contains(file.fileExtension) { return false }
        if let after = modifiedAfterNanos, file.mtimeNanos <= after { return false }
        if !tags.isEmpty && !file.tags.contains(where: { tags.contains($0.lowercased()) }) { return false }
        if !pathPrefixes.isEmpty && !pathPrefixes.contains(where: { ChunkFilter.path(file.path, isUnder: $0) }) { return false }
        if let access, !access.admits(path: file.path) { return false }
        return true
    }

    public static func == (a: ChunkFilter, b: ChunkFilter) -> Bool {
        a.pathPrefixes == b.pathPrefixes && a.extensions == b.extensions && a.tags == b.tags && a.modifiedAfterNanos == b.modifiedAfterNanos
            && a.access === b.access
    }

    static func path(_ path: String, isUnder prefix: String) -> Bool {
        guard path.hasPrefix(prefix) else { return false }
        if prefix.hasSuffix("/") || path.utf8.count == prefix.utf8.count { return true }
        return path.utf8[path.utf8.index(path.utf8.startIndex, offsetBy: prefix.utf8.count)] == UInt8(ascii: "/")
    }
}

/// One retrieved chunk with its citation.
public struct QueryHit: Sendable, Equatable {
    public var chunkID: UInt32
    /// The fused score (the BM25 score in bm25 mode, the cosine in dense mode).
    public var score: Double
    /// The BM25 component, when the chunk was among the BM25 candidates.
    public var bm25: Double?
    /// The dense component (cosine similarity), when known.
    public var dense: Double?
    public var path: String
    public var lines: ClosedRange<Int>
    public var headings: [String]
    public var text: String?
}

/// Answers queries from one store. Thread-safe: every call reads its own snapshots, with the store's chunk ids
/// pinned for its length (`Store.withPinnedChunkIDs`), so an id met in one snapshot or in the in-memory table
/// names the same chunk (or none) in every other view the call takes.
public final class Searcher: Sendable {
    public let store: Store
    public let parameters: BM25Parameters
    /// The query encoder for dense and hybrid modes, once a model is loaded.
    public var embedder: (any Embedder)? { embedderSlot.withLock { $0 } }
    private let embedderSlot: Mutex<(any Embedder)?>
    let queryCache: QueryVectorCache
    /// Score arrays indexed by chunk id, reused by BM25 queries.
    let scratch = ScoreScratch()
    /// BM25's per-file filter verdicts, kept for filters that come again.
    let verdicts = VerdictCache()
    private let analyzer = Analyzer()

    /// Whether BM25 uses MaxScore pruning (`false` scores every posting: same results, for comparisons).
    public let pruning: Bool

    public init(store: Store, parameters: BM25Parameters = .init(), embedder: (any Embedder)? = nil, queryCacheSize: Int = 256,
                pruning: Bool = true) {
        self.store = store
        self.pruning = pruning
        self.parameters = parameters
        self.embedderSlot = Mutex(embedder)
        self.queryCache = QueryVectorCache(capacity: queryCacheSize)
    }

    /// Installs the query encoder (the model loads in the background after start-up).
    public func setEmbedder(_ embedder: (any Embedder)?) { embedderSlot.withLock { $0 = embedder } }

    /// The query's terms with their counts, in first-seen order.
    public func queryTerms(_ query: String) -> [(term: String, count: Int)] {
        var order: [String] = []
        var counts: [String: Int] = [:]
        for term in analyzer.terms(query) where term.utf8.count <= Store.maximumTermBytes {
            if counts[term] == nil { order.append(term) }
            counts[term, default: 0] += 1
        }
        return order.map { ($0, counts[$0]!) }
    }

    /// BM25 top-`k` for `query` among chunks passing `filter`, best first (ties by chunk id).
    /// Text is read from the store for the final hits only.
    public func searchBM25(_ query: String, k: Int, filter: ChunkFilter = .init(), includeText: Bool = true) throws -> [QueryHit] {
        // Pinned ids: the chunk ids ranked here name the same chunks when their records are read.
        try store.withPinnedChunkIDs {
            let ranked = try bm25Ranking(query, k: k, filter: filter)
            return try hits(for: ranked.map { ($0.0, Double($0.1), Double($0.1), nil) }, includeText: includeText)
        }
    }

    /// BM25 (chunk id, score) pairs, best first. `pruned: false` scores every posting (the reference that tests
    /// compare dynamic pruning with).
    func bm25Ranking(_ query: String, k: Int, filter: ChunkFilter, pruned: Bool? = nil) throws -> [(UInt32, Float)] {
        let terms = queryTerms(query)
        guard !terms.isEmpty, k > 0 else { return [] }
        return try store.withSnapshot { snapshot in
            try store.withChunkTable { table in
                pruned ?? pruning ? try scoreMaxScore(terms, k: k, filter: filter, table: table, snapshot: snapshot)
                    : try score(terms, k: k, filter: filter, table: table, snapshot: snapshot)
            }
        }
    }

    /// The constants of BM25 over `table`, shared by the exhaustive and the MaxScore scorer; nil for an empty index.
    struct BM25Scale {
        let documents: Double
        let k1: Float
        /// Per-length normaliser k1 * (1 - b + b * dl / avgdl) = constant + lengthFactor * dl.
        let constant: Float
        let lengthFactor: Float

        init?(table: ChunkTable, parameters: BM25Parameters) {
            documents = Double(table.chunkCount)
            guard documents > 0 else { return nil }
            let avgdl = max(table.averageLength, 1)
            k1 = Float(parameters.k1)
            let b = Float(parameters.b)
            lengthFactor = k1 * b / Float(avgdl)
            constant = k1 * (1 - b)
        }

        /// A term's idf times its count in the query times (k1 + 1).
        func weight(documentFrequency df: Int, queryCount: Int) -> Float {
            let idf = Float(log(1 + (documents - Double(df) + 0.5) / (Double(df) + 0.5)))
            return idf * Float(queryCount) * (k1 + 1)
        }
    }

    /// A query term that occurs in the index: its BM25 weight and an upper bound of its contribution to any chunk.
    struct ScoredTerm {
        let term: String, documentFrequency: Int, weight: Float, bound: Float
    }

    /// The query's terms that occur, by decreasing weight (ties by the term itself): the order in which both
    /// scorers add up a chunk's score. The order depends only on the index's statistics, never on its history
    /// (bounds stay high after deletions), so two indexes of the same files score alike to the last bit, whatever
    /// the order of the words in the query. Each bound is the term's `TermBound` frontier, or its weight when none
    /// is stored (tf / (tf + K) < 1), widened a little so that rounding never puts it below a real contribution.
    func scoringOrder(_ terms: [(term: String, count: Int)], scale: BM25Scale, snapshot: Snapshot) throws -> [ScoredTerm] {
        var list: [ScoredTerm] = []
        for (term, queryCount) in terms {
            let df = try snapshot.documentFrequency(term)
            guard df > 0 else { continue }
            let weight = scale.weight(documentFrequency: df, queryCount: queryCount)
            let maximum = try snapshot.termBound(term)?.maximum(constant: scale.constant, lengthFactor: scale.lengthFactor) ?? 1
            list.append(ScoredTerm(term: term, documentFrequency: df, weight: weight, bound: weight * min(maximum, 1) * 1.0001 + 1e-6))
        }
        list.sort { $0.weight > $1.weight || ($0.weight == $1.weight && $0.term < $1.term) }
        return list
    }

    /// Exhaustive term-at-a-time scoring: every posting of every query term.
    private func score(_ terms: [(term: String, count: Int)], k: Int, filter: ChunkFilter,
                       table: ChunkTable, snapshot: Snapshot) throws -> [(UInt32, Float)] {
        guard let scale = BM25Scale(table: table, parameters: parameters) else { return [] }
        let lengths = table.lengths
        let fileOf = table.fileOf
        let (constant, lengthFactor) = (scale.constant, scale.lengthFactor)
        var scores = scratch.take(count: lengths.count)
        var touched: [UInt32] = []
        defer { scratch.give(&scores, touched: touched) }
        var allowedFile: [UInt32: Bool] = [:]
        let filtering = !filter.isEmpty

        // Terms in the MaxScore scorer's order, so that both sum each chunk's score in the same order and agree
        // to the last bit.
        for scored in try scoringOrder(terms, scale: scale, snapshot: snapshot) {
            let weight = scored.weight
            try snapshot.postings(scored.term) { page in
                let count = page.count / Store.postingSize
                var offset = 0
                for _ in 0..<count {
                    let (chunk, count) = Store.posting(page, at: offset)
                    let id = Int(chunk), tf = Float(count)
                    offset += Store.postingSize
                    guard id < lengths.count else { continue }
                    let dl = lengths[id]
                    guard dl != 0 else { continue }  // deleted since this snapshot began
                    if filtering {
                        let file = fileOf[id]
                        let allowed: Bool
                        if let cached = allowedFile[file] {
                            allowed = cached
                        } else {
                            allowed = table.files[file].map(filter.matches) ?? false
                            allowedFile[file] = allowed
                        }
                        if !allowed { continue }
                    }
                    if scores[id] == 0 { touched.append(UInt32(id)) }
                    scores[id] += weight * tf / (tf + constant + lengthFactor * Float(dl))
                }
            }
        }
        var heap = TopK(k: k)
        for id in touched { heap.insert(id: id, score: scores[Int(id)]) }
        return heap.sorted()
    }
}

/// A bounded min-heap keeping the `k` best (score, id) pairs; ties prefer the smaller id.
struct TopK {
    let k: Int
    private var items: [(id: UInt32, score: Float)] = []

    init(k: Int) {
        self.k = k
        items.reserveCapacity(min(k, 4096))
    }

    /// Whether `k` items are held (so the worst of them is a threshold).
    var isFull: Bool { items.count >= k }
    /// The lowest score held.
    var worstScore: Float? { items.first?.score }

    /// Whether `a` ranks below `b`.
    @inline(__always) private static func worse(_ a: (id: UInt32, score: Float), _ b: (id: UInt32, score: Float)) -> Bool {
        a.score < b.score || (a.score == b.score && a.id > b.id)
    }

    mutating func insert(id: UInt32, score: Float) {
        let item = (id: id, score: score)
        if items.count < k {
            items.append(item)
            var child = items.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard TopK.worse(items[child], items[parent]) else { break }
                items.swapAt(child, parent)
                child = parent
            }
        } else if let root = items.first, TopK.worse(root, item) {
            items[0] = item
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < items.count && TopK.worse(items[left], items[smallest]) { smallest = left }
                if right < items.count && TopK.worse(items[right], items[smallest]) { smallest = right }
                if smallest == parent { break }
                items.swapAt(parent, smallest)
                parent = smallest
            }
        }
    }

    /// Best first.
    func sorted() -> [(UInt32, Float)] {
        items.sorted { TopK.worse($1, $0) }.map { ($0.id, $0.score) }
    }
}

/// Per-query score arrays indexed by chunk id, kept between queries: a fresh one costs, at a million chunks, 4 MB
/// of zeroing and page faults per query. Handed out all zeros; `give` resets only the entries a query touched.
final class ScoreScratch: Sendable {
    private let free = Mutex<[[Float]]>([])
    /// Arrays kept at most (one per query running at once, beyond which they are freed).
    static let kept = 4

    /// A zeroed array of at least `count` entries.
    func take(count: Int) -> [Float] {
        var array = free.withLock { $0.popLast() } ?? []
        if array.count < count { array.append(contentsOf: repeatElement(0, count: count - array.count)) }
        return array
    }

    /// Takes `array` back (leaving an empty one in its place) after zeroing the entries at `touched` (all of them
    /// when that is most: a sequential fill beats scattered stores).
    func give(_ array: inout [Float], touched: [UInt32]) {
        var returned: [Float] = []
        swap(&returned, &array)
        returned.withUnsafeMutableBufferPointer { buffer in
            if touched.count * 16 > buffer.count {
                buffer.update(repeating: 0)
            } else {
                for id in touched where Int(id) < buffer.count { buffer[Int(id)] = 0 }
            }
        }
        free.withLock { if $0.count < ScoreScratch.kept { $0.append(returned) } }
    }
}

/// Per-file filter verdicts (by file id: 0 undecided, 1 admitted, 2 refused) kept between BM25 queries, so that a
/// filter that comes again over an unchanged table (an agent searching one source, one extension) decides each
/// file once instead of once per query. Keyed by the filter and `ChunkTable.generation`; entries of another
/// generation are dropped. Filters with an access view are not kept: their verdicts follow file permissions on
/// disk, which the table does not track.
final class VerdictCache: Sendable {
    private let entries = Mutex<[(filter: ChunkFilter, generation: UInt64, states: [UInt8])]>([])
    /// Filters kept at most.
    static let kept = 4

    /// The verdicts kept for `filter` at `generation` (taken out: a query running at once with the same filter
    /// starts afresh), or none.
    func take(_ filter: ChunkFilter, generation: UInt64) -> [UInt8] {
        guard filter.access == nil else { return [] }
        return entries.withLock { entries in
            guard let i = entries.firstIndex(where: { $0.generation == generation && $0.filter == filter }) else { return [] }
            return entries.remove(at: i).states
        }
    }

    /// Keeps the verdicts a query decided (with those it was given).
    func give(_ filter: ChunkFilter, generation: UInt64, states: [UInt8]) {
        guard filter.access == nil, !filter.isEmpty else { return }
        entries.withLock { entries in
            entries.removeAll { $0.generation != generation || $0.filter == filter }
            entries.append((filter, generation, states))
            if entries.count > VerdictCache.kept { entries.removeFirst() }
        }
    }
}


import RagCore
import RagStore
import RagVectorKernels
import Dispatch
import Glibc
import Synchronization

/// How BM25 and dense rankings are combined in hybrid mode.
public enum Fusion: Sendable, Equatable {
    /// Reciprocal rank fusion: Σ 1 / (k + rank) over the two rankings (Cormack et al. 2009; k = 60).
    case reciprocalRank(k: Double)
    /// Weighted sum of normalised scores: `weight × dense + (1 − weight) × bm25`, where BM25 is divided by
    /// the best BM25 score of the query and dense is the cosine similarity.
    case weighted(denseWeight: Double)
}

/// Errors a dense or hybrid search can meet.
public struct QueryError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A small LRU of query embeddings, so a repeated query costs no encoder call.
final class QueryVectorCache: Sendable {
    private struct State {
        var vectors: [String: [Float]] = [:]
        var order: [String] = []
    }
    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    func get(_ key: String) -> [Float]? { state.withLock { $0.vectors[key] } }

    func put(_ key: String, _ vector: [Float]) {
        state.withLock { state in
            if state.vectors.updateValue(vector, forKey: key) == nil { state.order.append(key) }
            if state.order.count > capacity {
                let evicted = state.order.removeFirst()
                state.vectors[evicted] = nil
            }
        }
    }
}

extension Searcher {
    /// The query's embedding (cached).
    public func queryVector(_ query: String) throws -> [Float] {
        guard let embedder else { throw QueryError("no embedding model is loaded") }
        if let cached = queryCache.get(query) { return cached }
        guard let vector = try embedder.embed([query]).first else { throw QueryError("the embedder returned no vector") }
        queryCache.put(query, vector)
        return vector
    }

    /// Exact nearest neighbours by cosine: an int8 scan of every chunk vector in memory picks candidates,
    /// which are re-scored with their stored vectors (float16, computed in float32). Filters apply before the cut.
    public func searchDense(_ query: String, k: Int, filter: ChunkFilter = .init(), includeText: Bool = true) throws -> [QueryHit] {
        let vector = try queryVector(query)
        return try store.withPinnedChunkIDs {
            let ranked = try denseCandidates(vector, k: k, filter: filter)
            return try hits(for: ranked.map { ($0.0, $0.1, nil, $0.1) }, includeText: includeText)
        }
    }

    /// BM25 and dense rankings fused; each hit reports both components.
    public func searchHybrid(_ query: String, k: Int, filter: ChunkFilter = .init(), fusion: Fusion, includeText: Bool = true) throws -> [QueryHit] {
        let vector = try queryVector(query)
        return try store.withPinnedChunkIDs { try hybrid(query, vector: vector, k: k, filter: filter, fusion: fusion, includeText: includeText) }
    }

    /// Fusion runs on the 4-bit estimates of the dense similarities (in memory, no page reads); the best
    /// `2k + 10` fused candidates then get their similarity from the stored vectors and are fused again before the cut, so the
    /// scores returned are those of dense mode. (Re-scoring every candidate read up to 300 vectors a query.)
    private func hybrid(_ query: String, vector: [Float], k: Int, filter: ChunkFilter, fusion: Fusion, includeText: Bool) throws -> [QueryHit] {
        let depth = max(k, 100)
        // The two rankings at once: BM25 on one thread while the dense scan runs on the others.
        let rankings = forEachPart(2) { part -> Result<[(UInt32, Double)], any Error> in
            Result {
                part == 0 ? try bm25Ranking(query, k: depth, filter: filter).map { ($0.0, Double($0.1)) }
                    : try denseCandidates(vector, k: depth, filter: filter, rescore: false)
            }
        }
        let lexical = try rankings[0].get()
        let semantic = try rankings[1].get()
        var bm25: [UInt32: Double] = [:]
        for (id, score) in lexical { bm25[id] = score }
        var dense: [UInt32: Double] = [:]
        for (id, score) in semantic { dense[id] = score }
        // BM25-only candidates get their 4-bit estimate too.
        for (id, score) in approximateCosines(vector, ids: lexical.map(\.0).filter { dense[$0] == nil }) { dense[id] = score }
        let best = max(lexical.first.map { $0.1 } ?? 1, 1e-9)
        func fuse(_ dense: [UInt32: Double]) -> [UInt32: Double] {
            var fused: [UInt32: Double] = [:]
            switch fusion {
            case .reciprocalRank(let c):
                for (rank, (id, _)) in lexical.enumerated() { fused[id, default: 0] += 1 / (c + Double(rank + 1)) }
                for (rank, (id, _)) in semantic.enumerated() { fused[id, default: 0] += 1 / (c + Double(rank + 1)) }
            case .weighted(let w):
                for id in Set(bm25.keys).union(dense.keys) {
                    fused[id] = w * max(dense[id] ?? 0, 0) + (1 - w) * (bm25[id] ?? 0) / best
                }
            }
            return fused
        }
        func ranked(_ fused: [UInt32: Double]) -> [(key: UInt32, value: Double)] {
            fused.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }
        }
        let shortlist = ranked(fuse(dense)).prefix(2 * k + 10).map(\.key)
        try store.withSnapshot { snapshot in
            for id in shortlist {
                if let v = try snapshot.embedding(id) { dense[id] = Double(dot(v, vector)) }
            }
        }
        let exactFused = fuse(dense)
        let order = ranked(Dictionary(uniqueKeysWithValues: shortlist.compactMap { id in exactFused[id].map { (id, $0) } })).prefix(k)
        return try hits(for: order.map { ($0.key, $0.value, bm25[$0.key], dense[$0.key]) }, includeText: includeText)
    }

    /// 4-bit estimates of the cosine of `vector` with the chunks `ids` that have a vector.
    func approximateCosines(_ vector: [Float], ids: [UInt32]) -> [(UInt32, Double)] {
        guard !ids.isEmpty else { return [] }
        return store.withChunkTable { table in
            let vectors = table.vectors
            guard vectors.dimensions == vector.count else { return [] }
            let query = ScanQuery(vector, stride: vectors.stride)
            var result: [(UInt32, Double)] = []
            var sum: Int32 = 0
            vectors.codes.withUnsafeBufferPointer { rows in
                query.codes.withUnsafeBufferPointer { q in
                    for id in ids where vectors.has(id) {
                        VectorKernels.dotRows4(query: q.baseAddress!, rows: rows.baseAddress! + Int(id) * vectors.stride, rowCount: 1,
                                               stride: vectors.stride, scores: &sum)
                        result.append((id, Double(query.estimate(sum, step: vectors.scales[Int(id)]))))
                    }
                }
            }
            return result
        }
    }

    /// Top candidates by the 4-bit first pass, re-scored exactly: (chunk id, cosine), best first. Without
    /// `rescore`, the best `k` by their 4-bit estimates. `threads` overrides the split of the scan (tests).
    func denseCandidates(_ vector: [Float], k: Int, filter: ChunkFilter, threads: Int? = nil, rescore: Bool = true) throws -> [(UInt32, Double)] {
        // 4-bit codes order the rows well enough that the exact top ten were always among the best 30 (1,000 real
        // MiniLM vectors) or 50 (a million random ones); the best `candidateCount` get their stored vectors.
        let candidateCount = rescore ? max(k * 2, 64) : k
        let approximate: [(UInt32, Float)] = store.withChunkTable { table in
            let vectors = table.vectors
            let dims = vectors.dimensions
            guard dims == vector.count, vectors.count > 0 else { return [] }
            let query = ScanQuery(vector, stride: vectors.stride)
            let rowCount = min(vectors.scales.count, table.lengths.count)
            // Large scans are split in contiguous parts over the cores; each part keeps its own heap, merged at the end.
            let parts = max(1, min(threads ?? (rowCount >= Searcher.parallelScanRows ? Searcher.scanThreads : 1), rowCount))
            let admission = FileAdmission(filter: filter, table: table)
            let heaps = vectors.codes.withUnsafeBufferPointer { rows in
                query.codes.withUnsafeBufferPointer { q in
                    vectors.scales.withUnsafeBufferPointer { scales in
                        table.lengths.withUnsafeBufferPointer { lengths in
                            let shared = ScanInput(rows: rows.baseAddress!, query: q.baseAddress!, scales: scales.baseAddress!,
                                                   lengths: lengths.baseAddress!, stride: vectors.stride,
                                                   offset: query.offset, factor: query.factor)
                            return forEachPart(parts) { part in
                                let start = rowCount * part / parts, end = rowCount * (part + 1) / parts
                                return shared.scan(start..<end, keep: candidateCount, admission: admission)
                            }
                        }
                    }
                }
            }
            var merged = TopK(k: candidateCount)
            for heap in heaps { for (id, score) in heap.sorted() { merged.insert(id: id, score: score) } }
            return merged.sorted()
        }
        guard rescore else { return approximate.map { ($0.0, Double($0.1)) } }
        var exact: [(UInt32, Double)] = []
        try store.withSnapshot { snapshot in
            for (id, approx) in approximate {
                if let v = try snapshot.embedding(id) { exact.append((id, Double(dot(v, vector)))) } else { exact.append((id, Double(approx))) }
            }
        }
        exact.sort { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }
        return Array(exact.prefix(k))
    }

    /// Builds hits (with citations, and text when asked) for ranked chunk ids: (id, score, bm25, dense).
    func hits(for ranked: [(UInt32, Double, Double?, Double?)], includeText: Bool) throws -> [QueryHit] {
        try store.withSnapshot { snapshot in
            let paths = store.withChunkTable { table in ranked.map { Int($0.0) < table.fileOf.count ? table.files[table.fileOf[Int($0.0)]]?.path : nil } }
            var hits: [QueryHit] = []
            for (n, (id, score, bm25, dense)) in ranked.enumerated() {
                guard let record = try snapshot.chunk(id), let path = paths[n] else { continue }
                hits.append(QueryHit(chunkID: id, score: score, bm25: bm25, dense: dense, path: path, lines: record.lines,
                                     headings: record.headings, text: includeText ? record.text : nil))
            }
            return hits
        }
    }
}

extension Searcher {
    /// Rows from which the dense scan is split over threads.
    static let parallelScanRows = 65_536
    /// Threads of one dense scan: the cores, at most 4.
    static let scanThreads = max(1, min(4, sysconf(Int32(_SC_NPROCESSORS_ONLN))))
}

/// Runs `body` for each part in `0..<parts` at once (the calling thread takes one), returning the results in order.
func forEachPart<T>(_ parts: Int, _ body: (Int) -> T) -> [T] {
    if parts <= 1 { return [body(0)] }
    let results = UnsafeMutableBufferPointer<T?>.allocate(capacity: parts)
    results.initialize(repeating: nil)
    defer {
        _ = results.deinitialize()
        results.deallocate()
    }
    withoutActuallyEscaping(body) { body in
        let shared = UncheckedSendable((body, results))
        DispatchQueue.concurrentPerform(iterations: parts) { part in shared.value.1[part] = shared.value.0(part) }
    }
    return results.map { $0! }
}

/// A value handed to worker threads whose safety the caller guarantees (disjoint writes, reads under a held lock).
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// Whether each file passes a filter, decided once per file and query even when several threads ask.
final class FileAdmission: @unchecked Sendable {
    let filtering: Bool
    private let filter: ChunkFilter
    private let files: [UInt32: FileInfo]
    let fileOf: [UInt32]
    private let decided = Mutex<[UInt32: Bool]>([:])

    init(filter: ChunkFilter, table: ChunkTable) {
        self.filter = filter
        self.filtering = !filter.isEmpty
        self.files = table.files
        self.fileOf = table.fileOf
    }

    func admits(file: UInt32) -> Bool {
        decided.withLock { decided in
            if let known = decided[file] { return known }
            let allowed = files[file].map(filter.matches) ?? false
            decided[file] = allowed
            return allowed
        }
    }
}

/// A query prepared for the 4-bit scan: int8 codes padded to the rows' two halves, and the terms that map a raw
/// kernel sum `S` back to a cosine estimate: `(2S − offset) · factor · step_r`.
struct ScanQuery {
    let codes: [Int8]
    let offset: Int32
    let factor: Float

    init(_ vector: [Float], stride: Int) {
        let (quantised, scale) = VectorIndex.quantise(vector)
        var codes = [Int8](repeating: 0, count: 2 * stride)
        for d in 0..<quantised.count { codes[d] = quantised[d] }
        self.codes = codes
        // Σ q·(u − 7.5)·step = step · (S − 7.5 Σq); doubled to stay in integers.
        offset = 15 * quantised.reduce(Int32(0)) { $0 + Int32($1) }
        factor = scale / 2
    }

    /// The cosine estimate of a raw kernel sum for a row of step `step`.
    @inline(__always)
    func estimate(_ sum: Int32, step: Float) -> Float { ScanQuery.estimate(sum, offset: offset, factor: factor, step: step) }

    @inline(__always)
    static func estimate(_ sum: Int32, offset: Int32, factor: Float, step: Float) -> Float {
        Float(2 &* sum &- offset) * factor * step
    }
}

/// The in-memory codes one dense scan reads (valid while the chunk table's read lock is held).
struct ScanInput: @unchecked Sendable {
    let rows: UnsafePointer<UInt8>, query: UnsafePointer<Int8>, scales: UnsafePointer<Float>, lengths: UnsafePointer<UInt32>
    let stride: Int, offset: Int32, factor: Float

    /// The best `keep` rows of `range` by approximate cosine, among live chunks that pass the filter.
    func scan(_ range: Range<Int>, keep: Int, admission: FileAdmission) -> TopK {
        var heap = TopK(k: keep)
        let block = 4096
        var worst = -Float.infinity
        var lastFile = UInt32.max, lastAllowed = false
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: block) { out in
            var start = range.lowerBound
            while start < range.upperBound {
                let count = min(block, range.upperBound - start)
                VectorKernels.dotRows4(query: query, rows: rows + start * stride, rowCount: count, stride: stride, scores: out.baseAddress!)
                for offset in 0..<count {
                    let index = start &+ offset
                    // Rows without a vector have step 0 and score 0: the cut rejects them cheaply once the heap
                    // is full of better ones; the liveness check below catches the rest.
                    let score = ScanQuery.estimate(out[offset], offset: self.offset, factor: factor, step: scales[index])
                    if score < worst { continue }
                    guard scales[index] != 0 && lengths[index] != 0 else { continue }
                    if admission.filtering {
                        let file = admission.fileOf[index]
                        if file != lastFile {
                            lastFile = file
                            lastAllowed = admission.admits(file: file)
                        }
                        if !lastAllowed { continue }
                    }
                    heap.insert(id: UInt32(index), score: score)
                    if heap.isFull, let w = heap.worstScore { worst = w }
                }
                start += count
            }
        }
        return heap
    }
}

@inline(__always)
func dot(_ a: [Float], _ b: [Float]) -> Float {
    var sum: Float = 0
    for i in 0..<min(a.count, b.count) { sum += a[i] * b[i] }
    return sum
}

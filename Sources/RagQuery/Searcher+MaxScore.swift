import CCPU
import Glibc
import RagStore

extension Searcher {
    /// BM25 top-`k` with MaxScore pruning (Turtle and Flood 1995), term at a time.
    ///
    /// Each term has an upper bound on its weight in any chunk: its `TermBound` frontier, or `weight` itself when
    /// none is stored (tf / (tf + K) < 1). Terms are taken in `scoringOrder` (decreasing weight, nearly always
    /// decreasing bound). Phase 1 scores their postings in full while a chunk matching none of them so far could
    /// still reach the top-k: until the bounds of the terms left sum below θ, the k-th best partial score (a lower
    /// bound of the final k-th score). Then θ is raised by completing the best partial scores through the
    /// remaining terms. Phase 2: no new chunk can enter, so the remaining (common, low-weight) terms only update
    /// the candidates whose partial score plus the bounds left still reaches θ, by seeking each in the postings or,
    /// for many, reading them. Deleted chunks are skipped as postings are read; the filter is asked only where a
    /// chunk could count (entering a heap that sets θ, or becoming a candidate), so θ comes from admitted chunks
    /// only and a filter costs per candidate, not per posting. Both scorers add a chunk's contributions in
    /// `scoringOrder`, so the survivors' scores, and the top-k, are identical to exhaustive scoring.
    func scoreMaxScore(_ terms: [(term: String, count: Int)], k: Int, filter: ChunkFilter,
                       table: ChunkTable, snapshot: Snapshot) throws -> [(UInt32, Float)] {
        guard let scale = BM25Scale(table: table, parameters: parameters) else { return [] }
        let list = try scoringOrder(terms, scale: scale, snapshot: snapshot)
        guard !list.isEmpty else { return [] }
        // rest[i]: the bounds of terms i... summed (rest[count] is exactly 0).
        var rest = [Float](repeating: 0, count: list.count + 1)
        for i in stride(from: list.count - 1, through: 0, by: -1) { rest[i] = rest[i + 1] + list[i].bound }
        /// Whether a chunk with `partial` and the terms from `next` on left can still reach `threshold`; with some
        /// slack for rounding in the bounds.
        @inline(__always) func canReach(_ partial: Float, _ next: Int, _ threshold: Float) -> Bool {
            partial + rest[next] >= threshold - abs(threshold) * 1e-4 - 1e-6
        }

        var scratchArray = scratch.take(count: table.lengths.count)
        var touchedIDs: [UInt32] = []
        var verdictStates = filter.isEmpty ? [] : verdicts.take(filter, generation: table.generation)
        defer {
            scratch.give(&scratchArray, touched: touchedIDs)
            if !filter.isEmpty { verdicts.give(filter, generation: table.generation, states: verdictStates) }
        }
        return try table.lengths.withUnsafeBufferPointer { lengths in
            try table.fileOf.withUnsafeBufferPointer { fileOf in
                try scratchArray.withUnsafeMutableBufferPointer { scratchBuffer in
                    let admission = FileVerdicts(filter: filter, table: table, fileOf: fileOf, state: verdictStates)
                    var run = PartialScores(lengths: lengths, partial: scratchBuffer, scale: scale, admission: admission, k: k)
                    defer {
                        touchedIDs = run.touched
                        verdictStates = run.admission.state
                    }

                    /// The k-th best full score among the chunks of `ids`, completed through the terms from `next` on
                    /// (a seek per chunk and term): a lower bound of the final k-th score, and usually close to it.
                    func completedKth(_ ids: [UInt32]) throws -> Float {
                        let ids = ids.sorted()
                        var scores = ids.map { run.partial[Int($0)] }
                        for term in list[next...] {
                            let cursor = try snapshot.postingCursor(term.term)
                            defer { cursor.close() }
                            try cursor.forEachPosting(of: ids) { i, tf in scores[i] += run.contribution(term.weight, tf, Int(ids[i])) }
                        }
                        return scores.count >= k ? scores.sorted(by: >)[k - 1] : -.infinity
                    }

                    // Phase 1: full scoring while a new chunk could still enter the top-k.
                    var threshold = -Float.infinity
                    var next = 0
                    while next < list.count && canReach(0, next, threshold) {
                        let weight = list[next].weight
                        try snapshot.postings(list[next].term) { page in run.add(page, weight: weight, admitting: true) }
                        next += 1
                        // θ can stop this phase only once some chunk beats the bounds left (θ costs a pass over the
                        // chunks touched). Beyond a few, the best partial scores are completed: their k-th best is a
                        // higher θ than the k-th best partial score, which can end this phase terms earlier and leaves
                        // far fewer candidates.
                        guard run.best >= rest[next] else { continue }
                        if next < list.count && run.touched.count > 64 * k {
                            threshold = max(threshold, try completedKth(run.best(2 * k + 16, among: run.touched).map(\.id)))
                        } else {
                            threshold = max(threshold, run.kth(among: run.touched, above: threshold))
                        }
                    }

                    // Phase 2: the remaining terms only complete the candidates that can still reach θ. The filter is
                    // not asked for each (a file's verdict costs a lookup and its path: far more than completing a
                    // chunk); those whose file is known to be refused are dropped as they come by.
                    var candidates = run.select(among: run.touched) { canReach($0, next, threshold) }
                    while next < list.count && !candidates.isEmpty {
                        let term = list[next]
                        if candidates.count * 32 < term.documentFrequency {
                            // Few candidates: skip to each, in id order (whole pages below it are passed by their last id).
                            let cursor = try snapshot.postingCursor(term.term)
                            defer { cursor.close() }
                            try cursor.forEachPosting(of: candidates) { i, tf in run.add(id: Int(candidates[i]), tf: tf, weight: term.weight) }
                        } else {
                            // Many: reading the postings is cheaper than skipping. Touched chunks that are no longer
                            // candidates are updated too: harmless (their partial scores stay below their scores, and
                            // they are not read again) and cheaper than telling them apart.
                            try snapshot.postings(term.term) { page in run.add(page, weight: term.weight, admitting: false) }
                        }
                        next += 1
                        threshold = max(threshold, run.kth(among: candidates, above: threshold))
                        candidates.removeAll { !canReach(run.partial[Int($0)], next, threshold) || run.admission.isRefused(Int($0)) }
                    }

                    // The survivors' partial scores are complete: every term was added, in `scoringOrder`, as the
                    // exhaustive scorer adds them, so they are its scores to the last bit.
                    var heap = TopK(k: k)
                    for id in candidates where canReach(run.partial[Int(id)], list.count, threshold) && run.admission.admits(Int(id)) {
                        heap.insert(id: id, score: run.partial[Int(id)])
                    }
                    return heap.sorted()
                }
            }
        }
    }
}

/// Which files a filter admits, decided once per file: 0 undecided, 1 admitted, 2 refused (an array, as a lookup per
/// posting must be cheap; it may start with the verdicts of earlier queries, `VerdictCache`). The single-threaded,
/// lock-free counterpart of `FileAdmission`.
private struct FileVerdicts {
    let filter: ChunkFilter
    let filtering: Bool
    let table: ChunkTable
    /// The table's chunk-to-file column (valid while the table is).
    let fileOf: UnsafeBufferPointer<UInt32>
    var state: [UInt8]

    init(filter: ChunkFilter, table: ChunkTable, fileOf: UnsafeBufferPointer<UInt32>, state: [UInt8]) {
        self.filter = filter
        self.filtering = !filter.isEmpty
        self.table = table
        self.fileOf = fileOf
        self.state = state
    }

    /// Whether chunk `id`'s file is already known to be refused (deciding nothing).
    @inline(__always) func isRefused(_ id: Int) -> Bool {
        guard filtering else { return false }
        let file = Int(fileOf[id])
        return file < state.count && state[file] == 2
    }

    @inline(__always) mutating func admits(_ id: Int) -> Bool {
        guard filtering else { return true }
        let file = Int(fileOf[id])
        if file >= state.count { state += repeatElement(0, count: max(file + 1, state.count * 2, 1024) - state.count) }
        if state[file] == 0 {
            // Through `values[i]` rather than the key subscript: measured faster at a million chunks (the subscript
            // copies the whole `FileInfo` out), though perf still shows some copying.
            let i = table.files.index(forKey: UInt32(file))
            state[file] = i.map { filter.matches(table.files.values[$0]) } ?? false ? 1 : 2
        }
        return state[file] == 1
    }
}

/// The partial BM25 scores of one MaxScore query: a zeroed scratch array indexed by chunk id, the chunks touched
/// (given a score) in the order they were, and the best partial score.
private struct PartialScores {
    let lengths: UnsafeBufferPointer<UInt32>
    let partial: UnsafeMutableBufferPointer<Float>
    /// Chunk ids below this have a length and a partial score.
    let limit: Int
    let constant: Float, lengthFactor: Float
    var admission: FileVerdicts
    let k: Int
    private(set) var touched: [UInt32] = []
    private(set) var best: Float = 0

    init(lengths: UnsafeBufferPointer<UInt32>, partial: UnsafeMutableBufferPointer<Float>, scale: Searcher.BM25Scale,
         admission: FileVerdicts, k: Int) {
        self.lengths = lengths
        self.partial = partial
        self.limit = min(lengths.count, partial.count)
        self.constant = scale.constant
        self.lengthFactor = scale.lengthFactor
        self.admission = admission
        self.k = k
    }

    /// Adds `weight`'s contribution of every posting on `page`: to any live chunk when `admitting` (a new one joins
    /// `touched`; the filter is not asked here but where a chunk could count, see `kth`), else only to chunks
    /// already touched (the others can no longer enter). Each posting's two array reads are prefetched `ahead`
    /// postings early so that their cache misses overlap; the loop is bound by memory latency otherwise.
    mutating func add(_ page: UnsafeRawBufferPointer, weight: Float, admitting: Bool) {
        let count = page.count / Store.postingSize
        let ahead = 16
        var ids: [UInt32] = []
        swap(&ids, &touched)  // out of `self` while the loop below writes it
        defer { swap(&ids, &touched) }
        let first = ids.count
        if admitting { ids.append(contentsOf: repeatElement(0, count: count)) }  // room for all; trimmed below
        var added = 0
        var pageBest = best
        ids.withUnsafeMutableBufferPointer { touched in
            for i in 0..<count {
                if i + ahead < count {
                    let upcoming = Int(Store.posting(page, at: (i + ahead) * Store.postingSize).id)
                    if upcoming < limit {
                        ragd_prefetch(lengths.baseAddress! + upcoming)
                        ragd_prefetch(partial.baseAddress! + upcoming)
                    }
                }
                let (chunk, tf) = Store.posting(page, at: i * Store.postingSize)
                let id = Int(chunk)
                guard id < limit else { continue }
                let old = partial[id]
                // Without branches on `old`, which the predictor cannot guess: a new chunk is always written to
                // the next slot, which counts only when it is new; a chunk never touched keeps 0.
                if admitting {
                    guard lengths[id] != 0 else { continue }
                    touched[first + added] = chunk
                    added += old == 0 ? 1 : 0
                    let sum = old + contribution(weight, tf, id)
                    partial[id] = sum
                    pageBest = max(pageBest, sum)
                } else {
                    let sum = old + contribution(weight, tf, id)
                    partial[id] = old == 0 ? 0 : sum
                }
            }
        }
        if admitting {
            ids.removeLast(count - added)
            best = pageBest
        }
    }

    /// Adds one posting's contribution.
    @inline(__always) mutating func add(id: Int, tf: UInt16, weight: Float) {
        partial[id] += contribution(weight, tf, id)
    }

    /// The exhaustive scorer's expression, so that both agree to the last bit.
    @inline(__always) func contribution(_ weight: Float, _ tf: UInt16, _ id: Int) -> Float {
        let tf = Float(tf)
        return weight * tf / (tf + constant + lengthFactor * Float(lengths[id]))
    }

    /// The k-th best partial score of the admitted chunks of `ids` if above `floor` (else −∞). The filter is asked
    /// only for scores that would enter the heap: a few hundred chunks, not every posting.
    mutating func kth(among ids: [UInt32], above floor: Float) -> Float {
        guard ids.count >= k else { return -.infinity }
        var heap = TopK(k: k)
        var floor = floor
        PartialScores.forEach(ids, partial) { id, score in
            guard score > floor, admission.admits(Int(id)) else { return }
            heap.insert(id: id, score: score)
            if heap.isFull { floor = max(floor, heap.worstScore ?? floor) }
        }
        return heap.isFull ? heap.worstScore ?? -.infinity : -.infinity
    }

    /// The `count` admitted chunks of `ids` with the best partial scores, best first.
    mutating func best(_ count: Int, among ids: [UInt32]) -> [(id: UInt32, score: Float)] {
        var heap = TopK(k: count)
        var floor = -Float.infinity  // the heap's worst once full: most scores fail this test alone
        PartialScores.forEach(ids, partial) { id, score in
            guard score >= floor, admission.admits(Int(id)) else { return }
            heap.insert(id: id, score: score)
            if heap.isFull { floor = heap.worstScore ?? floor }
        }
        return heap.sorted().map { (id: $0.0, score: $0.1) }
    }

    /// The chunks of `ids` whose partial score passes `keep`, in id order (admitted or not).
    func select(among ids: [UInt32], where keep: (Float) -> Bool) -> [UInt32] {
        var kept: [UInt32] = []
        PartialScores.forEach(ids, partial) { id, score in
            if keep(score) { kept.append(id) }
        }
        sortIDs(&kept, below: limit)
        return kept
    }

    /// Calls `body` with each id and its partial score, prefetching the scores ahead (the ids are scattered).
    @inline(__always) private static func forEach(_ ids: [UInt32], _ partial: UnsafeMutableBufferPointer<Float>,
                                                  _ body: (UInt32, Float) -> Void) {
        let ahead = 16
        ids.withUnsafeBufferPointer { ids in
            for i in 0..<ids.count {
                if i + ahead < ids.count { ragd_prefetch(partial.baseAddress! + Int(ids[i + ahead])) }
                body(ids[i], partial[Int(ids[i])])
            }
        }
    }
}

/// Sorts distinct chunk ids below `limit`: many of them through a bitmap of the id range (linear), few by comparison.
func sortIDs(_ ids: inout [UInt32], below limit: Int) {
    guard ids.count > 1 else { return }
    // A comparison sort costs about n log n; the bitmap pass, limit / 64 words plus n.
    guard ids.count * 16 > limit / 64 else {
        ids.sort()
        return
    }
    var words = [UInt64](repeating: 0, count: (limit + 63) / 64)
    for id in ids where Int(id) < limit { words[Int(id) >> 6] |= 1 << (UInt64(id) & 63) }
    var n = 0
    for (w, word) in words.enumerated() where word != 0 {
        var bits = word
        while bits != 0 {
            ids[n] = UInt32(w << 6 | bits.trailingZeroBitCount)
            n += 1
            bits &= bits - 1
        }
    }
    ids.removeLast(ids.count - n)
}

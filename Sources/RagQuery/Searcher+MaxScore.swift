import Glibc
import RagStore

extension Searcher {
    /// BM25 top-`k` with MaxScore pruning (Turtle and Flood 1995), term at a time.
    ///
    /// Each term has an upper bound on its weight in any chunk: its `TermBound` frontier, or `weight` itself
    /// when none is stored (tf / (tf + K) < 1). Terms are taken in `scoringOrder` (decreasing weight, nearly
    /// always decreasing bound) and their postings scored in full while a chunk matching none of them so far
    /// could still reach the top-k: until the bounds of the
    /// terms left sum below θ, the k-th best partial score (a lower bound of the final k-th score). From then on
    /// no new chunk can enter, so the remaining (common, low-weight) terms only update the candidates whose
    /// partial score plus the bounds left still reaches θ: their postings are walked page by page, pages below the
    /// next candidate skipped by their last id. Filters and deleted chunks are checked before a chunk counts, so
    /// θ comes from admitted chunks only. Both scorers add a chunk's contributions in `scoringOrder`, so the
    /// survivors' scores, and the top-k, are identical to exhaustive scoring.
    func scoreMaxScore(_ terms: [(term: String, count: Int)], k: Int, filter: ChunkFilter,
                       table: ChunkTable, snapshot: Snapshot) throws -> [(UInt32, Float)] {
        guard let scale = BM25Scale(table: table, parameters: parameters) else { return [] }
        let lengths = table.lengths
        let fileOf = table.fileOf
        let (constant, lengthFactor) = (scale.constant, scale.lengthFactor)

        let list = try scoringOrder(terms, scale: scale, snapshot: snapshot)
        guard !list.isEmpty else { return [] }
        // rest[i]: the bounds of terms i... summed (rest[count] is exactly 0).
        var rest = [Float](repeating: 0, count: list.count + 1)
        for i in stride(from: list.count - 1, through: 0, by: -1) { rest[i] = rest[i + 1] + list[i].bound }
        /// Whether a chunk with `partial` and the terms from `next` on left can still reach `threshold`; with some
        /// slack, as the sums here and in the exhaustive scorer are taken in different orders.
        @inline(__always) func canReach(_ partial: Float, _ next: Int, _ threshold: Float) -> Bool {
            partial + rest[next] >= threshold - abs(threshold) * 1e-4 - 1e-6
        }

        // Per file: 0 undecided, 1 admitted, 2 refused (an array: a lookup per posting must be cheap).
        var fileState: [UInt8] = []
        let filtering = !filter.isEmpty
        @inline(__always) func admitted(_ id: Int) -> Bool {
            guard filtering else { return true }
            let file = Int(fileOf[id])
            if file >= fileState.count { fileState += repeatElement(0, count: max(file + 1, fileState.count * 2, 1024) - fileState.count) }
            if fileState[file] == 0 { fileState[file] = (table.files[UInt32(file)].map(filter.matches) ?? false) ? 1 : 2 }
            return fileState[file] == 1
        }
        @inline(__always) func contribution(_ weight: Float, _ tf: UInt16, _ id: Int) -> Float {
            let tf = Float(tf)
            return weight * tf / (tf + constant + lengthFactor * Float(lengths[id]))
        }
        /// The k-th best of `scores` over `ids` if it is above `floor` (else −∞): only scores above `floor` enter
        /// the heap, which is all `max(floor, kth)` needs.
        func kth(_ ids: [UInt32], _ scores: [Float], above floor: Float) -> Float {
            guard ids.count >= k else { return -.infinity }
            var heap = TopK(k: k)
            for id in ids where scores[Int(id)] > floor { heap.insert(id: id, score: scores[Int(id)]) }
            return heap.isFull ? heap.worstScore ?? -.infinity : -.infinity
        }

        // Phase 1: full scoring while a new chunk could still enter the top-k.
        var partial = scratch.take(count: lengths.count)
        var touched: [UInt32] = []
        defer { scratch.give(&partial, touched: touched) }
        var threshold = -Float.infinity
        var best: Float = 0  // the highest partial score so far
        var next = 0
        while next < list.count && canReach(0, next, threshold) {
            let term = list[next]
            try snapshot.postings(term.term) { page in
                var offset = 0
                for _ in 0..<(page.count / Store.postingSize) {
                    let (chunk, tf) = Store.posting(page, at: offset)
                    let id = Int(chunk)
                    offset += Store.postingSize
                    guard id < lengths.count, lengths[id] != 0, admitted(id) else { continue }
                    if partial[id] == 0 { touched.append(UInt32(id)) }
                    partial[id] += contribution(term.weight, tf, id)
                    best = max(best, partial[id])
                }
            }
            next += 1
            // θ can stop this phase only once some chunk beats the bounds left (the k-th best costs a pass).
            if best >= rest[next] { threshold = max(threshold, kth(touched, partial, above: threshold)) }
        }

        // Phase 2: the remaining terms only complete the candidates that can still reach θ.
        var candidates = touched.filter { canReach(partial[Int($0)], next, threshold) }
        if next < list.count {
            sortIDs(&candidates, below: lengths.count)
            var isCandidate: [Bool] = []
            while next < list.count && !candidates.isEmpty {
                let term = list[next]
                let cursor = try snapshot.postingCursor(term.term)
                defer { cursor.close() }
                if candidates.count * 8 < cursor.count {
                    // Few candidates: skip to each (whole pages below it are passed by their last id).
                    for id in candidates {
                        try cursor.seek(id)
                        if cursor.chunkID == .max { break }
                        if cursor.chunkID == id { partial[Int(id)] += contribution(term.weight, cursor.tf, Int(id)) }
                    }
                } else {
                    // Many: reading the postings is cheaper than skipping; only candidates are updated.
                    if isCandidate.isEmpty { isCandidate = [Bool](repeating: false, count: lengths.count) }
                    for id in candidates { isCandidate[Int(id)] = true }
                    try snapshot.postings(term.term) { page in
                        var offset = 0
                        for _ in 0..<(page.count / Store.postingSize) {
                            let (chunk, tf) = Store.posting(page, at: offset)
                            let id = Int(chunk)
                            offset += Store.postingSize
                            if id < lengths.count && isCandidate[id] { partial[id] += contribution(term.weight, tf, id) }
                        }
                    }
                    for id in candidates { isCandidate[Int(id)] = false }
                }
                next += 1
                threshold = max(threshold, kth(candidates, partial, above: threshold))
                candidates.removeAll { !canReach(partial[Int($0)], next, threshold) }
            }
        }

        // The survivors' partial scores are complete: every term was added, in `scoringOrder`, as the exhaustive
        // scorer adds them, so they are its scores to the last bit.
        let finalists = candidates.filter { canReach(partial[Int($0)], list.count, threshold) }
        let exact = finalists.map { partial[Int($0)] }
        var heap = TopK(k: k)
        for (i, id) in finalists.enumerated() { heap.insert(id: id, score: exact[i]) }
        return heap.sorted()
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

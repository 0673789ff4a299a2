/// What bounds a term's BM25 contribution in any chunk: the Pareto frontier of its postings' (term frequency,
/// chunk length) pairs, no pair having both a higher frequency and a shorter chunk than another. BM25's term
/// weight grows with the frequency and falls with the length, so its maximum over the postings is reached at a
/// frontier point, whatever k1, b and the average length. Kept up to date on inserts only: after deletions it may
/// be too high, which is still a valid bound. Stored in the `term_bounds` table (term → bytes) for terms in at
/// least `Store.termBoundMinimumPostings` chunks.
public struct TermBound: Sendable, Equatable {
    /// Frontier points, by increasing frequency (and so increasing length).
    public private(set) var points: [(tf: UInt16, length: UInt32)] = []
    /// At most this many points are kept; beyond, neighbours merge into their (higher tf, shorter length) corner.
    static let capacity = 8

    public init() {}

    public static func == (a: TermBound, b: TermBound) -> Bool {
        a.points.count == b.points.count && zip(a.points, b.points).allSatisfy { $0.tf == $1.tf && $0.length == $1.length }
    }

    /// Adds a posting of frequency `tf` in a chunk of `length` terms.
    public mutating func add(tf: UInt16, length: UInt32) {
        let length = max(length, 1)
        // Dominated by a point with tf ≥ and length ≤: nothing to do.
        if points.contains(where: { $0.tf >= tf && $0.length <= length }) { return }
        points.removeAll { $0.tf <= tf && $0.length >= length }
        let at = points.firstIndex { $0.tf > tf } ?? points.count
        points.insert((tf, length), at: at)
        while points.count > TermBound.capacity {
            // Merge the neighbouring pair closest in frequency; the merged corner dominates both.
            var best = 0
            for i in 0..<(points.count - 1) where points[i + 1].tf - points[i].tf < points[best + 1].tf - points[best].tf { best = i }
            let merged = (tf: points[best + 1].tf, length: points[best].length)
            points.replaceSubrange(best...(best + 1), with: [merged])
        }
    }

    public mutating func merge(_ other: TermBound) {
        for p in other.points { add(tf: p.tf, length: p.length) }
    }

    /// The largest `tf / (tf + constant + lengthFactor · length)` over the postings (0 for no postings).
    public func maximum(constant: Float, lengthFactor: Float) -> Float {
        var best: Float = 0
        for p in points {
            let tf = Float(p.tf)
            best = max(best, tf / (tf + constant + lengthFactor * Float(p.length)))
        }
        return best
    }

    func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(points.count * 6)
        for p in points { bytes += [UInt8(p.tf >> 8), UInt8(p.tf & 0xFF)] + beKey(p.length) }
        return bytes
    }

    static func decode(_ bytes: UnsafeRawBufferPointer) -> TermBound? {
        guard bytes.count % 6 == 0 else { return nil }
        var bound = TermBound()
        for o in stride(from: 0, to: bytes.count, by: 6) {
            bound.add(tf: UInt16(bytes[o]) << 8 | UInt16(bytes[o + 1]), length: readBE32(bytes, at: o + 2))
        }
        return bound
    }
}

extension Store {
    /// Terms in fewer chunks than this have no stored bound (most distinct terms are rare; their weight itself
    /// bounds them, and rare terms are scored in full anyway): the table stays small.
    static let termBoundMinimumPostings = 16

    /// Widens the stored bounds by those of the postings this transaction added; a term reaching
    /// `termBoundMinimumPostings` gets its bound computed from all its postings.
    func mergeTermBounds(_ txn: Transaction, _ added: [String: TermBound]) throws {
        for (term, bound) in added {
            let key = Array(term.utf8)
            if var merged = try txn.withValue(termBounds, key: key, { TermBound.decode($0) }) ?? nil {
                let before = merged
                merged.merge(bound)
                if merged != before { try txn.put(termBounds, key: key, value: merged.encoded()) }
            } else if try txn.duplicateCount(postings, key: key) >= Store.termBoundMinimumPostings {
                var full = TermBound()
                try txn.forEachDuplicatePage(postings, key: key) { page in
                    for o in stride(from: 0, to: page.count - Store.postingSize + 1, by: Store.postingSize) {
                        let (id, tf) = Store.posting(page, at: o)
                        let length = try txn.withValue(norms, key: beKey(id)) { readBE32($0, at: 4) } ?? 1
                        full.add(tf: tf, length: length)
                    }
                }
                try txn.put(termBounds, key: key, value: full.encoded())
            }
        }
    }

    /// Recomputes every term's bound from the postings and the chunk lengths in `norms` (upgrade from schema 2).
    static func rebuildTermBounds(_ txn: Transaction, postings: Table, norms: Table, bounds: Table) throws {
        try txn.drop(bounds)
        var lengths: [UInt32] = []
        try txn.forEach(norms) { key, value in
            guard key.count == 4, value.count >= 8 else { return true }
            let id = Int(readBE32(key))
            if id >= lengths.count { lengths += repeatElement(0, count: max(id + 1, lengths.count * 2) - lengths.count) }
            lengths[id] = readBE32(value, at: 4)
            return true
        }
        var terms: [[UInt8]] = []
        try txn.forEachKey(postings) { terms.append(Array($0)) }
        for term in terms where try txn.duplicateCount(postings, key: term) >= Store.termBoundMinimumPostings {
            var bound = TermBound()
            try txn.forEachDuplicatePage(postings, key: term) { page in
                for o in stride(from: 0, to: page.count - Store.postingSize + 1, by: Store.postingSize) {
                    let (id, tf) = Store.posting(page, at: o)
                    bound.add(tf: tf, length: Int(id) < lengths.count ? lengths[Int(id)] : 1)
                }
            }
            try txn.put(bounds, key: term, value: bound.encoded())
        }
    }
}

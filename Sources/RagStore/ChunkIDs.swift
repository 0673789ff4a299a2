import Synchronization
import RagCore

/// Tracks the queries that are running, by the epoch in which each began, so that a chunk id freed by a write is
/// reused only once no query that could have seen its old chunk is still running.
///
/// A query holds its epoch for its whole length (every snapshot and every look at the in-memory table it makes).
/// After a write has committed and updated the in-memory table, the ids it freed are tagged with the current
/// epoch `e` and the epoch advances. A query that began later (epoch > `e`) opened all its snapshots and read the
/// table after that commit, so it can never see the old chunks. Once every query of epoch ≤ `e` has ended, the
/// ids may be given to new chunks.
final class ChunkIDGuard: Sendable {
    private struct State {
        var epoch: UInt64 = 1
        /// Running queries per epoch.
        var active: [UInt64: Int] = [:]
    }
    private let state = Mutex(State())

    func enter() -> UInt64 {
        state.withLock { state in
            state.active[state.epoch, default: 0] += 1
            return state.epoch
        }
    }

    func leave(_ epoch: UInt64) {
        state.withLock { state in
            let remaining = (state.active[epoch] ?? 1) - 1
            state.active[epoch] = remaining > 0 ? remaining : nil
        }
    }

    /// Ends the current epoch and returns it: ids freed by a commit already applied to the in-memory table are
    /// tagged with it.
    func advance() -> UInt64 {
        state.withLock { state in
            defer { state.epoch += 1 }
            return state.epoch
        }
    }

    /// The oldest epoch a running query holds (the current epoch when none runs): ids tagged with an earlier
    /// epoch are safe to reuse.
    var oldestActive: UInt64 {
        state.withLock { state in state.active.keys.min() ?? state.epoch }
    }

    /// Running queries (for tests).
    var running: Int { state.withLock { $0.active.values.reduce(0, +) } }
}

/// What only the writer touches, under `Store.writeLock`: the free chunk ids, the ids waiting for running queries
/// to end, and the embedding-cache bookkeeping (which contents are live, which cached vectors are orphans).
///
/// It is changed in place while a write transaction runs; when the transaction fails it is marked stale and
/// rebuilt from the committed tables before the next write (quarantined ids excepted, as no table records them).
struct WriterState {
    /// True once loaded and while it matches the committed tables.
    var valid = false
    /// Ids below `next_chunk` that no chunk has and no running query can have seen; the lowest is at the end.
    var freeIDs: [UInt32] = []
    /// Ids freed by committed writes, with the epoch they were freed in, oldest first.
    var quarantine: [(epoch: UInt64, ids: [UInt32])] = []
    /// Live chunks per content hash.
    var liveContent: [ContentHash: Int32] = [:]
    /// Orphaned cache entries (embedding key → sequence number in `embedding_orphans`).
    var orphans: [[UInt8]: UInt64] = [:]
    var nextOrphan: UInt64 = 1
    /// Tag of the model whose vectors are cached and orphaned (the configured one, or the one recorded in `meta`).
    var cacheTag: [UInt8]?

    // Scratch of the transaction being written.
    /// Ids whose chunks this transaction removed (quarantined after it commits, never reused inside it).
    var freed: [UInt32] = []
    /// Contents whose live count this transaction changed, with the count before it.
    var contentBefore: [ContentHash: Int32] = [:]
    /// Chunks given a vector in this transaction, whose 4-bit codes are written to `vector_codes` before it commits.
    var codeRows: [VectorCodeRow] = []

    mutating func beginTransaction() {
        freed.removeAll(keepingCapacity: true)
        contentBefore.removeAll(keepingCapacity: true)
        codeRows.removeAll(keepingCapacity: true)
    }

    mutating func contentAdded(_ hash: ContentHash) {
        let count = liveContent[hash] ?? 0
        if contentBefore[hash] == nil { contentBefore[hash] = count }
        liveContent[hash] = count + 1
    }

    mutating func contentRemoved(_ hash: ContentHash) {
        let count = liveContent[hash] ?? 0
        if contentBefore[hash] == nil { contentBefore[hash] = count }
        liveContent[hash] = count > 1 ? count - 1 : nil
    }

    func isLive(_ hash: ContentHash) -> Bool { liveContent[hash] != nil }

    /// Moves quarantined ids that no running query can have seen to the free list.
    mutating func reclaim(oldestActive: UInt64) {
        var released = 0
        for entry in quarantine {
            guard entry.epoch < oldestActive else { break }
            freeIDs.append(contentsOf: entry.ids)
            released += 1
        }
        if released > 0 { quarantine.removeFirst(released) }
    }

    var quarantinedIDs: Int { quarantine.reduce(0) { $0 + $1.ids.count } }
}

extension Store {
    /// Runs `body` (one query: any number of snapshots and looks at the chunk table) with chunk ids pinned:
    /// an id freed meanwhile is not given to a new chunk before `body` returns, so within `body` an id never
    /// names two different chunks.
    public func withPinnedChunkIDs<T>(_ body: () throws -> T) rethrows -> T {
        let epoch = idGuard.enter()
        defer { idGuard.leave(epoch) }
        return try body()
    }

    /// Free chunk ids (reusable now) and ids waiting for running queries to end; for tests and status.
    public var chunkIDUsage: (free: Int, quarantined: Int, next: UInt32) {
        let (free, quarantined) = withLoadedWriterState { ($0.freeIDs.count, $0.quarantinedIDs) }
        let next = (try? env.withReadTransaction { txn in
            try txn.get(meta, key: Array("next_chunk".utf8)).map { $0.withUnsafeBytes { readBE32($0) } }
        }) ?? nil
        return (free, quarantined, next ?? 1)
    }

    /// Orphaned vectors in the embedding cache and the most kept.
    public var embeddingCacheOrphans: (count: Int, limit: Int) {
        (withLoadedWriterState { $0.orphans.count }, configuration.embeddingCacheOrphans)
    }

    /// Reads the writer's state, loading it first if no write has yet (it is loaded lazily after an open).
    func withLoadedWriterState<T>(_ body: (WriterState) -> T) -> T {
        if let value = writeLock.read({ $0.valid ? body($0) : nil }) { return value }
        return writeLock.write { state in
            if !state.valid { try? loadWriterState(&state) }
            return body(state)
        }
    }

    /// Rebuilds the writer's state from the committed tables: the free ids (below `next_chunk`, absent from
    /// `norms`, not quarantined), the live contents, the orphan list and the cache's model tag.
    func loadWriterState(_ state: inout WriterState) throws {
        let quarantined = Set(state.quarantine.flatMap(\.ids))
        var live: [ContentHash: Int32] = [:]
        var used: [Bool] = []
        var orphans: [[UInt8]: UInt64] = [:]
        var nextOrphan: UInt64 = 1
        var tag: [UInt8]?
        var next: UInt32 = 1
        try env.withReadTransaction { txn in
            next = try txn.get(meta, key: Array("next_chunk".utf8)).map { $0.withUnsafeBytes { readBE32($0) } } ?? 1
            used = [Bool](repeating: false, count: Int(next))
            try txn.forEach(norms) { key, value in
                guard key.count == 4 else { return true }
                let id = Int(readBE32(key))
                if id < used.count { used[id] = true }
                if value.count == 40 { live[ContentHash(bytes: Array(value[8..<40])), default: 0] += 1 }
                return true
            }
            try txn.forEach(embeddingOrphans) { key, value in
                guard key.count == 8 else { return true }
                let seq = key.loadUnaligned(as: UInt64.self).bigEndian
                orphans[Array(value)] = seq
                nextOrphan = max(nextOrphan, seq + 1)
                return true
            }
            if let model = try txn.get(meta, key: Array("model".utf8)) {
                tag = Array(SHA256.hash(model).bytes.prefix(4))
            }
        }
        var free: [UInt32] = []
        if used.count > 1 {
            for id in stride(from: used.count - 1, through: 1, by: -1) where !used[id] && !quarantined.contains(UInt32(id)) {
                free.append(UInt32(id))
            }
        }
        state.freeIDs = free
        state.liveContent = live
        state.orphans = orphans
        state.nextOrphan = nextOrphan
        state.cacheTag = model.read { $0?.tag } ?? tag
        state.beginTransaction()
        state.valid = true
    }

    /// A chunk id for a new chunk: the lowest free one, else the next from the counter.
    func allocateChunkID(_ txn: Transaction, _ state: inout WriterState) throws -> UInt32 {
        if let id = state.freeIDs.popLast() { return id }
        return try nextID(txn, "next_chunk")
    }

    /// After a commit that freed ids, and after the in-memory table was updated: quarantines them until the
    /// queries running now have ended.
    func retireFreedIDs(_ state: inout WriterState) {
        guard !state.freed.isEmpty else { return }
        state.quarantine.append((idGuard.advance(), state.freed))
        state.freed = []
        // With no query running they are free at once (for the next transaction).
        state.reclaim(oldestActive: idGuard.oldestActive)
    }

    /// At the end of a write transaction: contents no live chunk has any more become orphans in the cache (when it
    /// holds their vector), contents that returned stop being orphans, and the oldest orphans beyond the limit are
    /// deleted.
    func settleEmbeddingCache(_ txn: Transaction, _ state: inout WriterState) throws {
        if let tag = state.cacheTag {
            for hash in state.contentBefore.keys {
                let key = tag + hash.bytes
                if state.isLive(hash) {
                    if let seq = state.orphans.removeValue(forKey: key) { try txn.delete(embeddingOrphans, key: Store.orphanKey(seq)) }
                } else {
                    try addOrphan(txn, key: key, &state, checkCached: true)
                }
            }
        }
        try evictOrphans(txn, &state)
    }

    /// Records `key` (model tag + content hash) as an orphan, newest, unless it is one already or (with
    /// `checkCached`) the cache has no vector under it.
    func addOrphan(_ txn: Transaction, key: [UInt8], _ state: inout WriterState, checkCached: Bool) throws {
        guard state.orphans[key] == nil else { return }
        if checkCached, try txn.withValue(embeddings, key: key, { _ in true }) == nil { return }
        let seq = state.nextOrphan
        state.nextOrphan += 1
        try txn.put(embeddingOrphans, key: Store.orphanKey(seq), value: key)
        state.orphans[key] = seq
    }

    /// Deletes the oldest orphans beyond `embeddingCacheOrphans` (their vectors too, unless their content is live
    /// again): a cursor from the start of `embedding_orphans`, so the cost is the number evicted.
    func evictOrphans(_ txn: Transaction, _ state: inout WriterState) throws {
        let excess = state.orphans.count - configuration.embeddingCacheOrphans
        guard excess > 0 else { return }
        var victims: [([UInt8], [UInt8])] = []
        victims.reserveCapacity(excess)
        try txn.forEach(embeddingOrphans) { key, value in
            victims.append((Array(key), Array(value)))
            return victims.count < excess
        }
        for (seqKey, key) in victims {
            try txn.delete(embeddingOrphans, key: seqKey)
            state.orphans[key] = nil
            if key.count == 36 && !state.isLive(ContentHash(bytes: Array(key[4...]))) {
                try txn.delete(embeddings, key: key)
            }
        }
    }

    static func orphanKey(_ seq: UInt64) -> [UInt8] {
        withUnsafeBytes(of: seq.bigEndian) { Array($0) }
    }

    /// Once per index (marked by `meta.orphans`): an index written before orphans were tracked has every cached
    /// vector whose content no live chunk has recorded as an orphan (then the oldest beyond the limit are evicted).
    /// Also lowers `next_chunk` to just above the highest live id, so the free list starts compact.
    /// Costs one read transaction when there is nothing to do (the writer state is then left to the first write).
    func maintainOnOpen(_ state: inout WriterState) throws {
        let marker = Array("orphans".utf8)
        // The chunk table was loaded from `norms`: its highest live id.
        let highest: UInt32 = memory.read { table in
            var id = table.lengths.count - 1
            while id > 0 && table.lengths[id] == 0 { id -= 1 }
            return UInt32(max(id, 0))
        }
        let needed: Bool = try env.withReadTransaction { txn in
            let next = try txn.get(meta, key: Array("next_chunk".utf8)).map { $0.withUnsafeBytes { readBE32($0) } } ?? 1
            let marked = try txn.get(meta, key: marker) != nil
            return next > highest + 1 || !marked
        }
        guard needed else { return }
        let limit = configuration.maxMapSize + Store.deletionReserve(configuration.maxMapSize)
        try growingMap(limit: limit) {
            if !state.valid { try loadWriterState(&state) }
            state.beginTransaction()
            do {
                try env.withWriteTransaction { txn in
                    let next = try txn.get(meta, key: Array("next_chunk".utf8)).map { $0.withUnsafeBytes { readBE32($0) } } ?? 1
                    if next > highest + 1 {
                        try txn.put(meta, key: Array("next_chunk".utf8), value: beKey(highest + 1))
                        state.freeIDs.removeAll { $0 > highest }
                    }
                    if try txn.get(meta, key: marker) == nil {
                        var found: [[UInt8]] = []
                        try txn.forEach(embeddings) { key, _ in
                            if key.count == 36 && !state.isLive(ContentHash(bytes: Array(key[4...]))) { found.append(Array(key)) }
                            return true
                        }
                        for key in found { try addOrphan(txn, key: key, &state, checkCached: false) }
                        try evictOrphans(txn, &state)
                        try txn.put(meta, key: marker, value: beKey(1))
                    }
                }
            } catch {
                state.valid = false
                throw error
            }
        }
    }
}

import CLMDB

/// Walks one term's postings in chunk-id order, a page at a time, and can skip ahead (`seek`), for dynamic pruning.
/// Valid only inside the `Store.withSnapshot` call that made it; call `close()` before that call returns.
public final class PostingCursor {
    private var cursor: OpaquePointer?
    private let key: [UInt8]
    /// The current page of `[chunk id BE32][tf BE16]` entries (memory of the read transaction).
    private var page = UnsafeRawBufferPointer(start: nil, count: 0)
    private var entries = 0
    private var index = 0
    /// The current chunk id (`UInt32.max` once exhausted).
    public private(set) var chunkID: UInt32 = .max
    /// The current term frequency.
    public private(set) var tf: UInt16 = 0
    /// Number of postings of the term (its document frequency).
    public let count: Int

    init(_ txn: Transaction, table: Table, term: String) throws {
        let key = Array(term.utf8)
        var handle: OpaquePointer?
        try check(mdb_cursor_open(txn.handle, table.dbi, &handle))
        var data = MDB_val()
        let rc = key.withUnsafeBytes { k -> Int32 in
            var keyVal = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
            return mdb_cursor_get(handle, &keyVal, &data, MDB_SET)
        }
        var n = 0
        if rc == 0 {
            let counted = mdb_cursor_count(handle, &n)
            if counted != 0 { mdb_cursor_close(handle); try check(counted) }
        }
        self.key = key
        self.cursor = handle
        self.count = n
        if rc == MDB_NOTFOUND {
            close()
            return
        }
        try check(rc)
        try loadPage(MDB_GET_MULTIPLE)
        setCurrent()
    }

    deinit { close() }

    /// Releases the LMDB cursor (before the snapshot ends).
    public func close() {
        if let cursor { mdb_cursor_close(cursor) }
        cursor = nil
        chunkID = .max
    }

    /// Moves to the next posting.
    public func next() throws {
        guard chunkID != .max else { return }
        index += 1
        if index >= entries { try loadPage(MDB_NEXT_MULTIPLE) }
        setCurrent()
    }

    /// Moves to the first posting whose chunk id is ≥ `target` (staying put when already there): skips whole pages
    /// by their last id, or descends to a far one, then binary-searches the page.
    public func seek(_ target: UInt32) throws {
        guard chunkID < target else { return }
        if entries > 1 && id(at: entries - 1) < target {
            // LMDB steps to the next leaf page cheaply, and a descent from the root costs about as much as several
            // steps: a target more than `farPages` pages' worth of ids ahead is reached by a descent.
            let last = id(at: entries - 1)
            let span = max(UInt64(last - id(at: 0)), UInt64(entries))
            if UInt64(target - last) > PostingCursor.farPages * span { try descend(to: target) }
        }
        while entries > 0 && id(at: entries - 1) < target {
            try loadPage(MDB_NEXT_MULTIPLE)
        }
        // Binary search for the first id ≥ target from the current entry.
        var low = index, high = entries
        while low < high {
            let mid = (low + high) / 2
            if id(at: mid) < target { low = mid + 1 } else { high = mid }
        }
        index = low
        if index >= entries && entries > 0 { try loadPage(MDB_NEXT_MULTIPLE) }
        setCurrent()
    }

    /// Calls `body` with the position in `ids` (ascending) and the term frequency of each of them that has a posting.
    public func forEachPosting(of ids: [UInt32], _ body: (Int, UInt16) -> Void) throws {
        for (i, id) in ids.enumerated() {
            try seek(id)
            if chunkID == .max { return }
            if chunkID == id { body(i, tf) }
        }
    }

    /// Beyond this many pages' worth of ids, `seek` descends the tree instead of stepping page by page.
    static let farPages: UInt64 = 8

    /// Loads the page holding the first posting with an id ≥ `target` (none left: exhausted).
    private func descend(to target: UInt32) throws {
        guard let cursor else { return }
        var probe = beKey(target) + [0, 0]  // the smallest posting entry of chunk `target`
        let rc = key.withUnsafeBytes { k in
            probe.withUnsafeMutableBytes { p in
                var keyVal = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
                var data = MDB_val(mv_size: p.count, mv_data: p.baseAddress)
                return mdb_cursor_get(cursor, &keyVal, &data, MDB_GET_BOTH_RANGE)
            }
        }
        if rc == MDB_NOTFOUND {
            index = 0
            entries = 0
            return
        }
        try check(rc)
        try loadPage(MDB_GET_MULTIPLE)  // the whole page around the cursor; NEXT_MULTIPLE goes on after it
    }

    @inline(__always) private func id(at i: Int) -> UInt32 {
        Store.posting(page, at: i * Store.postingSize).id
    }

    private func loadPage(_ op: MDB_cursor_op) throws {
        index = 0
        entries = 0
        guard let cursor else { return }
        var keyVal = MDB_val(), data = MDB_val()
        if op == MDB_GET_MULTIPLE {
            // A key with a single value has no duplicate page: GET_MULTIPLE then leaves `data` as it was.
            try check(mdb_cursor_get(cursor, &keyVal, &data, MDB_GET_CURRENT))
        }
        let rc = mdb_cursor_get(cursor, &keyVal, &data, op)
        if rc == MDB_NOTFOUND { return }
        try check(rc)
        page = UnsafeRawBufferPointer(start: data.mv_data, count: data.mv_size)
        entries = data.mv_size / Store.postingSize
    }

    @inline(__always) private func setCurrent() {
        guard index < entries else {
            chunkID = .max
            return
        }
        (chunkID, tf) = Store.posting(page, at: index * Store.postingSize)
    }
}

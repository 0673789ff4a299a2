import CLMDB
import Glibc
import Synchronization

/// A return code of the LMDB C library (`MDB_*` or an errno).
public struct LMDBError: Error, RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    /// The corresponding C constant is `MDB_NOTFOUND`.
    public static let notFound = LMDBError(rawValue: MDB_NOTFOUND)
    /// The corresponding C constant is `MDB_MAP_FULL`.
    public static let mapFull = LMDBError(rawValue: MDB_MAP_FULL)
    /// The corresponding C constant is `MDB_KEYEXIST`.
    public static let keyExists = LMDBError(rawValue: MDB_KEYEXIST)
    /// The corresponding C constant is `MDB_VERSION_MISMATCH`.
    public static let versionMismatch = LMDBError(rawValue: MDB_VERSION_MISMATCH)
    public var description: String { String(cString: mdb_strerror(rawValue)) + " (\(rawValue))" }
}

@inline(__always)
func check(_ rc: Int32) throws(LMDBError) {
    if rc != 0 { throw LMDBError(rawValue: rc) }
}

/// How a table stores values.
public struct TableFlags: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Several sorted values per key. The corresponding C flag is `MDB_DUPSORT`.
    public static var sortedDuplicates: Self { Self(rawValue: UInt32(MDB_DUPSORT)) }
    /// Duplicates all have the same size. The corresponding C flag is `MDB_DUPFIXED`.
    public static var fixedSizeDuplicates: Self { Self(rawValue: UInt32(MDB_DUPFIXED)) }
}

/// An LMDB environment (`MDB_env*`, which is safe to share between threads).
///
/// Every transaction holds `gate` shared for its lifetime, so that `setMapSize` (which LMDB allows only while no
/// transaction of this process is active) can take it exclusively. The lock prefers readers, so a transaction
/// that begins another one on the same thread cannot deadlock against a waiting resize.
final class LMDBEnvironment: @unchecked Sendable {
    let handle: OpaquePointer
    private let gate = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)
    /// Threads waiting in `setMapSize` for the gate (for tests).
    let resizesWaiting = Atomic<Int>(0)

    init(directory: String, mapSize: Int, maxTables: UInt32) throws(LMDBError) {
        var env: OpaquePointer?
        try check(mdb_env_create(&env))
        guard let env else { throw LMDBError(rawValue: ENOMEM) }
        do {
            try check(mdb_env_set_maxdbs(env, maxTables))
            try check(mdb_env_set_mapsize(env, mapSize))
            try check(mdb_env_set_maxreaders(env, 256))
            // MDB_NOTLS: read transactions are not tied to the thread that began them (we use thread pools).
            try check(mdb_env_open(env, directory, UInt32(MDB_NOTLS | MDB_NORDAHEAD), 0o600))
        } catch {
            mdb_env_close(env)
            throw error
        }
        handle = env
        pthread_rwlock_init(gate, nil)
    }

    deinit {
        mdb_env_close(handle)
        pthread_rwlock_destroy(gate)
        gate.deallocate()
    }

    /// Changes the map size: waits until no transaction of this process is active (new ones wait meanwhile).
    /// Must not be called from inside a transaction.
    func setMapSize(_ bytes: Int) throws(LMDBError) {
        resizesWaiting.add(1, ordering: .relaxed)
        pthread_rwlock_wrlock(gate)
        resizesWaiting.subtract(1, ordering: .relaxed)
        defer { pthread_rwlock_unlock(gate) }
        try check(mdb_env_set_mapsize(handle, bytes))
    }

    /// Bytes of the map in use: the last page written plus one, times the page size.
    var usedBytes: Int {
        var info = MDB_envinfo()
        var stat = MDB_stat()
        mdb_env_info(handle, &info)
        mdb_env_stat(handle, &stat)
        return (info.me_last_pgno + 1) * Int(stat.ms_psize)
    }

    var mapSize: Int {
        var info = MDB_envinfo()
        mdb_env_info(handle, &info)
        return info.me_mapsize
    }

    /// Copies the environment to `directory` (compacted), consistent while writers continue: LMDB copies from a read
    /// transaction, so the gate is held shared meanwhile and a `setMapSize` waits for the copy. `whileHoldingGate`
    /// runs first, with the gate held (for tests).
    func copy(to directory: String, whileHoldingGate: () -> Void = {}) throws(LMDBError) {
        pthread_rwlock_rdlock(gate)
        defer { pthread_rwlock_unlock(gate) }
        whileHoldingGate()
        try check(mdb_env_copy2(handle, directory, UInt32(MDB_CP_COMPACT)))
    }

    func sync() throws(LMDBError) { try check(mdb_env_sync(handle, 1)) }

    /// Runs `body` in a read-only transaction that ends when it returns.
    func withReadTransaction<T>(_ body: (Transaction) throws -> T) throws -> T {
        pthread_rwlock_rdlock(gate)
        defer { pthread_rwlock_unlock(gate) }
        var txn: OpaquePointer?
        try check(mdb_txn_begin(handle, nil, UInt32(MDB_RDONLY), &txn))
        defer { mdb_txn_abort(txn) }
        return try body(Transaction(handle: txn!))
    }

    /// Runs `body` in a write transaction, committed when it returns and aborted when it throws.
    func withWriteTransaction<T>(_ body: (Transaction) throws -> T) throws -> T {
        pthread_rwlock_rdlock(gate)
        defer { pthread_rwlock_unlock(gate) }
        var txn: OpaquePointer?
        try check(mdb_txn_begin(handle, nil, 0, &txn))
        let result: T
        do {
            result = try body(Transaction(handle: txn!))
        } catch {
            mdb_txn_abort(txn)
            throw error
        }
        try check(mdb_txn_commit(txn))
        return result
    }
}

/// A table (`MDB_dbi`) opened once at start-up.
struct Table: Sendable {
    let dbi: MDB_dbi
}

/// A transaction, valid only inside the closure that received it and on that closure's thread.
struct Transaction {
    let handle: OpaquePointer

    func openTable(_ name: String, flags: TableFlags = [], create: Bool) throws(LMDBError) -> Table {
        var dbi: MDB_dbi = 0
        try check(mdb_dbi_open(handle, name, flags.rawValue | (create ? UInt32(MDB_CREATE) : 0), &dbi))
        return Table(dbi: dbi)
    }

    /// Calls `body` with the value stored under `key` (bytes valid only inside `body`), or returns nil.
    func withValue<T>(_ table: Table, key: [UInt8], _ body: (UnsafeRawBufferPointer) throws -> T) throws -> T? {
        var data = MDB_val()
        let rc = key.withUnsafeBytes { k -> Int32 in
            var keyVal = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
            return mdb_get(handle, table.dbi, &keyVal, &data)
        }
        if rc == MDB_NOTFOUND { return nil }
        try check(rc)
        return try body(UnsafeRawBufferPointer(start: data.mv_data, count: data.mv_size))
    }

    func get(_ table: Table, key: [UInt8]) throws -> [UInt8]? {
        try withValue(table, key: key) { Array($0) }
    }

    func put(_ table: Table, key: [UInt8], value: [UInt8], flags: UInt32 = 0) throws(LMDBError) {
        let rc = key.withUnsafeBytes { k in
            value.withUnsafeBytes { v -> Int32 in
                var keyVal = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
                var valVal = MDB_val(mv_size: v.count, mv_data: UnsafeMutableRawPointer(mutating: v.baseAddress))
                return mdb_put(handle, table.dbi, &keyVal, &valVal, flags)
            }
        }
        try check(rc)
    }

    /// Deletes `key` (all its duplicates when `value` is nil); returns false when nothing matched.
    @discardableResult
    func delete(_ table: Table, key: [UInt8], value: [UInt8]? = nil) throws(LMDBError) -> Bool {
        let rc = key.withUnsafeBytes { k -> Int32 in
            var keyVal = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
            if let value {
                return value.withUnsafeBytes { v -> Int32 in
                    var valVal = MDB_val(mv_size: v.count, mv_data: UnsafeMutableRawPointer(mutating: v.baseAddress))
                    return mdb_del(handle, table.dbi, &keyVal, &valVal)
                }
            }
            return mdb_del(handle, table.dbi, &keyVal, nil)
        }
        if rc == MDB_NOTFOUND { return false }
        try check(rc)
        return true
    }

    func drop(_ table: Table) throws(LMDBError) {
        try check(mdb_drop(handle, table.dbi, 0))
    }

    /// Visits every (key, value) of `table` in key order; `body` returns false to stop.
    func forEach(_ table: Table, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool) throws {
        try walk(table, step: MDB_NEXT, body)
    }

    /// Visits each distinct key of a duplicates table once, in key order.
    func forEachKey(_ table: Table, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        try walk(table, step: MDB_NEXT_NODUP) { key, _ in try body(key); return true }
    }

    /// Walks `table` from its first entry, moving by `step`; `body` returns false to stop.
    private func walk(_ table: Table, step: MDB_cursor_op,
                      _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool) throws {
        var cursor: OpaquePointer?
        try check(mdb_cursor_open(handle, table.dbi, &cursor))
        defer { mdb_cursor_close(cursor) }
        var key = MDB_val(), data = MDB_val()
        var op = MDB_FIRST
        while true {
            let rc = mdb_cursor_get(cursor, &key, &data, op)
            if rc == MDB_NOTFOUND { return }
            try check(rc)
            let goOn = try body(UnsafeRawBufferPointer(start: key.mv_data, count: key.mv_size),
                                UnsafeRawBufferPointer(start: data.mv_data, count: data.mv_size))
            if !goOn { return }
            op = step
        }
    }

    /// Visits (key, value) pairs in key order starting at the first key ≥ `start`; `body` returns false to stop.
    func forEach(_ table: Table, from start: [UInt8], _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool) throws {
        var cursor: OpaquePointer?
        try check(mdb_cursor_open(handle, table.dbi, &cursor))
        defer { mdb_cursor_close(cursor) }
        var key = MDB_val(), data = MDB_val()
        var rc = start.withUnsafeBytes { k -> Int32 in
            key = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
            return mdb_cursor_get(cursor, &key, &data, MDB_SET_RANGE)
        }
        while rc == 0 {
            let goOn = try body(UnsafeRawBufferPointer(start: key.mv_data, count: key.mv_size),
                                UnsafeRawBufferPointer(start: data.mv_data, count: data.mv_size))
            if !goOn { return }
            rc = mdb_cursor_get(cursor, &key, &data, MDB_NEXT)
        }
        if rc != MDB_NOTFOUND { try check(rc) }
    }

    /// For a `fixedSizeDuplicates` table: the number of values under `key` and a visit of them a page at a time
    /// (each call of `body` gets a buffer holding a whole number of values). Returns 0 when the key is absent.
    @discardableResult
    func forEachDuplicatePage(_ table: Table, key: [UInt8], _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Int {
        var cursor: OpaquePointer?
        try check(mdb_cursor_open(handle, table.dbi, &cursor))
        defer { mdb_cursor_close(cursor) }
        var data = MDB_val()
        let found = try key.withUnsafeBytes { k -> Bool in
            var keyVal = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
            let rc = mdb_cursor_get(cursor, &keyVal, &data, MDB_SET)
            if rc == MDB_NOTFOUND { return false }
            try check(rc)
            return true
        }
        guard found else { return 0 }
        var count: Int = 0
        try check(mdb_cursor_count(cursor, &count))
        var keyVal = MDB_val()
        var rc = mdb_cursor_get(cursor, &keyVal, &data, MDB_GET_MULTIPLE)
        while rc == 0 {
            try body(UnsafeRawBufferPointer(start: data.mv_data, count: data.mv_size))
            rc = mdb_cursor_get(cursor, &keyVal, &data, MDB_NEXT_MULTIPLE)
        }
        if rc != MDB_NOTFOUND { try check(rc) }
        return count
    }

    /// The number of values stored under `key` in a duplicates table (0 when absent).
    func duplicateCount(_ table: Table, key: [UInt8]) throws -> Int {
        var cursor: OpaquePointer?
        try check(mdb_cursor_open(handle, table.dbi, &cursor))
        defer { mdb_cursor_close(cursor) }
        var data = MDB_val()
        let rc = key.withUnsafeBytes { k -> Int32 in
            var keyVal = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
            return mdb_cursor_get(cursor, &keyVal, &data, MDB_SET)
        }
        if rc == MDB_NOTFOUND { return 0 }
        try check(rc)
        var count: Int = 0
        try check(mdb_cursor_count(cursor, &count))
        return count
    }
}

import CLMDB
import Glibc
import RagCore
import Synchronization

/// Errors of the store, with a stable code and a message for operators.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: String { case mapFull, schemaMismatch, corrupted, io, locked }
        private let wrapped: Wrapped
        public static var mapFull: Self { Self(wrapped: .mapFull) }
        public static var schemaMismatch: Self { Self(wrapped: .schemaMismatch) }
        public static var corrupted: Self { Self(wrapped: .corrupted) }
        public static var io: Self { Self(wrapped: .io) }
        public static var locked: Self { Self(wrapped: .locked) }
        public var description: String { wrapped.rawValue }
    }
    public var code: Code
    public var message: String
    public var cause: (any Error & Sendable)?
    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }
    public var description: String { "\(message)" + (cause.map { " (\($0))" } ?? "") }
}

/// Store settings.
public struct StoreConfiguration: Sendable {
    /// LMDB map size in bytes at start (raised to the size of an existing, larger index).
    public var mapSize: Int
    /// The most the map may grow to: a write that finds the map full doubles it (up to this) and is retried; at
    /// this size it fails with `StoreError.Code.mapFull`.
    public var maxMapSize: Int
    /// Called (on the writing thread) after each growth of the map, with the old and new sizes in bytes.
    public var onMapResize: (@Sendable (_ from: Int, _ to: Int) -> Void)?
    /// Orphaned vectors kept in the embedding cache (vectors of contents that no live chunk has, so that a text that
    /// returns is not embedded again); beyond it the oldest orphans are deleted.
    public var embeddingCacheOrphans: Int
    /// Default of `embeddingCacheOrphans` (about 15 MiB of 384-dimension vectors).
    public static let defaultEmbeddingCacheOrphans = 10_000
    public init(mapSize: Int = 4 << 30, maxMapSize: Int? = nil, embeddingCacheOrphans: Int = StoreConfiguration.defaultEmbeddingCacheOrphans,
                onMapResize: (@Sendable (Int, Int) -> Void)? = nil) {
        self.mapSize = mapSize
        self.maxMapSize = max(mapSize, maxMapSize ?? mapSize)
        self.embeddingCacheOrphans = max(0, embeddingCacheOrphans)
        self.onMapResize = onMapResize
    }
}

/// One chunk of a file being indexed, with its analyzed terms.
public struct PreparedChunk: Sendable {
    public var text: String
    public var lines: ClosedRange<Int>
    public var headings: [String]
    public var contentHash: ContentHash
    /// Distinct terms and their frequencies (capped at 65,535).
    public var termFrequencies: [String: UInt16]
    public var length: UInt32

    /// Analyzes the chunk: the heading trail is indexed together with the text, so section titles match.
    public init(text: String, lines: ClosedRange<Int>, headings: [String], analyzer: Analyzer) {
        self.text = text
        self.lines = lines
        self.headings = headings
        var hasher = SHA256()
        for heading in headings {
            hasher.update(Array(heading.utf8))
            hasher.update([0x1F])
        }
        hasher.update([0x1E])
        hasher.update(Array(text.utf8))
        self.contentHash = hasher.finalize()
        let (frequencies, length) = PreparedChunk.analyze(text: text, headings: headings, analyzer: analyzer)
        self.termFrequencies = frequencies
        self.length = length
    }

    static func analyze(text: String, headings: [String], analyzer: Analyzer) -> ([String: UInt16], UInt32) {
        var frequencies: [String: UInt16] = [:]
        var length: UInt32 = 0
        func add(_ terms: [String]) {
            for term in terms where term.utf8.count <= Store.maximumTermBytes {
                let count = frequencies[term, default: 0]
                if count < UInt16.max { frequencies[term] = count + 1 }
                length += 1
            }
        }
        // The whole trail is indexed with every chunk; the innermost heading only when the text does not
        // already start with it (the first chunk of a section begins with its heading line).
        var trailHeadings = headings[...]
        if let last = headings.last, let firstLine = text.split(separator: "\n", maxSplits: 1).first, firstLine.contains(last) {
            trailHeadings = headings.dropLast()
        }
        let trail = trailHeadings.joined(separator: "\n")
        if !trail.isEmpty { add(analyzer.terms(trail)) }
        add(analyzer.terms(text))
        return (frequencies, length)
    }
}

/// A file ready to be written: everything computed off the writer thread.
public struct PreparedFile: Sendable {
    public var path: String
    public var size: UInt64
    public var mtimeNanos: Int64
    public var contentHash: ContentHash
    public var title: String?
    public var tags: [String]
    public var chunks: [PreparedChunk]
    public init(path: String, size: UInt64, mtimeNanos: Int64, contentHash: ContentHash, title: String?, tags: [String], chunks: [PreparedChunk]) {
        self.path = path
        self.size = size
        self.mtimeNanos = mtimeNanos
        self.contentHash = contentHash
        self.title = title
        self.tags = tags
        self.chunks = chunks
    }
}

/// One change to apply in a write transaction.
public enum IndexChange: Sendable {
    /// Insert or replace a file's chunks (chunks whose content hash is unchanged keep their ids).
    case upsert(PreparedFile)
    /// Only the size and mtime changed (content hash confirmed equal).
    case touch(path: String, size: UInt64, mtimeNanos: Int64)
    case delete(path: String)
    /// A rename: the file's chunks, vectors and postings stay; only its path changes. A file already indexed
    /// at `to` is replaced. Nothing happens when `from` is not indexed.
    case move(from: String, to: String)
}

/// What a write did, for logs and counters.
public struct WriteSummary: Sendable, Equatable {
    public var filesWritten = 0
    public var filesDeleted = 0
    public var chunksAdded = 0
    public var chunksKept = 0
    public var chunksRemoved = 0
    public var filesMoved = 0
    public init() {}
}

/// The LMDB-backed index: files, chunks, postings and statistics in one environment.
///
/// Tables: `meta` (schema and analyzer versions, id counters), `paths` (path key → file id),
/// `files` (file id → `FileRecord`), `chunks` (chunk id → `ChunkRecord`), `norms` (chunk id → file id and length),
/// `postings` (term → sorted fixed-size duplicates `[chunk id: UInt32 BE][tf: UInt16 BE]`), `embeddings` (model tag +
/// content hash → vector), `embedding_orphans` (sequence → embeddings key of a content no live chunk has),
/// `term_bounds` (term → `TermBound`, for BM25 pruning). Ids are
/// big-endian. Chunk ids are reused (see `ChunkIDGuard`); orphaned vectors are bounded by `embeddingCacheOrphans`.
public final class Store: Sendable {
    /// Layout version of the tables; bumped on incompatible changes. 3 added `term_bounds` (an index of schema 2
    /// is upgraded in place at open); 4 stores vectors as float16 (the float32 vectors of an index of schema 2 or 3
    /// stay readable, so it is only relabelled; a ragd of schema 3 refuses an index of schema 4).
    public static let schemaVersion: UInt32 = 4
    /// Longest term stored (LMDB keys are limited to 511 bytes; the analyzer emits far shorter ones).
    public static let maximumTermBytes = 128
    /// Size of one posting entry.
    public static let postingSize = 6

    /// The posting entry at byte `offset` of a postings page: `[chunk id BE32][tf BE16]`.
    @inlinable @inline(__always)
    public static func posting(_ page: UnsafeRawBufferPointer, at offset: Int) -> (id: UInt32, tf: UInt16) {
        (UInt32(page[offset]) << 24 | UInt32(page[offset + 1]) << 16 | UInt32(page[offset + 2]) << 8 | UInt32(page[offset + 3]),
         UInt16(page[offset + 4]) << 8 | UInt16(page[offset + 5]))
    }

    let env: LMDBEnvironment
    let meta: Table, paths: Table, files: Table, chunks: Table, norms: Table, postings: Table, embeddings: Table
    /// Per term, the frontier bounding its BM25 weight (`TermBound`), for dynamic pruning.
    let termBounds: Table
    /// Blocks of 4-bit vector codes (`VectorCodes.swift`), read at start-up instead of every stored vector.
    let vectorCodes: Table
    /// How the last `configureModel` filled the vector index.
    public let lastVectorLoad = Mutex(VectorLoad(copied: 0, quantised: 0))
    /// Orphaned embedding-cache entries, oldest first: sequence number (UInt64 BE) → embedding key.
    let embeddingOrphans: Table
    /// The embedding model in use: its 4-byte tag (first bytes of SHA-256 of its id) and dimension.
    let model = ReadWriteLocked<(id: String, tag: [UInt8], dimensions: Int)?>(nil)
    public let directory: String
    let memory: ReadWriteLocked<ChunkTable>
    /// Held (exclusively) by every write; guards the writer's state (free ids, embedding-cache bookkeeping).
    let writeLock = ReadWriteLocked(WriterState())
    /// The queries running now, so that freed chunk ids are reused only when none of them can have seen the old chunk.
    let idGuard = ChunkIDGuard()
    /// Whether a backup is running (one at a time).
    let backupRunning = Mutex(false)
    private let analyzer = Analyzer()
    let configuration: StoreConfiguration

    /// Opens (creating if needed) the index in `directory`. Refuses an index of another schema or analyzer version.
    public init(directory: String, configuration: StoreConfiguration = .init()) throws {
        self.directory = directory
        self.configuration = configuration
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw StoreError(.io, "cannot create index directory \(directory): \(String(cString: strerror(errno)))")
        }
        do {
            env = try LMDBEnvironment(directory: directory, mapSize: configuration.mapSize, maxTables: 16)
        } catch {
            throw StoreError(.io, "cannot open the LMDB index in \(directory)", cause: error)
        }
        var tables: [Table] = []
        let analyzerVersion = UInt32(Analyzer.version)
        do {
            try env.withWriteTransaction { txn in
                for (name, flags) in [("meta", TableFlags()), ("paths", []), ("files", []), ("chunks", []), ("norms", []),
                                      ("postings", [.sortedDuplicates, .fixedSizeDuplicates]), ("embeddings", []),
                                      ("embedding_orphans", []), ("term_bounds", []), ("vector_codes", [])] as [(String, TableFlags)] {
                    tables.append(try txn.openTable(name, flags: flags, create: true))
                }
                let meta = tables[0]
                if let schema = try txn.get(meta, key: Array("schema".utf8)) {
                    let stored = schema.withUnsafeBytes { readBE32($0) }
                    let storedAnalyzer = try txn.get(meta, key: Array("analyzer".utf8)).map { $0.withUnsafeBytes { readBE32($0) } } ?? 0
                    if (stored == 2 || stored == 3) && storedAnalyzer == analyzerVersion {
                        // Schema 2 lacked the term bounds: compute them from the postings. Schemas 2 and 3 hold
                        // float32 vectors, which `decodeVector` reads as well.
                        if stored == 2 { try Store.rebuildTermBounds(txn, postings: tables[5], norms: tables[4], bounds: tables[8]) }
                        try txn.put(meta, key: Array("schema".utf8), value: beKey(Store.schemaVersion))
                    } else if stored != Store.schemaVersion || storedAnalyzer != analyzerVersion {
                        throw StoreError(.schemaMismatch,
                            "the index in \(directory) has schema \(stored) and analyzer \(storedAnalyzer); this ragd needs schema \(Store.schemaVersion) and analyzer \(analyzerVersion). Start ragd with --rebuild-index (or delete that folder) to rebuild it from the sources")
                    }
                } else {
                    try txn.put(meta, key: Array("schema".utf8), value: beKey(Store.schemaVersion))
                    try txn.put(meta, key: Array("analyzer".utf8), value: beKey(analyzerVersion))
                    try txn.put(meta, key: Array("next_chunk".utf8), value: beKey(1))
                    try txn.put(meta, key: Array("next_file".utf8), value: beKey(1))
                }
            }
        } catch let error as StoreError {
            throw error
        } catch let error as LMDBError {
            throw StoreError(.corrupted, "cannot read the index tables in \(directory)", cause: error)
        }
        (meta, paths, files, chunks, norms, postings, embeddings) = (tables[0], tables[1], tables[2], tables[3], tables[4], tables[5], tables[6])
        embeddingOrphans = tables[7]
        termBounds = tables[8]
        vectorCodes = tables[9]
        memory = ReadWriteLocked(ChunkTable())
        try loadMemoryTable()
        // The writer state (free ids, live contents, orphans: a second pass over a million `norms` entries at that
        // size) is loaded by the first write, so queries are served without waiting for it.
        writeLock.write { state in
            // Not fatal (an index full to its ceiling still opens, and can be searched and emptied): tried again
            // at the next open.
            try? maintainOnOpen(&state)
        }
    }

    /// Rebuilds the in-memory chunk table from `norms` and `files`.
    private func loadMemoryTable() throws {
        var table = ChunkTable()
        try env.withReadTransaction { txn in
            try txn.forEach(norms) { key, value in
                guard key.count == 4, value.count >= 8 else { return true }
                table.setChunk(readBE32(key), length: readBE32(value, at: 4), file: readBE32(value))
                return true
            }
            try txn.forEach(files) { key, value in
                guard key.count == 4 else { return true }
                if let record = try? FileRecord.decode(value) {
                    table.setFile(readBE32(key), Store.fileInfo(record))
                }
                return true
            }
        }
        memory.write { $0 = table }
    }

    static func fileInfo(_ record: FileRecord) -> FileInfo {
        FileInfo(path: record.path, fileExtension: Store.fileExtension(of: record.path), tags: record.tags, mtimeNanos: record.mtimeNanos, chunks: record.chunkIDs.count,
                 size: record.size)
    }

    /// Lower-case extension without the dot; `x.rst.txt` gives `rst`; a gzipped file counts as what it holds
    /// (`x.md.gz` gives `md`).
    public static func fileExtension(of path: String) -> String {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        var lower = name.lowercased()
        if lower.hasSuffix(".gz"), let dot = lower.dropLast(3).lastIndex(of: "."), dot != lower.startIndex {
            lower.removeLast(3)
        }
        if lower.hasSuffix(".rst.txt") { return "rst" }
        guard let dot = lower.lastIndex(of: "."), dot != lower.startIndex else { return "" }
        return String(lower[lower.index(after: dot)...])
    }

    /// The key of a path in `paths`: its bytes, or for paths too long for an LMDB key, a hash of them.
    static func pathKey(_ path: String) -> [UInt8] {
        let bytes = Array(path.utf8)
        if bytes.count <= 480 { return bytes }
        return [0] + SHA256.hash(bytes).bytes
    }

    // MARK: Reading

    /// Files and chunks right now.
    public var counts: (files: Int, chunks: Int) {
        memory.read { ($0.files.count, $0.chunkCount) }
    }

    /// Sum of the indexed files' sizes right now.
    public var indexedBytes: UInt64 { memory.read { $0.totalBytes } }

    /// Runs `body` with the in-memory chunk table under a read lock (keep it short).
    public func withChunkTable<T>(_ body: (ChunkTable) throws -> T) rethrows -> T {
        try memory.read(body)
    }

    /// All indexed files with their size, mtime and hash (for reconciliation).
    public func allFiles() throws -> [String: FileRecord] {
        try env.withReadTransaction { txn in
            var result: [String: FileRecord] = [:]
            try txn.forEach(files) { _, value in
                if let record = try? FileRecord.decode(value) { result[record.path] = record }
                return true
            }
            return result
        }
    }

    public func file(path: String) throws -> FileRecord? {
        try env.withReadTransaction { txn in try fileRecord(txn, path: path)?.1 }
    }

    public func chunk(id: UInt32) throws -> ChunkRecord? {
        try env.withReadTransaction { txn in try txn.withValue(chunks, key: beKey(id)) { try ChunkRecord.decode($0) } }
    }

    public func fileRecord(id: UInt32) throws -> FileRecord? {
        try env.withReadTransaction { txn in try txn.withValue(files, key: beKey(id)) { try FileRecord.decode($0) } }
    }

    /// A read-only view for one query: postings and chunk records from one consistent snapshot.
    public func withSnapshot<T>(_ body: (Snapshot) throws -> T) throws -> T {
        try env.withReadTransaction { txn in try body(Snapshot(store: self, txn: txn)) }
    }

    func fileRecord(_ txn: Transaction, path: String) throws -> (UInt32, FileRecord)? {
        guard let idBytes = try txn.get(paths, key: Store.pathKey(path)), idBytes.count == 4 else { return nil }
        let id = idBytes.withUnsafeBytes { readBE32($0) }
        guard let record = try txn.withValue(files, key: idBytes, { try FileRecord.decode($0) }) else { return nil }
        return (id, record)
    }

    // MARK: Writing

    /// Applies `changes` in one write transaction: readers see all of them or none.
    @discardableResult
    public func apply(_ changes: [IndexChange]) throws -> WriteSummary {
        guard !changes.isEmpty else { return WriteSummary() }
        return try writeLock.write { state in
            state.reclaim(oldestActive: idGuard.oldestActive)
            var memoryOps: [(inout ChunkTable) -> Void] = []
            // Removing files must always be possible, or a full index could never be made smaller: transactions
            // that only delete or rename may grow the map into a reserve beyond the ceiling.
            let onlyRemoves = changes.allSatisfy { change in
                switch change {
                case .delete, .move: return true
                case .upsert, .touch: return false
                }
            }
            let removalLimit = configuration.maxMapSize + Store.deletionReserve(configuration.maxMapSize)
            let summary: WriteSummary = try growingMap(limit: onlyRemoves ? removalLimit : configuration.maxMapSize) {
                memoryOps = []
                if !state.valid { try loadWriterState(&state) }
                state.beginTransaction()
                do {
                    return try env.withWriteTransaction { txn in
                        var summary = WriteSummary()
                        var bounds: [String: TermBound] = [:]
                        for change in changes {
                            switch change {
                            case .upsert(let file): try upsert(txn, file, &summary, &memoryOps, &state, &bounds)
                            case .touch(let path, let size, let mtime): try touch(txn, path: path, size: size, mtime: mtime, &memoryOps)
                            case .delete(let path): try delete(txn, path: path, &summary, &memoryOps, &state)
                            case .move(let from, let to): try move(txn, from: from, to: to, &summary, &memoryOps, &state)
                            }
                        }
                        try mergeTermBounds(txn, bounds)
                        try settleEmbeddingCache(txn, &state)
                        try writeVectorCodes(txn, state.codeRows)
                        return summary
                    }
                } catch {
                    // The in-place changes to the writer's state did not commit: rebuild it before the next attempt.
                    state.valid = false
                    throw error
                }
            }
            memory.write { table in for op in memoryOps { op(&table) } }
            // Only now (committed, and the in-memory table no longer shows them): freed ids wait for the queries
            // running now to end.
            retireFreedIDs(&state)
            if onlyRemoves && summary.filesDeleted > 0 && env.mapSize >= configuration.maxMapSize {
                // LMDB reuses the pages a transaction frees only once a later transaction has committed. At the
                // ceiling, the next upsert must be able to use them at once: commit a small marker now.
                try? growingMap(limit: removalLimit) {
                    try env.withWriteTransaction { txn in
                        let key = Array("freed".utf8)
                        let count = try txn.get(meta, key: key).map { $0.withUnsafeBytes { readBE32($0) } } ?? 0
                        try txn.put(meta, key: key, value: beKey(count &+ 1))
                    }
                }
            }
            return summary
        }
    }

    /// How far beyond the ceiling transactions that only delete or rename may grow the map: an eighth of the
    /// ceiling, at least 8 MiB.
    public static func deletionReserve(_ ceiling: Int) -> Int { max(ceiling / 8, 8 << 20) }

    /// Map size, ceiling and bytes in use now.
    public var mapUsage: (size: Int, maximum: Int, used: Int) {
        (env.mapSize, configuration.maxMapSize, env.usedBytes)
    }

    /// Runs one write attempt (call with `writeLock` held, outside any transaction); when the map is full, grows it
    /// (doubling, up to `maxMapSize`) and tries again. LMDB errors become `StoreError`s: `mapFull` at the ceiling,
    /// `io` otherwise (for example ENOSPC when the disk is full). A failed attempt leaves the index as it was.
    func growingMap<T>(limit: Int? = nil, _ attempt: () throws -> T) throws -> T {
        let limit = limit ?? configuration.maxMapSize
        while true {
            do {
                return try attempt()
            } catch let error as LMDBError where error == .mapFull {
                let current = env.mapSize
                guard current < limit else {
                    throw StoreError(.mapFull, "the index map is full at its ceiling (\(current >> 20) MiB); raise index.max_map_size_mb", cause: error)
                }
                let step = 1 << 20
                let grown = min(limit, max(current * 2, current + step))
                do {
                    try env.setMapSize(grown)
                } catch {
                    throw StoreError(.mapFull, "the index map is full (\(current >> 20) MiB) and cannot be grown", cause: error)
                }
                guard env.mapSize > current else {
                    throw StoreError(.mapFull, "the index map is full (\(current >> 20) MiB) and did not grow", cause: error)
                }
                configuration.onMapResize?(current, env.mapSize)
            } catch let error as LMDBError {
                throw StoreError(.io, "index write failed", cause: error)
            }
        }
    }

    func nextID(_ txn: Transaction, _ name: String) throws -> UInt32 {
        let key = Array(name.utf8)
        let current = try txn.get(meta, key: key).map { $0.withUnsafeBytes { readBE32($0) } } ?? 1
        guard current < UInt32.max else { throw StoreError(.corrupted, "\(name) id space exhausted; rebuild the index") }
        try txn.put(meta, key: key, value: beKey(current + 1))
        return current
    }

    private func postingValue(_ chunk: UInt32, _ tf: UInt16) -> [UInt8] {
        beKey(chunk) + [UInt8(tf >> 8), UInt8(tf & 0xFF)]
    }

    private func upsert(_ txn: Transaction, _ file: PreparedFile, _ summary: inout WriteSummary,
                        _ memoryOps: inout [(inout ChunkTable) -> Void], _ state: inout WriterState,
                        _ bounds: inout [String: TermBound]) throws {
        let existing = try fileRecord(txn, path: file.path)
        let fileID = try existing?.0 ?? nextID(txn, "next_file")
        // Old chunks by content hash, so unchanged chunks keep their ids (and later their embeddings).
        var reusable: [ContentHash: [UInt32]] = [:]
        var oldRecords: [UInt32: ChunkRecord] = [:]
        for id in existing?.1.chunkIDs ?? [] {
            if let record = try txn.withValue(chunks, key: beKey(id), { try ChunkRecord.decode($0) }) {
                oldRecords[id] = record
                reusable[record.contentHash, default: []].append(id)
            }
        }
        var newIDs: [UInt32] = []
        newIDs.reserveCapacity(file.chunks.count)
        for chunk in file.chunks {
            if var ids = reusable[chunk.contentHash], !ids.isEmpty {
                let id = ids.removeFirst()
                reusable[chunk.contentHash] = ids
                let old = oldRecords.removeValue(forKey: id)!
                if old.lines != chunk.lines {
                    var updated = old
                    updated.lines = chunk.lines
                    try txn.put(chunks, key: beKey(id), value: updated.encoded())
                }
                newIDs.append(id)
                summary.chunksKept += 1
                continue
            }
            // Ids freed by this transaction are not free yet (the old chunks' postings are deleted below by
            // (term, id, tf), and running queries may still see them).
            let id = try allocateChunkID(txn, &state)
            state.contentAdded(chunk.contentHash)
            let record = ChunkRecord(fileID: fileID, lines: chunk.lines, headings: chunk.headings, contentHash: chunk.contentHash,
                                     length: chunk.length, text: chunk.text)
            try txn.put(chunks, key: beKey(id), value: record.encoded())
            try txn.put(norms, key: beKey(id), value: beKey(fileID) + beKey(chunk.length) + chunk.contentHash.bytes)
            let cached = try cachedEmbedding(txn, hash: chunk.contentHash)
            for (term, tf) in chunk.termFrequencies {
                try txn.put(postings, key: Array(term.utf8), value: postingValue(id, tf))
                bounds[term, default: TermBound()].add(tf: tf, length: chunk.length)
            }
            newIDs.append(id)
            summary.chunksAdded += 1
            let length = chunk.length
            if let cached { state.codeRows.append(VectorCodeRow(id: id, hash: chunk.contentHash, vector: cached)) }
            memoryOps.append { table in
                table.setChunk(id, length: length, file: fileID)
                if let cached { table.vectors.set(id, cached) }
            }
        }
        for (id, record) in oldRecords {
            try removeChunk(txn, id: id, record: record, &state)
            summary.chunksRemoved += 1
            memoryOps.append { $0.removeChunk(id) }
        }
        let record = FileRecord(path: file.path, size: file.size, mtimeNanos: file.mtimeNanos, contentHash: file.contentHash,
                                title: file.title, tags: file.tags, chunkIDs: newIDs)
        try txn.put(files, key: beKey(fileID), value: record.encoded())
        if existing == nil { try txn.put(paths, key: Store.pathKey(file.path), value: beKey(fileID)) }
        summary.filesWritten += 1
        let info = Store.fileInfo(record)
        memoryOps.append { $0.setFile(fileID, info) }
    }

    private func removeChunk(_ txn: Transaction, id: UInt32, record: ChunkRecord, _ state: inout WriterState) throws {
        let (frequencies, _) = PreparedChunk.analyze(text: record.text, headings: record.headings, analyzer: analyzer)
        for (term, tf) in frequencies {
            try txn.delete(postings, key: Array(term.utf8), value: postingValue(id, tf))
        }
        try txn.delete(chunks, key: beKey(id))
        try txn.delete(norms, key: beKey(id))
        state.freed.append(id)
        state.contentRemoved(record.contentHash)
    }

    private func touch(_ txn: Transaction, path: String, size: UInt64, mtime: Int64, _ memoryOps: inout [(inout ChunkTable) -> Void]) throws {
        guard var (id, record) = try fileRecord(txn, path: path) else { return }
        record.size = size
        record.mtimeNanos = mtime
        try txn.put(files, key: beKey(id), value: record.encoded())
        let info = Store.fileInfo(record)
        memoryOps.append { $0.setFile(id, info) }
    }

    private func delete(_ txn: Transaction, path: String, _ summary: inout WriteSummary,
                        _ memoryOps: inout [(inout ChunkTable) -> Void], _ state: inout WriterState) throws {
        guard let (fileID, record) = try fileRecord(txn, path: path) else { return }
        for id in record.chunkIDs {
            if let chunk = try txn.withValue(chunks, key: beKey(id), { try ChunkRecord.decode($0) }) {
                try removeChunk(txn, id: id, record: chunk, &state)
                summary.chunksRemoved += 1
                memoryOps.append { $0.removeChunk(id) }
            }
        }
        try txn.delete(files, key: beKey(fileID))
        try txn.delete(paths, key: Store.pathKey(path))
        summary.filesDeleted += 1
        memoryOps.append { $0.setFile(fileID, nil) }
    }

    private func move(_ txn: Transaction, from: String, to: String, _ summary: inout WriteSummary,
                      _ memoryOps: inout [(inout ChunkTable) -> Void], _ state: inout WriterState) throws {
        guard from != to, var (id, record) = try fileRecord(txn, path: from) else { return }
        if try fileRecord(txn, path: to) != nil { try delete(txn, path: to, &summary, &memoryOps, &state) }
        try txn.delete(paths, key: Store.pathKey(from))
        try txn.put(paths, key: Store.pathKey(to), value: beKey(id))
        record.path = to
        try txn.put(files, key: beKey(id), value: record.encoded())
        summary.filesMoved += 1
        let info = Store.fileInfo(record)
        memoryOps.append { $0.setFile(id, info) }
    }

    /// Indexed files whose path is `folder` or lies below it (a range scan of `paths`; long hashed paths are
    /// found through the in-memory file table).
    public func files(under folder: String) throws -> [String: FileRecord] {
        let prefix = folder.hasSuffix("/") ? folder : folder + "/"
        let start = Array(prefix.utf8)
        var ids: [UInt32] = []
        try env.withReadTransaction { txn in
            try txn.forEach(paths, from: start) { key, value in
                guard key.count >= start.count, key.starts(with: start) else { return false }
                if value.count == 4 { ids.append(readBE32(value)) }
                return true
            }
            if let id = try txn.get(paths, key: Store.pathKey(folder)), id.count == 4 { ids.append(id.withUnsafeBytes { readBE32($0) }) }
        }
        let long = memory.read { table in
            table.files.compactMap { (id, info) in info.path.utf8.count > 480 && info.path.hasPrefix(prefix) ? id : nil }
        }
        ids.append(contentsOf: long)
        return try env.withReadTransaction { txn in
            var result: [String: FileRecord] = [:]
            for id in Set(ids) {
                if let record = try txn.withValue(files, key: beKey(id), { try FileRecord.decode($0) }) { result[record.path] = record }
            }
            return result
        }
    }

    // MARK: Embeddings

    /// Selects the embedding model: loads the cached vectors of `id` for every chunk into memory. Returns the
    /// previously configured model id when it was a different one (its vectors are not used; chunks are re-embedded).
    @discardableResult
    public func configureModel(id: String, dimensions: Int) throws -> String? {
        let tag = Array(SHA256.hash(Array(id.utf8)).bytes.prefix(4))
        let previous: String? = try writeLock.write { state in
            let previous: String? = try growingMap { try env.withWriteTransaction { txn in
                let old = try txn.get(meta, key: Array("model".utf8)).map { String(decoding: $0, as: UTF8.self) }
                if old != id {
                    try txn.put(meta, key: Array("model".utf8), value: Array(id.utf8))
                    try txn.put(meta, key: Array("dimensions".utf8), value: beKey(UInt32(dimensions)))
                    try dropForeignVectorCodes(txn, keeping: tag)
                }
                return old == id ? nil : old
            } }
            // Vectors of the previous model that are orphans stay listed (and are evicted in turn); those of live
            // contents are kept, for a switch back.
            state.cacheTag = tag
            model.write { $0 = (id, tag, dimensions) }
            return previous
        }
        // Each chunk's codes are copied from `vector_codes` when its row there matches the chunk's content; the
        // others are quantised straight from their stored float32 bytes (no float copy of the vectors is ever held)
        // and written back afterwards. Both halves of the id range load at once, each in its own read transaction.
        let rows = memory.read { $0.lengths.count }
        var index = VectorIndex(dimensions: dimensions)
        index.reserve(rows: rows)
        let parts = rows >= 65_536 ? 2 : 1
        let rowBytes = Store.codeRowBytes(dimensions: dimensions), blockRows = UInt32(Store.codeBlockRows)
        let missed = Mutex<[(UInt32, ContentHash)]>([])
        let copied = Atomic<Int>(0)
        // Pinned: an id read here keeps naming the same chunk until the vectors are in memory.
        try withPinnedChunkIDs {
        try index.fillConcurrently(parts: parts) { part, target in
            let start = UInt32(rows * part / parts), end = UInt32(rows * (part + 1) / parts)
            var misses: [(UInt32, ContentHash)] = []
            var copies = 0
            try self.env.withReadTransaction { txn in
                var blockNumber = UInt32.max
                var block: UnsafeRawBufferPointer?
                try txn.forEach(self.norms, from: beKey(start)) { key, value in
                    guard key.count == 4 else { return true }
                    let id = readBE32(key)
                    guard id < end else { return false }
                    guard value.count == 40 else { return true }
                    if id / blockRows != blockNumber {
                        blockNumber = id / blockRows
                        block = try txn.mappedValue(self.vectorCodes, key: tag + beKey(blockNumber))
                    }
                    if let block, block.count == Int(blockRows) * rowBytes {
                        let row = block.baseAddress! + Int(id % blockRows) * rowBytes
                        if memcmp(row + 4, value.baseAddress! + 8, 8) == 0 {
                            let step = Float(bitPattern: UInt32(littleEndian: row.loadUnaligned(as: UInt32.self)))
                            target.copy(id, step: step, codes: row + 12)
                            copies += 1
                            return true
                        }
                    }
                    let hash = Array(value[8..<40])
                    if try txn.withValue(self.embeddings, key: tag + hash, { target.quantise(id, stored: $0) }) != nil {
                        misses.append((id, ContentHash(bytes: hash)))
                    }
                    return true
                }
            }
            missed.withLock { $0 += misses }
            copied.add(copies, ordering: .relaxed)
        }
        memory.write { table in
            for id in 0..<index.scales.count where index.scales[id] != 0 && (id >= table.lengths.count || table.lengths[id] == 0) {
                index.remove(UInt32(id))
            }
            table.vectors = index
        } }
        let quantised = missed.withLock { $0 }
        lastVectorLoad.withLock { $0 = VectorLoad(copied: copied.load(ordering: .relaxed), quantised: quantised.count) }
        try backfillVectorCodes(quantised, from: index)
        return previous
    }

    /// The configured model's id and dimension, if any.
    public var embeddingModel: (id: String, dimensions: Int)? { model.read { $0.map { ($0.id, $0.dimensions) } } }

    /// Live chunks and how many of them have a vector.
    public var embeddingCounts: (chunks: Int, embedded: Int) {
        memory.read { ($0.chunkCount, $0.vectors.count) }
    }

    /// Up to `limit` live chunks without a vector, lowest ids first.
    public func chunksWithoutEmbedding(limit: Int) -> [UInt32] {
        memory.read { table in
            var result: [UInt32] = []
            for index in 0..<table.lengths.count where table.lengths[index] != 0 && !table.vectors.has(UInt32(index)) {
                result.append(UInt32(index))
                if result.count >= limit { break }
            }
            return result
        }
    }

    /// The text to embed for each chunk that still exists: the heading trail (unless the text starts with it) and the text.
    public func embeddingInputs(_ ids: [UInt32]) throws -> [(id: UInt32, hash: ContentHash, text: String)] {
        try env.withReadTransaction { txn in
            try ids.compactMap { id in
                guard let record = try txn.withValue(chunks, key: beKey(id), { try ChunkRecord.decode($0) }) else { return nil }
                return (id, record.contentHash, Store.embeddingText(record))
            }
        }
    }

    static func embeddingText(_ record: ChunkRecord) -> String {
        guard let last = record.headings.last else { return record.text }
        let firstLine = record.text.split(separator: "\n", maxSplits: 1).first ?? ""
        let trail = firstLine.contains(last) ? record.headings.dropLast() : record.headings[...]
        return trail.isEmpty ? record.text : trail.joined(separator: " > ") + "\n" + record.text
    }

    /// Stores vectors in the cache (keyed by model and content hash) and makes them searchable for chunks
    /// whose content is still the one embedded.
    public func storeEmbeddings(_ items: [(id: UInt32, hash: ContentHash, vector: [Float])]) throws {
        guard let (_, tag, dimensions) = model.read({ $0 }), !items.isEmpty else { return }
        try writeLock.write { state in
            let live: [(UInt32, [Float], ContentHash)] = try growingMap {
                if !state.valid { try loadWriterState(&state) }
                state.beginTransaction()
                do {
                    return try env.withWriteTransaction { txn in
                        var live: [(UInt32, [Float], ContentHash)] = []
                        for item in items where item.vector.count == dimensions {
                            let key = tag + item.hash.bytes
                            try txn.put(embeddings, key: key, value: Store.encodeVector(item.vector))
                            if let current = try txn.get(norms, key: beKey(item.id)), current.count == 40, Array(current[8..<40]) == item.hash.bytes {
                                // As stored, so that the codes are those a later start-up would compute.
                                live.append((item.id, Store.storedPrecision(item.vector), item.hash))
                            }
                            // Embedded too late: its content was removed meanwhile. Cached as an orphan.
                            if !state.isLive(item.hash) { try addOrphan(txn, key: key, &state, checkCached: false) }
                        }
                        try evictOrphans(txn, &state)
                        try writeVectorCodes(txn, live.map { VectorCodeRow(id: $0.0, hash: $0.2, vector: $0.1) })
                        return live
                    }
                } catch {
                    state.valid = false
                    throw error
                }
            }
            memory.write { table in
                for (id, vector, _) in live where Int(id) < table.lengths.count && table.lengths[Int(id)] != 0 { table.vectors.set(id, vector) }
            }
        }
    }

    func cachedEmbedding(_ txn: Transaction, hash: ContentHash) throws -> [Float]? {
        guard let (_, tag, dimensions) = model.read({ $0 }) else { return nil }
        return try txn.withValue(embeddings, key: tag + hash.bytes) { Store.decodeVector($0, dimensions) } ?? nil
    }

    /// A vector as stored: little-endian float16, half the size of float32. The rounding (at most a relative 2⁻¹¹
    /// per value) moves the cosine of unit vectors by at most 2⁻¹¹, about 10⁻⁴ for sentence embeddings.
    static func encodeVector(_ vector: [Float]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: vector.count * 2)
        bytes.withUnsafeMutableBytes { raw in
            for (n, x) in vector.enumerated() { raw.storeBytes(of: Float16(x).bitPattern.littleEndian, toByteOffset: n * 2, as: UInt16.self) }
        }
        return bytes
    }

    /// `vector` rounded as `encodeVector` stores it.
    public static func storedPrecision(_ vector: [Float]) -> [Float] { vector.map { Float(Float16($0)) } }

    /// A stored vector of `dimensions` values: float16, or float32 as indexes of schema 3 and before hold them.
    static func decodeVector(_ bytes: UnsafeRawBufferPointer, _ dimensions: Int) -> [Float]? {
        withFloats(bytes, dimensions) { Array(UnsafeBufferPointer(start: $0, count: dimensions)) }
    }

    /// Calls `body` with a stored vector's values as float32 (converted from float16 in a temporary buffer, or
    /// read in place when stored as float32); nil when `bytes` is neither size.
    static func withFloats<T>(_ bytes: UnsafeRawBufferPointer, _ dimensions: Int, _ body: (UnsafePointer<Float>) -> T) -> T? {
        if bytes.count == dimensions * 2 {
            return withUnsafeTemporaryAllocation(of: Float.self, capacity: dimensions) { floats in
                for n in 0..<dimensions {
                    floats[n] = Float(Float16(bitPattern: UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: n * 2, as: UInt16.self))))
                }
                return body(floats.baseAddress!)
            }
        }
        guard bytes.count == dimensions * 4 else { return nil }
        #if _endian(little)
        if Int(bitPattern: bytes.baseAddress) % MemoryLayout<Float>.alignment == 0 {
            return body(bytes.baseAddress!.assumingMemoryBound(to: Float.self))
        }
        #endif
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: dimensions) { floats in
            for n in 0..<dimensions {
                floats[n] = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: n * 4, as: UInt32.self)))
            }
            return body(floats.baseAddress!)
        }
    }

    /// Flushes to disk (LMDB commits are already durable; this is for backups and tests).
    public func sync() throws { try env.sync() }
}

/// One consistent read view, valid only inside `Store.withSnapshot`.
public struct Snapshot {
    let store: Store
    let txn: Transaction

    /// Visits the postings of `term` a page at a time: each buffer holds `Store.postingSize`-byte entries
    /// `[chunk id BE32][tf BE16]`. Returns the document frequency (0 when the term is absent).
    @discardableResult
    public func postings(_ term: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Int {
        try txn.forEachDuplicatePage(store.postings, key: Array(term.utf8), body)
    }

    /// Number of chunks containing `term`.
    public func documentFrequency(_ term: String) throws -> Int {
        try txn.duplicateCount(store.postings, key: Array(term.utf8))
    }

    /// A cursor over the postings of `term` (exhausted at once when the term is absent); close it before the snapshot ends.
    public func postingCursor(_ term: String) throws -> PostingCursor {
        try PostingCursor(txn, table: store.postings, term: term)
    }

    /// The bound of `term`'s BM25 weight over its postings (nil when none is stored).
    public func termBound(_ term: String) throws -> TermBound? {
        try txn.withValue(store.termBounds, key: Array(term.utf8)) { TermBound.decode($0) } ?? nil
    }

    public func chunk(_ id: UInt32) throws -> ChunkRecord? {
        try txn.withValue(store.chunks, key: beKey(id)) { try ChunkRecord.decode($0) }
    }

    /// The stored embedding of a chunk under the configured model (as float32), if it has one.
    public func embedding(_ id: UInt32) throws -> [Float]? {
        guard let (_, tag, dimensions) = store.model.read({ $0 }),
              let norm = try txn.get(store.norms, key: beKey(id)), norm.count == 40 else { return nil }
        return try txn.withValue(store.embeddings, key: tag + Array(norm[8..<40])) { Store.decodeVector($0, dimensions) } ?? nil
    }
}

extension Store {
    /// Overwrites a 32-bit meta value of a closed index (tests use it to simulate an index from another version).
    public static func overwriteMetaForTesting(directory: String, key: String, value: UInt32) throws {
        let env = try LMDBEnvironment(directory: directory, mapSize: 64 << 20, maxTables: 16)
        try env.withWriteTransaction { txn in
            let meta = try txn.openTable("meta", create: false)
            try txn.put(meta, key: Array(key.utf8), value: beKey(value))
        }
    }
}

extension Store {
    /// Empties a table of a closed index (tests use it to simulate an index from an older schema).
    public static func dropTableForTesting(directory: String, table: String) throws {
        let env = try LMDBEnvironment(directory: directory, mapSize: 64 << 20, maxTables: 16)
        try env.withWriteTransaction { txn in try txn.drop(try txn.openTable(table, create: true)) }
    }
}

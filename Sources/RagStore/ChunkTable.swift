import Glibc
import Synchronization

/// Per-file facts that filters need at query time.
public struct FileInfo: Sendable, Equatable {
    public var path: String
    /// Lower-case extension without the dot (`rst.txt` counts as `rst`).
    public var fileExtension: String
    public var tags: [String]
    public var mtimeNanos: Int64
    /// Number of chunks of the file.
    public var chunks: Int
    /// Size in bytes of the file as indexed.
    public var size: UInt64

    public init(path: String, fileExtension: String, tags: [String], mtimeNanos: Int64, chunks: Int, size: UInt64 = 0) {
        self.path = path
        self.fileExtension = fileExtension
        self.tags = tags
        self.mtimeNanos = mtimeNanos
        self.chunks = chunks
        self.size = size
    }
}

/// The in-memory mirror of what BM25 needs per chunk (length, file) plus the file table, so a query touches
/// LMDB only for postings and for the text of the final top-k. Updated right after each commit.
public struct ChunkTable: Sendable {
    /// BM25 length per chunk id; 0 marks a free id.
    public internal(set) var lengths: [UInt32] = []
    /// Owning file per chunk id.
    public internal(set) var fileOf: [UInt32] = []
    public internal(set) var files: [UInt32: FileInfo] = [:]
    public internal(set) var chunkCount = 0
    public internal(set) var totalLength: UInt64 = 0
    /// Sum of the indexed files' sizes.
    public internal(set) var totalBytes: UInt64 = 0
    /// Embeddings of the chunks, for dense search.
    public internal(set) var vectors = VectorIndex(dimensions: 0)

    public var averageLength: Double { chunkCount == 0 ? 0 : Double(totalLength) / Double(chunkCount) }

    /// Changes with every change to the chunks or files and never repeats within the process (a new table gets a new
    /// one too): what caches of per-file facts are keyed by.
    public private(set) var generation = ChunkTable.nextGeneration()
    private static let generations = Atomic<UInt64>(0)
    private static func nextGeneration() -> UInt64 { generations.add(1, ordering: .relaxed).newValue }

    mutating func setChunk(_ id: UInt32, length: UInt32, file: UInt32) {
        generation = ChunkTable.nextGeneration()
        let index = Int(id)
        if index >= lengths.count {
            let newCount = max(index + 1, lengths.count * 2, 1024)
            lengths.append(contentsOf: repeatElement(0, count: newCount - lengths.count))
            fileOf.append(contentsOf: repeatElement(0, count: newCount - fileOf.count))
        }
        if lengths[index] != 0 {
            totalLength -= UInt64(lengths[index])
            chunkCount -= 1
        }
        let stored = max(length, 1)
        lengths[index] = stored
        fileOf[index] = file
        totalLength += UInt64(stored)
        chunkCount += 1
    }

    mutating func removeChunk(_ id: UInt32) {
        let index = Int(id)
        guard index < lengths.count, lengths[index] != 0 else { return }
        generation = ChunkTable.nextGeneration()
        totalLength -= UInt64(lengths[index])
        chunkCount -= 1
        lengths[index] = 0
        vectors.remove(id)
    }

    mutating func setFile(_ id: UInt32, _ info: FileInfo?) {
        generation = ChunkTable.nextGeneration()
        if let old = files[id] { totalBytes -= old.size }
        if let info { totalBytes += info.size }
        files[id] = info
    }
}

/// A readers-writer lock around a value (`pthread_rwlock_t`): many queries read at once, the writer excludes them briefly.
final class ReadWriteLocked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)

    init(_ value: Value) {
        self.value = value
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    func read<T>(_ body: (Value) throws -> T) rethrows -> T {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body(value)
    }

    func write<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body(&value)
    }
}

import Dispatch
import Glibc
import Logging
import RagCore
import RagStore
import Synchronization

/// Settings of the ingest pipeline.
public struct IndexerConfiguration: Sendable {
    public var sources: [SourceSpec]
    public var chunking: ChunkingConfiguration
    /// Files larger than this are skipped with one log line.
    public var maxFileBytes: UInt64
    /// Files per write transaction during bulk work (each file stays atomic inside it).
    public var batchSize: Int

    public init(sources: [SourceSpec], chunking: ChunkingConfiguration = .init(), maxFileBytes: UInt64 = 16 << 20, batchSize: Int = 64) {
        self.sources = sources
        self.chunking = chunking
        self.maxFileBytes = maxFileBytes
        self.batchSize = batchSize
    }
}

/// What the indexer is doing, for `status`.
public struct IndexerStatus: Sendable, Equatable {
    public enum State: String, Sendable { case starting, indexing, ready }
    public var state: State = .starting
    /// Files seen changed (or new, or deleted) but not yet committed.
    public var pending = 0
    /// Files handled so far in the current pass, and the pass's total.
    public var done = 0
    public var total = 0
    public var scans = 0
    public var lastScanSeconds: Double = 0
    /// Files skipped because they are binary, too large or unreadable (as of the last pass).
    public var skippedBinary = 0
    public var skippedTooLarge = 0
    public var unreadable = 0
    public var lastError: String?
    public init() {}
}

/// Brings the store in line with the sources on disk: new and changed files indexed (size and mtime first,
/// content hash to confirm), deleted ones removed. Runs on the caller's thread; chunking and analysis use every core.
public final class Indexer: Sendable {
    public let store: Store
    public let configuration: IndexerConfiguration
    private let logger: Logger
    private let state = Mutex(IndexerStatus())
    /// Files already reported as skipped, by path, with the size and mtime they had, so rescans do not log them again.
    private let skipped = Mutex([String: (UInt64, Int64)]())
    private let stopRequested = Atomic<Bool>(false)

    public init(store: Store, configuration: IndexerConfiguration, logger: Logger) {
        self.store = store
        self.configuration = configuration
        self.logger = logger
    }

    public var status: IndexerStatus { state.withLock { $0 } }

    /// Asks a running `reconcile()` to stop after the batch in flight commits.
    public func requestStop() { stopRequested.store(true, ordering: .relaxed) }

    private var stopping: Bool { stopRequested.load(ordering: .relaxed) }

    /// One full reconciliation pass. Returns what it wrote.
    @discardableResult
    public func reconcile() throws -> WriteSummary {
        let started = DispatchTime.now()
        var scanned: [String: ScannedFile] = [:]
        var keepPrefixes: [String] = []   // folders whose contents are unknown this pass
        for source in configuration.sources {
            let result = SourceScanner.scan(source)
            for problem in result.problems {
                logger.warning("cannot scan part of a source", metadata: ["file.path": "\(problem.path)", "error": "\(problem.message)"])
            }
            if result.rootUnreadable { keepPrefixes.append(source.root + "/") }
            keepPrefixes.append(contentsOf: result.unreadableFolders.map { $0 + "/" })
            for file in result.files where scanned[file.path] == nil { scanned[file.path] = file }
        }
        let indexed = try store.allFiles()
        var deletions: [String] = []
        for path in indexed.keys where scanned[path] == nil {
            if keepPrefixes.contains(where: { path.hasPrefix($0) }) { continue }
            deletions.append(path)
        }
        let known = skipped.withLock { $0 }
        var candidates: [ScannedFile] = []
        for (path, file) in scanned {
            if let record = indexed[path], record.size == file.size, record.mtimeNanos == file.mtimeNanos { continue }
            if let seen = known[path], seen == (file.size, file.mtimeNanos), indexed[path] == nil { continue }
            candidates.append(file)
        }
        candidates.sort { $0.path < $1.path }
        deletions.sort()
        state.withLock {
            $0.pending = candidates.count + deletions.count
            $0.done = 0
            $0.total = candidates.count + deletions.count
            if $0.pending > 0 { $0.state = .indexing }
        }
        if !candidates.isEmpty || !deletions.isEmpty {
            logger.info("reconciling", metadata: ["files.changed": "\(candidates.count)", "files.deleted": "\(deletions.count)",
                                                  "files.total": "\(scanned.count)"])
        }
        var summary = WriteSummary()
        if !deletions.isEmpty && !stopping {
            for batch in stride(from: 0, to: deletions.count, by: 512) {
                let slice = deletions[batch..<min(batch + 512, deletions.count)]
                let s = try store.apply(slice.map { .delete(path: $0) })
                summary.add(s)
                state.withLock { $0.pending -= slice.count; $0.done += slice.count }
            }
        }
        var index = 0
        while index < candidates.count && !stopping {
            let batch = Array(candidates[index..<min(index + configuration.batchSize, candidates.count)])
            index += batch.count
            let changes = prepare(batch, indexed: indexed)
            let s = try store.apply(changes)
            summary.add(s)
            state.withLock { $0.pending -= batch.count; $0.done += batch.count }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
        let (binary, large, unreadable) = skippedCounts()
        state.withLock {
            $0.scans += 1
            $0.lastScanSeconds = seconds
            $0.skippedBinary = binary
            $0.skippedTooLarge = large
            $0.unreadable = unreadable
            if !stopping { $0.state = .ready; $0.pending = 0 }
        }
        if summary != WriteSummary() {
            logger.info("index updated", metadata: [
                "files.written": "\(summary.filesWritten)", "files.deleted": "\(summary.filesDeleted)",
                "chunks.added": "\(summary.chunksAdded)", "chunks.kept": "\(summary.chunksKept)",
                "chunks.removed": "\(summary.chunksRemoved)", "scan.seconds": "\(Double(Int(seconds * 1000)) / 1000)",
            ])
        }
        return summary
    }

    private let skipReasons = Mutex([String: SkipReason]())
    private enum SkipReason: Sendable { case binary, tooLarge, unreadable }

    private func skippedCounts() -> (Int, Int, Int) {
        skipReasons.withLock { reasons in
            var counts = (0, 0, 0)
            for reason in reasons.values {
                switch reason {
                case .binary: counts.0 += 1
                case .tooLarge: counts.1 += 1
                case .unreadable: counts.2 += 1
                }
            }
            return counts
        }
    }

    /// Reads, chunks and analyzes `files` in parallel; returns the changes for one transaction.
    func prepare(_ files: [ScannedFile], indexed: [String: FileRecord]) -> [IndexChange] {
        let results = Mutex([IndexChange?](repeating: nil, count: files.count))
        DispatchQueue.concurrentPerform(iterations: files.count) { n in
            let change = prepareOne(files[n], previous: indexed[files[n].path])
            results.withLock { $0[n] = change }
        }
        return results.withLock { $0.compactMap { $0 } }
    }

    private func followSymlinks(for path: String) -> Bool {
        configuration.sources.first(where: { $0.contains(path) })?.followSymlinks ?? false
    }

    private func markSkipped(_ file: ScannedFile, _ reason: SkipReason?) {
        skipped.withLock { if reason == nil { $0[file.path] = nil } else { $0[file.path] = (file.size, file.mtimeNanos) } }
        skipReasons.withLock { $0[file.path] = reason }
    }

    /// One file: nil when there is nothing to write (unreadable: retried on the next scan).
    func prepareOne(_ file: ScannedFile, previous: FileRecord?) -> IndexChange? {
        let contents: FileContents
        switch FileReader.read(path: file.path, followSymlinks: followSymlinks(for: file.path), maxBytes: configuration.maxFileBytes) {
        case .success(let c): contents = c
        case .failure(.vanished), .failure(.notRegular):
            markSkipped(file, nil)
            return previous == nil ? nil : .delete(path: file.path)
        case .failure(.tooLarge(let size, let limit)):
            logger.warning("skipping file over the size cap", metadata: ["file.path": "\(file.path)", "file.size": "\(size)", "limit": "\(limit)"])
            markSkipped(file, .tooLarge)
            return previous == nil ? nil : .delete(path: file.path)
        case .failure(.unreadable(let message)):
            logger.warning("cannot read file; will retry on the next scan", metadata: ["file.path": "\(file.path)", "error": "\(message)"])
            markSkipped(file, .unreadable)
            // Keep what is indexed; the file is retried (its mtime may not change when permissions are fixed).
            skipped.withLock { $0[file.path] = nil }
            return nil
        }
        let hash = SHA256.hash(contents.bytes)
        if let previous, previous.contentHash == hash {
            markSkipped(file, nil)
            return .touch(path: file.path, size: contents.size, mtimeNanos: contents.mtimeNanos)
        }
        guard let decoded = TextDecoding.decode(contents.bytes) else {
            logger.warning("skipping binary file", metadata: ["file.path": "\(file.path)"])
            markSkipped(file, .binary)
            return previous == nil ? nil : .delete(path: file.path)
        }
        markSkipped(file, nil)
        if decoded.hadInvalidUTF8 {
            logger.warning("file is not valid UTF-8; decoded with replacement characters", metadata: ["file.path": "\(file.path)"])
        }
        let name = file.path.split(separator: "/").last.map(String.init) ?? file.path
        let format = DocumentFormat.detect(fileName: name) ?? .plainText
        let parsed = Chunker(configuration: configuration.chunking).parse(decoded.text, format: format)
        let analyzer = Analyzer()
        let chunks = parsed.chunks.map { PreparedChunk(text: $0.text, lines: $0.lines, headings: $0.headings, analyzer: analyzer) }
        return .upsert(PreparedFile(path: file.path, size: contents.size, mtimeNanos: contents.mtimeNanos, contentHash: hash,
                                    title: parsed.title, tags: parsed.tags, chunks: chunks))
    }
}

extension WriteSummary {
    mutating func add(_ other: WriteSummary) {
        filesWritten += other.filesWritten
        filesDeleted += other.filesDeleted
        chunksAdded += other.chunksAdded
        chunksKept += other.chunksKept
        chunksRemoved += other.chunksRemoved
    }
}

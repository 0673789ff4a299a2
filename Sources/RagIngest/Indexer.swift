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
    /// Files of the pass in flight not yet committed.
    public var pending = 0
    /// Files handled so far in the current pass, and the pass's total.
    public var done = 0
    public var total = 0
    /// Full reconciliation passes completed.
    public var scans = 0
    public var lastScanSeconds: Double = 0
    /// Files skipped because they are binary, too large or unreadable (as of the last pass).
    public var skippedBinary = 0
    public var skippedTooLarge = 0
    public var unreadable = 0
    public var lastError: String?
    public init() {}
}

/// A set of changes to bring into the index: what the watcher reported, coalesced.
public struct ChangeSet: Sendable, Equatable {
    /// Files to check against the disk (created, written, deleted, moved in or out).
    public var files: Set<String> = []
    /// Folders whose whole contents to check.
    public var folders: Set<String> = []
    /// Renames inside the trees, in the order they happened.
    public var moves: [Move] = []
    /// Reconcile every source.
    public var everything = false

    public struct Move: Sendable, Equatable {
        public var from: String
        public var to: String
        public var isFolder: Bool
    }

    public init() {}

    public var isEmpty: Bool { files.isEmpty && folders.isEmpty && moves.isEmpty && !everything }
    /// Number of items waiting, for `status.pending`.
    public var count: Int { files.count + folders.count + moves.count + (everything ? 1 : 0) }

    public mutating func add(_ event: WatchEvent) {
        switch event {
        case .file(let path): files.insert(path)
        case .folder(let path): folders.insert(path)
        case .moved(let from, let to, let isFolder): moves.append(Move(from: from, to: to, isFolder: isFolder))
        case .rescanAll: everything = true
        }
    }
}

/// Brings the store in line with the sources on disk: new and changed files indexed (size and mtime first,
/// content hash to confirm), deleted ones removed, renames applied without re-chunking. Runs on the caller's
/// thread (one writer); reading, chunking and analysis of a batch use every core.
public final class Indexer: Sendable {
    public let store: Store
    private let settings: Mutex<IndexerConfiguration>
    private let logger: Logger
    private let state = Mutex(IndexerStatus())
    /// Files already reported as skipped, by path, with the size and mtime they had, so rescans do not log them again.
    private let skipped = Mutex([String: (UInt64, Int64)]())
    private let stopRequested = Atomic<Bool>(false)
    private let progressNanos = Atomic<UInt64>(0)

    /// Uptime (ns) of the last committed batch.
    public var lastProgressNanos: UInt64 { progressNanos.load(ordering: .relaxed) }

    public init(store: Store, configuration: IndexerConfiguration, logger: Logger) {
        self.store = store
        self.settings = Mutex(configuration)
        self.logger = logger
    }

    public var configuration: IndexerConfiguration { settings.withLock { $0 } }

    /// Replaces the sources (configuration reload); the next full pass drops files of removed sources.
    public func setSources(_ sources: [SourceSpec]) { settings.withLock { $0.sources = sources } }

    public var status: IndexerStatus { state.withLock { $0 } }

    /// Asks a running pass to stop after the batch in flight commits.
    public func requestStop() { stopRequested.store(true, ordering: .relaxed) }

    private var stopping: Bool { stopRequested.load(ordering: .relaxed) }

    /// The most specific source containing `path`.
    func source(for path: String) -> SourceSpec? {
        configuration.sources.filter { $0.root == path || $0.contains(path) }.max { $0.root.count < $1.root.count }
    }

    /// One full reconciliation pass over every source. Returns what it wrote.
    @discardableResult
    public func reconcile() throws -> WriteSummary {
        var changes = ChangeSet()
        changes.everything = true
        return try apply(changes)
    }

    /// Applies a change set: renames first, then folders are reconciled, then single files are checked.
    @discardableResult
    public func apply(_ changes: ChangeSet) throws -> WriteSummary {
        let started = DispatchTime.now()
        var summary = WriteSummary()
        var folders = changes.folders
        var files = changes.files
        let sources = configuration.sources
        if changes.everything {
            folders = Set(sources.map(\.root))
            files = []
        } else if !changes.moves.isEmpty {
            var ops: [IndexChange] = []
            for move in changes.moves {
                if move.isFolder {
                    for (path, _) in try store.files(under: move.from) {
                        let target = move.to + path.dropFirst(move.from.count)
                        if let source = source(for: target), source.acceptsFile(path: target) {
                            ops.append(.move(from: path, to: target))
                        } else {
                            ops.append(.delete(path: path))
                        }
                    }
                    folders.insert(move.to)
                } else {
                    if try store.file(path: move.from) != nil {
                        if let source = source(for: move.to), source.acceptsFile(path: move.to) {
                            ops.append(.move(from: move.from, to: move.to))
                        } else {
                            ops.append(.delete(path: move.from))
                        }
                    }
                    files.insert(move.from)
                    files.insert(move.to)
                }
            }
            summary.add(try store.apply(ops))
        }

        // Folders: scan what is on disk below each (outermost only) and compare with what is indexed below it.
        var scanned: [String: ScannedFile] = [:]
        var indexed: [String: FileRecord] = [:]
        var keepPrefixes: [String] = []
        var removedRoots: [String] = []
        let outermost = folders.filter { folder in !folders.contains { $0 != folder && folder.hasPrefix($0 + "/") } }
        for folder in outermost.sorted() {
            guard let source = source(for: folder) else {
                // Not inside any source (a dropped source): everything indexed below it goes.
                indexed.merge(try store.files(under: folder)) { a, _ in a }
                continue
            }
            let result = SourceScanner.scan(source, below: folder == source.root ? nil : folder)
            for problem in result.problems {
                logger.warning("cannot scan part of a source", metadata: ["file.path": "\(problem.path)", "error": "\(problem.message)"])
            }
            if result.rootUnreadable { keepPrefixes.append(folder + "/") }
            if result.rootMissing && folder == source.root { removedRoots.append(folder) }
            keepPrefixes.append(contentsOf: result.unreadableFolders.map { $0 + "/" })
            for file in result.files where scanned[file.path] == nil && self.source(for: file.path)?.root == source.root {
                scanned[file.path] = file
            }
            indexed.merge(try store.files(under: folder)) { a, _ in a }
        }
        if changes.everything {
            // Files indexed outside every source (a source was dropped from the configuration).
            for (path, record) in try store.allFiles() where source(for: path) == nil { indexed[path] = record }
        }
        for root in removedRoots {
            logger.warning("source folder is missing; its files are removed from the index until it returns", metadata: ["source.path": "\(root)"])
        }
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

        // Single files: decide from the disk as it is now, whatever the event was.
        let covered = Array(outermost)
        for path in files where !covered.contains(where: { path.hasPrefix($0 + "/") }) {
            let record = try store.file(path: path)
            guard let source = source(for: path), source.acceptsFile(path: path) else {
                if record != nil { deletions.append(path) }
                continue
            }
            var st = stat()
            var exists = lstat(path, &st) == 0
            if exists && (st.st_mode & S_IFMT) == S_IFLNK { exists = source.followSymlinks && stat(path, &st) == 0 }
            guard exists, (st.st_mode & S_IFMT) == S_IFREG else {
                if record != nil { deletions.append(path) }
                continue
            }
            let file = ScannedFile(path: path, size: UInt64(st.st_size), mtimeNanos: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec))
            if let record { indexed[path] = record }
            if let record, record.size == file.size, record.mtimeNanos == file.mtimeNanos { continue }
            if record == nil, let seen = known[path], seen == (file.size, file.mtimeNanos) { continue }
            candidates.append(file)
        }

        candidates.sort { $0.path < $1.path }
        deletions.sort()
        let total = candidates.count + deletions.count
        state.withLock {
            $0.pending = total
            $0.done = 0
            $0.total = total
            if total > 0 && $0.state == .ready { $0.state = .indexing }
        }
        if total > 0 && changes.everything {
            logger.info("reconciling", metadata: ["files.changed": "\(candidates.count)", "files.deleted": "\(deletions.count)",
                                                  "files.total": "\(scanned.count)"])
        }
        if !deletions.isEmpty && !stopping {
            for batch in stride(from: 0, to: deletions.count, by: 512) {
                let slice = deletions[batch..<min(batch + 512, deletions.count)]
                summary.add(try store.apply(slice.map { .delete(path: $0) }))
                state.withLock { $0.pending -= slice.count; $0.done += slice.count }
            }
        }
        let batchSize = configuration.batchSize
        var index = 0
        while index < candidates.count && !stopping {
            let batch = Array(candidates[index..<min(index + batchSize, candidates.count)])
            index += batch.count
            summary.add(try store.apply(prepare(batch, indexed: indexed)))
            progressNanos.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed)
            state.withLock { $0.pending -= batch.count; $0.done += batch.count }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
        let (binary, large, unreadable) = skippedCounts()
        state.withLock {
            if changes.everything {
                $0.scans += 1
                $0.lastScanSeconds = seconds
            }
            $0.skippedBinary = binary
            $0.skippedTooLarge = large
            $0.unreadable = unreadable
            if !stopping && (changes.everything || $0.state != .starting) { $0.state = .ready; $0.pending = 0 }
        }
        if summary != WriteSummary() {
            logger.info("index updated", metadata: [
                "files.written": "\(summary.filesWritten)", "files.deleted": "\(summary.filesDeleted)",
                "files.moved": "\(summary.filesMoved)",
                "chunks.added": "\(summary.chunksAdded)", "chunks.kept": "\(summary.chunksKept)",
                "chunks.removed": "\(summary.chunksRemoved)", "seconds": "\(Double(Int(seconds * 1000)) / 1000)",
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
        source(for: path)?.followSymlinks ?? false
    }

    private func markSkipped(_ file: ScannedFile, _ reason: SkipReason?) {
        skipped.withLock { if reason == nil { $0[file.path] = nil } else { $0[file.path] = (file.size, file.mtimeNanos) } }
        skipReasons.withLock { $0[file.path] = reason }
    }

    /// One file: nil when there is nothing to write (unreadable: retried on the next scan).
    func prepareOne(_ file: ScannedFile, previous: FileRecord?) -> IndexChange? {
        let contents: FileContents
        let configuration = self.configuration
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
        filesMoved += other.filesMoved
    }
}

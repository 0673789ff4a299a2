import Dispatch
import Glibc
import Logging
import RagCore
import RagGzip
import RagStore
import Synchronization

/// Settings of the ingest pipeline.
public struct IndexerConfiguration: Sendable {
    public var sources: [SourceSpec]
    public var chunking: ChunkingConfiguration
    /// Files larger than this (gzipped ones: compressed or decompressed) are skipped with one log line.
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
    /// Files skipped because they are binary (or gzip that cannot be decompressed), too large (compressed or
    /// decompressed) or unreadable (as of the last pass).
    public var skippedBinary = 0
    public var skippedTooLarge = 0
    public var unreadable = 0
    public var lastError: String?
    /// What the pass in flight is doing: walking the folders to compare, writing, or nothing (`idle`).
    public enum Phase: String, Sendable { case idle, scanning, writing }
    public var phase: Phase = .idle
    /// Uptime (ns) when the current or last pass began, began writing, and ended (0 while it runs).
    public var passStartedNanos: UInt64 = 0
    public var writeStartedNanos: UInt64 = 0
    public var passEndedNanos: UInt64 = 0
    /// What every pass has written since start.
    public var written = WriteSummary()
    public init() {}

    /// Seconds the current pass has run so far, or the last pass took.
    public func elapsedSeconds(now: UInt64 = DispatchTime.now().uptimeNanoseconds) -> Double {
        guard passStartedNanos != 0 else { return 0 }
        let end = phase == .idle && passEndedNanos >= passStartedNanos ? passEndedNanos : now
        return Double(end &- passStartedNanos) / 1e9
    }

    /// Files per second of the current (or last) pass since it began writing; nil before a file is done.
    public func rate(now: UInt64 = DispatchTime.now().uptimeNanoseconds) -> Double? {
        guard done > 0, writeStartedNanos != 0 else { return nil }
        let end = phase == .idle && passEndedNanos >= writeStartedNanos ? passEndedNanos : now
        let seconds = Double(end &- writeStartedNanos) / 1e9
        return seconds > 0 ? Double(done) / seconds : nil
    }
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
    /// Files, and folders whose files, are read and chunked again even if unchanged (`reindex`); each is also
    /// in `files` or `folders`.
    public var reread: Set<String> = []

    public struct Move: Sendable, Equatable {
        public var from: String
        public var to: String
        public var isFolder: Bool
    }

    public init() {}

    public var isEmpty: Bool { files.isEmpty && folders.isEmpty && moves.isEmpty && !everything }

    /// Whether `path` is, or is below, a path of `reread`.
    func forcesReread(_ path: String) -> Bool {
        !reread.isEmpty && (reread.contains(path) || reread.contains { path.hasPrefix($0 + "/") })
    }
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
    /// What was last logged about each path (a skipped file, an unreadable folder, a link not followed…), so that
    /// rescans and repeated events do not log it again; cleared when the path is fine again or gone.
    private let reported = Mutex([String: String]())
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

    /// Logs `message` about `path` unless the same problem (`key`) was the last one logged for it.
    private func report(_ path: String, key: String, level: Logger.Level = .warning, _ message: Logger.Message,
                        metadata: Logger.Metadata = [:]) {
        let fresh = reported.withLock { reported in
            defer { reported[path] = key }
            return reported[path] != key
        }
        guard fresh else { return }
        var metadata = metadata
        metadata["file.path"] = "\(path)"
        logger.log(level: level, message, metadata: metadata)
    }

    /// The path is fine again (or gone): a later problem with it is logged again.
    private func clearReport(_ path: String) {
        _ = reported.withLock { $0.removeValue(forKey: path) }
    }

    /// After a full pass: forgets skips and reports of paths that neither exist as candidates any more nor had a
    /// problem in this pass, so counts reflect the last pass and a problem that comes back is logged again.
    private func forget(except keep: Set<String>) {
        skipped.withLock { map in for path in map.keys where !keep.contains(path) { map[path] = nil } }
        skipReasons.withLock { map in for path in map.keys where !keep.contains(path) { map[path] = nil } }
        reported.withLock { map in for path in map.keys where !keep.contains(path) { map[path] = nil } }
    }

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
        state.withLock {
            $0.phase = changes.everything || !changes.folders.isEmpty ? .scanning : .writing
            $0.passStartedNanos = started.uptimeNanoseconds
            $0.writeStartedNanos = 0
            $0.passEndedNanos = 0
        }
        defer {
            let written = summary
            state.withLock {
                $0.phase = .idle
                $0.passEndedNanos = DispatchTime.now().uptimeNanoseconds
                $0.written.add(written)
            }
        }
        var folders = changes.folders
        var files = changes.files
        // Files named by change events are checked by content even when their size and mtime look unchanged: a
        // second write within the file system's timestamp granularity leaves both as they were.
        let verify = changes.files
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
        var problemPaths = Set<String>()
        let outermost = folders.filter { folder in !folders.contains { $0 != folder && folder.hasPrefix($0 + "/") } }
        for folder in outermost.sorted() {
            guard let source = source(for: folder) else {
                // Not inside any source (a dropped source): everything indexed below it goes.
                indexed.merge(try store.files(under: folder)) { a, _ in a }
                continue
            }
            let result = SourceScanner.scan(source, below: folder == source.root ? nil : folder)
            for problem in result.problems {
                problemPaths.insert(problem.path)
                report(problem.path, key: "scan: " + problem.message, level: problem.severity == .info ? .info : .warning,
                       "skipped while scanning a source", metadata: ["reason": "\(problem.message)"])
            }
            if result.rootUnreadable { keepPrefixes.append(folder + "/") }
            if result.rootMissing && folder == source.root { removedRoots.append(folder) }
            if folder == source.root && !result.rootMissing && !result.rootUnreadable { clearReport(folder) }
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
            problemPaths.insert(root)
            report(root, key: "missing root", "source folder is missing; its files are removed from the index until it returns")
        }
        var deletions: [String] = []
        for path in indexed.keys where scanned[path] == nil {
            if keepPrefixes.contains(where: { path.hasPrefix($0) }) { continue }
            if outermost.contains(path) {
                // A reconciled "folder" indexed as a file: it was a file and may be one again (a folder renamed away
                // and a file renamed to its name); the single-file check below decides from the disk.
                files.insert(path)
                continue
            }
            deletions.append(path)
        }
        let known = skipped.withLock { $0 }
        var candidates: [ScannedFile] = []
        for (path, file) in scanned {
            let forced = changes.forcesReread(path)
            if !forced, let record = indexed[path], record.size == file.size, record.mtimeNanos == file.mtimeNanos { continue }
            if !forced, let seen = known[path], seen == (file.size, file.mtimeNanos), indexed[path] == nil { continue }
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
            var unfollowedLink = false
            if exists && (st.st_mode & S_IFMT) == S_IFLNK {
                if source.followSymlinks {
                    exists = stat(path, &st) == 0
                } else {
                    unfollowedLink = true
                    report(path, key: "scan: symbolic link not followed (follow_symlinks is off)", level: .info,
                           "skipped while scanning a source", metadata: ["reason": "symbolic link not followed (follow_symlinks is off)"])
                    exists = false
                }
            }
            if exists && !source.followSymlinks && source.hasSymlinkBelowRoot(parentFolder(of: path)) { exists = false }
            guard exists, (st.st_mode & S_IFMT) == S_IFREG else {
                if exists && (st.st_mode & S_IFMT) != S_IFDIR {
                    let message = "not a regular file (\(SourceScanner.kindName(st.st_mode & S_IFMT))); skipped"
                    report(path, key: "scan: " + message, "skipped while scanning a source", metadata: ["reason": "\(message)"])
                } else if !exists && !unfollowedLink {
                    forgetSkip(path)
                }
                if record != nil { deletions.append(path) }
                continue
            }
            let file = ScannedFile(path: path, size: UInt64(st.st_size), mtimeNanos: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec))
            if let record { indexed[path] = record }
            let forced = changes.forcesReread(path)
            if let record, record.size == file.size, record.mtimeNanos == file.mtimeNanos, !verify.contains(path) { continue }
            if !forced, record == nil, let seen = known[path], seen == (file.size, file.mtimeNanos) { continue }
            candidates.append(file)
        }

        candidates.sort { $0.path < $1.path }
        deletions.sort()
        let total = candidates.count + deletions.count
        state.withLock {
            $0.pending = total
            $0.done = 0
            $0.total = total
            $0.phase = .writing
            $0.writeStartedNanos = DispatchTime.now().uptimeNanoseconds
            if total > 0 && $0.state == .ready { $0.state = .indexing }
        }
        if total > 0 && changes.everything {
            logger.info("reconciling", metadata: ["files.changed": "\(candidates.count)", "files.deleted": "\(deletions.count)",
                                                  "files.total": "\(scanned.count)"])
        }
        if !deletions.isEmpty && !stopping {
            for batch in stride(from: 0, to: deletions.count, by: 512) {
                let slice = deletions[batch..<min(batch + 512, deletions.count)]
                summary.add(try applyInPieces(slice.map { .delete(path: $0) }))
                state.withLock { $0.pending -= slice.count; $0.done += slice.count }
            }
        }
        let batchSize = configuration.batchSize
        var index = 0
        while index < candidates.count && !stopping {
            let batch = Array(candidates[index..<min(index + batchSize, candidates.count)])
            index += batch.count
            summary.add(try applyInPieces(prepare(batch, indexed: indexed, reread: changes)))
            progressNanos.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed)
            state.withLock { $0.pending -= batch.count; $0.done += batch.count }
        }
        if changes.everything && !stopping {
            forget(except: problemPaths.union(scanned.keys))
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

    /// Applies `changes` in one transaction; if the index map is full (at its ceiling), one change per transaction
    /// instead, so that whatever fits gets in and each deletion frees pages for the next. Throws the first failure
    /// after trying them all (each file stays atomic either way).
    private func applyInPieces(_ changes: [IndexChange]) throws -> WriteSummary {
        do {
            return try store.apply(changes)
        } catch let failure as StoreError where failure.code == .mapFull && changes.count > 1 {
            var summary = WriteSummary()
            var firstFailure: (any Error)?
            for change in changes {
                do {
                    summary.add(try store.apply([change]))
                } catch let failure as StoreError where failure.code == .mapFull {
                    firstFailure = firstFailure ?? failure
                }
            }
            if let firstFailure { throw firstFailure }
            return summary
        }
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

    /// Reads, chunks and analyzes `files` in parallel; returns the changes for one transaction. Files that `reread`
    /// forces are chunked again even when their content is unchanged.
    func prepare(_ files: [ScannedFile], indexed: [String: FileRecord], reread: ChangeSet = ChangeSet()) -> [IndexChange] {
        let results = Mutex([IndexChange?](repeating: nil, count: files.count))
        DispatchQueue.concurrentPerform(iterations: files.count) { n in
            let change = prepareOne(files[n], previous: indexed[files[n].path], force: reread.forcesReread(files[n].path))
            results.withLock { $0[n] = change }
        }
        return results.withLock { $0.compactMap { $0 } }
    }

    private func markSkipped(_ file: ScannedFile, _ reason: SkipReason?) {
        skipped.withLock { if reason == nil { $0[file.path] = nil } else { $0[file.path] = (file.size, file.mtimeNanos) } }
        skipReasons.withLock { $0[file.path] = reason }
    }

    private func forgetSkip(_ path: String) {
        skipped.withLock { $0[path] = nil }
        skipReasons.withLock { $0[path] = nil }
        clearReport(path)
    }

    private func parentFolder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    /// One file: nil when there is nothing to write (unreadable: retried on the next scan). With `force`, an unchanged
    /// file is chunked and written again (its unchanged chunks keep their ids and vectors).
    func prepareOne(_ file: ScannedFile, previous: FileRecord?, force: Bool = false) -> IndexChange? {
        let contents: FileContents
        let configuration = self.configuration
        let source = source(for: file.path)
        switch FileReader.read(path: file.path, root: source?.root, followSymlinks: source?.followSymlinks ?? false,
                               maxBytes: configuration.maxFileBytes) {
        case .success(let c): contents = c
        case .failure(.vanished):
            forgetSkip(file.path)
            return previous == nil ? nil : .delete(path: file.path)
        case .failure(.notRegular):
            markSkipped(file, nil)
            report(file.path, key: "not regular", "skipped while scanning a source", metadata: ["reason": "not a regular file; skipped"])
            return previous == nil ? nil : .delete(path: file.path)
        case .failure(.tooLarge(let size, let limit)):
            markSkipped(file, .tooLarge)
            report(file.path, key: "too large \(size) \(file.mtimeNanos)", "skipping file over the size cap",
                   metadata: ["file.size": "\(size)", "limit": "\(limit)"])
            return previous == nil ? nil : .delete(path: file.path)
        case .failure(.unreadable(let message)):
            markSkipped(file, .unreadable)
            report(file.path, key: "unreadable: " + message, "cannot read file; keeping what is indexed and retrying on each scan",
                   metadata: ["error": "\(message)"])
            // Keep what is indexed; the file is retried (its mtime may not change when permissions are fixed).
            skipped.withLock { $0[file.path] = nil }
            return nil
        case .failure(.changing):
            // Keep what is indexed; the writer's next event (or the next scan) reads it again.
            report(file.path, key: "changing", level: .info, "file kept changing while being read; it is read again on its next change or scan")
            return nil
        }
        let hash = SHA256.hash(contents.bytes)
        if let previous, previous.contentHash == hash, !force {
            markSkipped(file, nil)
            clearReport(file.path)
            if previous.size == contents.size && previous.mtimeNanos == contents.mtimeNanos { return nil }
            return .touch(path: file.path, size: contents.size, mtimeNanos: contents.mtimeNanos)
        }
        let name = file.path.split(separator: "/").last.map(String.init) ?? file.path
        var bytes = contents.bytes
        if DocumentFormat.isCompressed(fileName: name) {
            // The size cap applies to the decompressed text too; inflating stops there.
            let limit = Int(min(configuration.maxFileBytes, UInt64(Int.max - 1)))
            switch Gzip.decompress(bytes, limit: limit) {
            case .success(let inflated):
                bytes = inflated
            case .failure(.tooLarge):
                markSkipped(file, .tooLarge)
                report(file.path, key: "too large decompressed \(hash.hex)", "skipping file over the size cap",
                       metadata: ["file.size": "\(contents.size)", "decompressed": "more than \(limit)",
                                  "limit": "\(configuration.maxFileBytes)"])
                return previous == nil ? nil : .delete(path: file.path)
            case .failure(.corrupt(let reason)):
                markSkipped(file, .binary)
                report(file.path, key: "corrupt gzip \(hash.hex)", "skipping compressed file that cannot be decompressed",
                       metadata: ["reason": "\(reason)"])
                return previous == nil ? nil : .delete(path: file.path)
            }
        }
        guard let decoded = TextDecoding.decode(bytes) else {
            markSkipped(file, .binary)
            report(file.path, key: "binary \(hash.hex)", "skipping binary file")
            return previous == nil ? nil : .delete(path: file.path)
        }
        markSkipped(file, nil)
        clearReport(file.path)
        if decoded.hadInvalidUTF8 {
            report(file.path, key: "invalid UTF-8 \(hash.hex)", "file is not valid UTF-8; decoded with replacement characters")
        }
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

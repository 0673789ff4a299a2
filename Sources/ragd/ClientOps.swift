import Glibc
import RagIngest
import RagProtocol
import RagQuery
import RagStore

/// Pieces of the `reindex`, `sources` and `status` replies that need the indexer, the watcher and the store.
extension Daemon {
    /// Whether `path` is `folder` or below it.
    static func path(_ path: String, isAtOrBelow folder: String) -> Bool {
        path == folder || path.hasPrefix(folder == "/" ? "/" : folder + "/")
    }

    /// The `reindex` op. A client may reindex what it may see: a file or folder inside a source visible to it
    /// (for a file of a source with `respect_file_permissions`, one it may read), or with no path every such source.
    /// Anything else is answered like a path outside every source (`not_found`), so hidden sources stay hidden.
    static func reindex(_ path: String?, view: AccessView, indexer: Indexer, loop: IngestLoop, store: Store) throws -> [(String, JSONValue)] {
        let roots = indexer.configuration.sources.map(\.root).filter(view.showsSource)
        var files: [String] = []
        var folders: [String] = []
        if let path {
            guard roots.contains(where: { Daemon.path(path, isAtOrBelow: $0) }) else {
                throw WireError(.notFound, "\(path) is not in any source")
            }
            var st = stat()
            if stat(path, &st) == 0 {
                if (st.st_mode & S_IFMT) == S_IFDIR { folders = [path] } else { files = [path] }
            } else {
                // Gone from the disk: the pass removes what is indexed there.
                let (asFile, below) = store.withChunkTable { table in
                    (table.files.values.contains { $0.path == path }, table.files.values.contains { $0.path.hasPrefix(path + "/") })
                }
                guard asFile || below else { throw WireError(.notFound, "nothing at \(path) on disk or in the index") }
                if asFile { files = [path] } else { folders = [path] }
            }
            if !files.isEmpty && view.restricts && !view.admits(path: path) {
                throw WireError(.notFound, "\(path) is not in any source")
            }
        } else {
            folders = roots
        }
        let targets = files + folders
        let indexed: [String] = store.withChunkTable { table in
            table.files.values.map(\.path).filter { file in targets.contains { Daemon.path(file, isAtOrBelow: $0) } }
        }
        let count = view.restricts ? indexed.count { view.admits(path: $0) } : indexed.count
        loop.reindex(files: files, folders: folders)
        return [("path", path.map { .string($0) } ?? .null), ("files", .int(Int64(count)))]
    }

    /// A source's watch state for `sources`: `watching` (its root has an inotify watch), `missing` (the root is
    /// gone; its return is watched for), `unwatched` (it exists but could not be watched: periodic rescans only) or
    /// `off` (no inotify at all); and how many folders of it are watched.
    static func watchFields(root: String, watcher: Watcher?) -> [(String, JSONValue)] {
        guard let watcher else { return [("watch", "off"), ("watched_folders", 0)] }
        let (rootWatched, folders) = watcher.watches(below: root)
        var st = stat()
        let state = rootWatched ? "watching" : (stat(root, &st) != 0 && errno == ENOENT ? "missing" : "unwatched")
        return [("watch", .string(state)), ("watched_folders", .int(Int64(folders)))]
    }

    /// `status` for a client from whom a source is hidden: the figures that count every source (the pass's files,
    /// vectors, work done since start, skipped files, watched folders, the map's use) are left out, so they cannot
    /// betray a hidden source's size or changes. `files`, `chunks` and `sources` are already those the client may see;
    /// `state` and `pending` stay, as the protocol requires them.
    static func withoutDaemonWideFigures(_ fields: [(String, JSONValue)]) -> [(String, JSONValue)] {
        let keep: [String: Set<String>] = [
            "progress": ["phase"], "embeddings": ["model", "dimensions", "state", "reason"], "watch": ["enabled", "limit_reached"],
        ]
        return fields.compactMap { key, value in
            switch key {
            case "since_start", "skipped", "index_map", "scans", "last_scan_s": return nil
            case "progress", "embeddings", "watch":
                guard case .object(let members) = value, let allowed = keep[key] else { return nil }
                return (key, .object(members.filter { allowed.contains($0.0) }))
            default: return (key, value)
            }
        }
    }

    /// The `progress` object of `status`: the current or last pass of the indexer.
    static func progressFields(_ status: IndexerStatus) -> JSONValue {
        .object([
            ("done", .int(Int64(status.done))), ("total", .int(Int64(status.total))),
            ("phase", .string(status.phase.rawValue)),
            ("elapsed_s", .double((status.elapsedSeconds() * 1000).rounded() / 1000)),
            ("rate", status.rate().map { .double(($0 * 10).rounded() / 10) } ?? .null),
        ])
    }

    /// The `since_start` object of `status`: what the indexer wrote and the embedder computed since start.
    static func sinceStartFields(_ written: WriteSummary, vectors: Int) -> JSONValue {
        .object([
            ("files_written", .int(Int64(written.filesWritten))), ("files_deleted", .int(Int64(written.filesDeleted))),
            ("files_moved", .int(Int64(written.filesMoved))), ("chunks_added", .int(Int64(written.chunksAdded))),
            ("chunks_kept", .int(Int64(written.chunksKept))), ("chunks_removed", .int(Int64(written.chunksRemoved))),
            ("vectors", .int(Int64(vectors))),
        ])
    }
}

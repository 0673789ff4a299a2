import CoreMetrics
import Dispatch
import Foundation
import Glibc
import Logging
import Synchronization

/// A change the watcher saw, in terms the indexer acts on. Paths are absolute.
public enum WatchEvent: Sendable, Equatable {
    /// A file was created, written and closed, or had its attributes changed: check it.
    case file(String)
    /// A file or folder was renamed inside the watched trees.
    case moved(from: String, to: String, isFolder: Bool)
    /// A folder appeared (created, moved in) or vanished (deleted, moved out), or a source root went away:
    /// bring everything indexed below it in line with the disk.
    case folder(String)
    /// Events were lost (`IN_Q_OVERFLOW`) or watches could not be set up: reconcile every source.
    case rescanAll
}

/// Facts about the watches, for `status`.
public struct WatchStatus: Sendable, Equatable {
    public var watchedFolders = 0
    /// Folders that could not be watched (for example `ENOSPC`: `fs.inotify.max_user_watches` reached); they
    /// are covered by the periodic rescan.
    public var unwatchedFolders = 0
    public var limitReached = false
    public var overflows = 0
    public init() {}
}

/// Recursive inotify watching of the sources on a dedicated thread.
///
/// Every folder below each source gets a watch; new folders are watched first and then reported, so files
/// written into them before the watch existed are picked up by the folder scan. `IN_MOVED_FROM`/`IN_MOVED_TO`
/// pairs are joined by cookie into moves; an unpaired `IN_MOVED_FROM` is a move out of the tree (a removal),
/// an unpaired `IN_MOVED_TO` a move in. `IN_Q_OVERFLOW` becomes `rescanAll`.
public final class Watcher: @unchecked Sendable {
    /// Folder events of interest. The corresponding C flags are `IN_CLOSE_WRITE`, `IN_CREATE`, `IN_DELETE`,
    /// `IN_MOVED_FROM`, `IN_MOVED_TO`, `IN_ATTRIB`, `IN_DELETE_SELF`, `IN_MOVE_SELF`, with `IN_ONLYDIR`,
    /// `IN_DONT_FOLLOW` and `IN_EXCL_UNLINK`.
    static let mask: UInt32 = UInt32(IN_CLOSE_WRITE) | UInt32(IN_CREATE) | UInt32(IN_DELETE) | UInt32(IN_MOVED_FROM)
        | UInt32(IN_MOVED_TO) | UInt32(IN_ATTRIB) | UInt32(IN_DELETE_SELF) | UInt32(IN_MOVE_SELF)
        | UInt32(IN_ONLYDIR) | UInt32(IN_DONT_FOLLOW) | UInt32(IN_EXCL_UNLINK)

    private struct State {
        var sources: [SourceSpec]
        var pathOfWatch: [Int32: String] = [:]
        var watchOfPath: [String: Int32] = [:]
        var status = WatchStatus()
        var limitLogged = false
        /// Watches on the parent folders of missing source roots, so a root that comes back is noticed: wd → parent.
        var parentWatches: [Int32: String] = [:]
    }

    private let fd: Int32
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let state: Mutex<State>
    private let logger: Logger
    private let deliver: @Sendable ([WatchEvent]) -> Void
    private let metrics: IngestMetrics
    private let drainRequests = Mutex<[DispatchSemaphore]>([])
    private let running = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    /// `deliver` is called on the watcher thread with each batch of events, in order. Overflows are counted in `metrics`.
    public init(sources: [SourceSpec], logger: Logger, metrics: IngestMetrics = IngestMetrics(),
                deliver: @escaping @Sendable ([WatchEvent]) -> Void) throws {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else {
            throw IngestError("cannot start inotify: \(String(cString: strerror(errno)))")
        }
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else {
            close(fd)
            throw IngestError("cannot create the watcher's wake pipe: \(String(cString: strerror(errno)))")
        }
        for end in pipeFDs {
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
        }
        self.fd = fd
        wakeRead = pipeFDs[0]
        wakeWrite = pipeFDs[1]
        state = Mutex(State(sources: sources))
        self.logger = logger
        self.deliver = deliver
        self.metrics = metrics
    }

    deinit {
        close(fd)
        close(wakeRead)
        close(wakeWrite)
    }

    public var status: WatchStatus { state.withLock { $0.status } }

    /// Whether the root folder `root` has a watch, and how many folders at or below it do.
    public func watches(below root: String) -> (rootWatched: Bool, folders: Int) {
        let prefix = root == "/" ? "/" : root + "/"
        return state.withLock { state in
            (state.watchOfPath[root] != nil, state.watchOfPath.keys.count { $0 == root || $0.hasPrefix(prefix) })
        }
    }

    /// Watches every folder of every source (call before the first scan, so nothing is missed in between),
    /// then starts the reading thread.
    public func start() {
        let sources = state.withLock { $0.sources }
        for source in sources {
            if watchTree(source.root, source: source).isEmpty { watchParent(of: source.root) }
        }
        running.store(true, ordering: .relaxed)
        let thread = Thread { [self] in
            run()
            finished.signal()
        }
        thread.start()
    }

    /// Stops the thread and waits for it.
    public func stop() {
        guard running.exchange(false, ordering: .relaxed) else { return }
        wake()
        finished.wait()
    }

    /// Replaces the sources (configuration reload): watches of dropped sources go, new ones are added.
    public func setSources(_ sources: [SourceSpec]) {
        let (old, dropped): ([SourceSpec], [Int32]) = state.withLock { state in
            let old = state.sources
            state.sources = sources
            var dropped: [Int32] = []
            for (path, wd) in state.watchOfPath where !sources.contains(where: { $0.root == path || $0.contains(path) }) {
                dropped.append(wd)
                state.watchOfPath[path] = nil
                state.pathOfWatch[wd] = nil
            }
            state.status.watchedFolders = state.watchOfPath.count
            return (old, dropped)
        }
        for wd in dropped { inotify_rm_watch(fd, wd) }
        for source in sources where !old.contains(source) { watchTree(source.root, source: source) }
    }

    /// Re-adds watches for source roots that exist again (a deleted or moved-away root that came back).
    public func rewatchMissingRoots() {
        let missing = state.withLock { state in state.sources.filter { state.watchOfPath[$0.root] == nil } }
        for source in missing {
            if watchTree(source.root, source: source).isEmpty { watchParent(of: source.root) }
        }
    }

    /// Watches the parent of a missing source root for the root's return (created or moved back).
    private func watchParent(of root: String) {
        guard let slash = root.lastIndex(of: "/") else { return }
        let parent = slash == root.startIndex ? "/" : String(root[..<slash])
        let alreadyWatched = state.withLock { $0.watchOfPath[parent] != nil || $0.parentWatches.values.contains(parent) }
        guard !alreadyWatched else { return }
        // IN_ATTRIB: a root that exists but could not be watched (not readable) is watched once its mode allows.
        let wd = inotify_add_watch(fd, parent, UInt32(IN_CREATE) | UInt32(IN_MOVED_TO) | UInt32(IN_ATTRIB) | UInt32(IN_ONLYDIR))
        guard wd >= 0 else { return }
        state.withLock { $0.parentWatches[wd] = parent }
    }

    /// Reads every event already queued in the kernel and hands it to `deliver` before returning, so changes
    /// made before this call are known to the indexer. Returns false if the watcher is not running.
    @discardableResult
    public func drain(timeout: Double = 5) -> Bool {
        guard running.load(ordering: .relaxed) else { return false }
        let done = DispatchSemaphore(value: 0)
        drainRequests.withLock { $0.append(done) }
        wake()
        return done.wait(timeout: .now() + timeout) == .success
    }

    private func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    // MARK: Watches

    /// Adds watches on `folder` and every folder below it that the source walks. Returns the folders watched.
    @discardableResult
    private func watchTree(_ folder: String, source: SourceSpec) -> [String] {
        var watched: [String] = []
        var stack = [folder]
        var visited = Set<[UInt64]>()
        while let path = stack.popLast() {
            var st = stat()
            guard lstat(path, &st) == 0 else { continue }
            if (st.st_mode & S_IFMT) == S_IFLNK {
                guard source.followSymlinks, stat(path, &st) == 0 else { continue }
            }
            guard (st.st_mode & S_IFMT) == S_IFDIR, visited.insert([UInt64(st.st_dev), UInt64(st.st_ino)]).inserted else { continue }
            guard addWatch(path) else { continue }
            watched.append(path)
            guard let dir = opendir(path) else { continue }
            while let entry = readdir(dir) {
                let type = entry.pointee.d_type
                guard type == UInt8(DT_DIR) || type == UInt8(DT_UNKNOWN) || (type == UInt8(DT_LNK) && source.followSymlinks) else { continue }
                // A folder whose name is not valid UTF-8 is skipped (the scan reports it).
                guard let name = String(validating: directoryEntryBytes(entry), as: UTF8.self) else { continue }
                if name == "." || name == ".." { continue }
                let child = path == "/" ? "/" + name : path + "/" + name
                if let rel = source.relativePath(of: child), !source.acceptsFolder(relativePath: rel) { continue }
                stack.append(child)
            }
            closedir(dir)
        }
        return watched
    }

    private func addWatch(_ path: String) -> Bool {
        var mask = Watcher.mask
        let followLinks = state.withLock { $0.sources.first(where: { $0.root == path || $0.contains(path) })?.followSymlinks ?? false }
        if followLinks { mask &= ~UInt32(IN_DONT_FOLLOW) }
        let wd = inotify_add_watch(fd, path, mask)
        if wd < 0 {
            let code = errno
            if code == ENOSPC {
                let limit = Watcher.readLimit()
                let first: Bool = state.withLock { state in
                    state.status.limitReached = true
                    state.status.unwatchedFolders += 1
                    defer { state.limitLogged = true }
                    return !state.limitLogged
                }
                if first {
                    logger.error("inotify watch limit reached; folders beyond it are covered by the periodic rescan only. Raise it with: sysctl fs.inotify.max_user_watches=\(max(limit * 2, 524288)) (and persist it in /etc/sysctl.d/)",
                                 metadata: ["inotify.max_user_watches": "\(limit)", "folder": "\(path)"])
                }
            } else if code == EACCES {
                // The scan reports the unreadable folder once; it is watched when its permissions change back.
                state.withLock { $0.status.unwatchedFolders += 1 }
                logger.debug("cannot watch folder", metadata: ["folder": "\(path)", "error": "\(String(cString: strerror(code)))"])
            } else if code != ENOENT && code != ENOTDIR {
                state.withLock { $0.status.unwatchedFolders += 1 }
                logger.warning("cannot watch folder", metadata: ["folder": "\(path)", "error": "\(String(cString: strerror(code)))"])
            }
            return false
        }
        state.withLock { state in
            if let old = state.pathOfWatch[wd], old != path { state.watchOfPath[old] = nil }
            state.pathOfWatch[wd] = path
            state.watchOfPath[path] = wd
            state.status.watchedFolders = state.watchOfPath.count
        }
        return true
    }

    static func readLimit() -> Int {
        let fd = open("/proc/sys/fs/inotify/max_user_watches", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = read(fd, &buffer, 32)
        guard n > 0 else { return 0 }
        return Int(String(decoding: buffer[0..<n], as: UTF8.self).trimmingWhitespace()) ?? 0
    }

    /// Drops the watches of `folder` and everything below it (it was deleted or moved out).
    private func forgetTree(_ folder: String) {
        let prefix = folder + "/"
        let wds: [Int32] = state.withLock { state in
            var wds: [Int32] = []
            for (path, wd) in state.watchOfPath where path == folder || path.hasPrefix(prefix) {
                wds.append(wd)
                state.watchOfPath[path] = nil
                state.pathOfWatch[wd] = nil
            }
            state.status.watchedFolders = state.watchOfPath.count
            return wds
        }
        for wd in wds { inotify_rm_watch(fd, wd) }
    }

    /// Re-keys the watches below a folder that was renamed inside the trees.
    private func renameTree(from old: String, to new: String) {
        let prefix = old + "/"
        state.withLock { state in
            var updates: [(String, String, Int32)] = []
            for (path, wd) in state.watchOfPath where path == old || path.hasPrefix(prefix) {
                updates.append((path, new + path.dropFirst(old.count), wd))
            }
            for (path, _, _) in updates { state.watchOfPath[path] = nil }
            for (_, newPath, wd) in updates {
                state.watchOfPath[newPath] = wd
                state.pathOfWatch[wd] = newPath
            }
        }
    }

    private func source(for path: String) -> SourceSpec? {
        state.withLock { state in
            state.sources.filter { $0.root == path || $0.contains(path) }.max { $0.root.count < $1.root.count }
        }
    }

    // MARK: Reading

    private struct RawEvent {
        var wd: Int32
        var mask: UInt32
        var cookie: UInt32
        var name: String
        /// The name's bytes were not valid UTF-8 (`name` is then empty).
        var invalidName = false
    }

    private func run() {
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        var pendingFrom: [UInt32: (path: String, isFolder: Bool)] = [:]
        while running.load(ordering: .relaxed) {
            var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            // While a move's first half waits for its second, wait only briefly.
            let timeout: Int32 = pendingFrom.isEmpty ? -1 : 5
            let ready = poll(&fds, 2, timeout)
            if ready < 0 {
                if errno == EINTR { continue }
                logger.error("inotify poll failed", metadata: ["error": "\(String(cString: strerror(errno)))"])
                return
            }
            if fds[1].revents != 0 {
                var sink = [UInt8](repeating: 0, count: 64)
                while read(wakeRead, &sink, 64) > 0 {}
            }
            var events: [WatchEvent] = []
            var gotAny = false
            // Read everything queued now.
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                gotAny = true
                var offset = 0
                while offset + 16 <= n {
                    let (raw, size) = buffer.withUnsafeBytes { bytes -> (RawEvent, Int) in
                        let wd = bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self)
                        let mask = bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
                        let cookie = bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self)
                        let length = Int(bytes.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
                        let nameBytes = UnsafeRawBufferPointer(rebasing: bytes[(offset + 16)..<min(offset + 16 + length, n)])
                        let raw = nameBytes.prefix(while: { $0 != 0 })
                        let name = String(validating: raw, as: UTF8.self)
                        return (RawEvent(wd: wd, mask: mask, cookie: cookie, name: name ?? "", invalidName: name == nil), 16 + length)
                    }
                    offset += size
                    translate(raw, into: &events, pendingFrom: &pendingFrom)
                }
            }
            let draining = drainRequests.withLock { $0.isEmpty == false }
            // Unpaired halves of moves: after a quiet moment (or on a drain), they were moves out of the trees.
            if !pendingFrom.isEmpty && (!gotAny || draining) {
                for (_, from) in pendingFrom.sorted(by: { $0.key < $1.key }) {
                    if from.isFolder { forgetTree(from.path) }
                    events.append(from.isFolder ? .folder(from.path) : .file(from.path))
                }
                pendingFrom.removeAll()
            }
            if !events.isEmpty { deliver(events) }
            if draining && pendingFrom.isEmpty {
                for request in drainRequests.withLock({ requests in defer { requests.removeAll() }; return requests }) { request.signal() }
            }
        }
        for request in drainRequests.withLock({ requests in defer { requests.removeAll() }; return requests }) { request.signal() }
    }

    private func translate(_ raw: RawEvent, into events: inout [WatchEvent], pendingFrom: inout [UInt32: (path: String, isFolder: Bool)]) {
        let mask = raw.mask
        if mask & UInt32(IN_Q_OVERFLOW) != 0 {
            state.withLock { $0.status.overflows += 1 }
            metrics.overflows.increment()
            logger.warning("inotify queue overflowed; reconciling all sources")
            events.append(.rescanAll)
            return
        }
        if let parent = state.withLock({ $0.parentWatches[raw.wd] }) {
            if mask & UInt32(IN_IGNORED) != 0 { state.withLock { _ = $0.parentWatches.removeValue(forKey: raw.wd) }; return }
            guard mask & UInt32(IN_ISDIR) != 0, !raw.name.isEmpty else { return }
            let path = parent == "/" ? "/" + raw.name : parent + "/" + raw.name
            var (returning, stillAwaiting): ([SourceSpec], Bool) = state.withLock { state in
                let returning = state.sources.filter { $0.root == path && state.watchOfPath[path] == nil }
                let awaiting = state.sources.contains { $0.root != path && $0.root.hasPrefix(parent + "/") && state.watchOfPath[$0.root] == nil }
                return (returning, awaiting)
            }
            for source in returning {
                if watchTree(source.root, source: source).isEmpty {
                    // There but not watchable yet (not readable): keep waiting for its next change.
                    stillAwaiting = true
                } else {
                    logger.notice("source folder is back", metadata: ["source.path": "\(source.root)"])
                }
                events.append(.folder(source.root))
            }
            if !returning.isEmpty && !stillAwaiting {
                state.withLock { _ = $0.parentWatches.removeValue(forKey: raw.wd) }
                inotify_rm_watch(fd, raw.wd)
            }
            return
        }
        guard let folder = state.withLock({ $0.pathOfWatch[raw.wd] }) else { return }
        if mask & UInt32(IN_IGNORED) != 0 {
            state.withLock { state in
                if state.pathOfWatch[raw.wd] == folder { state.pathOfWatch[raw.wd] = nil; state.watchOfPath[folder] = nil }
                state.status.watchedFolders = state.watchOfPath.count
            }
            return
        }
        if mask & (UInt32(IN_DELETE_SELF) | UInt32(IN_MOVE_SELF)) != 0 {
            // Only a source root matters here; other folders are reported by their parent's event.
            let isRoot = state.withLock { $0.sources.contains { $0.root == folder } }
            if isRoot {
                // The indexer's reconciliation logs the missing folder (once).
                logger.debug("source folder was deleted or moved away", metadata: ["source.path": "\(folder)"])
                forgetTree(folder)
                watchParent(of: folder)
                events.append(.folder(folder))
            }
            return
        }
        if raw.invalidName {
            // Not a path ragd can name: the folder's scan skips it and reports it once.
            events.append(.folder(folder))
            return
        }
        guard !raw.name.isEmpty else { return }
        let path = folder == "/" ? "/" + raw.name : folder + "/" + raw.name
        let isFolder = mask & UInt32(IN_ISDIR) != 0
        if mask & UInt32(IN_MOVED_FROM) != 0 {
            pendingFrom[raw.cookie] = (path, isFolder)
            return
        }
        if mask & UInt32(IN_MOVED_TO) != 0 {
            if let from = pendingFrom.removeValue(forKey: raw.cookie) {
                if isFolder {
                    renameTree(from: from.path, to: path)
                    // A folder moved somewhere the source does not walk (hidden, excluded): drop its watches.
                    if let source = source(for: path), let rel = source.relativePath(of: path), !source.acceptsFolder(relativePath: rel) {
                        forgetTree(path)
                    }
                }
                events.append(.moved(from: from.path, to: path, isFolder: isFolder))
            } else if isFolder {
                if let source = source(for: path) { watchTree(path, source: source) }
                events.append(.folder(path))
            } else {
                events.append(.file(path))
            }
            return
        }
        if isFolder {
            if mask & UInt32(IN_CREATE) != 0 {
                // Watch first, then report: the indexer's scan of the folder finds files written before the watch.
                if let source = source(for: path) {
                    if let rel = source.relativePath(of: path), !source.acceptsFolder(relativePath: rel) { return }
                    watchTree(path, source: source)
                }
                events.append(.folder(path))
            } else if mask & UInt32(IN_DELETE) != 0 {
                forgetTree(path)
                events.append(.folder(path))
            } else if mask & UInt32(IN_ATTRIB) != 0, state.withLock({ $0.watchOfPath[path] == nil }), let source = source(for: path) {
                // Permissions changed on a folder that could not be watched (or listed): try again, and check it.
                if let rel = source.relativePath(of: path), !source.acceptsFolder(relativePath: rel) { return }
                if !watchTree(path, source: source).isEmpty { events.append(.folder(path)) }
            }
            return
        }
        if mask & (UInt32(IN_CLOSE_WRITE) | UInt32(IN_CREATE) | UInt32(IN_DELETE) | UInt32(IN_ATTRIB)) != 0 {
            events.append(.file(path))
        }
    }
}

/// An ingest failure with a message for operators.
public struct IngestError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}

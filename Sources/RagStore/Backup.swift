import Dispatch
import Glibc
import Synchronization

/// What a backup wrote.
public struct BackupResult: Sendable, Equatable {
    /// The folder written (a state folder ragd can start from).
    public var path: String
    /// Size of the copied `data.mdb`.
    public var bytes: Int
    public var seconds: Double
}

/// Why a backup was not made: the destination is not acceptable, another backup is running, or the copy failed.
public struct BackupError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable { case destination, busy, failed }
    public var kind: Kind
    public var message: String
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
    public var description: String { message }
}

extension Store {
    /// Writes a compacted copy of one consistent snapshot of the index to `destination/<indexFolder>/data.mdb`,
    /// so that ragd can start with `--state-dir destination`. `destination` must be an absolute path that does not
    /// exist or is an empty folder. The copy is made in a hidden folder beside it (`.<name>.partial-…`), synced, and
    /// renamed into place at the end; on failure that folder is removed, so nothing is left at `destination`.
    ///
    /// Queries and writes go on meanwhile: LMDB copies from a read transaction. Like every transaction it holds the
    /// environment's gate shared, so a map growth needed meanwhile waits until the copy ends (queries do not: the
    /// gate prefers readers); to make that unlikely, the map is first grown to twice the bytes in use (within
    /// `maxMapSize`). The backup never takes a lock while holding the gate, so it cannot deadlock with a growth.
    /// One backup runs at a time (`BackupError.Kind.busy`).
    public func backup(to destination: String, indexFolder: String = "index") throws(BackupError) -> BackupResult {
        try backup(to: destination, indexFolder: indexFolder, whileHoldingGate: {})
    }

    /// `backup(to:indexFolder:)` with `whileHoldingGate` run just before the copy, with the gate already held
    /// (tests use it to start a map growth that must wait for the copy).
    func backup(to destination: String, indexFolder: String, whileHoldingGate: () -> Void) throws(BackupError) -> BackupResult {
        let started = DispatchTime.now().uptimeNanoseconds
        let components = destination.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        guard destination.hasPrefix("/"), destination.count > 1, !components.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
            throw BackupError(.destination, "the destination must be an absolute path without '.', '..' or empty components, got '\(destination)'")
        }
        let name = String(components.last!)
        let parent = components.count == 1 ? "/" : "/" + components.dropLast().joined(separator: "/")
        var st = stat()
        if lstat(destination, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFDIR else { throw BackupError(.destination, "\(destination) exists and is not a folder") }
            guard Store.isEmptyFolder(destination) else { throw BackupError(.destination, "\(destination) exists and is not empty") }
        } else if errno != ENOENT {
            throw BackupError(.destination, "cannot check \(destination): \(String(cString: strerror(errno)))")
        }
        guard stat(parent, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw BackupError(.destination, "the parent folder \(parent) does not exist or is not a folder")
        }
        guard backupRunning.withLock({ running in defer { running = true }; return !running }) else {
            throw BackupError(.busy, "a backup is already running")
        }
        defer { backupRunning.withLock { $0 = false } }

        let temporary = (parent == "/" ? "" : parent) + "/.\(name).partial-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
        let indexPath = temporary + "/" + indexFolder
        guard mkdir(temporary, 0o700) == 0 else {
            throw BackupError(.destination, "cannot create \(temporary): \(String(cString: strerror(errno)))")
        }
        var done = false
        defer {
            if !done {
                unlink(indexPath + "/data.mdb")
                rmdir(indexPath)
                rmdir(temporary)
            }
        }
        guard mkdir(indexPath, 0o700) == 0 else { throw BackupError(.failed, "cannot create \(indexPath): \(String(cString: strerror(errno)))") }

        // Room for the writes made during the copy: pages freed meanwhile cannot be reused until it ends.
        try? writeLock.write { _ in
            let size = env.mapSize
            let wanted = min(configuration.maxMapSize, max(size, env.usedBytes * 2))
            if wanted > size {
                try env.setMapSize(wanted)
                configuration.onMapResize?(size, env.mapSize)
            }
        }
        do {
            try env.copy(to: indexPath, whileHoldingGate: whileHoldingGate)
        } catch {
            throw BackupError(.failed, "copying the index to \(indexPath) failed: \(error)")
        }
        let bytes: Int
        do {
            bytes = try Store.syncFile(indexPath + "/data.mdb")
            _ = try Store.syncFile(indexPath)
            _ = try Store.syncFile(temporary)
        } catch {
            throw BackupError(.failed, "\(error)")
        }
        guard rename(temporary, destination) == 0 else {
            throw BackupError(errno == ENOTEMPTY || errno == EEXIST ? .destination : .failed,
                              "cannot rename \(temporary) to \(destination): \(String(cString: strerror(errno)))")
        }
        done = true
        _ = try? Store.syncFile(parent)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        return BackupResult(path: destination, bytes: bytes, seconds: seconds)
    }

    static func isEmptyFolder(_ path: String) -> Bool {
        guard let dir = opendir(path) else { return false }
        defer { closedir(dir) }
        let offset = MemoryLayout<dirent>.offset(of: \.d_name)!
        while let entry = readdir(dir) {
            // Only the name's own bytes: glibc's entry may end before the declared 256-byte array does.
            let name = String(cString: UnsafeRawPointer(entry).advanced(by: offset).assumingMemoryBound(to: CChar.self))
            if name != "." && name != ".." { return false }
        }
        return true
    }

    /// `fsync`s a file or folder; returns its size.
    static func syncFile(_ path: String) throws(BackupError) -> Int {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw BackupError(.failed, "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fsync(fd) == 0, fstat(fd, &st) == 0 else { throw BackupError(.failed, "cannot sync \(path): \(String(cString: strerror(errno)))") }
        return Int(st.st_size)
    }
}

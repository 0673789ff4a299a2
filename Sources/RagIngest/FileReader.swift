import Glibc

/// Why a file was not read.
public enum FileReadFailure: Error, Sendable, Equatable {
    /// Gone between the scan and the read.
    case vanished
    /// Not a regular file (FIFO, device, socket, folder).
    case notRegular
    /// Larger than the configured cap.
    case tooLarge(size: UInt64, limit: UInt64)
    /// Permission denied or an I/O error; retried on the next scan.
    case unreadable(String)
    /// The file kept changing while it was read (its size or mtime after the read differed from before, several
    /// times): nothing consistent could be read; the next change event or scan reads it again.
    case changing
}

/// The bytes of a file plus the size and mtime seen by `fstat` on the same descriptor.
public struct FileContents: Sendable {
    public var bytes: [UInt8]
    public var size: UInt64
    public var mtimeNanos: Int64
}

/// `O_PATH` (not exported by Swift's Glibc module): a descriptor that only names a place in the tree.
private let openPathOnly: Int32 = 0o10000000

public enum FileReader {
    /// Attempts at a consistent read of a file that changes while it is read.
    static let attempts = 3

    /// Called between the `fstat` and the reads (tests use it to change the file at that moment).
    nonisolated(unsafe) static var beforeReadForTesting: ((String) -> Void)?

    /// Reads a regular file without blocking on FIFOs or devices (they are never read). Without `followSymlinks`,
    /// no symbolic link below `root` is followed, in any component of the path (`root` itself may be reached
    /// through links). The bytes are those of one consistent moment: if the size or mtime changed during the read,
    /// it is read again (a few times, then `.changing`).
    public static func read(path: String, root: String? = nil, followSymlinks: Bool, maxBytes: UInt64) -> Result<FileContents, FileReadFailure> {
        var result: Result<FileContents, FileReadFailure> = .failure(.changing)
        for _ in 0..<attempts {
            result = readOnce(path: path, root: root, followSymlinks: followSymlinks, maxBytes: maxBytes)
            if case .failure(.changing) = result { continue }
            return result
        }
        return result
    }

    /// Opens `path` for reading; without `followSymlinks`, walks down from `root` one component at a time with
    /// `O_NOFOLLOW`, so a folder replaced by a link (to anywhere) is not entered.
    static func open(path: String, root: String?, followSymlinks: Bool) -> Int32 {
        let flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY
        if followSymlinks { return Glibc.open(path, flags) }
        guard let root, path.hasPrefix(root.hasSuffix("/") ? root : root + "/") else { return Glibc.open(path, flags | O_NOFOLLOW) }
        let components = path.dropFirst(root.count).split(separator: "/")
        guard let last = components.last else { errno = EISDIR; return -1 }
        var dir = Glibc.open(root, O_DIRECTORY | O_CLOEXEC | openPathOnly)
        if dir < 0 { return -1 }
        for component in components.dropLast() {
            let next = openat(dir, String(component), O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | openPathOnly)
            let code = errno
            close(dir)
            if next < 0 { errno = code == ELOOP ? ENOTDIR : code; return -1 }
            dir = next
        }
        let fd = openat(dir, String(last), flags | O_NOFOLLOW)
        let code = errno
        close(dir)
        errno = code
        return fd
    }

    static func readOnce(path: String, root: String?, followSymlinks: Bool, maxBytes: UInt64) -> Result<FileContents, FileReadFailure> {
        let fd = open(path: path, root: root, followSymlinks: followSymlinks)
        if fd < 0 {
            let code = errno
            if code == ENOENT || code == ENOTDIR { return .failure(.vanished) }
            if code == ELOOP { return .failure(.notRegular) }
            return .failure(.unreadable(String(cString: strerror(code))))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return .failure(.unreadable(String(cString: strerror(errno)))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { return .failure(.notRegular) }
        let size = UInt64(max(st.st_size, 0))
        if size > maxBytes { return .failure(.tooLarge(size: size, limit: maxBytes)) }
        let mtime = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        beforeReadForTesting?(path)
        // Read up to the cap plus one byte, so a file that grew past the cap since fstat is still caught.
        let capacity = Int(min(size, maxBytes)) + 1
        var bytes = [UInt8](repeating: 0, count: capacity)
        var filled = 0
        while true {
            if filled == bytes.count {
                if UInt64(filled) > maxBytes { return .failure(.tooLarge(size: UInt64(filled), limit: maxBytes)) }
                bytes.append(contentsOf: repeatElement(0, count: max(4096, bytes.count)))
            }
            let n = bytes.withUnsafeMutableBytes { raw in
                Glibc.read(fd, raw.baseAddress! + filled, raw.count - filled)
            }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return .failure(.unreadable(String(cString: strerror(errno))))
            }
            if n == 0 { break }
            filled += n
        }
        if UInt64(filled) > maxBytes { return .failure(.tooLarge(size: UInt64(filled), limit: maxBytes)) }
        // Written, truncated or replaced in place meanwhile: the bytes may mix two versions.
        var after = stat()
        guard fstat(fd, &after) == 0 else { return .failure(.unreadable(String(cString: strerror(errno)))) }
        if after.st_size != filled || after.st_mtim.tv_sec != st.st_mtim.tv_sec || after.st_mtim.tv_nsec != st.st_mtim.tv_nsec
            || UInt64(max(st.st_size, 0)) != UInt64(filled) {
            return .failure(.changing)
        }
        bytes.removeSubrange(filled...)
        return .success(FileContents(bytes: bytes, size: UInt64(filled), mtimeNanos: mtime))
    }
}

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
}

/// The bytes of a file plus the size and mtime seen by `fstat` on the same descriptor.
public struct FileContents: Sendable {
    public var bytes: [UInt8]
    public var size: UInt64
    public var mtimeNanos: Int64
}

public enum FileReader {
    /// Reads a regular file without following a final symlink and without blocking on FIFOs.
    public static func read(path: String, followSymlinks: Bool, maxBytes: UInt64) -> Result<FileContents, FileReadFailure> {
        var flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY
        if !followSymlinks { flags |= O_NOFOLLOW }
        let fd = open(path, flags)
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
        bytes.removeSubrange(filled...)
        return .success(FileContents(bytes: bytes, size: UInt64(filled), mtimeNanos: mtime))
    }
}

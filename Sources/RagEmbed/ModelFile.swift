import Glibc

/// Small helpers to read the model folder's text files with errors that name the file.
enum ModelFile {
    /// The largest text file read whole (vocabularies and configs are far smaller).
    static let maximumBytes = 64 << 20

    /// Whether `path` names an existing regular file.
    static func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }

    /// The bytes of the file at `path`.
    static func read(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let err = errno
            throw EmbedError(err == ENOENT ? .missingFile : .io, path: path,
                             err == ENOENT ? "file is missing" : "cannot open: \(String(cString: strerror(err)))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw EmbedError(.io, path: path, "cannot stat: \(String(cString: strerror(errno)))") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw EmbedError(.malformedFile, path: path, "not a regular file") }
        guard Int(info.st_size) <= maximumBytes else {
            throw EmbedError(.malformedFile, path: path, "file is \(info.st_size) bytes, over the \(maximumBytes)-byte limit")
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(info.st_size))
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw EmbedError(.io, path: path, "cannot read: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
            guard bytes.count <= maximumBytes else {
                throw EmbedError(.malformedFile, path: path, "file is over the \(maximumBytes)-byte limit")
            }
        }
        return bytes
    }

    /// `folder` and `name` joined with one slash.
    static func join(_ folder: String, _ name: String) -> String {
        folder.hasSuffix("/") ? folder + name : folder + "/" + name
    }
}

import Glibc
import RagCore

/// A documentation folder to index and which of its files count.
public struct SourceSpec: Sendable, Equatable {
    /// Absolute, normalised path of the folder.
    public var root: String
    public var include: [GlobPattern]
    public var exclude: [GlobPattern]
    /// Follow symbolic links (loops are detected); off by default.
    public var followSymlinks: Bool
    /// Skip names starting with a dot (`.git`, `.cache`, editor swap files).
    public var skipHidden: Bool

    public init(root: String, include: [GlobPattern] = [], exclude: [GlobPattern] = [], followSymlinks: Bool = false, skipHidden: Bool = true) {
        self.root = root
        self.include = include
        self.exclude = exclude
        self.followSymlinks = followSymlinks
        self.skipHidden = skipHidden
    }

    /// Whether a file (path relative to the root) is one ragd indexes: a known format, included and not excluded.
    public func accepts(relativePath: String) -> Bool {
        let name = relativePath.split(separator: "/").last.map(String.init) ?? relativePath
        guard DocumentFormat.detect(fileName: name) != nil else { return false }
        if !include.isEmpty && !include.contains(where: { $0.matches(relativePath) }) { return false }
        if exclude.contains(where: { $0.matches(relativePath) }) { return false }
        return true
    }

    /// Whether an absolute path lies inside this source.
    public func contains(_ path: String) -> Bool {
        path.hasPrefix(root.hasSuffix("/") ? root : root + "/")
    }

    /// The path relative to the root, or nil when outside the source.
    public func relativePath(of path: String) -> String? {
        guard contains(path) else { return nil }
        return String(path.dropFirst(root.hasSuffix("/") ? root.count : root.count + 1))
    }

    /// Whether a folder (relative path) is walked: not hidden when hidden folders are skipped, not excluded.
    public func acceptsFolder(relativePath: String) -> Bool {
        var rel = ""
        for component in relativePath.split(separator: "/") {
            if skipHidden && component.hasPrefix(".") { return false }
            rel = rel.isEmpty ? String(component) : rel + "/" + component
            if exclude.contains(where: { $0.matches(rel) || $0.matches(rel + "/") }) { return false }
        }
        return true
    }

    /// Whether a folder between the root (exclusive) and `path` (inclusive) is a symbolic link. The root itself
    /// may be reached through links; below it, nothing is followed unless `followSymlinks`.
    public func hasSymlinkBelowRoot(_ path: String) -> Bool {
        guard let rel = relativePath(of: path) else { return false }
        var current = root.hasSuffix("/") ? String(root.dropLast()) : root
        var st = stat()
        for component in rel.split(separator: "/") {
            current += "/" + component
            if lstat(current, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK { return true }
        }
        return false
    }

    /// Whether the file at an absolute path is one this source indexes (by name and place, not by content).
    public func acceptsFile(path: String) -> Bool {
        guard let rel = relativePath(of: path), !rel.isEmpty else { return false }
        let components = rel.split(separator: "/")
        guard let name = components.last else { return false }
        if skipHidden && name.hasPrefix(".") { return false }
        if SourceScanner.isEditorTemporary(String(name)) { return false }
        if components.count > 1 && !acceptsFolder(relativePath: components.dropLast().joined(separator: "/")) { return false }
        return accepts(relativePath: rel)
    }
}

/// A candidate file found on disk.
public struct ScannedFile: Sendable, Equatable {
    public var path: String
    public var size: UInt64
    public var mtimeNanos: Int64
}

/// Something a walk skipped or could not do, reported once per path (see `Indexer`).
public struct ScanProblem: Sendable, Equatable {
    public enum Severity: Sendable { case info, warning }
    /// The path (folder or file) concerned; names that are not valid UTF-8 are shown with `\xNN` escapes.
    public var path: String
    public var message: String
    public var severity: Severity
    public init(path: String, message: String, severity: Severity = .warning) {
        self.path = path
        self.message = message
        self.severity = severity
    }
}

/// What a walk of one source found.
public struct ScanResult: Sendable {
    public var files: [ScannedFile] = []
    /// Folders that could not be listed (their indexed files are kept, not deleted).
    public var unreadableFolders: [String] = []
    /// The root does not exist (all its indexed files go).
    public var rootMissing = false
    /// The root exists but cannot be listed (its indexed files are kept).
    public var rootUnreadable = false
    public var problems: [ScanProblem] = []
}

/// Walks a source folder with POSIX calls: no symlink following unless asked, loop-safe, never throws.
public enum SourceScanner {
    /// Walks the whole source, or only the folder `below` inside it (which must lie in the source).
    public static func scan(_ source: SourceSpec, below folder: String? = nil) -> ScanResult {
        var result = ScanResult()
        var st = stat()
        let start = folder ?? source.root
        var startRelative = ""
        if let folder, folder != source.root {
            guard let rel = source.relativePath(of: folder), source.acceptsFolder(relativePath: rel) else { return result }
            startRelative = rel
            if lstat(folder, &st) != 0 || ((st.st_mode & S_IFMT) == S_IFLNK && !source.followSymlinks) {
                result.rootMissing = true
                return result
            }
        }
        if stat(start, &st) != 0 {
            if errno == ENOENT || errno == ENOTDIR { result.rootMissing = true } else {
                result.rootUnreadable = true
                result.problems.append(ScanProblem(path: start, message: String(cString: strerror(errno))))
            }
            return result
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            result.rootMissing = true
            if folder == nil { result.problems.append(ScanProblem(path: start, message: "not a folder")) }
            return result
        }
        if folder != nil && !source.followSymlinks && source.hasSymlinkBelowRoot(start) {
            // A folder inside the source reached through a symbolic link: not part of the source.
            result.rootMissing = true
            return result
        }
        var visited: Set<[UInt64]> = [[UInt64(st.st_dev), UInt64(st.st_ino)]]
        var stack: [(path: String, relative: String)] = [(start, startRelative)]
        while let (folder, relative) = stack.popLast() {
            guard let dir = opendir(folder) else {
                if folder == start { result.rootUnreadable = true }
                result.unreadableFolders.append(folder)
                result.problems.append(ScanProblem(path: folder, message: "cannot list folder: \(String(cString: strerror(errno))); what is indexed below it is kept"))
                continue
            }
            defer { closedir(dir) }
            var names: [String] = []
            while let entry = readdir(dir) {
                let bytes = directoryEntryBytes(entry)
                guard let name = String(validating: bytes, as: UTF8.self) else {
                    // Such a name cannot be stored, reported in JSON or matched by globs without being confused with
                    // another one (a lossy decoding would merge names), so the entry is skipped.
                    let display = SourceScanner.displayName(bytes)
                    if !(source.skipHidden && bytes.first == UInt8(ascii: ".")) {
                        result.problems.append(ScanProblem(path: folder == "/" ? "/" + display : folder + "/" + display,
                                                           message: "name is not valid UTF-8; skipped (rename it to index it)"))
                    }
                    continue
                }
                if name == "." || name == ".." { continue }
                names.append(name)
            }
            for name in names.sorted() {
                if source.skipHidden && name.hasPrefix(".") { continue }
                if isEditorTemporary(name) { continue }
                let path = folder == "/" ? "/" + name : folder + "/" + name
                let rel = relative.isEmpty ? name : relative + "/" + name
                var info = stat()
                guard lstat(path, &info) == 0 else { continue }  // vanished while listing
                var kind = info.st_mode & S_IFMT
                if kind == S_IFLNK {
                    guard source.followSymlinks else {
                        // Reported when the link would have mattered: it names an indexable file or leads to a folder.
                        var target = stat()
                        let toFolder = stat(path, &target) == 0 && (target.st_mode & S_IFMT) == S_IFDIR
                        if (toFolder && source.acceptsFolder(relativePath: rel)) || (!toFolder && source.accepts(relativePath: rel)) {
                            result.problems.append(ScanProblem(path: path, message: "symbolic link not followed (follow_symlinks is off)", severity: .info))
                        }
                        continue
                    }
                    guard stat(path, &info) == 0 else {
                        if source.accepts(relativePath: rel) || source.acceptsFolder(relativePath: rel) {
                            result.problems.append(ScanProblem(path: path, message: "symbolic link cannot be followed: \(String(cString: strerror(errno)))"))
                        }
                        continue
                    }
                    kind = info.st_mode & S_IFMT
                }
                if kind == S_IFDIR {
                    if source.exclude.contains(where: { $0.matches(rel) || $0.matches(rel + "/") }) { continue }
                    let identity: [UInt64] = [UInt64(info.st_dev), UInt64(info.st_ino)]
                    if visited.contains(identity) {
                        result.problems.append(ScanProblem(path: path, message: "folder already walked through another path (a symbolic link loop or a second link to it); not walked again", severity: .info))
                        continue
                    }
                    visited.insert(identity)
                    stack.append((path, rel))
                } else if kind == S_IFREG {
                    guard source.accepts(relativePath: rel) else { continue }
                    let mtime = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
                    result.files.append(ScannedFile(path: path, size: UInt64(info.st_size), mtimeNanos: mtime))
                } else if source.accepts(relativePath: rel) {
                    // FIFOs, sockets and devices are never opened, so a FIFO without a writer cannot block the walk.
                    result.problems.append(ScanProblem(path: path, message: "not a regular file (\(SourceScanner.kindName(kind))); skipped"))
                }
            }
        }
        return result
    }

    /// A file-type name for logs.
    public static func kindName(_ kind: mode_t) -> String {
        switch kind {
        case S_IFIFO: return "FIFO"
        case S_IFSOCK: return "socket"
        case S_IFCHR: return "character device"
        case S_IFBLK: return "block device"
        case S_IFDIR: return "folder"
        case S_IFLNK: return "symbolic link"
        default: return "special file"
        }
    }

    /// A file name for logs and problems: valid UTF-8 as it is, other bytes as `\xNN`.
    public static func displayName(_ bytes: [UInt8]) -> String {
        var result = ""
        var rest = bytes[...]
        while !rest.isEmpty {
            // The longest valid prefix, then one escaped byte.
            var end = rest.endIndex
            while end > rest.startIndex, String(validating: rest[rest.startIndex..<end], as: UTF8.self) == nil { end -= 1 }
            result += String(decoding: rest[rest.startIndex..<end], as: UTF8.self)
            if end < rest.endIndex {
                let byte = rest[end]
                result += "\\x" + String(byte, radix: 16, uppercase: true).leftPadded(2)
                rest = rest[(end + 1)...]
            } else {
                rest = rest[end...]
            }
        }
        return result
    }

    /// Editor swap, backup and temporary files (vim `.swp`, emacs `#x#` and `x~`, `.tmp`).
    public static func isEditorTemporary(_ name: String) -> Bool {
        name.hasSuffix("~") || name.hasSuffix(".swp") || name.hasSuffix(".swx") || name.hasSuffix(".tmp")
            || (name.hasPrefix("#") && name.hasSuffix("#")) || name.hasPrefix(".#") || name == "4913"
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

/// The name bytes of a `readdir` entry. `d_name` is read in place up to its NUL: glibc sizes each record to its
/// name, so copying the whole 256-byte array reads past the end of the last record.
func directoryEntryBytes(_ entry: UnsafeMutablePointer<dirent>) -> [UInt8] {
    let offset = MemoryLayout<dirent>.offset(of: \.d_name)!
    let name = UnsafeRawPointer(entry).advanced(by: offset)
    return Array(UnsafeRawBufferPointer(start: name, count: strlen(name.assumingMemoryBound(to: CChar.self))))
}

import Glibc
import RagStore
import Synchronization

/// Who is asking: a socket client's credentials as the kernel reported them (`SO_PEERCRED`, `SO_PEERGROUPS`).
public struct Client: Sendable, Equatable, CustomStringConvertible {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32
    /// Supplementary groups.
    public var groups: [UInt32]

    public init(pid: Int32, uid: UInt32, gid: UInt32, groups: [UInt32] = []) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
        self.groups = groups
    }

    /// The daemon itself (in-process callers and tests): sees everything.
    public static var daemon: Client { Client(pid: getpid(), uid: geteuid(), gid: getegid()) }

    public func isMember(of group: UInt32) -> Bool { gid == group || groups.contains(group) }

    public var description: String { "pid \(pid) uid \(uid)" }
}

/// Who may see one source's files: its allow lists and whether file permissions are checked per client.
public struct SourceAccess: Sendable, Equatable {
    public var root: String
    /// nil with `groups` nil: open to every client that can connect.
    public var users: [UInt32]?
    public var groups: [UInt32]?
    public var respectFilePermissions: Bool

    public init(root: String, users: [UInt32]? = nil, groups: [UInt32]? = nil, respectFilePermissions: Bool = false) {
        self.root = root
        self.users = users
        self.groups = groups
        self.respectFilePermissions = respectFilePermissions
    }

    public var isRestricted: Bool { users != nil || groups != nil }

    /// Whether the allow lists admit `client` (file permissions aside).
    public func admits(_ client: Client) -> Bool {
        guard isRestricted else { return true }
        if let users, users.contains(client.uid) { return true }
        if let groups, groups.contains(where: client.isMember) { return true }
        return false
    }
}

/// The access rules of every source. Root and the daemon's own user are trusted: they can read the index itself.
public struct AccessPolicy: Sendable, Equatable {
    public var sources: [SourceAccess]
    public var trustedUIDs: [UInt32]

    public init(sources: [SourceAccess] = [], trustedUIDs: [UInt32] = [0, geteuid()]) {
        self.sources = sources
        self.trustedUIDs = trustedUIDs
    }

    /// What `client` may see, for one request.
    public func view(for client: Client) -> AccessView {
        if trustedUIDs.contains(client.uid) { return AccessView(client: client, hiddenRoots: [], permissionRoots: []) }
        let hidden = sources.filter { !$0.admits(client) }.map(\.root)
        let checked = sources.filter { $0.respectFilePermissions && $0.admits(client) }.map(\.root)
        return AccessView(client: client, hiddenRoots: hidden, permissionRoots: checked)
    }
}

/// One request's view of the index: source roots hidden from the client, roots whose files are shown only if the
/// client could read them, and a count of files withheld (for the refusal log line). Caches permission checks
/// for its lifetime, so keep one per request: a `chmod` is seen by the next request.
public final class AccessView: Sendable {
    public let client: Client
    public let hiddenRoots: [String]
    public let permissionRoots: [String]
    private let state = Mutex(State())

    struct State {
        var folders: [String: Bool] = [:]
        var withheld = 0
    }

    public init(client: Client, hiddenRoots: [String], permissionRoots: [String]) {
        self.client = client
        self.hiddenRoots = hiddenRoots
        self.permissionRoots = permissionRoots
    }

    /// A view that hides nothing.
    public static var everything: AccessView { AccessView(client: .daemon, hiddenRoots: [], permissionRoots: []) }

    /// Whether some files may be withheld from this client.
    public var restricts: Bool { !hiddenRoots.isEmpty || !permissionRoots.isEmpty }

    /// Files refused so far through this view.
    public var withheldFiles: Int { state.withLock { $0.withheld } }

    /// Whether a source root is visible (hidden roots do not appear in `status` or `sources`).
    public func showsSource(_ root: String) -> Bool { !hiddenRoots.contains(root) }

    /// Whether the file at `path` may be shown; a refusal is counted.
    public func admits(path: String) -> Bool {
        let allowed = decide(path)
        if !allowed { state.withLock { $0.withheld += 1 } }
        return allowed
    }

    private func decide(_ path: String) -> Bool {
        if hiddenRoots.contains(where: { ChunkFilter.path(path, isUnder: $0) }) { return false }
        guard permissionRoots.contains(where: { ChunkFilter.path(path, isUnder: $0) }) else { return true }
        // Path resolution needs search permission on every folder on the way, then read permission on the file.
        var folder = ""
        for component in path.split(separator: "/").dropLast() {
            folder += "/" + component
            let cached = state.withLock { $0.folders[folder] }
            let searchable = cached ?? permits(folder, bit: 1)
            if cached == nil { state.withLock { $0.folders[folder] = searchable } }
            if !searchable { return false }
        }
        return permits(path, bit: 4)
    }

    /// Whether the client's uid and groups grant `bit` (4 read, 1 search) on `path` by its owner, group and mode.
    /// POSIX ACLs are not consulted; root (uid 0) is granted everything, as the kernel would.
    private func permits(_ path: String, bit: UInt32) -> Bool {
        if client.uid == 0 { return true }
        var st = stat()
        guard stat(path, &st) == 0 else { return false }
        return AccessView.grants(mode: UInt32(st.st_mode), owner: st.st_uid, group: st.st_gid, client: client, bit: bit)
    }

    /// The owner/group/other classes of `mode` for `client`: the first class the client belongs to decides.
    public static func grants(mode: UInt32, owner: UInt32, group: UInt32, client: Client, bit: UInt32) -> Bool {
        if client.uid == owner { return mode & (bit << 6) != 0 }
        if client.isMember(of: group) { return mode & (bit << 3) != 0 }
        return mode & bit != 0
    }
}

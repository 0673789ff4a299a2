import Foundation
import RagConfig
import RagCore
import Testing

@Suite("DaemonConfiguration")
struct DaemonConfigurationTests {
    static let file = "/etc/ragd/ragd.toml"

    func parse(_ text: String) throws -> DaemonConfiguration {
        try DaemonConfiguration.parse(text, file: Self.file)
    }

    // MARK: Defaults

    @Test func defaults() throws {
        let c = DaemonConfiguration()
        #expect(c.stateDirectory == "/var/lib/ragd")
        #expect(c.logLevel == "info")
        #expect(c.socket.path == "/run/ragd/ragd.sock")
        #expect(c.socket.mode == 0o660)
        #expect(c.socket.group == nil)
        #expect(c.sources.isEmpty)
        #expect(c.chunking.targetTokens == 200)
        #expect(c.chunking.maxTokens == 256)
        #expect(c.chunking.overlapTokens == 32)
        #expect(c.bm25.k1 == 0.9)
        #expect(c.bm25.b == 0.4)
        #expect(c.limits.maxFileBytes == 16_777_216)
        #expect(c.limits.maxRequestBytes == 1_048_576)
        #expect(c.limits.maxK == 1000)
        #expect(c.limits.maxQueryBytes == 8192)
        #expect(c.limits.maxConnections == 256)
        #expect(c.index.mapSizeMB == 4096)
        #expect(c.index.maxMapSizeMB == 65536)
        #expect(c.index.rescanIntervalSeconds == 300)
        #expect(c.index.embeddingCacheOrphans == 10_000)
        let source = SourceSettings(path: "/x")
        #expect(source.include.isEmpty, "no narrowing: every file of a supported format")
        #expect(source.exclude.isEmpty)
        #expect(source.followSymlinks == false)
        #expect(source.skipHidden == true)
    }

    @Test func emptyFileGivesDefaults() throws {
        #expect(try parse("") == DaemonConfiguration())
        #expect(try parse("# nothing\n[socket]\n[chunking]\n[bm25]\n[limits]\n[index]\n") == DaemonConfiguration())
    }

    /// The documented example in `config/ragd.toml` parses and states the defaults.
    @Test func committedExampleParses() throws {
        let testFile = URL(fileURLWithPath: #filePath)
        let configDir = testFile.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("config")
        let path = configDir.appendingPathComponent("ragd.toml").path
        let c = try DaemonConfiguration.load(path: path)
        var expected = DaemonConfiguration()
        let examples = configDir.deletingLastPathComponent().appendingPathComponent("examples/docs").standardizedFileURL.path
        expected.sources = [SourceSettings(path: examples)]
        #expect(c == expected)
        #expect(c.sources.first?.path.hasSuffix("/examples/docs") == true)
        #expect(c.sources.first?.path.contains("..") == false)
    }

    @Test func everyKeySet() throws {
        let c = try parse("""
            state_dir = "/srv/ragd"
            log_level = "debug"
            [socket]
            path = "/tmp/r.sock"
            mode = "0600"
            group = "ragd"
            [[source]]
            path = "/usr/share/doc"
            include = ["*.md"]
            exclude = ["**/changelog*", "build/"]
            follow_symlinks = true
            skip_hidden = false
            [[source]]
            path = "/opt/docs"
            [chunking]
            target_tokens = 100
            max_tokens = 120
            overlap_tokens = 0
            [bm25]
            k1 = 1
            b = 0.75
            [limits]
            max_file_bytes = 1
            max_request_bytes = 2
            max_k = 3
            max_query_bytes = 4
            max_connections = 5
            request_timeout_ms = 6
            idle_timeout_seconds = 7
            max_pipelined_requests = 8
            max_reply_buffer_bytes = 9
            [index]
            map_size_mb = 64
            rescan_interval_seconds = 0
            embedding_cache_orphans = 12
            """)
        let expected = DaemonConfiguration(
            stateDirectory: "/srv/ragd",
            logLevel: "debug",
            socket: SocketSettings(path: "/tmp/r.sock", mode: 0o600, group: "ragd"),
            sources: [
                SourceSettings(
                    path: "/usr/share/doc", include: [try GlobPattern("*.md")],
                    exclude: [try GlobPattern("**/changelog*"), try GlobPattern("build/")],
                    followSymlinks: true, skipHidden: false),
                SourceSettings(path: "/opt/docs"),
            ],
            chunking: ChunkingSettings(targetTokens: 100, maxTokens: 120, overlapTokens: 0),
            bm25: BM25Settings(k1: 1.0, b: 0.75),
            limits: LimitSettings(maxFileBytes: 1, maxRequestBytes: 2, maxK: 3, maxQueryBytes: 4, maxConnections: 5,
                                  requestTimeoutMs: 6, idleTimeoutSeconds: 7, maxPipelinedRequests: 8, maxReplyBufferBytes: 9),
            index: IndexSettings(mapSizeMB: 64, rescanIntervalSeconds: 0, embeddingCacheOrphans: 12))
        #expect(c == expected)
    }

    @Test(arguments: [
        ("\"0660\"", 0o660), ("\"660\"", 0o660), ("\"0o755\"", 0o755), ("\"0\"", 0),
        ("0o644", 0o644), ("0o777", 0o777), ("384", 0o600),
    ] as [(String, UInt32)])
    func socketMode(value: String, expected: UInt32) throws {
        #expect(try parse("[socket]\nmode = \(value)").socket.mode == expected)
    }

    @Test func accessListsResolveNamesAndIds() throws {
        let c = try parse("""
            [socket]
            owner = "root"
            [[source]]
            path = "/a"
            allow_users = ["root", 1000, "1001", 1000]
            allow_groups = ["root", 4242]
            respect_file_permissions = true
            [[source]]
            path = "/b"
            """)
        #expect(c.socket.owner == "root")
        #expect(c.sources[0].allowUsers == [0, 1000, 1001])
        #expect(c.sources[0].allowGroups == [0, 4242])
        #expect(c.sources[0].respectFilePermissions)
        #expect(c.sources[1].allowUsers == nil && c.sources[1].allowGroups == nil && !c.sources[1].respectFilePermissions)
    }

    @Test func emptyGroupMeansNone() throws {
        #expect(try parse("[socket]\ngroup = \"\"").socket.group == nil)
        #expect(try parse("[socket]\ngroup = \"adm\"").socket.group == "adm")
    }

    // MARK: Paths

    @Test(arguments: [
        ("docs", "/etc/ragd/docs"),
        ("./docs/", "/etc/ragd/docs"),
        ("../shared/./docs//", "/etc/shared/docs"),
        ("../../../../up", "/up"),
        ("/srv//docs/", "/srv/docs"),
        ("/a/b/../c", "/a/c"),
    ])
    func relativeSourcePathsResolveAgainstConfigFolder(path: String, expected: String) throws {
        let c = try parse("[[source]]\npath = \"\(path)\"")
        #expect(c.sources.map(\.path) == [expected])
    }

    @Test func relativeStateAndSocketPaths() throws {
        let c = try parse("state_dir = \"state\"\n[socket]\npath = \"run/ragd.sock\"")
        #expect(c.stateDirectory == "/etc/ragd/state")
        #expect(c.socket.path == "/etc/ragd/run/ragd.sock")
    }

    @Test func relativeConfigFileUsesWorkingDirectory() throws {
        let c = try DaemonConfiguration.parse("[[source]]\npath = \"docs\"", file: "conf/ragd.toml")
        let cwd = FileManager.default.currentDirectoryPath
        #expect(c.sources.map(\.path) == [URL(fileURLWithPath: cwd).appendingPathComponent("conf/docs").standardizedFileURL.path])
    }

    @Test func loadResolvesAgainstTheFilesFolder() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ragd-config-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("ragd.toml")
        try Data("[[source]]\npath = \"corpus\"\n".utf8).write(to: file)
        let c = try DaemonConfiguration.load(path: file.path)
        #expect(c.sources.map(\.path) == [dir.appendingPathComponent("corpus").standardizedFileURL.path])

        try Data([0x61, 0x20, 0x3D, 0x20, 0x22, 0xFF, 0x22]).write(to: file)
        let error = try #require(throws: ConfigError.self) { try DaemonConfiguration.load(path: file.path) }
        #expect(error.message.contains("UTF-8"))
    }

    @Test func missingFileIsReported() throws {
        let error = try #require(throws: ConfigError.self) { try DaemonConfiguration.load(path: "/nonexistent/ragd.toml") }
        #expect(error.file == "/nonexistent/ragd.toml")
        #expect(error.line == nil)
        #expect(error.description.hasPrefix("/nonexistent/ragd.toml: cannot open the configuration file: "))
    }

    // MARK: Errors

    @Test func errorDescriptionFormat() throws {
        let error = try #require(throws: ConfigError.self) { try parse("\n[limits]\nmax_k = \"10\"") }
        #expect(error == ConfigError(file: Self.file, line: 3, key: "limits.max_k", message: "expected an integer, got a string"))
        #expect(error.description == "/etc/ragd/ragd.toml:3: key 'limits.max_k': expected an integer, got a string")
    }

    @Test func syntaxErrorsCarryLineAndColumn() throws {
        let error = try #require(throws: ConfigError.self) { try parse("log_level = \"info\"\n[limits]\nmax_k = ten") }
        #expect(error.line == 3)
        #expect(error.column == 9)
        #expect(error.key == nil)
        #expect(error.description == "/etc/ragd/ragd.toml:3:9: expected a value, found 'ten' (strings need quotes)")
    }

    struct Bad: Sendable, CustomTestStringConvertible {
        var toml: String
        var line: Int
        var key: String
        var message: String
        var testDescription: String { "\(key): \(message)" }
        init(_ toml: String, _ line: Int, _ key: String, _ message: String) {
            self.toml = toml
            self.line = line
            self.key = key
            self.message = message
        }
    }

    static let bad: [Bad] = [
        // Unknown keys (typo protection).
        Bad("stat_dir = \"/x\"", 1, "stat_dir", "unknown key (did you mean 'state_dir'?)"),
        Bad("[limits]\nmax_kk = 5", 2, "limits.max_kk", "unknown key (did you mean 'max_k'?)"),
        Bad("[[source]]\npath = \"/a\"\nfollow_symlink = true", 3, "source[0].follow_symlink", "unknown key (did you mean 'follow_symlinks'?)"),
        Bad("\n[database]\nx = 1", 2, "database", "unknown key; expected one of: state_dir, log_level"),
        Bad("[socket]\nuser = \"me\"", 2, "socket.user", "unknown key; expected one of: path, mode, group, owner"),
        Bad("[socket]\nowner = \"no-such-user-here\"", 2, "socket.owner", "unknown user 'no-such-user-here'"),
        Bad("[[source]]\npath = \"/a\"\nallow_users = \"root\"", 3, "source[0].allow_users", "expected an array of user names or ids, got a string"),
        Bad("[[source]]\npath = \"/a\"\nallow_users = [\"no-such-user-here\"]", 3, "source[0].allow_users[0]", "unknown user 'no-such-user-here'"),
        Bad("[[source]]\npath = \"/a\"\nallow_groups = [-1]", 3, "source[0].allow_groups[0]", "-1 is not a valid group id"),
        Bad("[[source]]\npath = \"/a\"\nallow_groups = [true]", 3, "source[0].allow_groups[0]", "expected a group name or id, got a boolean"),
        Bad("[index]\nrescan = 5", 2, "index.rescan", "unknown key"),
        // Types.
        Bad("state_dir = 5", 1, "state_dir", "expected a string, got an integer"),
        Bad("log_level = 3", 1, "log_level", "expected a string, got an integer"),
        Bad("socket = 5", 1, "socket", "expected a table ([socket]), got an integer"),
        Bad("[[chunking]]", 1, "chunking", "expected a table ([chunking]), got an array"),
        Bad("[socket]\npath = [\"/a\"]", 2, "socket.path", "expected a string, got an array"),
        Bad("[socket]\nmode = true", 2, "socket.mode", "expected a string of octal digits (\"0660\") or an integer (0o660), got a boolean"),
        Bad("[socket]\ngroup = 0", 2, "socket.group", "expected a string, got an integer"),
        Bad("[chunking]\ntarget_tokens = 1.5", 2, "chunking.target_tokens", "expected an integer, got a float"),
        Bad("[bm25]\nk1 = \"high\"", 2, "bm25.k1", "expected a number, got a string"),
        Bad("[limits]\nmax_connections = \"many\"", 2, "limits.max_connections", "expected an integer, got a string"),
        Bad("[index]\nmap_size_mb = 1e3", 2, "index.map_size_mb", "expected an integer, got a float"),
        Bad("[source]\npath = \"/a\"", 1, "source", "expected an array of tables ([[source]]), got a table"),
        Bad("source = [1]", 1, "source[0]", "expected a table, got an integer"),
        Bad("[[source]]\npath = 5", 2, "source[0].path", "expected a string, got an integer"),
        Bad("[[source]]\npath = \"/a\"\ninclude = \"*.md\"", 3, "source[0].include", "expected an array of glob strings, got a string"),
        Bad("[[source]]\npath = \"/a\"\nexclude = [\"ok\", 7]", 3, "source[0].exclude[1]", "expected a string, got an integer"),
        Bad("[[source]]\npath = \"/a\"\nskip_hidden = \"yes\"", 3, "source[0].skip_hidden", "expected a boolean (true or false), got a string"),
        // Values and ranges.
        Bad("log_level = \"verbose\"", 1, "log_level", "must be one of trace, debug, info, notice, warning, error, critical; got 'verbose'"),
        Bad("state_dir = \"\"", 1, "state_dir", "must not be empty"),
        Bad("[socket]\npath = \"\"", 2, "socket.path", "must not be empty"),
        Bad("[socket]\nmode = \"0999\"", 2, "socket.mode", "expected octal digits such as \"0660\", got \"0999\""),
        Bad("[socket]\nmode = \"\"", 2, "socket.mode", "expected octal digits"),
        Bad("[socket]\nmode = 0o1777", 2, "socket.mode", "must be between 0 and 0o777, got 0o1777"),
        Bad("[socket]\nmode = 660", 2, "socket.mode", "must be between 0 and 0o777, got 0o1224"),
        Bad("[socket]\nmode = -1", 2, "socket.mode", "must be between 0 and 0o777"),
        Bad("[bm25]\nk1 = 0", 2, "bm25.k1", "must be a finite number greater than 0, got 0.0"),
        Bad("[bm25]\nk1 = -1.5", 2, "bm25.k1", "greater than 0"),
        Bad("[bm25]\nk1 = inf", 2, "bm25.k1", "finite"),
        Bad("[bm25]\nk1 = nan", 2, "bm25.k1", "finite"),
        Bad("[bm25]\nb = 1.5", 2, "bm25.b", "must be between 0 and 1, got 1.5"),
        Bad("[bm25]\nb = -0.1", 2, "bm25.b", "must be between 0 and 1"),
        Bad("[bm25]\nb = nan", 2, "bm25.b", "must be between 0 and 1"),
        Bad("[chunking]\ntarget_tokens = 0", 2, "chunking.target_tokens", "must be greater than 0, got 0"),
        Bad("[chunking]\nmax_tokens = -3", 2, "chunking.max_tokens", "must be greater than 0, got -3"),
        Bad("[chunking]\noverlap_tokens = -1", 2, "chunking.overlap_tokens", "must not be negative"),
        Bad("[chunking]\ntarget_tokens = 300", 2, "chunking.target_tokens", "target_tokens (300) must not exceed max_tokens (256)"),
        Bad("[chunking]\nmax_tokens = 100", 2, "chunking.max_tokens", "target_tokens (200) must not exceed max_tokens (100)"),
        Bad("[chunking]\noverlap_tokens = 200", 2, "chunking.overlap_tokens", "overlap_tokens (200) must be less than target_tokens (200)"),
        Bad("[chunking]\n\ntarget_tokens = 20", 3, "chunking.target_tokens", "overlap_tokens (32) must be less than target_tokens (20)"),
        Bad("[limits]\nmax_file_bytes = 0", 2, "limits.max_file_bytes", "must be greater than 0, got 0"),
        Bad("[limits]\nmax_request_bytes = -1", 2, "limits.max_request_bytes", "must be greater than 0"),
        Bad("[limits]\nmax_k = 0", 2, "limits.max_k", "must be greater than 0"),
        Bad("[limits]\nmax_query_bytes = 0", 2, "limits.max_query_bytes", "must be greater than 0"),
        Bad("[limits]\nmax_connections = 0", 2, "limits.max_connections", "must be greater than 0"),
        Bad("[limits]\nmax_pipelined_requests = 0", 2, "limits.max_pipelined_requests", "must be greater than 0, got 0"),
        Bad("[limits]\nmax_reply_buffer_bytes = -4", 2, "limits.max_reply_buffer_bytes", "must be greater than 0, got -4"),
        Bad("[limits]\nrequest_timeout_ms = 0", 2, "limits.request_timeout_ms", "must be between 1 and 86400000, got 0"),
        Bad("[limits]\n\nrequest_timeout_ms = 86400001", 3, "limits.request_timeout_ms", "must be between 1 and 86400000"),
        Bad("[limits]\nidle_timeout_seconds = -1", 2, "limits.idle_timeout_seconds", "must be between 1 and 31536000, got -1"),
        Bad("[limits]\nidle_timeout_seconds = 1.5", 2, "limits.idle_timeout_seconds", "expected an integer, got a float"),
        Bad("[limits]\nidle_timeout = 5", 2, "limits.idle_timeout", "unknown key"),
        Bad("[index]\nmap_size_mb = 0", 2, "index.map_size_mb", "must be between 1 and 16777216"),
        Bad("[index]\nmap_size_mb = 128\nmax_map_size_mb = 64", 3, "index.max_map_size_mb", "must not be less than map_size_mb (128)"),
        Bad("[index]\nmax_map_size_mb = 0", 2, "index.max_map_size_mb", "must be between 1 and 16777216"),
        Bad("[index]\nrescan_interval_seconds = -1", 2, "index.rescan_interval_seconds", "must not be negative"),
        Bad("[index]\n\nembedding_cache_orphans = -1", 3, "index.embedding_cache_orphans", "must be between 0 (keep none) and 100000000, got -1"),
        // Sources.
        Bad("[[source]]\ninclude = [\"*.md\"]", 1, "source[0].path", "missing required key"),
        Bad("[[source]]\npath = \"\"", 2, "source[0].path", "must not be empty"),
        Bad("[[source]]\npath = \"/a\"\n[[source]]\npath = \"/a/\"", 4, "source[1].path", "duplicate source path '/a' (already listed at line 2)"),
        Bad("[[source]]\npath = \"docs\"\n[[source]]\npath = \"/etc/ragd/docs\"", 4, "source[1].path", "duplicate source path '/etc/ragd/docs'"),
        Bad("[[source]]\npath = \"/a\"\ninclude = [\"ok\", \"[bad\"]", 3, "source[0].include[1]", "invalid glob pattern '[bad': unclosed '['"),
        Bad("[[source]]\npath = \"/a\"\nexclude = [\n  \"*.tmp\",\n  \"x//y\",\n]", 5, "source[0].exclude[1]", "invalid glob pattern 'x//y'"),
        Bad("[[source]]\npath = \"/a\"\ninclude = []", 3, "source[0].include", "must list at least one pattern"),
    ]

    @Test(arguments: bad)
    func validationErrorNamesFileLineAndKey(_ c: Bad) {
        do {
            let config = try parse(c.toml)
            Issue.record("expected an error, got \(config)")
        } catch let error as ConfigError {
            #expect(error.file == Self.file)
            #expect(error.line == c.line, "\(error)")
            #expect(error.key == c.key, "\(error)")
            #expect(error.message.contains(c.message), "\(error)")
            #expect(error.description.hasPrefix("\(Self.file):\(c.line): key '\(c.key)': "))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }
}

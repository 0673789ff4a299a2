import Foundation
import RagProtocol
import RagTestSupport
import Testing

/// Per-source allow lists and file permissions, checked against clients of other uids: the test runs clients under
/// `setpriv` with another uid and groups, so the daemon sees real `SO_PEERCRED` credentials. Needs root.
@Suite(.serialized, .timeLimit(.minutes(5)), .enabled(if: getuid() == 0, "switching a client's uid needs root"))
struct AccessTests {
    static let nobody = "65534"
    static let team: UInt32 = 4242

    /// Sends each request on one connection as `uid` with `groups` and returns the replies, parsed.
    func requests(_ lines: [String], socket: String, uid: String = AccessTests.nobody, groups: [UInt32] = []) throws -> [JSONValue] {
        let script = """
            import socket, sys
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(sys.argv[1])
            f = s.makefile("rwb")
            for line in sys.argv[2:]:
                f.write(line.encode() + b"\\n"); f.flush()
                sys.stdout.write(f.readline().decode())
            """
        let groupArguments = groups.isEmpty ? ["--clear-groups"] : ["--groups", groups.map(String.init).joined(separator: ",")]
        let output = try runProgram("/usr/bin/setpriv", ["--reuid", uid, "--regid", uid] + groupArguments + ["/usr/bin/python3", "-c", script, socket] + lines)
        guard output.status == 0 else { throw TestSupportError("client as uid \(uid) failed: \(output.stderr)") }
        return try output.stdout.split(separator: "\n").map { try JSONParser.parse(String($0)) }
    }

    func paths(_ reply: JSONValue) -> Set<String> {
        Set(reply["results"]?.arrayValue?.compactMap { $0["path"]?.stringValue } ?? [])
    }

    @Test func allowListsAndFilePermissionsHideWhatAClientMayNotRead() throws {
        try withTemporaryDirectory { (dir: String) throws in
            chmod(dir, 0o755)  // other users must reach the socket
            try writeFile(dir + "/public/open.md", "# Open\n\nThe harbour schedule lists every ferry.\n")
            try writeFile(dir + "/secret/plans.md", "# Plans\n\nThe ferry merger codename is bluefin.\n")
            try writeFile(dir + "/team/notes.md", "# Notes\n\nThe ferry roster rotates weekly for the crew.\n")
            try writeFile(dir + "/perm/private.md", "# Private\n\nThe ferry salary table is confidential.\n")
            try writeFile(dir + "/perm/shared.md", "# Shared\n\nThe ferry timetable is posted at the pier.\n")
            chmod(dir + "/perm/private.md", 0o600)
            chmod(dir + "/perm/shared.md", 0o644)
            let config = dir + "/ragd.toml"
            try writeFile(config, """
                [socket]
                mode = "0666"
                [[source]]
                path = "public"
                [[source]]
                path = "secret"
                allow_users = ["root"]
                [[source]]
                path = "team"
                allow_groups = [\(Self.team)]
                [[source]]
                path = "perm"
                respect_file_permissions = true
                """)
            let socket = dir + "/ragd.sock"
            let daemon = try DaemonProcess(arguments: ["--config", config, "--state-dir", dir + "/state", "--socket", socket],
                                           socketPath: socket, workDirectory: dir)
            try daemon.waitUntilReady()
            try daemon.waitUntilIndexed()
            let root = try daemon.client()
            let search = #"{"id":1,"op":"search","query":"ferry","k":10,"mode":"bm25"}"#

            // Root sees everything.
            let all = try JSONParser.parse(root.request(search))
            #expect(paths(all) == [dir + "/public/open.md", dir + "/secret/plans.md", dir + "/team/notes.md", dir + "/perm/private.md",
                                   dir + "/perm/shared.md"])
            let secretChunk = try #require(all["results"]?.arrayValue?.first { $0["path"]?.stringValue == dir + "/secret/plans.md" }?["chunk"]?.intValue)

            // Another uid with no groups: no secret or team hits, no unreadable file, and no trace of the hidden sources.
            let replies = try requests([
                search,
                #"{"id":2,"op":"search","query":"bluefin merger codename","mode":"bm25"}"#,
                #"{"id":3,"op":"search","query":"ferry","mode":"bm25","filter":{"path_prefix":"\#(dir)/secret"}}"#,
                #"{"id":4,"op":"status"}"#,
                #"{"id":5,"op":"sources"}"#,
                #"{"id":6,"op":"files"}"#,
                #"{"id":7,"op":"get","path":"\#(dir)/secret/plans.md"}"#,
                #"{"id":8,"op":"get","path":"\#(dir)/secret/none.md"}"#,
                #"{"id":9,"op":"get","chunk":\#(secretChunk)}"#,
                #"{"id":10,"op":"get","chunk":999999}"#,
                #"{"id":11,"op":"get","path":"\#(dir)/perm/private.md"}"#,
            ], socket: socket)
            try #require(replies.count == 11)
            #expect(paths(replies[0]) == [dir + "/public/open.md", dir + "/perm/shared.md"])
            #expect(replies[1]["results"]?.arrayValue?.isEmpty == true)
            #expect(replies[2]["results"]?.arrayValue?.isEmpty == true)
            let status = replies[3]
            #expect(status["files"] == 3, "public/open.md and both perm files: counts leave hidden sources out")
            #expect(status["sources"]?.arrayValue?.compactMap { $0["path"]?.stringValue } == [dir + "/public", dir + "/perm"])
            // Figures that count every source are left out; the protocol's required fields stay.
            #expect(status["since_start"] == nil && status["skipped"] == nil && status["index_map"] == nil)
            #expect(status["embeddings"]?["embedded"] == nil && status["embeddings"]?["total"] == nil)
            #expect(status["progress"]?["total"] == nil && status["progress"]?["phase"] != nil)
            #expect(status["state"] != nil && status["pending"] != nil)
            #expect(replies[4]["sources"]?.arrayValue?.compactMap { $0["path"]?.stringValue } == [dir + "/public", dir + "/perm"])
            let listed = Set(replies[5]["files"]?.arrayValue?.compactMap { $0["path"]?.stringValue } ?? [])
            #expect(listed == [dir + "/public/open.md", dir + "/perm/shared.md"])
            for reply in replies[3...5] {
                var text: [UInt8] = []
                reply.write(to: &text)
                #expect(!String(decoding: text, as: UTF8.self).contains("secret"), "no trace of the hidden source")
                #expect(!String(decoding: text, as: UTF8.self).contains("/team"))
            }
            // A hidden file or chunk is answered exactly like a missing one.
            #expect(replies[6]["error"]?["code"] == "not_found")
            #expect(replies[6]["error"]?["message"]?.stringValue == "\(dir)/secret/plans.md is not an indexed file")
            #expect(replies[7]["error"]?["message"]?.stringValue == "\(dir)/secret/none.md is not an indexed file")
            #expect(replies[8]["error"]?["message"]?.stringValue == "no chunk \(secretChunk) in the index")
            #expect(replies[9]["error"]?["message"]?.stringValue == "no chunk 999999 in the index")
            #expect(replies[10]["error"]?["code"] == "not_found")

            // A member of the allowed group sees the team source; the file permissions are read fresh per request.
            chmod(dir + "/perm/private.md", 0o604)
            let member = try requests([search, #"{"id":2,"op":"sources"}"#], socket: socket, groups: [Self.team])
            #expect(paths(member[0]) == [dir + "/public/open.md", dir + "/team/notes.md", dir + "/perm/private.md", dir + "/perm/shared.md"])
            #expect(member[1]["sources"]?.arrayValue?.count == 3)
            // Search permission on the folder is needed too.
            chmod(dir + "/perm", 0o700)
            let blocked = try requests([search], socket: socket)
            #expect(paths(blocked[0]) == [dir + "/public/open.md"])
            chmod(dir + "/perm", 0o755)

            // ragctl sources: root sees all four, one line each under the header, the path last.
            let listing = try runProgram(DaemonProcess.ragctl, ["sources", "--socket", socket])
            #expect(listing.status == 0)
            let rows = listing.stdout.split(separator: "\n").dropFirst().map { $0.split(separator: " ", omittingEmptySubsequences: true) }
            #expect(rows.map { String($0.last ?? "") } == ["public", "secret", "team", "perm"].map { dir + "/" + $0 })
            #expect(rows.last?.first == "2", "files of perm: \(listing.stdout)")

            // Every refusal is logged with the client's pid and uid.
            try daemon.waitForLog(containing: "client.uid=\(Self.nobody)")
            let refusals = daemon.log.split(separator: "\n").filter { $0.contains("access refused") }
            #expect(refusals.count >= 8, "\(daemon.log)")
            #expect(refusals.allSatisfy { $0.contains("client.pid=") && $0.contains("client.uid=") })
            #expect(!daemon.log.split(separator: "\n").contains { $0.contains("access refused") && $0.contains("client.uid=0") })

            // SIGHUP applies new allow lists without a restart: the secret source opens, the public one closes.
            try writeFile(config, """
                [socket]
                mode = "0666"
                [[source]]
                path = "public"
                allow_groups = [\(Self.team)]
                [[source]]
                path = "secret"
                [[source]]
                path = "team"
                allow_groups = [\(Self.team)]
                [[source]]
                path = "perm"
                respect_file_permissions = true
                """)
            kill(daemon.process.processIdentifier, SIGHUP)
            try daemon.notify.wait(for: "STATUS=configuration reloaded")
            let reloaded = try requests([search], socket: socket)
            #expect(paths(reloaded[0]) == [dir + "/secret/plans.md", dir + "/perm/private.md", dir + "/perm/shared.md"])
            daemon.stop()
        }
    }

    @Test func socketOwnerGroupAndModeComeFromTheConfiguration() throws {
        try withTemporaryDirectory { (dir: String) throws in
            try writeFile(dir + "/docs/a.md", "# A\n\nalpha\n")
            let config = dir + "/ragd.toml"
            try writeFile(config, """
                [socket]
                mode = "0640"
                owner = "\(Self.nobody)"
                group = "\(Self.team)"
                [[source]]
                path = "docs"
                """)
            let socket = dir + "/ragd.sock"
            let daemon = try DaemonProcess(arguments: ["--config", config, "--state-dir", dir + "/state", "--socket", socket],
                                           socketPath: socket, workDirectory: dir)
            try daemon.waitUntilReady()
            var st = stat()
            #expect(stat(socket, &st) == 0)
            #expect(st.st_mode & 0o777 == 0o640)
            #expect(st.st_uid == 65534)
            #expect(st.st_gid == Self.team)
            daemon.stop()
        }
    }
}

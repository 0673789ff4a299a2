import Foundation
import RagProtocol
import RagTestSupport
import Testing

/// End-to-end tests: the real `ragd` binary on a temporary folder, spoken to over its real socket.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct DaemonTests {
    static let install = """
        ---
        title: Installing
        tags: [setup, debian]
        ---
        # Install

        Run the installer.

        ## Debian

        Use apt to install the package.

        ### Keys

        Import the signing keys with gpg before adding the repository.
        The kernel parameter max_user_watches limits inotify watches.
        """

    static let guide = """
        Operator guide
        ==============

        Reloading
        ---------

        Send SIGHUP to reload the configuration without a restart.
        """

    /// A folder with a Markdown, a reST and a text file.
    func makeDocs(_ dir: String) throws -> String {
        let docs = dir + "/docs"
        try writeFile(docs + "/install.md", Self.install)
        try writeFile(docs + "/ops/guide.rst", Self.guide)
        try writeFile(docs + "/notes.txt", "Plain notes about lmdb cursors and transactions.\n")
        return docs
    }

    func json(_ line: String) throws -> JSONValue { try JSONParser.parse(line) }

    @Test func searchStatusGetAndPing() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = try makeDocs(dir)
            let daemon = try DaemonProcess.start(sources: [docs], in: dir)
            try daemon.waitUntilIndexed()
            let client = try daemon.client()

            let status = try json(client.request(#"{"id":1,"op":"status"}"#))
            #expect(status["id"] == 1)
            #expect(status["ok"] == true)
            #expect(status["state"] == "ready")
            #expect(status["pending"] == 0)
            #expect(status["files"] == 3)
            #expect((status["chunks"]?.intValue ?? 0) >= 3)

            let reply = try json(client.request(#"{"id":2,"op":"search","query":"signing keys gpg","k":3,"mode":"bm25"}"#))
            #expect(reply["ok"] == true)
            #expect(reply["took_ms"]?.doubleValue != nil)
            let hits = try #require(reply["results"]?.arrayValue)
            let top = try #require(hits.first)
            #expect(top["path"]?.stringValue == docs + "/install.md")
            #expect(top["heading"] == "Install > Debian > Keys")
            let lines = top["lines"]?.arrayValue?.compactMap { $0.intValue }
            #expect(lines == [13, 16])
            #expect(top["text"]?.stringValue?.contains("Import the signing keys") == true)
            #expect((top["score"]?.doubleValue ?? 0) > 0)

            // Identifiers are findable whole and by part; reST sections cite their heading.
            let identifier = try json(client.request(#"{"id":3,"op":"search","query":"max_user_watches","mode":"bm25"}"#))
            #expect(identifier["results"]?.arrayValue?.first?["path"]?.stringValue == docs + "/install.md")
            let part = try json(client.request(#"{"id":4,"op":"search","query":"watches","mode":"bm25"}"#))
            #expect(part["results"]?.arrayValue?.first?["path"]?.stringValue == docs + "/install.md")
            let rst = try json(client.request(#"{"id":5,"op":"search","query":"reload configuration","mode":"bm25"}"#))
            #expect(rst["results"]?.arrayValue?.first?["heading"] == "Operator guide > Reloading")

            let get = try json(client.request(#"{"id":6,"op":"get","path":"\#(docs)/install.md","lines":[13,14]}"#))
            #expect(get["text"] == "### Keys\n")
            #expect(get["lines"] == [13, 14])
            let chunkID = try #require(top["chunk"]?.intValue)
            let chunk = try json(client.request(#"{"id":7,"op":"get","chunk":\#(chunkID)}"#))
            #expect(chunk["path"]?.stringValue == docs + "/install.md")
            #expect(chunk["text"] == top["text"])

            let ping = try json(client.request(#"{"id":"p","op":"ping"}"#))
            #expect(ping["id"] == "p")
            #expect(ping["ok"] == true)

            #expect(daemon.stop() == 0)
            #expect(!FileManager.default.fileExists(atPath: daemon.socketPath), "socket file removed on clean exit")
        }
    }

    @Test func filters() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = try makeDocs(dir)
            try writeFile(docs + "/ops/cursors.md", "# Cursors\n\nlmdb cursors walk keys in order.\n")
            let daemon = try DaemonProcess.start(sources: [docs], in: dir)
            try daemon.waitUntilIndexed()
            let client = try daemon.client()
            let all = try json(client.request(#"{"id":1,"op":"search","query":"lmdb cursors","mode":"bm25"}"#))
            #expect(Set(all["results"]?.arrayValue?.compactMap { $0["path"]?.stringValue } ?? []) == [docs + "/notes.txt", docs + "/ops/cursors.md"])
            let prefixed = try json(client.request(#"{"id":2,"op":"search","query":"lmdb cursors","mode":"bm25","filter":{"path_prefix":"\#(docs)/ops"}}"#))
            #expect(prefixed["results"]?.arrayValue?.compactMap { $0["path"]?.stringValue } == [docs + "/ops/cursors.md"])
            let byExt = try json(client.request(#"{"id":3,"op":"search","query":"lmdb cursors","mode":"bm25","filter":{"ext":"txt"}}"#))
            #expect(byExt["results"]?.arrayValue?.compactMap { $0["path"]?.stringValue } == [docs + "/notes.txt"])
            let tagged = try json(client.request(#"{"id":5,"op":"search","query":"apt signing keys","mode":"bm25","filter":{"tags":"Debian"}}"#))
            #expect(Set(tagged["results"]?.arrayValue?.compactMap { $0["path"]?.stringValue } ?? []) == [docs + "/install.md"], "front-matter tags filter")
            let future = try json(client.request(#"{"id":6,"op":"search","query":"lmdb cursors","mode":"bm25","filter":{"modified_after":"2999-01-01"}}"#))
            #expect(future["results"]?.arrayValue?.isEmpty == true)
            let far = try json(client.request(#"{"id":7,"op":"search","query":"lmdb cursors","mode":"bm25","filter":{"modified_after":1e300}}"#))
            #expect(far["results"]?.arrayValue?.isEmpty == true, "a far-away date is clamped, not a crash")
            // A prefix matches whole path components only.
            let partial = try json(client.request(#"{"id":4,"op":"search","query":"lmdb cursors","mode":"bm25","filter":{"path_prefix":"\#(docs)/op"}}"#))
            #expect(partial["results"]?.arrayValue?.isEmpty == true)
            daemon.stop()
        }
    }

    @Test func badRequestsGetSpecificErrorsAndKeepTheConnection() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = try makeDocs(dir)
            let daemon = try DaemonProcess.start(sources: [docs], in: dir)
            let client = try daemon.client()
            let cases: [(String, String)] = [
                ("this is not json", "bad_request"),
                (#"{"op":"status"}"#, "bad_request"),
                (#"{"id":1,"op":"explode"}"#, "unknown_op"),
                (#"{"id":1,"op":"search","query":"x","k":0}"#, "invalid_argument"),
                (#"{"id":1,"op":"search","query":"x","k":"ten"}"#, "invalid_argument"),
                (#"{"id":1,"op":"search","query":["x"]}"#, "invalid_argument"),
                (#"{"id":1,"op":"search","query":"x","fusion":"max"}"#, "invalid_argument"),
                (#"{"id":1,"op":"search","query":"x","dense_weight":2}"#, "invalid_argument"),
                (#"{"id":1,"op":"sync","timeout_ms":-5}"#, "invalid_argument"),
                (#"{"id":1,"op":"get","path":"/etc/passwd"}"#, "not_found"),
                (#"{"id":1,"op":"get","chunk":999999}"#, "not_found"),
            ]
            for (line, code) in cases {
                let reply = try json(client.request(line))
                #expect(reply["ok"] == false, "\(line)")
                #expect(reply["error"]?["code"]?.stringValue == code, "\(line) → \(reply.serialized())")
                #expect(reply["error"]?["message"]?.stringValue?.isEmpty == false)
                // The connection stays usable.
                #expect(try json(client.request(#"{"id":99,"op":"ping"}"#))["ok"] == true)
            }
            daemon.stop()
        }
    }

    @Test func oversizedLineIsRefusedAndTheConnectionClosed() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = try makeDocs(dir)
            let daemon = try DaemonProcess.start(sources: [docs], in: dir)
            let client = try daemon.client()
            // 2 MiB without a newline: refused before it is all buffered.
            let big = [UInt8](repeating: UInt8(ascii: "a"), count: 2 << 20)
            try? client.send(raw: big)
            let line = try #require(try client.readLine())
            let reply = try json(line)
            #expect(reply["ok"] == false)
            #expect(reply["error"]?["code"] == "request_too_large")
            #expect(try client.readLine() == nil, "connection closed after request_too_large")
            // Others are unaffected.
            #expect(try json(daemon.client().request(#"{"id":1,"op":"ping"}"#))["ok"] == true)
            daemon.stop()
        }
    }

    @Test func manyClientsAtOnce() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = try makeDocs(dir)
            let daemon = try DaemonProcess.start(sources: [docs], in: dir)
            try daemon.waitUntilIndexed()
            let clients = try (0..<20).map { _ in try daemon.client() }
            // Interleave: every client sends before any reads.
            for (n, client) in clients.enumerated() {
                try client.send(raw: Array(#"{"id":\#(n),"op":"search","query":"apt package","mode":"bm25"}"#.utf8) + [0x0A])
            }
            for (n, client) in clients.enumerated() {
                let line = try #require(try client.readLine())
            let reply = try json(line)
                #expect(reply["id"] == .int(Int64(n)))
                #expect(reply["results"]?.arrayValue?.isEmpty == false)
            }
            // Pipelined requests on one connection are answered in order.
            let one = clients[0]
            try one.send(raw: Array((0..<50).map { #"{"id":\#($0),"op":"ping"}"# + "\n" }.joined().utf8))
            for n in 0..<50 {
                let line = try #require(try one.readLine())
                #expect(try json(line)["id"] == .int(Int64(n)))
            }
            daemon.stop()
        }
    }

    @Test func reconcilesChangesMadeWhileStopped() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = try makeDocs(dir)
            var daemon = try DaemonProcess.start(sources: [docs], in: dir)
            try daemon.waitUntilIndexed()
            #expect(daemon.stop(signal: SIGINT) == 0)

            try writeFile(docs + "/new.md", "# Fresh\n\nzeppelin hangar procedures\n")
            try writeFile(docs + "/notes.txt", "Notes now talk about quokka habitats.\n")
            try FileManager.default.removeItem(atPath: docs + "/ops/guide.rst")

            daemon = try DaemonProcess.start(sources: [docs], in: dir)
            try daemon.waitUntilIndexed()
            let client = try daemon.client()
            let status = try json(client.request(#"{"id":1,"op":"status"}"#))
            #expect(status["files"] == 3)
            func top(_ query: String) throws -> String? {
                try json(client.request(#"{"id":2,"op":"search","query":"\#(query)","mode":"bm25"}"#))["results"]?.arrayValue?.first?["path"]?.stringValue
            }
            #expect(try top("zeppelin hangar") == docs + "/new.md")
            #expect(try top("quokka") == docs + "/notes.txt")
            #expect(try top("lmdb cursors") == nil, "old text of a changed file is gone")
            #expect(try top("SIGHUP reload") == nil, "a deleted file is gone")
            #expect(daemon.stop() == 0)
        }
    }

    @Test func hostileFilesAreSkippedOrDecoded() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = try makeDocs(dir)
            try writeFile(docs + "/binary.md", [0x23, 0x20, 0x41, 0x00, 0x01, 0x02, 0xFF] + Array("platypus".utf8))
            try writeFile(docs + "/latin1.txt", Array("caf".utf8) + [0xE9] + Array(" wombat menu\n".utf8))
            try writeFile(docs + "/huge.md", String(repeating: "echidna ", count: 40_000))
            try writeFile(docs + "/.git/config.md", "# hidden\n\nplatypus\n")
            let config = dir + "/ragd.toml"
            try writeFile(config, "[limits]\nmax_file_bytes = 100000\n")
            let daemon = try DaemonProcess.start(sources: [docs], in: dir, extraArguments: ["--config", config])
            try daemon.waitUntilIndexed()
            let client = try daemon.client()
            func hits(_ query: String) throws -> [String] {
                try json(client.request(#"{"id":2,"op":"search","query":"\#(query)","mode":"bm25"}"#))["results"]?.arrayValue?.compactMap { $0["path"]?.stringValue } ?? []
            }
            #expect(try hits("platypus").isEmpty, "binary and hidden files are not indexed")
            #expect(try hits("echidna").isEmpty, "files over the size cap are not indexed")
            #expect(try hits("wombat") == [docs + "/latin1.txt"], "invalid UTF-8 is decoded lossily")
            let status = try json(client.request(#"{"id":1,"op":"status"}"#))
            #expect(status["skipped"]?["binary"] == 1)
            #expect(status["skipped"]?["too_large"] == 1)
            daemon.stop()
            #expect(daemon.log.contains("skipping binary file"))
            #expect(daemon.log.contains("not valid UTF-8"))
        }
    }

    static let page = """
        <!DOCTYPE html>
        <html><head><title>Page — Example docs</title>
        <script>var okapiScript = 1;</script></head>
        <body>
        <div class="sphinxsidebar" role="navigation"><h3>Navigation</h3><p>sidebarword okapi</p></div>
        <div class="body" role="main">
        <h1>Page<a class="headerlink" href="#page">¶</a></h1>
        <p>Intro.</p>
        <h2>Section</h2>
        <p>The okapi lives in
        the forest &amp; hides.</p>
        <pre>okapi --count
          3</pre>
        </div>
        <div class="footer">footerword</div>
        </body></html>
        """

    static let gzipped = """
        # Guide

        Intro text.

        ## Crossing

        The zebra crossing is documented here.
        """

    /// An HTML page and a gzipped Markdown file are indexed and found with their path, source lines and heading;
    /// a corrupt gzip file and a gzip bomb are skipped with one log line each.
    @Test func htmlPagesAndGzippedDocuments() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = dir + "/docs"
            try writeFile(docs + "/api/page.html", Self.page)
            try writeFile(docs + "/guide.md.gz", gzipCompress(Self.gzipped))
            var corrupt = gzipCompress(String(repeating: "zebra corrupt ", count: 400))
            corrupt.removeLast(corrupt.count / 2)
            try writeFile(docs + "/broken.md.gz", corrupt)
            try writeFile(docs + "/bomb.txt.gz", gzipCompress([UInt8](repeating: 0x7A, count: 8 << 20), level: 9))
            let config = dir + "/ragd.toml"
            try writeFile(config, "[limits]\nmax_file_bytes = 100000\n")
            let daemon = try DaemonProcess.start(sources: [docs], in: dir, extraArguments: ["--config", config])
            try daemon.waitUntilIndexed()
            let client = try daemon.client()
            func search(_ query: String, filter: String = "{}") throws -> [JSONValue] {
                try json(client.request(#"{"id":2,"op":"search","query":"\#(query)","mode":"bm25","filter":\#(filter)}"#))["results"]?.arrayValue ?? []
            }

            let okapi = try search("okapi forest")
            #expect(okapi.count == 1, "the sidebar and the script are not indexed")
            #expect(okapi.first?["path"]?.stringValue == docs + "/api/page.html")
            #expect(okapi.first?["heading"] == "Page > Section")
            #expect(okapi.first?["lines"] == [9, 13])
            #expect(okapi.first?["text"] == "Section\n\nThe okapi lives in\nthe forest & hides.\n\nokapi --count\n  3")
            #expect(try search("sidebarword").isEmpty)
            #expect(try search("footerword").isEmpty)

            let zebra = try search("zebra crossing")
            #expect(zebra.count == 1, "the corrupt file is not indexed")
            #expect(zebra.first?["path"]?.stringValue == docs + "/guide.md.gz")
            #expect(zebra.first?["heading"] == "Guide > Crossing")
            #expect(zebra.first?["lines"] == [5, 7])
            // `get` reads the decompressed lines the hit cites.
            let get = try json(client.request(#"{"id":3,"op":"get","path":"\#(docs)/guide.md.gz","lines":[5,7]}"#))
            #expect(get["text"] == "## Crossing\n\nThe zebra crossing is documented here.")
            #expect(get["total_lines"] == 7)
            let pageLines = try json(client.request(#"{"id":4,"op":"get","path":"\#(docs)/api/page.html","lines":[10,11]}"#))
            #expect(pageLines["text"] == "<p>The okapi lives in\nthe forest &amp; hides.</p>", "HTML lines are source lines")

            // A gzipped file counts as what it holds for the ext filter.
            for ext in [#""md""#, #""md.gz""#, #"[".MD"]"#] {
                #expect(try search("zebra", filter: #"{"ext":\#(ext)}"#).compactMap { $0["path"]?.stringValue } == [docs + "/guide.md.gz"], "\(ext)")
            }
            #expect(try search("zebra", filter: #"{"ext":"txt"}"#).isEmpty)
            #expect(try search("okapi", filter: #"{"ext":"html"}"#).count == 1)

            let files = try json(client.request(#"{"id":5,"op":"files"}"#))["files"]?.arrayValue ?? []
            #expect(files.compactMap { $0["path"]?.stringValue } == [docs + "/api/page.html", docs + "/guide.md.gz"])
            #expect(files.compactMap { $0["title"]?.stringValue } == ["Page", "Guide"])
            let status = try json(client.request(#"{"id":6,"op":"status"}"#))
            #expect(status["skipped"]?["binary"] == 1, "the corrupt gzip file")
            #expect(status["skipped"]?["too_large"] == 1, "the gzip bomb")
            #expect(daemon.stop() == 0)
            #expect(daemon.log.components(separatedBy: "skipping compressed file that cannot be decompressed").count == 2)
            #expect(daemon.log.components(separatedBy: "skipping file over the size cap").count == 2)
        }
    }

    @Test func socketPermissionsAndSecondDaemonRefused() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = try makeDocs(dir)
            let daemon = try DaemonProcess.start(sources: [docs], in: dir)
            let attributes = try FileManager.default.attributesOfItem(atPath: daemon.socketPath)
            #expect((attributes[.posixPermissions] as? Int) == 0o660)
            // A second daemon on the same state directory and socket refuses to start.
            let second = try DaemonProcess(arguments: ["--source", docs, "--state-dir", dir + "/state", "--socket", daemon.socketPath],
                                           socketPath: daemon.socketPath, workDirectory: dir)
            #expect(second.stop(signal: 0) != 0)
            #expect(second.log.contains("another ragd"))
            #expect(try json(daemon.client().request(#"{"id":1,"op":"ping"}"#))["ok"] == true)
            daemon.stop()
        }
    }

    @Test func badConfigurationIsRefusedBeforeTouchingTheIndex() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = try makeDocs(dir)
            let config = dir + "/bad.toml"
            try writeFile(config, "state_dir = \"\(dir)/state\"\n\n[limits]\nmax_k = \"lots\"\n")
            let daemon = try DaemonProcess(arguments: ["--config", config, "--source", docs, "--socket", dir + "/s.sock"],
                                           socketPath: dir + "/s.sock", workDirectory: dir)
            let status = daemon.stop(signal: 0)
            #expect(status != 0)
            #expect(daemon.log.contains("\(config):4"), "\(daemon.log)")
            #expect(daemon.log.contains("max_k"))
            #expect(!FileManager.default.fileExists(atPath: dir + "/state"), "nothing created")
        }
    }

    @Test func stopsPromptlyMidIndexAndResumesAfterRestartOrKill() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = dir + "/docs"
            for n in 0..<3000 {
                try writeFile(docs + "/part\(n / 500)/doc\(n).md", "# Document \(n)\n\nbody text number \(n) about topic\(n % 97)\n")
            }
            // SIGTERM while the first pass is running: exit 0, the batch in flight committed.
            var daemon = try DaemonProcess.start(sources: [docs], in: dir)
            let started = Date()
            #expect(daemon.stop() == 0)
            #expect(Date().timeIntervalSince(started) < 10)
            // kill -9 at an arbitrary point of the next pass.
            daemon = try DaemonProcess.start(sources: [docs], in: dir)
            daemon.stop(signal: SIGKILL)
            // The index opens, answers, and after reconciliation matches the disk.
            daemon = try DaemonProcess.start(sources: [docs], in: dir)
            try daemon.waitUntilIndexed()
            let client = try daemon.client()
            let status = try json(client.request(#"{"id":1,"op":"status"}"#))
            #expect(status["files"] == 3000)
            #expect(status["chunks"] == 3000)
            let hit = try json(client.request(#"{"id":2,"op":"search","query":"number 2999","k":1,"mode":"bm25"}"#))
            #expect(hit["results"]?.arrayValue?.first?["path"]?.stringValue == docs + "/part5/doc2999.md")
            #expect(daemon.stop() == 0)
        }
    }

    @Test func sighupReloadsSourcesWithoutARestart() throws {
        try withTemporaryDirectory { (dir: String) throws in
            try writeFile(dir + "/a/one.md", "# One\n\npelican\n")
            try writeFile(dir + "/b/two.md", "# Two\n\npenguin\n")
            let config = dir + "/ragd.toml"
            try writeFile(config, "[[source]]\npath = \"a\"\n")
            let daemon = try DaemonProcess(arguments: ["--config", config, "--state-dir", dir + "/state", "--socket", dir + "/ragd.sock"],
                                           socketPath: dir + "/ragd.sock", workDirectory: dir)
            try daemon.waitUntilReady()
            try daemon.waitUntilIndexed()
            let client = try daemon.client()
            func paths(_ query: String) throws -> [String] {
                _ = try client.request(#"{"id":0,"op":"sync"}"#)
                return try json(client.request(#"{"id":1,"op":"search","query":"\#(query)","mode":"bm25"}"#))["results"]?.arrayValue?.compactMap { $0["path"]?.stringValue } ?? []
            }
            #expect(try paths("pelican") == [dir + "/a/one.md"])
            let pid = daemon.process.processIdentifier

            // Swap source a for b.
            try writeFile(config, "[[source]]\npath = \"b\"\n")
            kill(pid, SIGHUP)
            try daemon.notify.wait(for: "STATUS=configuration reloaded")
            try daemon.waitUntilIndexed()
            #expect(try paths("pelican").isEmpty, "a dropped source's files leave the index")
            #expect(try paths("penguin") == [dir + "/b/two.md"])
            let status = try json(client.request(#"{"id":2,"op":"status"}"#))
            #expect(status["sources"]?.arrayValue?.compactMap { $0["path"]?.stringValue } == [dir + "/b"])
            // The new source is watched.
            try writeFile(dir + "/b/three.md", "# Three\n\npuffin\n")
            #expect(try paths("puffin") == [dir + "/b/three.md"])

            // A broken file is refused; the daemon keeps running with the previous configuration.
            try writeFile(config, "[[source]]\npath = 42\n")
            kill(pid, SIGHUP)
            try daemon.notify.wait(for: "STATUS=configuration reload failed")
            #expect(try paths("penguin") == [dir + "/b/two.md"])
            // The error is logged just after the notification: wait for it rather than race it.
            try daemon.waitForLog(containing: "\(config):2", timeout: 30)
            #expect(daemon.stop() == 0)
        }
    }

    @Test func denseAndHybridWithTheRealModel() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = dir + "/docs"
            try writeFile(docs + "/cats.md", "# Pets\n\nA kitten is a young cat. Kittens like to sleep in warm places.\n")
            try writeFile(docs + "/cars.md", "# Engines\n\nThe combustion engine burns petrol to turn the crankshaft.\n")
            try writeFile(docs + "/limits.md", "# Limits\n\nRaise fs.inotify.max_user_watches when ragd runs out of watches.\n")
            let daemon = try DaemonProcess.start(sources: [docs], in: dir)
            let client = try daemon.client()
            _ = try client.request(#"{"id":0,"op":"sync","timeout_ms":120000}"#)
            let status = try json(client.request(#"{"id":1,"op":"status"}"#))
            #expect(status["modes"] == ["bm25", "dense", "hybrid"])
            #expect(status["embeddings"]?["state"] == "ready", "\(status.serialized())")
            #expect(status["embeddings"]?["pending"] == 0)
            #expect(status["pending"] == 0)
            #expect(status["embeddings"]?["model"]?.stringValue?.hasPrefix("all-MiniLM-L6-v2@53aa51172d14") == true)
            // A paraphrase with no shared words: only the dense side can find it.
            let dense = try json(client.request(#"{"id":2,"op":"search","query":"where do baby felines nap","k":3,"mode":"dense"}"#))
            let top = try #require(dense["results"]?.arrayValue?.first)
            #expect(top["path"]?.stringValue == docs + "/cats.md")
            #expect((top["dense"]?.doubleValue ?? 0) > 0.3)
            #expect(top["score"] == top["dense"])
            // Hybrid keeps exact identifiers strong and reports both components.
            let hybrid = try json(client.request(#"{"id":3,"op":"search","query":"max_user_watches","k":3}"#))
            let best = try #require(hybrid["results"]?.arrayValue?.first)
            #expect(hybrid["mode"] == "hybrid")
            #expect(best["path"]?.stringValue == docs + "/limits.md")
            #expect(best["bm25"]?.doubleValue != nil && best["dense"]?.doubleValue != nil)
            let weighted = try json(client.request(#"{"id":4,"op":"search","query":"petrol engine","k":3,"fusion":"weighted","dense_weight":0.7}"#))
            #expect(weighted["results"]?.arrayValue?.first?["path"]?.stringValue == docs + "/cars.md")
            // Filters apply to the dense side before the cut.
            let filtered = try json(client.request(#"{"id":5,"op":"search","query":"kitten","k":3,"mode":"dense","filter":{"path_prefix":"\#(docs)/cars.md"}}"#))
            #expect(filtered["results"]?.arrayValue?.compactMap { $0["path"]?.stringValue } == [docs + "/cars.md"])
            // Edits re-embed only new text; a restart embeds nothing.
            try writeFile(docs + "/cats.md", "# Pets\n\nA kitten is a young cat. Kittens like to sleep in warm places.\n\n## Food\n\nCats eat fish.\n")
            _ = try client.request(#"{"id":6,"op":"sync","timeout_ms":120000}"#)
            let after = try json(client.request(#"{"id":7,"op":"search","query":"what do felines eat","k":1,"mode":"dense"}"#))
            #expect(after["results"]?.arrayValue?.first?["heading"] == "Pets > Food")
            #expect(daemon.stop() == 0)
        }
    }

    @Test func denseModesAnswerUnsupportedWithoutAModel() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = try makeDocs(dir)
            try writeFile(dir + "/ragd.toml", "[model]\nenabled = false\n")
            let daemon = try DaemonProcess.start(sources: [docs], in: dir, extraArguments: ["--config", dir + "/ragd.toml"])
            let client = try daemon.client()
            for mode in ["dense", "hybrid"] {
                let reply = try json(client.request(#"{"id":1,"op":"search","query":"keys","mode":"\#(mode)"}"#))
                #expect(reply["error"]?["code"] == "unsupported")
                #expect(reply["error"]?["message"]?.stringValue?.contains("disabled") == true)
            }
            #expect(try json(client.request(#"{"id":2,"op":"search","query":"keys","mode":"bm25"}"#))["ok"] == true)
            let status = try json(client.request(#"{"id":3,"op":"status"}"#))
            #expect(status["modes"] == ["bm25"])
            #expect(status["embeddings"]?["state"] == "unavailable")
            daemon.stop()
        }
    }
}

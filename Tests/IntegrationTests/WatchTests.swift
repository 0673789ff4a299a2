import Foundation
import RagCore
import RagProtocol
import RagTestSupport
import Testing

/// Live watching with real inotify: every kind of change an editor, git, rsync or mv makes shows up in the
/// index, and after bursts, storms and overflows the index matches the disk. `sync` is the barrier: it answers
/// once every change made before it has been applied.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct WatchTests {
    func json(_ line: String) throws -> JSONValue { try JSONParser.parse(line) }

    struct Harness {
        let docs: String
        let daemon: DaemonProcess
        let client: LineClient

        func sync() throws {
            // Index changes only: these tests search with BM25, and waiting for the vectors of thousands of chunks
            // made the overflow test depend on how busy the machine is.
            let reply = try JSONParser.parse(try client.request(#"{"id":0,"op":"sync","timeout_ms":60000,"vectors":false}"#))
            #expect(reply["ok"] == true, "sync failed: \(reply.serialized())\n\(daemon.log.suffix(3000))")
        }

        func paths(_ query: String, k: Int = 20) throws -> [String] {
            let reply = try JSONParser.parse(try client.request(#"{"id":1,"op":"search","query":"\#(query)","k":\#(k),"mode":"bm25"}"#))
            return reply["results"]?.arrayValue?.compactMap { $0["path"]?.stringValue } ?? []
        }

        func status() throws -> JSONValue { try JSONParser.parse(try client.request(#"{"id":2,"op":"status"}"#)) }

        /// path → (sha256, chunk count) as the daemon has them.
        func indexed() throws -> [String: String] {
            let reply = try JSONParser.parse(try client.request(#"{"id":3,"op":"files"}"#))
            var result: [String: String] = [:]
            for file in reply["files"]?.arrayValue ?? [] {
                result[file["path"]!.stringValue!] = file["sha256"]!.stringValue!
            }
            return result
        }

        /// path → sha256 of every file on disk ragd should index (visible Markdown/text, no temp files).
        func onDisk() -> [String: String] {
            var result: [String: String] = [:]
            let enumerator = FileManager.default.enumerator(atPath: docs)
            while let rel = enumerator?.nextObject() as? String {
                let path = docs + "/" + rel
                let name = (rel as NSString).lastPathComponent
                if rel.split(separator: "/").contains(where: { $0.hasPrefix(".") }) { continue }
                guard name.hasSuffix(".md") || name.hasSuffix(".txt") || name.hasSuffix(".rst") else { continue }
                var isDir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue,
                      let data = FileManager.default.contents(atPath: path) else { continue }
                result[path] = SHA256.hash(Array(data)).hex
            }
            return result
        }

        func expectMatchesDisk(sourceLocation: SourceLocation = #_sourceLocation) throws {
            try sync()
            let indexed = try indexed()
            let disk = onDisk()
            #expect(indexed == disk, "index and disk differ: only indexed \(Set(indexed.keys).subtracting(disk.keys).sorted().prefix(5)), only on disk \(Set(disk.keys).subtracting(indexed.keys).sorted().prefix(5))", sourceLocation: sourceLocation)
        }
    }

    func withDaemon(extraArguments: [String] = [], seed: (String) throws -> Void = { _ in }, _ body: (Harness) throws -> Void) throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = dir + "/docs"
            try FileManager.default.createDirectory(atPath: docs, withIntermediateDirectories: true)
            try seed(docs)
            let daemon = try DaemonProcess.start(sources: [docs], in: dir, extraArguments: extraArguments)
            let harness = Harness(docs: docs, daemon: daemon, client: try daemon.client())
            try harness.sync()
            try body(harness)
            #expect(daemon.stop() == 0)
        }
    }

    @Test func createEditDelete() throws {
        try withDaemon { h in
            try writeFile(h.docs + "/a.md", "# A\n\nthe zeppelin hangar\n")
            try h.sync()
            #expect(try h.paths("zeppelin") == [h.docs + "/a.md"])
            // Edit in place (close after write).
            try writeFile(h.docs + "/a.md", "# A\n\nthe quokka enclosure\n")
            try h.sync()
            #expect(try h.paths("zeppelin").isEmpty)
            #expect(try h.paths("quokka") == [h.docs + "/a.md"])
            // Append through an open handle.
            let handle = try #require(FileHandle(forWritingAtPath: h.docs + "/a.md"))
            handle.seekToEndOfFile()
            handle.write("and a narwhal\n".data(using: .utf8)!)
            try handle.close()
            try h.sync()
            #expect(try h.paths("narwhal") == [h.docs + "/a.md"])
            try FileManager.default.removeItem(atPath: h.docs + "/a.md")
            try h.sync()
            #expect(try h.paths("quokka").isEmpty)
            try h.expectMatchesDisk()
        }
    }

    @Test func renamesAndMovesKeepChunksWithoutReindexing() throws {
        try withDaemon(seed: { docs in
            try writeFile(docs + "/one/a.md", "# A\n\nalpaca pasture\n")
            try FileManager.default.createDirectory(atPath: docs + "/two", withIntermediateDirectories: true)
        }) { h in
            func chunkID(_ query: String) throws -> Int? {
                let reply = try JSONParser.parse(try h.client.request(#"{"id":1,"op":"search","query":"\#(query)","mode":"bm25"}"#))
                return reply["results"]?.arrayValue?.first?["chunk"]?.intValue
            }
            let before = try chunkID("alpaca")
            // Rename within a folder.
            try FileManager.default.moveItem(atPath: h.docs + "/one/a.md", toPath: h.docs + "/one/b.md")
            try h.sync()
            #expect(try h.paths("alpaca") == [h.docs + "/one/b.md"])
            // Move across folders.
            try FileManager.default.moveItem(atPath: h.docs + "/one/b.md", toPath: h.docs + "/two/c.md")
            try h.sync()
            #expect(try h.paths("alpaca") == [h.docs + "/two/c.md"])
            #expect(try chunkID("alpaca") == before, "a move updates the path; the chunk keeps its id")
            // Folder moved within the tree.
            try FileManager.default.moveItem(atPath: h.docs + "/two", toPath: h.docs + "/three")
            try h.sync()
            #expect(try h.paths("alpaca") == [h.docs + "/three/c.md"])
            #expect(try chunkID("alpaca") == before)
            // A rename to a name ragd does not index is a removal, and back again is a creation.
            try FileManager.default.moveItem(atPath: h.docs + "/three/c.md", toPath: h.docs + "/three/c.bin")
            try h.sync()
            #expect(try h.paths("alpaca").isEmpty)
            try FileManager.default.moveItem(atPath: h.docs + "/three/c.bin", toPath: h.docs + "/three/c.md")
            try h.sync()
            #expect(try h.paths("alpaca") == [h.docs + "/three/c.md"])
            try h.expectMatchesDisk()
        }
    }

    @Test func movesOutOfAndIntoTheTree() throws {
        try withTemporaryDirectory { (outside: String) throws in
            try withDaemon(seed: { docs in try writeFile(docs + "/keep/a.md", "# A\n\nbison herd\n") }) { h in
                // A file moved out is a delete; moved back in, a create.
                try FileManager.default.moveItem(atPath: h.docs + "/keep/a.md", toPath: outside + "/a.md")
                try h.sync()
                #expect(try h.paths("bison").isEmpty)
                try FileManager.default.moveItem(atPath: outside + "/a.md", toPath: h.docs + "/a.md")
                try h.sync()
                #expect(try h.paths("bison") == [h.docs + "/a.md"])
                // A folder moved in brings its files, and gets watched.
                try writeFile(outside + "/tree/x/deep.md", "# Deep\n\ncondor nest\n")
                try FileManager.default.moveItem(atPath: outside + "/tree", toPath: h.docs + "/tree")
                try h.sync()
                #expect(try h.paths("condor") == [h.docs + "/tree/x/deep.md"])
                try writeFile(h.docs + "/tree/x/later.md", "# Later\n\ndingo den\n")
                try h.sync()
                #expect(try h.paths("dingo") == [h.docs + "/tree/x/later.md"])
                // A folder moved out takes its files with it, and stops being watched.
                try FileManager.default.moveItem(atPath: h.docs + "/tree", toPath: outside + "/gone")
                try h.sync()
                #expect(try h.paths("condor").isEmpty)
                #expect(try h.paths("dingo").isEmpty)
                try writeFile(outside + "/gone/x/after.md", "# After\n\negret marsh\n")
                try h.sync()
                #expect(try h.paths("egret").isEmpty)
                try h.expectMatchesDisk()
            }
        }
    }

    @Test func folderCreatedAndFilledInOneBurst() throws {
        try withDaemon { h in
            // mkdir -p and write at once: files land before the new folders' watches exist.
            for n in 0..<200 {
                try writeFile(h.docs + "/burst/a/b/c\(n % 7)/f\(n).md", "# F\(n)\n\nburst file number\(n) flamingo\n")
            }
            try h.sync()
            #expect(try h.paths("flamingo", k: 500).count == 200)
            try FileManager.default.removeItem(atPath: h.docs + "/burst")
            try h.sync()
            #expect(try h.paths("flamingo").isEmpty)
            try h.expectMatchesDisk()
        }
    }

    @Test func editorSavesTempFilesAndGlobs() throws {
        try withDaemon { h in
            // vim-style: write a swap file, rename it over the original.
            try writeFile(h.docs + "/notes.md", "# Notes\n\ngecko\n")
            try h.sync()
            try writeFile(h.docs + "/.notes.md.swp", "# Notes\n\nheron\n")
            try writeFile(h.docs + "/notes.md~", "# backup\n\nibis\n")
            try writeFile(h.docs + "/#notes.md#", "# autosave\n\nibis\n")
            try FileManager.default.moveItem(atPath: h.docs + "/.notes.md.swp", toPath: h.docs + "/notes.tmp")
            _ = rename(h.docs + "/notes.tmp", h.docs + "/notes.md")
            try h.sync()
            #expect(try h.paths("heron") == [h.docs + "/notes.md"])
            #expect(try h.paths("gecko").isEmpty)
            #expect(try h.paths("ibis").isEmpty, "backup and autosave files are ignored")
            // Hidden folders and unknown extensions are ignored.
            try writeFile(h.docs + "/.git/objects/x.md", "# x\n\njackal\n")
            try writeFile(h.docs + "/data.json", "{\"jackal\": 1}\n")
            try h.sync()
            #expect(try h.paths("jackal").isEmpty)
            try h.expectMatchesDisk()
        }
    }

    @Test func excludeGlobsApplyToNewFiles() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let config = dir + "/ragd.toml"
            try writeFile(config, "[[source]]\npath = \"docs\"\nexclude = [\"drafts/**\", \"*.txt\"]\n")
            try FileManager.default.createDirectory(atPath: dir + "/docs", withIntermediateDirectories: true)
            let daemon = try DaemonProcess(arguments: ["--config", config, "--state-dir", dir + "/state", "--socket", dir + "/ragd.sock"],
                                           socketPath: dir + "/ragd.sock", workDirectory: dir)
            try daemon.waitUntilReady()
            let h = Harness(docs: dir + "/docs", daemon: daemon, client: try daemon.client())
            try writeFile(h.docs + "/drafts/wip.md", "# WIP\n\nkoala\n")
            try writeFile(h.docs + "/notes.txt", "koala\n")
            try writeFile(h.docs + "/final.md", "# Final\n\nkoala\n")
            try h.sync()
            #expect(try h.paths("koala") == [h.docs + "/final.md"])
            daemon.stop()
        }
    }

    @Test func renameStorm() throws {
        try withDaemon(seed: { docs in
            for n in 0..<100 { try writeFile(docs + "/s/f\(n).md", "# F\(n)\n\nstorm lemur\(n)\n") }
        }) { h in
            // Rotate names many times over, across two folders, without waiting.
            try FileManager.default.createDirectory(atPath: h.docs + "/t", withIntermediateDirectories: true)
            for round in 0..<10 {
                for n in 0..<100 {
                    let from = round % 2 == 0 ? h.docs + "/s/f\(n).md" : h.docs + "/t/g\(n).md"
                    let to = round % 2 == 0 ? h.docs + "/t/g\(n).md" : h.docs + "/s/f\(n).md"
                    _ = rename(from, to)
                }
            }
            // Even numbers of rounds: all back in s/.
            try h.expectMatchesDisk()
            #expect(try h.paths("storm", k: 200).count == 100)
            #expect(try h.paths("lemur7") == [h.docs + "/s/f7.md"])
        }
    }

    @Test func sourceRootDeletedOrMovedAway() throws {
        try withTemporaryDirectory { (outside: String) throws in
            try withDaemon(seed: { docs in try writeFile(docs + "/a.md", "# A\n\nmarmot burrow\n") }) { h in
                try FileManager.default.moveItem(atPath: h.docs, toPath: outside + "/moved-docs")
                try h.sync()
                #expect(try h.paths("marmot").isEmpty, "a moved-away root's files leave the index")
                #expect(try h.status()["files"] == 0)
                // Moved back: noticed through the parent folder, indexed and watched again.
                try FileManager.default.moveItem(atPath: outside + "/moved-docs", toPath: h.docs)
                try h.sync()
                #expect(try h.paths("marmot") == [h.docs + "/a.md"])
                try writeFile(h.docs + "/b.md", "# B\n\nmarmot again\n")
                try h.sync()
                #expect(try h.paths("marmot").count == 2)
                // Deleting the root: its files leave the index.
                try FileManager.default.removeItem(atPath: h.docs)
                try h.sync()
                #expect(try h.paths("marmot").isEmpty)
            }
        }
    }

    @Test func overflowTriggersReconciliation() throws {
        try withDaemon(seed: { docs in
            for n in 0..<50 { try writeFile(docs + "/old/o\(n).md", "# O\(n)\n\nold newt\(n)\n") }
        }) { h in
            // Pause the daemon so its inotify queue (max_queued_events) overflows while it cannot read.
            let limit = Int((try? String(contentsOfFile: "/proc/sys/fs/inotify/max_queued_events", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? "16384") ?? 16384
            kill(h.daemon.process.processIdentifier, SIGSTOP)
            let files = limit / 2 + 500   // each new file in a watched folder queues IN_CREATE and IN_CLOSE_WRITE
            for n in 0..<files {
                try writeFile(h.docs + "/old/n\(n).md", "# N\(n)\n\nnew ocelot\(n)\n")
            }
            for n in 0..<25 { try FileManager.default.removeItem(atPath: h.docs + "/old/o\(n).md") }
            kill(h.daemon.process.processIdentifier, SIGCONT)
            try h.expectMatchesDisk()
            let overflows = try h.status()["watch"]?["overflows"]?.intValue ?? 0
            #expect(overflows >= 1, "the queue overflowed")
            #expect(try h.paths("ocelot\(files - 1)") == [h.docs + "/old/n\(files - 1).md"])
        }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare"), "needs unshare for a private inotify limit"))
    func watchLimitFallsBackToRescan() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = dir + "/docs"
            for n in 0..<6 { try writeFile(docs + "/d\(n)/a.md", "# A\(n)\n\nplover\(n)\n") }
            try writeFile(dir + "/ragd.toml", "[index]\nrescan_interval_seconds = 1\n")
            // A user namespace of our own gets its own inotify watch limit: 3 folders, while the tree has 7.
            let launcher = ["unshare", "--user", "--map-root-user", "sh", "-c",
                            "echo 3 > /proc/sys/user/max_inotify_watches && exec \"$0\" \"$@\""]
            let daemon = try DaemonProcess(arguments: ["--source", docs, "--state-dir", dir + "/state", "--socket", dir + "/ragd.sock",
                                                       "--config", dir + "/ragd.toml"],
                                           socketPath: dir + "/ragd.sock", workDirectory: dir, launcher: launcher)
            try daemon.waitUntilReady()
            try daemon.waitUntilIndexed()
            let h = Harness(docs: docs, daemon: daemon, client: try daemon.client())
            let watch = try h.status()["watch"]
            #expect(watch?["limit_reached"] == true)
            #expect((watch?["unwatched_folders"]?.intValue ?? 0) >= 1)
            #expect(daemon.log.components(separatedBy: "inotify watch limit reached").count == 2, "logged once")
            #expect(daemon.log.contains("fs.inotify.max_user_watches"))
            // Changes in unwatched folders are still found, by the periodic rescan: wait for passes (each ends with a
            // STATUS=ready notification) until they show up.
            for n in 0..<6 { try writeFile(docs + "/d\(n)/b.md", "# B\(n)\n\nsandpiper\(n)\n") }
            let query = "sandpiper0 sandpiper1 sandpiper2 sandpiper3 sandpiper4 sandpiper5"
            var passes = 0
            while try h.paths(query).count < 6 && passes < 20 {
                daemon.notify.discardReceived()
                try daemon.waitUntilIndexed(timeout: 30)
                passes += 1
            }
            #expect(try h.paths(query).count == 6)
            try h.expectMatchesDisk()
            #expect(daemon.stop() == 0)
        }
    }
}

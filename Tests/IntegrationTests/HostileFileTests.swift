import Foundation
import RagProtocol
import RagTestSupport
import Testing

/// Hostile files in a source, end to end: each is skipped (or indexed) as docs/security.md says, logged once however
/// many rescans and events see it, and leaves the rest of the index as a fresh index of the same files.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct HostileFileTests {
    /// Starts ragd on `dir/docs` with a one-second rescan (so rescans demonstrably do not log again) and no model.
    func start(_ dir: String, extraConfig: String = "", launcher: [String] = [], sourceTable: Bool = false,
               syncTimeoutMS: Int = 60000, rescanSeconds: Int = 1) throws -> FaultHarness {
        let docs = dir + "/docs"
        try FileManager.default.createDirectory(atPath: docs, withIntermediateDirectories: true)
        let config = dir + "/ragd.toml"
        var text = "[index]\nrescan_interval_seconds = \(rescanSeconds)\n[model]\nenabled = false\n" + extraConfig
        if sourceTable { text = "state_dir = \"\(dir)/state\"\n" + text }
        try writeFile(config, text)
        let daemon = try DaemonProcess(arguments: (sourceTable ? [] : ["--source", docs]) + ["--state-dir", dir + "/state", "--socket", dir + "/ragd.sock", "--config", config],
                                       socketPath: dir + "/ragd.sock", workDirectory: dir, launcher: launcher)
        try daemon.waitUntilReady()
        let h = FaultHarness(dir: dir, docs: docs, daemon: daemon, client: try daemon.client())
        let synced = try h.sync(timeoutMS: syncTimeoutMS)
        #expect(synced["ok"] == true || syncTimeoutMS < 1000, "\(synced.serialized())")
        return h
    }

    /// Lines of the log about `path` (its `file.path` field) that contain `text`.
    func logLines(_ h: FaultHarness, _ text: String, path: String) -> Int {
        h.daemon.log.split(separator: "\n").filter { $0.contains(text) && ($0.contains("file.path=\(path) ") || $0.hasSuffix("file.path=\(path)")) }.count
    }

    /// Waits for `count` more full passes (periodic rescans) than have completed now.
    func waitForRescans(_ h: FaultHarness, _ count: Int = 3) throws {
        let now = try h.status()["scans"]?.intValue ?? 0
        try h.waitForStatus("\(count) more rescans") { ($0["scans"]?.intValue ?? 0) >= now + count }
    }

    @Test func symbolicLinksAreNotFollowedByDefault() throws {
        try withTemporaryDirectory { (dir: String) throws in
            try writeFile(dir + "/outside/secret.md", "# Secret\n\nthe outside narwhal\n")
            try writeFile(dir + "/docs/real.md", "# Real\n\nthe inside walrus\n")
            try writeFile(dir + "/docs/sub/inner.md", "# Inner\n\nthe inner seal\n")
            #expect(symlink(dir + "/outside/secret.md", dir + "/docs/link.md") == 0)
            #expect(symlink(dir + "/outside", dir + "/docs/outdir") == 0)
            #expect(symlink(dir + "/docs", dir + "/docs/loop") == 0)
            #expect(symlink("self.md", dir + "/docs/self.md") == 0)
            let h = try start(dir)
            // A link made while running, and a folder swapped for a link to the outside.
            #expect(symlink(dir + "/outside/secret.md", dir + "/docs/late.md") == 0)
            #expect(rename(dir + "/docs/sub", dir + "/outside/sub") == 0)
            #expect(symlink(dir + "/outside/sub", dir + "/docs/sub") == 0)
            #expect(try h.sync()["ok"] == true)
            try waitForRescans(h)
            #expect(try h.paths("narwhal").isEmpty, "nothing outside the source through links")
            #expect(try h.paths("seal").isEmpty, "a folder replaced by a link is not entered")
            #expect(try h.paths("walrus") == [h.docs + "/real.md"])
            #expect(try h.indexed().keys.sorted() == [h.docs + "/real.md"])
            for link in ["link.md", "outdir", "loop", "self.md", "late.md", "sub"] {
                #expect(logLines(h, "symbolic link not followed", path: h.docs + "/" + link) == 1, "one line for \(link):\n\(h.daemon.log)")
            }
            #expect(h.logCount("symbolic link not followed") == 6)
            try h.expectMatchesFreshIndex(config: dir + "/ragd.toml")
            #expect(h.daemon.stop() == 0)
        }
    }

    @Test func followedLinksDoNotLoopAndMayLeaveTheSource() throws {
        try withTemporaryDirectory { (dir: String) throws in
            try writeFile(dir + "/outside/secret.md", "# Secret\n\nthe outside narwhal\n")
            try writeFile(dir + "/docs/a/one.md", "# One\n\nthe inside walrus\n")
            #expect(symlink(dir + "/docs", dir + "/docs/a/up") == 0)
            #expect(symlink("..", dir + "/docs/a/parent") == 0)
            #expect(symlink(dir + "/outside", dir + "/docs/outdir") == 0)
            #expect(symlink("self.md", dir + "/docs/self.md") == 0)
            #expect(symlink("x.md", dir + "/docs/y.md") == 0)
            #expect(symlink("y.md", dir + "/docs/x.md") == 0)
            let h = try start(dir, extraConfig: "[[source]]\npath = \"docs\"\nfollow_symlinks = true\n", sourceTable: true)
            try waitForRescans(h)
            #expect(try h.indexed().keys.sorted() == [h.docs + "/a/one.md", h.docs + "/outdir/secret.md"])
            #expect(try h.paths("narwhal") == [h.docs + "/outdir/secret.md"], "followed links may lead outside the source")
            #expect(h.logCount("already walked") == 2, "each loop reported once:\n\(h.daemon.log)")
            #expect(h.logCount("symbolic link cannot be followed") == 3)
            // A new loop while running does not hang the watcher or the indexer.
            #expect(symlink(dir + "/docs/a", dir + "/docs/a/again") == 0)
            #expect(try h.sync()["ok"] == true)
            try h.expectMatchesFreshIndex(config: dir + "/ragd.toml", sourceFlag: false)
            #expect(h.daemon.stop() == 0)
        }
    }

    @Test func specialFilesAreNeverOpened() throws {
        try withTemporaryDirectory { (dir: String) throws in
            try writeFile(dir + "/docs/real.md", "# Real\n\nthe inside walrus\n")
            #expect(mkfifo(dir + "/docs/pipe.md", 0o644) == 0)
            var devices = 0
            if isRoot && mknod(dir + "/docs/device.md", S_IFCHR | 0o644, dev_t(1 << 8 | 3)) == 0 { devices += 1 }  // like /dev/null
            let h = try start(dir)
            // A FIFO created while running, with no writer: opening it for reading in blocking mode would hang.
            #expect(mkfifo(dir + "/docs/late.txt", 0o644) == 0)
            #expect(try h.sync()["ok"] == true)
            try waitForRescans(h)
            #expect(try h.indexed().keys.sorted() == [h.docs + "/real.md"])
            #expect(h.logCount("not a regular file (FIFO)") == 2, "\(h.daemon.log)")
            #expect(h.logCount("not a regular file (character device)") == devices)
            // No reader holds the FIFOs open: a non-blocking writer finds none.
            let fd = open(dir + "/docs/pipe.md", O_WRONLY | O_NONBLOCK)
            #expect(fd < 0 && errno == ENXIO)
            try h.expectMatchesFreshIndex(config: dir + "/ragd.toml")
            #expect(h.daemon.stop() == 0)
        }
    }

    @Test func sparseTwoGigabyteFileIsSkippedWithoutBeingRead() throws {
        try withTemporaryDirectory { (dir: String) throws in
            try writeFile(dir + "/docs/real.md", "# Real\n\nthe inside walrus\n")
            let fd = open(dir + "/docs/huge.md", O_WRONLY | O_CREAT, 0o644)
            #expect(ftruncate(fd, 2 << 30) == 0)
            close(fd)
            let h = try start(dir)
            try waitForRescans(h)
            let status = try h.status()
            #expect(status["skipped"]?["too_large"] == 1)
            #expect(try h.indexed().keys.sorted() == [h.docs + "/real.md"])
            #expect(h.logCount("skipping file over the size cap") == 1)
            // rchar counts every byte ragd read through read(2): far less than the file.
            let io = try String(contentsOfFile: "/proc/\(h.daemon.process.processIdentifier)/io", encoding: .utf8)
            let rchar = io.split(separator: "\n").first { $0.hasPrefix("rchar:") }.flatMap { Int($0.dropFirst(6).trimmingCharacters(in: .whitespaces)) } ?? .max
            #expect(rchar < 256 << 20, "ragd read \(rchar) bytes")
            // Once the file is gone, it no longer counts as skipped.
            try FileManager.default.removeItem(atPath: dir + "/docs/huge.md")
            #expect(try h.sync()["ok"] == true)
            try waitForRescans(h, 1)
            #expect(try h.status()["skipped"]?["too_large"] == 0)
            try h.expectMatchesFreshIndex(config: dir + "/ragd.toml")
            #expect(h.daemon.stop() == 0)
        }
    }

    /// A file of one line of `megabytes` MiB of words, ending with "finalword".
    func writeHugeLine(_ path: String, megabytes: Int) throws {
        var block = ""
        var n = 0
        while block.utf8.count < 1 << 20 {
            block += "term\(n % 20000) "
            n += 1
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity((megabytes + 1) << 20)
        let blockBytes = Array(block.utf8)
        for _ in 0..<megabytes { bytes += blockBytes }
        bytes += Array("finalword\n".utf8)
        try writeFile(path, bytes)
    }

    /// Starts ragd on a folder holding one huge line (and a small file) with `config`, waits (in steps shorter than
    /// the client's receive timeout) until it is indexed, and checks time, memory and content.
    func expectHugeLineIndexed(_ dir: String, config: String, maxSeconds: Double, maxPeakKB: Int, minChunks: Int) throws {
        let started = Date()
        let h = try start(dir, extraConfig: config, syncTimeoutMS: 1)
        while try h.sync(timeoutMS: 30_000)["ok"] != true {
            guard Date().timeIntervalSince(started) < maxSeconds else {
                Issue.record("indexing did not finish within \(maxSeconds) s")
                return
            }
        }
        let elapsed = Date().timeIntervalSince(started)
        #expect(elapsed < maxSeconds, "indexing took \(elapsed) s")
        let status = try h.status()
        #expect(status["files"] == 2)
        #expect((status["chunks"]?.intValue ?? 0) > minChunks)
        #expect(try h.paths("finalword") == [dir + "/docs/line.txt"])
        let peak = try String(contentsOfFile: "/proc/\(h.daemon.process.processIdentifier)/status", encoding: .utf8)
            .split(separator: "\n").first { $0.hasPrefix("VmHWM:") }
            .flatMap { Int($0.dropFirst(6).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "") } ?? .max
        #expect(peak < maxPeakKB, "peak resident memory \(peak) kB")
        #expect(h.daemon.stop() == 0)
    }

    /// A 12 MiB line (under the default cap) goes through the whole pipeline in bounded time and memory.
    @Test func hugeSingleLineUnderTheDefaultCap() throws {
        try withTemporaryDirectory { (dir: String) throws in
            try writeFile(dir + "/docs/real.md", "# Real\n\nthe inside walrus\n")
            try writeHugeLine(dir + "/docs/line.txt", megabytes: 12)
            try expectHugeLineIndexed(dir, config: "", maxSeconds: 120, maxPeakKB: 600 << 10, minChunks: 6_000)
        }
    }

    /// The 100 MB line of the brief. Heavy (a minute or more of one core and about 1.1 GB on a debug build, which
    /// slows down load-sensitive tests running beside it on a small machine), so it runs only with RAGD_HEAVY_TESTS=1.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["RAGD_HEAVY_TESTS"] == "1", "heavy: set RAGD_HEAVY_TESTS=1 to run it"))
    func oneHundredMegabyteLine() throws {
        try withTemporaryDirectory { (dir: String) throws in
            try writeFile(dir + "/docs/real.md", "# Real\n\nthe inside walrus\n")
            try writeHugeLine(dir + "/docs/line.txt", megabytes: 100)
            // With the default cap the file is skipped.
            let skipping = try start(dir)
            #expect(try skipping.indexed().keys.sorted() == [dir + "/docs/real.md"])
            #expect(try skipping.status()["skipped"]?["too_large"] == 1)
            #expect(skipping.daemon.stop() == 0)
            try FileManager.default.removeItem(atPath: dir + "/state")
            // With the cap raised it is chunked and indexed in bounded time and memory.
            try expectHugeLineIndexed(dir, config: "[limits]\nmax_file_bytes = 209715200\n", maxSeconds: 280, maxPeakKB: 3 << 20, minChunks: 50_000)
        }
    }

    @Test func namesThatAreNotUTF8AreSkippedNotMerged() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = dir + "/docs"
            try writeFile(docs + "/a\u{FFFD}.md", "# Twin\n\nthe valid twin\n")
            func create(_ name: [UInt8], _ text: String) -> Bool {
                let path = Array(docs.utf8) + [UInt8(ascii: "/")] + name + [0]
                return path.withUnsafeBufferPointer { raw in
                    raw.withMemoryRebound(to: CChar.self) { p in
                        let fd = open(p.baseAddress!, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                        guard fd >= 0 else { return false }
                        defer { close(fd) }
                        return write(fd, text, text.utf8.count) == text.utf8.count
                    }
                }
            }
            #expect(create(Array("a".utf8) + [0xFF] + Array(".md".utf8), "# Bad\n\nthe invalid ocelot\n"))
            let h = try start(dir)
            // One more made while running.
            #expect(create(Array("b".utf8) + [0xFE] + Array(".md".utf8), "# Bad\n\nthe invalid margay\n"))
            #expect(try h.sync()["ok"] == true)
            try waitForRescans(h)
            #expect(try h.indexed().keys.sorted() == [docs + "/a\u{FFFD}.md"], "the valid twin only; nothing merged into it")
            #expect(try h.paths("ocelot").isEmpty)
            #expect(try h.paths("margay").isEmpty)
            #expect(try h.paths("twin") == [docs + "/a\u{FFFD}.md"])
            #expect(h.logCount(#"a\xFF.md"#) == 1, "\(h.daemon.log)")
            #expect(h.logCount(#"b\xFE.md"#) == 1, "\(h.daemon.log)")
            try h.expectMatchesFreshIndex(config: dir + "/ragd.toml")
            #expect(h.daemon.stop() == 0)
        }
    }

    @Test func binaryAndInvalidUTF8AreLoggedOnceAcrossRescans() throws {
        try withTemporaryDirectory { (dir: String) throws in
            try writeFile(dir + "/docs/binary.md", [0x23, 0x20, 0x41, 0x00, 0x01, 0x02, 0xFF] + Array("platypus".utf8))
            try writeFile(dir + "/docs/latin1.txt", Array("caf".utf8) + [0xE9] + Array(" wombat menu\n".utf8))
            let h = try start(dir)
            try waitForRescans(h)
            // Repeated events without a content change: no new lines either.
            for _ in 0..<3 {
                #expect(chmod(dir + "/docs/binary.md", 0o600) == 0 && chmod(dir + "/docs/binary.md", 0o644) == 0)
                #expect(chmod(dir + "/docs/latin1.txt", 0o600) == 0 && chmod(dir + "/docs/latin1.txt", 0o644) == 0)
                #expect(try h.sync()["ok"] == true)
            }
            #expect(try h.status()["skipped"]?["binary"] == 1)
            #expect(try h.paths("wombat") == [dir + "/docs/latin1.txt"])
            #expect(h.logCount("skipping binary file") == 1)
            #expect(h.logCount("not valid UTF-8; decoded") == 1)
            try h.expectMatchesFreshIndex(config: dir + "/ragd.toml")
            #expect(h.daemon.stop() == 0)
        }
    }

    /// As root, permission bits are not enforced; ragd runs in a user namespace of its own with no uid mapped, where
    /// it keeps the owner's permission bits but loses CAP_DAC_OVERRIDE, so a mode of 000 really denies access.
    @Test(.enabled(if: isRoot && FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare"),
                   "needs root and unshare (as a non-root user, chmod 000 applies directly; run the suite as root)"))
    func permissionDeniedFilesAndFoldersAreKeptAndRetried() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = dir + "/docs"
            try writeFile(docs + "/real.md", "# Real\n\nthe inside walrus\n")
            try writeFile(docs + "/secret.md", "# Secret\n\nthe hidden pangolin\n")
            try writeFile(docs + "/locked/inner.md", "# Inner\n\nthe locked okapi\n")
            try writeFile(docs + "/closed/inner.md", "# Closed\n\nthe closed dugong\n")
            #expect(chmod(docs + "/closed", 0) == 0)
            let h = try start(dir, launcher: ["unshare", "--user"])
            #expect(try h.paths("pangolin") == [docs + "/secret.md"])
            #expect(try h.paths("dugong").isEmpty, "a folder that cannot be listed")
            #expect(try h.status()["watch"]?["folders"] == 2)
            // Denied after indexing: what is indexed is kept (the content is still what was read), retried quietly.
            #expect(chmod(docs + "/secret.md", 0) == 0)
            #expect(chmod(docs + "/locked", 0) == 0)
            try writeFile(docs + "/fresh-secret.md", "# Fresh\n\nthe new tapir\n")
            #expect(chmod(docs + "/fresh-secret.md", 0) == 0)
            #expect(try h.sync()["ok"] == true)
            try waitForRescans(h)
            #expect(try h.paths("pangolin") == [docs + "/secret.md"])
            #expect(try h.paths("okapi") == [docs + "/locked/inner.md"])
            #expect(try h.paths("tapir").isEmpty)
            #expect(try h.status()["skipped"]?["unreadable"] == 2)
            #expect(h.logCount("cannot read file") == 2, "\(h.daemon.log)")
            #expect(logLines(h, "cannot list folder", path: docs + "/locked") == 1, "\(h.daemon.log)")
            #expect(logLines(h, "cannot list folder", path: docs + "/closed") == 1, "\(h.daemon.log)")
            // Permissions restored (the mtime does not change): picked up by the attribute event, no restart.
            #expect(chmod(docs + "/fresh-secret.md", 0o644) == 0)
            #expect(chmod(docs + "/secret.md", 0o644) == 0)
            #expect(chmod(docs + "/locked", 0o755) == 0)
            #expect(chmod(docs + "/closed", 0o755) == 0)
            #expect(try h.sync()["ok"] == true)
            #expect(try h.paths("tapir") == [docs + "/fresh-secret.md"])
            #expect(try h.paths("dugong") == [docs + "/closed/inner.md"])
            #expect(try h.status()["watch"]?["folders"] == 3, "the folder that could not be watched is watched once it can be")
            // The folder is watched again: a file written in it now is found without a rescan.
            try writeFile(docs + "/locked/later.md", "# Later\n\nthe late quoll\n")
            #expect(try h.sync()["ok"] == true)
            #expect(try h.paths("quoll") == [docs + "/locked/later.md"])
            #expect(try h.status()["skipped"]?["unreadable"] == 0)
            try h.expectMatchesFreshIndex(config: dir + "/ragd.toml")
            #expect(h.daemon.stop() == 0)
        }
    }

    @Test func missingSourceFolderIsLoggedOncePerDisappearance() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let h = try start(dir)
            try FileManager.default.removeItem(atPath: h.docs)
            #expect(try h.sync()["ok"] == true)
            try waitForRescans(h)
            #expect(h.logCount("source folder is missing") == 1, "\(h.daemon.log)")
            // Back, then gone again: a new event, a new line.
            try writeFile(h.docs + "/a.md", "# A\n\nthe returning heron\n")
            try h.waitForStatus("the returned folder indexed") { $0["files"] == 1 }
            try FileManager.default.removeItem(atPath: h.docs)
            try h.waitForStatus("the folder gone again") { $0["files"] == 0 }
            try waitForRescans(h)
            #expect(h.logCount("source folder is missing") == 2, "\(h.daemon.log)")
            #expect(h.daemon.stop() == 0)
        }
    }

    /// Two writes within one timestamp tick leave size and mtime as they were; the event still gets the new content.
    @Test func sameSizeRewriteWithTheSameMtimeIsNoticed() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let path = dir + "/docs/a.md"
            try writeFile(path, "# A\n\nthe first jackal\n")
            let h = try start(dir)
            #expect(try h.paths("jackal") == [path])
            var before = stat()
            #expect(stat(path, &before) == 0)
            // Rewrite in place with as many bytes, then put the old mtime back (what a coarse clock does by itself).
            let fd = open(path, O_WRONLY | O_TRUNC)
            let text = "# A\n\nthe other coyote\n"
            #expect(text.utf8.count == Int(before.st_size))
            #expect(write(fd, text, text.utf8.count) == text.utf8.count)
            close(fd)
            var times = [before.st_atim, before.st_mtim]
            #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
            var after = stat()
            #expect(stat(path, &after) == 0)
            #expect(after.st_size == before.st_size && after.st_mtim.tv_sec == before.st_mtim.tv_sec && after.st_mtim.tv_nsec == before.st_mtim.tv_nsec)
            #expect(try h.sync()["ok"] == true)
            #expect(try h.paths("coyote") == [path])
            #expect(try h.paths("jackal").isEmpty)
            #expect(h.daemon.stop() == 0)
        }
    }

    /// A source folder that cannot be listed at start is indexed and watched as soon as its mode allows, without
    /// waiting for a rescan (rescans are off here).
    @Test(.enabled(if: isRoot && FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare"),
                   "needs root and unshare (see permissionDeniedFilesAndFoldersAreKeptAndRetried)"))
    func unreadableSourceFolderIsWatchedOnceReadable() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = dir + "/docs"
            try writeFile(docs + "/a.md", "# A\n\nthe patient bittern\n")
            #expect(chmod(docs, 0) == 0)
            let h = try start(dir, launcher: ["unshare", "--user"], rescanSeconds: 0)
            #expect(try h.status()["files"] == 0)
            #expect(try h.status()["watch"]?["folders"] == 0)
            #expect(logLines(h, "cannot list folder", path: docs) == 1, "\(h.daemon.log)")
            #expect(chmod(docs, 0o755) == 0)
            #expect(try h.sync()["ok"] == true)
            #expect(try h.paths("bittern") == [docs + "/a.md"])
            #expect(try h.status()["watch"]?["folders"] == 1)
            try writeFile(docs + "/b.md", "# B\n\nthe watched avocet\n")
            #expect(try h.sync()["ok"] == true)
            #expect(try h.paths("avocet") == [docs + "/b.md"])
            #expect(h.daemon.stop() == 0)
        }
    }

    @Test func fileReplacedByAFolderAndBack() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = dir + "/docs"
            try writeFile(docs + "/x.md", "# X\n\nthe file gecko\n")
            try writeFile(docs + "/y.md/inner.md", "# Inner\n\nthe folder iguana\n")
            let h = try start(dir)
            #expect(try h.indexed().keys.sorted() == [docs + "/x.md", docs + "/y.md/inner.md"])
            // Swap: x.md becomes a folder, y.md a file.
            try FileManager.default.removeItem(atPath: docs + "/x.md")
            try writeFile(docs + "/x.md/inner.md", "# Inner\n\nthe new folder skink\n")
            try FileManager.default.removeItem(atPath: docs + "/y.md")
            try writeFile(docs + "/y.md", "# Y\n\nthe new file anole\n")
            #expect(try h.sync()["ok"] == true)
            #expect(try h.indexed().keys.sorted() == [docs + "/x.md/inner.md", docs + "/y.md"])
            #expect(try h.paths("gecko").isEmpty)
            #expect(try h.paths("iguana").isEmpty)
            #expect(try h.paths("skink") == [docs + "/x.md/inner.md"])
            #expect(try h.paths("anole") == [docs + "/y.md"])
            // And back again, with renames this time.
            #expect(rename(docs + "/x.md", dir + "/x-folder") == 0)
            #expect(rename(docs + "/y.md", docs + "/x.md") == 0)
            #expect(rename(dir + "/x-folder", docs + "/y.md") == 0)
            #expect(try h.sync()["ok"] == true)
            #expect(try h.indexed().keys.sorted() == [docs + "/x.md", docs + "/y.md/inner.md"])
            #expect(try h.paths("anole") == [docs + "/x.md"])
            try h.expectMatchesFreshIndex(config: dir + "/ragd.toml")
            #expect(h.daemon.stop() == 0)
        }
    }
}

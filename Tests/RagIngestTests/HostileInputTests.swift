import Dispatch
import Foundation
import Glibc
import Logging
import RagStore
import RagTestSupport
import RagCore
import Testing
@testable import RagIngest

/// Seconds `body` takes.
private func seconds(_ body: () -> Void) -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

/// Creates a file whose name is raw bytes (possibly not UTF-8) inside `folder`; returns false on failure.
@discardableResult
private func createFile(in folder: String, name: [UInt8], contents: String = "# x\n\ntext\n", folderToo: Bool = false) -> Bool {
    let path = Array(folder.utf8) + [UInt8(ascii: "/")] + name + [0]
    return path.withUnsafeBufferPointer { raw in
        raw.withMemoryRebound(to: CChar.self) { p in
            if folderToo { return mkdir(p.baseAddress!, 0o755) == 0 }
            let fd = open(p.baseAddress!, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            let bytes = Array(contents.utf8)
            return write(fd, bytes, bytes.count) == bytes.count
        }
    }
}

/// Structures that could make a parser quadratic or recurse deeply: each must chunk in bounded time with
/// chunks within the caps.
@Suite struct DeepStructureTests {
    static let cases: [(String, @Sendable () -> String)] = [
        ("100k nested blockquote markers on one line", { String(repeating: "> ", count: 100_000) + "deep quote\n" }),
        ("100k blockquote lines", { String(repeating: "> > > > > quoted line\n", count: 100_000) }),
        ("100k nested list markers on one line", { String(repeating: "- ", count: 100_000) + "item\n" }),
        ("1500 levels of indented list nesting", { (0..<1500).map { String(repeating: " ", count: 2 * $0) + "- level \($0)\n" }.joined() }),
        ("100k headings cycling through six levels", { (0..<100_000).map { String(repeating: "#", count: $0 % 6 + 1) + " h\($0)\n" }.joined() }),
        ("a 100k-line paragraph under a setext underline", { String(repeating: "para line\n", count: 100_000) + "===\n" }),
        ("100k unclosed fences", { String(repeating: "```\n", count: 50_000) + String(repeating: "~~~~\nx\n", count: 50_000) }),
        ("100k list items each opening a fence", { String(repeating: "- item\n  ```\n", count: 100_000) }),
        ("100k table rows", { "| a | b |\n|---|---|\n" + String(repeating: "| x | y |\n", count: 100_000) }),
        ("100k reST section adornments", { String(repeating: "T\n=\n", count: 50_000) + String(repeating: "U\n-\n", count: 50_000) }),
        ("1000 nested reST directives", { (0..<1000).map { String(repeating: " ", count: 3 * $0) + ".. note::\n" }.joined() }),
    ]

    @Test(arguments: 0..<cases.count)
    func deepStructureChunksInBoundedTime(_ index: Int) {
        let (name, make) = Self.cases[index]
        let text = make()
        for format in [DocumentFormat.markdown, .restructuredText, .plainText, .html] {
            var chunks: [ChunkDraft] = []
            let elapsed = seconds { chunks = Chunker().parse(text, format: format).chunks }
            // Linear work on these inputs takes well under a second even in a debug build; quadratic work takes minutes.
            #expect(elapsed < 20, "\(name) as \(format): \(elapsed) s")
            #expect(!chunks.isEmpty, "\(name) as \(format)")
            #expect(chunks.allSatisfy { $0.text.utf8.count <= 256 * 64 && $0.headings.count <= 64 }, "\(name) as \(format)")
        }
    }

    static let htmlCases: [(String, @Sendable () -> String)] = [
        ("100k nested divs", { String(repeating: "<div>", count: 100_000) + "deep" }),
        ("100k nested lists", { String(repeating: "<ul><li>item ", count: 100_000) }),
        ("100k nested tables", { String(repeating: "<table><tr><td>cell ", count: 100_000) }),
        ("100k unclosed p and li", { String(repeating: "<p>x<li>y", count: 100_000) }),
        ("100k nested spans, then 100k end tags of elements not open", {
            String(repeating: "<span>s ", count: 100_000) + String(repeating: "</div>", count: 100_000) }),
        ("100k nested b closed in reverse", { String(repeating: "<b>", count: 100_000) + "x" + String(repeating: "</b>", count: 100_000) }),
        ("100k unclosed headerlinks", { String(repeating: "<a class=headerlink>¶ x ", count: 100_000) }),
        ("100k nested dropped navs", { String(repeating: "<nav><div>", count: 100_000) + "x" }),
        ("100k unclosed headings", { String(repeating: "<h2>heading ", count: 100_000) }),
        ("100k pre and table openings", { String(repeating: "<pre>\n a\n<table><tr><td>b", count: 50_000) }),
        ("1 MB of <", { String(repeating: "<", count: 1_000_000) }),
        ("1 MB of &#", { String(repeating: "&#", count: 500_000) }),
        ("an attribute value never closed", { "<p title=\"" + String(repeating: "x > y ", count: 200_000) }),
        ("a comment never closed", { "<p>a</p><!--" + String(repeating: "-- > x ", count: 200_000) }),
        ("a script never closed", { "<p>a</p><script>" + String(repeating: "</scrip x ", count: 100_000) }),
        ("100k attributes", { "<p " + String(repeating: "class=toc ", count: 100_000) + ">x</p>" }),
    ]

    @Test(arguments: 0..<htmlCases.count)
    func deepHTMLChunksInBoundedTime(_ index: Int) {
        let (name, make) = Self.htmlCases[index]
        let text = make()
        var chunks: [ChunkDraft] = []
        let elapsed = seconds { chunks = Chunker().parse(text, format: .html).chunks }
        #expect(elapsed < 20, "\(name): \(elapsed) s")
        #expect(chunks.allSatisfy { $0.text.utf8.count <= 256 * 64 && $0.headings.count <= 64 && $0.lines.upperBound <= 200_001 },
                "\(name)")
    }

    /// One line of megabytes: chunking time grows linearly with its length.
    @Test func hugeSingleLineChunksInLinearTime() {
        func line(_ megabytes: Int) -> String {
            var text = ""
            text.reserveCapacity(megabytes << 20)
            var n = 0
            while text.utf8.count < megabytes << 20 {
                text += "word\(n % 5000) "
                n += 1
            }
            return text
        }
        let small = line(2), large = line(16)
        var smallChunks = 0, largeChunks = 0
        let t1 = seconds { smallChunks = Chunker().parse(small, format: .plainText).chunks.count }
        let t2 = seconds { largeChunks = Chunker().parse(large, format: .plainText).chunks.count }
        #expect(largeChunks > 7 * smallChunks && largeChunks < 9 * smallChunks)
        // 8× the input: linear work takes about 8× as long; allow for noise, not for 64×.
        #expect(t2 < max(t1, 0.05) * 24, "4 MiB: \(t1) s, 32 MiB: \(t2) s")
    }
}

/// Files that change, vanish or are not what they seem while ragd reads them.
@Suite(.serialized) struct FileReaderTests {
    @Test func vanishedFile() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let result = FileReader.read(path: dir + "/gone.md", root: dir, followSymlinks: false, maxBytes: 1 << 20)
            guard case .failure(.vanished) = result else { Issue.record("\(result)"); return }
        }
    }

    @Test func fifoAndDeviceAreNotRead() throws {
        try withTemporaryDirectory { (dir: String) throws in
            #expect(mkfifo(dir + "/pipe.md", 0o644) == 0)
            // Opening a FIFO without a writer would block a plain open(2); this returns at once.
            let result = FileReader.read(path: dir + "/pipe.md", root: dir, followSymlinks: false, maxBytes: 1 << 20)
            guard case .failure(.notRegular) = result else { Issue.record("\(result)"); return }
            let device = FileReader.read(path: "/dev/zero", followSymlinks: true, maxBytes: 1 << 20)
            guard case .failure(.notRegular) = device else { Issue.record("\(device)"); return }
        }
    }

    @Test func sparseTwoGigabyteFileIsRefusedWithoutReadingIt() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let path = dir + "/huge.md"
            let fd = open(path, O_WRONLY | O_CREAT, 0o644)
            #expect(ftruncate(fd, 2 << 30) == 0)
            close(fd)
            var result: Result<FileContents, FileReadFailure> = .failure(.changing)
            let elapsed = seconds { result = FileReader.read(path: path, root: dir, followSymlinks: false, maxBytes: 16 << 20) }
            guard case .failure(.tooLarge(let size, let limit)) = result else { Issue.record("\(result)"); return }
            #expect(size == 2 << 30 && limit == 16 << 20)
            #expect(elapsed < 1)
        }
    }

    @Test func fileTruncatedDuringTheReadIsReadAgain() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let path = dir + "/a.md"
            try writeFile(path, String(repeating: "old text that is long\n", count: 10_000))
            var first = true
            FileReader.beforeReadForTesting = { p in
                guard p == path, first else { return }
                first = false
                // Truncated and rewritten in place between the fstat and the read (not replaced: a replaced file
                // leaves the open descriptor on the old, consistent version).
                let fd = open(p, O_WRONLY | O_TRUNC)
                _ = write(fd, "# New\n\nshort\n", 13)
                close(fd)
            }
            defer { FileReader.beforeReadForTesting = nil }
            let result = FileReader.read(path: path, root: dir, followSymlinks: false, maxBytes: 1 << 20)
            guard case .success(let contents) = result else { Issue.record("\(result)"); return }
            #expect(String(decoding: contents.bytes, as: UTF8.self) == "# New\n\nshort\n")
            #expect(contents.size == 13)
            // Size and mtime recorded are those of the bytes returned, so later checks compare against the right version.
            var st = stat()
            #expect(stat(path, &st) == 0)
            #expect(contents.mtimeNanos == Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec))
        }
    }

    @Test func fileThatKeepsChangingIsReportedAsChanging() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let path = dir + "/a.md"
            try writeFile(path, "# A\n\ntext\n")
            FileReader.beforeReadForTesting = { p in
                guard p == path, let handle = FileHandle(forWritingAtPath: p) else { return }
                handle.seekToEndOfFile()
                handle.write("more\n".data(using: .utf8)!)
                try? handle.close()
            }
            defer { FileReader.beforeReadForTesting = nil }
            let result = FileReader.read(path: path, root: dir, followSymlinks: false, maxBytes: 1 << 20)
            guard case .failure(.changing) = result else { Issue.record("\(result)"); return }
        }
    }

    @Test func symbolicLinksBelowTheRootAreNotFollowedInAnyComponent() throws {
        try withTemporaryDirectory { (dir: String) throws in
            try writeFile(dir + "/outside/secret.md", "# Secret\n")
            try FileManager.default.createDirectory(atPath: dir + "/docs", withIntermediateDirectories: true)
            #expect(symlink(dir + "/outside", dir + "/docs/linked") == 0)
            #expect(symlink(dir + "/outside/secret.md", dir + "/docs/file.md") == 0)
            for path in [dir + "/docs/linked/secret.md", dir + "/docs/file.md"] {
                let refused = FileReader.read(path: path, root: dir + "/docs", followSymlinks: false, maxBytes: 1 << 20)
                switch refused {
                case .failure(.vanished), .failure(.notRegular): break
                default: Issue.record("\(path): \(refused)")
                }
                let followed = FileReader.read(path: path, root: dir + "/docs", followSymlinks: true, maxBytes: 1 << 20)
                guard case .success = followed else { Issue.record("\(path): \(followed)"); continue }
            }
            // The root itself may be reached through a link.
            #expect(symlink(dir + "/docs", dir + "/docs-link") == 0)
            try writeFile(dir + "/docs/real.md", "# Real\n")
            let viaRoot = FileReader.read(path: dir + "/docs-link/real.md", root: dir + "/docs-link", followSymlinks: false, maxBytes: 1 << 20)
            guard case .success = viaRoot else { Issue.record("\(viaRoot)"); return }
        }
    }
}

/// The walk of a source: names that are not UTF-8, link loops, special files.
@Suite struct ScannerTests {
    @Test func namesThatAreNotUTF8AreSkippedAndReportedDistinctly() throws {
        try withTemporaryDirectory { (dir: String) throws in
            #expect(createFile(in: dir, name: Array("a".utf8) + [0xFF] + Array(".md".utf8)))
            #expect(createFile(in: dir, name: Array("a".utf8) + [0xFE] + Array(".md".utf8)))
            #expect(createFile(in: dir, name: Array("a\u{FFFD}.md".utf8)))
            #expect(createFile(in: dir, name: Array("bad".utf8) + [0xC3, 0x28], folderToo: true))
            try writeFile(dir + "/good.md", "# Good\n")
            let result = SourceScanner.scan(SourceSpec(root: dir))
            #expect(result.files.map(\.path).sorted() == [dir + "/a\u{FFFD}.md", dir + "/good.md"])
            let problems = result.problems.map(\.path).sorted()
            #expect(problems == [dir + "/a\\xFE.md", dir + "/a\\xFF.md", dir + "/bad\\xC3("], "\(problems)")
            #expect(result.problems.allSatisfy { $0.message.contains("not valid UTF-8") })
        }
    }

    @Test func linkLoopsTerminateWhenFollowingLinks() throws {
        try withTemporaryDirectory { (dir: String) throws in
            try writeFile(dir + "/docs/a/one.md", "# One\n")
            try writeFile(dir + "/outside/two.md", "# Two\n")
            #expect(symlink(dir + "/docs", dir + "/docs/a/up") == 0)
            #expect(symlink("..", dir + "/docs/a/parent") == 0)
            #expect(symlink(dir + "/outside", dir + "/docs/out") == 0)
            #expect(symlink("self.md", dir + "/docs/self.md") == 0)
            #expect(symlink("nowhere.md", dir + "/docs/dangling.md") == 0)
            let followed = SourceScanner.scan(SourceSpec(root: dir + "/docs", followSymlinks: true))
            #expect(followed.files.map(\.path).sorted() == [dir + "/docs/a/one.md", dir + "/docs/out/two.md"])
            #expect(followed.problems.filter { $0.message.contains("already walked") }.count == 2)
            #expect(followed.problems.filter { $0.message.contains("cannot be followed") }.map(\.path).sorted()
                    == [dir + "/docs/dangling.md", dir + "/docs/self.md"])
            let plain = SourceScanner.scan(SourceSpec(root: dir + "/docs"))
            #expect(plain.files.map(\.path) == [dir + "/docs/a/one.md"])
            #expect(plain.problems.filter { $0.message.contains("not followed") }.count == 5)
        }
    }

    @Test func specialFilesAreListedAsProblemsNotFiles() throws {
        try withTemporaryDirectory { (dir: String) throws in
            #expect(mkfifo(dir + "/pipe.md", 0o644) == 0)
            #expect(mkfifo(dir + "/pipe.bin", 0o644) == 0)
            let result = SourceScanner.scan(SourceSpec(root: dir))
            #expect(result.files.isEmpty)
            #expect(result.problems.map(\.message) == ["not a regular file (FIFO); skipped"])
        }
    }
}

/// The indexer's handling of a file whose size or existence changed between the scan and the read.
@Suite struct IndexerRaceTests {
    func withIndexer(_ body: (Indexer, String) throws -> Void) throws {
        try withTemporaryDirectory { (dir: String) throws in
            try FileManager.default.createDirectory(atPath: dir + "/docs", withIntermediateDirectories: true)
            let store = try Store(directory: dir + "/index", configuration: StoreConfiguration(mapSize: 64 << 20))
            let indexer = Indexer(store: store, configuration: IndexerConfiguration(sources: [SourceSpec(root: dir + "/docs")]),
                                  logger: Logger(label: "test"))
            try body(indexer, dir + "/docs")
        }
    }

    @Test func sizeChangedBetweenScanAndRead() throws {
        try withIndexer { indexer, docs in
            try writeFile(docs + "/a.md", "# A\n\nshort\n")
            let scanned = ScannedFile(path: docs + "/a.md", size: 999_999, mtimeNanos: 1)
            guard case .upsert(let file)? = indexer.prepareOne(scanned, previous: nil) else { Issue.record("no upsert"); return }
            #expect(file.size == 11, "the size recorded is that of the bytes read")
            #expect(file.mtimeNanos != 1)
        }
    }

    @Test func deletedBetweenScanAndOpen() throws {
        try withIndexer { indexer, docs in
            try writeFile(docs + "/a.md", "# A\n\nzebra\n")
            try indexer.reconcile()
            let record = try #require(try indexer.store.file(path: docs + "/a.md"))
            try FileManager.default.removeItem(atPath: docs + "/a.md")
            let scanned = ScannedFile(path: docs + "/a.md", size: record.size, mtimeNanos: 5)
            guard case .delete(let path)? = indexer.prepareOne(scanned, previous: record) else { Issue.record("no delete"); return }
            #expect(path == docs + "/a.md")
            #expect(indexer.prepareOne(scanned, previous: nil) == nil)
        }
    }
}

/// Log lines captured in memory, for counting.
final class CapturedLog: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.lock(); lines.append(line); lock.unlock() }
    func count(_ text: String) -> Int { lock.lock(); defer { lock.unlock() }; return lines.filter { $0.contains(text) }.count }
}

struct CapturingLogHandler: LogHandler {
    let log: CapturedLog
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) { log.append("\(event.level) \(event.message)") }
}

/// Vectors that cannot be saved because the map is full at its ceiling: the chunks are not given up on, the fault is
/// logged once, and the vectors are saved once room returns.
@Suite struct EmbedWorkerFaultTests {
    @Test func vectorsWaitForRoomInsteadOfFailingChunks() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let analyzer = Analyzer()
            let store = try Store(directory: dir + "/index", configuration: StoreConfiguration(mapSize: 2 << 20, maxMapSize: 2 << 20))
            // Fill the map with text (no model yet, so no vectors).
            var files = 0
            fill: for n in 0..<500 {
                let chunks = (0..<20).map { c in
                    PreparedChunk(text: (0..<100).map { "v\(n)x\(c)y\($0)" }.joined(separator: " "), lines: (c + 1)...(c + 1), headings: [], analyzer: analyzer)
                }
                do {
                    try store.apply([.upsert(PreparedFile(path: "/d/f\(n).md", size: 1, mtimeNanos: 1, contentHash: SHA256.hash(Array("\(n)".utf8)),
                                                          title: nil, tags: [], chunks: chunks))])
                    files += 1
                } catch let error as StoreError where error.code == .mapFull {
                    break fill
                }
            }
            #expect(files > 1)
            let embedder = FakeEmbedder(dimensions: 256)
            try store.configureModel(id: embedder.modelID, dimensions: embedder.dimensions)
            let captured = CapturedLog()
            let worker = EmbedWorker(store: store, embedder: embedder, batchSize: 16, logger: Logger(label: "test") { _ in CapturingLogHandler(log: captured) })
            let total = store.counts.chunks
            let done = DispatchSemaphore(value: 0)
            DispatchQueue.global().async { worker.run(); done.signal() }
            defer { worker.stop(); done.wait() }
            // The worker runs into the full map (it embeds, then cannot save), repeatedly; nothing is given up on.
            let deadline = Date().addingTimeInterval(60)
            while captured.count("cannot save vectors") == 0 && Date() < deadline { _ = poll(nil, 0, 20) }
            #expect(captured.count("cannot save vectors") == 1)
            #expect(worker.pending == total - store.embeddingCounts.embedded, "no chunk marked as failed")
            #expect(captured.count("embedding failed") == 0)
            // Room returns: all files but the last (whose chunks, the newest, have no vectors yet) go; it gets its vectors.
            try store.apply((0..<(files - 1)).map { .delete(path: "/d/f\($0).md") })
            worker.wake()
            while (worker.pending > 0 || captured.count("vectors are being saved again") == 0) && Date() < deadline { _ = poll(nil, 0, 20) }
            #expect(worker.pending == 0)
            #expect(store.embeddingCounts.embedded == store.counts.chunks)
            #expect(captured.count("cannot save vectors") == 1)
            #expect(captured.count("vectors are being saved again") == 1)
        }
    }
}

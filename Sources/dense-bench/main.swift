// Query latency, start-up time and memory at scale on a synthetic index of N chunks.
//
// What is synthetic: chunk texts are real sentences (SciFact's corpus) recombined at random, ten chunks per file,
// a hundred files per folder; chunk vectors are random unit vectors (deterministic per chunk id, so the exact
// float32 nearest neighbours can be recomputed for recall). Queries are real: SciFact's claims, with vectors from
// the real encoder when a model folder is given (else random).
//
//   swift build -c release --product dense-bench
//   .build/release/dense-bench --chunks 1000000 --index /tmp/ix --build-only --model models/all-MiniLM-L6-v2 \
//       --corpus ../shared/data/scifact/corpus.jsonl --queries-file ../shared/data/scifact/queries.jsonl
//   .build/release/dense-bench --index /tmp/ix --recall 100      # open, time start-up, queries, RSS, recall
//   (--bm25-only or --dense-only: those modes; --as-schema-2: time the upgrade of a schema-2 index at open)
//   .build/release/dense-bench --index /tmp/ix --recall 100 --json /tmp/ix.json   # the same figures as JSON too
//   .build/release/dense-bench --index /tmp/ix --export /tmp/ix-export           # the data bench/peers.py needs
//
// --json FILE also writes the figures (per mode p50/p99/mean/max ms, start-up, RSS, recall) and the chunk ids of
// each query's BM25 and dense top ten, so that other engines' results can be compared with ragd's.
// --export DIR opens the index (start-up timed as usual), writes what other engines need to index the same
// chunks and run the same queries, and exits without running queries:
//   chunks.jsonl   one line per live chunk, ascending id: {"id", "heading", "headings", "text"}; "text" is the
//                  chunk text as stored, "headings" the stored trail, "heading" the part of the trail that
//                  ragd's BM25 indexes with the text (newline-separated; empty when the text starts with it)
//   ids.u32        chunk ids (uint32, little-endian) of the chunks with a vector, ascending
//   vectors.f32    their vectors as stored in the index, as float32 (row-major, little-endian), same order
//   queries.jsonl  {"n", "text"}: the query texts, in the order dense-bench runs them
//   queries.f32    their vectors (float32, row-major), same order
//   export.json    counts, dimensions, and the index's data.mdb size and modification time
//
// Without `--index` the index is built in a temporary folder and measured in the same process.
import Foundation
import RagCore
import RagEmbed
import RagQuery
import RagStore

var chunkCount = 100_000
var queryCount = 1000
var modelFolder: String? = nil
var corpusPath = "../shared/data/scifact/corpus.jsonl"
var queriesPath = "../shared/data/scifact/queries.jsonl"
var indexPath: String? = nil
var buildOnly = false
var recallQueries = 0
var asSchema2 = false  // mark the index as schema 2, so that opening it times the upgrade
var exportFolder: String? = nil
var jsonPath: String? = nil
var slowest = 0
var warmup = false
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--chunks": chunkCount = Int(arguments.next() ?? "") ?? chunkCount
    case "--queries": queryCount = Int(arguments.next() ?? "") ?? queryCount
    case "--model": modelFolder = arguments.next()
    case "--corpus": corpusPath = arguments.next() ?? corpusPath
    case "--queries-file": queriesPath = arguments.next() ?? queriesPath
    case "--index": indexPath = arguments.next()
    case "--build-only": buildOnly = true
    case "--recall": recallQueries = Int(arguments.next() ?? "") ?? 0
    case "--bm25-only", "--dense-only": break
    case "--mode": _ = arguments.next()   // one mode only, by its printed name (e.g. "bm25")
    case "--as-schema-2": asSchema2 = true
    case "--export": exportFolder = arguments.next()
    case "--json": jsonPath = arguments.next()
    case "--warmup": warmup = true   // each mode's queries once, untimed, before the timed pass
    case "--slowest": slowest = Int(arguments.next() ?? "") ?? 0   // list the slowest queries of each mode
    default: FileHandle.standardError.write("unknown argument \(argument)\n".data(using: .utf8)!); exit(2)
    }
}

/// SplitMix64: a fast, seedable generator (the bulk vectors are a function of the chunk id).
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

let dims = 384
/// The random unit vector of chunk `id` (uniform in the cube, normalised).
func chunkVector(_ id: UInt32) -> [Float] {
    var rng = SplitMix(seed: UInt64(id) &* 0x2545_F491_4F6C_DD1D ^ 0xDEAD_BEEF)
    var v = [Float](repeating: 0, count: dims)
    var norm: Float = 0
    for i in 0..<dims {
        let x = Float(Int64(bitPattern: (rng.next() >> 11) << 11) >> 11) / Float(1 << 52)
        v[i] = x
        norm += x * x
    }
    let inverse = 1 / norm.squareRoot()
    for i in 0..<dims { v[i] *= inverse }
    return v
}

func jsonLines(_ path: String) -> [[String: Any]] {
    guard let data = FileManager.default.contents(atPath: path) else {
        FileHandle.standardError.write("cannot read \(path)\n".data(using: .utf8)!)
        exit(2)
    }
    return data.split(separator: UInt8(ascii: "\n")).compactMap { try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any] }
}

/// Fields of /proc/self/status in MB.
func statusMB(_ names: [String]) -> [Double] {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    return names.map { name in
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name) }) else { return 0 }
        return Double(line.split(separator: " ").dropFirst().first.map(String.init) ?? "0").map { $0 / 1024 } ?? 0
    }
}
func residentMB() -> (rss: Double, peak: Double) {
    let values = statusMB(["VmRSS:", "VmHWM:"])
    return (values[0], values[1])
}
/// Resident memory split: anonymous (the process's own) and file-backed (pages of the memory-mapped index, shared
/// with the page cache and reclaimable).
func residentSplitMB() -> (anonymous: Double, indexPages: Double) {
    let values = statusMB(["RssAnon:", "RssFile:", "RssShmem:"])
    return (values[0], values[1] + values[2])
}
func residentSplit() -> String {
    let split = residentSplitMB()
    return "anonymous \(f(split.anonymous, 0)) MB, index pages \(f(split.indexPages, 0)) MB"
}

func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int((p / 100 * Double(sorted.count - 1)).rounded()))]
}
func f(_ x: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", x) }

let temporary = indexPath == nil
let dir = indexPath ?? NSTemporaryDirectory() + "/dense-bench-\(getpid())"
defer { if temporary { try? FileManager.default.removeItem(atPath: dir) } }
let modelID = "bench-random-\(dims)"
let queryFile = dir + "/bench-queries.f32"
let storeConfiguration = StoreConfiguration(mapSize: 16 << 30)
let queryTexts = jsonLines(queriesPath).compactMap { $0["text"] as? String }

// MARK: Build (when the index is new)

if !FileManager.default.fileExists(atPath: dir + "/data.mdb") {
    var sentences: [String] = []
    var titles: [String] = []
    /// Result slots filled by concurrent workers, each writing its own index.
    final class Slots: @unchecked Sendable {
        let items: UnsafeMutableBufferPointer<PreparedFile?>
        init(_ count: Int) {
            items = .allocate(capacity: count)
            items.initialize(repeating: nil)
        }
        deinit {
            _ = items.deinitialize()
            items.deallocate()
        }
    }
    /// `count` files from file number `first / chunksPerFile`, analyzed on all cores.
    func makeFiles(first: Int, count: Int, chunksPerFile: Int, total: Int, sentences: [String], titles: [String],
                   analyzer: Analyzer) -> [PreparedFile] {
        let slots = Slots(count)
        DispatchQueue.concurrentPerform(iterations: count) { n in
            let fileNumber = first / chunksPerFile + n
            var rng = SplitMix(seed: UInt64(fileNumber))
            var chunks: [PreparedChunk] = []
            for c in 0..<chunksPerFile where fileNumber * chunksPerFile + c < total {
                var words = 0
                var parts: [String] = []
                while words < 60 {
                    let s = sentences[Int(rng.next() % UInt64(sentences.count))]
                    parts.append(s)
                    words += s.split(separator: " ").count
                }
                chunks.append(PreparedChunk(text: parts.joined(separator: ". ") + ".", lines: (c * 5 + 1)...(c * 5 + 4),
                                            headings: [titles[Int(rng.next() % UInt64(titles.count))]], analyzer: analyzer))
            }
            slots.items[n] = PreparedFile(path: "/bench/d\(fileNumber / 100)/f\(fileNumber).md", size: 1, mtimeNanos: Int64(fileNumber),
                                          contentHash: SHA256.hash(Array("\(fileNumber)".utf8)), title: nil, tags: [], chunks: chunks)
        }
        return slots.items.compactMap { $0 }
    }
    for doc in jsonLines(corpusPath) {
        if let title = doc["title"] as? String { titles.append(title) }
        for s in ((doc["text"] as? String) ?? "").components(separatedBy: ". ") where s.count > 20 { sentences.append(s) }
    }
    let store = try Store(directory: dir, configuration: storeConfiguration)
    try store.configureModel(id: modelID, dimensions: dims)
    let analyzer = Analyzer()
    let started = Date()
    let filesPerBatch = 500, chunksPerFile = 10
    var next = 0
    while next < chunkCount {
        let first = next
        let fileCount = min(filesPerBatch, (chunkCount - first + chunksPerFile - 1) / chunksPerFile)
        // Analysis on both cores, then one write transaction for the batch.
        let files = makeFiles(first: first, count: fileCount, chunksPerFile: chunksPerFile, total: chunkCount,
                              sentences: sentences, titles: titles, analyzer: analyzer)
        next += files.reduce(0) { $0 + $1.chunks.count }
        try store.apply(files.map { .upsert($0) })
        let inputs = try store.embeddingInputs(store.chunksWithoutEmbedding(limit: 100_000))
        try store.storeEmbeddings(inputs.map { (id: $0.id, hash: $0.hash, vector: chunkVector($0.id)) })
        if (next / (filesPerBatch * chunksPerFile)) % 20 == 0 {
            print("  \(next) chunks, \(f(Date().timeIntervalSince(started), 0)) s")
        }
    }
    print("built \(store.counts.chunks) chunks in \(store.counts.files) files with vectors in \(f(Date().timeIntervalSince(started), 1)) s")

    var vectors: [Float] = []
    if let modelFolder {
        let embedder = try BertEmbedder(modelFolder: modelFolder, configuration: .init(blasThreads: 1))
        for text in queryTexts.prefix(queryCount) { vectors += try embedder.embed([text])[0] }
        print("query vectors from the encoder in \(modelFolder)")
    } else {
        var rng = SplitMix(seed: 42)
        for _ in queryTexts.prefix(queryCount) {
            var v = (0..<dims).map { _ in Float.random(in: -1...1, using: &rng) }
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            for i in v.indices { v[i] /= norm }
            vectors += v
        }
        print("random query vectors (no --model)")
    }
    FileManager.default.createFile(atPath: queryFile, contents: vectors.withUnsafeBytes { Data($0) })
}
if buildOnly { exit(0) }

// MARK: Start-up, as ragd does it: open the store (chunk table), then select the model (vector index).

if asSchema2 { try Store.overwriteMetaForTesting(directory: dir, key: "schema", value: 2) }
let before = residentMB()
var t = Date()
let store = try Store(directory: dir, configuration: storeConfiguration)
let openSeconds = Date().timeIntervalSince(t)
let afterOpen = residentMB()
t = Date()
try store.configureModel(id: modelID, dimensions: dims)
let modelSeconds = Date().timeIntervalSince(t)
let afterModel = residentMB()
print("start-up: store open \(f(openSeconds)) s (RSS \(f(afterOpen.rss, 0)) MB), vectors loaded \(f(modelSeconds)) s (RSS \(f(afterModel.rss, 0)) MB); "
      + "\(store.counts.chunks) chunks, \(store.embeddingCounts.embedded) vectors; RSS before \(f(before.rss, 0)) MB; now \(residentSplit())")

let raw = FileManager.default.contents(atPath: queryFile) ?? Data()
let allVectors: [Float] = raw.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
let queries = Array(queryTexts.prefix(min(queryCount, allVectors.count / dims)))
let queryVectors = queries.indices.map { Array(allVectors[$0 * dims..<($0 + 1) * dims]) }

/// The figures written by --json.
var report: [String: Any] = [
    "index": dir, "chunks": store.counts.chunks, "files": store.counts.files, "vectors": store.embeddingCounts.embedded,
    "dimensions": dims, "queries": queries.count, "cores": ProcessInfo.processInfo.activeProcessorCount,
    "load_average_start": loadAverage(),
    "startup": ["store_open_s": openSeconds, "vectors_load_s": modelSeconds, "rss_before_mb": before.rss,
                "rss_after_open_mb": afterOpen.rss, "rss_after_vectors_mb": afterModel.rss],
]
/// The 1-, 5- and 15-minute load averages.
func loadAverage() -> [Double] {
    let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? ""
    return text.split(separator: " ").prefix(3).compactMap { Double($0) }
}
@MainActor func writeReport() {
    guard let jsonPath else { return }
    report["load_average_end"] = loadAverage()
    do {
        let data = try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: jsonPath))
    } catch {
        FileHandle.standardError.write("cannot write \(jsonPath): \(error)\n".data(using: .utf8)!)
        exit(1)
    }
}

// MARK: Export for other engines (bench/peers.py): the same chunks, vectors and queries.

/// `text` as a JSON string literal (UTF-8 kept as is; quotes, backslashes and control characters escaped).
func jsonString(_ text: String) -> String {
    var out = "\""
    out.reserveCapacity(text.utf8.count + 2)
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

/// Buffered appends to a new file.
final class Output {
    let handle: FileHandle
    var buffer = Data()
    init(_ path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        self.handle = handle
    }
    func write(_ data: Data) throws {
        buffer.append(data)
        if buffer.count >= 8 << 20 { try flush() }
    }
    func write(_ text: String) throws { try write(Data(text.utf8)) }
    func write(_ values: [Float]) throws { try write(values.withUnsafeBytes { Data($0) }) }
    func flush() throws {
        try handle.write(contentsOf: buffer)
        buffer.removeAll(keepingCapacity: true)
    }
    func close() throws {
        try flush()
        try handle.close()
    }
}

@MainActor func exportPeerData(to folder: String) throws {
    let started = Date()
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    let ids: [UInt32] = store.withChunkTable { table in (0..<table.lengths.count).compactMap { table.lengths[$0] != 0 ? UInt32($0) : nil } }
    let chunkFile = try Output(folder + "/chunks.jsonl"), idFile = try Output(folder + "/ids.u32"), vectorFile = try Output(folder + "/vectors.f32")
    var withVector = 0
    try store.withSnapshot { snapshot in
        for id in ids {
            guard let record = try snapshot.chunk(id) else { continue }
            // The trail as the store's analysis indexes it: all of it, less the innermost heading when the
            // text's first line already contains it.
            var trail = record.headings[...]
            if let last = record.headings.last, let firstLine = record.text.split(separator: "\n", maxSplits: 1).first, firstLine.contains(last) {
                trail = record.headings.dropLast()
            }
            try chunkFile.write("{\"id\":\(id),\"heading\":\(jsonString(trail.joined(separator: "\n"))),\"headings\":["
                                + record.headings.map(jsonString).joined(separator: ",") + "],\"text\":\(jsonString(record.text))}\n")
            if let vector = try snapshot.embedding(id) {
                var le = id.littleEndian
                try idFile.write(Data(bytes: &le, count: 4))
                try vectorFile.write(vector)
                withVector += 1
            }
        }
    }
    try chunkFile.close()
    try idFile.close()
    try vectorFile.close()
    let queryOutput = try Output(folder + "/queries.jsonl"), queryVectorOutput = try Output(folder + "/queries.f32")
    for (n, text) in queries.enumerated() {
        try queryOutput.write("{\"n\":\(n),\"text\":\(jsonString(text))}\n")
        try queryVectorOutput.write(queryVectors[n])
    }
    try queryOutput.close()
    try queryVectorOutput.close()
    let attributes = try FileManager.default.attributesOfItem(atPath: dir + "/data.mdb")
    let manifest: [String: Any] = [
        "index": dir, "data_mdb_bytes": (attributes[.size] as? NSNumber)?.int64Value ?? 0,
        "data_mdb_mtime": (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0,
        "chunks": ids.count, "vectors": withVector, "dimensions": dims, "queries": queries.count, "model_id": modelID,
        "seconds": Date().timeIntervalSince(started),
    ]
    try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: folder + "/export.json"))
    print("exported \(ids.count) chunks, \(withVector) vectors and \(queries.count) queries to \(folder) in \(f(Date().timeIntervalSince(started), 1)) s")
}

if let exportFolder {
    try exportPeerData(to: exportFolder)
    writeReport()
    exit(0)
}

/// A stand-in encoder that returns precomputed vectors, so search timing excludes the encoder.
final class Replay: Embedder, @unchecked Sendable {
    let vectors: [String: [Float]]
    let modelID = "replay"
    let dimensions = 384
    init(_ vectors: [String: [Float]]) { self.vectors = vectors }
    func embed(_ texts: [String]) throws -> [[Float]] { texts.map { vectors[$0]! } }
}
let searcher = Searcher(store: store, embedder: Replay(Dictionary(zip(queries, queryVectors), uniquingKeysWith: { a, _ in a })), queryCacheSize: 0)
let exhaustive = Searcher(store: store, queryCacheSize: 0, pruning: false)
let termCounts = queries.map { searcher.queryTerms($0).count }
print("\(queries.count) queries (SciFact claims), \(f(Double(termCounts.reduce(0, +)) / Double(max(queries.count, 1)), 1)) terms on average, at most \(termCounts.max() ?? 0)")
report["query_terms_mean"] = Double(termCounts.reduce(0, +)) / Double(max(queries.count, 1))
report["query_terms_max"] = termCounts.max() ?? 0

// Half the files (the newer half by mtime): a filter that candidates must pass before the cut.
let halfFilter = ChunkFilter(modifiedAfterNanos: Int64(store.counts.files / 2))
let onlyMode = CommandLine.arguments.firstIndex(of: "--mode").flatMap { $0 + 1 < CommandLine.arguments.count ? CommandLine.arguments[$0 + 1] : nil }
let modes = onlyMode.map { [$0] } ?? (CommandLine.arguments.contains("--bm25-only") ? ["bm25", "bm25 exhaustive", "bm25 (mtime filter, half the files)", "bm25 (mtime filter, new each query)",
                                                                             "bm25 (path filter, 1% of the files)", "bm25 exhaustive (mtime filter)"]
    : CommandLine.arguments.contains("--dense-only") ? ["dense", "hybrid"] : nil)
var modeFigures: [String: Any] = [:]
var topTen: [String: [[UInt32]]] = [:]
for mode in ["bm25", "bm25 exhaustive", "bm25 (mtime filter, half the files)", "bm25 (mtime filter, new each query)",
             "bm25 (path filter, 1% of the files)", "bm25 exhaustive (mtime filter)", "dense", "hybrid"] where modes?.contains(mode) ?? true {
    var times: [Double] = []
    var ranked: [[UInt32]] = []
    var queryNumber = 0
    func search(_ query: String) throws -> [QueryHit] {
        queryNumber += 1
        switch mode {
        case "bm25": return try searcher.searchBM25(query, k: 10)
        case "dense": return try searcher.searchDense(query, k: 10)
        case "hybrid": return try searcher.searchHybrid(query, k: 10, fusion: .reciprocalRank(k: 60))
        case "bm25 exhaustive": return try exhaustive.searchBM25(query, k: 10)
        case "bm25 exhaustive (mtime filter)": return try exhaustive.searchBM25(query, k: 10, filter: halfFilter)
        case "bm25 (mtime filter, new each query)":
            // About half the files, by a filter no earlier query used (so no per-file verdicts are reused).
            let filter = ChunkFilter(modifiedAfterNanos: Int64(store.counts.files / 2) + Int64(queryNumber % 1000) * 7919 % 1000 - 500)
            return try searcher.searchBM25(query, k: 10, filter: filter)
        case "bm25 (path filter, 1% of the files)":
            // Ten of the thousand folders of 100 files, others for each query (a selective filter, never reused).
            let folders = (0..<10).map { "/bench/d\((queryNumber * 97 + $0 * 101) % max(store.counts.files / 100, 1))" }
            return try searcher.searchBM25(query, k: 10, filter: ChunkFilter(pathPrefixes: folders))
        default: return try searcher.searchBM25(query, k: 10, filter: halfFilter)
        }
    }
    if warmup { for query in queries { _ = try search(query) } }  // untimed: the index pages this mode reads, cached
    for query in queries {
        let t = Date()
        let hits = try search(query)
        times.append(Date().timeIntervalSince(t) * 1000)
        if mode == "bm25" || mode == "dense" { ranked.append(hits.map(\.chunkID)) }
    }
    if slowest > 0 {
        for i in times.indices.sorted(by: { times[$0] > times[$1] }).prefix(slowest) {
            print("  \(f(times[i])) ms, \(termCounts[i]) terms: \(queries[i].prefix(100))")
        }
    }
    print("\(mode): p50 \(f(percentile(times, 50))) ms, p99 \(f(percentile(times, 99))) ms, mean \(f(times.reduce(0, +) / Double(max(times.count, 1)))) ms, max \(f(times.max() ?? 0)) ms over \(queries.count) queries (k=10, encoder excluded)")
    modeFigures[mode] = ["p50_ms": percentile(times, 50), "p99_ms": percentile(times, 99), "max_ms": times.max() ?? 0,
                         "mean_ms": times.reduce(0, +) / Double(max(times.count, 1)), "queries": times.count]
    if !ranked.isEmpty { topTen[mode] = ranked }
}
let end = residentMB()
print("RSS after the queries \(f(end.rss, 0)) MB (\(residentSplit())), peak \(f(end.peak, 0)) MB")
let endSplit = residentSplitMB()
report["modes"] = modeFigures
report["warmup"] = warmup
report["top10_chunk_ids"] = topTen
report["rss_after_queries"] = ["rss_mb": end.rss, "anonymous_mb": endSplit.anonymous, "index_pages_mb": endSplit.indexPages, "peak_mb": end.peak]

// MARK: Recall@10 of dense search against the exact float32 scan (vectors regenerated from the chunk ids).

if recallQueries > 0 {
    let ids: [UInt32] = store.withChunkTable { table in (0..<table.lengths.count).compactMap { table.lengths[$0] != 0 ? UInt32($0) : nil } }
    let sample = Array(queryVectors.prefix(recallQueries))
    var best = [[(Float, UInt32)]](repeating: [], count: sample.count)
    for id in ids {
        let v = chunkVector(id)
        for (q, query) in sample.enumerated() {
            var s: Float = 0
            for d in 0..<dims { s += v[d] * query[d] }
            if best[q].count < 10 || s > best[q][best[q].count - 1].0 {
                best[q].append((s, id))
                best[q].sort { $0.0 > $1.0 }
                if best[q].count > 10 { best[q].removeLast() }
            }
        }
    }
    var found = 0
    for (q, text) in queries.prefix(sample.count).enumerated() {
        let hits = Set(try searcher.searchDense(text, k: 10, includeText: false).map(\.chunkID))
        found += best[q].filter { hits.contains($0.1) }.count
    }
    print("dense recall@10 against the exact float32 scan: \(f(Double(found) / Double(10 * sample.count), 4)) over \(sample.count) queries")
    report["recall"] = ["dense_recall_at_10": Double(found) / Double(10 * sample.count), "queries": sample.count,
                        "reference": "exact float32 scan of the regenerated chunk vectors"]
}
writeReport()

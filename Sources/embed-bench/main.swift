// Measures the sentence encoder: load time, chunks per second for fixed-length chunks in batches, and
// the latency of one short query. Build in release (bench/embed_bench.sh does it):
//   embed-bench [MODEL_FOLDER] [--tokens N] [--chunks N] [--batch N] [--threads N] [--queries N]
//               [--texts FILE] [--queries-file FILE] [--repeat N] [--vectors FILE] [--json]
// --texts embeds the lines of FILE (one text per line) instead of generated chunks; --queries-file times
// each of its lines alone instead of one query repeated; --repeat times that many passes over both (the
// median is reported); --vectors writes the chunk vectors then the query vectors (float32 little-endian);
// --json ends with one line of JSON results (bench/encoder_vs_onnx.py reads it).
import Glibc
import RagCore
import RagEmbed

func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

func fail(_ message: String, status: Int32) -> Never {
    let line = Array((message + "\n").utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(status)
}

func format(_ value: Double, _ digits: Int = 1) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    return "\(rounded)"
}

var folder = "models/all-MiniLM-L6-v2"
var tokens = 200, chunks = 256, batch = 32, queries = 100
var threads: Int?
var textsFile: String?, queriesFile: String?, vectorsFile: String?
var repeats = 1
var json = false
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    func number() -> Int {
        guard let text = arguments.popFirst(), let n = Int(text), n > 0 else {
            fail("\(argument) needs a positive number", status: 2)
        }
        return n
    }
    switch argument {
    case "--tokens": tokens = number()
    case "--chunks": chunks = number()
    case "--batch": batch = number()
    case "--threads": threads = number()
    case "--queries": queries = number()
    case "--repeat": repeats = number()
    case "--texts", "--queries-file", "--vectors":
        guard let path = arguments.popFirst() else { fail("\(argument) needs a file", status: 2) }
        if argument == "--texts" { textsFile = path } else if argument == "--queries-file" { queriesFile = path } else { vectorsFile = path }
    case "--json": json = true
    case "-h", "--help":
        print("embed-bench [MODEL_FOLDER] [--tokens N] [--chunks N] [--batch N] [--threads N] [--queries N]")
        print("            [--texts FILE] [--queries-file FILE] [--repeat N] [--vectors FILE] [--json]")
        exit(0)
    default: folder = argument
    }
}

/// Resident memory now, from /proc/self/status (VmRSS), in MB.
func residentMB() -> Int {
    guard let file = fopen("/proc/self/status", "r") else { return -1 }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, Int32(line.count), file) != nil {
        let text = String(cString: line)
        if text.hasPrefix("VmRSS:") {
            return (Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0) / 1024
        }
    }
    return -1
}

/// The non-empty lines of `path`, without their newline.
func readLines(_ path: String) -> [String] {
    guard let file = fopen(path, "r") else { fail("embed-bench: cannot open \(path)", status: 1) }
    defer { fclose(file) }
    var lines: [String] = []
    var buffer: UnsafeMutablePointer<CChar>?
    var capacity = 0
    defer { free(buffer) }
    while true {
        let length = getline(&buffer, &capacity, file)
        if length < 0 { break }
        var line = String(cString: buffer!)
        if line.hasSuffix("\n") { line.removeLast() }
        if !line.isEmpty { lines.append(line) }
    }
    return lines
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted[sorted.count / 2]
}

let loadStart = now()
let embedder: BertEmbedder
do {
    embedder = try BertEmbedder(modelFolder: folder, configuration: .init(batchSize: batch, blasThreads: threads))
} catch {
    fail("embed-bench: \(error)", status: 1)
}
let loadSeconds = now() - loadStart
print("model      \(embedder.modelID), \(embedder.dimensions) dimensions")
print("blas       \(BLAS.status)")
print("load       \(format(loadSeconds * 1000, 0)) ms (settings, vocabulary, weights, SHA-256 of the weights), resident \(residentMB()) MB")

// Chunks of exactly `tokens` tokens made of whole-word vocabulary entries, deterministic.
let target = min(tokens, embedder.maxSequenceLength)
var words: [String] = []
for id in 1000..<Int32(embedder.tokenizer.vocabularySize) {
    if let t = embedder.tokenizer.token(for: id), t.count > 2, t.allSatisfy({ $0.isLetter && $0.isASCII }) { words.append(t) }
}
var state: UInt64 = 42
var texts: [String] = textsFile.map(readLines) ?? []
for _ in 0..<(textsFile == nil ? chunks : 0) {
    var parts: [String] = []
    while true {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        parts.append(words[Int(state >> 33) % words.count])
        if embedder.tokenCount(parts.joined(separator: " ")) >= target { break }
    }
    while embedder.tokenCount(parts.joined(separator: " ")) > target { parts.removeLast() }
    texts.append(parts.joined(separator: " "))
}
guard !texts.isEmpty else { fail("embed-bench: no texts", status: 1) }
let meanTokens = Double(texts.map { embedder.tokenIDs($0).count }.reduce(0, +)) / Double(texts.count)

_ = try embedder.embed(Array(texts.prefix(batch)))  // warm-up: buffers, OpenBLAS threads
var passes: [Double] = []
var vectors: [[Float]] = []
for _ in 0..<repeats {
    let start = now()
    vectors = try embedder.embed(texts)
    passes.append(now() - start)
}
let seconds = median(passes)
precondition(vectors.count == texts.count)
print("memory     resident \(residentMB()) MB after the batches (weights + scratch for \(batch) texts)")
print("chunks     \(texts.count) × \(format(meanTokens, 0)) tokens in batches of \(batch): \(format(Double(texts.count) / seconds)) chunks/s, "
      + "\(format(Double(texts.count) * meanTokens / seconds, 0)) tokens/s, \(format(seconds * 1000 / Double(texts.count), 2)) ms per chunk"
      + (repeats > 1 ? " (median of \(repeats) passes: \(passes.map { format(Double(texts.count) / $0) }.joined(separator: ", ")))" : ""))

let queryTexts = queriesFile.map(readLines) ?? Array(repeating: "how do I reload the configuration", count: queries)
guard !queryTexts.isEmpty else { fail("embed-bench: no queries", status: 1) }
for q in queryTexts.prefix(10) { _ = try embedder.embed([q]) }  // warm-up
var latencies: [Double] = []
var queryVectors: [[Float]] = []
for _ in 0..<repeats {
    queryVectors = []
    for q in queryTexts {
        let t = now()
        queryVectors.append(try embedder.embed([q])[0])
        latencies.append(now() - t)
    }
}
latencies.sort()
let p50 = latencies[latencies.count / 2], p90 = latencies[latencies.count * 9 / 10]
let queryTokens = Double(queryTexts.map { embedder.tokenIDs($0).count }.reduce(0, +)) / Double(queryTexts.count)
if queriesFile == nil {
    print("query      \"\(queryTexts[0])\" (\(embedder.tokenIDs(queryTexts[0]).count) tokens): median \(format(p50 * 1000, 2)) ms, p90 \(format(p90 * 1000, 2)) ms")
} else {
    print("queries    \(queryTexts.count) × \(repeats), \(format(queryTokens)) tokens on average, one at a time: median \(format(p50 * 1000, 2)) ms, p90 \(format(p90 * 1000, 2)) ms")
}

if let vectorsFile {
    guard let file = fopen(vectorsFile, "w") else { fail("embed-bench: cannot write \(vectorsFile)", status: 1) }
    for v in vectors + queryVectors {
        let bytes = v.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
        _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
    }
    fclose(file)
}
if json {
    print("{\"chunks\": \(texts.count), \"mean_tokens\": \(meanTokens), \"chunks_per_s\": \(Double(texts.count) / seconds), "
          + "\"passes_s\": [\(passes.map { "\($0)" }.joined(separator: ", "))], \"queries\": \(queryTexts.count), "
          + "\"query_tokens\": \(queryTokens), \"query_p50_ms\": \(p50 * 1000), \"query_p90_ms\": \(p90 * 1000), "
          + "\"blas\": \"\(BLAS.status.coreName)\", \"blas_threads\": \(BLAS.status.threads)}")
}

var hasher = SHA256()
let block = [UInt8](repeating: 7, count: 1 << 20)
let hashStart = now()
for _ in 0..<64 { hasher.update(block) }
_ = hasher.finalize()
print("sha256     \(format(64 / (now() - hashStart), 0)) MB/s (RagCore.SHA256)")

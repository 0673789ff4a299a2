// Measures the sentence encoder: load time, chunks per second for fixed-length chunks in batches, and
// the latency of one short query. Build in release (bench/embed_bench.sh does it):
//   embed-bench [MODEL_FOLDER] [--tokens N] [--chunks N] [--batch N] [--threads N] [--queries N]
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
    case "-h", "--help":
        print("embed-bench [MODEL_FOLDER] [--tokens N] [--chunks N] [--batch N] [--threads N] [--queries N]")
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
var texts: [String] = []
for _ in 0..<chunks {
    var parts: [String] = []
    while true {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        parts.append(words[Int(state >> 33) % words.count])
        if embedder.tokenCount(parts.joined(separator: " ")) >= target { break }
    }
    while embedder.tokenCount(parts.joined(separator: " ")) > target { parts.removeLast() }
    texts.append(parts.joined(separator: " "))
}
let meanTokens = Double(texts.map { embedder.tokenIDs($0).count }.reduce(0, +)) / Double(texts.count)

_ = try embedder.embed(Array(texts.prefix(batch)))  // warm-up: buffers, OpenBLAS threads
let start = now()
let vectors = try embedder.embed(texts)
let seconds = now() - start
precondition(vectors.count == texts.count)
print("memory     resident \(residentMB()) MB after the batches (weights + scratch for \(batch) texts)")
print("chunks     \(chunks) × \(format(meanTokens, 0)) tokens in batches of \(batch): \(format(Double(chunks) / seconds)) chunks/s, "
      + "\(format(Double(chunks) * meanTokens / seconds, 0)) tokens/s, \(format(seconds * 1000 / Double(chunks), 2)) ms per chunk")

let query = "how do I reload the configuration"
_ = try embedder.embed([query])
var latencies: [Double] = []
for _ in 0..<queries {
    let t = now()
    _ = try embedder.embed([query])
    latencies.append(now() - t)
}
latencies.sort()
let median = latencies[latencies.count / 2], p90 = latencies[latencies.count * 9 / 10]
print("query      \"\(query)\" (\(embedder.tokenIDs(query).count) tokens): median \(format(median * 1000, 2)) ms, p90 \(format(p90 * 1000, 2)) ms")

var hasher = SHA256()
let block = [UInt8](repeating: 7, count: 1 << 20)
let hashStart = now()
for _ in 0..<64 { hasher.update(block) }
_ = hasher.finalize()
print("sha256     \(format(64 / (now() - hashStart), 0)) MB/s (RagCore.SHA256)")

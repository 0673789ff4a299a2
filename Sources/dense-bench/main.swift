// Dense and hybrid query latency at scale: builds an index of N synthetic chunks (text recombined from a word
// list, random unit vectors for the bulk, as the issue allows), then times searches with query vectors taken from
// the real encoder when a model folder is given (else random), and prints p50/p99.
//
//   swift build -c release --product dense-bench
//   .build/release/dense-bench [--chunks 100000] [--queries 1000] [--model models/all-MiniLM-L6-v2]
import Foundation
import RagCore
import RagEmbed
import RagQuery
import RagStore

var chunkCount = 100_000
var queryCount = 1000
var modelFolder: String? = nil
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--chunks": chunkCount = Int(arguments.next() ?? "") ?? chunkCount
    case "--queries": queryCount = Int(arguments.next() ?? "") ?? queryCount
    case "--model": modelFolder = arguments.next()
    default: FileHandle.standardError.write("unknown argument \(argument)\n".data(using: .utf8)!); exit(2)
    }
}

let words = ("index vector query socket daemon journal watch chunk heading posting stemmer token model embed cosine "
    + "fusion filter latency memory folder rename signal reload config backup restore kernel inotify systemd").split(separator: " ").map(String.init)
var generator = SystemRandomNumberGenerator()
func randomUnitVector(_ dims: Int) -> [Float] {
    var v = (0..<dims).map { _ in Float.random(in: -1...1) }
    let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
    for i in v.indices { v[i] /= norm }
    return v
}

let dir = NSTemporaryDirectory() + "/dense-bench-\(getpid())"
defer { try? FileManager.default.removeItem(atPath: dir) }
let store = try Store(directory: dir, configuration: .init(mapSize: 16 << 30))
let dims = 384
try store.configureModel(id: "bench-random-\(dims)", dimensions: dims)
let analyzer = Analyzer()
let started = Date()
var id = 0
while id < chunkCount {
    var changes: [IndexChange] = []
    for f in 0..<100 where id < chunkCount {
        var chunks: [PreparedChunk] = []
        for c in 0..<10 where id < chunkCount {
            let text = (0..<60).map { _ in words.randomElement(using: &generator)! }.joined(separator: " ") + " item\(id)"
            chunks.append(PreparedChunk(text: text, lines: (c * 5 + 1)...(c * 5 + 4), headings: ["Doc \(id / 10)"], analyzer: analyzer))
            id += 1
        }
        changes.append(.upsert(PreparedFile(path: "/bench/f\(id / 10)-\(f).md", size: 1, mtimeNanos: 1,
                                            contentHash: SHA256.hash(Array("\(id)".utf8)), title: nil, tags: [], chunks: chunks)))
    }
    try store.apply(changes)
    let missing = store.chunksWithoutEmbedding(limit: 100_000)
    let inputs = try store.embeddingInputs(missing)
    try store.storeEmbeddings(inputs.map { (id: $0.id, hash: $0.hash, vector: randomUnitVector(dims)) })
}
print("built \(store.counts.chunks) chunks with vectors in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")

var queryVectors: [[Float]] = []
var encodeTimes: [Double] = []
if let modelFolder {
    let embedder = try BertEmbedder(modelFolder: modelFolder, configuration: .init(blasThreads: 1))
    for n in 0..<queryCount {
        let text = "how do I " + (0..<5).map { _ in words.randomElement(using: &generator)! }.joined(separator: " ") + " \(n)"
        let t = Date()
        queryVectors.append(try embedder.embed([text])[0])
        encodeTimes.append(Date().timeIntervalSince(t) * 1000)
    }
} else {
    queryVectors = (0..<queryCount).map { _ in randomUnitVector(dims) }
}

/// A stand-in encoder that returns precomputed vectors, so search timing excludes the encoder.
final class Replay: Embedder, @unchecked Sendable {
    let vectors: [String: [Float]]
    let modelID = "replay"
    let dimensions = 384
    init(_ vectors: [String: [Float]]) { self.vectors = vectors }
    func embed(_ texts: [String]) throws -> [[Float]] { texts.map { vectors[$0]! } }
}
let queries = (0..<queryCount).map { "q\($0) " + words[$0 % words.count] }
let searcher = Searcher(store: store, embedder: Replay(Dictionary(uniqueKeysWithValues: zip(queries, queryVectors))), queryCacheSize: 0)

func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int((p / 100 * Double(sorted.count - 1)).rounded()))]
}
for mode in ["bm25", "dense", "hybrid"] {
    var times: [Double] = []
    for query in queries {
        let t = Date()
        switch mode {
        case "bm25": _ = try searcher.searchBM25(query, k: 10)
        case "dense": _ = try searcher.searchDense(query, k: 10)
        default: _ = try searcher.searchHybrid(query, k: 10, fusion: .weighted(denseWeight: 0.7))
        }
        times.append(Date().timeIntervalSince(t) * 1000)
    }
    print("\(mode): p50 \(String(format: "%.2f", percentile(times, 50))) ms, p99 \(String(format: "%.2f", percentile(times, 99))) ms over \(queryCount) queries (k=10, encoder excluded)")
}
if !encodeTimes.isEmpty {
    print("query encoding (real model, 1 BLAS thread): p50 \(String(format: "%.2f", percentile(encodeTimes, 50))) ms, p99 \(String(format: "%.2f", percentile(encodeTimes, 99))) ms")
}

import RagCore
@testable import RagStore
import RagTestSupport
import Synchronization
import Testing

/// `vector_codes`: start-up copies each chunk's 4-bit codes when they match its current content, quantises the float32
/// vector otherwise (and writes the row back), and never gives a chunk the codes of an earlier content.
struct VectorCodesTests {
    let analyzer = Analyzer()
    let dims = 12

    func file(_ n: Int, version: Int) -> PreparedFile {
        let texts = (0..<3).map { "file\(n) version\(version) part\($0) words" }
        return PreparedFile(path: "/d/f\(n).md", size: 1, mtimeNanos: Int64(version), contentHash: SHA256.hash(Array("\(n)/\(version)".utf8)),
                            title: nil, tags: [],
                            chunks: texts.enumerated().map { PreparedChunk(text: $1, lines: ($0 + 1)...($0 + 1), headings: [], analyzer: analyzer) })
    }

    func embedPending(_ store: Store) throws {
        let inputs = try store.embeddingInputs(store.chunksWithoutEmbedding(limit: 100_000))
        try store.storeEmbeddings(inputs.map { input in
            (id: input.id, hash: input.hash, vector: (0..<dims).map { Float(input.hash.bytes[$0 % 32]) / 255 - 0.5 })
        })
    }

    func snapshot(_ store: Store) -> [UInt32: [UInt8]] {
        store.withChunkTable { table in
            var rows: [UInt32: [UInt8]] = [:]
            for id in 0..<table.lengths.count where table.lengths[id] != 0 {
                if let row = table.vectors.row(UInt32(id)) { rows[UInt32(id)] = withUnsafeBytes(of: row.step) { Array($0) } + row.codes }
            }
            return rows
        }
    }

    func open(_ dir: String) throws -> Store {
        let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 64 << 20))
        try store.configureModel(id: "made-up", dimensions: dims)
        return store
    }

    @Test func startUpCopiesCurrentCodesAndQuantisesTheRest() throws {
        try withTemporaryDirectory { dir in
            var expected: [UInt32: [UInt8]] = [:]
            do {
                let store = try open(dir)
                try store.apply((0..<300).map { .upsert(file($0, version: 0)) })   // 900 chunks: four blocks
                try embedPending(store)
                expected = snapshot(store)
                #expect(expected.count == 900)
            }
            do {
                let store = try open(dir)
                #expect(store.lastVectorLoad.withLock { $0 } == VectorLoad(copied: 900, quantised: 0))
                #expect(snapshot(store) == expected)
                // New contents for ten files: the freed ids are reused by chunks that have no vector yet.
                try store.apply((0..<10).map { .upsert(file($0, version: 1)) })
                try store.apply((10..<20).map { .upsert(file($0, version: 1)) })
            }
            do {
                let store = try open(dir)
                // Rows of the replaced contents stay in the table but match no chunk: 60 chunks have no vector.
                #expect(store.lastVectorLoad.withLock { $0 } == VectorLoad(copied: 840, quantised: 0))
                #expect(store.embeddingCounts == (chunks: 900, embedded: 840))
                try embedPending(store)
                expected = snapshot(store)
                #expect(expected.count == 900)
            }
            do {
                // Without the table (an index written before it), every vector is quantised, equal, and written back.
                let store = try open(dir)
                try store.env.withWriteTransaction { txn in try txn.drop(store.vectorCodes) }
            }
            do {
                let store = try open(dir)
                #expect(store.lastVectorLoad.withLock { $0 } == VectorLoad(copied: 0, quantised: 900))
                #expect(snapshot(store) == expected)
            }
            let store = try open(dir)
            #expect(store.lastVectorLoad.withLock { $0 } == VectorLoad(copied: 900, quantised: 0))
            #expect(snapshot(store) == expected)
        }
    }

    /// An index of schema 3 holds float32 vectors: it opens (relabelled schema 4), and its vectors load and read as
    /// the float16 ones written since do.
    @Test func aSchemaThreeIndexWithFloat32VectorsReadsTheSame() throws {
        try withTemporaryDirectory { dir in
            var expected: [UInt32: [UInt8]] = [:]
            var vectors: [UInt32: [Float]] = [:]
            do {
                let store = try open(dir)
                try store.apply((0..<20).map { .upsert(file($0, version: 0)) })
                try embedPending(store)
                expected = snapshot(store)
                vectors = try store.withSnapshot { s in Dictionary(uniqueKeysWithValues: try expected.keys.map { ($0, try s.embedding($0)!) }) }
                // Rewrite every vector as float32, as schema 3 stored them, and drop the codes (quantised at open).
                try store.env.withWriteTransaction { txn in
                    var rows: [([UInt8], [UInt8])] = []
                    try txn.forEach(store.embeddings) { key, value in
                        let floats = Store.decodeVector(value, dims)!
                        var bytes = [UInt8](repeating: 0, count: dims * 4)
                        bytes.withUnsafeMutableBytes { raw in
                            for (n, x) in floats.enumerated() { raw.storeBytes(of: x.bitPattern.littleEndian, toByteOffset: n * 4, as: UInt32.self) }
                        }
                        rows.append((Array(key), bytes))
                        return true
                    }
                    for (key, value) in rows { try txn.put(store.embeddings, key: key, value: value) }
                    try txn.drop(store.vectorCodes)
                }
            }
            try Store.overwriteMetaForTesting(directory: dir + "/index", key: "schema", value: 3)
            let store = try open(dir)
            #expect(store.lastVectorLoad.withLock { $0 } == VectorLoad(copied: 0, quantised: 60))
            #expect(snapshot(store) == expected)
            #expect(try store.withSnapshot { s in try expected.keys.allSatisfy { try s.embedding($0) == vectors[$0] } })
            let schema = try store.env.withReadTransaction { txn in try txn.get(store.meta, key: Array("schema".utf8)) }
            #expect(schema == [0, 0, 0, 4])
        }
    }

    @Test func aModelChangeDropsTheOtherModelsCodes() throws {
        try withTemporaryDirectory { dir in
            let store = try open(dir)
            try store.apply((0..<5).map { .upsert(file($0, version: 0)) })
            try embedPending(store)
            func blocks() throws -> Int {
                try store.env.withReadTransaction { txn in
                    var n = 0
                    try txn.forEach(store.vectorCodes) { _, _ in n += 1; return true }
                    return n
                }
            }
            #expect(try blocks() == 1)
            try store.configureModel(id: "another", dimensions: dims)
            #expect(try blocks() == 0)
            #expect(store.embeddingCounts.embedded == 0)
        }
    }
}

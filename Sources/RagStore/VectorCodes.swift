import RagCore
import RagVectorKernels

/// Where start-up found each vector: `copied` from `vector_codes`, or `quantised` from the float32 cache.
public struct VectorLoad: Sendable, Equatable {
    public var copied: Int
    public var quantised: Int
}

/// A chunk's 4-bit codes on their way into `vector_codes`.
struct VectorCodeRow {
    let id: UInt32
    let hash: ContentHash
    /// `VectorKernels.quantise4`'s step (0 for a zero vector).
    let step: Float
    let codes: [UInt8]

    init(id: UInt32, hash: ContentHash, vector: [Float]) {
        self.id = id
        self.hash = hash
        var codes = [UInt8](repeating: 0, count: VectorKernels.int4Stride(dimensions: vector.count))
        step = vector.withUnsafeBytes { v in codes.withUnsafeMutableBufferPointer { VectorKernels.quantise4(v.baseAddress!, count: vector.count, into: $0.baseAddress!) } }
        self.codes = codes
    }

    init(id: UInt32, hash: ContentHash, step: Float, codes: [UInt8]) {
        (self.id, self.hash, self.step, self.codes) = (id, hash, step, codes)
    }
}

/// `vector_codes` persists the in-memory 4-bit codes so that start-up copies 196 bytes a chunk, in key order,
/// instead of looking up and quantising every stored vector (0.77 GB at a million chunks, 1.5 GB before float16).
/// Key: model tag (4 bytes) + block number (UInt32 BE, chunk id / 256). Value: 256 rows of
/// `[step: Float32 LE][first 8 bytes of the content hash][codes]`. A row counts only while its hash prefix equals the
/// chunk's current content hash (ids are reused, and removing a chunk does not touch this table), so the table is a
/// cache: a missing or stale row only makes start-up read that chunk's stored vector, and write the row back.
extension Store {
    static let codeBlockRows = 256

    static func codeRowBytes(dimensions: Int) -> Int { 12 + VectorKernels.int4Stride(dimensions: dimensions) }

    /// Writes `rows` into their blocks (one read-modify-write per block touched).
    func writeVectorCodes(_ txn: Transaction, _ rows: [VectorCodeRow]) throws {
        guard !rows.isEmpty, let (_, tag, dimensions) = model.read({ $0 }) else { return }
        let rowBytes = Store.codeRowBytes(dimensions: dimensions), stride = VectorKernels.int4Stride(dimensions: dimensions)
        var blocks: [UInt32: [VectorCodeRow]] = [:]
        for row in rows where row.codes.count == stride { blocks[row.id / UInt32(Store.codeBlockRows), default: []].append(row) }
        for (block, members) in blocks {
            let key = tag + beKey(block)
            var value = try txn.get(vectorCodes, key: key) ?? []
            if value.count != Store.codeBlockRows * rowBytes { value = [UInt8](repeating: 0, count: Store.codeBlockRows * rowBytes) }
            for row in members {
                let offset = Int(row.id % UInt32(Store.codeBlockRows)) * rowBytes
                withUnsafeBytes(of: row.step.bitPattern.littleEndian) { value.replaceSubrange(offset..<offset + 4, with: $0) }
                value.replaceSubrange(offset + 4..<offset + 12, with: row.hash.bytes.prefix(8))
                value.replaceSubrange(offset + 12..<offset + rowBytes, with: row.codes)
            }
            try txn.put(vectorCodes, key: key, value: value)
        }
    }

    /// Deletes the blocks of every model but the one tagged `tag` (after a model change).
    func dropForeignVectorCodes(_ txn: Transaction, keeping tag: [UInt8]) throws {
        var foreign: [[UInt8]] = []
        try txn.forEach(vectorCodes) { key, _ in
            if !key.starts(with: tag) { foreign.append(Array(key)) }
            return true
        }
        for key in foreign { try txn.delete(vectorCodes, key: key) }
    }
}

extension Transaction {
    /// The bytes stored under `key`, valid until this (read) transaction ends: LMDB hands out pointers into its map.
    func mappedValue(_ table: Table, key: [UInt8]) throws -> UnsafeRawBufferPointer? {
        try withValue(table, key: key) { $0 }
    }
}

extension Store {
    /// Writes the codes of chunks that start-up had to quantise from float32 (an index from before this table, or
    /// rows gone stale), a few hundred blocks per transaction. Best effort: a row not written is computed again
    /// at the next start.
    func backfillVectorCodes(_ missed: [(UInt32, ContentHash)], from index: VectorIndex) throws {
        guard !missed.isEmpty else { return }
        let sorted = missed.sorted { $0.0 < $1.0 }
        for batch in stride(from: 0, to: sorted.count, by: 65_536) {
            let rows = sorted[batch..<min(batch + 65_536, sorted.count)].compactMap { id, hash in
                index.row(id).map { VectorCodeRow(id: id, hash: hash, step: $0.step, codes: $0.codes) }
            }
            try writeLock.write { _ in
                try growingMap { try env.withWriteTransaction { txn in try writeVectorCodes(txn, rows) } }
            }
        }
    }
}

@testable import RagStore
import RagTestSupport
import Testing

struct VectorIndexTests {
    /// Start-up quantises the stored bytes directly; the rows must equal those a write produces from floats.
    @Test func quantisingStoredBytesEqualsQuantisingFloats() {
        var fromFloats = VectorIndex(dimensions: 5)
        var fromBytes = VectorIndex(dimensions: 5)
        fromBytes.reserve(rows: 3)
        let vectors: [[Float]] = [[0.5, -1, 0.25, 0, 0.125], [0, 0, 0, 0, 0], [3, 2, -7, 1e-3, 6.5]]
        for (id, v) in vectors.enumerated() {
            fromFloats.set(UInt32(id), Store.storedPrecision(v))
            Store.encodeVector(v).withUnsafeBytes { fromBytes.set(UInt32(id), stored: $0) }
        }
        #expect(fromBytes.count == fromFloats.count)
        #expect(Array(fromBytes.scales.prefix(3)) == Array(fromFloats.scales.prefix(3)))
        #expect(Array(fromBytes.codes.prefix(3 * fromBytes.stride)) == Array(fromFloats.codes.prefix(3 * fromFloats.stride)))
        fromBytes.remove(1)
        #expect(fromBytes.count == 2 && !fromBytes.has(1))
    }

    /// Vectors are stored as float16 (half the bytes); the float32 vectors of an older index read the same.
    @Test func storedVectorsInBothFormats() {
        var rng = SeededGenerator(seed: 3)
        let v = (0..<384).map { _ in Float.random(in: -0.3...0.3, using: &rng) }
        let stored = Store.encodeVector(v)
        #expect(stored.count == 384 * 2)
        let decoded = stored.withUnsafeBytes { Store.decodeVector($0, 384) }
        #expect(decoded == Store.storedPrecision(v))
        #expect(zip(decoded ?? [], v).allSatisfy { abs($0 - $1) <= abs($1) / 2048 + 1e-7 })
        var float32 = [UInt8](repeating: 0, count: 384 * 4)
        float32.withUnsafeMutableBytes { raw in
            for (n, x) in v.enumerated() { raw.storeBytes(of: x.bitPattern.littleEndian, toByteOffset: n * 4, as: UInt32.self) }
        }
        #expect(float32.withUnsafeBytes { Store.decodeVector($0, 384) } == v)
        #expect(Array(float32.dropFirst(1)).withUnsafeBytes { Store.decodeVector($0, 384) } == nil)  // neither size
        // Unaligned float32 bytes read the same.
        let shifted = [0] + float32
        #expect(shifted.withUnsafeBytes { Store.decodeVector(UnsafeRawBufferPointer(rebasing: $0[1...]), 384) } == v)
    }
}

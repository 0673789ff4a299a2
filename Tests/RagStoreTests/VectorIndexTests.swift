@testable import RagStore
import Testing

struct VectorIndexTests {
    /// Start-up quantises the stored bytes directly; the rows must equal those a write produces from floats.
    @Test func quantisingStoredBytesEqualsQuantisingFloats() {
        var fromFloats = VectorIndex(dimensions: 5)
        var fromBytes = VectorIndex(dimensions: 5)
        fromBytes.reserve(rows: 3)
        let vectors: [[Float]] = [[0.5, -1, 0.25, 0, 0.125], [0, 0, 0, 0, 0], [3, 2, -7, 1e-3, 6.5]]
        for (id, v) in vectors.enumerated() {
            fromFloats.set(UInt32(id), v)
            Store.encodeVector(v).withUnsafeBytes { fromBytes.set(UInt32(id), littleEndian: $0) }
        }
        #expect(fromBytes.count == fromFloats.count)
        #expect(Array(fromBytes.scales.prefix(3)) == Array(fromFloats.scales.prefix(3)))
        #expect(Array(fromBytes.codes.prefix(3 * fromBytes.stride)) == Array(fromFloats.codes.prefix(3 * fromFloats.stride)))
        fromBytes.remove(1)
        #expect(fromBytes.count == 2 && !fromBytes.has(1))
    }
}

import Dispatch
import RagVectorKernels
import Synchronization

/// Every chunk's embedding in memory as 4-bit codes (`VectorKernels.quantise4`: one step per vector, two codes per
/// byte), indexed by chunk id: 192 bytes a vector at 384 dimensions. The scan over them only picks candidates; the
/// stored (float16) vectors stay in LMDB for re-scoring the best ones.
public struct VectorIndex: Sendable {
    public private(set) var dimensions: Int
    /// Bytes per row (`VectorKernels.int4Stride`).
    public private(set) var stride: Int
    /// `capacity × stride` bytes of codes; row `id` is chunk `id`.
    public private(set) var codes: [UInt8] = []
    /// Per-row step (0 marks a row without a vector).
    public private(set) var scales: [Float] = []
    public private(set) var count = 0

    public init(dimensions: Int) {
        self.dimensions = dimensions
        self.stride = VectorKernels.int4Stride(dimensions: dimensions)
    }

    public func has(_ id: UInt32) -> Bool { Int(id) < scales.count && scales[Int(id)] != 0 }

    /// Quantises `vector` into row `id`.
    mutating func set(_ id: UInt32, _ vector: [Float]) {
        guard vector.count == dimensions else { return }
        vector.withUnsafeBufferPointer { set(id, floats: $0.baseAddress!) }
    }

    /// Makes room for rows `0..<rows` at once (start-up loads every vector).
    mutating func reserve(rows: Int) {
        guard rows > scales.count else { return }
        scales.append(contentsOf: repeatElement(0, count: rows - scales.count))
        codes.append(contentsOf: repeatElement(0, count: rows * stride - codes.count))
    }

    /// Quantises a stored vector (as `Store.encodeVector` writes it, or float32 from an older index) into row `id`.
    mutating func set(_ id: UInt32, stored bytes: UnsafeRawBufferPointer) {
        guard dimensions > 0 else { return }
        _ = Store.withFloats(bytes, dimensions) { set(id, floats: $0) }
    }

    /// Quantises `dimensions` values into row `id`.
    private mutating func set(_ id: UInt32, floats: UnsafePointer<Float>) {
        let index = Int(id)
        if index >= scales.count { reserve(rows: max(index + 1, scales.count * 2, 1024)) }
        if scales[index] == 0 { count += 1 }
        let dims = dimensions, stride = stride
        let scale = codes.withUnsafeMutableBufferPointer { VectorKernels.quantise4(floats, count: dims, into: $0.baseAddress! + index * stride) }
        scales[index] = scale == 0 ? Float.leastNormalMagnitude : scale
    }

    /// Fills rows from several threads at once: `body(part, target)` runs for each part in `0..<parts` and fills
    /// rows through `target` (rows must be reserved; parts must write disjoint rows).
    mutating func fillConcurrently(parts: Int, _ body: @Sendable (Int, RowTarget) throws -> Void) rethrows {
        let dims = dimensions, stride = stride
        let rows = scales.count
        try codes.withUnsafeMutableBufferPointer { codes in
            try scales.withUnsafeMutableBufferPointer { scales in
                let target = RowTarget(codes: codes.baseAddress!, scales: scales.baseAddress!, rows: rows, dimensions: dims, stride: stride)
                let failure = FirstError()
                DispatchQueue.concurrentPerform(iterations: parts) { part in
                    do {
                        try body(part, target)
                    } catch {
                        failure.record(error)
                    }
                }
                if let error = failure.error { try { throw error }() }
            }
        }
        count = scales.reduce(0) { $0 + ($1 != 0 ? 1 : 0) }
    }

    /// Row `id`'s step and codes (for writing them to `vector_codes`); nil without a vector.
    func row(_ id: UInt32) -> (step: Float, codes: [UInt8])? {
        guard has(id) else { return nil }
        let start = Int(id) * stride
        return (scales[Int(id)], Array(codes[start..<start + stride]))
    }

    mutating func remove(_ id: UInt32) {
        let index = Int(id)
        guard index < scales.count, scales[index] != 0 else { return }
        scales[index] = 0
        count -= 1
    }

    /// Drops every vector (model change), keeping the dimension given.
    mutating func reset(dimensions: Int) {
        self = VectorIndex(dimensions: dimensions)
    }

    /// Symmetric int8 quantisation (of a query): codes in -127…127 and the scale that maps them back.
    public static func quantise(_ vector: [Float]) -> ([Int8], Float) {
        var codes = [Int8](repeating: 0, count: vector.count)
        guard !vector.isEmpty else { return (codes, Float.leastNormalMagnitude) }
        let scale = vector.withUnsafeBytes { v in
            codes.withUnsafeMutableBufferPointer { VectorKernels.quantise(v.baseAddress!, count: vector.count, into: $0.baseAddress!) }
        }
        return (codes, scale == 0 ? Float.leastNormalMagnitude : scale)
    }
}

/// Where concurrent fills write (disjoint rows per thread).
struct RowTarget: @unchecked Sendable {
    let codes: UnsafeMutablePointer<UInt8>
    let scales: UnsafeMutablePointer<Float>
    let rows: Int, dimensions: Int, stride: Int

    /// Quantises a stored vector (as `Store.encodeVector` writes it, or float32 from an older index) into row `id`.
    func quantise(_ id: UInt32, stored bytes: UnsafeRawBufferPointer) {
        let index = Int(id)
        guard index < rows else { return }
        _ = Store.withFloats(bytes, dimensions) { floats in
            let scale = VectorKernels.quantise4(floats, count: dimensions, into: codes + index * stride)
            scales[index] = scale == 0 ? Float.leastNormalMagnitude : scale
        }
    }

    /// Copies already quantised codes (`stride` bytes) and their step into row `id`.
    func copy(_ id: UInt32, step: Float, codes source: UnsafeRawPointer) {
        let index = Int(id)
        guard index < rows else { return }
        (codes + index * stride).update(from: source.assumingMemoryBound(to: UInt8.self), count: stride)
        scales[index] = step == 0 ? Float.leastNormalMagnitude : step
    }
}

/// The first error thrown by concurrent workers.
private final class FirstError: @unchecked Sendable {
    private let lock = Mutex<(any Error)?>(nil)
    func record(_ error: any Error) { lock.withLock { if $0 == nil { $0 = error } } }
    var error: (any Error)? { lock.withLock { $0 } }
}

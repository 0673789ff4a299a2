import Dispatch
import RagVectorKernels
import Synchronization

/// Every chunk's embedding in memory, int8-quantised (one scale per vector), indexed by chunk id.
/// Exact float32 vectors stay in LMDB for re-scoring the best candidates.
public struct VectorIndex: Sendable {
    public private(set) var dimensions: Int
    /// `capacity × dimensions` codes; row `id` is chunk `id`.
    public private(set) var codes: [Int8] = []
    /// Per-row scale (0 marks a row without a vector).
    public private(set) var scales: [Float] = []
    public private(set) var count = 0

    public init(dimensions: Int) { self.dimensions = dimensions }

    public func has(_ id: UInt32) -> Bool { Int(id) < scales.count && scales[Int(id)] != 0 }

    /// Quantises `vector` into row `id`.
    mutating func set(_ id: UInt32, _ vector: [Float]) {
        guard vector.count == dimensions, dimensions > 0 else { return }
        let index = Int(id)
        if index >= scales.count {
            let newCount = max(index + 1, scales.count * 2, 1024)
            scales.append(contentsOf: repeatElement(0, count: newCount - scales.count))
            codes.append(contentsOf: repeatElement(0, count: newCount * dimensions - codes.count))
        }
        if scales[index] == 0 { count += 1 }
        let (quantised, scale) = VectorIndex.quantise(vector)
        scales[index] = scale
        codes.withUnsafeMutableBufferPointer { buffer in
            for d in 0..<dimensions { buffer[index * dimensions + d] = quantised[d] }
        }
    }

    /// Makes room for rows `0..<rows` at once (start-up loads every vector).
    mutating func reserve(rows: Int) {
        guard rows > scales.count else { return }
        scales.append(contentsOf: repeatElement(0, count: rows - scales.count))
        codes.append(contentsOf: repeatElement(0, count: rows * dimensions - codes.count))
    }

    /// Quantises a stored vector (little-endian float32 bytes) into row `id` without an intermediate array.
    mutating func set(_ id: UInt32, littleEndian bytes: UnsafeRawBufferPointer) {
        guard dimensions > 0, bytes.count == dimensions * 4 else { return }
        let index = Int(id)
        if index >= scales.count { reserve(rows: max(index + 1, scales.count * 2, 1024)) }
        if scales[index] == 0 { count += 1 }
        let dims = dimensions
        let scale = codes.withUnsafeMutableBufferPointer { VectorKernels.quantise(bytes.baseAddress!, count: dims, into: $0.baseAddress! + index * dims) }
        scales[index] = scale == 0 ? Float.leastNormalMagnitude : scale
    }

    /// Fills rows from several threads at once: `body(part, store)` runs for each part in `0..<parts`, and
    /// `store(id, bytes)` quantises a stored vector into row `id` (rows must be reserved; parts must write
    /// disjoint rows).
    mutating func fillConcurrently(parts: Int, _ body: @Sendable (Int, (UInt32, UnsafeRawBufferPointer) -> Void) throws -> Void) rethrows {
        let dims = dimensions
        let rows = scales.count
        try codes.withUnsafeMutableBufferPointer { codes in
            try scales.withUnsafeMutableBufferPointer { scales in
                let target = RowTarget(codes: codes.baseAddress!, scales: scales.baseAddress!)
                let failure = FirstError()
                DispatchQueue.concurrentPerform(iterations: parts) { part in
                    do {
                        try body(part) { id, bytes in
                            let index = Int(id)
                            guard index < rows, bytes.count == dims * 4 else { return }
                            let scale = VectorKernels.quantise(bytes.baseAddress!, count: dims, into: target.codes + index * dims)
                            target.scales[index] = scale == 0 ? Float.leastNormalMagnitude : scale
                        }
                    } catch {
                        failure.record(error)
                    }
                }
                if let error = failure.error { try { throw error }() }
            }
        }
        count = scales.reduce(0) { $0 + ($1 != 0 ? 1 : 0) }
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

    /// Symmetric int8 quantisation: codes in -127…127 and the scale that maps them back.
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
private struct RowTarget: @unchecked Sendable {
    let codes: UnsafeMutablePointer<Int8>
    let scales: UnsafeMutablePointer<Float>
}

/// The first error thrown by concurrent workers.
private final class FirstError: @unchecked Sendable {
    private let lock = Mutex<(any Error)?>(nil)
    func record(_ error: any Error) { lock.withLock { if $0 == nil { $0 = error } } }
    var error: (any Error)? { lock.withLock { $0 } }
}

/// Integer dot product of two int8 rows (the inner loop of the dense scan).
@inline(__always)
public func dotInt8(_ a: UnsafePointer<Int8>, _ b: UnsafePointer<Int8>, _ count: Int) -> Int32 {
    var sum: Int32 = 0
    for i in 0..<count { sum &+= Int32(a[i]) &* Int32(b[i]) }
    return sum
}

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
        var maxAbs: Float = 0
        for x in vector { maxAbs = max(maxAbs, abs(x)) }
        guard maxAbs > 0 else { return ([Int8](repeating: 0, count: vector.count), Float.leastNormalMagnitude) }
        let scale = maxAbs / 127
        let inverse = 1 / scale
        return (vector.map { Int8(clamping: Int(($0 * inverse).rounded())) }, scale)
    }
}

/// Integer dot product of two int8 rows (the inner loop of the dense scan).
@inline(__always)
public func dotInt8(_ a: UnsafePointer<Int8>, _ b: UnsafePointer<Int8>, _ count: Int) -> Int32 {
    var sum: Int32 = 0
    for i in 0..<count { sum &+= Int32(a[i]) &* Int32(b[i]) }
    return sum
}

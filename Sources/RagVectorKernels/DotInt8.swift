/// The dense scan's inner loop, compiled for haswell (x86-64-v3: AVX2, FMA) so the int8 products vectorise.
public enum VectorKernels {
    /// `scores[r] = Σ query[d] · rows[r · dims + d]` for `r` in `0..<rowCount`, with Int32 accumulation.
    public static func dotRows(query: UnsafePointer<Int8>, rows: UnsafePointer<Int8>, rowCount: Int, dims: Int,
                               scores: UnsafeMutablePointer<Int32>) {
        for r in 0..<rowCount {
            let row = rows + r * dims
            var sum: Int32 = 0
            for d in 0..<dims { sum &+= Int32(query[d]) &* Int32(row[d]) }
            scores[r] = sum
        }
    }
}

extension VectorKernels {
    /// Symmetric int8 quantisation of `count` little-endian float32 values at `values` (any alignment) into
    /// `codes` (-127…127, rounded half away from zero); returns the scale that maps codes back (max |x| / 127),
    /// 0 for a zero vector.
    public static func quantise(_ values: UnsafeRawPointer, count: Int, into codes: UnsafeMutablePointer<Int8>) -> Float {
        var maxAbs: Float = 0
        for d in 0..<count {
            let x = Float(bitPattern: UInt32(littleEndian: values.loadUnaligned(fromByteOffset: d * 4, as: UInt32.self)))
            maxAbs = max(maxAbs, abs(x))
        }
        guard maxAbs > 0 else {
            for d in 0..<count { codes[d] = 0 }
            return 0
        }
        let scale = maxAbs / 127
        let inverse = 1 / scale
        for d in 0..<count {
            let x = Float(bitPattern: UInt32(littleEndian: values.loadUnaligned(fromByteOffset: d * 4, as: UInt32.self))) * inverse
            // Truncation after adding ±0.5, clamped: |x| ≤ 127 plus rounding error.
            let rounded = Int32(x + (x < 0 ? -0.5 : 0.5))
            codes[d] = Int8(truncatingIfNeeded: min(127, max(-127, rounded)))
        }
        return scale
    }
}

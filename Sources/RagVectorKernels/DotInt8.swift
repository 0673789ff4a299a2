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

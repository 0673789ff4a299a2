import CCPU
import RagVectorKernelsAVX512
#if canImport(Glibc)
import Glibc
#endif

/// 4-bit codes of the dense scan's first pass: a row of `dims` values is `stride = (dims + 1) / 2` bytes; byte `j`
/// holds dimension `j` in its low nibble and dimension `j + stride` in its high one (so both halves are contiguous
/// and the loop vectorises). Code `u` (0…15) stands for `(u − 7.5) · step`, with `step = max |x| / 7.5` per row.
extension VectorKernels {
    /// Bytes per row of 4-bit codes.
    public static func int4Stride(dimensions: Int) -> Int { (dimensions + 1) / 2 }

    /// Quantises `count` little-endian float32 values at `values` (any alignment) into `int4Stride(count)` bytes at
    /// `codes`; returns the step (0 for a zero vector, whose codes are then 0).
    public static func quantise4(_ values: UnsafeRawPointer, count: Int, into codes: UnsafeMutablePointer<UInt8>) -> Float {
        let stride = int4Stride(dimensions: count)
        @inline(__always) func value(_ d: Int) -> Float {
            Float(bitPattern: UInt32(littleEndian: values.loadUnaligned(fromByteOffset: d &* 4, as: UInt32.self)))
        }
        var maxAbs: Float = 0
        for d in 0..<count { maxAbs = max(maxAbs, abs(value(d))) }
        guard maxAbs > 0 else {
            for j in 0..<stride { codes[j] = 0 }
            return 0
        }
        let step = maxAbs / 7.5
        let inverse = 1 / step
        @inline(__always) func code(_ d: Int) -> UInt8 {
            // Nearest level: levels sit at u − 7.5, so u = ⌊x / step + 8⌋, clamped against rounding at ±max.
            guard d < count else { return 8 }
            let u = Int32((value(d) * inverse + 8).rounded(.down))
            return UInt8(truncatingIfNeeded: min(15, max(0, u)))
        }
        for j in 0..<stride { codes[j] = code(j) | code(j + stride) << 4 }
        return step
    }

    /// `scores[r]` = Σ over dimensions of `query[d] · u(r, d)`, the raw integer products of an int8 query (padded
    /// with zeros to `2 · stride` values) with the 4-bit codes of `rowCount` rows. The caller maps it back:
    /// `x · q ≈ step_r · scale_q · (scores[r] − 7.5 · Σ query)`. Uses the Zen 4 build of the loop where the CPU has it.
    public static func dotRows4(query: UnsafePointer<Int8>, rows: UnsafePointer<UInt8>, rowCount: Int, stride: Int,
                                scores: UnsafeMutablePointer<Int32>) {
        if wideKernelEnabled {
            dotRows4AVX512(query: query, rows: rows, rowCount: rowCount, stride: stride, scores: scores)
        } else {
            dotRows4Portable(query: query, rows: rows, rowCount: rowCount, stride: stride, scores: scores)
        }
    }

    /// The same loop for any AVX2 CPU; the query is widened to 16 bits first (faster with AVX2).
    public static func dotRows4Portable(query: UnsafePointer<Int8>, rows: UnsafePointer<UInt8>, rowCount: Int, stride: Int,
                                        scores: UnsafeMutablePointer<Int32>) {
        withUnsafeTemporaryAllocation(of: Int16.self, capacity: 2 &* stride) { wide in
            for d in 0..<(2 &* stride) { wide[d] = Int16(query[d]) }
            let low = UnsafePointer(wide.baseAddress!), high = low + stride
            for r in 0..<rowCount {
                let row = rows + r &* stride
                var sum: Int32 = 0
                for j in 0..<stride {
                    let b = row[j]
                    sum &+= Int32(low[j]) &* Int32(Int16(b & 15)) &+ Int32(high[j]) &* Int32(Int16(b &>> 4))
                }
                scores[r] = sum
            }
        }
    }

    /// Whether the Zen 4 kernel runs: the CPU has every AVX-512 extension `-target-cpu znver4` may use and the OS
    /// saves their state (CPUID and XGETBV), and `RAGD_VECTOR_KERNEL` is not `portable`.
    public static let wideKernelEnabled: Bool = {
        if let choice = getenv("RAGD_VECTOR_KERNEL"), String(cString: choice) == "portable" { return false }
        return cpuHasZen4Extensions
    }()

    static let cpuHasZen4Extensions: Bool = ragd_cpu_has_zen4_extensions() != 0
}

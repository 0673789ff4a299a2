import Foundation
@testable import RagVectorKernels
import RagTestSupport
import RagVectorKernelsAVX512
import Testing

/// The 4-bit first pass of the dense scan: codes, and both builds of the loop against a plain reference.
struct Int4KernelTests {
    /// Each code is the nearest of the 16 levels `(u − 7.5) · step`, the extremes land on 0 and 15, and the halves
    /// sit in the low and high nibbles.
    @Test func quantiseFourBitsPicksNearestLevel() {
        let values: [Float] = [0.75, -0.75, 0, 0.1, -0.3, 0.7]   // odd count: the last high nibble is padding
        let stride = VectorKernels.int4Stride(dimensions: values.count)
        #expect(stride == 3)
        var codes = [UInt8](repeating: 0xFF, count: stride)
        let step = values.withUnsafeBytes { VectorKernels.quantise4($0.baseAddress!, count: values.count, into: &codes) }
        #expect(abs(step - 0.1) < 1e-7)
        func decoded(_ d: Int) -> Float {
            let byte = codes[d % stride]
            let u = d < stride ? byte & 15 : byte >> 4
            return (Float(u) - 7.5) * step
        }
        #expect(codes[0] & 15 == 15 && codes[1] & 15 == 0)
        for (d, x) in values.enumerated() {
            #expect(abs(decoded(d) - x) <= step / 2 + 1e-6, "dimension \(d): \(decoded(d)) for \(x)")
        }
        var zero = [UInt8](repeating: 0xFF, count: 2)
        let none = [Float](repeating: 0, count: 4).withUnsafeBytes { VectorKernels.quantise4($0.baseAddress!, count: 4, into: &zero) }
        #expect(none == 0 && zero == [0, 0])
    }

    /// Both builds of the loop (Zen 4 where this CPU has it, and the portable one) give the exact integer sums.
    @Test(arguments: [1, 5, 31, 192, 193])
    func dotRowsMatchReference(stride: Int) {
        var rng = SeededGenerator(seed: UInt64(stride))
        let rowCount = 37
        let rows = (0..<(rowCount * stride)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let query = (0..<(2 * stride)).map { _ in Int8.random(in: -127...127, using: &rng) }
        var reference = [Int32](repeating: 0, count: rowCount)
        for r in 0..<rowCount {
            for j in 0..<stride {
                let b = rows[r * stride + j]
                reference[r] += Int32(query[j]) * Int32(b & 15) + Int32(query[j + stride]) * Int32(b >> 4)
            }
        }
        var portable = [Int32](repeating: 0, count: rowCount)
        VectorKernels.dotRows4Portable(query: query, rows: rows, rowCount: rowCount, stride: stride, scores: &portable)
        #expect(portable == reference)
        var dispatched = [Int32](repeating: 0, count: rowCount)
        VectorKernels.dotRows4(query: query, rows: rows, rowCount: rowCount, stride: stride, scores: &dispatched)
        #expect(dispatched == reference)
        if VectorKernels.cpuHasZen4Extensions {
            var wide = [Int32](repeating: 0, count: rowCount)
            dotRows4AVX512(query: query, rows: rows, rowCount: rowCount, stride: stride, scores: &wide)
            #expect(wide == reference)
        }
    }
}

/// The CPUID check agrees with the flags Linux reports in /proc/cpuinfo (when the test can read it).
struct CPUFeatureTests {
    /// The flags a znver4 build may emit beyond haswell's, as Linux names them.
    static let zen4Flags: Set<String> = [
        "avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl", "avx512ifma", "avx512vbmi", "avx512_vbmi2",
        "avx512_vnni", "avx512_bitalg", "avx512_vpopcntdq", "avx512_bf16", "gfni", "vaes", "vpclmulqdq",
    ]

    @Test func cpuidAgreesWithProcCpuinfo() throws {
        let text = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("flags") })
        let flags = Set(line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == ":" }).map(String.init))
        #expect(VectorKernels.cpuHasZen4Extensions == CPUFeatureTests.zen4Flags.isSubset(of: flags))
    }
}

import Foundation
import Testing
import RagEmbedKernels
@testable import RagEmbed

/// The vectorised kernels against plain double-precision loops.
struct KernelsTests {
    /// Deterministic pseudo-random floats in [-scale, scale].
    static func values(_ count: Int, scale: Float, seed: UInt64 = 7) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return (Float(state >> 40) / Float(1 << 24) * 2 - 1) * scale
        }
    }

    @Test(arguments: [1, 5, 15, 16, 17, 33, 200])
    func softmaxRows(columns: Int) {
        let rows = 3
        let stride = Kernels.paddedStride(columns)
        #expect(stride % 16 == 0 && stride >= columns && stride < columns + 16)
        // Padding lanes hold garbage, even NaN: they must not leak into the result.
        var m = Self.values(rows * stride, scale: 30)
        for r in 0..<rows { for c in columns..<stride { m[r * stride + c] = c % 2 == 0 ? .nan : 1e30 } }
        let input = m
        m.withUnsafeMutableBufferPointer { Kernels.softmaxRows($0.baseAddress!, rows: rows, columns: columns, stride: stride) }
        for r in 0..<rows {
            let row = input[(r * stride)..<(r * stride + columns)].map(Double.init)
            let top = row.max()!
            let total = row.map { Foundation.exp($0 - top) }.reduce(0, +)
            for c in 0..<columns {
                let expected = Foundation.exp(row[c] - top) / total
                #expect(abs(Double(m[r * stride + c]) - expected) < 1e-6)
            }
            for c in columns..<stride { #expect(m[r * stride + c] == 0) }
        }
    }

    @Test func geluMatchesErfAndTanhFormulas() {
        let x = Self.values(1000, scale: 12) + [0, -0.0, 1e-8, -1e-8, 80, -80, 1000, -1000]
        var erfOut = x, tanhOut = x
        erfOut.withUnsafeMutableBufferPointer { Kernels.activate($0.baseAddress!, count: x.count, .gelu) }
        tanhOut.withUnsafeMutableBufferPointer { Kernels.activate($0.baseAddress!, count: x.count, .geluTanh) }
        // The fused bias form gives the same values (rows of 7 exercise the partial vector).
        let bias = Self.values(7, scale: 1, seed: 5)
        var fused = Array(x.prefix(1001))
        fused.withUnsafeMutableBufferPointer { Kernels.biasActivation($0.baseAddress!, rows: 143, width: 7, bias: bias, .gelu) }
        for i in fused.indices {
            let v = Double(x[i] + bias[i % 7])
            #expect(abs(Double(fused[i]) - 0.5 * v * (1 + Foundation.erf(v / 2.0.squareRoot()))) <= 1e-6 * max(1, abs(v)))
        }
        for i in x.indices {
            let v = Double(x[i])
            let exact = 0.5 * v * (1 + Foundation.erf(v / 2.0.squareRoot()))
            let approx = 0.5 * v * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (v + 0.044715 * v * v * v)))
            #expect(abs(Double(erfOut[i]) - exact) <= 1e-6 * max(1, abs(v)), "x = \(v)")
            #expect(abs(Double(tanhOut[i]) - approx) <= 1e-6 * max(1, abs(v)), "x = \(v)")
        }
    }

    @Test(arguments: [7, 16, 384, 390])
    func layerNorm(width: Int) {
        let rows = 4
        let x = Self.values(rows * width, scale: 5)
        let gamma = Self.values(width, scale: 2, seed: 3)
        let beta = Self.values(width, scale: 1, seed: 4)
        var y = [Float](repeating: 0, count: x.count)
        y.withUnsafeMutableBufferPointer { out in
            Kernels.layerNorm(x, into: out.baseAddress!, rows: rows, width: width, gamma: gamma, beta: beta, epsilon: 1e-12)
        }
        for r in 0..<rows {
            let row = x[(r * width)..<((r + 1) * width)].map(Double.init)
            let mean = row.reduce(0, +) / Double(width)
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(width)
            for c in 0..<width {
                let expected = (row[c] - mean) / (variance + 1e-12).squareRoot() * Double(gamma[c]) + Double(beta[c])
                #expect(abs(Double(y[r * width + c]) - expected) < 2e-5)
            }
        }
    }

    @Test func rowsWithBias() {
        let width = 19, rows = 3
        let x = Self.values(rows * width, scale: 1)
        let bias = Self.values(width, scale: 1, seed: 9)
        var sum = [Float](repeating: 0, count: x.count)
        var filled = sum
        sum.withUnsafeMutableBufferPointer { Kernels.addRows(x, bias: bias, into: $0.baseAddress!, rows: rows, width: width) }
        filled.withUnsafeMutableBufferPointer { Kernels.fillRows($0.baseAddress!, rows: rows, width: width, with: bias) }
        for i in x.indices {
            #expect(sum[i] == x[i] + bias[i % width])
            #expect(filled[i] == bias[i % width])
        }
    }

    /// The products the encoder issues (strided A, B transposed or not) against a plain loop, with the
    /// kernels OpenBLAS chose on this machine.
    @Test(arguments: [(1, 96, 32, true), (13, 8, 40, false), (200, 200, 32, true), (64, 1152, 384, true), (200, 32, 200, false)])
    func gemm(m: Int, n: Int, k: Int, transposeB: Bool) {
        let lda = k + 3, ldb = (transposeB ? k : n) + 5, ldc = n + 2
        let a = Self.values(m * lda, scale: 1, seed: 11)
        let b = Self.values((transposeB ? n : k) * ldb, scale: 1, seed: 12)
        var c = Self.values(m * ldc, scale: 1, seed: 13)
        let c0 = c
        c.withUnsafeMutableBufferPointer { c in BLAS.withExclusiveAccess {
            BLAS.gemm(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, transposeB: transposeB, beta: 1, c: c.baseAddress!, ldc: ldc)
        } }
        var worst = 0.0
        for i in 0..<m {
            for j in 0..<n {
                var s = Double(c0[i * ldc + j])
                for p in 0..<k {
                    s += Double(a[i * lda + p]) * Double(transposeB ? b[j * ldb + p] : b[p * ldb + j])
                }
                worst = max(worst, abs(s - Double(c[i * ldc + j])))
            }
        }
        #expect(worst < 1e-3)
    }
}

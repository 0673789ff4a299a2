import CBLAS
import Synchronization

/// The OpenBLAS calls the encoder makes, and OpenBLAS's process-wide settings.
///
/// Threads: OpenBLAS runs each product on `OPENBLAS_NUM_THREADS` threads (default: one per core) and
/// is called from one thread at a time: every forward pass holds ``withExclusiveAccess(_:)``, a
/// process-wide lock, so several encoders (or tests running in parallel) never call it concurrently. ``setThreads(_:)``
/// changes the count for the whole process. On the 2-core machines this project runs on, 2 threads
/// embed about 1.6 times as many chunks per second as 1, but keep both cores busy while they do.
///
/// Kernels: OpenBLAS picks them from the CPU when the library loads (`Cooperlake`, its AVX-512 kernels,
/// on the AMD EPYC machines here) unless `OPENBLAS_CORETYPE` names a family; `Haswell` (AVX2) measured
/// at half the speed. ``status`` tells which ones run.
public enum BLAS {
    /// The kernels and threads OpenBLAS uses.
    public struct Status: Sendable, CustomStringConvertible {
        /// The kernel family (`openblas_get_corename`), such as `Cooperlake` or `Haswell`.
        public var coreName: String
        /// Threads per product (`openblas_get_num_threads`).
        public var threads: Int
        public var description: String {
            "OpenBLAS \(coreName) kernels, \(threads) thread\(threads == 1 ? "" : "s")"
        }
    }

    /// The current kernels and thread count.
    public static var status: Status {
        let name = openblas_get_corename().map { String(cString: $0) } ?? "unknown"
        return Status(coreName: name, threads: Int(openblas_get_num_threads()))
    }

    private static let lock = Mutex<Void>(())

    /// Runs `body` while no other thread of the process runs OpenBLAS products through this type — when OpenBLAS
    /// uses several threads per product. With one thread per product, callers run side by side (each on its own
    /// core), so a query's embedding never waits for an ingest batch.
    public static func withExclusiveAccess<R>(_ body: () throws -> R) rethrows -> R {
        if openblas_get_num_threads() <= 1 { return try body() }
        return try lock.withLock { _ in try body() }
    }

    /// Sets the number of threads each product may use, for the whole process.
    public static func setThreads(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }

    /// C = alpha·op(A)·op(B) + beta·C for row-major matrices, op(B) = Bᵀ when `transposeB`.
    /// A is m×k (leading dimension lda), op(B) is k×n, C is m×n (ldc).
    @inline(__always)
    static func gemm(m: Int, n: Int, k: Int, alpha: Float = 1,
                     a: UnsafePointer<Float>, lda: Int,
                     b: UnsafePointer<Float>, ldb: Int, transposeB: Bool,
                     beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

import CMalloc
import Glibc
import Synchronization

/// How ragd keeps glibc's heap from holding freed memory for good.
///
/// The soak (bench/soak.py) showed anonymous RSS creeping under steady churn while live heap bytes stayed flat
/// (heaptrack): after 10 minutes one malloc arena held 77 MB of free blocks of 1 to 25 MB. glibc serves a large
/// request from mmap only above its mmap threshold, and raises that threshold (up to 32 MiB) each time such a block
/// is freed; from then on the encoder's batch buffers and other large temporaries came from the arenas, and the
/// holes they left below live blocks were never returned. Two measures: a fixed threshold (which also stops the
/// raising), so large blocks go back to the kernel when freed; and `malloc_trim` now and then, which returns the
/// free pages inside arenas (85 MB of 529 MB in that run).
enum HeapPolicy {
    /// Blocks of at least this many bytes are mapped on their own and unmapped when freed.
    static let mmapThreshold: Int32 = 1 << 20
    /// Least time between two trims.
    static let trimIntervalNanos: UInt64 = 30_000_000_000

    private static let lastTrim = Atomic<UInt64>(0)

    /// Sets the fixed mmap threshold; call once, early.
    static func configure() {
        _ = mallopt(M_MMAP_THRESHOLD, mmapThreshold)
    }

    /// Returns free heap pages to the kernel unless that was done within the last `trimIntervalNanos`. Cheap when not
    /// due; when due, costs a walk over the arenas (a few milliseconds) on the calling thread, so call it from
    /// background work (after an ingest or embedding batch), never from a query.
    static func trimIfDue() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let nanos = UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
        let last = lastTrim.load(ordering: .relaxed)
        guard nanos &- last >= trimIntervalNanos,
              lastTrim.compareExchange(expected: last, desired: nanos, ordering: .relaxed).exchanged else { return }
        _ = malloc_trim(0)
    }
}

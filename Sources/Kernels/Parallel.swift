import CBLAS
import Dispatch

/// The number of worker threads Braid's own loops and OpenBLAS use.
///
/// Set once at start-up (`--threads`); results are deterministic for a given
/// thread count, because every parallel loop splits its range the same way for
/// the same count and combines partial results in a fixed order.
public enum Threads {
    nonisolated(unsafe) private static var _count = 1

    /// The current thread count (>= 1).
    public static var count: Int { _count }

    /// Sets the thread count of Braid's loops. OpenBLAS runs single-threaded: large
    /// products split their rows over Braid's threads instead (`matmul`), so the two
    /// thread pools never compete for the cores.
    public static func set(_ n: Int) {
        precondition(n >= 1, "thread count must be >= 1, got \(n)")
        _count = n
        openblas_set_num_threads(1)
    }
}

/// Runs `body(chunk, range)` over `0..<n` split into at most `Threads.count`
/// contiguous chunks of at least `grain` items each. Chunk boundaries depend only
/// on `n`, `grain` and the thread count, so results are deterministic.
///
/// Work smaller than ~200 us gains nothing from a second thread (PERF-NOTES):
/// choose `grain` so a chunk is at least that much work.
@inlinable
public func parallelFor(_ n: Int, grain: Int = 1, _ body: (Int, Range<Int>) -> Void) {
    let chunks = Swift.max(1, Swift.min(Threads.count, n / Swift.max(grain, 1)))
    if chunks <= 1 {
        if n > 0 { body(0, 0..<n) }
        return
    }
    let base = n / chunks, extra = n % chunks
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let lo = c * base + Swift.min(c, extra)
            let hi = lo + base + (c < extra ? 1 : 0)
            body(c, lo..<hi)
        }
    }
}

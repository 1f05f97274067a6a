import CBLAS
import Glibc

/// The number of worker threads Braid's own loops and OpenBLAS use.
///
/// Set once at start-up (`--threads`); results are deterministic for a given
/// thread count, because every parallel loop splits its range the same way for
/// the same count and combines partial results in a fixed order.
public enum Threads {
    nonisolated(unsafe) private static var _count = 1

    /// The current thread count (>= 1).
    public static var count: Int { _count }

    /// Sets the thread count of Braid's loops and resizes the worker pool to
    /// `n - 1` threads (the thread calling `parallelFor` is the n-th). OpenBLAS runs
    /// single-threaded: large products split their rows over Braid's threads instead
    /// (`matmul`), so the two thread pools never compete for the cores.
    ///
    /// Waits for a running `parallelFor` to finish; must not be called from inside one.
    public static func set(_ n: Int) {
        precondition(n >= 1, "thread count must be >= 1, got \(n)")
        _count = n
        WorkerPool.shared.resize(workers: n - 1)
        openblas_set_num_threads(1)
    }
}

/// Runs `body(chunk, range)` over `0..<n` split into at most `Threads.count`
/// contiguous chunks of at least `grain` items each. Chunk boundaries depend only
/// on `n`, `grain` and the thread count, so results are deterministic.
///
/// The calling thread runs chunk 0 and the pool's workers (see `WorkerPool`) the
/// others; a chunk no worker has picked up yet when the caller is free is run by
/// the caller. A call from inside a `body` is published as the nested loop, whose
/// chunks any thread without work of its own takes (when one nested loop is already
/// running, and for deeper calls, the chunks run one after another on the calling
/// thread; same boundaries, same results).
///
/// Workers spin for a short while after each loop, so back-to-back loops cost
/// ~1 us to hand out; after an idle spell a worker sleeps and waking it costs
/// 25-60 us (PERF-NOTES): choose `grain` so a chunk is worth that.
@inlinable
public func parallelFor(_ n: Int, grain: Int = 1, _ body: (Int, Range<Int>) -> Void) {
    let chunks = Swift.max(1, Swift.min(Threads.count, n / Swift.max(grain, 1)))
    if chunks <= 1 {
        if n > 0 { body(0, 0..<n) }
        return
    }
    withoutActuallyEscaping(body) { WorkerPool.shared.run(n: n, chunks: chunks, $0) }
}

/// Whether the calling thread may split a large OpenBLAS product over Braid's threads
/// (`productChunks`). A training shard turns it off for its forward and backward pass
/// (`ShardedStep`): the shards are the parallelism there, and a shard's values must not depend
/// on the thread count (OpenBLAS's do on the rows per call), so that 2 threads in one process
/// and 2 MPI ranks of 1 thread compute the same gradients, bit for bit. Per thread: shards run
/// at once on different threads.
public enum ProductSplitting {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// False while the calling thread is inside `withoutSplitting`.
    public static var isEnabled: Bool { pthread_getspecific(key) == nil }

    /// Runs `body` with splitting off on the calling thread (restored afterwards; nests).
    public static func withoutSplitting<T>(_ body: () throws -> T) rethrows -> T {
        let previous = pthread_getspecific(key)
        pthread_setspecific(key, UnsafeRawPointer(bitPattern: 1))
        defer { pthread_setspecific(key, previous) }
        return try body()
    }
}

import Glibc
import Synchronization

/// The persistent threads behind `parallelFor`: `Threads.count - 1` workers that
/// take chunks of the current loop, spin for `spinNanoseconds` after running out of
/// work (so the next loop of a training step or scoring request finds them awake),
/// then sleep on a condition variable until a loop is published.
///
/// One loop runs at a time. The loop is published as a single 64-bit word
/// `claim` = generation (32 bits) | chunk count (16) | next unclaimed chunk (16);
/// the caller takes chunk 0 when publishing, and every thread, the caller
/// included, takes further chunks by compare-and-swap on that word, so a
/// chunk is run exactly once and a worker that wakes after the loop has ended finds
/// nothing to take. The caller then waits until the workers' chunks are done.
/// Per loop nothing is allocated: the loop's body is reached through a pointer to
/// the caller's closure, valid until the caller returns.
@usableFromInline
final class WorkerPool: @unchecked Sendable {
    /// The pool `parallelFor` uses; it has no workers until `Threads.set(n > 1)`.
    @usableFromInline static let shared = WorkerPool()

    /// How long a worker keeps polling for a new loop (yielding the core between
    /// polls) before it sleeps.
    /// 100 us: over twice the 25-60 us a wake-up costs, short against the
    /// pauses between requests. (50, 100 and 200 us were indistinguishable under
    /// the load of the measurements in docs/PERFORMANCE.md.)
    static let spinNanoseconds: UInt64 = 100_000

    /// Loops with more chunks than fit the 16-bit fields run inline.
    static let maxChunks = 0xFFFF

    /// The published loop: see the type's comment.
    private let claim = Atomic<UInt64>(0)
    /// Chunks of the current loop finished by workers.
    private let completed = Atomic<Int>(0)
    /// Held by the thread whose loop is running (or that is resizing the pool).
    private let busy = Atomic<Bool>(false)
    /// Workers blocked (or about to block) on `wake`.
    private let sleepers = Atomic<Int>(0)
    /// Tells the workers to exit (resize).
    private let stopping = Atomic<Bool>(false)

    /// The current loop's item count and body; written by the caller before
    /// `claim` publishes the loop, read by workers after they claim a chunk of it.
    private struct Loop {
        var n = 0
        var body: UnsafePointer<(Int, Range<Int>) -> Void>?
    }
    private let loop = UnsafeMutablePointer<Loop>.allocate(capacity: 1)
    /// Generation of the last published loop; only touched while `busy` is held.
    private var generation: UInt64 = 0

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Worker thread ids; only touched while `busy` is held.
    private var threads: [pthread_t] = []

    private init() {
        loop.initialize(to: Loop())
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
    }

    /// The number of worker threads (the caller of `parallelFor` not counted).
    var workerCount: Int {
        acquire()
        defer { busy.store(false, ordering: .releasing) }
        return threads.count
    }

    /// Workers asleep (past their spin) right now.
    var sleepingWorkers: Int { sleepers.load(ordering: .relaxed) }

    /// The bounds of chunk `c` of `0..<n` split into `chunks`: the first `n % chunks`
    /// chunks have one item more than the rest.
    @inline(__always)
    static func chunkRange(_ c: Int, n: Int, chunks: Int) -> Range<Int> {
        let base = n / chunks, extra = n % chunks
        let lo = c * base + Swift.min(c, extra)
        return lo..<(lo + base + (c < extra ? 1 : 0))
    }

    /// Runs `body` over the `chunks` chunks of `0..<n` (see `parallelFor`); returns
    /// when every chunk has run.
    @usableFromInline
    func run(n: Int, chunks: Int, _ body: @escaping (Int, Range<Int>) -> Void) {
        guard chunks <= Self.maxChunks,
              busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
        else {
            // Nested in another loop's body, or another thread's loop is running.
            for c in 0..<chunks { body(c, Self.chunkRange(c, n: n, chunks: chunks)) }
            return
        }
        withUnsafePointer(to: body) { bodyPointer in
            loop.pointee = Loop(n: n, body: bodyPointer)
            completed.store(0, ordering: .relaxed)
            generation = (generation + 1) & 0xFFFF_FFFF
            // Chunk 0 is the caller's: publish with next = 1.
            claim.store(generation << 32 | UInt64(chunks) << 16 | 1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(mutex)
                pthread_cond_broadcast(wake)
                pthread_mutex_unlock(mutex)
            }
            body(0, Self.chunkRange(0, n: n, chunks: chunks))
            var mine = 1
            while let (c, _) = takeChunk() {
                body(c, Self.chunkRange(c, n: n, chunks: chunks))
                mine += 1
            }
            var polls = 0
            while completed.load(ordering: .acquiring) < chunks - mine {
                polls += 1
                if polls > 256 { sched_yield() }
            }
            loop.pointee.body = nil
        }
        busy.store(false, ordering: .releasing)
    }

    /// Claims the next chunk of the published loop, if one is left: its index and
    /// the loop's chunk count.
    private func takeChunk() -> (chunk: Int, of: Int)? {
        var word = claim.load(ordering: .acquiring)
        while true {
            let chunks = word >> 16 & 0xFFFF, next = word & 0xFFFF
            if next >= chunks { return nil }
            let (exchanged, current) = claim.compareExchange(
                expected: word, desired: word + 1, ordering: .acquiringAndReleasing)
            if exchanged { return (Int(next), Int(chunks)) }
            word = current
        }
    }

    /// Whether `word` has a chunk left to claim.
    private static func hasWork(_ word: UInt64) -> Bool { word & 0xFFFF < word >> 16 & 0xFFFF }

    /// A worker: runs chunks while there are any, polls for `spinNanoseconds`, then sleeps.
    private func work() {
        var idleSince = Self.now()
        while !stopping.load(ordering: .acquiring) {
            if let (c, chunks) = takeChunk() {
                runClaimed(c, of: chunks)
                idleSince = Self.now()
            } else if Self.now() - idleSince < Self.spinNanoseconds {
                sched_yield()
            } else {
                pthread_mutex_lock(mutex)
                sleepers.add(1, ordering: .sequentiallyConsistent)
                while !stopping.load(ordering: .sequentiallyConsistent),
                      !Self.hasWork(claim.load(ordering: .sequentiallyConsistent)) {
                    pthread_cond_wait(wake, mutex)
                }
                sleepers.subtract(1, ordering: .sequentiallyConsistent)
                pthread_mutex_unlock(mutex)
                idleSince = Self.now()
            }
        }
    }

    /// Runs claimed chunk `c` of the current loop and counts it done.
    private func runClaimed(_ c: Int, of chunks: Int) {
        callBody(c, of: chunks)
        completed.add(1, ordering: .releasing)
    }

    /// Not inlined, so the worker's copy of the body closure is released before
    /// `completed` lets the caller return.
    @inline(never)
    private func callBody(_ c: Int, of chunks: Int) {
        let n = loop.pointee.n
        loop.pointee.body!.pointee(c, Self.chunkRange(c, n: n, chunks: chunks))
    }

    /// Takes `busy`, waiting for a running loop to end.
    private func acquire() {
        while !busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
            sched_yield()
        }
    }

    /// Stops the workers and starts `count` new ones (no-op when the count is unchanged).
    func resize(workers count: Int) {
        acquire()
        defer { busy.store(false, ordering: .releasing) }
        if threads.count == count { return }
        stopping.store(true, ordering: .sequentiallyConsistent)
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(mutex)
        for t in threads { pthread_join(t, nil) }
        threads.removeAll()
        stopping.store(false, ordering: .sequentiallyConsistent)
        for index in 0..<count {
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { context in
                let start = Unmanaged<WorkerStart>.fromOpaque(context!).takeRetainedValue()
                ThreadSlot.set(start.index + 1)
                start.pool.work()
                return nil
            }, Unmanaged.passRetained(WorkerStart(pool: self, index: index)).toOpaque())
            precondition(rc == 0, "pthread_create failed: \(rc)")
            threads.append(thread)
        }
    }

    /// What a new worker thread is handed: its pool and its index among the workers.
    private final class WorkerStart {
        let pool: WorkerPool, index: Int
        init(pool: WorkerPool, index: Int) { self.pool = pool; self.index = index }
    }

    private static func now() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
    }
}

/// Which of Braid's threads is running: worker i of the `parallelFor` pool is slot i + 1; every
/// other thread (the main thread, a server's request threads) is slot 0. Per-thread state
/// indexed by it (the tensors' buffer pools) stays with one core while the OS keeps a thread
/// there, as it does for the shards of a training step.
public enum ThreadSlot {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// The calling thread's slot.
    @inline(__always) public static var current: Int { Int(bitPattern: pthread_getspecific(key)) }

    static func set(_ slot: Int) { pthread_setspecific(key, UnsafeRawPointer(bitPattern: slot)) }
}

import Glibc
import Synchronization

/// The persistent threads behind `parallelFor`: `Threads.count - 1` workers that
/// take chunks of the current loop, spin for `spinNanoseconds` after running out of
/// work (so the next loop of a training step or scoring request finds them awake),
/// then sleep on a condition variable until a loop is published.
///
/// A top-level loop and one loop nested in a chunk of it run at a time, each published
/// on a `PublishedLoop`. The caller takes chunk 0 when publishing, and every thread, the
/// caller included, takes further chunks by compare-and-swap on the loop's claim word. A
/// thread with nothing of its own to do (the top-level caller waiting for the workers'
/// chunks, an idle worker) takes chunks of the nested loop: in a training step the shards
/// are the top-level chunks, and the shard that finishes first runs part of the other's
/// kernels instead of waiting for it. Chunk boundaries never depend on who runs a chunk, so
/// results do not either. Per loop nothing is allocated: the loop's body is reached through
/// a pointer to the caller's closure, valid until the caller returns.
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

    /// The top-level loop, and one loop nested in a chunk of it (a training shard's kernels):
    /// a thread whose own chunks are done (the caller waiting for the top-level loop, an idle
    /// worker) takes chunks of the nested loop, so shards that finish early help the others
    /// instead of waiting. Deeper loops, and a second nested loop while one runs, run inline.
    private let top = PublishedLoop(), nested = PublishedLoop()
    /// Workers blocked (or about to block) on `wake`.
    private let sleepers = Atomic<Int>(0)
    /// Tells the workers to exit (resize).
    private let stopping = Atomic<Bool>(false)

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Worker thread ids; only touched while `top.busy` is held.
    private var threads: [pthread_t] = []

    private init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
    }

    /// The number of worker threads (the caller of `parallelFor` not counted).
    var workerCount: Int {
        acquire()
        defer { top.busy.store(false, ordering: .releasing) }
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
        guard chunks <= Self.maxChunks else { return runInline(n: n, chunks: chunks, body) }
        if top.busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
            // while waiting for the workers' chunks, help a loop nested in one of them
            runPublished(top, n: n, chunks: chunks, body) { self.nested.takeAndRun() }
            top.busy.store(false, ordering: .releasing)
        } else if top.isRunning.load(ordering: .acquiring),
                  nested.busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
            runPublished(nested, n: n, chunks: chunks, body) { false }
            nested.busy.store(false, ordering: .releasing)
        } else {
            // deeper than one level, or another thread's loop (not ours) is running
            runInline(n: n, chunks: chunks, body)
        }
    }

    private func runInline(n: Int, chunks: Int, _ body: (Int, Range<Int>) -> Void) {
        for c in 0..<chunks { body(c, Self.chunkRange(c, n: n, chunks: chunks)) }
    }

    /// Publishes a loop on `slot` (whose `busy` the caller holds), runs its chunks with
    /// any thread that takes them, and returns when all have run; `help` is tried while
    /// waiting for chunks other threads took (it returns whether it ran something).
    private func runPublished(_ slot: PublishedLoop, n: Int, chunks: Int, _ body: @escaping (Int, Range<Int>) -> Void,
                              help: () -> Bool) {
        withUnsafePointer(to: body) { bodyPointer in
            slot.publish(n: n, chunks: chunks, body: bodyPointer)
            if slot === top { top.isRunning.store(true, ordering: .releasing) }
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(mutex)
                pthread_cond_broadcast(wake)
                pthread_mutex_unlock(mutex)
            }
            body(0, Self.chunkRange(0, n: n, chunks: chunks))
            var mine = 1
            while let (c, _) = slot.takeChunk() {
                body(c, Self.chunkRange(c, n: n, chunks: chunks))
                mine += 1
            }
            var polls = 0
            while slot.completed.load(ordering: .acquiring) < chunks - mine {
                if help() { polls = 0; continue }
                polls += 1
                if polls > 256 { sched_yield() }
            }
            if slot === top { top.isRunning.store(false, ordering: .releasing) }
            slot.loop.pointee.body = nil
        }
    }

    /// A worker: runs chunks (of the top-level loop first, else of a nested one) while there
    /// are any, polls for `spinNanoseconds`, then sleeps.
    private func work() {
        var idleSince = Self.now()
        while !stopping.load(ordering: .acquiring) {
            if top.takeAndRun() || nested.takeAndRun() {
                idleSince = Self.now()
            } else if Self.now() - idleSince < Self.spinNanoseconds {
                sched_yield()
            } else {
                pthread_mutex_lock(mutex)
                sleepers.add(1, ordering: .sequentiallyConsistent)
                while !stopping.load(ordering: .sequentiallyConsistent), !top.hasWork, !nested.hasWork {
                    pthread_cond_wait(wake, mutex)
                }
                sleepers.subtract(1, ordering: .sequentiallyConsistent)
                pthread_mutex_unlock(mutex)
                idleSince = Self.now()
            }
        }
    }

    /// Takes `busy`, waiting for a running loop to end.
    private func acquire() {
        while !top.busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
            sched_yield()
        }
    }

    /// Stops the workers and starts `count` new ones (no-op when the count is unchanged).
    func resize(workers count: Int) {
        acquire()
        defer { top.busy.store(false, ordering: .releasing) }
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

/// One published loop of `WorkerPool`: the word `claim` = generation (32 bits) | chunk count
/// (16) | next unclaimed chunk (16); the publisher takes chunk 0, and every thread takes
/// further chunks by compare-and-swap on that word, so a chunk runs exactly once and a thread
/// that looks after the loop has ended finds nothing to take. `completed` counts the chunks
/// other threads finished; the body is reached through a pointer to the publisher's closure,
/// valid until the publisher returns (it waits for `completed`).
private final class PublishedLoop: @unchecked Sendable {
    let claim = Atomic<UInt64>(0)
    let completed = Atomic<Int>(0)
    /// Held by the thread whose loop runs on this slot (or, for the top slot, that resizes the pool).
    let busy = Atomic<Bool>(false)
    /// The top slot only: a loop is published and not finished (a nested loop may use `nested`).
    let isRunning = Atomic<Bool>(false)

    struct Loop {
        var n = 0
        var body: UnsafePointer<(Int, Range<Int>) -> Void>?
    }
    let loop = UnsafeMutablePointer<Loop>.allocate(capacity: 1)
    /// Generation of the last published loop; only touched while `busy` is held.
    private var generation: UInt64 = 0

    init() { loop.initialize(to: Loop()) }

    /// Publishes a loop whose chunk 0 the caller runs.
    func publish(n: Int, chunks: Int, body: UnsafePointer<(Int, Range<Int>) -> Void>) {
        loop.pointee = Loop(n: n, body: body)
        completed.store(0, ordering: .relaxed)
        generation = (generation + 1) & 0xFFFF_FFFF
        claim.store(generation << 32 | UInt64(chunks) << 16 | 1, ordering: .sequentiallyConsistent)
    }

    /// Whether a chunk is left to claim.
    var hasWork: Bool {
        let word = claim.load(ordering: .sequentiallyConsistent)
        return word & 0xFFFF < word >> 16 & 0xFFFF
    }

    /// Claims the next chunk, if one is left: its index and the loop's chunk count.
    func takeChunk() -> (chunk: Int, of: Int)? {
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

    /// Claims and runs one chunk for the publisher, counting it done; false if none was left.
    func takeAndRun() -> Bool {
        guard let (c, chunks) = takeChunk() else { return false }
        callBody(c, of: chunks)
        completed.add(1, ordering: .releasing)
        return true
    }

    /// Not inlined, so the helper's copy of the body closure is released before
    /// `completed` lets the publisher return.
    @inline(never)
    private func callBody(_ c: Int, of chunks: Int) {
        let n = loop.pointee.n
        loop.pointee.body!.pointee(c, WorkerPool.chunkRange(c, n: n, chunks: chunks))
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

import Foundation

/// The batches of one epoch's plan (`shuffledBatches`), gathered on a background thread
/// `prefetch` batches ahead of the consumer through a bounded queue, so the trainer does not
/// wait on gathering:
///
/// ```swift
/// let cache = try DataCache.open(csv: train, config: config)
/// let plan = shuffledBatches(surface: cache.surface, batchSize: 512, seed: 7, epoch: epoch)
/// for batch in BatchStream(cache: cache, plan: plan) { ... }
/// ```
///
/// `Element` is what `gather` makes of a batch's rows: a `Batch`, or the training loop's
/// `[Batch]` (one per shard, `ShardedStep`). Batches come in plan order. The producer starts on construction and stops when the plan
/// is done or the stream is released (leaving the loop early is fine). Iterate one stream
/// from one thread.
public final class BatchStream<Element>: Sequence, IteratorProtocol {
    /// The queue shared with the producer thread. The producer holds only this, never the
    /// stream, so releasing the stream (leaving the loop early) always runs `deinit`,
    /// which cancels the producer even while it waits for room.
    private final class Shared {
        let condition = NSCondition()
        var queue: [Element] = []
        var head = 0
        var produced = 0
        var consumed = 0
        var cancelled = false
        let capacity: Int

        init(capacity: Int) { self.capacity = capacity }

        func waitForRoom() -> Bool {
            condition.lock()
            defer { condition.unlock() }
            while !cancelled && produced - consumed >= capacity { condition.wait() }
            return !cancelled
        }

        func push(_ batch: Element) {
            condition.lock()
            queue.append(batch)
            produced += 1
            condition.broadcast()
            condition.unlock()
        }

        func cancel() {
            condition.lock()
            cancelled = true
            queue.removeAll()
            condition.broadcast()
            condition.unlock()
        }
    }

    private let shared: Shared
    private let total: Int

    /// Gathers `plan`'s batches with `gather` (called on the background thread, in order).
    public convenience init(plan: [[Int]], prefetch: Int = 3, gather: @escaping ([Int]) -> Element) {
        self.init(plan: plan, count: plan.count, prefetch: prefetch, gather: gather)
    }

    /// Gathers the first `count` batches of `plan` (a sequence produced on the background
    /// thread, e.g. `BlockShuffledBatches`, so the plan need not be held whole) with `gather`.
    public init<Plan: Sequence>(plan: Plan, count: Int, prefetch: Int = 3, gather: @escaping ([Int]) -> Element) where Plan.Element == [Int] {
        precondition(prefetch >= 1, "prefetch must be >= 1, got \(prefetch)")
        let shared = Shared(capacity: prefetch)
        self.shared = shared
        total = count
        let thread = Thread { [shared, plan] in
            for rows in plan.prefix(count) {
                guard shared.waitForRoom() else { return }
                shared.push(gather(rows))
            }
        }
        thread.name = "braid.BatchStream"
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Batches of `cache` rows.
    public convenience init(cache: DataCache, plan: [[Int]], prefetch: Int = 3) where Element == Batch {
        self.init(plan: plan, prefetch: prefetch) { [cache] rows in cache.batch(rows: rows) }
    }

    /// Batches of in-memory `rows`.
    public convenience init(rows: EncodedRows, plan: [[Int]], prefetch: Int = 3) where Element == Batch {
        self.init(plan: plan, prefetch: prefetch) { [rows] in rows.batch(rows: $0) }
    }

    deinit { shared.cancel() }

    /// The number of batches in the plan.
    public var underestimatedCount: Int { total - shared.consumed }

    /// The next batch, waiting for the producer if needed; nil after the last one.
    public func next() -> Element? {
        let s = shared
        s.condition.lock()
        defer { s.condition.unlock() }
        guard s.consumed < total else { return nil }
        while s.head >= s.queue.count { s.condition.wait() }
        let batch = s.queue[s.head]
        s.head += 1
        s.consumed += 1
        if s.head > 64 {  // drop consumed batches now and then
            s.queue.removeFirst(s.head)
            s.head = 0
        }
        s.condition.broadcast()
        return batch
    }
}

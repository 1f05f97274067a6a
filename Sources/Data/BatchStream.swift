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
/// Batches come in plan order. The producer starts on construction and stops when the plan
/// is done or the stream is released (leaving the loop early is fine). Iterate one stream
/// from one thread.
public final class BatchStream: Sequence, IteratorProtocol {
    private let condition = NSCondition()
    private var queue: [Batch] = []
    private var head = 0
    private var produced = 0
    private var cancelled = false
    private let capacity: Int
    private let total: Int
    private var consumed = 0
    private var thread: Thread?

    /// Gathers `plan`'s batches with `gather` (called on the background thread, in order).
    public init(plan: [[Int]], prefetch: Int = 3, gather: @escaping ([Int]) -> Batch) {
        precondition(prefetch >= 1, "prefetch must be >= 1, got \(prefetch)")
        capacity = prefetch
        total = plan.count
        let thread = Thread { [weak self, plan] in
            for rows in plan {
                // Wait for room without holding a strong reference to the stream between batches.
                guard let stream = self, stream.waitForRoom() else { return }
                let batch = gather(rows)
                stream.push(batch)
            }
        }
        thread.name = "braid.BatchStream"
        thread.stackSize = 1 << 20
        self.thread = thread
        thread.start()
    }

    /// Batches of `cache` rows.
    public convenience init(cache: DataCache, plan: [[Int]], prefetch: Int = 3) {
        self.init(plan: plan, prefetch: prefetch) { [cache] rows in cache.batch(rows: rows) }
    }

    /// Batches of in-memory `rows`.
    public convenience init(rows: EncodedRows, plan: [[Int]], prefetch: Int = 3) {
        self.init(plan: plan, prefetch: prefetch) { [rows] in rows.batch(rows: $0) }
    }

    deinit {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }

    /// The number of batches in the plan.
    public var underestimatedCount: Int { total - consumed }

    private func waitForRoom() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while !cancelled && produced - consumed >= capacity { condition.wait() }
        return !cancelled
    }

    private func push(_ batch: Batch) {
        condition.lock()
        queue.append(batch)
        produced += 1
        condition.broadcast()
        condition.unlock()
    }

    /// The next batch, waiting for the producer if needed; nil after the last one.
    public func next() -> Batch? {
        condition.lock()
        defer { condition.unlock() }
        guard consumed < total else { return nil }
        while head >= queue.count { condition.wait() }
        let batch = queue[head]
        head += 1
        consumed += 1
        if head > 64 {  // drop consumed batches now and then
            queue.removeFirst(head)
            head = 0
        }
        condition.broadcast()
        return batch
    }
}

import Dispatch
import Foundation
import Inference
import Schema

/// Merges concurrent scoring requests of one surface of one loaded model into micro-batches
/// and scores them on the model's serial queue (the engine is used by one batch at a time).
///
/// The first request of a batch waits at most `wait` for neighbours; a batch takes pending
/// requests in arrival order while their merged distinct users stay <= `maxUniqueUsers` and
/// their rows <= `maxRows` (the first request is always taken: it was checked against
/// `maxUniqueUsers` on its own when encoded). Requests left over run in the next batch right
/// away. No request fails because of a neighbour.
final class MicroBatcher: @unchecked Sendable {
    struct Outcome {
        var requests: Int, candidates: Int, users: Int, seconds: Double
    }

    private struct Pending {
        let requests: EncodedRequests
        let keys: [[Int32]]
        let continuation: CheckedContinuation<PartScores, Error>
        var rows: Int { requests.batch.count }
    }

    let engine: InferenceEngine
    let queue: DispatchQueue
    let wait: DispatchTimeInterval
    let maxUniqueUsers: Int
    let maxRows: Int
    let onBatch: @Sendable (Outcome) -> Void
    private let schema: Schema
    private let lock = NSLock()
    private var pending: [Pending] = []
    private var scheduled = false

    init(engine: InferenceEngine, queue: DispatchQueue, waitMicroseconds: Int, maxUniqueUsers: Int, maxRows: Int,
         onBatch: @escaping @Sendable (Outcome) -> Void) {
        self.engine = engine
        self.queue = queue
        self.wait = .microseconds(max(0, waitMicroseconds))
        self.maxUniqueUsers = maxUniqueUsers
        self.maxRows = max(1, maxRows)
        self.onBatch = onBatch
        self.schema = engine.model.config.schema
    }

    /// Scores `requests` (encoded for this batcher's model and surface) in some micro-batch.
    func score(_ requests: EncodedRequests) async throws -> PartScores {
        let keys = BatchMerge.userKeys(requests, schema: schema)
        return try await withCheckedThrowingContinuation { continuation in
            lock.lock()
            pending.append(Pending(requests: requests, keys: keys, continuation: continuation))
            let schedule = !scheduled
            scheduled = true
            lock.unlock()
            if schedule { queue.asyncAfter(deadline: .now() + wait) { self.drain() } }
        }
    }

    /// Runs on `queue`: scores one batch, then schedules the next if requests are left.
    private func drain() {
        lock.lock()
        var users = Set<[Int32]>(), rows = 0, taken = 0
        for p in pending {
            let merged = users.union(p.keys)
            if taken > 0 && (merged.count > maxUniqueUsers || rows + p.rows > maxRows) { break }
            users = merged
            rows += p.rows
            taken += 1
        }
        let batch = Array(pending.prefix(taken))
        pending.removeFirst(taken)
        let more = !pending.isEmpty
        if !more { scheduled = false }
        lock.unlock()
        if more { queue.async { self.drain() } }
        guard !batch.isEmpty else { return }

        let start = DispatchTime.now().uptimeNanoseconds
        let parts = batch.map(\.requests)
        let result: Result<[PartScores], Error>
        do {
            let merged = BatchMerge.merge(parts, keys: batch.map(\.keys), schema: schema)
            result = .success(BatchMerge.split(try engine.score(merged), parts: parts))
            onBatch(Outcome(requests: batch.count, candidates: merged.batch.count, users: merged.users,
                            seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9))
        } catch {
            result = .failure(error)
        }
        for (i, p) in batch.enumerated() {
            switch result {
            case .success(let scored): p.continuation.resume(returning: scored[i])
            case .failure(let error): p.continuation.resume(throwing: error)
            }
        }
    }
}

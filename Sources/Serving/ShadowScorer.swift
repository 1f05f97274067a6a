import Foundation
import Inference

/// Safe rollout: scores a share of one surface's successful live requests with a candidate
/// model version too, after the live answer is computed and off its path (a detached task
/// on the candidate's own micro-batcher and serial queue), and exports per task the sum of
/// |live - shadow| over candidates and the shadow's predicted sums, so
/// `braid_shadow_abs_diff_sum / braid_shadow_rows_total` is the mean |diff| and
/// `braid_predicted_probability_sum / braid_predicted_rows_total` the mean predicted
/// probability of each version. Tasks the two versions do not share are not compared. At
/// most `maxInFlight` shadow requests run at once; beyond that requests are skipped
/// (counted), so a slow candidate never builds a queue.
final class ShadowScorer: @unchecked Sendable {
    let surface: String
    let model: LoadedModel
    let share: Double
    let metrics: ServingMetrics
    let maxInFlight = 64
    private let lock = NSLock()
    private var offered = 0
    private var inFlight = 0
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []

    init(surface: String, model: LoadedModel, share: Double, metrics: ServingMetrics) {
        self.surface = surface
        self.model = model
        self.share = share
        self.metrics = metrics
    }

    /// Takes request n when floor((n + 1) * share) > floor(n * share): an even spread of
    /// `share` of the requests.
    private func take() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let n = Double(offered)
        offered += 1
        guard ((n + 1) * share).rounded(.down) > (n * share).rounded(.down) else { return false }
        guard inFlight < maxInFlight else {
            metrics.shadowRequest(surface: surface, version: model.version, result: "skipped")
            return false
        }
        inFlight += 1
        return true
    }

    /// Offers one live request (its parsed body and live scores) for shadow scoring.
    func offer(_ body: RequestJSON, live: PartScores, maxUniqueUsers: Int) {
        guard take() else { return }
        Task.detached(priority: .background) { [self] in
            defer { finished() }
            do {
                let encoded = try encodeRequests(body, config: model.engine.model.config, maxUniqueUsers: maxUniqueUsers)
                let shadow = try await model.batchers[surface]!.score(encoded)
                compare(live: live, shadow: shadow)
                metrics.shadowRequest(surface: surface, version: model.version, result: "ok")
            } catch {
                metrics.shadowRequest(surface: surface, version: model.version, result: "error")
            }
        }
    }

    private func finished() {
        lock.lock()
        inFlight -= 1
        let waiters = inFlight == 0 ? idleWaiters : []
        if inFlight == 0 { idleWaiters = [] }
        lock.unlock()
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once no shadow request is running (at once when none is): every request
    /// offered before the call has been compared and counted.
    func idle() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            lock.lock()
            if inFlight == 0 {
                lock.unlock()
                continuation.resume()
            } else {
                idleWaiters.append(continuation)
                lock.unlock()
            }
        }
    }

    private func compare(live: PartScores, shadow: PartScores) {
        metrics.predicted(surface: surface, version: model.version, role: "shadow", tasks: shadow.tasks,
                          probabilities: shadow.probabilities)
        let K = live.tasks.count, S = shadow.tasks.count
        let rows = K == 0 ? 0 : live.probabilities.count / K
        guard S > 0, shadow.probabilities.count / S == rows else { return }
        for (k, task) in live.tasks.enumerated() {
            guard let s = shadow.tasks.firstIndex(of: task) else { continue }
            var sum = 0.0
            for n in 0..<rows { sum += abs(live.probabilities[n * K + k] - shadow.probabilities[n * S + s]) }
            metrics.shadowDiff(surface: surface, version: model.version, task: task, absDiffSum: sum, rows: rows)
        }
    }
}

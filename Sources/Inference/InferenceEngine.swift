import Data
import Foundation
import JSON
import Kernels
import Model
import Schema
import Tensors

/// Calibrated probabilities of scored requests (SPEC 5): for N candidates in request and
/// candidate order and the K = `tasks.count` tasks of `surface` (schema order),
/// `probabilities` [N, K] row-major (float64), p = sigmoid(a * logit + b) with the
/// model.json calibration pair of (surface, task), the identity (1, 0) when absent (SPEC 2.7).
public struct ScoredRequests: Sendable {
    public var surface: String
    public var tasks: [String]
    public var counts: [Int]
    public var probabilities: [Double]
    public var ignoredKeys: Int

    /// The scores of request r: one [task: p] per candidate, in candidate order.
    public func scores(request r: Int) -> [[String: Double]] {
        let start = counts[..<r].reduce(0, +), K = tasks.count
        return (start..<(start + counts[r])).map { n in
            var row: [String: Double] = [:]
            for (k, t) in tasks.enumerated() { row[t] = probabilities[n * K + k] }
            return row
        }
    }
}

/// Scores batches of requests (one user + candidates each) for one surface with a loaded
/// model — unified or a surface export — without a tape.
///
/// Request-level broadcasting (SPEC 5): the batch keeps one sequence per unique user
/// ([U, L]) and `userIndex` [N] -> U. With `late` fusion the whole Transformer runs once per
/// user ([U, L, d]) and its output is gathered per candidate for the target attention;
/// with `append` fusion the user tokens' keys and values at every layer are computed once
/// per user and each candidate runs one token [N, d] against them; with `early` fusion
/// the item lookups are shared per user and the Transformer runs per candidate ([N, L, d]).
/// `broadcast: false` expands every candidate to its own copy of the user (the cost of
/// scoring each row alone, for comparison; the user-state cache is not used); the scores
/// are the same.
///
/// A batch with more than `maxUniqueUsers` users is refused with `RequestError` status 413
/// naming the bound, before any work; never truncated.
///
/// With `userStates` (late and append fusion), a user whose items and actions an earlier
/// request had skips the Transformer over its tokens (`UserStateCache`): the same scores, up
/// to the float rounding a batch's composition moves anyway (<= 1e-6 tested).
///
/// ```swift
/// let engine = InferenceEngine(model: try BraidModel.load(directory: url), maxUniqueUsers: 256,
///                              userStates: UserStateCache(budgetBytes: 256 << 20))
/// let scored = try engine.score(body: requestBody)   // scored.scores(request: 0)[0]["click"]
/// ```
public final class InferenceEngine {
    public let model: BraidModel
    public let maxUniqueUsers: Int
    /// Users' sequence states kept across requests; nil with early fusion (nothing to keep).
    public let userStates: UserStateCache?

    public init(model: BraidModel, maxUniqueUsers: Int = 256, userStates: UserStateCache? = nil) {
        precondition(maxUniqueUsers >= 1, "maxUniqueUsers must be >= 1, got \(maxUniqueUsers)")
        self.model = model
        self.maxUniqueUsers = maxUniqueUsers
        let fusion = model.config.model.sequence?.fusion
        self.userStates = model.sequence != nil && fusion != .early ? userStates : nil
    }

    /// Encodes (SPEC 5, status 400/413 errors) and scores a `POST /v1/score` body.
    public func score(body: Foundation.Data) throws -> ScoredRequests {
        try score(encodeRequests(body, config: model.config, maxUniqueUsers: maxUniqueUsers))
    }

    /// Scores encoded requests; see the type's documentation for `broadcast`.
    public func score(_ requests: EncodedRequests, broadcast: Bool = true) throws -> ScoredRequests {
        let config = model.config, schema = config.schema
        guard requests.surface >= 0, requests.surface < schema.surfaces.count,
              config.surfacesIncluded.contains(schema.surfaces[requests.surface]) else {
            throw RequestError("surface", "surface index \(requests.surface) is not served by this model; expected one of "
                + "\(pythonRepr(config.surfacesIncluded))")
        }
        let surface = schema.surfaces[requests.surface]
        guard requests.users <= maxUniqueUsers else {
            throw RequestError("requests", "\(requests.users) distinct users, more than max_unique_users = \(maxUniqueUsers) "
                + "in one batch; expected at most that many (split the batch)", status: 413)
        }
        let tasks = schema.tasks[surface] ?? [], K = tasks.count
        var batch = requests.batch
        let N = batch.count
        var probabilities = [Double](repeating: 0, count: N * K)
        if N > 0 {
            if !broadcast { batch = Self.expandUsers(batch, maxLength: schema.sequence?.maxLength ?? 0) }
            let logits = taskLogits(batch, surface: requests.surface, userStates: broadcast ? userStates : nil)
            for (k, task) in tasks.enumerated() {
                let pair = config.calibration[surface]?[task] ?? .identity
                guard let values = logits[schema.allTasks.firstIndex(of: task)!] else {
                    preconditionFailure("surface \(surface) has no head for task \(task)")
                }
                for (n, value) in values.enumerated() { probabilities[n * K + k] = pair.probability(logit: Double(value)) }
            }
        }
        return ScoredRequests(surface: surface, tasks: tasks, counts: requests.counts, probabilities: probabilities,
                              ignoredKeys: requests.ignoredKeys)
    }

    /// The logits of every row of `batch` (one surface's rows) by task index, in row order.
    ///
    /// With `early` fusion the Transformer runs per candidate, so candidates share no work
    /// beyond the embedding lookups: with several threads (and at least `shardRows` rows per
    /// thread) the rows are cut into one contiguous shard per thread and each shard runs the
    /// whole model on its own thread (inside it every kernel runs inline), as training's
    /// `ShardedStep` does; split kernel by kernel a 1 x 100 request scaled 1.13x on 2 threads.
    /// Late and append fusion run the user's Transformer once per user, which shards would
    /// repeat, so they run as one call (their kernels split over the threads).
    func taskLogits(_ batch: Batch, surface: Int, userStates: UserStateCache?) -> [Int: [Float]] {
        let N = batch.count
        let early = model.config.model.sequence?.fusion == .early && model.sequence != nil
        let shards = early ? Swift.max(1, Swift.min(Threads.count, N / Self.shardRows)) : 1
        let L = model.config.schema.sequence?.maxLength ?? 0
        let bounds = (0...shards).map { N * $0 / shards }
        var outputs = [[SurfaceLogits]](repeating: [], count: shards)
        outputs.withUnsafeMutableBufferPointer { outputs in
            parallelFor(outputs.count, grain: 1) { _, range in
                for s in range { outputs[s] = model(batch.rows(bounds[s] ..< bounds[s + 1], maxLength: L), userStates: userStates) }
            }
        }
        var logits: [Int: [Float]] = [:]
        for (s, output) in outputs.enumerated() {
            precondition(output.count == 1 && output[0].surface == surface && output[0].rows.count == bounds[s + 1] - bounds[s],
                         "a request batch holds one surface's rows")
            for (task, logit) in output[0].logits {
                logits[task, default: []].append(contentsOf: UnsafeBufferPointer(start: logit.data, count: logit.count))
            }
        }
        return logits
    }

    /// The fewest rows per shard of an early-fusion batch (`taskLogits`).
    static let shardRows = 8

    /// The batch with one user per row (sequences copied per candidate, `userIndex` nil).
    static func expandUsers(_ batch: Batch, maxLength L: Int) -> Batch {
        guard let ui = batch.userIndex else { return batch }
        var out = batch
        out.userIndex = nil
        guard L > 0 else { return out }
        out.seqItems = [Int32](repeating: 0, count: ui.count * L)
        out.seqActions = out.seqItems
        batch.seqItems.withUnsafeBufferPointer { items in
            batch.seqActions.withUnsafeBufferPointer { actions in
                out.seqItems.withUnsafeMutableBufferPointer { outItems in
                    out.seqActions.withUnsafeMutableBufferPointer { outActions in
                        for (b, u) in ui.enumerated() {
                            for i in 0..<L {
                                outItems[b * L + i] = items[Int(u) * L + i]
                                outActions[b * L + i] = actions[Int(u) * L + i]
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}

extension EncodedRequests {
    /// Requests built from encoded CSV rows, as the reference's `request_batch`: request q
    /// takes the surface, user- and context-side inputs and sequence of row `requests[q].user`
    /// and the candidate-side inputs of rows `requests[q].candidates` (read as missing where a
    /// candidate feature does not exist on the request's surface). Every request is its own
    /// user (U = number of requests). All user rows must share one surface.
    public init(rows: EncodedRows, requests: [(user: Int, candidates: [Int])]) {
        let schema = rows.schema, nDense = schema.dense.count
        let L = schema.sequence?.maxLength ?? 0
        let surface = requests.first.map { rows.surface[$0.user] } ?? 0
        let surfaceName = schema.surfaces[Int(surface)]
        var userRows: [Int] = [], candidateRows: [Int] = [], userIndex: [Int32] = []
        for (q, request) in requests.enumerated() {
            precondition(rows.surface[request.user] == surface, "every request of a batch has one surface")
            userRows.append(request.user)
            for c in request.candidates { candidateRows.append(c); userIndex.append(Int32(q)) }
        }
        let users = rows.batch(rows: userRows), candidates = rows.batch(rows: candidateRows)
        let N = candidateRows.count, T = schema.allTasks.count
        var categorical: [FeatureIDs] = []
        for (i, f) in schema.categorical.enumerated() {
            let fromCandidate = f.side == .candidate
            let source = fromCandidate ? candidates.categorical[i] : users.categorical[i]
            let present = !fromCandidate || schema.exists(categorical: i, on: surfaceName)
            if let offsets = source.offsets {
                var ids: [Int32] = [], out: [Int32] = [0]
                for n in 0..<N {
                    let r = fromCandidate ? n : Int(userIndex[n])
                    if present { ids.append(contentsOf: source.ids[Int(offsets[r])..<Int(offsets[r + 1])]) }
                    out.append(Int32(ids.count))
                }
                categorical.append(FeatureIDs(ids: ids, offsets: out))
            } else {
                categorical.append(FeatureIDs(ids: (0..<N).map { n in present ? source.ids[fromCandidate ? n : Int(userIndex[n])] : 0 }))
            }
        }
        var dense = [Float](repeating: 0, count: N * nDense)
        for n in 0..<N {
            for (j, f) in schema.dense.enumerated() {
                if f.side == .candidate {
                    dense[n * nDense + j] = schema.exists(dense: j, on: surfaceName) ? candidates.dense[n * nDense + j] : 0
                } else {
                    dense[n * nDense + j] = users.dense[Int(userIndex[n]) * nDense + j]
                }
            }
        }
        let batch = Batch(count: N, surface: [Int32](repeating: surface, count: N), categorical: categorical, dense: dense,
                          seqItems: L > 0 ? users.seqItems : [], seqActions: L > 0 ? users.seqActions : [],
                          userIndex: userIndex, labels: [Float](repeating: -1, count: N * T),
                          oracle: [Float](repeating: .nan, count: N * T))
        self.init(surface: Int(surface), batch: batch, counts: requests.map(\.candidates.count), users: requests.count)
    }
}

import Data
import Inference
import Schema

/// Merging independently encoded scoring bodies of one surface into one batch, so that
/// request-level broadcasting (SPEC 5) works across HTTP requests: users with equal encoded
/// user-side inputs in different bodies become one user of the merged batch.
enum BatchMerge {
    /// One key per user of `requests` (index u of `batch.seqItems`): the user's sequence and
    /// the user-side categorical ids and dense values of its first row — the inputs that
    /// `encodeRequests` compares to find equal users. A user with no candidate rows gets a
    /// key of its sequence and a marker (it feeds no row, so sharing it is harmless).
    static func userKeys(_ requests: EncodedRequests, schema: Schema) -> [[Int32]] {
        let batch = requests.batch, L = schema.sequence?.maxLength ?? 0, nDense = schema.dense.count
        let userIndex = batch.userIndex ?? (0..<Int32(batch.count)).map { $0 }
        var firstRow = [Int](repeating: -1, count: requests.users)
        for (n, u) in userIndex.enumerated() where firstRow[Int(u)] < 0 { firstRow[Int(u)] = n }
        return (0..<requests.users).map { u in
            var key: [Int32] = []
            if L > 0 {
                key.append(contentsOf: batch.seqItems[(u * L)..<((u + 1) * L)])
                key.append(contentsOf: batch.seqActions[(u * L)..<((u + 1) * L)])
            }
            let n = firstRow[u]
            guard n >= 0 else { key.append(Int32.min); return key }
            for (i, f) in schema.categorical.enumerated() where f.side == .user {
                let ids = batch.categorical[i]
                if let offsets = ids.offsets {
                    let slice = ids.ids[Int(offsets[n])..<Int(offsets[n + 1])]
                    key.append(Int32(slice.count))
                    key.append(contentsOf: slice)
                } else {
                    key.append(ids.ids[n])
                }
            }
            for (j, f) in schema.dense.enumerated() where f.side == .user {
                let x = batch.dense[n * nDense + j]
                key.append(Int32(bitPattern: (x == 0 ? 0 : x).bitPattern))
            }
            return key
        }
    }

    /// `parts` (all of one surface, encoded with `schema`) as one batch: rows in part order,
    /// requests in part order, users deduplicated by `keys` (from `userKeys`).
    static func merge(_ parts: [EncodedRequests], keys: [[[Int32]]], schema: Schema) -> EncodedRequests {
        precondition(!parts.isEmpty && parts.count == keys.count)
        if parts.count == 1 { return parts[0] }
        let L = schema.sequence?.maxLength ?? 0, F = schema.categorical.count
        var users: [[Int32]: Int32] = [:]
        var seqItems: [Int32] = [], seqActions: [Int32] = [], userIndex: [Int32] = []
        var surface: [Int32] = [], dense: [Float] = [], labels: [Float] = [], oracle: [Float] = []
        var ids = [[Int32]](repeating: [], count: F)
        var offsets: [[Int32]?] = schema.categorical.map { $0.multi == nil ? nil : [0] }
        var counts: [Int] = [], ignored = 0, count = 0
        for (p, part) in parts.enumerated() {
            let batch = part.batch
            var remap = [Int32](repeating: 0, count: part.users)
            for u in 0..<part.users {
                let key = keys[p][u]
                if let existing = users[key] { remap[u] = existing; continue }
                let id = Int32(users.count)
                users[key] = id
                remap[u] = id
                if L > 0 {
                    seqItems.append(contentsOf: batch.seqItems[(u * L)..<((u + 1) * L)])
                    seqActions.append(contentsOf: batch.seqActions[(u * L)..<((u + 1) * L)])
                }
            }
            let partIndex = batch.userIndex ?? (0..<Int32(batch.count)).map { $0 }
            userIndex.append(contentsOf: partIndex.map { remap[Int($0)] })
            for i in 0..<F {
                let source = batch.categorical[i]
                if let sourceOffsets = source.offsets {
                    let base = Int32(ids[i].count)
                    ids[i].append(contentsOf: source.ids)
                    offsets[i]!.append(contentsOf: sourceOffsets.dropFirst().map { $0 + base })
                } else {
                    ids[i].append(contentsOf: source.ids)
                }
            }
            surface.append(contentsOf: batch.surface)
            dense.append(contentsOf: batch.dense)
            labels.append(contentsOf: batch.labels)
            oracle.append(contentsOf: batch.oracle)
            counts.append(contentsOf: part.counts)
            ignored += part.ignoredKeys
            count += batch.count
        }
        let batch = Batch(count: count, surface: surface,
                          categorical: (0..<F).map { FeatureIDs(ids: ids[$0], offsets: offsets[$0]) },
                          dense: dense, seqItems: seqItems, seqActions: seqActions, userIndex: userIndex,
                          labels: labels, oracle: oracle)
        return EncodedRequests(surface: parts[0].surface, batch: batch, counts: counts, users: users.count,
                               ignoredKeys: ignored)
    }

    /// The scores of each part from the scores of their merge (same order as `merge`).
    static func split(_ scored: ScoredRequests, parts: [EncodedRequests]) -> [PartScores] {
        let K = scored.tasks.count
        var row = 0
        return parts.map { part in
            let n = part.counts.reduce(0, +)
            defer { row += n }
            return PartScores(tasks: scored.tasks, counts: part.counts,
                              probabilities: Array(scored.probabilities[(row * K)..<((row + n) * K)]))
        }
    }
}

/// The scores of one HTTP request out of a micro-batch: `probabilities` [N, K] row-major
/// for its N = sum(`counts`) candidates and the K `tasks` (schema order).
struct PartScores: Sendable {
    var tasks: [String]
    var counts: [Int]
    var probabilities: [Double]
}

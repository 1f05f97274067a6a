import Data
import Foundation
import Inference
import Model
import Schema
import TestSupport
import Testing

/// Request-level broadcasting (SPEC 5): scores with user-side work shared per unique user
/// equal scoring every (user, candidate) row alone, for every fusion mode.
@Suite struct BroadcastTests {
    /// Requests over the fixture's batch.csv: per surface, users u with candidates taken
    /// from every surface's rows (so one user meets many candidates).
    static func requests(_ rows: EncodedRows, surface: Int32) -> [(user: Int, candidates: [Int])] {
        let users = (0..<rows.count).filter { rows.surface[$0] == surface }
        return users.enumerated().map { q, u in (u, (0..<rows.count).filter { ($0 + q) % 3 != 0 }) }
    }

    @Test(arguments: ["early_lowrank", "late_fullrank", "append_fusion", "multi_exclusive", "empty_sequences", "long_early", "long_append"])
    func broadcastEqualsEachRowAlone(fixture: String) throws {
        let model = try fixtureModel(fixture)
        let rows = try fixtureRows(fixture, config: model.config)
        let L = model.config.schema.sequence?.maxLength ?? 0
        let engine = InferenceEngine(model: model, maxUniqueUsers: 64)
        var worst = 0.0, scoredRows = 0
        for s in 0..<Int32(model.config.schema.surfaces.count) {
            let encoded = EncodedRequests(rows: rows, requests: Self.requests(rows, surface: s))
            #expect(encoded.users > 1 && encoded.batch.count > 3 * encoded.users)
            let broadcast = try engine.score(encoded, broadcast: true)
            let expanded = try engine.score(encoded, broadcast: false)
            worst = max(worst, maxAbsDiff(broadcast.probabilities, expanded.probabilities))
            // early fusion on 3 threads scores a shard of the candidates per thread: the same scores
            let sharded = try withThreads(3) { try engine.score(encoded, broadcast: true) }
            worst = max(worst, maxAbsDiff(broadcast.probabilities, sharded.probabilities))
            // every (user, candidate) row as its own batch of one
            var single = encoded
            single.batch.userIndex = nil
            single.batch.seqItems = []
            single.batch.seqActions = []
            for n in 0..<encoded.batch.count {
                let u = Int(encoded.batch.userIndex![n])
                single.batch.seqItems.append(contentsOf: encoded.batch.seqItems[(u * L)..<((u + 1) * L)])
                single.batch.seqActions.append(contentsOf: encoded.batch.seqActions[(u * L)..<((u + 1) * L)])
            }
            let K = broadcast.tasks.count
            for n in 0..<encoded.batch.count {
                let one = EncodedRequests(surface: Int(s), batch: single.batch.rows(n ..< n + 1, maxLength: L), counts: [1], users: 1)
                let alone = try engine.score(one)
                worst = max(worst, maxAbsDiff(alone.probabilities, Array(broadcast.probabilities[(n * K)..<((n + 1) * K)])))
                scoredRows += 1
            }
        }
        print("\(fixture) (\(model.config.model.sequence?.fusion.rawValue ?? "no sequence")): \(scoredRows) rows, "
              + "broadcast vs alone max abs diff \(worst)")
        #expect(scoredRows > 100)
        #expect(worst <= 1e-6)
    }

    @Test func aBatchOverTheBoundIsRefusedNaming413() throws {
        let model = try fixtureModel("late_fullrank")
        let engine = InferenceEngine(model: model, maxUniqueUsers: 2)
        let body = #"{"surface": "search", "requests": [{"user": {"user_id": "a"}, "candidates": [{"ad_id": "x"}]}, "#
            + #"{"user": {"user_id": "b"}, "candidates": [{}]}, {"user": {"user_id": "a"}, "candidates": [{}]}, "#
            + #"{"user": {"user_id": "c"}, "candidates": [{}]}]}"#
        #expect(throws: RequestError("requests[3].user", "more than max_unique_users = 2 distinct users in one batch; "
                                     + "expected at most that many (split the batch)", status: 413)) {
            try engine.score(body: Data(body.utf8))
        }
        // the same three users encoded without a bound, then handed to the engine
        let encoded = try encodeRequests(Data(body.utf8), config: model.config)
        #expect(encoded.users == 3)
        do {
            _ = try engine.score(encoded)
            Issue.record("3 users scored with max_unique_users = 2")
        } catch let error as RequestError {
            #expect(error.status == 413)
            #expect(error.description.contains("max_unique_users = 2"))
        }
        // at the bound: scored
        let two = try engine.score(body: Data(body.replacingOccurrences(of: #""c""#, with: #""b""#).utf8))
        #expect(two.counts == [1, 1, 1, 1] && two.probabilities.allSatisfy { $0 > 0 && $0 < 1 })
    }
}

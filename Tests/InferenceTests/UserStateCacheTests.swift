import Data
import Foundation
import Inference
import Model
import Schema
import TestSupport
import Testing

/// The user-state cache across requests (late and append fusion): a batch served from the
/// cache gives the same bits as the batch that filled it; a batch mixing cached and new users,
/// and one after evictions, the same scores as without a cache up to the float rounding that
/// a batch's composition moves anyway (the products over a different number of users' tokens:
/// within 1e-6, as broadcasting); the serving order of work (every user's blocks, then every
/// candidate's) equals the traced forward's interleaved order bit for bit.
@Suite struct UserStateCacheTests {
    static let fixtures = ["late_fullrank", "append_fusion", "empty_sequences", "long_append"]

    /// One surface's requests of the fixture: for each q in `range`, the surface's user q (cycling)
    /// with a third of all rows as candidates.
    static func requests(_ rows: EncodedRows, surface: Int32, users range: Range<Int>) -> EncodedRequests {
        let users = (0..<rows.count).filter { rows.surface[$0] == surface }
        let picked = range.map { users[$0 % users.count] }
        return EncodedRequests(rows: rows, requests: picked.enumerated().map { q, u in (u, (0..<rows.count).filter { ($0 + q) % 3 == 0 }) })
    }

    @Test(arguments: fixtures)
    func scoresAreTheSameColdWarmAndAfterEviction(fixture: String) throws {
        let model = try fixtureModel(fixture)
        let rows = try fixtureRows(fixture, config: model.config)
        let plain = InferenceEngine(model: model, maxUniqueUsers: 64)
        let cache = UserStateCache(budgetBytes: 64 << 20)
        let cached = InferenceEngine(model: model, maxUniqueUsers: 64, userStates: cache)
        #expect(cached.userStates != nil)
        var batches = 0, worst = 0.0
        for s in 0..<Int32(model.config.schema.surfaces.count) {
            let users = (0..<rows.count).filter { rows.surface[$0] == s }.count
            guard users >= 2 else { continue }
            // cold (every user new): the same bits as without a cache; the same batch again, every
            // user from the cache: the same bits; then the first half cached and the second new
            let half = Self.requests(rows, surface: s, users: 0..<(users / 2))
            let expected = try plain.score(half).probabilities
            let before = cache.statistics
            #expect(try cached.score(half).probabilities == expected, "\(fixture) surface \(s): cold cache")
            #expect(try cached.score(half).probabilities == expected, "\(fixture) surface \(s): warm cache")
            let after = cache.statistics
            #expect(after.hits + after.misses - before.hits - before.misses == 2 * half.users && after.hits - before.hits >= half.users)
            let all = Self.requests(rows, surface: s, users: 0..<users)
            worst = max(worst, maxAbsDiff(try cached.score(all).probabilities, try plain.score(all).probabilities))
            batches += 1
        }
        #expect(batches >= 1)
        #expect(worst <= 1e-6)
        let stats = cache.statistics
        // users with the same sequence (e.g. empty ones) share one entry
        #expect(stats.hits > 0 && stats.misses > 0 && stats.evictions == 0 && stats.entries >= 1 && stats.entries <= stats.misses)

        // a budget of about two users: entries are evicted, least recently used first, and scores stay the same
        let entryBytes = stats.bytes / stats.entries
        let small = UserStateCache(budgetBytes: 2 * entryBytes + entryBytes / 2)
        let tight = InferenceEngine(model: model, maxUniqueUsers: 64, userStates: small)
        for s in 0..<Int32(model.config.schema.surfaces.count) {
            let users = (0..<rows.count).filter { rows.surface[$0] == s }.count
            guard users >= 2 else { continue }
            for range in [0..<users, 0..<users, 1..<(users + 1)] {
                let encoded = Self.requests(rows, surface: s, users: range)
                worst = max(worst, maxAbsDiff(try tight.score(encoded).probabilities, try plain.score(encoded).probabilities))
                #expect(small.statistics.bytes <= small.budgetBytes)
            }
        }
        #expect(worst <= 1e-6)
        #expect(stats.entries <= 2 || small.statistics.evictions > 0)
        print("\(fixture): \(stats.entries) users cached, \(stats.bytes) bytes, \(stats.hits) hits, max abs diff \(worst); "
              + "budget \(small.budgetBytes) bytes: \(small.statistics.evictions) evictions")
    }

    @Test(arguments: fixtures)
    func servingOrderEqualsTheTracedForward(fixture: String) throws {
        let model = try fixtureModel(fixture)
        let rows = try fixtureRows(fixture, config: model.config)
        let encoded = Self.requests(rows, surface: rows.surface[0], users: 0..<8)
        let served = model(encoded.batch)                  // no trace: user side first (SequenceEncoder.serve)
        let traced = model(encoded.batch, trace: Trace())  // the training forward's interleaved order
        #expect(served.count == traced.count)
        for (a, b) in zip(served, traced) {
            #expect(a.rows == b.rows)
            for (x, y) in zip(a.logits, b.logits) { #expect(x.task == y.task && x.logit.values == y.logit.values) }
        }
    }

    @Test func earlyFusionKeepsNoCache() throws {
        let model = try fixtureModel("early_lowrank")
        #expect(InferenceEngine(model: model, userStates: UserStateCache(budgetBytes: 1 << 20)).userStates == nil)
    }

    @Test func aNewActionIsANewKey() throws {
        let model = try fixtureModel("append_fusion")
        let rows = try fixtureRows("append_fusion", config: model.config)
        let L = model.config.schema.sequence!.maxLength
        let cache = UserStateCache(budgetBytes: 64 << 20)
        let engine = InferenceEngine(model: model, userStates: cache)
        let plain = InferenceEngine(model: model)
        var encoded = Self.requests(rows, surface: rows.surface[0], users: 0..<1)
        _ = try engine.score(encoded)
        // the same user with one more (or one other) action: not served from the cache
        let n = SequenceEncoder.lengths(actions: encoded.batch.seqActions, length: L)[0]
        #expect(n > 0)
        encoded.batch.seqActions[Int(n) - 1] = encoded.batch.seqActions[Int(n) - 1] == 1 ? 2 : 1
        let before = cache.statistics
        #expect(try engine.score(encoded).probabilities == plain.score(encoded).probabilities)
        #expect(cache.statistics.misses == before.misses + 1 && cache.statistics.hits == before.hits)
    }
}

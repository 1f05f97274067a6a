import Foundation
import Inference
import Model
@testable import Serving
import TestSupport
import XCTest

final class ServingTests: XCTestCase {
    // MARK: in-process

    /// Merged micro-batches (users shared across bodies) score every body as it scores alone.
    func testMergedBatchesScoreAsAlone() throws {
        let model = try BraidModel.load(directory: Fixtures.url("late_fullrank"))
        let engine = InferenceEngine(model: model, maxUniqueUsers: 64)
        let schema = model.config.schema
        let bodies = [scoreBody(users: 2, firstUser: 0, candidates: 3), scoreBody(users: 3, firstUser: 1, candidates: 2),
                      scoreBody(users: 1, firstUser: 9, candidates: 0), scoreBody(users: 1, firstUser: 0, candidates: 5)]
        let parts = try bodies.map { try encodeRequests(Data($0.utf8), config: model.config, maxUniqueUsers: 64) }
        let keys = parts.map { BatchMerge.userKeys($0, schema: schema) }
        let merged = BatchMerge.merge(parts, keys: keys, schema: schema)
        XCTAssertEqual(merged.users, 5, "u0..u3 and u9, shared across bodies")
        XCTAssertEqual(merged.batch.count, 6 + 6 + 0 + 5)
        let split = BatchMerge.split(try engine.score(merged), parts: parts)
        for (part, scored) in zip(parts, split) {
            let alone = try engine.score(part)
            XCTAssertEqual(scored.counts, alone.counts)
            XCTAssertLessThan(maxAbsDiff(scored.probabilities, alone.probabilities), 1e-6)
        }
    }

    /// A few thousand random and mutated bodies: every answer is 200, 400 or 413 with JSON.
    func testFuzzedBodiesNeverCrash() async throws {
        let dirs = try ModelDirs()
        let state = ServingState(configuration: ServingConfiguration(models: [dirs.v1.path], maxUniqueUsers: 2,
                                                                     batchWaitMicroseconds: 0))
        try await state.loadStartModels()
        var rng = TestRandom(seed: 7)
        let seeds = [scoreBody(users: 1), scoreBody(users: 2, candidates: 1), scoreBody(surface: "search", users: 3),
                     #"{"surface": "home_feed", "requests": []}"#]
        let alphabet = Array(#"{}[]",:0123456789-+.eE"abcnulltruefalse \#\u{0}\u{7f}é"#.utf8)
        var statuses: [Int: Int] = [:]
        for i in 0..<3000 {
            var bytes = Array(seeds[i % seeds.count].utf8)
            if i % 10 == 9 {
                bytes = (0..<rng.below(64)).map { _ in rng.below(5) == 0 ? UInt8(rng.below(256)) : alphabet[rng.below(alphabet.count)] }
            } else {
                for _ in 0..<(1 + rng.below(4)) {
                    let at = rng.below(bytes.count + 1)
                    switch rng.below(4) {
                    case 0: if at < bytes.count { bytes.remove(at: at) }
                    case 1: bytes.insert(alphabet[rng.below(alphabet.count)], at: at)
                    case 2: if at < bytes.count { bytes[at] = alphabet[rng.below(alphabet.count)] }
                    default:  // duplicate a slice (deeper nesting, repeated keys)
                        let end = min(bytes.count, at + rng.below(40))
                        bytes.insert(contentsOf: bytes[at..<end], at: at)
                    }
                }
            }
            let (reply, _) = await state.score(body: Data(bytes))
            statuses[reply.status, default: 0] += 1
            XCTAssert([200, 400, 413].contains(reply.status), "status \(reply.status) for \(String(decoding: bytes, as: UTF8.self))")
            XCTAssertNotNil(try? JSONSerialization.jsonObject(with: Data(reply.body.utf8)), reply.body)
        }
        XCTAssertGreaterThan(statuses[200] ?? 0, 0)
        XCTAssertGreaterThan(statuses[400] ?? 0, 0)
        for depth in [100, 100_000] {  // deep nesting is a 400, not a stack overflow
            let (reply, _) = await state.score(body: Data((String(repeating: "[", count: depth)).utf8))
            XCTAssertEqual(reply.status, 400)
        }
    }

    // MARK: over HTTP on 127.0.0.1

    func testRoutesOverHTTP() async throws {
        let dirs = try ModelDirs()
        let state = ServingState(configuration: ServingConfiguration(models: [dirs.v1.path], host: "127.0.0.1", port: 0,
                                                                     maxUniqueUsers: 3, maxBodyBytes: 64 << 10))
        try await withServer(state) { port in
            let client = Client(port: port)
            var r = try await client.request("GET", "/healthz")
            XCTAssertEqual(r.status, 200)
            r = try await client.request("GET", "/readyz")
            XCTAssertEqual(r.status, 503, "not ready before the models are loaded")
            r = try await client.request("POST", "/v1/score", body: scoreBody())
            XCTAssertEqual(r.status, 503)

            try await state.loadStartModels()
            r = try await client.request("GET", "/readyz")
            XCTAssertEqual(r.status, 200)

            // score: one list per request, one {task: p} per candidate; equal to the engine's
            r = try await client.request("POST", "/v1/score", body: scoreBody(users: 2, candidates: 3))
            XCTAssertEqual(r.status, 200, r.text)
            let reply = try XCTUnwrap(r.json as? [String: Any])
            let modelInfo = try XCTUnwrap(reply["model"] as? [String: String])
            XCTAssertEqual(modelInfo["surface"], "home_feed")
            XCTAssertTrue(modelInfo["version"]!.hasPrefix("v1-"), modelInfo["version"]!)
            let scores = try XCTUnwrap(reply["scores"] as? [[[String: Double]]])
            XCTAssertEqual(scores.map(\.count), [3, 3])
            let engine = InferenceEngine(model: try BraidModel.load(directory: dirs.v1), maxUniqueUsers: 3)
            let expected = try engine.score(body: Data(scoreBody(users: 2, candidates: 3).utf8))
            for r in 0..<2 {
                for (c, row) in expected.scores(request: r).enumerated() {
                    XCTAssertEqual(Set(row.keys), ["click", "save"])
                    for (task, p) in row { XCTAssertEqual(scores[r][c][task]!, p, accuracy: 1e-12) }
                }
            }

            // 400s name what and where
            let bad: [(String, String)] = [
                ("{\"surface\": ", "body: malformed JSON"),
                (#"{"surface": "nope", "requests": []}"#, "surface: unknown surface 'nope'"),
                (#"{"surface": "home_feed", "requests": [], "extra": 1}"#, "body: unknown keys ['extra']"),
                (#"{"surface": "home_feed", "requests": [{"user": {"seq_items": ["a"], "seq_actions": [1, 2]}, "candidates": []}]}"#,
                 "requests[0].user.seq_actions: 2 actions but 1 items"),
                (#"{"surface": "home_feed", "requests": [{"user": {"seq_items": ["a"], "seq_actions": [9]}, "candidates": []}]}"#,
                 "requests[0].user.seq_actions[0]: 9; expected an integer in [1, 5)"),
                (#"{"surface": "home_feed", "requests": [{"candidates": [{"ad_hist_ctr": "x"}]}]}"#,
                 "requests[0].candidates[0].ad_hist_ctr: a string; expected a JSON number"),
                ("[1, 2]", "body: an array"),
            ]
            for (body, prefix) in bad {
                r = try await client.request("POST", "/v1/score", body: body)
                XCTAssertEqual(r.status, 400, body)
                let message = errorMessage(r.json) ?? "<no error message: \(r.text)>"
                XCTAssertTrue(message.hasPrefix(prefix), "\(message) should start with \(prefix)")
            }
            // 413: over max_unique_users (3), and over the body limit (64 KiB)
            r = try await client.request("POST", "/v1/score", body: scoreBody(users: 4, candidates: 1))
            XCTAssertEqual(r.status, 413)
            XCTAssertTrue(errorMessage(r.json)?.contains("max_unique_users = 3") ?? false, r.text)
            r = try await client.request("POST", "/v1/score", body: scoreBody(users: 1, candidates: 2000))
            XCTAssertEqual(r.status, 413, r.text)
            XCTAssertTrue(errorMessage(r.json)?.contains("at most 65536 bytes") ?? false, r.text)
            // ignored keys are counted, not errors
            r = try await client.request("POST", "/v1/score",
                                         body: #"{"surface": "search", "requests": [{"user": {"new_feature": 1}, "candidates": [{"ad_id": 3}]}]}"#)
            XCTAssertEqual(r.status, 200, r.text)

            r = try await client.request("GET", "/v1/models")
            XCTAssertEqual(r.status, 200)
            let models = try XCTUnwrap((r.json as? [String: Any])?["models"] as? [String: String])
            XCTAssertEqual(Set(models.keys), ["home_feed", "search", "related_pins"])

            r = try await client.request("GET", "/metrics")
            XCTAssertEqual(r.status, 200)
            for line in [#"braid_http_requests_total{route="/v1/score",surface="home_feed",status="200"} 1"#,
                         #"braid_score_errors_total{surface="unknown",status="400"} 3"#,
                         #"braid_score_errors_total{surface="home_feed",status="413"} 1"#,
                         #"braid_ignored_keys_total{surface="search"} 1"#,
                         #"braid_batch_unique_users_bucket{surface="home_feed",le="2.0"} 1"#,
                         #"braid_http_request_duration_seconds_count{route="/v1/score",surface="home_feed"} 6"#,
                         #"braid_model_info{surface="search",version="\#(models["search"]!)"} 1.0"#,
                         #"braid_predicted_rows_total{surface="home_feed",task="click",version="\#(models["home_feed"]!)",role="live"} 6"#,
                         #"braid_http_requests_in_flight{route="/v1/score"} 0.0"#,
                         "# TYPE braid_http_request_duration_seconds histogram"] {
                XCTAssertTrue(r.text.contains(line + "\n"), "missing metric line \(line) in\n\(r.text)")
            }
            // the user-state cache (late fusion, on by default): the scored users missed, then were kept
            let version = models["home_feed"]!
            XCTAssertGreaterThanOrEqual(metricValue(r.text, #"braid_user_cache_misses_total{version="\#(version)"}"#) ?? 0, 2, r.text)
            XCTAssertGreaterThanOrEqual(metricValue(r.text, #"braid_user_cache_entries{version="\#(version)"}"#) ?? 0, 2, r.text)
            XCTAssertGreaterThan(metricValue(r.text, #"braid_user_cache_bytes{version="\#(version)"}"#) ?? 0, 0, r.text)
            // mean predicted probability = sum / rows: the sum is that of the scores answered
            let predictedSum = metricValue(r.text, #"braid_predicted_probability_sum{surface="home_feed",task="click",version="\#(models["home_feed"]!)",role="live"}"#)
            XCTAssertEqual(predictedSum ?? -1, scores.flatMap { $0.map { $0["click"]! } }.reduce(0, +), accuracy: 1e-9)
            // no admin routes without a token; unknown paths 404, other methods 405, both JSON errors
            r = try await client.request("POST", "/admin/rollback", body: #"{"surface": "search"}"#)
            XCTAssertEqual(r.status, 404)
            XCTAssertTrue(errorMessage(r.json)?.hasPrefix("POST /admin/rollback: no such route") ?? false, r.text)
            r = try await client.request("GET", "/v1/score")
            XCTAssertEqual(r.status, 405)
            XCTAssertEqual(errorMessage(r.json), "GET /v1/score: method not allowed; expected POST", r.text)
        }
    }

    /// Concurrent requests merge into micro-batches; a neighbour over max_unique_users gets
    /// 413 alone; reload and rollback while requests run fail none of them.
    func testReloadAndRollbackUnderLoad() async throws {
        let dirs = try ModelDirs()
        let state = ServingState(configuration: ServingConfiguration(models: [dirs.v1.path], host: "127.0.0.1", port: 0,
                                                                     maxUniqueUsers: 4, adminToken: "s3cret"))
        try await state.loadStartModels()
        let v1 = state.versions["home_feed"]!
        try await withServer(state) { port in
            let admin = Client(port: port)
            let auth = ["Authorization": "Bearer s3cret"]
            var r = try await admin.request("POST", "/admin/rollback", body: #"{"surface": "home_feed"}"#)
            XCTAssertEqual(r.status, 401, "no token")
            r = try await admin.request("POST", "/admin/rollback", body: #"{"surface": "home_feed"}"#, headers: auth)
            XCTAssertEqual(r.status, 409, "nothing to roll back to: \(r.text)")
            r = try await admin.request("POST", "/admin/reload", body: #"{"surface": "home_feed", "model": "/nonexistent"}"#, headers: auth)
            XCTAssertEqual(r.status, 400, r.text)

            let clients = 6, perClient = 30
            let results = try await withThrowingTaskGroup(of: [(Int, String?)].self) { group in
                for k in 0..<clients {
                    group.addTask {
                        let client = Client(port: port)
                        var out: [(Int, String?)] = []
                        for i in 0..<perClient {
                            let big = k == 0 && i % 5 == 0  // 5 users > max 4: refused alone
                            let r = try await client.request("POST", "/v1/score",
                                                             body: scoreBody(users: big ? 5 : 2, firstUser: k + i, candidates: 4))
                            let version = ((r.json as? [String: Any])?["model"] as? [String: String])?["version"]
                            out.append((big ? -r.status : r.status, version))
                        }
                        return out
                    }
                }
                group.addTask {
                    var out: [(Int, String?)] = []
                    for step in 0..<4 {
                        let r = step % 2 == 0
                            ? try await admin.request("POST", "/admin/reload",
                                                      body: #"{"surface": "home_feed", "model": "\#(dirs.v2.path)"}"#, headers: auth)
                            : try await admin.request("POST", "/admin/rollback", body: #"{"surface": "home_feed"}"#, headers: auth)
                        out.append((r.status == 200 ? 1000 : r.status, r.text))
                    }
                    return out
                }
                var all: [(Int, String?)] = []
                for try await part in group { all += part }
                return all
            }
            XCTAssertEqual(results.filter { $0.0 == 1000 }.count, 4, "reload, rollback, reload, rollback all succeed: \(results.filter { $0.0 > 400 && $0.0 != 1000 })")
            let scoring = results.filter { $0.0 < 1000 }
            XCTAssertEqual(scoring.count, clients * perClient)
            XCTAssertEqual(scoring.filter { $0.0 == -413 }.count, perClient / 5, "the big requests get 413")
            XCTAssertEqual(scoring.filter { $0.0 == 200 }.count, clients * perClient - perClient / 5,
                           "every other request succeeds: \(Set(scoring.map(\.0)))")
            let versions = Set(scoring.compactMap(\.1))
            XCTAssertTrue(versions.isSubset(of: [v1, state.versionsAfterReload(dirs.v2)]), "\(versions)")

            r = try await admin.request("GET", "/v1/models")
            XCTAssertEqual(((r.json as? [String: Any])?["models"] as? [String: String])?["home_feed"], v1, "rolled back to v1")
            r = try await admin.request("GET", "/metrics")
            XCTAssertTrue(r.text.contains(#"braid_model_lifecycle_total{action="reload",surface="home_feed",result="ok"} 2"#), r.text)
        }
    }
}

extension ServingState {
    /// The version name a model directory gets.
    func versionsAfterReload(_ url: URL) -> String { (try? LoadedModel.version(of: url.standardizedFileURL, name: url.lastPathComponent)) ?? "?" }
}

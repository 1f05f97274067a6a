import Data
import Foundation
import Inference
import Model
import Schema
import TestSupport
import Testing

/// SPEC 5 request encoding and scoring against the PyTorch reference: bodies scored by
/// `score_request` and bad bodies with `encode_request`'s messages, written by
/// scripts/fixtures/make_request_fixture.py into Tests/Fixtures/requests/requests.json.
@Suite struct RequestTests {
    static let fixture: [String: Any] = {
        let data = try! Fixtures.data("requests/requests.json")
        return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    }()
    static var cases: [[String: Any]] { fixture["cases"] as! [[String: Any]] }
    static var errors: [[String: Any]] { fixture["errors"] as! [[String: Any]] }

    @Test func scoresMatchTheReference() throws {
        var worst = 0.0, compared = 0
        for (index, c) in Self.cases.enumerated() {
            let model = try fixtureModel(c["fixture"] as! String)
            var config = model.config
            var calibration: [String: [String: PlattPair]] = [:]
            for (s, tasks) in c["calibration"] as! [String: [String: [String: Double]]] {
                calibration[s] = tasks.mapValues { PlattPair(a: $0["a"]!, b: $0["b"]!) }
            }
            config.calibration = calibration
            let engine = InferenceEngine(model: BraidModel(config: config, parameters: model.parameters), maxUniqueUsers: 64)
            let body = Data((c["body"] as! String).utf8)
            let encoded = try encodeRequests(body, config: config, maxUniqueUsers: 64)
            #expect(encoded.users == c["users"] as! Int, "case \(index): unique users")
            let scored = try engine.score(body: body)
            #expect(scored.ignoredKeys == c["ignored"] as! Int, "case \(index): ignored keys")
            let expected = c["scores"] as! [[[String: Double]]]
            #expect(scored.counts == expected.map(\.count), "case \(index): candidates per request")
            guard scored.counts == expected.map(\.count) else { continue }
            for (r, request) in expected.enumerated() {
                let got = scored.scores(request: r)
                for (k, candidate) in request.enumerated() {
                    #expect(Set(got[k].keys) == Set(candidate.keys), "case \(index) request \(r): tasks")
                    for (task, p) in candidate {
                        let d = abs((got[k][task] ?? .nan) - p)
                        worst = max(worst, d.isNaN ? .infinity : d)
                        compared += 1
                    }
                }
            }
        }
        print("request parity: \(compared) probabilities over \(Self.cases.count) bodies, max abs diff \(worst)")
        #expect(compared > 100)
        #expect(worst <= 2e-6)
    }

    @Test func errorsReadLikeTheReference() throws {
        for e in Self.errors {
            let model = try fixtureModel(e["fixture"] as! String)
            let bound = e["max_unique_users"] as? Int
            let body = Data((e["body"] as! String).utf8)
            do {
                _ = try encodeRequests(body, config: model.config, maxUniqueUsers: bound)
                Issue.record("no error for \(e["body"]!)")
            } catch let error as RequestError {
                #expect(error.description == e["message"] as! String)
                #expect(error.status == e["status"] as! Int)
            }
        }
        #expect(Self.errors.count >= 40)
    }

    @Test func integersAndNumbersStayApart() throws {
        // 1 is an integer (a category, an action), 1.0 a number (refused as either)
        let json = try RequestJSON.parse(Data(#"{"a": [1, 1.0, -0, 1e2, 123456789012345678901234567890, "\u00e9\ud83d\ude00"]}"#.utf8))
        guard case .object(_, let values) = json, case .array(let items)? = values["a"] else {
            Issue.record("not an object with an array: \(json)")
            return
        }
        #expect(items == [.integer("1"), .number(1.0), .integer("0"), .number(100), .integer("123456789012345678901234567890"),
                          .string("é😀")])
        #expect(RequestJSON.number(1e-5).pythonDescription == "1e-05")
        #expect(RequestJSON.number(1e16).pythonDescription == "1e+16")
        #expect(RequestJSON.number(9.5e15).pythonDescription == "9500000000000000.0")
        #expect(RequestJSON.number(0.1).pythonDescription == "0.1")
        // Foundation's JSONSerialization on Linux reads this as -0.1; strtod does not
        guard case .array(let numbers) = try RequestJSON.parse(Data("[-0.09999999999999999]".utf8)) else { return }
        #expect(numbers == [.number(-0.09999999999999999)])
    }
}

import Foundation
import Schema
import Testing
@testable import Metrics
import TestSupport

// MARK: - The reference's vectors (calib_metric_vectors.json)

private struct CalibrationCase: Decodable {
    struct Platt: Decodable { let a: Double, b: Double }
    struct Metrics: Decodable {
        let count: Int
        let auc, logloss, ne, calibration_ratio, ece: Double
        let oracle_auc, oracle_logloss: Double?
    }
    let logit: [Double]
    let y: [Double]
    let platt: Platt
    let metrics_of_sigmoid_logit: Metrics
}

private func calibrationCases() throws -> [CalibrationCase] {
    try JSONDecoder().decode([CalibrationCase].self, from: try Fixtures.data("calib_metric_vectors.json"))
}

private func relativeError(_ value: Double?, _ reference: Double) -> Double {
    guard let value else { return .infinity }
    return abs(value - reference) / max(abs(reference), 1e-300)
}

@Test(arguments: 0..<3)
func plattFitMatchesTheReference(caseIndex: Int) throws {
    let vector = try calibrationCases()[caseIndex]
    let fit = PlattPair.fit(logits: vector.logit, labels: vector.y)
    #expect(relativeError(fit.a, vector.platt.a) < 1e-9, "a = \(fit.a), reference \(vector.platt.a)")
    #expect(relativeError(fit.b, vector.platt.b) < 1e-9, "b = \(fit.b), reference \(vector.platt.b)")
}

@Test(arguments: 0..<3)
func metricsOfSigmoidLogitMatchTheReference(caseIndex: Int) throws {
    let vector = try calibrationCases()[caseIndex]
    let reference = vector.metrics_of_sigmoid_logit
    let p = vector.logit.map { 1 / (1 + exp(-$0)) }
    let metrics = MetricSet.compute(p: p, y: vector.y)
    #expect(metrics.count == reference.count)
    for (name, value, expected) in [("auc", metrics.auc, reference.auc), ("logloss", metrics.logloss, reference.logloss),
                                    ("ne", metrics.ne, reference.ne),
                                    ("calibration_ratio", metrics.calibrationRatio, reference.calibration_ratio),
                                    ("ece", metrics.ece, reference.ece)] {
        #expect(relativeError(value, expected) < 1e-12, "\(name) = \(String(describing: value)), reference \(expected)")
    }
    #expect(metrics.oracleAUC == nil && reference.oracle_auc == nil)
    #expect(metrics.oracleLogloss == nil && reference.oracle_logloss == nil)
}

// MARK: - Naive twins on random data with ties

/// Probabilities on a coarse grid (many ties) and labels drawn from them.
private func randomScores(count: Int, seed: UInt64, levels: Int) -> (p: [Double], y: [Double]) {
    var generator = TestRandom(seed: seed)
    var p: [Double] = [], y: [Double] = []
    for _ in 0..<count {
        let probability = Double(Int.random(in: 1..<levels, using: &generator)) / Double(levels)
        p.append(probability)
        y.append(Double.random(in: 0..<1, using: &generator) < probability ? 1 : 0)
    }
    return (p, y)
}

/// Every (positive, negative) pair: 1 if the positive scores higher, 1/2 on a tie.
private func pairwiseAUC(_ p: [Double], _ y: [Double]) -> Double? {
    var credit = 0.0, pairs = 0.0
    for i in p.indices where y[i] == 1 {
        for j in p.indices where y[j] == 0 {
            credit += p[i] > p[j] ? 1 : (p[i] == p[j] ? 0.5 : 0)
            pairs += 1
        }
    }
    return pairs > 0 ? credit / pairs : nil
}

/// Sort (p, index) pairs, cut into 20 runs whose sizes differ by at most one, larger runs first.
private func straightforwardECE(_ p: [Double], _ y: [Double]) -> Double {
    let order = p.indices.sorted { (p[$0], $0) < (p[$1], $1) }
    let n = p.count
    var total = 0.0
    for bin in 0..<20 {
        // np.array_split: bin b starts at b * (n / 20) + min(b, n % 20).
        let start = bin * (n / 20) + min(bin, n % 20)
        let end = (bin + 1) * (n / 20) + min(bin + 1, n % 20)
        if end == start { continue }
        let rows = order[start..<end]
        let meanP = rows.map { p[$0] }.reduce(0, +) / Double(rows.count)
        let meanY = rows.map { y[$0] }.reduce(0, +) / Double(rows.count)
        total += Double(rows.count) / Double(n) * abs(meanP - meanY)
    }
    return total
}

@Test(arguments: [(count: 1, seed: 1), (count: 7, seed: 2), (count: 41, seed: 3), (count: 500, seed: 4), (count: 2003, seed: 5)])
func auc_and_ece_equal_their_naive_twins(count: Int, seed: UInt64) {
    for levels in [3, 10, 1000] {
        let (p, y) = randomScores(count: count, seed: seed &* 31 &+ UInt64(levels), levels: levels)
        let fast = auc(probabilities: p, labels: y)
        let naive = pairwiseAUC(p, y)
        #expect((fast == nil) == (naive == nil))
        if let fast, let naive { #expect(abs(fast - naive) <= 1e-12, "n \(count) levels \(levels): \(fast) vs \(naive)") }
        let ece = expectedCalibrationError(probabilities: p, labels: y)!
        #expect(abs(ece - straightforwardECE(p, y)) <= 1e-12, "n \(count) levels \(levels)")
        var loss = 0.0
        for i in p.indices { loss -= y[i] == 1 ? log(p[i]) : log(1 - p[i]) }
        #expect(abs(logLoss(probabilities: p, labels: y)! - loss / Double(count)) <= 1e-12 * loss)
    }
}

@Test func eceBinsFollowArraySplitAndAStableSort() {
    // 21 tied rows: array_split gives the first bin 2 rows, the other 19 one row each, and
    // only the stable order decides which rows share the first bin: rows 0 and 1.
    let p = [Double](repeating: 0.5, count: 21)
    var y = [Double](repeating: 0, count: 21)
    y[0] = 1
    // Bin {0, 1} has mean label 0.5 (gap 0); the 19 single rows have gap 0.5 each.
    #expect(abs(expectedCalibrationError(probabilities: p, labels: y)! - 19 * 0.5 / 21) < 1e-15)
    // The positive in the last row sits alone: every bin has gap 0.5. (Bins larger at the end,
    // or a sort that moved row 20, would pair it with a negative.)
    y[0] = 0; y[20] = 1
    #expect(abs(expectedCalibrationError(probabilities: p, labels: y)! - 0.5) < 1e-15)
}

@Test func aucGivesTiesHalfCredit() {
    #expect(auc(probabilities: [0.5, 0.5], labels: [1, 0]) == 0.5)
    #expect(auc(probabilities: [0.2, 0.8, 0.8, 0.9], labels: [0, 1, 0, 1]) == 0.875)
    #expect(auc(probabilities: [0.1, 0.9], labels: [1, 1]) == nil)
    #expect(auc(probabilities: [], labels: []) == nil)
}

@Test func logLossClipsProbabilities() {
    #expect(logLoss(probabilities: [0], labels: [1]) == -log(1e-15))
    #expect(logLoss(probabilities: [1], labels: [0]) == -log(1 - (1 - 1e-15)))
    #expect(logLoss(probabilities: [1, 0], labels: [1, 0])! < 1e-14)
}

// MARK: - MetricSet: undefined values and the oracle

@Test func undefinedMetricsAreNil() {
    let empty = MetricSet.compute(p: [], y: [], oracle: [])
    #expect(empty == MetricSet(count: 0, auc: nil, logloss: nil, ne: nil, calibrationRatio: nil, ece: nil,
                               oracleAUC: nil, oracleLogloss: nil))
    let negativesOnly = MetricSet.compute(p: [0.2, 0.4], y: [0, 0])
    #expect(negativesOnly.count == 2 && negativesOnly.auc == nil && negativesOnly.ne == nil
            && negativesOnly.calibrationRatio == nil)
    #expect(negativesOnly.logloss != nil && negativesOnly.ece != nil)
    let positivesOnly = MetricSet.compute(p: [0.2, 0.4], y: [1, 1])
    #expect(positivesOnly.auc == nil && positivesOnly.ne == nil)
    #expect(abs(positivesOnly.calibrationRatio! - 0.3) < 1e-15)
}

@Test func oracleMetricsNeedAnOracleForEveryRow() {
    let p = [0.1, 0.7, 0.4, 0.8], y: [Double] = [0, 1, 0, 1], oracle = [0.2, 0.6, 0.5, 0.9]
    let complete = MetricSet.compute(p: p, y: y, oracle: oracle)
    #expect(complete.oracleAUC == auc(probabilities: oracle, labels: y))
    #expect(complete.oracleLogloss == logLoss(probabilities: oracle, labels: y))
    #expect(complete.auc == 1 && complete.oracleAUC == 1)
    let partial = MetricSet.compute(p: p, y: y, oracle: [0.2, .nan, 0.5, 0.9])
    #expect(partial.oracleAUC == nil && partial.oracleLogloss == nil)
    #expect(partial.auc == complete.auc)
    #expect(MetricSet.compute(p: p, y: y).oracleAUC == nil)
    let ne = complete.logloss! / -(0.5 * log(0.5) * 2)
    #expect(abs(complete.ne! - ne) < 1e-15)
    #expect(abs(complete.calibrationRatio! - 1.0) < 1e-15)
}

// MARK: - Platt edge cases

@Test func plattKeepsTheIdentityForOneClassOrNoRows() {
    #expect(PlattPair.fit(logits: [], labels: []) == .identity)
    #expect(PlattPair.fit(logits: [0.3, -2, 5], labels: [1, 1, 1]) == .identity)
    #expect(PlattPair.fit(logits: [0.3, -2, 5], labels: [0, 0, 0]) == .identity)
}

@Test func plattFitIsAStationaryPointOfTheLogLoss() throws {
    let vector = try calibrationCases()[1]
    let fit = PlattPair.fit(logits: vector.logit, labels: vector.y)
    var gradientA = 0.0, gradientB = 0.0
    for (x, y) in zip(vector.logit, vector.y) {
        let residual = fit.probability(logit: x) - y
        gradientA += residual * x
        gradientB += residual
    }
    #expect(abs(gradientA) < 1e-8 && abs(gradientB) < 1e-8, "gradient (\(gradientA), \(gradientB))")
}

// MARK: - JSON

@Test func metricSetJSONHasTheSpecKeysInOrderWithNulls() {
    let metrics = MetricSet(count: 3, auc: 0.75, logloss: 0.5, ne: nil, calibrationRatio: 1e-05, ece: 0.1,
                            oracleAUC: nil, oracleLogloss: nil)
    #expect(metrics.json.serialized() == #"{"count":3,"auc":0.75,"logloss":0.5,"ne":null,"calibration_ratio":1e-05,"ece":0.1,"oracle_auc":null,"oracle_logloss":null}"#)
}

@Test func reportListsEverySurfaceAndTaskInOrderAndPoolsOverall() throws {
    var pairs = ScoredPairs()
    // search/click and home_feed/click, save only on home_feed; related_pins unlabelled.
    let rows: [(String, String, Double, Double)] = [
        ("search", "click", 0.9, 1), ("search", "click", 0.2, 0), ("home_feed", "click", 0.6, 1),
        ("home_feed", "click", 0.7, 0), ("home_feed", "save", 0.3, 1), ("home_feed", "save", 0.1, 0),
    ]
    for (surface, task, p, y) in rows { pairs.append(surface: surface, task: task, probability: p, label: y, oracle: p) }
    let report = MetricsReport(pairs: pairs, surfaceTasks: [
        ("home_feed", ["click", "save"]), ("search", ["click"]), ("related_pins", ["click", "hide"]),
    ])
    #expect(report.overall.map(\.task) == ["click", "save", "hide"])
    #expect(report.surfaces.map(\.surface) == ["home_feed", "search", "related_pins"])
    let overallClick = report.overall[0].metrics
    #expect(overallClick == MetricSet.compute(p: [0.9, 0.2, 0.6, 0.7], y: [1, 0, 1, 0], oracle: [0.9, 0.2, 0.6, 0.7]))
    #expect(overallClick.auc == 0.75)
    #expect(report.surfaces[0].tasks[0].metrics.auc == 0)
    #expect(report.surfaces[1].tasks[0].metrics.auc == 1)
    #expect(report.overall[2].metrics.count == 0)
    let unlabelled = report.surfaces[2].tasks.map(\.metrics)
    #expect(unlabelled.allSatisfy { $0.count == 0 && $0.auc == nil && $0.ece == nil && $0.oracleAUC == nil })
    // The text reads back into the SPEC 6 shape, keys in order.
    let text = report.json.serialized(indent: 1)
    #expect(text.hasPrefix("{\n \"overall\": {\n  \"click\": {\n   \"count\": 4,\n   \"auc\": 0.75,"))
    let order = ["\"overall\"", "\"click\"", "\"save\"", "\"hide\"", "\"surfaces\"", "\"home_feed\"", "\"search\"",
                 "\"related_pins\""]
    let positions = order.map { text.range(of: $0)!.lowerBound }
    #expect(positions == positions.sorted())
    let parsed = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: [String: Any]])
    let related = try #require(parsed["surfaces"]?["related_pins"] as? [String: [String: Any]])
    #expect(related["hide"]?["count"] as? Int == 0)
    #expect(related["hide"]?["auc"] is NSNull)
    #expect(Set(related["click"]!.keys) == ["count", "auc", "logloss", "ne", "calibration_ratio", "ece",
                                            "oracle_auc", "oracle_logloss"])
}

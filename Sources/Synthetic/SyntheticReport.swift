import Foundation
import TextTable

/// Statistics of one generated data set: rows per split, and per surface the row
/// count, base rates and the AUC of the true probabilities (the oracle AUC no model
/// can beat in expectation).
public struct SyntheticReport: Sendable {
    /// Statistics of one surface over all three splits.
    public struct SurfaceStatistics: Sendable {
        /// Surface name.
        public let surface: String
        /// Rows of this surface.
        public let rows: Int
        /// Mean click label over labelled rows.
        public let clickRate: Double
        /// Mean p_click.
        public let meanClickProbability: Double
        /// AUC of p_click against the click labels.
        public let clickOracleAUC: Double?
        /// AUC of the true click probability with the sequence term removed: how much
        /// of the ranking only the user's recent actions can explain.
        public let clickOracleAUCWithoutSequence: Double?
        /// Mean save label, nil on surfaces without the save task.
        public let saveRate: Double?
        /// AUC of p_save against the save labels, nil without the save task.
        public let saveOracleAUC: Double?
    }

    /// Rows in train.csv, valid.csv, test.csv.
    public let splitRows: [Int]
    /// Bytes of train.csv, valid.csv, test.csv.
    public let splitBytes: [Int]
    /// Per surface, in schema order.
    public let surfaces: [SurfaceStatistics]
    /// Users, ads and advertisers generated.
    public let users: Int, ads: Int, advertisers: Int
    /// Wall time of generating and writing the CSV files.
    public let seconds: Double

    /// Rows written per second.
    public var rowsPerSecond: Double { Double(splitRows.reduce(0, +)) / max(seconds, 1e-9) }

    /// Time, speed and size of the run (not in README.txt, which stays identical for a seed).
    public var timing: String {
        var buffer = ByteBuffer()
        buffer.append("generated in ")
        buffer.appendFixed(seconds, decimals: 2)
        buffer.append(" s, \(Int(rowsPerSecond)) rows/s, ")
        buffer.appendFixed(Double(splitBytes.reduce(0, +)) / 1e6, decimals: 1)
        buffer.append(" MB")
        return String(decoding: buffer.bytes, as: UTF8.self)
    }

    /// A table of rows, base rates and oracle AUCs per surface, for stderr and README.txt.
    public var summary: String {
        func number(_ value: Double?, _ decimals: Int) -> String {
            guard let value else { return "-" }
            var buffer = ByteBuffer()
            buffer.appendFixed(value, decimals: decimals)
            return String(decoding: buffer.bytes, as: UTF8.self)
        }
        let total = splitRows.reduce(0, +)
        var lines = [
            "rows: \(total) (train \(splitRows[0]), valid \(splitRows[1]), test \(splitRows[2])); "
                + "users \(users), ads \(ads), advertisers \(advertisers)",
            [pad("surface", 12), pad("rows", 9), pad("share", 6), pad("click", 7), pad("p_click", 8),
             pad("oracle_auc", 11), pad("no_seq_auc", 11), pad("save", 7), pad("save_auc", 9)].joined(separator: " "),
        ]
        for statistics in surfaces {
            lines.append([
                pad(statistics.surface, 12), pad(String(statistics.rows), 9),
                pad(number(Double(statistics.rows) / Double(max(total, 1)), 3), 6),
                pad(number(statistics.clickRate, 4), 7), pad(number(statistics.meanClickProbability, 4), 8),
                pad(number(statistics.clickOracleAUC, 4), 11), pad(number(statistics.clickOracleAUCWithoutSequence, 4), 11),
                pad(number(statistics.saveRate, 4), 7), pad(number(statistics.saveOracleAUC, 4), 9),
            ].joined(separator: " "))
        }
        return lines.joined(separator: "\n")
    }
}

/// Area under the ROC curve of `scores` against 0/1 `labels`, ties counted half
/// (the Mann-Whitney statistic with average ranks); nil when one class is absent.
public func areaUnderCurve(scores: [Double], labels: [Bool]) -> Double? {
    precondition(scores.count == labels.count, "scores (\(scores.count)) and labels (\(labels.count)) differ in count")
    let positives = labels.reduce(0) { $0 + ($1 ? 1 : 0) }
    let negatives = labels.count - positives
    guard positives > 0, negatives > 0 else { return nil }
    let order = scores.indices.sorted { scores[$0] < scores[$1] }
    var rankSumOfPositives = 0.0
    var start = 0
    while start < order.count {
        var end = start
        while end + 1 < order.count && scores[order[end + 1]] == scores[order[start]] { end += 1 }
        let averageRank = Double(start + end) / 2 + 1
        for index in start...end where labels[order[index]] { rankSumOfPositives += averageRank }
        start = end + 1
    }
    let positiveCount = Double(positives)
    return (rankSumOfPositives - positiveCount * (positiveCount + 1) / 2) / (positiveCount * Double(negatives))
}

/// Running per-surface sums and the (score, label) pairs needed for the oracle AUCs.
struct ReportCollector {
    var rows = [Int](repeating: 0, count: 3)
    var clickScores = [[Double]](repeating: [], count: 3)
    var clickScoresWithoutSequence = [[Double]](repeating: [], count: 3)
    var clickLabels = [[Bool]](repeating: [], count: 3)
    var clickProbabilitySum = [Double](repeating: 0, count: 3)
    var saveScores = [[Double]](repeating: [], count: 3)
    var saveLabels = [[Bool]](repeating: [], count: 3)

    @inline(__always) mutating func add(surface: Int, click: Bool?, pClick: Double, pClickWithoutSequence: Double,
                                        save: Bool?, pSave: Double?) {
        rows[surface] += 1
        clickProbabilitySum[surface] += pClick
        if let click {
            clickScores[surface].append(pClick)
            clickScoresWithoutSequence[surface].append(pClickWithoutSequence)
            clickLabels[surface].append(click)
        }
        if let save, let pSave {
            saveScores[surface].append(pSave)
            saveLabels[surface].append(save)
        }
    }

    func finish(configuration: SyntheticConfiguration, seconds: Double, bytes: [Int]) -> SyntheticReport {
        let split = configuration.splitRows
        func mean(_ labels: [Bool]) -> Double? {
            labels.isEmpty ? nil : Double(labels.reduce(0) { $0 + ($1 ? 1 : 0) }) / Double(labels.count)
        }
        let statistics = SyntheticGenerator.surfaces.enumerated().map { index, name in
            let hasSave = SyntheticGenerator.tasks[name]!.contains("save")
            return SyntheticReport.SurfaceStatistics(
                surface: name, rows: rows[index], clickRate: mean(clickLabels[index]) ?? 0,
                meanClickProbability: clickProbabilitySum[index] / Double(max(rows[index], 1)),
                clickOracleAUC: areaUnderCurve(scores: clickScores[index], labels: clickLabels[index]),
                clickOracleAUCWithoutSequence: areaUnderCurve(scores: clickScoresWithoutSequence[index],
                                                              labels: clickLabels[index]),
                saveRate: hasSave ? mean(saveLabels[index]) : nil,
                saveOracleAUC: hasSave ? areaUnderCurve(scores: saveScores[index], labels: saveLabels[index]) : nil)
        }
        return SyntheticReport(splitRows: [split.train, split.valid, split.test], splitBytes: bytes,
                               surfaces: statistics, users: configuration.resolvedUsers,
                               ads: configuration.resolvedAds, advertisers: configuration.resolvedAdvertisers,
                               seconds: seconds)
    }
}

// The SPEC 6 metric object M and the `eval --json` report built from it, as `metrics` and
// `report` in braid_ref.py.
import Foundation
import JSON

/// The SPEC 4 metrics of one group of (probability, label) pairs, M of SPEC 6:
/// row count, AUC, log loss, normalized entropy, calibration ratio, ECE (20 bins), and the
/// oracle's AUC and log loss on the same rows. nil where undefined: no rows, a single
/// class, or (oracle keys) some row without an oracle probability.
public struct MetricSet: Equatable, Sendable {
    public var count: Int
    public var auc: Double?
    public var logloss: Double?
    public var ne: Double?
    public var calibrationRatio: Double?
    public var ece: Double?
    public var oracleAUC: Double?
    public var oracleLogloss: Double?

    public init(count: Int, auc: Double?, logloss: Double?, ne: Double?, calibrationRatio: Double?,
                ece: Double?, oracleAUC: Double?, oracleLogloss: Double?) {
        self.count = count
        self.auc = auc
        self.logloss = logloss
        self.ne = ne
        self.calibrationRatio = calibrationRatio
        self.ece = ece
        self.oracleAUC = oracleAUC
        self.oracleLogloss = oracleLogloss
    }

    /// The metrics of probabilities `p` against 0/1 labels `y` (equal lengths). `oracle`
    /// holds the true probabilities (`p_<task>` columns, NaN where a row has none); the
    /// oracle metrics are given only when every row has one.
    public static func compute(p: [Double], y: [Double], oracle: [Double]? = nil) -> MetricSet {
        let count = y.count
        let loss = logLoss(probabilities: p, labels: y)
        let rate = count > 0 ? pairwiseSum(y) / Double(count) : Double.nan
        var hasOracle = false
        if let oracle, count > 0 {
            precondition(oracle.count == count, "MetricSet.compute: \(oracle.count) oracle values for \(count) rows; expected one per row")
            hasOracle = !oracle.contains { $0.isNaN }
        }
        return MetricSet(
            count: count,
            auc: Metrics.auc(probabilities: p, labels: y),
            logloss: loss,
            ne: loss.flatMap { loss in binaryEntropy(rate: rate).map { loss / $0 } },
            calibrationRatio: Metrics.calibrationRatio(probabilities: p, labels: y),
            ece: expectedCalibrationError(probabilities: p, labels: y),
            oracleAUC: hasOracle ? Metrics.auc(probabilities: oracle!, labels: y) : nil,
            oracleLogloss: hasOracle ? logLoss(probabilities: oracle!, labels: y) : nil)
    }

    /// SPEC 6 M: keys `count, auc, logloss, ne, calibration_ratio, ece, oracle_auc,
    /// oracle_logloss` in that order, null where nil.
    public var json: JSONValue {
        .object([
            ("count", .integer(count)),
            ("auc", .number(auc)),
            ("logloss", .number(logloss)),
            ("ne", .number(ne)),
            ("calibration_ratio", .number(calibrationRatio)),
            ("ece", .number(ece)),
            ("oracle_auc", .number(oracleAUC)),
            ("oracle_logloss", .number(oracleLogloss)),
        ])
    }
}

/// Scored (row, task) pairs that have a head and a label, flat, one entry per pair in
/// every array (`flatten` in braid_ref.py): the row's surface, the task, the calibrated
/// probability, the 0/1 label and the oracle probability (NaN where the row has none).
public struct ScoredPairs: Sendable {
    public var surfaces: [String] = []
    public var tasks: [String] = []
    public var probabilities: [Double] = []
    public var labels: [Double] = []
    public var oracles: [Double] = []

    public init() {}

    public var count: Int { labels.count }

    public mutating func append(surface: String, task: String, probability: Double, label: Double,
                                oracle: Double = .nan) {
        surfaces.append(surface)
        tasks.append(task)
        probabilities.append(probability)
        labels.append(label)
        oracles.append(oracle)
    }
}

/// The SPEC 6 `eval --json` report {"overall": {task: M}, "surfaces": {surface: {task: M}}}:
/// every task of every listed surface in the order given (schema order), count 0 and
/// nulls when unlabelled; "overall" pools all surfaces' pairs of a task, tasks in
/// first-seen order over the surfaces.
public struct MetricsReport: Sendable {
    public var overall: [(task: String, metrics: MetricSet)]
    public var surfaces: [(surface: String, tasks: [(task: String, metrics: MetricSet)])]

    /// `surfaceTasks`: the served surfaces and their tasks, in schema order.
    public init(pairs: ScoredPairs, surfaceTasks: [(surface: String, tasks: [String])]) {
        precondition(Set([pairs.surfaces.count, pairs.tasks.count, pairs.probabilities.count, pairs.oracles.count])
                     == [pairs.count], "MetricsReport: ScoredPairs arrays differ in length; expected one entry per pair in each")
        struct Group {
            var probabilities: [Double] = [], labels: [Double] = [], oracles: [Double] = []
            mutating func append(_ pairs: ScoredPairs, _ index: Int) {
                probabilities.append(pairs.probabilities[index])
                labels.append(pairs.labels[index])
                oracles.append(pairs.oracles[index])
            }
            var metrics: MetricSet { .compute(p: probabilities, y: labels, oracle: oracles) }
        }
        var surfaceTaskGroups: [String: [String: Group]] = [:]
        var taskGroups: [String: Group] = [:]
        for index in 0..<pairs.count {
            surfaceTaskGroups[pairs.surfaces[index], default: [:]][pairs.tasks[index], default: Group()].append(pairs, index)
            taskGroups[pairs.tasks[index], default: Group()].append(pairs, index)
        }
        var seenTasks: [String] = []
        for (_, tasks) in surfaceTasks {
            for task in tasks where !seenTasks.contains(task) { seenTasks.append(task) }
        }
        overall = seenTasks.map { ($0, (taskGroups[$0] ?? Group()).metrics) }
        surfaces = surfaceTasks.map { surface, tasks in
            (surface, tasks.map { ($0, (surfaceTaskGroups[surface]?[$0] ?? Group()).metrics) })
        }
    }

    public var json: JSONValue {
        .object([
            ("overall", .object(overall.map { ($0.task, $0.metrics.json) })),
            ("surfaces", .object(surfaces.map { surface, tasks in
                (surface, .object(tasks.map { ($0.task, $0.metrics.json) }))
            })),
        ])
    }
}

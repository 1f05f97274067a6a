import Data
import Foundation
import Metrics
import Model
import Schema

/// Raw logits of encoded rows: `logits[n * T + t]` for row n and task t of
/// `schema.allTasks` (T tasks), NaN where row n's surface has no head for t.
public struct RowLogits {
    public var count: Int
    public var tasks: Int
    public var logits: [Double]

    /// Calibrated probabilities p = sigmoid(a logit + b) with `calibration`
    /// (surface -> task -> pair; identity where absent), NaN where no head (SPEC 2.7).
    public func probabilities(surface: [Int32], schema: Schema, calibration: [String: [String: PlattPair]]) -> [Double] {
        var out = [Double](repeating: .nan, count: logits.count)
        for n in 0..<count {
            let s = schema.surfaces[Int(surface[n])]
            for t in 0..<tasks {
                let z = logits[n * tasks + t]
                if z.isNaN { continue }
                out[n * tasks + t] = (calibration[s]?[schema.allTasks[t]] ?? .identity).probability(logit: z)
            }
        }
        return out
    }
}

/// Logits of the rows `range` (default: all) of `rows` in file order, scored in batches of
/// `batchSize` without a tape: `logits[(n - range.lowerBound) * T + t]`.
public func predictLogits(_ model: BraidModel, rows: some RowSource, range: Range<Int>? = nil, batchSize: Int = 2048) -> RowLogits {
    let range = range ?? 0 ..< rows.count
    let T = model.config.schema.allTasks.count
    var out = RowLogits(count: range.count, tasks: T, logits: [Double](repeating: .nan, count: range.count * T))
    var start = range.lowerBound
    while start < range.upperBound {
        let end = min(start + batchSize, range.upperBound)
        let batch = rows.batch(rows: Array(start..<end))
        let at = start - range.lowerBound
        for s in model(batch) {
            for (t, logit) in s.logits {
                for (i, r) in s.rows.enumerated() { out.logits[(at + Int(r)) * T + t] = Double(logit[i]) }
            }
        }
        start = end
    }
    return out
}

/// SPEC 2.7: Platt pairs fitted on (logit, label) of the labelled rows with a head;
/// `surface` mode one pair per (surface, task), `global` one per task over all
/// surfaces, stored under every surface.
public func fitCalibration(_ logits: RowLogits, rows: some LabelledRows, surfaces: [String], mode: String) -> [String: [String: PlattPair]] {
    let schema = rows.schema, T = logits.tasks
    var result: [String: [String: PlattPair]] = [:]
    for s in surfaces {
        let si = Int32(schema.surfaces.firstIndex(of: s)!)
        for task in schema.tasks[s] ?? [] {
            let t = schema.allTasks.firstIndex(of: task)!
            var z: [Double] = [], y: [Double] = []
            for n in 0..<rows.count where mode == "global" || rows.surface[n] == si {
                let l = logits.logits[n * T + t], label = rows.labels[n * T + t]
                if !l.isNaN && label >= 0 { z.append(l); y.append(Double(label)) }
            }
            result[s, default: [:]][task] = PlattPair.fit(logits: z, labels: y)
        }
    }
    return result
}

/// The scored (row, task) pairs that have a head and a label (`flatten` of the reference).
public func scoredPairs(probabilities p: [Double], rows: some LabelledRows) -> ScoredPairs {
    let schema = rows.schema, T = schema.allTasks.count
    var pairs = ScoredPairs()
    for n in 0..<rows.count {
        for t in 0..<T {
            let prob = p[n * T + t], label = rows.labels[n * T + t]
            if prob.isNaN || label < 0 { continue }
            let o = rows.oracle[n * T + t]
            pairs.append(surface: schema.surfaces[Int(rows.surface[n])], task: schema.allTasks[t], probability: prob,
                         label: Double(label), oracle: o.isNaN ? .nan : Double(o))
        }
    }
    return pairs
}

/// SPEC 4 report of calibrated probabilities over the given surfaces (schema order).
public func metricsReport(probabilities p: [Double], rows: some LabelledRows, surfaces: [String]) -> MetricsReport {
    let schema = rows.schema
    let served = schema.surfaces.filter { surfaces.contains($0) }
    return MetricsReport(pairs: scoredPairs(probabilities: p, rows: rows),
                         surfaceTasks: served.map { ($0, schema.tasks[$0] ?? []) })
}

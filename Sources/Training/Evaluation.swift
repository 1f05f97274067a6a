import Checkpoint
import Data
import Foundation
import JSON
import Metrics
import Model
import Schema
import TextTable

/// The model directories behind `--model` arguments (SPEC 6): each path is a model
/// dir, or a folder of surface model dirs (its subfolders in name order).
public func modelDirectories(_ paths: [URL]) throws -> [URL] {
    var out: [URL] = []
    let fm = FileManager.default
    for p in paths {
        if fm.fileExists(atPath: p.appendingPathComponent("model.json").path) { out.append(p); continue }
        let subs = ((try? fm.contentsOfDirectory(atPath: p.path)) ?? []).sorted()
            .map { p.appendingPathComponent($0) }
            .filter { fm.fileExists(atPath: $0.appendingPathComponent("model.json").path) }
        if subs.isEmpty {
            throw CheckpointError("--model \(p.path): no model.json there nor in its folders; expected a model directory or a folder of surface model directories")
        }
        out += subs
    }
    return out
}

/// Every row of a CSV scored by the first model serving its surface (SPEC 6
/// eval/predict): calibrated probabilities per row and task.
public struct ScoredFile {
    /// The union of the models' schemas' tasks, first seen.
    public var tasks: [String]
    /// Per data row (file order): its surface name.
    public var surfaces: [String]
    /// [N, tasks.count] calibrated probabilities, NaN where the row's surface has no such head.
    public var probabilities: [Double]
    /// The labelled (row, task) pairs with a head (labels only when scored with labels).
    public var pairs: ScoredPairs
    /// The served surfaces and their tasks: the first-seen union of the models' schemas' surfaces.
    public var surfaceTasks: [(surface: String, tasks: [String])]

    public var report: MetricsReport { MetricsReport(pairs: pairs, surfaceTasks: surfaceTasks) }
}

/// Scores `data` with `models` (loaded model dirs). `labels`: label columns are
/// required (eval) or not (predict). A row no model serves is an input error.
public func scoreFile(models: [BraidModel], data: URL, labels: Bool) throws -> ScoredFile {
    var tasks: [String] = [], surfaceTasks: [(surface: String, tasks: [String])] = []
    var owner: [String: Int] = [:]  // surface -> first model serving it
    for (i, m) in models.enumerated() {
        for t in m.config.schema.allTasks where !tasks.contains(t) { tasks.append(t) }
        for s in m.config.schema.surfaces where m.config.surfacesIncluded.contains(s) && owner[s] == nil {
            owner[s] = i
            surfaceTasks.append((s, m.config.schema.tasks[s] ?? []))
        }
    }
    // every row's surface must be served (the error names the first that is not)
    let csv = try CSVFile(contentsOf: data)
    let surfaceColumn = csv.columnIndex["surface"]!
    var lineOrder: [Int] = []
    while let line = try csv.nextRecord() {
        let s = csv.string(surfaceColumn)
        if owner[s] == nil {
            throw InputError(file: data.path, line: line, column: "surface",
                             message: "no model serves surface \(pythonRepr(s)); expected one of the surfaces the models serve \(pythonRepr(surfaceTasks.map(\.surface)))")
        }
        lineOrder.append(line)
    }
    let rowOfLine = Dictionary(uniqueKeysWithValues: lineOrder.enumerated().map { ($1, $0) })
    let N = lineOrder.count, K = tasks.count
    var out = ScoredFile(tasks: tasks, surfaces: [String](repeating: "", count: N), probabilities: [Double](repeating: .nan, count: N * K),
                         pairs: ScoredPairs(), surfaceTasks: surfaceTasks)
    var labelled: [(row: Int, task: Int, p: Double, y: Double, o: Double)] = []
    for (i, model) in models.enumerated() {
        let mine = Set(owner.filter { $0.value == i }.keys)
        if mine.isEmpty { continue }
        let config = model.config
        let rows = try EncodedRows(file: data, config: config, options: EncodeOptions(labels: labels, onlySurfaces: mine))
        let logits = predictLogits(model, rows: rows)
        let p = logits.probabilities(surface: rows.surface, schema: config.schema, calibration: config.calibration)
        let T = config.schema.allTasks.count
        for n in 0..<rows.count {
            let row = rowOfLine[rows.lines[n]]!
            out.surfaces[row] = config.schema.surfaces[Int(rows.surface[n])]
            for (t, task) in config.schema.allTasks.enumerated() {
                let prob = p[n * T + t]
                if prob.isNaN { continue }
                let k = tasks.firstIndex(of: task)!
                out.probabilities[row * K + k] = prob
                let y = labels ? rows.labels[n * T + t] : -1
                if y >= 0 { labelled.append((row, k, prob, Double(y), Double(rows.oracle[n * T + t]))) }
            }
        }
    }
    labelled.sort { ($0.row, $0.task) < ($1.row, $1.task) }
    for l in labelled { out.pairs.append(surface: out.surfaces[l.row], task: tasks[l.task], probability: l.p, label: l.y, oracle: l.o) }
    return out
}

/// A human-readable table of a report: one line per surface/task, then overall.
public func formatReport(_ report: MetricsReport, title: String) -> String {
    let header = ["count", "auc", "logloss", "ne", "cal", "ece", "oracle_auc"].map { pad($0, 11) }.joined()
    var lines = [title, "  " + pad("surface/task", 26, left: true) + header]
    func row(_ name: String, _ m: MetricSet) {
        let cells = [String(m.count), fmt(m.auc), fmt(m.logloss), fmt(m.ne), fmt(m.calibrationRatio), fmt(m.ece), fmt(m.oracleAUC)]
        lines.append("  " + pad(name, 26, left: true) + cells.map { pad($0, 11) }.joined())
    }
    for (s, tasks) in report.surfaces { for (t, m) in tasks { row("\(s)/\(t)", m) } }
    for (t, m) in report.overall { row("overall/\(t)", m) }
    return lines.joined(separator: "\n")
}

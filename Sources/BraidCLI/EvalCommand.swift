import ArgumentParser
import Checkpoint
import Foundation
import JSON
import Kernels
import Model
import Training

/// `braid eval` (SPEC 6): SPEC 4 metrics of calibrated probabilities per surface and task.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Metrics of a model (or a folder of surface models) on a labelled CSV, per surface and task.",
        discussion: """
            Each row is scored by the first model serving its surface (a folder's surface \
            models in name order). Prints AUC, log loss, normalized entropy, calibration \
            ratio, ECE and, when the file has p_<task> columns, the oracle's AUC. \
            --json prints exactly {"overall": {task: M}, "surfaces": {surface: {task: M}}}.

            Example: braid eval --model runs/unified/model --data data/test.csv
            """)

    @Option(help: ArgumentHelp("A model dir, or a folder of surface model dirs (repeatable).", valueName: "dir")) var model: [String]
    @Option(help: ArgumentHelp("Labelled CSV (SPEC 1.2).", valueName: "file")) var data: String
    @Option(help: "Threads.") var threads = 2
    @Flag(help: "Print the SPEC 6 JSON report instead of the table.") var json = false

    func run() throws {
        try runReportingErrors {
            let models = try modelDirectories(model.map { URL(fileURLWithPath: $0) }).map { try BraidModel.load(directory: $0) }
            Kernels.Threads.set(threads)
            let scored = try scoreFile(models: models, data: URL(fileURLWithPath: data), labels: true)
            if json {
                print(scored.report.json.serialized(indent: 1))
            } else {
                print(formatReport(scored.report, title: "\(data) (calibrated)"))
            }
        }
    }
}

/// `braid predict` (SPEC 6): calibrated probabilities of every row as a CSV.
struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Score every row of a CSV: row,surface,<task>... with calibrated probabilities.",
        discussion: """
            Writes one line per data row (row = 0-based row in file order), one column per \
            task of the models' schemas (first seen), the calibrated probability with 9 \
            significant digits, empty where the row's surface has no such task. Label \
            columns are not needed. A row no model serves is an error.

            Example: braid predict --model runs/unified/model --data data/test.csv --out scores.csv
            """)

    @Option(help: ArgumentHelp("A model dir, or a folder of surface model dirs (repeatable).", valueName: "dir")) var model: [String]
    @Option(help: ArgumentHelp("CSV to score (SPEC 1.2).", valueName: "file")) var data: String
    @Option(help: ArgumentHelp("Output CSV.", valueName: "file")) var out: String
    @Option(help: "Threads.") var threads = 2

    func run() throws {
        try runReportingErrors {
            let models = try modelDirectories(model.map { URL(fileURLWithPath: $0) }).map { try BraidModel.load(directory: $0) }
            Kernels.Threads.set(threads)
            let scored = try scoreFile(models: models, data: URL(fileURLWithPath: data), labels: false)
            var text = "row,surface," + scored.tasks.joined(separator: ",") + "\n"
            let K = scored.tasks.count
            for (n, s) in scored.surfaces.enumerated() {
                text += "\(n),\(s)"
                for k in 0..<K {
                    let p = scored.probabilities[n * K + k]
                    text += p.isNaN ? "," : "," + String(format: "%.9g", p)
                }
                text += "\n"
            }
            try replaceFile(at: URL(fileURLWithPath: out), bytes: text.data(using: .utf8)!)
            FileHandle.standardError.write("wrote \(scored.surfaces.count) rows to \(out)\n".data(using: .utf8)!)
        }
    }
}

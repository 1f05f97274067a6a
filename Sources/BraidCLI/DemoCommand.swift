import ArgumentParser
import Checkpoint
import Data
import Foundation
import JSON
import Kernels
import Metrics
import Model
import Schema
import Synthetic
import TextTable
import Training

/// `braid demo`: Braid's main job end to end on built-in synthetic data.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Generate data, train the unified model and per-surface baselines, calibrate, compare, export, report.",
        discussion: """
            1. braid generate (three surfaces with ground-truth probabilities) into OUT/data;
            2. braid train (unified) into OUT/runs/unified and --separate into OUT/runs/separate;
            3. calibrates the unified model per surface (stored) and globally (the baseline);
            4. evaluates everything on OUT/data/test.csv and prints one table per surface and \
            task: unified (surface calibration), unified (global calibration), separate models \
            and the oracle (the true probabilities);
            5. exports each surface (OUT/exports/<surface>) and checks it scores its surface \
            exactly as the unified model;
            6. writes OUT/report.html (loss curves, AUC per surface, reliability diagrams; open \
            it in any browser, no network needed) and OUT/summary.json.

            Unlike braid train's, the demo's defaults are --lr-schedule cosine and \
            --negative-sampling home_feed=0.5 (it thins home_feed, the biggest surface, as ads \
            pipelines do; home_feed=1 keeps every row).
            """)

    @Option(help: ArgumentHelp("Output folder (must not hold a previous demo's runs).", valueName: "dir")) var out = "braid-demo"
    @Option(help: "Rows of synthetic data (train/valid/test 70/15/15); default: braid generate's.") var rows = SyntheticConfiguration().rows
    @Option(help: "Training epochs (early stopping may end sooner).") var epochs = 4
    @Option(name: .customLong("batch-size"), help: "Examples per step (small batches learn this data set faster per epoch).") var batchSize = 128
    @OptionGroup var schedule: ScheduleAndSamplingOptions
    @Option(help: "Threads.") var threads = 2
    @Option(help: "Seed of the data and of training.") var seed: UInt64 = 0
    @Flag(help: "No progress lines.") var quiet = false

    func run() throws {
        try runReportingErrors { try runDemo() }
    }

    private func runDemo() throws {
        let started = Date()
        let root = URL(fileURLWithPath: out)
        let dataDir = root.appendingPathComponent("data"), runs = root.appendingPathComponent("runs")
        if FileManager.default.fileExists(atPath: runs.path) {
            throw ValidationError("\(runs.path) already exists; the demo writes new model directories: choose a new --out or remove \(root.path)")
        }
        log("== 1/6 generating \(rows) rows into \(dataDir.path)")
        let report = try SyntheticGenerator(configuration: SyntheticConfiguration(rows: rows, seed: seed)).write(to: dataDir.path)
        _ = report
        let configURL = dataDir.appendingPathComponent("model.json")
        let train = dataDir.appendingPathComponent("train.csv"), valid = dataDir.appendingPathComponent("valid.csv")
        let test = dataDir.appendingPathComponent("test.csv")
        var options = TrainingOptions()
        options.epochs = epochs; options.batchSize = batchSize; options.threads = threads; options.seed = seed
        schedule.apply(to: &options, defaultSchedule: .cosine, defaultSampling: [NegativeSampling(argument: "home_feed=0.5")!])
        options.progress = !quiet
        log("== 2/6 training the unified model")
        let unifiedRun = try TrainRun(config: configURL, trainFile: train, validFile: valid, out: runs.appendingPathComponent("unified"), options: options).run()
        log("== 2/6 training one model per surface (--separate)")
        var separateJob = TrainRun(config: configURL, trainFile: train, validFile: valid, out: runs.appendingPathComponent("separate"), options: options)
        separateJob.separate = true
        let separateRun = try separateJob.run()

        log("== 3/6 calibrating per surface and globally")
        Threads.set(threads)
        let unified = try BraidModel.load(directory: unifiedRun[0].directory)
        let config = unified.config
        let validRows = try EncodedRows(file: valid, config: config)
        let globalCalibration = fitCalibration(predictLogits(unified, rows: validRows), rows: validRows, surfaces: config.surfacesIncluded, mode: "global")
        let testRows = try EncodedRows(file: test, config: config)
        let testLogits = predictLogits(unified, rows: testRows)
        let pSurface = testLogits.probabilities(surface: testRows.surface, schema: config.schema, calibration: config.calibration)
        let pGlobal = testLogits.probabilities(surface: testRows.surface, schema: config.schema, calibration: globalCalibration)
        let surfaceReport = metricsReport(probabilities: pSurface, rows: testRows, surfaces: config.surfacesIncluded)
        let globalReport = metricsReport(probabilities: pGlobal, rows: testRows, surfaces: config.surfacesIncluded)

        log("== 4/6 evaluating on \(test.path)")
        let separateModels = try separateRun.map { try BraidModel.load(directory: $0.directory) }
        let separateReport = try scoreFile(models: separateModels, data: test, labels: true).report

        log("== 5/6 exporting each surface")
        let exportsDir = root.appendingPathComponent("exports")
        try FileManager.default.createDirectory(at: exportsDir, withIntermediateDirectories: true)
        let unifiedParameters = parameterCount(parameterLayout(config))
        var exportRows: [[String]] = [["model", "parameters", "bytes", "max |logit diff| vs unified on its rows"]]
        exportRows.append(["unified", "\(unifiedParameters)", "\(directorySize(unifiedRun[0].directory))", "-"])
        for s in config.surfacesIncluded {
            let (exportConfig, store) = try exportSurface(unified, surface: s)
            let exported = BraidModel(config: exportConfig, parameters: store)
            let dir = exportsDir.appendingPathComponent(s)
            try exported.save(directory: dir)
            let mine = try EncodedRows(file: test, config: exportConfig, options: EncodeOptions(onlySurfaces: [s]))
            let a = predictLogits(exported, rows: mine)
            let fromUnified = try EncodedRows(file: test, config: config, options: EncodeOptions(onlySurfaces: [s]))
            let b = predictLogits(unified, rows: fromUnified)
            var diff = 0.0
            for (x, y) in zip(a.logits, b.logits) where !x.isNaN || !y.isNaN { diff = max(diff, abs(x - y)) }
            exportRows.append([s, "\(parameterCount(parameterLayout(exportConfig)))", "\(directorySize(dir))", String(format: "%.2g", diff)])
        }

        log("== 6/6 results (test split, calibrated)")
        var html = HTMLReport(title: "Braid demo: one unified model vs one model per surface")
        html.paragraph("\(rows) synthetic rows (seed \(seed)), \(epochs) epochs, batch \(batchSize), \(threads) threads; data in \(dataDir.path). Oracle = the true probabilities the data was drawn from.")
        var summary: [(String, JSONValue)] = []
        var gaps: [[String]] = [["surface / task", "unified - separate AUC", "oracle - unified AUC", "ECE surface cal.", "ECE global cal."]]
        for (s, tasks) in surfaceReport.surfaces {
            for (t, _) in tasks {
                func m(_ r: MetricsReport) -> MetricSet? { r.surfaces.first { $0.surface == s }?.tasks.first { $0.task == t }?.metrics }
                let u = m(surfaceReport), g = m(globalReport), sep = m(separateReport)
                var table: [[String]] = [["\(s) / \(t)", "AUC", "log loss", "NE", "calibration", "ECE"]]
                func row(_ name: String, _ x: MetricSet?) -> [String] {
                    [name, fmt4(x?.auc), fmt4(x?.logloss), fmt4(x?.ne), fmt4(x?.calibrationRatio), fmt4(x?.ece)]
                }
                table.append(row("unified, surface calibration", u))
                table.append(row("unified, global calibration", g))
                table.append(row("separate models", sep))
                table.append(["oracle", fmt4(u?.oracleAUC), fmt4(u?.oracleLogloss), "", "", ""])
                func minus(_ a: Double?, _ b: Double?) -> String { a.flatMap { a in b.map { String(format: "%+.4f", a - $0) } } ?? "-" }
                gaps.append(["\(s) / \(t)", minus(u?.auc, sep?.auc), minus(u?.oracleAUC, u?.auc), fmt4(u?.ece), fmt4(g?.ece)])
                print(textTable(table) + "\n")
                html.heading("\(s) / \(t) (n = \(u?.count ?? 0))")
                html.table(table)
                summary.append(("\(s)/\(t)", .object([
                    ("unified_surface", u?.json ?? .null), ("unified_global", g?.json ?? .null), ("separate", sep?.json ?? .null),
                ])))
            }
        }
        let T = config.schema.allTasks.count, click = config.schema.allTasks.firstIndex(of: "click") ?? 0
        let rates = config.schema.surfaces.indices.map { si -> Double in
            var clicks = 0.0, count = 0.0
            for n in 0..<testRows.count where Int(testRows.surface[n]) == si && testRows.labels[n * T + click] >= 0 {
                clicks += Double(testRows.labels[n * T + click]); count += 1
            }
            return count > 0 ? clicks / count : .nan
        }
        let known = rates.filter { !$0.isNaN }
        let meanRate = known.reduce(0, +) / Double(max(known.count, 1))
        let outlier = rates.indices.filter { !rates[$0].isNaN }.max { abs(rates[$0] - meanRate) < abs(rates[$1] - meanRate) }
        let outlierName = outlier.map { config.schema.surfaces[$0] } ?? "-"
        let rateText = config.schema.surfaces.indices.map { "\(config.schema.surfaces[$0]) \(fmt4(rates[$0]))" }
            .joined(separator: ", ") + " (furthest from the mean: \(outlierName))"
        print("Unified vs separate vs oracle (test AUC), and ECE with per-surface vs global calibration;")
        print("click rate per surface: " + rateText)
        print(textTable(gaps) + "\n")
        html.heading("Summary: unified - separate, oracle - unified, calibration")
        html.paragraph("Click rate per surface: " + rateText + ".")
        html.table(gaps)
        print(textTable(exportRows))
        html.heading("Surface exports")
        html.table(exportRows)

        html.heading("Training curves")
        var curves: [(name: String, points: [(Double, Double)])] = []
        curves.append(("unified train loss", unifiedRun[0].history.map { (Double($0.epoch), $0.trainLoss) }))
        curves.append(("unified valid log loss", unifiedRun[0].history.map { (Double($0.epoch), $0.validLogloss) }))
        for r in separateRun { curves.append(("\(r.surface ?? "") valid log loss", r.history.map { (Double($0.epoch), $0.validLogloss) })) }
        html.lineChart(title: "Loss per epoch", xLabel: "epoch", yLabel: "log loss", series: curves)

        let clickSurfaces = surfaceReport.surfaces.map(\.surface)
        func auc(_ r: MetricsReport, _ task: String) -> [Double?] {
            clickSurfaces.map { s in r.surfaces.first { $0.surface == s }?.tasks.first { $0.task == task }?.metrics.auc }
        }
        html.barChart(title: "Test AUC (click) per surface", yLabel: "AUC", categories: clickSurfaces,
                      series: [("unified", auc(surfaceReport, "click")), ("separate", auc(separateReport, "click")),
                               ("oracle", clickSurfaces.map { s in surfaceReport.surfaces.first { $0.surface == s }?.tasks.first { $0.task == "click" }?.metrics.oracleAUC })],
                      yRange: (0.5, 1.0))
        html.heading("Reliability (click, test split)")
        for (si, s) in config.schema.surfaces.enumerated() where config.surfacesIncluded.contains(s) {
            var ps: [Double] = [], pg: [Double] = [], ys: [Double] = []
            for n in 0..<testRows.count where Int(testRows.surface[n]) == si && testRows.labels[n * T + click] >= 0 && !pSurface[n * T + click].isNaN {
                ps.append(pSurface[n * T + click]); pg.append(pGlobal[n * T + click]); ys.append(Double(testRows.labels[n * T + click]))
            }
            html.reliabilityDiagram(title: "\(s): calibration per surface vs global",
                                    series: [("surface calibration", reliabilityPoints(probabilities: ps, labels: ys)),
                                             ("global calibration", reliabilityPoints(probabilities: pg, labels: ys))])
        }
        try replaceFile(at: root.appendingPathComponent("report.html"), bytes: html.html.data(using: .utf8)!)
        try replaceFile(at: root.appendingPathComponent("summary.json"), bytes: (JSONValue.object(summary).serialized(indent: 1) + "\n").data(using: .utf8)!)
        log("wrote \(root.appendingPathComponent("report.html").path) and summary.json in \(formatDuration(Date().timeIntervalSince(started)))")
    }
}

func fmt4(_ x: Double?) -> String { x.map { String(format: "%.4f", $0) } ?? "-" }

/// A plain-text table with aligned columns; the first row is the header.
func textTable(_ rows: [[String]]) -> String {
    guard let first = rows.first else { return "" }
    var widths = first.map(\.count)
    for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
    return rows.enumerated().map { k, r in
        let line = r.enumerated().map { i, c in i == 0 ? pad(c, widths[i], left: true) : pad(c, widths[i]) }.joined(separator: "  ")
        return k == 0 ? line + "\n" + String(repeating: "-", count: line.count) : line
    }.joined(separator: "\n")
}

/// Total bytes of the files in a directory (not recursive).
func directorySize(_ url: URL) -> Int {
    let files = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
    return files.reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: url.appendingPathComponent($1).path)[.size] as? Int) ?? 0) }
}

import Checkpoint
import Data
import Distributed
import Foundation
import JSON
import Metrics
import Model
import Schema

/// `braid train` end to end: encode (fitting dense stats on the training file),
/// train, calibrate on the validation split (SPEC 2.7), write RUN/model (a model
/// dir; with `separate`, RUN/model/<surface>/ per surface) and RUN/metrics.json.
///
/// The training rows are read from a memory-mapped binary cache (`DataCache`) built from the
/// training CSV at RUN/cache/train.braidcache (RUN/cache/<surface>/ with `separate`) and reused
/// by `resume`. With several ranks (`communicator`), rank 0 builds the cache first and the
/// others open it (or, on another machine, build their own copy); every rank trains on its
/// share of each batch, and only rank 0 writes the model, metrics and checkpoints.
public struct TrainRun {
    public var config: URL
    public var trainFile: URL
    public var validFile: URL
    public var out: URL
    public var options: TrainingOptions
    public var separate = false
    public var resume = false
    public var skipBadRows = false
    public var communicator = Communicator.single

    public init(config: URL, trainFile: URL, validFile: URL, out: URL, options: TrainingOptions) {
        self.config = config; self.trainFile = trainFile; self.validFile = validFile; self.out = out; self.options = options
    }

    /// One trained model: its directory, its surface (with `separate`) and its epochs.
    public struct Trained {
        public var surface: String?
        public var directory: URL
        public var history: [EpochSummary]
    }

    /// Throws unless `rate`, the share of `surface`'s all-negative training rows that
    /// negative sampling keeps (`TrainingOptions.negativeKeepRate`), is in (0, 1].
    public static func checkNegativeKeepRate(_ rate: Double, surface: String) throws {
        guard rate > 0 && rate <= 1 else {
            throw ConfigError("negative sampling rate \(rate) for surface \(surface); expected a share of rows in (0, 1]")
        }
    }

    /// The models written (one, or one per surface).
    @discardableResult
    public func run() throws -> [Trained] {
        let base = try ModelConfig.load(from: config)
        for (name, rate) in options.negativeKeepRate.sorted(by: { $0.key < $1.key }) {
            guard base.surfacesIncluded.contains(name) else {
                throw ConfigError("negative sampling names surface '\(name)', which \(config.path) does not train; expected one of "
                    + base.surfacesIncluded.joined(separator: ", "))
            }
            try Self.checkNegativeKeepRate(rate, surface: name)
        }
        let modelRoot = out.appendingPathComponent("model")
        if FileManager.default.fileExists(atPath: modelRoot.path) {
            throw CheckpointError("\(modelRoot.path) already exists; a model directory is written once and never overwritten (SPEC 3): choose a new --out")
        }
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        var written: [Trained] = []
        var metrics: [(String, JSONValue)] = []
        if separate {
            for s in base.schema.surfaces where base.surfacesIncluded.contains(s) {
                if communicator.isRoot { log("=== surface \(s) (separate model)") }
                let cfg = try surfaceConfig(base, surface: s)
                let (dir, json, history) = try trainOne(cfg, only: [s], modelDir: modelRoot.appendingPathComponent(s),
                                                        checkpoints: out.appendingPathComponent("checkpoints").appendingPathComponent(s),
                                                        cache: out.appendingPathComponent("cache").appendingPathComponent(s), label: s)
                written.append(Trained(surface: s, directory: dir, history: history))
                metrics.append((s, json))
            }
        } else {
            let (dir, json, history) = try trainOne(base, only: nil, modelDir: modelRoot, checkpoints: out.appendingPathComponent("checkpoints"),
                                                    cache: out.appendingPathComponent("cache"), label: "train")
            written.append(Trained(surface: nil, directory: dir, history: history))
            metrics = [("unified", json)]
        }
        guard communicator.isRoot else { return written }
        let doc = separate ? JSONValue.object(metrics) : metrics[0].1
        try replaceFile(at: out.appendingPathComponent("metrics.json"), bytes: (doc.serialized(indent: 1) + "\n").data(using: .utf8)!)
        log("wrote \(written.map(\.directory.path).joined(separator: ", ")) and \(out.appendingPathComponent("metrics.json").path)")
        return written
    }

    private func trainOne(_ base: ModelConfig, only: Set<String>?, modelDir: URL, checkpoints: URL, cache: URL,
                          label: String) throws -> (URL, JSONValue, [EpochSummary]) {
        var config = base
        if let mode = options.calibrationMode { config.model.calibrationMode = mode }
        let started = Date()
        let train = try openTrainingCache(config: config, only: only, directory: cache)
        reportSkipped(train, file: trainFile)
        config.denseStats = train.denseStats
        let valid = try EncodedRows(file: validFile, config: config, options: EncodeOptions(labels: true, skipBadRows: skipBadRows, onlySurfaces: only))
        reportSkipped(valid, file: validFile)
        if communicator.isRoot {
            log("\(label): \(train.count) training rows, \(valid.count) validation rows (encoded in \(formatDuration(Date().timeIntervalSince(started))))")
        }
        let trainer = Trainer(config: config, train: train, valid: valid, options: options, checkpoints: checkpoints, label: label,
                              communicator: communicator)
        let result = try trainer.run(resume: resume)
        guard communicator.isRoot else { return (modelDir, .null, result.history) }
        config.calibration = fitCalibration(result.validLogits, rows: valid, surfaces: config.surfacesIncluded, mode: config.model.calibrationMode)
        try result.model.save(directory: modelDir, config: config)
        let probs = result.validLogits.probabilities(surface: valid.surface, schema: config.schema, calibration: config.calibration)
        let report = metricsReport(probabilities: probs, rows: valid, surfaces: config.surfacesIncluded)
        let history = JSONValue.array(result.history.map { e in
            .object([("epoch", .integer(e.epoch)), ("train_loss", .number(e.trainLoss)),
                     ("valid_logloss", .number(e.validLogloss)), ("rows_per_s", .number(e.rowsPerSecond))])
        })
        return (modelDir, .object([("best_epoch", .integer(result.bestEpoch)), ("model_epoch", .integer(result.modelEpoch)),
                                  ("history", history), ("valid_calibrated", report.json)]), result.history)
    }

    /// The training cache in `directory`, its dense statistics fitted on its rows: built (or
    /// reused when it matches the CSV and config) by rank 0 first, then opened by the others.
    private func openTrainingCache(config: ModelConfig, only: Set<String>?, directory: URL) throws -> DataCache {
        let options = EncodeOptions(labels: true, skipBadRows: skipBadRows, fitDenseStats: true, onlySurfaces: only)
        let url = directory.appendingPathComponent("train.braidcache")
        func open() throws -> DataCache {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            return try DataCache.open(csv: trainFile, config: config, options: options, cacheURL: url, threads: max(1, self.options.threads))
        }
        if communicator.isRoot {
            let cache = try open()
            try communicator.barrier()
            return cache
        }
        try communicator.barrier()
        return try open()
    }

    private func reportSkipped(_ rows: some RowSource, file: URL) {
        guard rows.skippedRows > 0, communicator.isRoot else { return }
        log("\(file.path): skipped \(rows.skippedRows) bad rows (--skip-bad-rows); first errors:")
        for e in rows.errors { log("  \(e)") }
    }
}

/// The same architecture for surface s alone (the `--separate` baseline, as the
/// reference's `surface_config`): schema restricted to s, features absent on s
/// dropped, features exclusive to s kept exclusive, no calibration or dense stats yet.
public func surfaceConfig(_ config: ModelConfig, surface s: String) throws -> ModelConfig {
    let schema = config.schema
    let keep: ([String]?) -> [String]? = { $0 == [s] ? [s] : nil }
    var categorical: [CategoricalFeature] = [], dense: [DenseFeature] = []
    for (i, f) in schema.categorical.enumerated() where schema.exists(categorical: i, on: s) {
        var g = f; g.surfaces = keep(f.surfaces); categorical.append(g)
    }
    for (i, f) in schema.dense.enumerated() where schema.exists(dense: i, on: s) {
        var g = f; g.surfaces = keep(f.surfaces); dense.append(g)
    }
    let restricted = try Schema(surfaces: [s], tasks: [s: schema.tasks[s] ?? []], categorical: categorical, dense: dense, sequence: schema.sequence)
    return ModelConfig(schema: restricted, model: config.model, denseStats: [:], calibration: [:], surfacesIncluded: [s])
}

import Checkpoint
import Data
import Foundation
import Kernels
import Metrics
import Model
import NN
import Optim
import Schema
import Tensors
import TextTable

/// How Adam's learning rate moves over a run of T = epochs x batches-per-epoch steps:
/// `constant` keeps `learningRate` (the reference's train_ref.py); `cosine` uses
/// lr_t = learningRate * (1 + cos(pi t / T)) / 2 at step t = 0..<T, which lets the
/// weights settle in the last epoch instead of jumping around the optimum. It is a
/// function of the step alone, so a resumed run follows the same curve.
public enum LearningRateSchedule: String, Sendable, CaseIterable {
    case constant, cosine

    /// The multiplier of the base learning rate at `step` of `totalSteps`.
    public func factor(step: Int, totalSteps: Int) -> Float {
        switch self {
        case .constant: return 1
        case .cosine:
            let progress = Double(min(step, totalSteps)) / Double(max(totalSteps, 1))
            return Float((1 + Foundation.cos(Double.pi * progress)) / 2)
        }
    }
}

/// Options of `braid train` (defaults as the reference's train_ref.py).
public struct TrainingOptions: Sendable {
    public var epochs = 3
    public var batchSize = 512
    public var learningRate: Float = 1e-3
    public var learningRateSchedule = LearningRateSchedule.constant
    /// Negative downsampling: surface name -> the share of its all-negative training
    /// rows kept (in (0, 1]; `negativeSampledRows`). Empty: every row.
    public var negativeKeepRate: [String: Double] = [:]
    public var embeddingLearningRate: Float = 0.02
    public var seed: UInt64 = 0
    public var threads = 2
    /// Early stopping: stop after this many epochs without a lower validation log loss
    /// and keep the best epoch's weights. 0 turns early stopping off: every epoch runs
    /// and the last epoch's weights are kept (as the reference trainer does).
    public var patience = 1
    /// Write a resumable checkpoint every N steps (and at every epoch end); 0: epoch ends only.
    public var checkpointEvery = 200
    /// Overrides model.calibration_mode.
    public var calibrationMode: String?
    public var progress = true
    /// Stop (as if killed) after this many steps: for tests of `--resume`.
    public var stopAfterSteps: Int?
    public init() {}
}

/// What one epoch gave: mean training loss, the pooled validation log loss of
/// uncalibrated probabilities (the early-stopping criterion), rows/s and the report.
public struct EpochSummary: Sendable {
    public var epoch: Int
    public var trainLoss: Double
    public var validLogloss: Double
    public var rowsPerSecond: Double
    public var report: MetricsReport
}

/// The result of a training run: the model (with early stopping the best epoch's
/// weights, without it the last epoch's), its config with dense stats and the fitted
/// calibration, and the per-epoch history.
public struct TrainingResult {
    public var model: BraidModel
    public var config: ModelConfig
    public var history: [EpochSummary]
    /// The epoch with the lowest validation log loss.
    public var bestEpoch: Int
    /// The epoch whose weights `model` holds.
    public var modelEpoch: Int
    /// Validation logits of `model` (for calibration and reports).
    public var validLogits: RowLogits
}

/// Thrown by `stopAfterSteps`, as a kill would stop the run.
public struct TrainingInterrupted: Error, CustomStringConvertible {
    public var step: Int
    public var description: String { "training stopped after step \(step) (stopAfterSteps)" }
}

/// The training loop: seeded shuffled batches grouped by surface, Adam + sparse
/// Adagrad, validation after each epoch, early stopping on validation log loss,
/// resumable checkpoints (`<checkpoints>/step-N` model dirs + optimizer state).
public final class Trainer {
    public let config: ModelConfig
    public let train: EncodedRows
    public let valid: EncodedRows
    public let options: TrainingOptions
    public let checkpoints: URL
    public let label: String

    /// `config` must already hold the training set's dense stats.
    public init(config: ModelConfig, train: EncodedRows, valid: EncodedRows, options: TrainingOptions, checkpoints: URL, label: String = "train") {
        self.config = config
        self.train = train
        self.valid = valid
        self.options = options
        self.checkpoints = checkpoints
        self.label = label
    }

    struct State {
        var epoch = 1, batch = 0, step = 0
        var lossSum = 0.0, lossRows = 0
        var bestLogloss = Double.infinity, bestEpoch = 0, badEpochs = 0
        var history: [EpochSummary] = []
        var epochStart = Date()
    }

    /// Trains; with `resume`, continues from the newest checkpoint in `checkpoints`.
    public func run(resume: Bool) throws -> TrainingResult {
        Threads.set(options.threads)
        let model = BraidModel(config: config, seed: options.seed)
        let store = model.parameters
        let optimizer = ModelOptimizer(store, learningRate: options.learningRate, embeddingLearningRate: options.embeddingLearningRate)
        var state = State()
        if resume, let latest = try latestCheckpoint() {
            state = try restore(latest, store: store, optimizer: optimizer)
            log("\(label): resumed from \(latest.lastPathComponent) (epoch \(state.epoch), batch \(state.batch))")
        }
        try FileManager.default.createDirectory(at: checkpoints, withIntermediateDirectories: true)
        var stopped = false
        let rows = trainingRows()
        let rowSurfaces = rows.map { train.surface[$0] }
        while state.epoch <= options.epochs && !stopped {
            let plan = shuffledBatches(surface: rowSurfaces, batchSize: options.batchSize, seed: options.seed, epoch: state.epoch)
                .map { $0.map { rows[$0] } }
            let progress = ProgressLine(label: "\(label) epoch \(state.epoch)/\(options.epochs)", total: rows.count, enabled: options.progress)
            if state.batch == 0 { state.lossSum = 0; state.lossRows = 0 }
            state.epochStart = Date()
            var rowsThisRun = 0
            let train = self.train
            let stream = BatchStream(plan: Array(plan[state.batch...]), prefetch: 3) { train.batch(rows: $0) }
            for batch in stream {
                optimizer.adam.learningRate = options.learningRate
                    * options.learningRateSchedule.factor(step: state.step, totalSteps: options.epochs * plan.count)
                let tape = Tape()
                let loss = tape.record { model.loss(model(batch), batch: batch) }
                tape.backward(loss)
                optimizer.step()
                state.lossSum += Double(loss[0]) * Double(batch.count)
                state.lossRows += batch.count
                state.batch += 1
                state.step += 1
                rowsThisRun += batch.count
                progress.update(done: state.lossRows, loss: state.lossSum / Double(state.lossRows))
                if options.checkpointEvery > 0 && state.step % options.checkpointEvery == 0 && state.batch < plan.count {
                    try saveCheckpoint(state, store: store, optimizer: optimizer)
                }
                if let stop = options.stopAfterSteps, state.step >= stop {
                    progress.finish()
                    throw TrainingInterrupted(step: state.step)
                }
            }
            progress.update(done: state.lossRows, loss: state.lossSum / Double(max(state.lossRows, 1)), force: true)
            progress.finish()
            let seconds = Date().timeIntervalSince(state.epochStart)
            // validation (uncalibrated), early stopping
            let logits = predictLogits(model, rows: valid)
            let probs = logits.probabilities(surface: valid.surface, schema: config.schema, calibration: [:])
            let report = metricsReport(probabilities: probs, rows: valid, surfaces: config.surfacesIncluded)
            let pooled = pooledLogloss(probs, rows: valid)
            let summary = EpochSummary(epoch: state.epoch, trainLoss: state.lossSum / Double(max(state.lossRows, 1)), validLogloss: pooled,
                                       rowsPerSecond: Double(rowsThisRun) / max(seconds, 1e-9), report: report)
            state.history.append(summary)
            log(formatEpoch(summary))
            if pooled < state.bestLogloss {
                state.bestLogloss = pooled
                state.bestEpoch = state.epoch
                state.badEpochs = 0
                // only early stopping reads the best epoch back (without it the last epoch is the model)
                if options.patience > 0 { try writeBest(store: store, epoch: state.epoch) }
            } else {
                state.badEpochs += 1
                if options.patience > 0 && state.badEpochs >= options.patience {
                    log("\(label): early stopping after epoch \(state.epoch): validation log loss did not improve on epoch \(state.bestEpoch)'s \(String(format: "%.5f", state.bestLogloss))")
                    stopped = true
                }
            }
            state.epoch += 1
            state.batch = 0
            try saveCheckpoint(state, store: store, optimizer: optimizer)
        }
        // with early stopping, the best epoch's weights; without, the last epoch's
        var modelEpoch = state.history.last?.epoch ?? 0
        if options.patience > 0 && state.bestEpoch > 0 && state.bestEpoch != modelEpoch {
            let best = try readModelDirectory(at: bestDirectory(epoch: state.bestEpoch))
            try store.load(from: best.weights, layout: parameterLayout(config))
            modelEpoch = state.bestEpoch
        }
        let logits = predictLogits(model, rows: valid)
        return TrainingResult(model: model, config: config, history: state.history, bestEpoch: state.bestEpoch,
                              modelEpoch: modelEpoch, validLogits: logits)
    }

    /// The training rows (all, or `options.negativeKeepRate`'s sample), logged when sampled.
    private func trainingRows() -> [Int] {
        let surfaces = config.schema.surfaces
        var keep: [Int32: Double] = [:]
        for (name, rate) in options.negativeKeepRate {
            if let s = surfaces.firstIndex(of: name) { keep[Int32(s)] = rate }
        }
        guard !keep.isEmpty else { return Array(0..<train.count) }
        let rows = negativeSampledRows(surface: train.surface, labels: train.labels, taskCount: config.schema.allTasks.count,
                                       keepRate: keep, seed: options.seed)
        let rates = keep.sorted { $0.key < $1.key }.map { "\(surfaces[Int($0.key)]) \($0.value)" }.joined(separator: ", ")
        log("\(label): negative sampling (\(rates) of rows without a positive label): training on \(rows.count) of \(train.count) rows")
        return rows
    }

    // MARK: checkpoints

    func bestDirectory(epoch: Int) -> URL { checkpoints.appendingPathComponent("best-epoch-\(epoch)") }

    private func writeBest(store: ParameterStore, epoch: Int) throws {
        let url = bestDirectory(epoch: epoch)
        if FileManager.default.fileExists(atPath: url.path) { return }  // a resumed run reached it before
        try writeModelDirectory(at: url, modelJSON: config.jsonData(), weights: store.safetensorsData())
    }

    private func stepName(_ step: Int) -> String { String(format: "step-%09d", step) }

    private func saveCheckpoint(_ state: State, store: ParameterStore, optimizer: ModelOptimizer) throws {
        let dir = checkpoints.appendingPathComponent(stepName(state.step))
        if FileManager.default.fileExists(atPath: dir.path) { return }
        let stateURL = checkpoints.appendingPathComponent(stepName(state.step) + ".state.safetensors")
        let adam = optimizer.adam.state
        var sources = [SafeTensorSource(name: "adam.m", shape: [adam.count], floatsAt: UnsafeBufferPointer(start: adam.m, count: adam.count)),
                       SafeTensorSource(name: "adam.v", shape: [adam.count], floatsAt: UnsafeBufferPointer(start: adam.v, count: adam.count))]
        for (opt, table) in zip(optimizer.adagrad, store.embeddingTables) {
            sources.append(SafeTensorSource(name: "adagrad.\(table.name)", shape: [table.rows, table.dim],
                                            floatsAt: UnsafeBufferPointer(start: opt.accumulator.pointer, count: opt.accumulator.count)))
        }
        let history = state.history.map { "\($0.epoch),\($0.trainLoss),\($0.validLogloss),\($0.rowsPerSecond)" }.joined(separator: ";")
        let meta: [String: String] = [
            "epoch": "\(state.epoch)", "batch": "\(state.batch)", "step": "\(state.step)", "adam_step": "\(adam.step)",
            "loss_sum": "\(state.lossSum)", "loss_rows": "\(state.lossRows)", "best_logloss": "\(state.bestLogloss)",
            "best_epoch": "\(state.bestEpoch)", "bad_epochs": "\(state.badEpochs)", "history": history,
        ]
        try writeFileAtomically(stateURL, try encodeSafeTensors(sources, metadata: meta))
        try writeModelDirectory(at: dir, modelJSON: config.jsonData(), weights: store.safetensorsData())
        // keep the newest two step checkpoints
        let old = try stepCheckpoints().dropLast(2)
        for url in old {
            try? FileManager.default.removeItem(at: url)
            try? FileManager.default.removeItem(at: URL(fileURLWithPath: url.path + ".state.safetensors"))
        }
    }

    private func stepCheckpoints() throws -> [URL] {
        guard FileManager.default.fileExists(atPath: checkpoints.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: checkpoints.path)
            .filter { $0.hasPrefix("step-") && !$0.hasSuffix(".safetensors") && !$0.hasPrefix(".") }
            .sorted()
            .map { checkpoints.appendingPathComponent($0) }
            .filter { FileManager.default.fileExists(atPath: $0.path + ".state.safetensors") }
    }

    func latestCheckpoint() throws -> URL? { try stepCheckpoints().last }

    private func restore(_ dir: URL, store: ParameterStore, optimizer: ModelOptimizer) throws -> State {
        let weights = try readModelDirectory(at: dir).weights
        try store.load(from: weights, layout: parameterLayout(config))
        let file = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: dir.path + ".state.safetensors"))
        let adam = optimizer.adam.state
        try file.tensor("adam.m").copyFloats(into: UnsafeMutableBufferPointer(start: adam.m, count: adam.count))
        try file.tensor("adam.v").copyFloats(into: UnsafeMutableBufferPointer(start: adam.v, count: adam.count))
        for (opt, table) in zip(optimizer.adagrad, store.embeddingTables) {
            try file.tensor("adagrad.\(table.name)").copyFloats(into: UnsafeMutableBufferPointer(start: opt.accumulator.pointer, count: opt.accumulator.count))
        }
        let m = file.metadata
        func int(_ k: String) throws -> Int {
            guard let v = m[k].flatMap(Int.init) else { throw CheckpointError("\(dir.path).state.safetensors: metadata \(k) missing; expected a checkpoint written by braid train") }
            return v
        }
        optimizer.adam.restore(step: try int("adam_step"))
        var state = State()
        state.epoch = try int("epoch"); state.batch = try int("batch"); state.step = try int("step")
        state.lossSum = Double(m["loss_sum"] ?? "0") ?? 0; state.lossRows = try int("loss_rows")
        state.bestLogloss = Double(m["best_logloss"] ?? "inf") ?? .infinity
        state.bestEpoch = try int("best_epoch"); state.badEpochs = try int("bad_epochs")
        // history: the per-epoch figures (reports are recomputed only for new epochs)
        for entry in (m["history"] ?? "").split(separator: ";") {
            let f = entry.split(separator: ",").map { Double($0) ?? .nan }
            if f.count == 4 {
                state.history.append(EpochSummary(epoch: Int(f[0]), trainLoss: f[1], validLogloss: f[2], rowsPerSecond: f[3],
                                                  report: MetricsReport(pairs: ScoredPairs(), surfaceTasks: [])))
            }
        }
        return state
    }
}

/// Writes `data` to `url` through a temporary sibling, fsynced, then renamed into place.
public func writeFileAtomically(_ url: URL, _ data: Foundation.Data) throws {
    let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
    guard FileManager.default.createFile(atPath: tmp.path, contents: data) else {
        throw CheckpointError("cannot write \(tmp.path); expected a writable directory")
    }
    let fd = open(tmp.path, O_RDONLY)
    if fd >= 0 { fsync(fd); close(fd) }
    if rename(tmp.path, url.path) != 0 {
        try? FileManager.default.removeItem(at: tmp)
        throw CheckpointError("cannot rename \(tmp.path) to \(url.path): \(String(cString: strerror(errno)))")
    }
}

/// The log loss pooled over every labelled (row, task) pair with a head.
public func pooledLogloss(_ p: [Double], rows: EncodedRows) -> Double {
    let pairs = scoredPairs(probabilities: p, rows: rows)
    return logLoss(probabilities: pairs.probabilities, labels: pairs.labels) ?? .nan
}

/// "epoch 2: train loss 0.23456, 45,000 rows/s; valid log loss 0.21234" plus one line per surface/task.
public func formatEpoch(_ e: EpochSummary) -> String {
    var lines = [String(format: "epoch %d: train loss %.5f, %.0f rows/s; valid (uncalibrated) log loss %.5f", e.epoch, e.trainLoss, e.rowsPerSecond, e.validLogloss)]
    for (s, tasks) in e.report.surfaces {
        for (t, m) in tasks {
            lines.append("  " + pad("\(s)/\(t)", 24, left: true) + " n=" + pad(String(m.count), 8, left: true) + " auc " + fmt(m.auc) + "  logloss " + fmt(m.logloss))
        }
    }
    return lines.joined(separator: "\n")
}

func fmt(_ x: Double?) -> String { x.map { String(format: "%.4f", $0) } ?? "-" }

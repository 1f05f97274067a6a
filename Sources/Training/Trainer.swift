import Checkpoint
import Data
import Foundation
import Kernels
import Metrics
import Model
import Distributed
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

/// How `Trainer` shuffles an epoch (`TrainingOptions.shuffle`).
public enum ShuffleMode: String, Sendable, CaseIterable {
    case auto, full, block
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
    /// How an epoch's batches are drawn: `full` shuffles all rows (`shuffledBatches`, the rows'
    /// order and surfaces held in memory); `block` shuffles blocks of `blockRows` rows and rows
    /// within windows of `windowBlocks` blocks (`BlockShuffledBatches`, memory independent of the
    /// rows); `auto` is `block` when the training cache is larger than `memoryBudget` bytes.
    public var shuffle = ShuffleMode.auto
    public var memoryBudget = 4 << 30
    public var blockRows = 4096
    public var windowBlocks = 64
    /// Crash (SIGKILL, no clean-up) rank `rank` after `steps` steps: for tests of a rank dying mid-run.
    public var crashRank: (rank: Int, steps: Int)?
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
/// resumable checkpoints (`TrainingCheckpoints`).
///
/// Data-parallel over the ranks of `communicator` (one rank: the single-process run): every
/// rank computes the same epoch plan, takes its share b_r of each global batch of
/// B = `options.batchSize` rows (rank r: every N-th row of the batch, which is sorted by
/// surface, from position r: `slice`), and `GradientExchange` turns the ranks' gradients into the global
/// batch's, so every rank applies the same update and the model does not depend on the
/// number of ranks beyond float summation order. Validation scores are computed on a slice
/// of the validation rows per rank and gathered, so every rank takes the same early-stopping
/// decision. Only rank 0 logs and writes checkpoints.
public final class Trainer {
    public let config: ModelConfig
    public let train: any RowSource
    public let valid: EncodedRows
    public let options: TrainingOptions
    public let checkpoints: URL
    public let label: String
    public let communicator: Communicator

    /// `config` must already hold the training set's dense stats.
    public init(config: ModelConfig, train: any RowSource, valid: EncodedRows, options: TrainingOptions, checkpoints: URL,
                label: String = "train", communicator: Communicator = .single) {
        self.config = config
        self.train = train
        self.valid = valid
        self.options = options
        self.checkpoints = checkpoints
        self.label = label
        self.communicator = communicator
    }

    /// Logs on rank 0 only.
    fileprivate func say(_ message: String) { if communicator.isRoot { log(message) } }

    /// Trains; with `resume`, continues from the newest checkpoint in `checkpoints`.
    public func run(resume: Bool) throws -> TrainingResult {
        Threads.set(options.threads)
        let comm = communicator
        let model = BraidModel(config: config, seed: options.seed)
        let store = model.parameters
        let optimizer = ModelOptimizer(store, learningRate: options.learningRate, embeddingLearningRate: options.embeddingLearningRate)
        let saved = TrainingCheckpoints(directory: checkpoints, config: config)
        let exchange = GradientExchange(communicator: comm, store: store)
        // the process's rows of a batch split over its threads, a shard each (`ShardedStep`)
        let sharded = ShardedStep(model: model, shards: max(1, options.threads))
        var state = TrainingState()
        if resume, let (restored, from) = try restoreOnEveryRank(saved, store: store, optimizer: optimizer) {
            state = restored
            say("\(label): resumed from \(from) (epoch \(state.epoch), batch \(state.batch))")
        }
        if comm.isRoot { try FileManager.default.createDirectory(at: checkpoints, withIntermediateDirectories: true) }
        var stopped = false
        let planner = EpochPlanner(trainer: self)
        while state.epoch <= options.epochs && !stopped {
            let plan = planner.plan(epoch: state.epoch)
            let progress = ProgressLine(label: "\(label) epoch \(state.epoch)/\(options.epochs)", total: planner.rows,
                                        enabled: options.progress && comm.isRoot)
            if state.batch == 0 { state.lossSum = 0; state.lossRows = 0 }
            state.epochStart = Date()
            var rowsThisRun = 0, stepsThisRun = 0, commSeconds = 0.0, commBytes = 0
            let train = self.train
            let local = plan.batches.dropFirst(state.batch).lazy.map { Self.slice($0, rank: comm.rank, of: comm.size) }
            let stream = BatchStream(plan: local, count: plan.count - state.batch, prefetch: 3) { [sharded] rows in
                sharded.shards(of: rows).map { train.batch(rows: $0) }
            }
            for shards in stream {
                optimizer.adam.learningRate = options.learningRate
                    * options.learningRateSchedule.factor(step: state.step, totalSteps: options.epochs * plan.count)
                if planner.block && state.step % planner.releaseEvery == 0 { train.releaseResidentPages() }
                let local = sharded.run(shards)
                let step = try exchange.exchange(localRows: local.rows, localLossSum: local.lossSum)
                optimizer.step()
                state.lossSum += step.lossSum
                state.lossRows += step.rows
                state.batch += 1
                state.step += 1
                rowsThisRun += step.rows
                stepsThisRun += 1
                commSeconds += step.seconds
                commBytes += step.bytes
                progress.update(done: state.lossRows, loss: state.lossSum / Double(state.lossRows))
                if let crash = options.crashRank, crash.rank == comm.rank, state.step >= crash.steps {
                    log("\(label): rank \(comm.rank): crashing on purpose after step \(state.step) (crash option)")
                    kill(getpid(), SIGKILL)
                }
                if comm.isRoot && options.checkpointEvery > 0 && state.step % options.checkpointEvery == 0 && state.batch < plan.count {
                    try saved.save(state, store: store, optimizer: optimizer)
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
            let logits = try validationLogits(model)
            let probs = logits.probabilities(surface: valid.surface, schema: config.schema, calibration: [:])
            let report = metricsReport(probabilities: probs, rows: valid, surfaces: config.surfacesIncluded)
            let pooled = pooledLogloss(probs, rows: valid)
            let summary = EpochSummary(epoch: state.epoch, trainLoss: state.lossSum / Double(max(state.lossRows, 1)), validLogloss: pooled,
                                       rowsPerSecond: Double(rowsThisRun) / max(seconds, 1e-9), report: report)
            state.history.append(summary)
            say(formatEpoch(summary))
            if comm.size > 1 && stepsThisRun > 0 {
                say(String(format: "\(label): %d ranks, global batch %d: communication %.2f ms and %.0f bytes (sent + received) per step on rank 0, %.1f%% of the epoch",
                           comm.size, options.batchSize, 1000 * commSeconds / Double(stepsThisRun), Double(commBytes) / Double(stepsThisRun),
                           100 * commSeconds / max(seconds, 1e-9)))
            }
            if pooled < state.bestLogloss {
                state.bestLogloss = pooled
                state.bestEpoch = state.epoch
                state.badEpochs = 0
                // only early stopping reads the best epoch back (without it the last epoch is the model)
                if options.patience > 0 && comm.isRoot { try saved.writeBest(store: store, epoch: state.epoch) }
            } else {
                state.badEpochs += 1
                if options.patience > 0 && state.badEpochs >= options.patience {
                    say("\(label): early stopping after epoch \(state.epoch): validation log loss did not improve on epoch \(state.bestEpoch)'s \(String(format: "%.5f", state.bestLogloss))")
                    stopped = true
                }
            }
            state.epoch += 1
            state.batch = 0
            if comm.isRoot { try saved.save(state, store: store, optimizer: optimizer) }
        }
        // with early stopping, the best epoch's weights; without, the last epoch's (rank 0 writes the model)
        var modelEpoch = state.history.last?.epoch ?? 0
        if options.patience > 0 && state.bestEpoch > 0 && state.bestEpoch != modelEpoch {
            modelEpoch = state.bestEpoch
            if comm.isRoot {
                let best = try readModelDirectory(at: saved.bestDirectory(epoch: state.bestEpoch))
                try store.load(from: best.weights, layout: parameterLayout(config))
            }
        }
        let logits = comm.isRoot ? predictLogits(model, rows: valid) : RowLogits(count: 0, tasks: 0, logits: [])
        return TrainingResult(model: model, config: config, history: state.history, bestEpoch: state.bestEpoch,
                              modelEpoch: modelEpoch, validLogits: logits)
    }

    /// Rank `rank`'s share of a global batch (sorted by surface): every `size`-th row from
    /// position `rank`, so every rank gets about the same mix of surfaces (balanced compute)
    /// and its rows stay sorted by surface.
    public static func slice(_ batch: [Int], rank: Int, of size: Int) -> [Int] {
        guard size > 1 else { return batch }
        return Array(stride(from: rank, to: batch.count, by: size).map { batch[$0] })
    }

    /// The validation logits of every row: one rank scores them all; several score a slice each
    /// and gather the slices, so every rank holds the same logits.
    private func validationLogits(_ model: BraidModel) throws -> RowLogits {
        let comm = communicator
        guard comm.size > 1 else { return predictLogits(model, rows: valid) }
        let n = valid.count, T = config.schema.allTasks.count
        let bounds = (0...comm.size).map { n * $0 / comm.size }
        let mine = predictLogits(model, rows: valid, range: bounds[comm.rank] ..< bounds[comm.rank + 1])
        let counts = (0..<comm.size).map { (bounds[$0 + 1] - bounds[$0]) * T }
        return RowLogits(count: n, tasks: T, logits: try comm.allgatherv(mine.logits, counts: counts))
    }

    /// Restores the newest checkpoint: rank 0 reads it and sends the weights, optimizer state and
    /// run state to the other ranks (which need no access to rank 0's files). Nil without one.
    private func restoreOnEveryRank(_ saved: TrainingCheckpoints, store: ParameterStore,
                                    optimizer: ModelOptimizer) throws -> (TrainingState, String)? {
        let comm = communicator
        var meta: [UInt8] = []
        var name = ""
        if comm.isRoot, let latest = try saved.latest() {
            var state = try saved.restore(latest, store: store, optimizer: optimizer)
            state.epochStart = Date()
            name = latest.lastPathComponent
            let text = TrainingCheckpoints.metadata(state, adamStep: optimizer.adam.state.step)
                .sorted { $0.key < $1.key }.map { "\($0.key)\t\($0.value)" }.joined(separator: "\n")
            meta = Array(text.utf8)
            if comm.size == 1 { return (state, name) }
        }
        guard comm.size > 1 else { return nil }
        try comm.broadcast(&meta)
        if meta.isEmpty { return nil }
        try comm.broadcast(store.values.pointer, count: store.denseCount)
        for table in store.embeddingTables { try comm.broadcast(table.weight.data, count: table.rows * table.dim) }
        let adam = optimizer.adam.state
        try comm.broadcast(adam.m, count: adam.count)
        try comm.broadcast(adam.v, count: adam.count)
        for opt in optimizer.adagrad { try comm.broadcast(opt.accumulator.pointer, count: opt.accumulator.count) }
        var pairs: [String: String] = [:]
        for line in String(decoding: meta, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: "\t", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.count == 2 { pairs[String(parts[0])] = String(parts[1]) }
        }
        let (state, adamStep) = try TrainingCheckpoints.state(from: pairs, path: "checkpoint metadata from rank 0")
        optimizer.adam.restore(step: adamStep)
        return (state, name.isEmpty ? "rank 0's checkpoint" : name)
    }

    /// Negative sampling's keep rates by surface index (empty: every row).
    fileprivate var keepRates: [Int32: Double] {
        var keep: [Int32: Double] = [:]
        for (name, rate) in options.negativeKeepRate {
            if let s = config.schema.surfaces.firstIndex(of: name) { keep[Int32(s)] = rate }
        }
        return keep
    }

    /// Logs negative sampling's effect.
    fileprivate func logSampling(kept: Int) {
        let surfaces = config.schema.surfaces
        let rates = keepRates.sorted { $0.key < $1.key }.map { "\(surfaces[Int($0.key)]) \($0.value)" }.joined(separator: ", ")
        say("\(label): negative sampling (\(rates) of rows without a positive label): training on \(kept) of \(train.count) rows")
    }
}

/// The epochs' batch plans of a `Trainer` (`TrainingOptions.shuffle`): with the full shuffle,
/// the kept rows and their surfaces are held and shuffled whole; with the block shuffle,
/// only the number of kept rows is (one pass over the targets) and windows are read lazily.
private struct EpochPlanner {
    let trainer: Trainer
    /// Training rows per epoch (after negative sampling).
    let rows: Int
    let block: Bool
    /// Steps between `releaseResidentPages` calls with the block shuffle: about one window.
    let releaseEvery: Int
    private let kept: [Int], keptSurface: [Int32]
    private let keep: (@Sendable (Int, RowTargets) -> [Int])?

    init(trainer: Trainer) {
        self.trainer = trainer
        let options = trainer.options, train = trainer.train
        let cacheBytes = (train as? DataCache)?.byteCount ?? 0
        block = options.shuffle == .block || (options.shuffle == .auto && cacheBytes > options.memoryBudget)
        releaseEvery = max(1, options.blockRows * options.windowBlocks / options.batchSize)
        let rates = trainer.keepRates, seed = options.seed, tasks = trainer.config.schema.allTasks.count
        if rates.isEmpty {
            keep = nil
        } else {
            keep = { (first: Int, targets: RowTargets) -> [Int] in
                negativeSampledRows(surface: targets.surface, labels: targets.labels, taskCount: tasks, keepRate: rates, seed: seed, firstRow: first)
            }
        }
        if block {
            var count = 0
            if let keep {
                var start = 0
                while start < train.count {
                    let end = min(start + options.blockRows, train.count)
                    count += keep(start, train.targets(rows: start ..< end)).count
                    start = end
                }
            } else {
                count = train.count
            }
            rows = count
            kept = []
            keptSurface = []
            trainer.say("\(trainer.label): block shuffle (\(options.blockRows)-row blocks, windows of \(options.windowBlocks) blocks)")
        } else {
            let targets = train.targets(rows: 0 ..< train.count)
            kept = keep?(0, targets) ?? Array(0 ..< train.count)
            keptSurface = kept.map { targets.surface[$0] }
            rows = kept.count
        }
        if keep != nil { trainer.logSampling(kept: rows) }
    }

    /// Epoch `epoch`'s global batches and their number.
    func plan(epoch: Int) -> (batches: AnySequence<[Int]>, count: Int) {
        let options = trainer.options
        let count = (rows + options.batchSize - 1) / options.batchSize
        if block {
            return (AnySequence(BlockShuffledBatches(source: trainer.train, batchSize: options.batchSize, blockRows: options.blockRows,
                                                     windowBlocks: options.windowBlocks, seed: options.seed, epoch: epoch, keep: keep)), count)
        }
        let kept = self.kept
        let batches = shuffledBatches(surface: keptSurface, batchSize: options.batchSize, seed: options.seed, epoch: epoch)
            .map { $0.map { kept[$0] } }
        return (AnySequence(batches), batches.count)
    }
}

/// The log loss pooled over every labelled (row, task) pair with a head.
public func pooledLogloss(_ p: [Double], rows: some LabelledRows) -> Double {
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

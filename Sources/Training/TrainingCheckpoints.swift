import Checkpoint
import Foundation
import Metrics
import Model
import NN
import Optim
import Schema

/// Where a training run is: the next epoch (1-based) and batch within it, the steps taken,
/// the running training loss of the epoch, early stopping's best epoch, and the history.
struct TrainingState {
    var epoch = 1, batch = 0, step = 0
    var lossSum = 0.0, lossRows = 0
    var bestLogloss = Double.infinity, bestEpoch = 0, badEpochs = 0
    var history: [EpochSummary] = []
    var epochStart = Date()
}

/// The resumable checkpoints of one run in `directory`:
/// - `step-NNNNNNNNN/`: a model directory (SPEC 3) with the weights after step N, plus
///   `state.safetensors`: Adam's m and v [P], every table's Adagrad accumulator [rows, D],
///   and in the metadata the `TrainingState` and Adam's step;
/// - `best-epoch-E/`: the weights after epoch E when it had the lowest validation log loss
///   (written only with early stopping).
/// Each is written at once by `writeNewDirectory` (temporary sibling, fsynced, renamed into
/// place), so a kill at any moment leaves the previous checkpoint whole. The newest two step
/// checkpoints are kept.
struct TrainingCheckpoints {
    let directory: URL
    let config: ModelConfig

    /// The optimizer and run state's file inside a step checkpoint.
    static let stateFile = "state.safetensors"

    func bestDirectory(epoch: Int) -> URL { directory.appendingPathComponent("best-epoch-\(epoch)") }

    private func stepName(_ step: Int) -> String { String(format: "step-%09d", step) }

    private func stateURL(_ checkpoint: URL) -> URL { checkpoint.appendingPathComponent(Self.stateFile) }

    /// Writes `best-epoch-E` unless a resumed run wrote it before.
    func writeBest(store: ParameterStore, epoch: Int) throws {
        let url = bestDirectory(epoch: epoch)
        if FileManager.default.fileExists(atPath: url.path) { return }
        try writeModelDirectory(at: url, modelJSON: config.jsonData(), weights: store.safetensorsData())
    }

    /// Saves a checkpoint at `state.step` (nothing when it exists) and drops all but the newest two.
    func save(_ state: TrainingState, store: ParameterStore, optimizer: ModelOptimizer) throws {
        let dir = directory.appendingPathComponent(stepName(state.step))
        if FileManager.default.fileExists(atPath: dir.path) { return }
        let adam = optimizer.adam.state
        var sources = [SafeTensorSource(name: "adam.m", shape: [adam.count], floatsAt: UnsafeBufferPointer(start: adam.m, count: adam.count)),
                       SafeTensorSource(name: "adam.v", shape: [adam.count], floatsAt: UnsafeBufferPointer(start: adam.v, count: adam.count))]
        for (opt, table) in zip(optimizer.adagrad, store.embeddingTables) {
            sources.append(SafeTensorSource(name: "adagrad.\(table.name)", shape: [table.rows, table.dim],
                                            floatsAt: UnsafeBufferPointer(start: opt.accumulator.pointer, count: opt.accumulator.count)))
        }
        let stateBytes = try encodeSafeTensors(sources, metadata: Self.metadata(state, adamStep: adam.step))
        try writeNewDirectory(at: dir, files: [(ModelDirectoryFile.weights, store.safetensorsData()),
                                               (ModelDirectoryFile.config, config.jsonData()), (Self.stateFile, stateBytes)],
                              what: "a checkpoint is written once")
        for url in try stepCheckpoints().dropLast(2) {
            // renamed out of the way first, so a kill mid-removal leaves no partial step-N/
            let trash = directory.appendingPathComponent(".removing-\(url.lastPathComponent)")
            try? FileManager.default.moveItem(at: url, to: trash)
            try? FileManager.default.removeItem(at: trash)
        }
    }

    /// The step checkpoints, oldest first.
    private func stepCheckpoints() throws -> [URL] {
        guard FileManager.default.fileExists(atPath: directory.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasPrefix("step-") }
            .sorted()
            .map { directory.appendingPathComponent($0) }
            .filter { FileManager.default.fileExists(atPath: stateURL($0).path) }
    }

    /// The newest checkpoint, if any.
    func latest() throws -> URL? { try stepCheckpoints().last }

    /// Loads `checkpoint`'s weights into `store` and its optimizer state into `optimizer`,
    /// and returns the run's state there.
    func restore(_ checkpoint: URL, store: ParameterStore, optimizer: ModelOptimizer) throws -> TrainingState {
        let weights = try readModelDirectory(at: checkpoint).weights
        try store.load(from: weights, layout: parameterLayout(config))
        let file = try SafeTensorsFile(contentsOf: stateURL(checkpoint))
        let adam = optimizer.adam.state
        try file.tensor("adam.m").copyFloats(into: UnsafeMutableBufferPointer(start: adam.m, count: adam.count))
        try file.tensor("adam.v").copyFloats(into: UnsafeMutableBufferPointer(start: adam.v, count: adam.count))
        for (opt, table) in zip(optimizer.adagrad, store.embeddingTables) {
            try file.tensor("adagrad.\(table.name)").copyFloats(into: UnsafeMutableBufferPointer(start: opt.accumulator.pointer, count: opt.accumulator.count))
        }
        let (state, adamStep) = try Self.state(from: file.metadata, path: stateURL(checkpoint).path)
        optimizer.adam.restore(step: adamStep)
        return state
    }

    /// The state file's metadata: the `TrainingState` and Adam's step as text.
    static func metadata(_ state: TrainingState, adamStep: Int) -> [String: String] {
        let history = state.history.map { "\($0.epoch),\($0.trainLoss),\($0.validLogloss),\($0.rowsPerSecond)" }.joined(separator: ";")
        return [
            "epoch": "\(state.epoch)", "batch": "\(state.batch)", "step": "\(state.step)", "adam_step": "\(adamStep)",
            "loss_sum": "\(state.lossSum)", "loss_rows": "\(state.lossRows)", "best_logloss": "\(state.bestLogloss)",
            "best_epoch": "\(state.bestEpoch)", "bad_epochs": "\(state.badEpochs)", "history": history,
        ]
    }

    /// The inverse of `metadata`; `path` names the file in errors.
    static func state(from m: [String: String], path: String) throws -> (TrainingState, adamStep: Int) {
        func int(_ k: String) throws -> Int {
            guard let v = m[k].flatMap(Int.init) else { throw CheckpointError("\(path): metadata \(k) missing; expected a checkpoint written by braid train") }
            return v
        }
        var state = TrainingState()
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
        return (state, try int("adam_step"))
    }
}

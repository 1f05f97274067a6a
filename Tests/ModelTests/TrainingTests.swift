import Data
import Foundation
import Model
import Schema
import TestSupport
import Testing
import Training

/// The training loop on a fixture's 24 rows: a killed-and-resumed run ends
/// exactly where an uninterrupted one does, and the run's files are as documented.
@Suite struct TrainingTests {
    static func job(_ out: URL, stopAfter: Int? = nil, resume: Bool = false,
                    schedule: LearningRateSchedule = .constant) -> TrainRun {
        var options = TrainingOptions()
        options.epochs = 3; options.batchSize = 5; options.checkpointEvery = 2; options.threads = 1
        options.learningRateSchedule = schedule
        options.progress = false; options.patience = 0; options.stopAfterSteps = stopAfter
        let csv = Fixtures.url("multi_exclusive/batch.csv")
        var job = TrainRun(config: Fixtures.url("multi_exclusive/model.json"), trainFile: csv, validFile: csv, out: out, options: options)
        job.resume = resume
        return job
    }

    static func temporaryDirectory() -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("braid-train-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test(arguments: LearningRateSchedule.allCases)
    func resumeAfterKillMatchesUninterruptedRun(schedule: LearningRateSchedule) throws {
        let base = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: base) }
        let whole = try Self.job(base.appendingPathComponent("whole"), schedule: schedule).run()
        let killed = base.appendingPathComponent("killed")
        #expect(throws: TrainingInterrupted.self) {   // mid-epoch 2 (5 batches per epoch)
            try Self.job(killed, stopAfter: 7, schedule: schedule).run()
        }
        let resumed = try Self.job(killed, resume: true, schedule: schedule).run()
        let a = try BraidModel.load(directory: whole[0].directory), b = try BraidModel.load(directory: resumed[0].directory)
        for name in a.parameters.allNames {
            #expect(a.parameters.tensor(named: name)!.values == b.parameters.tensor(named: name)!.values, "\(name) differs after resume")
        }
        #expect(a.config.calibration == b.config.calibration)
        #expect(whole[0].history.map(\.trainLoss) == resumed[0].history.map(\.trainLoss))
    }

    @Test func cosineScheduleFallsFromTheBaseRateToZero() {
        let T = 40
        #expect(LearningRateSchedule.cosine.factor(step: 0, totalSteps: T) == 1)
        #expect(abs(LearningRateSchedule.cosine.factor(step: T / 2, totalSteps: T) - 0.5) < 1e-6)
        #expect(LearningRateSchedule.cosine.factor(step: T, totalSteps: T) < 1e-6)
        let factors = (0...T).map { LearningRateSchedule.cosine.factor(step: $0, totalSteps: T) }
        #expect(zip(factors, factors.dropFirst()).allSatisfy { $0 > $1 }, "the cosine factor must fall at every step")
        #expect((0...T).allSatisfy { LearningRateSchedule.constant.factor(step: $0, totalSteps: T) == 1 })
    }

    /// With the cosine schedule the run's weights differ from a constant-rate run's
    /// (the schedule reaches the optimizer).
    @Test func cosineScheduleChangesTheRun() throws {
        let base = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: base) }
        let constant = try Self.job(base.appendingPathComponent("constant")).run()
        let cosine = try Self.job(base.appendingPathComponent("cosine"), schedule: .cosine).run()
        #expect(constant[0].history.last!.trainLoss != cosine[0].history.last!.trainLoss)
    }

    /// Negative sampling of a surface the config does not train is refused before any work.
    @Test func negativeSamplingOfAnUnknownSurfaceIsAnError() throws {
        let out = Self.temporaryDirectory().appendingPathComponent("run")
        defer { try? FileManager.default.removeItem(at: out.deletingLastPathComponent()) }
        var job = Self.job(out)
        job.options.negativeKeepRate = ["homefeed": 0.5]
        let error = #expect(throws: (any Error).self) { try job.run() }
        let message = error.map { "\($0)" } ?? ""
        #expect(message.contains("negative sampling names surface 'homefeed'") && message.contains("expected one of"), "\(message)")
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("model").path))
    }

    /// Early stopping keeps the best epoch's weights; `patience 0` (off) keeps the last
    /// epoch's, as the reference trainer does. The learning rate is high enough that the
    /// fixture's validation log loss is lowest before the last epoch.
    @Test func patienceZeroKeepsTheLastEpochEarlyStoppingTheBest() throws {
        let base = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: base) }
        var epochs: [Int: (best: Int, model: Int)] = [:], weights: [Int: [Float]] = [:]
        for patience in [0, 5] {
            let out = base.appendingPathComponent("patience-\(patience)")
            var job = Self.job(out)
            job.options.patience = patience
            job.options.learningRate = 0.5
            let trained = try job.run()
            let metrics = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("metrics.json"))) as? [String: Any])
            epochs[patience] = (try #require(metrics["best_epoch"] as? Int), try #require(metrics["model_epoch"] as? Int))
            weights[patience] = try BraidModel.load(directory: trained[0].directory).parameters.tensor(named: "deep.0.weight")!.values
            let bestCopies = try FileManager.default.contentsOfDirectory(atPath: out.appendingPathComponent("checkpoints").path)
                .filter { $0.hasPrefix("best-epoch-") }
            #expect(patience == 0 ? bestCopies.isEmpty : !bestCopies.isEmpty, "patience \(patience): best-epoch copies \(bestCopies)")
        }
        let off = try #require(epochs[0]), on = try #require(epochs[5])
        try #require(off.best != 3, "the fixture run must be best before its last epoch for this test to tell the two apart; best \(off.best)")
        #expect(off.model == 3)
        #expect(on.best == off.best && on.model == on.best)
        #expect(weights[0] != weights[5])
    }

    @Test func runWritesCalibratedModelAndMetrics() throws {
        let out = Self.temporaryDirectory().appendingPathComponent("run")
        defer { try? FileManager.default.removeItem(at: out.deletingLastPathComponent()) }
        let trained = try Self.job(out).run()
        let model = try BraidModel.load(directory: trained[0].directory)
        #expect(trained[0].directory.lastPathComponent == "model")
        #expect(Set(model.config.calibration.keys) == Set(model.config.surfacesIncluded))
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("metrics.json").path))
        #expect(trained[0].history.count == 3)
        // a second run into the same place is refused before training (SPEC 3)
        #expect(throws: (any Error).self) { try Self.job(out).run() }
    }

    /// A schema with no dense features and no sequence (the Douban adapter's shape) trains:
    /// x0 is then the embeddings and the surface embedding only.
    @Test func schemaWithoutDenseFeaturesOrSequenceTrains() throws {
        let base = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: base) }
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.url("multi_exclusive/model.json"))) as? [String: Any])
        var schema = try #require(json["schema"] as? [String: Any]), model = try #require(json["model"] as? [String: Any])
        schema["dense"] = [Any]()
        schema.removeValue(forKey: "sequence"); model.removeValue(forKey: "sequence")
        json["schema"] = schema; json["model"] = model; json["dense_stats"] = [String: Any]()
        let config = base.appendingPathComponent("model.json")
        try JSONSerialization.data(withJSONObject: json).write(to: config)
        var options = TrainingOptions()
        options.epochs = 1; options.batchSize = 5; options.threads = 1; options.progress = false
        let csv = Fixtures.url("multi_exclusive/batch.csv")
        let trained = try TrainRun(config: config, trainFile: csv, validFile: csv, out: base.appendingPathComponent("run"), options: options).run()
        let loaded = try BraidModel.load(directory: trained[0].directory)
        #expect(loaded.config.schema.dense.isEmpty && loaded.config.schema.sequence == nil)
        #expect(trained[0].history.count == 1 && trained[0].history[0].trainLoss.isFinite)
    }

    @Test func separateTrainsOneModelPerSurface() throws {
        let out = Self.temporaryDirectory().appendingPathComponent("sep")
        defer { try? FileManager.default.removeItem(at: out.deletingLastPathComponent()) }
        var job = Self.job(out)
        job.separate = true
        let trained = try job.run()
        #expect(trained.map(\.surface) == ["home_feed", "search", "related_pins"])
        for t in trained {
            let model = try BraidModel.load(directory: t.directory)
            #expect(model.config.surfacesIncluded == [t.surface!])
            #expect(model.config.schema.surfaces == [t.surface!])
        }
    }

    /// The trainer reads the memory-mapped cache as it reads in-memory rows: the same dense
    /// statistics and, trained on either, the same weights to the bit.
    @Test func trainingFromTheCacheEqualsTrainingFromMemory() throws {
        let base = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: base) }
        var config = try ModelConfig.load(from: Fixtures.url("multi_exclusive/model.json"))
        let csv = Fixtures.url("multi_exclusive/batch.csv")
        let encode = EncodeOptions(labels: true, fitDenseStats: true)
        let memory = try EncodedRows(file: csv, config: config, options: encode)
        let cache = try DataCache.open(csv: csv, config: config, options: encode, cacheURL: base.appendingPathComponent("train.braidcache"))
        #expect(cache.denseStats == memory.denseStats)
        config.denseStats = memory.denseStats
        var options = TrainingOptions()
        options.epochs = 2; options.batchSize = 5; options.threads = 1; options.progress = false; options.patience = 0
        var weights: [[Float]] = []
        for (name, source) in [("memory", memory as any RowSource), ("cache", cache as any RowSource)] {
            let trainer = Trainer(config: config, train: source, valid: memory, options: options,
                                  checkpoints: base.appendingPathComponent(name))
            let result = try trainer.run(resume: false)
            weights.append(result.model.parameters.allNames.flatMap { result.model.parameters.tensor(named: $0)!.values })
        }
        #expect(weights[0] == weights[1])
    }
}

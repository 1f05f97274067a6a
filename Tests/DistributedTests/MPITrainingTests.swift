import Data
import Foundation
import Model
import Schema
import Testing
import Training

/// The repository root, found from this source file.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

/// The release `braid` that `swift test` builds beside the test bundle.
let braidBinary: URL = {
    let bundleSibling = Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("braid")
    if FileManager.default.isExecutableFile(atPath: bundleSibling.path) { return bundleSibling }
    return repositoryRoot.appendingPathComponent(".build/release/braid")
}()

let mpirun = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }

/// A finished process: exit status, stderr, wall seconds.
struct Finished {
    var status: Int32
    var stderr: String
    var seconds: Double
}

/// Runs `executable arguments`, its stderr captured (stdout discarded); kills it after `timeout` s.
func run(_ executable: String, _ arguments: [String], timeout: Double = 600) throws -> Finished {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    var environment = ProcessInfo.processInfo.environment
    // mpirun as root in a container, on loopback only (README "Training on several machines")
    environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    environment["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"
    process.environment = environment
    let errors = FileManager.default.temporaryDirectory.appendingPathComponent("braid-stderr-\(UUID().uuidString)")
    _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
    let handle = try FileHandle(forWritingTo: errors)
    process.standardError = handle
    process.standardOutput = FileHandle.nullDevice
    let start = Date()
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(50_000) }
    if process.isRunning { process.terminate() }
    process.waitUntilExit()
    try handle.close()
    let text = (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
    try? FileManager.default.removeItem(at: errors)
    return Finished(status: process.terminationStatus, stderr: text, seconds: Date().timeIntervalSince(start))
}

/// `mpirun -np n` on loopback with the flags CI needs (root, containers, no binding).
func mpiArguments(_ n: Int) -> [String] {
    ["--allow-run-as-root", "--oversubscribe", "-np", "\(n)", "--bind-to", "none", "--mca", "btl", "self,vader,tcp",
     "--mca", "btl_tcp_if_include", "lo", "--mca", "oob_tcp_if_include", "lo"]
}

/// Generated data shared by the tests of this file: 3,000 rows (2,100 train, 450 valid, 450 test).
let generatedData: URL = {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("braid-mpi-data-\(getpid())")
    if !FileManager.default.fileExists(atPath: dir.appendingPathComponent("test.csv").path) {
        _ = try? run(braidBinary.path, ["generate", "--out", dir.path, "--rows", "3000", "--seed", "5", "--quiet"])
    }
    return dir
}()

func temporaryRun(_ name: String) -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("braid-mpi-\(name)-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// `braid train` on the generated data, global batch 128. `threads`: 1 per rank; the
/// one-process runs they are compared with use 2: two shards, the same cut of each batch as 2
/// ranks, whose values do not depend on the thread count (`ProductSplitting`), so the trained
/// weights are the same bits (1 vs 2 threads in one process are 1 vs 2 shards, whose gradient
/// sums round differently; Adam's first updates amplify that to ~1e-3, docs/DECISIONS.md).
func trainArguments(out: URL, epochs: Int, threads: Int = 1, extra: [String] = []) -> [String] {
    let data = generatedData
    return ["train", "--config", data.appendingPathComponent("model.json").path, "--train", data.appendingPathComponent("train.csv").path,
            "--valid", data.appendingPathComponent("valid.csv").path, "--out", out.path, "--epochs", "\(epochs)",
            "--batch-size", "128", "--threads", "\(threads)", "--seed", "3", "--quiet"] + extra
}

/// Calibrated test-set probabilities of a trained model, [N, T] with NaN where no head.
func testProbabilities(_ model: URL) throws -> [Double] {
    let loaded = try BraidModel.load(directory: model)
    let rows = try EncodedRows(file: generatedData.appendingPathComponent("test.csv"), config: loaded.config)
    let logits = predictLogits(loaded, rows: rows)
    return logits.probabilities(surface: rows.surface, schema: loaded.config.schema, calibration: loaded.config.calibration)
}

func maxDifference(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count)
    var worst = 0.0
    for (x, y) in zip(a, b) where !x.isNaN || !y.isNaN { worst = max(worst, x.isNaN || y.isNaN ? .infinity : abs(x - y)) }
    return worst
}

/// The metrics.json of a run as text, without its timing fields (rows/s differ between runs).
func metricsWithoutTiming(_ run: URL) throws -> String {
    let text = try String(contentsOf: run.appendingPathComponent("metrics.json"), encoding: .utf8)
    return text.split(separator: "\n").filter { !$0.contains("rows_per_s") }.joined(separator: "\n")
}

/// Validation AUC of every (surface, task) in a run's metrics.json ("surface/task" -> AUC).
func validationAUCs(_ run: URL) throws -> [String: Double] {
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("metrics.json"))) as? [String: Any]
    let surfaces = (json?["valid_calibrated"] as? [String: Any])?["surfaces"] as? [String: [String: [String: Any]]] ?? [:]
    var aucs: [String: Double] = [:]
    for (surface, tasks) in surfaces {
        for (task, metrics) in tasks { if let auc = metrics["auc"] as? Double { aucs["\(surface)/\(task)"] = auc } }
    }
    return aucs
}

/// `mpirun -np 2 braid train --distributed` against the one-process run, a rank killed mid-epoch,
/// and `--resume` after it. Launches the release binary `braid`, which `swift test` builds with the tests.
@Suite(.serialized, .enabled(if: mpirun != nil, "needs OpenMPI's mpirun (scripts/setup installs it)"))
struct MPITrainingTests {
    @Test func binaryIsBuilt() {
        #expect(FileManager.default.isExecutableFile(atPath: braidBinary.path), "build it first: scripts/build (scripts/test does)")
        #expect(FileManager.default.fileExists(atPath: generatedData.appendingPathComponent("test.csv").path), "braid generate failed")
    }

    /// One epoch (2,100 rows, 17 steps of global batch 128): two ranks train the one-process
    /// (2 threads) model's weights bit for bit, so test probabilities differ only through the
    /// calibration, fitted on validation scores computed with 1 vs 2 threads (last bits): within 1e-5.
    @Test func twoRanksMatchOneProcessAfterOneEpoch() throws {
        let base = temporaryRun("match")
        defer { try? FileManager.default.removeItem(at: base) }
        let one = base.appendingPathComponent("one"), two = base.appendingPathComponent("two")
        let single = try run(braidBinary.path, trainArguments(out: one, epochs: 1, threads: 2, extra: ["--patience", "0"]))
        #expect(single.status == 0, "\(single.stderr)")
        let distributed = try run(mpirun!, mpiArguments(2) + [braidBinary.path] + trainArguments(out: two, epochs: 1, extra: ["--patience", "0", "--distributed"]))
        #expect(distributed.status == 0, "\(distributed.stderr)")
        let difference = maxDifference(try testProbabilities(one.appendingPathComponent("model")),
                                       try testProbabilities(two.appendingPathComponent("model")))
        print("max |p(1 process) - p(2 ranks)| on the test set after one epoch: \(difference)")
        #expect(difference < 1e-5)
    }

    /// The full run (2 epochs): two ranks reach the one-process run's validation AUCs within
    /// 1e-4 (the same weights; validation scores computed with 1 vs 2 threads differ in the last
    /// bits, which could swap a near tie). Then rank 1 SIGKILLed mid-epoch: the job exits non-zero within 30 s with an error
    /// naming rank 1 and leaves no model; `--resume` finishes with the uninterrupted run's metrics.
    @Test func fullRunMatchesAndKilledRankStopsTheJobAndResumeFinishesIt() throws {
        let base = temporaryRun("kill")
        defer { try? FileManager.default.removeItem(at: base) }
        let one = base.appendingPathComponent("one"), whole = base.appendingPathComponent("whole")
        let killed = base.appendingPathComponent("killed")
        let extra = ["--patience", "0", "--checkpoint-every", "4"]
        let single = try run(braidBinary.path, trainArguments(out: one, epochs: 2, threads: 2, extra: extra))
        #expect(single.status == 0, "\(single.stderr)")
        let distributed = extra + ["--distributed"]
        let uninterrupted = try run(mpirun!, mpiArguments(2) + [braidBinary.path] + trainArguments(out: whole, epochs: 2, extra: distributed))
        #expect(uninterrupted.status == 0, "\(uninterrupted.stderr)")
        let aucOne = try validationAUCs(one), aucTwo = try validationAUCs(whole)
        #expect(!aucOne.isEmpty && Set(aucOne.keys) == Set(aucTwo.keys))
        for (key, auc) in aucOne.sorted(by: { $0.key < $1.key }) {
            print("validation AUC \(key): 1 process \(auc), 2 ranks \(aucTwo[key] ?? .nan)")
            #expect(abs(auc - (aucTwo[key] ?? .nan)) <= 1e-4, "\(key)")
        }
        // 2,100 rows / 128 = 17 steps an epoch: rank 1 dies in epoch 2, after the checkpoint of step 20
        let crashed = try run(mpirun!, mpiArguments(2) + [braidBinary.path]
                              + trainArguments(out: killed, epochs: 2, extra: distributed + ["--crash-rank-after", "1:22"]), timeout: 120)
        print("killed run: status \(crashed.status) after \(crashed.seconds) s; stderr:\n\(crashed.stderr)")
        #expect(crashed.status != 0)
        #expect(crashed.seconds < 30)
        // the dying rank's own notice says "crashing on purpose"; some other line must name it
        let naming = crashed.stderr.split(separator: "\n").filter { $0.contains("rank 1") && !$0.contains("on purpose") }
        #expect(!naming.isEmpty, "the error must name the dead rank")
        #expect(!FileManager.default.fileExists(atPath: killed.appendingPathComponent("model").path))
        let resumed = try run(mpirun!, mpiArguments(2) + [braidBinary.path] + trainArguments(out: killed, epochs: 2, extra: distributed + ["--resume"]))
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("resumed from step-000000020"), "\(resumed.stderr)")
        #expect(try metricsWithoutTiming(whole) == metricsWithoutTiming(killed))
        #expect(maxDifference(try testProbabilities(whole.appendingPathComponent("model")),
                              try testProbabilities(killed.appendingPathComponent("model"))) == 0)
    }

    /// Without --distributed under mpirun, every process would write the same run: refused.
    @Test func mpirunWithoutDistributedIsRefused() throws {
        let base = temporaryRun("refuse")
        defer { try? FileManager.default.removeItem(at: base) }
        let result = try run(mpirun!, mpiArguments(2) + [braidBinary.path] + trainArguments(out: base.appendingPathComponent("run"), epochs: 1))
        #expect(result.status != 0)
        #expect(result.stderr.contains("pass --distributed"), "\(result.stderr)")
    }
}

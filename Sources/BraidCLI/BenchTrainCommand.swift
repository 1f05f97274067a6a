import ArgumentParser
import Data
import Foundation
import JSON
import Kernels
import Model
import Optim
import Random
import Schema
import Tensors

/// `braid bench train`: training throughput on pre-encoded batches (CSV parsing and
/// hashing excluded), timed per step = forward + backward + optimizer step (Adam dense,
/// sparse Adagrad embeddings), as the reference's `bench_ref.py` train figure: batches of
/// --batch-size rows drawn by a seeded permutation of all rows (surfaces mixed).
struct BenchTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training throughput (examples/s: median step and mean) on pre-encoded batches.",
        discussion: """
            Encodes --data once (fitting dense stats), builds a randomly initialised model \
            from --config (fusion overridden by --fusion), runs --warmup untimed steps, then \
            times --steps steps and prints one JSON line with ex_per_s_median_step, \
            ex_per_s_mean and peak_rss_mb (VmHWM).

            Example: braid generate --out /tmp/gen --rows 50000 && \
            braid bench train --config /tmp/gen/model.json --data /tmp/gen/train.csv --threads 2
            """)

    @Option(help: ArgumentHelp("model.json to build a randomly initialised model from.", valueName: "file"))
    var config: String

    @Option(help: ArgumentHelp("CSV rows (SPEC 1.2) with labels.", valueName: "file"))
    var data: String

    @Option(help: "Threads for Braid's loops and OpenBLAS.")
    var threads = 2

    @Option(help: "Rows per batch.")
    var batchSize = 512

    @Option(help: ArgumentHelp("Overrides model.sequence.fusion (early, late, append).", valueName: "mode"))
    var fusion: String?

    @Option(help: "Timed steps.")
    var steps = 30

    @Option(help: "Untimed warm-up steps.")
    var warmup = 5

    @Option(help: "Seed of the initialisation and of the batch permutation.")
    var seed: UInt64 = 0

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be >= 1, got \(threads)") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be >= 1, got \(batchSize)") }
        guard steps >= 1, warmup >= 0 else { throw ValidationError("--steps must be >= 1 and --warmup >= 0") }
        if let fusion, Fusion(rawValue: fusion) == nil {
            throw ValidationError("--fusion: unknown fusion '\(fusion)'; expected early, late or append")
        }
    }

    func run() throws {
        Threads.set(threads)
        var cfg = try ModelConfig(jsonData: try Foundation.Data(contentsOf: URL(fileURLWithPath: config)))
        if let fusion, cfg.model.sequence != nil { cfg.model.sequence!.fusion = Fusion(rawValue: fusion)! }
        let rows = try EncodedRows(file: URL(fileURLWithPath: data), config: cfg, options: EncodeOptions(labels: true, fitDenseStats: true))
        cfg.denseStats = rows.denseStats
        let nBatches = rows.count / batchSize
        guard nBatches >= 1 else { throw ValidationError("\(data) has \(rows.count) rows: fewer than one batch of \(batchSize)") }
        // seeded Fisher-Yates permutation (SplitMix64), surfaces mixed as in the reference's bench
        var order = Array(0..<rows.count)
        var generator = SplitMix64(seed: seed &+ 0x9E37_79B9_7F4A_7C15)
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(generator.next() % UInt64(i + 1))) }
        let used = min(nBatches, warmup + steps)
        let batches = (0..<used).map { b in rows.batch(rows: Array(order[b * batchSize ..< (b + 1) * batchSize])) }

        let model = BraidModel(config: cfg, seed: seed)
        let optimizer = ModelOptimizer(model.parameters)
        var times: [Double] = []
        var lastLoss: Float = 0
        for i in 0..<(warmup + steps) {
            let batch = batches[i % used]
            let t0 = DispatchTime.now().uptimeNanoseconds
            let tape = Tape()
            let loss = tape.record { model.loss(model(batch), batch: batch) }
            tape.backward(loss)
            optimizer.step()
            let t1 = DispatchTime.now().uptimeNanoseconds
            lastLoss = loss[0]
            if i >= warmup { times.append(Double(t1 - t0) / 1e9) }
        }
        let medianStep = median(times)
        let total = times.reduce(0, +)
        let json: JSONValue = .object([
            ("bench", .string("train")), ("fusion", .string(cfg.model.sequence?.fusion.rawValue ?? "none")),
            ("max_length", .integer(cfg.schema.sequence?.maxLength ?? 0)),
            ("threads", .integer(threads)), ("batch_size", .integer(batchSize)), ("steps", .integer(steps)),
            ("dense_params", .integer(model.parameters.denseCount)),
            ("ex_per_s_median_step", .number((Double(batchSize) / medianStep * 10).rounded() / 10)),
            ("ex_per_s_mean", .number((Double(steps * batchSize) / total * 10).rounded() / 10)),
            ("last_loss", .number(Double(lastLoss))),
            ("peak_rss_mb", .number(peakRSSMegabytes())),
            ("openblas_coretype", .string(openBLASCoretype ?? "(unset)")),
        ])
        print(json.serialized())
    }
}

/// VmHWM of /proc/self/status in MiB (0 where unavailable).
func peakRSSMegabytes() -> Double {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kb = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
        return (kb / 1024 * 10).rounded() / 10
    }
    return 0
}

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
import Training

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
            ex_per_s_mean, the median forward and backward milliseconds of a step's first \
            shard (each of --threads shards of a batch runs on its own thread), the \
            milliseconds it then waited for the other shards (shard_wait_ms: their \
            imbalance), the milliseconds merging the shards' gradients and of the optimizer, and \
            peak_rss_mb (VmHWM). With --max-length 64,256,1024 it does so at each \
            sequence length (the cost curve) and ends with a table.

            Example: braid generate --out /tmp/gen --rows 50000 && \
            braid bench train --config /tmp/gen/model.json --data /tmp/gen/train.csv --threads 2
            """)

    @OptionGroup var options: BenchOptions

    @Option(help: "Rows per batch.")
    var batchSize = 512

    @Option(help: ArgumentHelp("Overrides model.sequence.fusion (early, late, append).", valueName: "mode"))
    var fusion: String?

    @Option(help: "Timed steps.")
    var steps = 30

    func validate() throws {
        guard options.config != nil else { throw ValidationError("--config FILE is required") }
        try requireAtLeast(("--batch-size", batchSize, 1), ("--steps", steps, 1))
        if let fusion, Fusion(rawValue: fusion) == nil {
            throw ValidationError("--fusion: unknown fusion '\(fusion)'; expected early, late or append")
        }
    }

    func run() throws {
        Threads.set(options.threads)
        var base = try options.readConfig()
        if let fusion, base.model.sequence != nil { base.model.sequence!.fusion = Fusion(rawValue: fusion)! }
        var results: [(L: Int, exPerSecond: Double, rss: Double)] = []
        for cfg in try options.configsByLength(base) {
            let json = try measure(cfg)
            print(json.serialized())
            results.append((cfg.schema.sequence?.maxLength ?? 0, json["ex_per_s_median_step"]?.doubleValue ?? 0,
                            json["peak_rss_mb"]?.doubleValue ?? 0))
        }
        if results.count > 1 {
            print("| max_length | train ex/s (median step) | peak RSS MiB |")
            print("| ---: | ---: | ---: |")
            for r in results { print("| \(r.L) | \(grouped(Int(r.exPerSecond.rounded()))) | \(grouped(Int(r.rss.rounded()))) |") }
        }
    }

    /// Times --steps training steps of a fresh model of `config` and returns the JSON line:
    /// examples/s (median step, mean), the median forward, backward and optimizer time of a
    /// step, and the peak RSS since the measurement started (VmHWM, reset first).
    func measure(_ config: ModelConfig) throws -> JSONValue {
        resetPeakRSS()
        var cfg = config
        let warmup = options.warmup ?? 5, seed = options.seed
        let rows = try EncodedRows(file: URL(fileURLWithPath: options.data), config: cfg, options: EncodeOptions(labels: true, fitDenseStats: true))
        cfg.denseStats = rows.denseStats
        let nBatches = rows.count / batchSize
        guard nBatches >= 1 else { throw ValidationError("\(options.data) has \(rows.count) rows: fewer than one batch of \(batchSize)") }
        // seeded Fisher-Yates permutation (SplitMix64), surfaces mixed as in the reference's bench
        var order = Array(0..<rows.count)
        var generator = SplitMix64(seed: seed &+ 0x9E37_79B9_7F4A_7C15)
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(generator.next() % UInt64(i + 1))) }
        let used = min(nBatches, warmup + steps)
        let model = BraidModel(config: cfg, seed: seed)
        // the training loop's step: one shard of each batch per thread (`ShardedStep`)
        let sharded = ShardedStep(model: model, shards: options.threads)
        let batches = (0..<used).map { b in
            sharded.shards(of: Array(order[b * batchSize ..< (b + 1) * batchSize])).map { rows.batch(rows: $0) }
        }
        let optimizer = ModelOptimizer(model.parameters)
        var times: [Double] = [], forward: [Double] = [], backward: [Double] = [], wait: [Double] = [], merge: [Double] = [], optimize: [Double] = []
        var lastLoss = 0.0
        let clock = { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
        for i in 0..<(warmup + steps) {
            let t0 = clock()
            let step = sharded.run(batches[i % used])
            let t1 = clock()
            optimizer.step()
            let t2 = clock()
            lastLoss = step.lossSum / Double(step.rows)
            if i >= warmup {
                times.append(t2 - t0); forward.append(step.forwardSeconds); backward.append(step.backwardSeconds)
                wait.append(step.waitSeconds); merge.append(step.mergeSeconds); optimize.append(t2 - t1)
            }
        }
        let medianStep = median(times)
        let total = times.reduce(0, +)
        let ms = { (x: [Double]) in JSONValue.number((median(x) * 1e5).rounded() / 100) }
        let run: [(String, JSONValue)] = [
            ("bench", .string("train")), ("fusion", .string(cfg.model.sequence?.fusion.rawValue ?? "none")),
            ("max_length", .integer(cfg.schema.sequence?.maxLength ?? 0)),
            ("threads", .integer(options.threads)), ("batch_size", .integer(batchSize)), ("steps", .integer(steps)),
            ("dense_params", .integer(model.parameters.denseCount)),
        ]
        let speed: [(String, JSONValue)] = [
            ("ex_per_s_median_step", .number((Double(batchSize) / medianStep * 10).rounded() / 10)),
            ("ex_per_s_mean", .number((Double(steps * batchSize) / total * 10).rounded() / 10)),
            ("shards", .integer(sharded.count)),
            ("forward_ms", ms(forward)), ("backward_ms", ms(backward)), ("shard_wait_ms", ms(wait)), ("merge_ms", ms(merge)), ("optimizer_ms", ms(optimize)),
        ]
        let rest: [(String, JSONValue)] = [
            ("last_loss", .number(lastLoss)),
            ("peak_rss_mb", .number(peakRSSMegabytes())),
            ("openblas_coretype", .string(openBLASCoretype ?? "(unset)")),
        ]
        return .object(run + speed + rest)
    }
}

/// Resets VmHWM to the current RSS (`echo 5 > /proc/self/clear_refs`, Linux 4.0+), so the
/// next `peakRSSMegabytes()` covers only what ran since; does nothing where unsupported.
func resetPeakRSS() {
    try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
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

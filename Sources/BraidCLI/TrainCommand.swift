import ArgumentParser
import Distributed
import Foundation
import Training

/// `braid train` (SPEC 6): the unified model, or with `--separate` one model per surface.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train the unified model (or per-surface baselines), calibrate it per surface, write a model directory.",
        discussion: """
            Fits dense statistics on --train, trains with Adam (dense parameters) and sparse \
            Adagrad (embedding rows) on seeded shuffled batches, evaluates --valid after every \
            epoch (early stopping on its log loss, the best epoch's weights are kept), fits \
            Platt calibration on --valid (SPEC 2.7) and writes RUN/model/ (with --separate: \
            RUN/model/<surface>/) and RUN/metrics.json. Resumable checkpoints go to \
            RUN/checkpoints/; after a kill, the same command with --resume continues and \
            reaches the same result as an uninterrupted run.

            On several processes or machines: mpirun -np N braid train --distributed ... (data \
            parallel over MPI; --batch-size is the global batch, split over the ranks, so the \
            model does not depend on N; rank 0 logs and writes RUN; see the README, "Training on \
            several machines").

            Defaults as the reference's: a constant learning rate (--lr-schedule constant) and \
            every training row (no --negative-sampling).

            Example: braid train --config data/model.json --train data/train.csv \
            --valid data/valid.csv --out runs/unified
            """)

    @Option(help: ArgumentHelp("Model config (SPEC 2.8).", valueName: "model.json")) var config: String
    @Option(help: ArgumentHelp("Training CSV (SPEC 1.2).", valueName: "file")) var train: String
    @Option(help: ArgumentHelp("Validation CSV: metrics, early stopping, calibration.", valueName: "file")) var valid: String
    @Option(help: ArgumentHelp("Run directory (must not hold a model yet).", valueName: "run")) var out: String
    @Option(help: "Epochs.") var epochs = 3
    @Option(name: .customLong("batch-size"), help: "Examples per step.") var batchSize = 512
    @Option(help: "Adam learning rate (dense parameters).") var lr: Float = 1e-3
    @Option(name: .customLong("emb-lr"), help: "Sparse Adagrad learning rate (embedding tables).") var embLr: Float = 0.02
    @OptionGroup var schedule: ScheduleAndSamplingOptions
    @Option(help: "Threads: each batch is split into this many shards, one per thread (as many ranks would split it); validation splits its kernels over them.") var threads = 2
    @Option(help: "Seed of initialisation and shuffling.") var seed: UInt64 = 0
    @Option(help: "Early stopping: epochs without improvement of the validation log loss before stopping; the best epoch's weights are kept (0: off, the last epoch's are).") var patience = 1
    @Option(name: .customLong("checkpoint-every"), help: "Steps between resumable checkpoints (0: epoch ends only).") var checkpointEvery = 200
    @Option(help: "Calibration mode, overriding model.calibration_mode: surface or global.") var calibration: String?
    @Flag(help: "Train one model per surface on that surface's rows only (the baseline).") var separate = false
    @Flag(help: "Continue from the newest checkpoint in RUN/checkpoints.") var resume = false
    @Flag(name: .customLong("skip-bad-rows"), help: "Skip and count malformed rows instead of stopping at the first.") var skipBadRows = false
    @Flag(help: "No progress line.") var quiet = false
    @Flag(help: "Data-parallel training over the ranks of an MPI job (start with mpirun -np N).") var distributed = false
    @Option(help: ArgumentHelp("How epochs are shuffled: full (all rows at once), block (--block-rows blocks of the cache shuffled, rows shuffled within windows of --window-blocks blocks: memory independent of the rows), auto (block when the training cache is larger than --memory-budget).", valueName: "auto|full|block")) var shuffle = "auto"
    @Option(name: .customLong("memory-budget"), help: "MiB of training cache the full shuffle is used for with --shuffle auto.") var memoryBudget = 4096
    @Option(name: .customLong("block-rows"), help: "Rows per block of the block shuffle.") var blockRows = 4096
    @Option(name: .customLong("window-blocks"), help: "Blocks per shuffle window of the block shuffle.") var windowBlocks = 64
    @Option(name: .customLong("crash-rank-after"), help: .hidden) var crashRankAfter: String?

    func validate() throws {
        guard epochs >= 1 else { throw ValidationError("--epochs is \(epochs); expected at least 1") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size is \(batchSize); expected at least 1") }
        guard threads >= 1 else { throw ValidationError("--threads is \(threads); expected at least 1") }
        guard lr > 0, embLr > 0 else { throw ValidationError("--lr and --emb-lr must be positive; got \(lr) and \(embLr)") }
        if let c = calibration, c != "surface" && c != "global" {
            throw ValidationError("--calibration is \(c); expected surface or global")
        }
        guard ShuffleMode(rawValue: shuffle) != nil else {
            throw ValidationError("--shuffle is \(shuffle); expected auto, full or block")
        }
        guard blockRows >= 1, windowBlocks >= 1 else {
            throw ValidationError("--block-rows and --window-blocks are \(blockRows) and \(windowBlocks); expected at least 1")
        }
        guard memoryBudget >= 1 else { throw ValidationError("--memory-budget is \(memoryBudget); expected at least 1 (MiB)") }
        if !distributed, let n = Communicator.launcherSize, n > 1 {
            throw ValidationError("started by mpirun as one of \(n) processes without --distributed: each would train alone "
                                  + "and write the same run directory; pass --distributed")
        }
        if let crash = crashRankAfter, parseCrash(crash) == nil {
            throw ValidationError("--crash-rank-after is \(crash); expected RANK:STEPS")
        }
    }

    private func parseCrash(_ text: String) -> (rank: Int, steps: Int)? {
        let parts = text.split(separator: ":").compactMap { Int($0) }
        return parts.count == 2 ? (parts[0], parts[1]) : nil
    }

    func run() throws {
        var options = TrainingOptions()
        options.epochs = epochs; options.batchSize = batchSize; options.learningRate = lr
        schedule.apply(to: &options, defaultSchedule: .constant, defaultSampling: [])
        options.embeddingLearningRate = embLr; options.threads = threads; options.seed = seed
        options.patience = patience; options.checkpointEvery = checkpointEvery
        options.calibrationMode = calibration; options.progress = !quiet
        options.crashRank = crashRankAfter.flatMap(parseCrash)
        options.shuffle = ShuffleMode(rawValue: shuffle)!
        options.memoryBudget = memoryBudget << 20
        options.blockRows = blockRows; options.windowBlocks = windowBlocks
        var job = TrainRun(config: URL(fileURLWithPath: config), trainFile: URL(fileURLWithPath: train),
                           validFile: URL(fileURLWithPath: valid), out: URL(fileURLWithPath: out), options: options)
        job.separate = separate; job.resume = resume; job.skipBadRows = skipBadRows
        guard distributed else {
            try runReportingErrors { try job.run() }
            return
        }
        let world = try runReportingErrors { try Communicator.world() }
        job.communicator = world
        do {
            try job.run()
        } catch {
            // one rank failing stops them all (MPI_Abort), with the rank in the message
            let text = (error as? DistributedError)?.description ?? "rank \(world.rank): \(error)"
            FileHandle.standardError.write("error: \(text)\n".data(using: .utf8)!)
            world.abort(code: 1)
        }
        world.finalize()
    }
}

/// Runs `body`, turning input and config errors into `error: ...` on stderr and exit 1.
@discardableResult
func runReportingErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as CustomStringConvertible {
        FileHandle.standardError.write("error: \(error.description)\n".data(using: .utf8)!)
        throw ExitCode.failure
    }
}

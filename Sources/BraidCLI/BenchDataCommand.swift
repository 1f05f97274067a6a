import ArgumentParser
import Data
import Foundation
import Schema

/// `braid bench data`: rows/s of the data path on one CSV file: encoding it into memory
/// (`EncodedRows`, one thread), building the binary cache (`DataCache.build`, `--threads`
/// segments at a time), and streaming an epoch of shuffled, surface-grouped batches from the
/// cache (`BatchStream`, gathered on its background thread while this thread consumes).
/// Every figure is the median of `--repeats` runs; the cache is written to a temporary file.
struct BenchDataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Rows/s: CSV -> memory, CSV -> binary cache, cache -> shuffled batches.")

    @Option(help: "A CSV file of rows (SPEC 1.2), e.g. train.csv from `braid generate`.")
    var data: String

    @Option(help: "The model.json whose schema encodes the rows.")
    var config: String

    @Option(help: "Rows per batch when streaming.")
    var batchSize = 512

    @OptionGroup var options: BenchRepeatOptions<BenchDataCommand>

    func validate() throws {
        try requireAtLeast(("--batch-size", batchSize, 1))
    }

    struct Row: Codable {
        var stage: String, rows: Int, seconds: Double, rowsPerSecond: Double
    }
    struct Report: Codable {
        var data: String, bytes: Int, rows: Int, batchSize: Int, threads: Int, repeats: Int, cacheBytes: Int
        var stages: [Row]
    }

    func run() throws {
        let csv = URL(fileURLWithPath: data)
        let modelConfig = try ModelConfig.load(from: URL(fileURLWithPath: config))
        let encoding = EncodeOptions(fitDenseStats: true)
        let threads = options.threads, repeats = options.repeats
        let cacheURL = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("braid-bench-\(getpid()).braidcache")
        defer { try? FileManager.default.removeItem(at: cacheURL) }
        let bytes = (try FileManager.default.attributesOfItem(atPath: csv.path)[.size] as? Int) ?? 0

        func median(_ body: () throws -> Int) rethrows -> (rows: Int, seconds: Double) {
            var times: [Double] = []
            var rows = 0
            for _ in 0..<repeats {
                let start = DispatchTime.now().uptimeNanoseconds
                rows = try body()
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
            }
            return (rows, times.sorted()[times.count / 2])
        }
        var stages: [Row] = []
        func record(_ stage: String, _ result: (rows: Int, seconds: Double)) {
            stages.append(Row(stage: stage, rows: result.rows, seconds: result.seconds, rowsPerSecond: Double(result.rows) / result.seconds))
        }
        record("csv -> memory (EncodedRows, 1 thread)", try median { try EncodedRows(file: csv, config: modelConfig, options: encoding).count })
        record("csv -> cache (\(threads) threads)", try median {
            try DataCache.build(csv: csv, config: modelConfig, options: encoding, to: cacheURL, threads: threads).rows
        })
        let cache = try DataCache(url: cacheURL, config: modelConfig, options: encoding, source: csv)
        var epoch = 0
        record("cache -> shuffled batches (BatchStream)", median {
            let plan = shuffledBatches(surface: cache.surface, batchSize: batchSize, seed: 1, epoch: epoch)
            epoch += 1
            var rows = 0
            for batch in BatchStream(cache: cache, plan: plan) { rows += batch.count }
            return rows
        })
        record("cache -> batches (gather only, this thread)", median {
            let plan = shuffledBatches(surface: cache.surface, batchSize: batchSize, seed: 1, epoch: epoch)
            epoch += 1
            var rows = 0
            for rowsOfBatch in plan { rows += cache.batch(rows: rowsOfBatch).count }
            return rows
        })
        let cacheBytes = (try FileManager.default.attributesOfItem(atPath: cacheURL.path)[.size] as? Int) ?? 0
        let report = Report(data: csv.path, bytes: bytes, rows: cache.count, batchSize: batchSize, threads: threads,
                            repeats: repeats, cacheBytes: cacheBytes, stages: stages)
        if options.json {
            try printJSON(report)
            return
        }
        print("\(report.data): \(report.rows) rows, \(bytes / 1_000_000) MB CSV, \(cacheBytes / 1_000_000) MB cache; "
              + "batch \(batchSize), median of \(repeats)")
        print("stage".padding(toLength: 46, withPad: " ", startingAt: 0) + "      rows/s    seconds")
        for row in stages {
            print(row.stage.padding(toLength: 46, withPad: " ", startingAt: 0)
                  + String(format: "%12.0f %10.3f", row.rowsPerSecond, row.seconds))
        }
    }
}

extension BenchDataCommand: BenchRepeatDefaults {
    static let defaultRepeats = 3
    static let threadsHelp = "Threads that parse CSV segments when building the cache."
}

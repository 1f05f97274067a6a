import ArgumentParser
import Data
import Foundation
import Inference
import JSON
import Kernels
import Model
import Schema

/// `braid bench score`: latency and throughput of `InferenceEngine` on requests of one
/// user x C candidates and on batches of many users, with and without request-level
/// broadcasting, per fusion mode. Requests are built from the rows of a data CSV (users
/// from one surface, candidates from every row) before timing; the timed region is
/// `InferenceEngine.score` (model forward + calibration), not JSON encoding.
struct BenchScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Scoring latency (p50/p90/p99/mean ms) and candidates/s with and without broadcasting.",
        discussion: """
            For each fusion mode (the config's, or --fusion), each C in --candidates and a \
            batch of --batch-users users x --batch-candidates candidates, times --requests \
            requests (after --warmup untimed ones), each a different user, first with \
            broadcasting (user-side work once per user) and then without (every candidate \
            with its own copy of the user). Prints a table and one JSON line per configuration. \
            With --max-length 64,256,1024 it does all of that at each sequence length (the cost \
            curve; sequences truncated to each).

            Example: braid generate --out /tmp/gen --rows 20000 && \
            braid bench score --config /tmp/gen/model.json --data /tmp/gen/test.csv --threads 1
            """)

    @OptionGroup var options: BenchOptions

    @Option(help: ArgumentHelp("A model directory to score with instead of --config (its fusion is fixed).", valueName: "dir"))
    var model: String?

    @Option(help: ArgumentHelp("Comma-separated candidates per one-user request.", valueName: "list"))
    var candidates = "1,10,100,1000"

    @Option(help: ArgumentHelp("Fusion modes to run (comma-separated early, late, append); default: all three with --config, "
                               + "the model's with --model.", valueName: "list"))
    var fusion: String?

    @Option(help: "Timed requests per configuration.")
    var requests = 20

    @Option(help: "Users per many-user batch (0: skip the batch rows).")
    var batchUsers = 32

    @Option(help: "Candidates per user in the many-user batch.")
    var batchCandidates = 10

    @Option(help: ArgumentHelp("Surface the users come from (default: the first surface with rows in --data).", valueName: "s"))
    var surface: String?

    @Flag(help: "Time only without broadcasting.")
    var noBroadcast = false

    @Flag(help: "Time only with broadcasting (e.g. to profile that path alone).")
    var broadcastOnly = false

    @Option(name: .customLong("user-cache-mb"),
            help: ArgumentHelp("Also time late and append fusion with broadcasting and a warm user-state cache of this many MiB "
                               + "(each timed request's user scored once before, untimed: the user's Transformer is skipped).",
                               valueName: "MiB"))
    var userCacheMiB: Int?

    func validate() throws {
        guard (options.config == nil) != (model == nil) else { throw ValidationError("give exactly one of --config FILE or --model DIR") }
        if model != nil && options.maxLength != nil {
            throw ValidationError("--max-length changes the architecture: use it with --config, not --model")
        }
        guard !(noBroadcast && broadcastOnly) else { throw ValidationError("give at most one of --no-broadcast and --broadcast-only") }
        try requireAtLeast(("--requests", requests, 1), ("--batch-users", batchUsers, 0), ("--batch-candidates", batchCandidates, 1))
        if let userCacheMiB { try requireAtLeast(("--user-cache-mb", userCacheMiB, 1)) }
        guard let list = candidateCounts, !list.isEmpty, list.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("--candidates must be comma-separated positive integers, got '\(candidates)'")
        }
        if let fusion {
            for name in fusion.split(separator: ",") where Fusion(rawValue: String(name)) == nil {
                throw ValidationError("--fusion: unknown fusion '\(name)'; expected early, late or append (comma-separated)")
            }
            if model != nil { throw ValidationError("--fusion changes the architecture: use it with --config, not --model") }
        }
    }

    var candidateCounts: [Int]? {
        let parts = candidates.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        return parts.contains(nil) ? nil : parts.map { $0! }
    }

    /// How a request is scored: with broadcasting, without, or with broadcasting and a warm user-state cache.
    enum Mode: Equatable { case broadcast, noBroadcast, warmCache }

    struct Row {
        var fusion: String, shape: String, users: Int, candidatesPerUser: Int, mode: Mode
        var broadcast: Bool { mode != .noBroadcast }
        var p50: Double, p90: Double, p99: Double, mean: Double, candidatesPerSecond: Double
    }

    func run() throws {
        Threads.set(options.threads)
        if let model {
            let loaded = try BraidModel.load(directory: URL(fileURLWithPath: model))
            try measure([(loaded.config.model.sequence?.fusion.rawValue ?? "none", loaded)], fitDenseStats: false)
            return
        }
        let modes = fusion.map { $0.split(separator: ",").map { Fusion(rawValue: String($0))! } } ?? Fusion.allCases
        for base in try options.configsByLength(try options.readConfig()) {
            var models: [(String, BraidModel)] = []
            for mode in modes {
                var c = base
                guard c.model.sequence != nil else {
                    models.append(("none", BraidModel(config: c, seed: options.seed)))
                    break
                }
                c.model.sequence!.fusion = mode
                models.append((mode.rawValue, BraidModel(config: c, seed: options.seed)))
            }
            try measure(models, fitDenseStats: true)  // a fresh config has no dense_stats yet
        }
    }

    /// Times every request shape on each of `models` (one schema) and prints the table and JSON lines.
    func measure(_ models: [(String, BraidModel)], fitDenseStats: Bool) throws {
        let data = options.data, threads = options.threads, warmup = options.warmup ?? 2
        let maxLength = models[0].1.config.schema.sequence?.maxLength ?? 0
        let schema = models[0].1.config.schema
        let rows = try EncodedRows(file: URL(fileURLWithPath: data), config: models[0].1.config,
                                   options: EncodeOptions(labels: false, fitDenseStats: fitDenseStats))
        let surfaceIndex: Int32
        if let surface {
            guard let s = schema.surfaceIndex(surface), models[0].1.config.surfacesIncluded.contains(surface) else {
                throw ValidationError("--surface: \(surface) is not served by the model; expected one of \(models[0].1.config.surfacesIncluded)")
            }
            surfaceIndex = Int32(s)
        } else {
            guard let first = rows.surface.first(where: { models[0].1.config.surfacesIncluded.contains(schema.surfaces[Int($0)]) }) else {
                throw ValidationError("\(data) has no rows of a surface the model serves (\(models[0].1.config.surfacesIncluded))")
            }
            surfaceIndex = first
        }
        let users = (0..<rows.count).filter { rows.surface[$0] == surfaceIndex }
        guard !users.isEmpty, rows.count > 0 else { throw ValidationError("\(data) has no rows of surface \(schema.surfaces[Int(surfaceIndex)])") }
        // request q: user users[q % |users|], C candidates from a stride through all rows
        func request(_ q: Int, _ c: Int) -> (user: Int, candidates: [Int]) {
            let start = (q * 7919) % rows.count
            return (users[(q * 31) % users.count], (0..<c).map { (start + $0 * 13) % rows.count })
        }
        var shapes: [(String, Int, Int)] = candidateCounts!.map { ("1 user x \($0)", 1, $0) }
        if batchUsers > 0 { shapes.append(("\(batchUsers) users x \(batchCandidates)", batchUsers, batchCandidates)) }
        let stderr = FileHandle.standardError
        let banner = "bench score: \(rows.count) rows from \(data); users from \(schema.surfaces[Int(surfaceIndex)]); "
            + "max_length \(maxLength); threads \(threads); OPENBLAS_CORETYPE=\(openBLASCoretype ?? "(unset)")\n"
        stderr.write(Foundation.Data(banner.utf8))
        var results: [Row] = []
        for (name, model) in models {
            let engine = InferenceEngine(model: model, maxUniqueUsers: max(batchUsers, 1))
            let cached = userCacheMiB.map {
                InferenceEngine(model: model, maxUniqueUsers: max(batchUsers, 1), userStates: UserStateCache(budgetBytes: $0 << 20))
            }
            for (shape, u, c) in shapes {
                let batches = (0..<(requests + warmup)).map { i in
                    EncodedRequests(rows: rows, requests: (0..<u).map { request(i * u + $0, c) })
                }
                // both modes timed alternately on the same request, so drift in machine load hits both alike
                var modes: [Mode] = noBroadcast ? [.noBroadcast] : broadcastOnly ? [.broadcast] : [.broadcast, .noBroadcast]
                if !noBroadcast, cached?.userStates != nil { modes.append(.warmCache) }
                var times = [[Double]](repeating: [], count: modes.count)
                for (i, batch) in batches.enumerated() {
                    for (m, mode) in modes.enumerated() {
                        if mode == .warmCache { _ = try cached!.score(batch) }  // the users' states into the cache, untimed
                        let t0 = DispatchTime.now().uptimeNanoseconds
                        let scored = try (mode == .warmCache ? cached! : engine).score(batch, broadcast: mode != .noBroadcast)
                        let t1 = DispatchTime.now().uptimeNanoseconds
                        precondition(scored.probabilities.count == u * c * scored.tasks.count)
                        if i >= warmup { times[m].append(Double(t1 - t0) / 1e6) }
                    }
                }
                for (m, mode) in modes.enumerated() {
                    let sorted = times[m].sorted()
                    func pct(_ p: Double) -> Double { sorted[min(sorted.count - 1, Int((p * Double(sorted.count - 1)).rounded()))] }
                    let mean = sorted.reduce(0, +) / Double(sorted.count)
                    let row = Row(fusion: name, shape: shape, users: u, candidatesPerUser: c, mode: mode,
                                  p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), mean: mean,
                                  candidatesPerSecond: Double(u * c) / (mean / 1000))
                    results.append(row)
                    let label = "  \(name) \(shape) broadcast=\(row.broadcast)\(mode == .warmCache ? " user cache warm" : "")"
                    stderr.write(Foundation.Data("\(label): p50 \(String(format: "%.3f", row.p50)) ms\n".utf8))
                }
            }
        }
        print("| max_length | fusion | request | broadcast | p50 ms | p90 ms | p99 ms | mean ms | candidates/s | speed-up |")
        print("| ---: | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for row in results {
            let other = results.first { $0.fusion == row.fusion && $0.shape == row.shape && $0.mode == .noBroadcast }
            let speedup = row.broadcast ? other.map { String(format: "%.1fx", $0.mean / row.mean) } ?? "" : ""
            let broadcast = row.mode == .warmCache ? "yes, user cache warm" : row.broadcast ? "yes" : "no"
            print("| \(maxLength) | \(row.fusion) | \(row.shape) | \(broadcast) | \(String(format: "%.3f", row.p50)) | "
                  + "\(String(format: "%.3f", row.p90)) | \(String(format: "%.3f", row.p99)) | \(String(format: "%.3f", row.mean)) | "
                  + "\(grouped(Int(row.candidatesPerSecond.rounded()))) | \(speedup) |")
        }
        for row in results {
            let json: JSONValue = .object([
                ("bench", .string("score")), ("fusion", .string(row.fusion)), ("max_length", .integer(maxLength)), ("users", .integer(row.users)),
                ("candidates_per_user", .integer(row.candidatesPerUser)), ("broadcast", .bool(row.broadcast)),
                ("user_cache", .string(row.mode == .warmCache ? "warm" : "off")),
                ("threads", .integer(threads)), ("requests", .integer(requests)),
                ("p50_ms", .number(row.p50)), ("p90_ms", .number(row.p90)), ("p99_ms", .number(row.p99)),
                ("mean_ms", .number(row.mean)), ("candidates_per_s", .number(row.candidatesPerSecond)),
            ])
            print(json.serialized())
        }
    }
}

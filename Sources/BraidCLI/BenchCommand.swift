import ArgumentParser

/// `braid bench`: benchmarks behind docs/PERFORMANCE.md.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks (see docs/PERFORMANCE.md).",
        subcommands: [BenchKernelsCommand.self, BenchScoreCommand.self, BenchDataCommand.self, BenchTrainCommand.self])
}

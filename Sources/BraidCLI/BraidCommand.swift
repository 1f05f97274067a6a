import ArgumentParser

/// `braid`: one engagement model for every ad surface (SPEC 6).
public struct BraidCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "braid",
        abstract: "Train and serve one engagement (CTR) model for every ad surface.",
        discussion: """
            Start with `braid demo`: it generates multi-surface data, trains the unified \
            model and per-surface baselines, and prints how they compare.
            """,
        subcommands: [
            GenerateCommand.self, TrainCommand.self, EvalCommand.self, PredictCommand.self,
            ExportCommand.self, ServeCommand.self, BenchCommand.self, DemoCommand.self,
        ])

    public init() {}
}

/// Thrown by subcommands whose implementation has not landed yet: a clear message
/// and a non-zero exit, never fake output.
struct NotBuiltYet: Error, CustomStringConvertible {
    let command: String
    var description: String { "`braid \(command)` is not built yet in this version of Braid" }
}

import ArgumentParser
import Foundation
import JSON
import Schema

// What the `braid bench` subcommands share once their options are parsed.

/// The median of `values` (the mean of the two middle ones for an even count).
func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// OPENBLAS_CORETYPE (the kernels OpenBLAS was told to use), nil when unset.
var openBLASCoretype: String? { ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] }

/// Prints `report` (a struct of Ints, Doubles, Strings, Bools, optionals, arrays and nested
/// such structs) as JSON indented by two spaces, each struct an object of its stored
/// properties with sorted keys (`--json`).
func printJSON(_ report: Any) throws {
    print(try reportJSON(report).serialized(indent: 2))
}

/// `value` as a JSON value; throws for a type a report cannot hold.
private func reportJSON(_ value: Any) throws -> JSONValue {
    switch value {
    case let x as Int: return .integer(x)
    case let x as Double: return .number(x)
    case let x as String: return .string(x)
    case let x as Bool: return .bool(x)
    default: break
    }
    let mirror = Mirror(reflecting: value)
    switch mirror.displayStyle {
    case .optional: return try mirror.children.first.map { try reportJSON($0.value) } ?? .null
    case .collection: return .array(try mirror.children.map { try reportJSON($0.value) })
    case .struct:
        return .object(try mirror.children.map { (key: $0.label!, value: try reportJSON($0.value)) }.sorted { $0.key < $1.key })
    default:
        throw BenchReportError(description: "printJSON: a \(type(of: value)) in a bench report; expected numbers, strings, arrays and structs")
    }
}

private struct BenchReportError: Error, CustomStringConvertible {
    let description: String
}

/// Throws "--flag must be >= minimum, got value" for the first option below its minimum:
/// the range checks of every bench command's `validate()`.
func requireAtLeast(_ checks: (flag: String, value: Int, minimum: Int)...) throws {
    for c in checks where c.value < c.minimum { throw ValidationError("\(c.flag) must be >= \(c.minimum), got \(c.value)") }
}

/// What a bench command using `BenchRepeatOptions` states: its default `--repeats` and what
/// its `--threads` count.
protocol BenchRepeatDefaults {
    static var defaultRepeats: Int { get }
    static var threadsHelp: String { get }
}

/// The options `braid bench data` and `braid bench kernels` share: threads, timed repeats per
/// figure (each figure is their median) and `--json`; `Command` gives the default repeats and
/// the help of `--threads`, which differ.
struct BenchRepeatOptions<Command: BenchRepeatDefaults>: ParsableArguments {
    @Option(help: ArgumentHelp(Command.threadsHelp))
    var threads = 2

    @Option(help: "Timed runs per figure (the median is reported).")
    var repeats = Command.defaultRepeats

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func validate() throws {
        try requireAtLeast(("--threads", threads, 1), ("--repeats", repeats, 1))
    }
}

/// The options `braid bench train` and `braid bench score` share: the model config, the
/// rows, threads, seed, warm-up and the sequence lengths of the cost curve.
struct BenchOptions: ParsableArguments {
    @Option(help: ArgumentHelp("model.json to build a randomly initialised model from.", valueName: "file"))
    var config: String?

    @Option(help: ArgumentHelp("CSV rows (SPEC 1.2); bench train reads their labels.", valueName: "file"))
    var data: String

    @Option(help: "Threads for Braid's loops and OpenBLAS.")
    var threads = 2

    @Option(help: "Seed of the random initialisation (and of bench train's batch permutation).")
    var seed: UInt64 = 0

    @Option(help: "Untimed warm-up steps or requests per configuration.")
    var warmup: Int?

    @Option(help: ArgumentHelp("Comma-separated schema.sequence.max_length values to run each figure at (the cost curve, "
                               + "e.g. 64,256,1024; sequences are truncated to each); default: the config's.", valueName: "list"))
    var maxLength: String?

    func validate() throws {
        try requireAtLeast(("--threads", threads, 1), ("--warmup", warmup ?? 0, 0))
        if maxLength != nil {
            guard let list = maxLengths, !list.isEmpty, list.allSatisfy({ $0 >= 1 }) else {
                throw ValidationError("--max-length must be comma-separated positive integers, got '\(maxLength!)'")
            }
        }
    }

    /// --max-length parsed (nil: not given or not integers).
    var maxLengths: [Int]? {
        guard let maxLength else { return nil }
        let parts = maxLength.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        return parts.contains(nil) ? nil : parts.map { $0! }
    }

    /// The config read from --config.
    func readConfig() throws -> ModelConfig {
        try ModelConfig(jsonData: try Foundation.Data(contentsOf: URL(fileURLWithPath: config!)))
    }

    /// `base` once per --max-length value (schema.sequence.max_length replaced; the position
    /// table follows it), or `base` alone without --max-length. A config without a sequence
    /// cannot take --max-length.
    func configsByLength(_ base: ModelConfig) throws -> [ModelConfig] {
        guard let lengths = maxLengths else { return [base] }
        guard base.schema.sequence != nil else { throw ValidationError("--max-length: the config has no schema.sequence") }
        return lengths.map { L in
            var c = base
            c.schema.sequence!.maxLength = L
            return c
        }
    }
}

import Foundation

// What the `braid bench` subcommands share once their options are parsed.

/// The median of `values` (the mean of the two middle ones for an even count).
func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// OPENBLAS_CORETYPE (the kernels OpenBLAS was told to use), nil when unset.
var openBLASCoretype: String? { ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] }

/// Prints `report` as pretty-printed JSON with sorted keys (`--json`).
func printJSON(_ report: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    print(String(decoding: try encoder.encode(report), as: UTF8.self))
}

import Foundation
import JSON

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

// A small JSON value whose objects keep their key order, and its writer: reports list
// surfaces and tasks in schema order and metric keys in SPEC 6 order, which Foundation's
// dictionary-based encoders do not keep.

/// A JSON document with ordered object keys. Numbers are `Double` (written by `jsonNumber`:
/// they read back to the same value, non-finite ones as null) or `Int` (written exactly);
/// strings and keys are written by `jsonString`.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    /// `.number(x)`, or `.null` for nil (SPEC 4: undefined values are null).
    public static func number(_ value: Double?) -> JSONValue {
        value.map { .number($0) } ?? .null
    }

    /// The JSON text. `indent` nil gives the compact form `{"a":1,"b":[2,3]}`; an indent of
    /// k spaces gives Python's `json.dumps(value, indent=k)` layout (", " never trails a
    /// line; ": " between key and value). `python` writes strings and non-finite numbers
    /// as Python's `json.dumps` does by default (`jsonString(_:asciiOnly: true)`, NaN,
    /// Infinity), so a file reads byte for byte like one the reference wrote.
    public func serialized(indent: Int? = nil, python: Bool = false) -> String {
        var output = ""
        write(to: &output, indent: indent, python: python, depth: 0)
        return output
    }

    private func write(to output: inout String, indent: Int?, python: Bool, depth: Int) {
        switch self {
        case .null: output += "null"
        case .bool(let value): output += value ? "true" : "false"
        case .integer(let value): output += String(value)
        case .number(let value): output += jsonNumber(value, pythonLiterals: python)
        case .string(let value): output += jsonString(value, asciiOnly: python)
        case .array(let elements):
            writeContainer(open: "[", close: "]", count: elements.count, to: &output, indent: indent, depth: depth) { index, output in
                elements[index].write(to: &output, indent: indent, python: python, depth: depth + 1)
            }
        case .object(let members):
            writeContainer(open: "{", close: "}", count: members.count, to: &output, indent: indent, depth: depth) { index, output in
                output += jsonString(members[index].key, asciiOnly: python)
                output += indent == nil ? ":" : ": "
                members[index].value.write(to: &output, indent: indent, python: python, depth: depth + 1)
            }
        }
    }

    private func writeContainer(open: String, close: String, count: Int, to output: inout String, indent: Int?,
                                depth: Int, element: (Int, inout String) -> Void) {
        output += open
        guard count > 0 else { output += close; return }
        for index in 0..<count {
            if index > 0 { output += "," }
            if let indent { output += "\n" + String(repeating: " ", count: indent * (depth + 1)) }
            element(index, &output)
        }
        if let indent { output += "\n" + String(repeating: " ", count: indent * depth) }
        output += close
    }

    public static func == (left: JSONValue, right: JSONValue) -> Bool {
        switch (left, right) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.integer(let a), .integer(let b)): return a == b
        case (.number(let a), .number(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }
}

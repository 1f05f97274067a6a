// The JSON writer and its three layouts: compact (safetensors headers, serving replies,
// bench lines), Python's `json.dumps(indent=k)` (metrics.json, summary.json; with the
// Python dialect model.json), and the hand-wrapped layout of SPEC 2.8's examples (the
// model.json `braid generate` writes). Strings are written by `jsonString`, numbers by
// `jsonNumber`, integers verbatim.

extension JSONValue {
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

    /// The layout of SPEC 2.8's examples: two-space indentation; an array without objects
    /// or arrays inside on one line; an object whose members hold no objects (nor arrays of
    /// objects) on one line when that line, indented, fits in `lineWidth` columns; scalars
    /// as `serialized()` writes them.
    public func serialized(lineWidth: Int) -> String {
        wrapped(lineWidth: lineWidth, depth: 0)
    }

    private func write(to output: inout String, indent: Int?, python: Bool, depth: Int) {
        switch self {
        case .null: output += "null"
        case .bool(let value): output += value ? "true" : "false"
        case .integer(let text): output += text
        case .number(let value): output += jsonNumber(value, pythonLiterals: python)
        case .string(let value): output += jsonString(value, asciiOnly: python)
        case .array(let elements):
            writeContainer(open: "[", close: "]", count: elements.count, to: &output, indent: indent, depth: depth) { index, output in
                elements[index].write(to: &output, indent: indent, python: python, depth: depth + 1)
            }
        case .object(let keys, let values):
            writeContainer(open: "{", close: "}", count: keys.count, to: &output, indent: indent, depth: depth) { index, output in
                output += jsonString(keys[index], asciiOnly: python)
                output += indent == nil ? ":" : ": "
                values[keys[index]]!.write(to: &output, indent: indent, python: python, depth: depth + 1)
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

    private var isContainer: Bool {
        switch self {
        case .array, .object: return true
        default: return false
        }
    }

    private var isObject: Bool {
        if case .object = self { return true }
        return false
    }

    private func wrapped(lineWidth: Int, depth: Int) -> String {
        let inner = String(repeating: "  ", count: depth + 1)
        let outer = String(repeating: "  ", count: depth)
        switch self {
        case .array(let elements):
            if !elements.contains(where: \.isContainer) {
                return "[" + elements.map { $0.wrapped(lineWidth: lineWidth, depth: 0) }.joined(separator: ", ") + "]"
            }
            return "[\n" + elements.map { inner + $0.wrapped(lineWidth: lineWidth, depth: depth + 1) }.joined(separator: ",\n")
                + "\n" + outer + "]"
        case .object(let keys, let values):
            if keys.isEmpty { return "{}" }
            let isFlat = keys.allSatisfy { key in
                switch values[key]! {
                case .object: return false
                case .array(let elements): return !elements.contains(where: \.isObject)
                default: return true
                }
            }
            let oneLine = "{" + keys.map { jsonString($0) + ": " + values[$0]!.wrapped(lineWidth: lineWidth, depth: 0) }
                .joined(separator: ", ") + "}"
            if isFlat && oneLine.count + depth * 2 <= lineWidth { return oneLine }
            return "{\n" + keys.map { inner + jsonString($0) + ": " + values[$0]!.wrapped(lineWidth: lineWidth, depth: depth + 1) }
                .joined(separator: ",\n") + "\n" + outer + "}"
        default: return serialized()
        }
    }
}

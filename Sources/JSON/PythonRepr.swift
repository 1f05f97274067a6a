// Python's `repr` of strings, floats and parsed JSON values: error messages quote values
// with it so they read exactly like the reference's.
import Foundation

/// Python's `repr` of a string: single quotes unless the text holds `'` and no `"`;
/// backslash, the quote, tab, newline, return and other control characters escaped.
public func pythonRepr(_ text: String) -> String {
    let quote: Character = text.contains("'") && !text.contains("\"") ? "\"" : "'"
    var out = String(quote)
    for scalar in text.unicodeScalars {
        if let escape = sharedEscape(scalar) {
            out += escape
        } else if Character(scalar) == quote {
            out += "\\" + String(quote)
        } else if scalar.value < 0x20 || (0x7F...0xA0).contains(scalar.value) {
            out += "\\x" + String(format: "%02x", scalar.value)
        } else {
            out.unicodeScalars.append(scalar)
        }
    }
    out.append(quote)
    return out
}

/// Python's `repr` of a list of strings: `['a', 'b']`.
public func pythonRepr(_ list: [String]) -> String {
    "[" + list.map { pythonRepr($0) }.joined(separator: ", ") + "]"
}

/// Python's `repr(float)`: shortest round-trip digits, exponent form below 1e-4 and from 1e16.
public func pythonFloatRepr(_ x: Double) -> String {
    if x.isNaN { return "nan" }
    if x.isInfinite { return x < 0 ? "-inf" : "inf" }
    let magnitude = Swift.abs(x), text = "\(x)"
    if magnitude == 0 || (magnitude >= 1e-4 && magnitude < 1e16) {
        // Swift switches to an exponent from 2^53, Python from 1e16.
        return text.contains("e") ? String(format: "%.1f", x) : text
    }
    guard let e = text.firstIndex(of: "e") else { return text }
    let mantissa = text[..<e].replacingOccurrences(of: ".0", with: "", options: [.anchored, .backwards])
    let exponent = Int(text[text.index(after: e)...])!
    return "\(mantissa)e\(exponent < 0 ? "-" : "+")\(exponent.magnitude < 10 ? "0" : "")\(exponent.magnitude)"
}

extension JSONValue {
    /// Python's `repr` of the value `json.loads` gives (`None`, `True`, `'text'`, `1.5`,
    /// `[1, 'a']`, `{'k': 1}`, keys in document order).
    public var pythonDescription: String {
        switch self {
        case .null: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .integer(let text): return text
        case .number(let x): return pythonFloatRepr(x)
        case .string(let s): return pythonRepr(s)
        case .array(let items): return "[" + items.map(\.pythonDescription).joined(separator: ", ") + "]"
        case .object(let keys, let values):
            return "{" + keys.map { "\(pythonRepr($0)): \(values[$0]!.pythonDescription)" }.joined(separator: ", ") + "}"
        }
    }
}

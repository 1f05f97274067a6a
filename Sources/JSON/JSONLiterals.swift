/// A JSON string literal as serde_json (and Python's `json.dumps(..., ensure_ascii=False)`)
/// writes it: `"` and `\` escaped, \b \f \n \r \t for those control characters, \u00XX for
/// the other control characters, everything else verbatim. With `asciiOnly`, as Python's
/// `json.dumps` writes it by default (`ensure_ascii`): every other character outside
/// printable ASCII as \uXXXX UTF-16 code units.
public func jsonString(_ text: String, asciiOnly: Bool = false) -> String {
    var result = "\""
    for scalar in text.unicodeScalars {
        if let escape = sharedEscape(scalar) {
            result += escape
            continue
        }
        switch scalar {
        case "\"": result += "\\\""
        case "\u{08}": result += "\\b"
        case "\u{0C}": result += "\\f"
        case _ where scalar.value < 0x20 || (asciiOnly && scalar.value >= 0x7F):
            UTF16.encode(scalar) { unit in
                let hex = String(unit, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            }
        default: result.unicodeScalars.append(scalar)
        }
    }
    return result + "\""
}

/// The backslash escapes JSON strings and Python's `repr` share: \\ \n \r \t; nil for any
/// other scalar.
func sharedEscape(_ scalar: Unicode.Scalar) -> String? {
    switch scalar {
    case "\\": return "\\\\"
    case "\n": return "\\n"
    case "\r": return "\\r"
    case "\t": return "\\t"
    default: return nil
    }
}

/// A JSON number: the shortest text that reads back as the same Double, spelled as Python's
/// repr (0.1, 1.0, 1e-05, 1e+16); NaN and the infinities, which JSON cannot hold, as null,
/// or with `pythonLiterals` as Python's `json.dumps` writes them (NaN, Infinity, -Infinity).
public func jsonNumber(_ value: Double, pythonLiterals: Bool = false) -> String {
    if value.isFinite { return "\(value)" }
    guard pythonLiterals else { return "null" }
    return value.isNaN ? "NaN" : (value > 0 ? "Infinity" : "-Infinity")
}

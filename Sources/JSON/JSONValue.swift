// The one JSON value of Braid: what the parser (JSONParser.swift) reads, model.json and
// requests alike, and what the writer (JSONWriter.swift) writes, reports and model.json
// alike. Objects keep their key order: reports list surfaces and tasks in schema order and
// metric keys in SPEC 6 order, which Foundation's dictionary-based coders do not keep.
import Foundation

/// A JSON document as Python's `json` module reads it, with ordered object keys.
///
/// - `integer(text)`: an integer literal as its exact decimal text, any size, as Python
///   keeps `int` (no leading zeros; `-0` reads as `0`). Written verbatim.
/// - `number(x)`: a literal with a fraction or an exponent, as the correctly rounded
///   double (strtod; `1e400` is +inf, as in Python). Written by `jsonNumber`: it reads
///   back as the same double; NaN and the infinities as null, or as Python's literals.
/// - `object(keys, values)`: `keys` distinct, in first-seen order, `values[k]` for each;
///   a repeated key keeps its last value at its first position, as a Python dict does.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case integer(String)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object(keys: [String], values: [String: JSONValue])

    /// `.integer` of `value`'s decimal text.
    public static func integer(_ value: Int) -> JSONValue {
        .integer(String(value))
    }

    /// `.number(x)`, or `.null` for nil (SPEC 4: undefined values are null).
    public static func number(_ value: Double?) -> JSONValue {
        value.map { .number($0) } ?? .null
    }

    /// An object with `members` in this order (a repeated key: its last value, first place).
    public static func object(_ members: [(String, JSONValue)]) -> JSONValue {
        var keys: [String] = [], values: [String: JSONValue] = [:]
        keys.reserveCapacity(members.count)
        for (key, value) in members where values.updateValue(value, forKey: key) == nil {
            keys.append(key)
        }
        return .object(keys: keys, values: values)
    }

    /// An object's members in order; nil for any other value.
    public var members: [(key: String, value: JSONValue)]? {
        guard case .object(let keys, let values) = self else { return nil }
        return keys.map { ($0, values[$0]!) }
    }

    /// The member `key` of an object; nil when absent or when this is not an object.
    public subscript(key: String) -> JSONValue? {
        guard case .object(_, let values) = self else { return nil }
        return values[key]
    }

    /// An integer literal that fits in an `Int`; nil otherwise (`1.0` is a number, not an integer).
    public var intValue: Int? {
        guard case .integer(let text) = self else { return nil }
        return Int(text)
    }

    /// A number or an integer literal as the correctly rounded double (strtod); nil otherwise.
    public var doubleValue: Double? {
        switch self {
        case .number(let value): return value
        case .integer(let text): return text.withCString { strtod($0, nil) }
        default: return nil
        }
    }

    /// The reference's `_jtype`: "an object", "an array", "a string", "a boolean",
    /// "an integer", "a number" or "null".
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .integer: return "an integer"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

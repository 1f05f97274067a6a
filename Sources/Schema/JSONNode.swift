import Foundation

/// An error in `model.json` (SPEC 1.1, 2.8): the message names the JSON path or the
/// fields and values at fault and says what was expected.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One value of a parsed JSON document together with its path (`schema.categorical[2].buckets`),
/// so that every type or presence error names where it happened.
struct JSONNode {
    let value: Any
    let path: String

    /// The member `key`; throws naming the path when it is absent or null.
    func member(_ key: String, expected: String) throws -> JSONNode {
        guard let node = optionalMember(key) else {
            throw ConfigError("missing key \(childPath(key)); expected \(expected)")
        }
        return node
    }

    /// The member `key`, or nil when it is absent or null.
    func optionalMember(_ key: String) -> JSONNode? {
        guard let object = value as? [String: Any], let child = object[key], !(child is NSNull) else { return nil }
        return JSONNode(value: child, path: childPath(key))
    }

    func has(_ key: String) -> Bool { (value as? [String: Any])?[key] != nil }

    private func childPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    private func wrongType(_ expected: String) -> ConfigError {
        ConfigError("\(path) = \(pythonRepr(value)); expected \(expected)")
    }

    func string() throws -> String {
        guard let text = value as? String else { throw wrongType("a string") }
        return text
    }

    func int() throws -> Int {
        guard let integer = (value as? JSONNumber)?.integer else { throw wrongType("an integer") }
        return integer
    }

    func double() throws -> Double {
        guard let number = value as? JSONNumber else { throw wrongType("a number") }
        return number.value
    }

    func array() throws -> [JSONNode] {
        guard let items = value as? [Any] else { throw wrongType("an array") }
        return items.enumerated().map { JSONNode(value: $0.element, path: "\(path)[\($0.offset)]") }
    }

    func object() throws -> [String: JSONNode] {
        guard let object = value as? [String: Any] else { throw wrongType("an object") }
        var members: [String: JSONNode] = [:]
        for (key, child) in object { members[key] = JSONNode(value: child, path: childPath(key)) }
        return members
    }

    func strings() throws -> [String] { try array().map { try $0.string() } }
    func ints() throws -> [Int] { try array().map { try $0.int() } }
}

/// Python's `repr` of a string: single quotes unless the text holds `'` and no `"`;
/// backslash, the quote, tab, newline, return and other control characters escaped.
/// Error messages use it so they read exactly like the reference's.
public func pythonRepr(_ text: String) -> String {
    let quote: Character = text.contains("'") && !text.contains("\"") ? "\"" : "'"
    var out = String(quote)
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\\": out += "\\\\"
        case "\t": out += "\\t"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        default:
            if Character(scalar) == quote {
                out += "\\" + String(quote)
            } else if scalar.value < 0x20 || (0x7F...0xA0).contains(scalar.value) {
                out += "\\x" + String(format: "%02x", scalar.value)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    out.append(quote)
    return out
}

/// Python's `repr` of a list of strings: `['a', 'b']`.
public func pythonRepr(_ list: [String]) -> String {
    "[" + list.map { pythonRepr($0) }.joined(separator: ", ") + "]"
}

/// Python's `repr` of a parsed JSON value (strings quoted, `True`/`False`/`None`).
func pythonRepr(_ value: Any) -> String {
    if value is NSNull { return "None" }
    if let flag = value as? Bool { return flag ? "True" : "False" }
    if let text = value as? String { return pythonRepr(text) }
    if let number = value as? JSONNumber { return number.integer.map { "\($0)" } ?? "\(number.value)" }
    if let items = value as? [Any] { return "[" + items.map { pythonRepr($0) }.joined(separator: ", ") + "]" }
    if let object = value as? [String: Any] {
        return "{" + object.keys.sorted().map { "\(pythonRepr($0)): \(pythonRepr(object[$0]!))" }.joined(separator: ", ") + "}"
    }
    return "\(value)"
}

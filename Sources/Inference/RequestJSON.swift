import Foundation
import Schema

/// A parsed request body (SPEC 5). Integers and other numbers stay apart, as Python's
/// `json` keeps `int` and `float` apart: `integer` holds the exact decimal text of an
/// integer literal (any size; `-0` reads as `0`), `number` a literal with a fraction or an
/// exponent as the correctly rounded double (strtod; `1e400` is +inf, as in Python).
/// Objects keep their keys in first-seen order; a repeated key keeps its last value.
public indirect enum RequestJSON: Equatable, Sendable {
    case null
    case bool(Bool)
    case integer(String)
    case number(Double)
    case string(String)
    case array([RequestJSON])
    case object(keys: [String], values: [String: RequestJSON])

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

    /// Python's `repr` of the value `json.loads` gives (`None`, `True`, `'text'`, `1.5`, `[1, 'a']`, `{'k': 1}`).
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

    /// Parses `data` as strict JSON (RFC 8259; UTF-8, a leading BOM skipped). `NaN`,
    /// `Infinity` and `-Infinity` are refused. A failure's `message` reads like Python's
    /// `json` errors (`Expecting value: line 1 column 1 (char 0)`; positions count
    /// characters, not bytes), or `NaN is not JSON` like the reference's `parse_constant`.
    public static func parse(_ data: Foundation.Data) throws -> RequestJSON {
        var bytes = [UInt8](data)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw RequestJSONError(message: "invalid UTF-8 in the body")
        }
        var parser = Parser(scalars: Array(text.unicodeScalars))
        return try parser.document()
    }
}

/// A body that is not JSON; `message` is what Python's `json.loads` would say.
public struct RequestJSONError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public var description: String { message }
}

/// Python's `repr(float)`: shortest round-trip digits, exponent form below 1e-4 and from 1e16.
func pythonFloatRepr(_ x: Double) -> String {
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

/// A recursive-descent parser over Unicode scalars with the messages of CPython's `json`
/// C scanner (3.11).
private struct Parser {
    let scalars: [Unicode.Scalar]
    var i = 0
    static let maxDepth = 512

    init(scalars: [Unicode.Scalar]) { self.scalars = scalars }

    func fail(_ what: String, at position: Int) -> RequestJSONError {
        var line = 1, lastNewline = -1
        for j in 0..<min(position, scalars.count) where scalars[j] == "\n" { line += 1; lastNewline = j }
        return RequestJSONError(message: "\(what): line \(line) column \(position - lastNewline) (char \(position))")
    }

    mutating func skipSpace() {
        while i < scalars.count, scalars[i] == " " || scalars[i] == "\t" || scalars[i] == "\n" || scalars[i] == "\r" { i += 1 }
    }

    func peek(_ offset: Int = 0) -> Unicode.Scalar? { i + offset < scalars.count ? scalars[i + offset] : nil }

    func matches(_ literal: String) -> Bool {
        var j = i
        for s in literal.unicodeScalars {
            guard j < scalars.count, scalars[j] == s else { return false }
            j += 1
        }
        return true
    }

    mutating func document() throws -> RequestJSON {
        skipSpace()
        let value = try self.value(depth: 0)
        skipSpace()
        if i != scalars.count { throw fail("Extra data", at: i) }
        return value
    }

    mutating func value(depth: Int) throws -> RequestJSON {
        guard let c = peek() else { throw fail("Expecting value", at: i) }
        switch c {
        case "\"": return .string(try string())
        case "{": return try object(depth: depth + 1)
        case "[": return try array(depth: depth + 1)
        case "n" where matches("null"): i += 4; return .null
        case "t" where matches("true"): i += 4; return .bool(true)
        case "f" where matches("false"): i += 5; return .bool(false)
        case "N" where matches("NaN"): throw RequestJSONError(message: "NaN is not JSON")
        case "I" where matches("Infinity"): throw RequestJSONError(message: "Infinity is not JSON")
        case "-" where matches("-Infinity"): throw RequestJSONError(message: "-Infinity is not JSON")
        default: return try number()
        }
    }

    mutating func object(depth: Int) throws -> RequestJSON {
        guard depth <= Self.maxDepth else { throw fail("nesting deeper than \(Self.maxDepth) levels", at: i) }
        i += 1
        var keys: [String] = [], values: [String: RequestJSON] = [:]
        skipSpace()
        if peek() == "}" { i += 1; return .object(keys: keys, values: values) }
        while true {
            guard peek() == "\"" else { throw fail("Expecting property name enclosed in double quotes", at: i) }
            let key = try string()
            skipSpace()
            guard peek() == ":" else { throw fail("Expecting ':' delimiter", at: i) }
            i += 1
            skipSpace()
            let v = try value(depth: depth)
            if values.updateValue(v, forKey: key) == nil { keys.append(key) }
            skipSpace()
            if peek() == "}" { i += 1; return .object(keys: keys, values: values) }
            guard peek() == "," else { throw fail("Expecting ',' delimiter", at: i) }
            i += 1
            skipSpace()
        }
    }

    mutating func array(depth: Int) throws -> RequestJSON {
        guard depth <= Self.maxDepth else { throw fail("nesting deeper than \(Self.maxDepth) levels", at: i) }
        i += 1
        var items: [RequestJSON] = []
        skipSpace()
        if peek() == "]" { i += 1; return .array(items) }
        while true {
            items.append(try value(depth: depth))
            skipSpace()
            if peek() == "]" { i += 1; return .array(items) }
            guard peek() == "," else { throw fail("Expecting ',' delimiter", at: i) }
            i += 1
            skipSpace()
        }
    }

    /// Python's NUMBER_RE `(-?(?:0|[1-9]\d*))(\.\d+)?([eE][-+]?\d+)?`, matched greedily.
    mutating func number() throws -> RequestJSON {
        let start = i
        func isDigit(_ j: Int) -> Bool { j < scalars.count && scalars[j].value >= 0x30 && scalars[j].value <= 0x39 }
        var j = i
        if j < scalars.count && scalars[j] == "-" { j += 1 }
        guard isDigit(j) else { throw fail("Expecting value", at: start) }
        if scalars[j] == "0" { j += 1 } else { while isDigit(j) { j += 1 } }
        var integral = true
        if j < scalars.count && scalars[j] == "." && isDigit(j + 1) {
            integral = false
            j += 1
            while isDigit(j) { j += 1 }
        }
        if j < scalars.count && (scalars[j] == "e" || scalars[j] == "E") {
            var k = j + 1
            if k < scalars.count && (scalars[k] == "+" || scalars[k] == "-") { k += 1 }
            if isDigit(k) {
                integral = false
                j = k
                while isDigit(j) { j += 1 }
            }
        }
        var text = ""
        text.unicodeScalars.append(contentsOf: scalars[start..<j])
        i = j
        if integral { return .integer(text == "-0" ? "0" : text) }
        return .number(text.withCString { strtod($0, nil) })
    }

    mutating func string() throws -> String {
        let begin = i
        i += 1
        var out = String.UnicodeScalarView()
        while true {
            guard let c = peek() else { throw fail("Unterminated string starting at", at: begin) }
            if c == "\"" { i += 1; return String(out) }
            if c.value < 0x20 { throw fail("Invalid control character at", at: i) }
            if c != "\\" { out.append(c); i += 1; continue }
            guard let e = peek(1) else { throw fail("Unterminated string starting at", at: begin) }
            switch e {
            case "\"", "\\", "/": out.append(e)
            case "b": out.append("\u{08}")
            case "f": out.append("\u{0C}")
            case "n": out.append("\n")
            case "r": out.append("\r")
            case "t": out.append("\t")
            case "u":
                var unit = try hex4(at: i + 2)
                var width = 6
                if (0xD800..<0xDC00).contains(unit), peek(6) == "\\", peek(7) == "u",
                   let low = try? hex4(at: i + 8), (0xDC00..<0xE000).contains(low) {
                    unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                    width = 12
                }
                // A lone surrogate: Python keeps it in the str; Swift strings cannot hold one.
                out.append(Unicode.Scalar(unit) ?? "\u{FFFD}")
                i += width
                continue
            default: throw fail("Invalid \\escape", at: i)
            }
            i += 2
        }
    }

    func hex4(at position: Int) throws -> UInt32 {
        guard position + 4 <= scalars.count else { throw fail("Invalid \\uXXXX escape", at: position - 1) }
        var value: UInt32 = 0
        for j in position..<(position + 4) {
            guard let digit = Int(String(Character(scalars[j])), radix: 16) else { throw fail("Invalid \\uXXXX escape", at: position - 1) }
            value = value * 16 + UInt32(digit)
        }
        return value
    }
}

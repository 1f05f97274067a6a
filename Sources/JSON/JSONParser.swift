// The one JSON parser: strict RFC 8259 with the messages of CPython's `json` C scanner
// (3.11), so request errors read like the reference's, and strtod for numbers, because
// Foundation's JSONSerialization on Linux rounds some decimals wrongly
// (-0.09999999999999999 reads as -0.1), which would change fitted statistics on a round trip.
import Foundation

/// Text that is not JSON. `message` reads like Python's `json` errors
/// (`Expecting value: line 1 column 1 (char 0)`; positions count characters, not bytes),
/// `NaN is not JSON` for a refused literal (the reference's `parse_constant`), or
/// `invalid UTF-8 at byte N`.
public struct JSONSyntaxError: Error, CustomStringConvertible, Equatable, Sendable {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

extension JSONValue {
    /// Parses `data` as one JSON document (UTF-8; a leading byte order mark skipped, as
    /// Python's `json.loads` of bytes does). `NaN`, `Infinity` and `-Infinity` are numbers
    /// when `nonFiniteLiterals` (as Python's `json.load` reads them, and as model.json
    /// writes them), else refused. Containers nest at most 512 deep. A lone UTF-16
    /// surrogate escape reads as U+FFFD (Python keeps it; a Swift string cannot).
    public static func parse(_ data: Foundation.Data, nonFiniteLiterals: Bool = false) throws -> JSONValue {
        var bytes = [UInt8](data)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        if let bad = firstInvalidUTF8(bytes) {
            throw JSONSyntaxError(message: "invalid UTF-8 at byte \(bad)")
        }
        var parser = JSONParser(bytes: bytes, nonFiniteLiterals: nonFiniteLiterals)
        return try parser.document()
    }
}

/// The offset of the first byte that does not start a valid UTF-8 scalar, nil when all do.
private func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? {
    if String(validating: bytes, as: UTF8.self) != nil { return nil }
    var parser = Unicode.UTF8.ForwardParser()
    var iterator = bytes.makeIterator()
    var offset = 0
    while true {
        switch parser.parseScalar(from: &iterator) {
        case .valid(let scalar): offset += scalar.count
        case .error: return offset
        case .emptyInput: return nil
        }
    }
}

/// A recursive-descent parser over valid UTF-8 bytes. Positions are byte offsets until an
/// error converts them to Python's character positions.
private struct JSONParser {
    let bytes: [UInt8]
    let nonFiniteLiterals: Bool
    var i = 0
    static let maxDepth = 512

    init(bytes: [UInt8], nonFiniteLiterals: Bool) {
        self.bytes = bytes
        self.nonFiniteLiterals = nonFiniteLiterals
    }

    /// `what: line L column C (char P)` for the character at byte `position`.
    func fail(_ what: String, at position: Int) -> JSONSyntaxError {
        var line = 1, characters = 0, lastNewline = -1
        for j in 0..<min(position, bytes.count) where bytes[j] & 0xC0 != 0x80 {  // one per scalar
            if bytes[j] == 0x0A { line += 1; lastNewline = characters }
            characters += 1
        }
        return JSONSyntaxError(message: "\(what): line \(line) column \(characters - lastNewline) (char \(characters))")
    }

    mutating func skipSpace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 || bytes[i] == 0x0A || bytes[i] == 0x0D { i += 1 }
    }

    func peek(_ offset: Int = 0) -> UInt8? { i + offset < bytes.count ? bytes[i + offset] : nil }

    func matches(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard i + count <= bytes.count else { return false }
        return literal.withUTF8Buffer { text in (0..<count).allSatisfy { bytes[i + $0] == text[$0] } }
    }

    mutating func document() throws -> JSONValue {
        skipSpace()
        let value = try self.value(depth: 0)
        skipSpace()
        if i != bytes.count { throw fail("Extra data", at: i) }
        return value
    }

    mutating func value(depth: Int) throws -> JSONValue {
        guard let c = peek() else { throw fail("Expecting value", at: i) }
        switch c {
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "n") where matches("null"): i += 4; return .null
        case UInt8(ascii: "t") where matches("true"): i += 4; return .bool(true)
        case UInt8(ascii: "f") where matches("false"): i += 5; return .bool(false)
        case UInt8(ascii: "N") where matches("NaN"): return try constant("NaN", .nan)
        case UInt8(ascii: "I") where matches("Infinity"): return try constant("Infinity", .infinity)
        case UInt8(ascii: "-") where matches("-Infinity"): return try constant("-Infinity", -.infinity)
        default: return try number()
        }
    }

    mutating func constant(_ literal: String, _ value: Double) throws -> JSONValue {
        guard nonFiniteLiterals else { throw JSONSyntaxError(message: "\(literal) is not JSON") }
        i += literal.utf8.count
        return .number(value)
    }

    mutating func object(depth: Int) throws -> JSONValue {
        guard depth <= Self.maxDepth else { throw fail("nesting deeper than \(Self.maxDepth) levels", at: i) }
        i += 1
        var keys: [String] = [], values: [String: JSONValue] = [:]
        skipSpace()
        if peek() == UInt8(ascii: "}") { i += 1; return .object(keys: keys, values: values) }
        while true {
            guard peek() == UInt8(ascii: "\"") else { throw fail("Expecting property name enclosed in double quotes", at: i) }
            let key = try string()
            skipSpace()
            guard peek() == UInt8(ascii: ":") else { throw fail("Expecting ':' delimiter", at: i) }
            i += 1
            skipSpace()
            let member = try value(depth: depth)
            if values.updateValue(member, forKey: key) == nil { keys.append(key) }
            skipSpace()
            if peek() == UInt8(ascii: "}") { i += 1; return .object(keys: keys, values: values) }
            guard peek() == UInt8(ascii: ",") else { throw fail("Expecting ',' delimiter", at: i) }
            i += 1
            skipSpace()
        }
    }

    mutating func array(depth: Int) throws -> JSONValue {
        guard depth <= Self.maxDepth else { throw fail("nesting deeper than \(Self.maxDepth) levels", at: i) }
        i += 1
        var items: [JSONValue] = []
        skipSpace()
        if peek() == UInt8(ascii: "]") { i += 1; return .array(items) }
        while true {
            items.append(try value(depth: depth))
            skipSpace()
            if peek() == UInt8(ascii: "]") { i += 1; return .array(items) }
            guard peek() == UInt8(ascii: ",") else { throw fail("Expecting ',' delimiter", at: i) }
            i += 1
            skipSpace()
        }
    }

    func isDigit(_ j: Int) -> Bool { j < bytes.count && bytes[j] >= 0x30 && bytes[j] <= 0x39 }

    /// Python's NUMBER_RE `(-?(?:0|[1-9]\d*))(\.\d+)?([eE][-+]?\d+)?`, matched greedily:
    /// `1.` is the integer 1 followed by whatever `.` makes of the rest.
    mutating func number() throws -> JSONValue {
        let start = i
        var j = i
        if j < bytes.count && bytes[j] == UInt8(ascii: "-") { j += 1 }
        guard isDigit(j) else { throw fail("Expecting value", at: start) }
        if bytes[j] == UInt8(ascii: "0") { j += 1 } else { while isDigit(j) { j += 1 } }
        var integral = true
        if j < bytes.count && bytes[j] == UInt8(ascii: ".") && isDigit(j + 1) {
            integral = false
            j += 1
            while isDigit(j) { j += 1 }
        }
        if j < bytes.count && (bytes[j] == UInt8(ascii: "e") || bytes[j] == UInt8(ascii: "E")) {
            var k = j + 1
            if k < bytes.count && (bytes[k] == UInt8(ascii: "+") || bytes[k] == UInt8(ascii: "-")) { k += 1 }
            if isDigit(k) {
                integral = false
                j = k
                while isDigit(j) { j += 1 }
            }
        }
        let text = String(decoding: bytes[start..<j], as: UTF8.self)
        i = j
        if integral { return .integer(text == "-0" ? "0" : text) }
        return .number(text.withCString { strtod($0, nil) })
    }

    mutating func string() throws -> String {
        let begin = i
        i += 1
        var out: [UInt8] = []
        while true {
            guard let c = peek() else { throw fail("Unterminated string starting at", at: begin) }
            if c == UInt8(ascii: "\"") {
                i += 1
                return String(decoding: out, as: UTF8.self)
            }
            if c < 0x20 { throw fail("Invalid control character at", at: i) }
            if c != UInt8(ascii: "\\") { out.append(c); i += 1; continue }
            guard let e = peek(1) else { throw fail("Unterminated string starting at", at: begin) }
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var unit = try hex4(at: i + 2)
                var width = 6
                if (0xD800..<0xDC00).contains(unit), peek(6) == UInt8(ascii: "\\"), peek(7) == UInt8(ascii: "u"),
                   let low = try? hex4(at: i + 8), (0xDC00..<0xE000).contains(low) {
                    unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                    width = 12
                }
                // A lone surrogate: Python keeps it in the str; Swift strings cannot hold one.
                out.append(contentsOf: String(Character(Unicode.Scalar(unit) ?? "\u{FFFD}")).utf8)
                i += width
                continue
            default: throw fail("Invalid \\escape", at: i)
            }
            i += 2
        }
    }

    /// The four hex digits at byte `position` (just after `\u`).
    func hex4(at position: Int) throws -> UInt32 {
        guard position + 4 <= bytes.count else { throw fail("Invalid \\uXXXX escape", at: position - 1) }
        var value: UInt32 = 0
        for j in position..<(position + 4) {
            let b = bytes[j]
            let digit: UInt8
            switch b {
            case 0x30...0x39: digit = b - 0x30
            case 0x41...0x46: digit = b - 0x41 + 10
            case 0x61...0x66: digit = b - 0x61 + 10
            default: throw fail("Invalid \\uXXXX escape", at: position - 1)
            }
            value = value * 16 + UInt32(digit)
        }
        return value
    }
}

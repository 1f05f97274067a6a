import Foundation

/// A JSON number as written: `value` is the correctly rounded double (strtod), `integer` the
/// exact integer when the literal has no fraction or exponent and fits in an Int.
struct JSONNumber {
    let text: String
    let value: Double
    let integer: Int?
}

/// A strict RFC 8259 parser into `[String: Any]`, `[Any]`, `String`, `JSONNumber`, `Bool` and
/// `NSNull`. Foundation's JSONSerialization on Linux rounds some decimals wrongly
/// (-0.09999999999999999 reads as -0.1), which would change fitted statistics on a round trip.
struct JSONParser {
    private let bytes: [UInt8]
    private var i = 0

    static func parse(_ data: Foundation.Data) throws -> Any {
        var parser = JSONParser(bytes: [UInt8](data))
        parser.skipSpace()
        let value = try parser.parseValue(depth: 0)
        parser.skipSpace()
        if parser.i != parser.bytes.count { throw parser.error("unexpected text after the JSON value") }
        return value
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private func error(_ what: String) -> ConfigError {
        let line = 1 + bytes[0..<min(i, bytes.count)].filter { $0 == 0x0A }.count
        return ConfigError("model config is not JSON: \(what) at line \(line) (byte \(i)); expected a SPEC 2.8 JSON object")
    }

    private mutating func skipSpace() {
        while i < bytes.count && (bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09) { i += 1 }
    }

    private mutating func expect(_ literal: String) throws {
        let utf8 = Array(literal.utf8)
        guard i + utf8.count <= bytes.count && Array(bytes[i ..< i + utf8.count]) == utf8 else {
            throw error("expected \(literal)")
        }
        i += utf8.count
    }

    private mutating func parseValue(depth: Int) throws -> Any {
        guard depth < 512 else { throw error("nesting deeper than 512") }
        guard i < bytes.count else { throw error("unexpected end") }
        switch bytes[i] {
        case UInt8(ascii: "{"):
            i += 1
            var object: [String: Any] = [:]
            skipSpace()
            if i < bytes.count && bytes[i] == UInt8(ascii: "}") { i += 1; return object }
            while true {
                skipSpace()
                guard i < bytes.count && bytes[i] == UInt8(ascii: "\"") else { throw error("expected a string key") }
                let key = try parseString()
                skipSpace()
                try expect(":")
                skipSpace()
                object[key] = try parseValue(depth: depth + 1)
                skipSpace()
                guard i < bytes.count else { throw error("unexpected end in an object") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "}") { i += 1; return object }
                throw error("expected , or }")
            }
        case UInt8(ascii: "["):
            i += 1
            var array: [Any] = []
            skipSpace()
            if i < bytes.count && bytes[i] == UInt8(ascii: "]") { i += 1; return array }
            while true {
                skipSpace()
                array.append(try parseValue(depth: depth + 1))
                skipSpace()
                guard i < bytes.count else { throw error("unexpected end in an array") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "]") { i += 1; return array }
                throw error("expected , or ]")
            }
        case UInt8(ascii: "\""): return try parseString()
        case UInt8(ascii: "t"): try expect("true"); return true
        case UInt8(ascii: "f"): try expect("false"); return false
        case UInt8(ascii: "n"): try expect("null"); return NSNull()
        default: return try parseNumber()
        }
    }

    private mutating func parseNumber() throws -> JSONNumber {
        let start = i
        let bytes = self.bytes
        func isDigit(_ j: Int) -> Bool { j < bytes.count && bytes[j] >= 0x30 && bytes[j] <= 0x39 }
        if i < bytes.count && bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard isDigit(i) else { throw error("expected a value") }
        if bytes[i] == 0x30 { i += 1 } else { while isDigit(i) { i += 1 } }
        var integral = true
        if i < bytes.count && bytes[i] == UInt8(ascii: ".") {
            integral = false
            i += 1
            guard isDigit(i) else { throw error("expected digits after the decimal point") }
            while isDigit(i) { i += 1 }
        }
        if i < bytes.count && (bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E")) {
            integral = false
            i += 1
            if i < bytes.count && (bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-")) { i += 1 }
            guard isDigit(i) else { throw error("expected exponent digits") }
            while isDigit(i) { i += 1 }
        }
        let text = String(decoding: bytes[start..<i], as: UTF8.self)
        let value = text.withCString { strtod($0, nil) }
        return JSONNumber(text: text, value: value, integer: integral ? Int(text) : nil)
    }

    private mutating func parseString() throws -> String {
        i += 1  // opening quote
        var out: [UInt8] = []
        while true {
            guard i < bytes.count else { throw error("unterminated string") }
            let byte = bytes[i]
            i += 1
            if byte == UInt8(ascii: "\"") { break }
            if byte < 0x20 { throw error("control character in a string") }
            if byte != UInt8(ascii: "\\") { out.append(byte); continue }
            guard i < bytes.count else { throw error("unterminated escape") }
            let escape = bytes[i]
            i += 1
            switch escape {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var unit = try parseHex4()
                if (0xD800..<0xDC00).contains(unit), i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") {
                    i += 2
                    let low = try parseHex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw error("invalid surrogate pair") }
                    unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let scalar = Unicode.Scalar(unit) else { throw error("invalid \\u escape") }
                out.append(contentsOf: Array(String(Character(scalar)).utf8))
            default: throw error("invalid escape")
            }
        }
        guard let text = String(validating: out, as: UTF8.self) else { throw error("invalid UTF-8 in a string") }
        return text
    }

    private mutating func parseHex4() throws -> UInt32 {
        guard i + 4 <= bytes.count, let value = UInt32(String(decoding: bytes[i ..< i + 4], as: UTF8.self), radix: 16) else {
            throw error("expected 4 hex digits after \\u")
        }
        i += 4
        return value
    }
}

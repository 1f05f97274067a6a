import Foundation
import Schema

/// How the SPEC 1.4 number syntax is described in error messages (as the reference does).
public let numberExpectation = "a finite decimal number like 0.25, -3, .5 or 1e-3"

/// Whether `bytes` matches `[+-]?(digits[.digits]|.digits)([eE][+-]?digits)?` (SPEC 1.4).
@inlinable
func matchesNumberSyntax(_ bytes: UnsafeRawBufferPointer) -> Bool {
    var i = 0
    let n = bytes.count
    @inline(__always) func isDigit(_ j: Int) -> Bool { j < n && bytes[j] &- 0x30 < 10 }
    if i < n && (bytes[i] == 0x2B || bytes[i] == 0x2D) { i += 1 }
    var integerDigits = 0
    while isDigit(i) { i += 1; integerDigits += 1 }
    if i < n && bytes[i] == 0x2E {
        i += 1
        var fractionDigits = 0
        while isDigit(i) { i += 1; fractionDigits += 1 }
        if fractionDigits == 0 { return false }  // "1." and "." are not numbers
    } else if integerDigits == 0 {
        return false
    }
    if i < n && (bytes[i] == 0x65 || bytes[i] == 0x45) {
        i += 1
        if i < n && (bytes[i] == 0x2B || bytes[i] == 0x2D) { i += 1 }
        var exponentDigits = 0
        while isDigit(i) { i += 1; exponentDigits += 1 }
        if exponentDigits == 0 { return false }
    }
    return i == n
}

/// Correctly rounded decimal-to-double conversion (strtod) of bytes already known to match the
/// number syntax; `scratch` is reused between calls to hold the NUL-terminated copy.
func parseDouble(_ bytes: UnsafeRawBufferPointer, scratch: inout [CChar]) -> Double {
    if scratch.count < bytes.count + 1 { scratch = [CChar](repeating: 0, count: bytes.count + 64) }
    return scratch.withUnsafeMutableBufferPointer { buffer in
        let base = buffer.baseAddress!
        UnsafeMutableRawPointer(base).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        base[bytes.count] = 0
        return strtod(base, nil)
    }
}

/// SPEC 1.4 number of a dense cell: the syntax above and finite. The error text is the
/// reference's `parse_float` message (`bad number '1.'; expected ...`).
public func parseDenseNumber(_ text: String) throws -> Double {
    var copy = text
    var scratch: [CChar] = []
    let value: Double? = copy.withUTF8 { utf8 in
        let raw = UnsafeRawBufferPointer(utf8)
        guard matchesNumberSyntax(raw) else { return nil }
        let parsed = parseDouble(raw, scratch: &scratch)
        return parsed.isFinite ? parsed : nil
    }
    guard let value else { throw DenseNumberError(text: text) }
    return value
}

/// A dense cell that is not a SPEC 1.4 number.
public struct DenseNumberError: Error, CustomStringConvertible {
    public var text: String
    public var description: String { "bad number \(pythonRepr(text)); expected \(numberExpectation)" }
}

/// The correctly rounded sum of `values` (Shewchuk's exact partials, as Python's `math.fsum`),
/// so fitted statistics equal the reference's to the last bit.
public func exactSum(_ values: [Double]) -> Double {
    var partials: [Double] = []
    for value in values {
        var x = value
        var kept = 0
        for j in 0..<partials.count {
            var y = partials[j]
            if abs(x) < abs(y) { swap(&x, &y) }
            let high = x + y
            let low = y - (high - x)
            if low != 0 {
                partials[kept] = low
                kept += 1
            }
            x = high
        }
        partials.removeSubrange(kept...)
        partials.append(x)
    }
    // Round the partials' exact sum once (Python's fsum tail, half-way cases included).
    guard var n = partials.indices.last else { return 0 }
    var high = partials[n]
    var low = 0.0
    while n > 0 {
        let x = high
        n -= 1
        let y = partials[n]
        high = x + y
        low = y - (high - x)
        if low != 0 { break }
    }
    if n > 0 && ((low < 0 && partials[n - 1] < 0) || (low > 0 && partials[n - 1] > 0)) {
        let y = low * 2
        let x = high + y
        if y == x - high { high = x }
    }
    return high
}

/// SPEC 1.4 statistics of a `standardize` feature from its non-missing values: float64 mean and
/// population std (floor 1e-6); no values -> mean 0, std 1.
public func fitDenseStats(values: [Double]) -> DenseStats {
    if values.isEmpty { return DenseStats(mean: 0, std: 1) }
    let count = Double(values.count)
    let mean = exactSum(values) / count
    var squares = values
    for i in squares.indices { squares[i] = (squares[i] - mean) * (squares[i] - mean) }
    let variance = exactSum(squares) / count
    return DenseStats(mean: mean, std: max(variance.squareRoot(), 1e-6))
}

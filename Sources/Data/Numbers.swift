import Foundation
import JSON
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

/// Correctly rounded decimal-to-double conversion of bytes already known to match the number
/// syntax: `exactShortDecimal` when it applies, else strtod (`strtodDouble`); the two give the
/// same bits. `scratch` is reused between calls to hold strtod's NUL-terminated copy.
@inline(__always)
func parseDouble(_ bytes: UnsafeRawBufferPointer, scratch: inout [CChar]) -> Double {
    exactShortDecimal(bytes) ?? strtodDouble(bytes, scratch: &scratch)
}

/// strtod of bytes that match the number syntax (glibc's strtod rounds correctly).
func strtodDouble(_ bytes: UnsafeRawBufferPointer, scratch: inout [CChar]) -> Double {
    if scratch.count < bytes.count + 1 { scratch = [CChar](repeating: 0, count: bytes.count + 64) }
    return scratch.withUnsafeMutableBufferPointer { buffer in
        let base = buffer.baseAddress!
        UnsafeMutableRawPointer(base).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        base[bytes.count] = 0
        return strtod(base, nil)
    }
}

/// 10^0 ... 10^22: the powers of ten a double holds exactly.
private let exactPowersOfTen: [Double] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
]

/// The correctly rounded double of a number-syntax string whose significant digits form an
/// integer w <= 2^53 and whose decimal exponent e (after moving the point behind the last digit)
/// is in [-22, 22], else nil. Then w and 10^|e| are exact doubles and one IEEE multiplication or
/// division rounds w * 10^e correctly (Clinger's fast path), so the result equals strtod's.
/// `EncodingKernelTests` compares it with `strtodDouble` bit for bit.
@inline(__always)
func exactShortDecimal(_ bytes: UnsafeRawBufferPointer) -> Double? {
    guard let p = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return nil }
    let n = bytes.count
    var i = 0
    var negative = false
    if p[0] == 0x2D || p[0] == 0x2B {
        negative = p[0] == 0x2D
        i = 1
    }
    var mantissa: UInt64 = 0
    var significantDigits = 0
    var exponent = 0
    var fraction = false
    while i < n {
        let digit = p[i] &- 0x30
        if digit >= 10 {
            if p[i] == 0x2E {
                fraction = true
                i += 1
                continue
            }
            break  // 'e' or 'E'
        }
        if mantissa != 0 || digit != 0 {
            if significantDigits == 19 { return nil }  // w might not fit in 64 bits
            mantissa = mantissa &* 10 &+ UInt64(digit)
            significantDigits += 1
        }
        if fraction { exponent -= 1 }
        i += 1
    }
    if i < n {  // exponent part: [eE][+-]?digits
        i += 1
        var exponentNegative = false
        if p[i] == 0x2D || p[i] == 0x2B {
            exponentNegative = p[i] == 0x2D
            i += 1
        }
        var written = 0
        while i < n {
            if written > 100_000 { return nil }
            written = written * 10 + Int(p[i] &- 0x30)
            i += 1
        }
        exponent += exponentNegative ? -written : written
    }
    if mantissa == 0 { return negative ? -0.0 : 0.0 }
    guard mantissa <= 1 << 53, exponent >= -22, exponent <= 22 else { return nil }
    let w = Double(mantissa)
    let magnitude = exponent >= 0 ? w * exactPowersOfTen[exponent] : w / exactPowersOfTen[-exponent]
    return negative ? -magnitude : magnitude
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
    var sum = ExactSum()
    for value in values { sum.add(value) }
    return sum.value
}

/// A running `exactSum`: values added one at a time (in any order: the result is the correctly
/// rounded exact sum), in memory that does not grow with their number.
public struct ExactSum: Sendable {
    private var partials: [Double] = []

    public init() {}

    /// Adds `value` exactly (the partials stay non-overlapping, smallest first).
    public mutating func add(_ value: Double) {
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

    /// The partials' exact sum rounded once (Python's fsum tail, half-way cases included).
    public var value: Double {
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
}

/// SPEC 1.4 statistics of a `standardize` feature from its non-missing values: float64 mean and
/// population std (floor 1e-6); no values -> mean 0, std 1.
public func fitDenseStats(values: [Double]) -> DenseStats {
    fitDenseStats { visit in values.forEach(visit) }
}

/// `fitDenseStats(values:)` of the values `forEach` visits (twice: mean, then squared
/// deviations), without holding them: for data larger than memory.
public func fitDenseStats(forEach: ((Double) -> Void) -> Void) -> DenseStats {
    var sum = ExactSum(), count = 0
    forEach { sum.add($0); count += 1 }
    if count == 0 { return .identity }
    let mean = sum.value / Double(count)
    var squares = ExactSum()
    forEach { squares.add(($0 - mean) * ($0 - mean)) }
    let variance = squares.value / Double(count)
    return DenseStats(mean: mean, std: max(variance.squareRoot(), 1e-6))
}

/// SPEC 1.4's dense transforms, the one place they are computed (`EncodedRows` at encoding,
/// `DataCache` when a batch is gathered): for feature j of `schema.dense` and its raw value x
/// (float64, NaN = missing), `none` gives x, `log1p` log1p(max(x, 0)), `standardize`
/// (x - mean_j) / max(std_j, 1e-6) with the fitted statistics; float64 math, stored float32;
/// missing -> 0.
public struct DenseTransform: Sendable {
    /// Per feature: 0 none, 1 log1p, 2 standardize; mean and std (floored) for standardize.
    private let kind: [UInt8], mean: [Double], std: [Double]

    /// Throws when a `standardize` feature has no entry in `stats`.
    public init(schema: Schema, stats: [String: DenseStats]) throws {
        var kind: [UInt8] = [], mean: [Double] = [], std: [Double] = []
        for feature in schema.dense {
            var m = 0.0, s = 1.0
            if feature.transform == .standardize {
                guard let fitted = stats[feature.name] else {
                    throw ConfigError("dense_stats has no entry for standardize feature \(feature.name); expected "
                                      + "the statistics fitted on the training data (SPEC 1.4)")
                }
                m = fitted.mean
                s = max(fitted.std, 1e-6)
            }
            kind.append(feature.transform == .none ? 0 : feature.transform == .log1p ? 1 : 2)
            mean.append(m)
            std.append(s)
        }
        self.kind = kind
        self.mean = mean
        self.std = std
    }

    /// The transformed value of raw `x` of dense feature `j`.
    @inline(__always)
    public func callAsFunction(_ x: Double, feature j: Int) -> Float {
        if x.isNaN { return 0 }
        switch kind[j] {
        case 0: return Float(x)
        case 1: return Float(Foundation.log1p(max(x, 0)))
        default: return Float((x - mean[j]) / std[j])
        }
    }
}

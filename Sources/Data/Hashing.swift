/// FNV-1a 64-bit (SPEC 1.3): offset basis 0xcbf29ce484222325, prime 0x100000001b3, over the bytes.
@inlinable
public func fnv1a64(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in bytes {
        hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
    }
    return hash
}

/// FNV-1a 64-bit of the UTF-8 bytes of `text`.
public func fnv1a64(_ text: String) -> UInt64 {
    var text = text
    return text.withUTF8 { fnv1a64(UnsafeRawBufferPointer($0)) }
}

/// SPEC 1.3: `1 + fnv1a64(v) mod (buckets - 1)` for a non-empty value, 0 (the missing row) for "".
/// `buckets` is any table size >= 2 (the hash vectors go up to 2^53).
@inlinable
public func bucket(hash: UInt64, buckets: UInt64) -> UInt64 {
    1 + hash % (buckets - 1)
}

/// SPEC 1.3 bucket of a value as written in the file; "" -> 0. `buckets` in [2, Int32.max].
public func bucket(_ text: String, buckets: Int) -> Int32 {
    precondition(buckets >= 2 && buckets <= Int(Int32.max), "a table has 2 ... Int32.max buckets, got \(buckets)")
    return text.isEmpty ? 0 : Int32(bucket(hash: fnv1a64(text), buckets: UInt64(buckets)))
}

/// SPEC 1.3 bucket of the bytes of one value; an empty range is missing (0).
@inlinable
func bucket(_ bytes: UnsafeRawBufferPointer, buckets: UInt64) -> Int32 {
    bytes.isEmpty ? 0 : Int32(truncatingIfNeeded: bucket(hash: fnv1a64(bytes), buckets: buckets))
}

/// `x mod divisor` for any 64-bit `x` by multiplications with a precomputed 128-bit reciprocal
/// instead of a 64-bit division (Lemire, Kaser and Kurz, "Faster remainder by direct computation",
/// 2019): with M = ceil(2^128 / d), `x mod d = floor(((M * x) mod 2^128) * d / 2^128)`, exact for
/// every `x` < 2^64 and every `d` in 1 ..< 2^64 (their theorem 1 with F = 128, N = 64:
/// M * d - 2^128 < d <= 2^64). `EncodingKernelTests` checks it against `%`.
public struct FastRemainder: Sendable {
    /// d.
    public let divisor: UInt64
    /// M mod 2^128 as two 64-bit halves (M = 2^128 wraps to 0 for d = 1, which gives 0 = x mod 1).
    @usableFromInline let reciprocalHigh: UInt64
    @usableFromInline let reciprocalLow: UInt64

    /// Precomputes the reciprocal of `divisor` (>= 1).
    public init(divisor: UInt64) {
        precondition(divisor >= 1, "the divisor must be >= 1")
        self.divisor = divisor
        // floor((2^128 - 1) / d) by long division in two 64-bit digits, then + 1 = ceil(2^128 / d).
        let high = UInt64.max / divisor
        let low = divisor.dividingFullWidth((high: UInt64.max % divisor, low: UInt64.max)).quotient
        let (sumLow, carry) = low.addingReportingOverflow(1)
        reciprocalLow = sumLow
        reciprocalHigh = high &+ (carry ? 1 : 0)
    }

    /// `x % divisor`.
    @inlinable @inline(__always)
    public func remainder(_ x: UInt64) -> UInt64 {
        // fraction = M * x mod 2^128
        let lowProduct = reciprocalLow.multipliedFullWidth(by: x)
        let fractionHigh = reciprocalHigh &* x &+ lowProduct.high
        let fractionLow = lowProduct.low
        // floor(fraction * d / 2^128)
        let top = fractionHigh.multipliedFullWidth(by: divisor)
        let carry = top.low.addingReportingOverflow(fractionLow.multipliedFullWidth(by: divisor).high).overflow
        return top.high &+ (carry ? 1 : 0)
    }
}

/// SPEC 1.3 buckets of one table with the modulo precomputed (`FastRemainder`); gives exactly
/// `bucket(_:buckets:)`.
public struct BucketHasher: Sendable {
    @usableFromInline let reduce: FastRemainder

    /// A hasher for a table of `buckets` rows (>= 2).
    public init(buckets: UInt64) {
        precondition(buckets >= 2, "a table has at least 2 buckets, got \(buckets)")
        reduce = FastRemainder(divisor: buckets - 1)
    }

    /// `1 + hash mod (buckets - 1)`.
    @inlinable @inline(__always)
    public func bucket(hash: UInt64) -> UInt64 { 1 + reduce.remainder(hash) }

    /// The bucket of one value's bytes; empty (missing) -> 0. `buckets` must fit in Int32.
    @inlinable @inline(__always)
    public func bucket(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        bytes.isEmpty ? 0 : Int32(truncatingIfNeeded: bucket(hash: fnv1a64(bytes)))
    }

    /// Buckets of the space-separated non-empty tokens of `cell` (SPEC 1.2), in one pass: the
    /// first `limit` go to `out[0 ..< limit]`, and all tokens are counted (returned). Gives what
    /// `forEachToken` with `bucket(_:buckets:)` per token gives (`EncodingKernelTests` compares them).
    @inlinable
    public func bucketTokens(_ cell: UnsafeRawBufferPointer, limit: Int, into out: UnsafeMutablePointer<Int32>) -> Int {
        guard let base = cell.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return 0 }
        let n = cell.count
        var i = 0
        var count = 0
        while i < n {
            if base[i] == 0x20 {
                i += 1
                continue
            }
            if count >= limit {  // past the kept tokens: only count them
                count += 1
                while i < n && base[i] != 0x20 { i += 1 }
                continue
            }
            var hash: UInt64 = 0xCBF2_9CE4_8422_2325
            repeat {
                hash = (hash ^ UInt64(base[i])) &* 0x0000_0100_0000_01B3
                i += 1
            } while i < n && base[i] != 0x20
            out[count] = Int32(truncatingIfNeeded: bucket(hash: hash))
            count += 1
        }
        return count
    }
}

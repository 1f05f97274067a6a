import Foundation

/// xoshiro256** 1.0 (Blackman and Vigna 2018), the generator behind every random draw
/// of `braid generate`. The 256-bit state is filled from SplitMix64(seed), so a seed
/// fixes every output on every platform; the system random source is never used.
///
/// Derived draws: `uniform()` = (next() >> 11) * 2^-53 in [0, 1); `below(n)` =
/// floor(uniform() * n); `normal()` is Box-Muller with u1 = 1 - uniform() in (0, 1]:
/// sqrt(-2 ln u1) * cos(2 pi u2), one draw per call (no cached second value).
public struct Xoshiro256StarStar {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    /// Seeds the state with four SplitMix64 outputs of `seed` mixed with `stream`, so
    /// different streams of one seed are independent sequences.
    public init(seed: UInt64, stream: UInt64 = 0) {
        var mixer = SplitMix64(seed: seed ^ (stream &* 0xD1B5_4A32_D192_ED03))
        s0 = mixer.next()
        s1 = mixer.next()
        s2 = mixer.next()
        s3 = mixer.next()
    }

    @inline(__always) private static func rotateLeft(_ value: UInt64, _ count: UInt64) -> UInt64 {
        (value << count) | (value >> (64 - count))
    }

    /// The next 64 random bits.
    @inline(__always) public mutating func next() -> UInt64 {
        let result = Self.rotateLeft(s1 &* 5, 7) &* 9
        let shifted = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= shifted
        s3 = Self.rotateLeft(s3, 45)
        return result
    }

    /// A uniform double in [0, 1) with 53 random bits.
    @inline(__always) public mutating func uniform() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// A uniform integer in [0, count); `count` must be positive.
    @inline(__always) public mutating func below(_ count: Int) -> Int {
        min(count - 1, Int(uniform() * Double(count)))
    }

    /// True with probability `probability`.
    @inline(__always) public mutating func bernoulli(_ probability: Double) -> Bool {
        uniform() < probability
    }

    /// A standard normal draw (Box-Muller, one value per call).
    @inline(__always) public mutating func normal() -> Double {
        let u1 = 1.0 - uniform()
        let u2 = uniform()
        return (-2.0 * Foundation.log(u1)).squareRoot() * Foundation.cos(2.0 * Double.pi * u2)
    }
}

import Foundation

/// SplitMix64 (Steele, Lea and Flood 2014): a 64-bit state advanced by the golden-ratio
/// increment 0x9E3779B97F4A7C15 and finalised by two xor-shift-multiply rounds. Small,
/// fast and deterministic for a seed on every platform: it drives the batch shuffles and
/// negative sampling, the initial weights, the seeding of ``Xoshiro256StarStar`` and the
/// tests' random inputs. As a `RandomNumberGenerator` it also serves the standard
/// library's `random(in:using:)`, whose algorithms are not promised to stay the same, so
/// Braid's own streams use the draws below.
public struct SplitMix64: RandomNumberGenerator {
    /// The current state; the next output is a function of `state + 0x9E3779B97F4A7C15`.
    public private(set) var state: UInt64

    /// Starts the sequence at `seed`.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform integer in `0 ..< bound` (Lemire's multiply-shift with rejection, no modulo bias).
    public mutating func next(below bound: UInt64) -> UInt64 {
        var product = next().multipliedFullWidth(by: bound)
        if product.low < bound {
            let threshold = (0 &- bound) % bound
            while product.low < threshold { product = next().multipliedFullWidth(by: bound) }
        }
        return product.high
    }

    /// A uniform double in [0, 1) with 53 random bits: (next() >> 11) * 2^-53.
    public mutating func uniform() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// A standard normal draw (Box-Muller, one value per call, two outputs used):
    /// sqrt(-2 ln u1) * cos(2 pi u2) with u1 = ((next() >> 11) + 0.5) * 2^-53 in (0, 1)
    /// and u2 = uniform().
    public mutating func normal() -> Double {
        let u1 = (Double(next() >> 11) + 0.5) * 0x1p-53
        let u2 = uniform()
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
    }
}

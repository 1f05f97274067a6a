import Random

/// The tests' seeded source of random inputs: the shared ``SplitMix64`` with the draws
/// tests use, so every test input is reproducible.
public struct TestRandom: RandomNumberGenerator {
    private var generator: SplitMix64

    public init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 { generator.next() }

    /// Uniform in [0, 1).
    public mutating func uniform() -> Double { generator.uniform() }

    /// `count` floats uniform in `range`.
    public mutating func floats(_ count: Int, in range: ClosedRange<Float> = -1...1) -> [Float] {
        (0..<count).map { _ in range.lowerBound + Float(uniform()) * (range.upperBound - range.lowerBound) }
    }

    /// An integer in 0..<bound: next() % bound (slightly biased, unlike `SplitMix64.next(below:)`;
    /// the test inputs were drawn this way).
    public mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
}

import Kernels
import Testing
import TestSupport

// Shorthands: kernels take pointers, tests hold arrays.

extension Array where Element == Float {
    var doubles: [Double] { map(Double.init) }
}

/// Fresh random Float inputs, seeded by the test.
func randomFloats(_ count: Int, seed: UInt64, in range: ClosedRange<Float> = -1...1) -> [Float] {
    var rng = TestRandom(seed: seed)
    return rng.floats(count, in: range)
}

/// Calls `body` with a mutable pointer to a copy of `x` and returns the result.
func mutating(_ x: [Float], _ body: (UnsafeMutablePointer<Float>) -> Void) -> [Float] {
    var y = x
    if y.isEmpty {  // an empty array may have no base address; kernels must not touch it anyway
        let p = UnsafeMutablePointer<Float>.allocate(capacity: 1)
        defer { p.deallocate() }
        body(p)
        return y
    }
    y.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
    return y
}

/// Exact bitwise equality (determinism checks: NaN-safe, -0 distinct from 0).
func bitwiseEqual(_ a: [Float], _ b: [Float]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
}

/// Expects bitwise-identical arrays; on failure reports how many entries differ
/// and by how much (never the arrays themselves).
func expectIdentical(_ a: [Float], _ b: [Float], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    if bitwiseEqual(a, b) { return }
    let differing = zip(a, b).filter { $0.bitPattern != $1.bitPattern }.count
    let maxDiff = zip(a, b).map { abs(Double($0) - Double($1)) }.max() ?? 0
    Issue.record("\(what): \(differing) of \(a.count) entries differ (max |diff| \(maxDiff)), counts \(a.count) vs \(b.count)",
                 sourceLocation: sourceLocation)
}

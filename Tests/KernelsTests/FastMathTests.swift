import Foundation
import Kernels
import Testing
import TestSupport

// Vectorised helpers against their naive twins.

@Test(arguments: [1, 3, 7, 8, 9, 16, 17, 64, 65]) func softmaxRowMatchesNaive(_ n: Int) {
    let x = randomFloats(3 * n, seed: 31, in: -30...30)
    var p = x
    p.withUnsafeMutableBufferPointer { b in for r in 0..<3 { softmaxRow(b.baseAddress! + r * n, n: n) } }
    #expect(relativeError(p, naiveSoftmax(x.doubles, rows: 3, n: n)) < 1e-6)
}

@Test func simdMinMaxAndExp() {
    let a = SIMD8<Float>(-3, 0, 2, -0.5, 7, -100, 100, 1), b = SIMD8<Float>(1, -1, 2, 0.5, -7, 3, 99, 1)
    for i in 0..<8 {
        #expect(simdMax(a, b)[i] == Swift.max(a[i], b[i]))
        #expect(simdMin(a, b)[i] == Swift.min(a[i], b[i]))
    }
    // exp clamps to the finite range and stays within 2e-7 relative of libm inside it
    let x = SIMD8<Float>(-200, -87, -10, -1e-3, 0, 1, 50, 200)
    let e = simdExp(x), below = simdExpBelowOverflow(x)
    for i in 0..<8 {
        let ref = Foundation.exp(Double(Swift.min(Swift.max(x[i], -87.3), 88.3)))
        #expect(e[i].isFinite && abs(Double(e[i]) - ref) <= 2e-7 * ref)
        if x[i] <= 88.3 { #expect(below[i] == e[i]) }
    }
}

/// The exp polynomial over its whole range, every 1e-4 (1.76 M points): within 2e-7 relative
/// of libm (the degree-6 Taylor polynomial it replaced: 2.3e-7; this one measured 1.8e-7).
@Test func simdExpWithin2e7AcrossItsRange() {
    var worst = 0.0, x = Float(-87.3)
    while x <= 88.3 {
        let v = SIMD8<Float>(x, x + 1e-5, x + 2e-5, x + 3e-5, x + 4e-5, x + 5e-5, x + 6e-5, x + 7e-5)
        let e = simdExp(v)
        for i in 0..<8 where v[i] <= 88.3 {
            let ref = Foundation.exp(Double(v[i]))
            worst = Swift.max(worst, abs(Double(e[i]) - ref) / ref)
        }
        x += 1e-4
    }
    print("simdExp: max relative error \(worst) over [-87.3, 88.3]")
    #expect(worst <= 2e-7)
}

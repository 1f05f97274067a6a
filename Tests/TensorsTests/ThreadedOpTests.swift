import Foundation
import Kernels
import Tensors
import Testing
import TestSupport

// Ops that split their work over threads (layer norm above 4096 rows, gelu above
// 32768 elements): with 2 threads the output and every gradient match the
// 1-thread run (layer norm's weight/bias gradients are summed per chunk, so only
// to rounding) and a second 2-thread run bit for bit. Shapes too big for finite
// differences; the 1-thread path is checked against them in OpTests.

func relative(_ a: [Float]?, _ b: [Float]?) -> Double {
    guard let a, let b else { return .infinity }
    return relativeError(a, b.map(Double.init))
}

@Test func layerNormSplitOverThreadsMatchesOneThread() {
    let rows = 9000, n = 8
    var rng = TestRandom(seed: 3)
    let inputs = [rng.floats(rows * n, in: -2...2), rng.floats(n), rng.floats(n)]
    let r = rng.floats(rows * n)
    let run = { runOp(shapes: [[rows, n], [n], [n]], inputs: inputs, projection: r) { layerNorm($0[0], weight: $0[1], bias: $0[2]) } }
    let one = withThreads(1) { run() }
    let (two, twoAgain) = withThreads(2) { (run(), run()) }
    #expect(relative(two.output, one.output) == 0)
    for i in 0..<3 {
        #expect(relative(two.gradients[i], one.gradients[i]) < 1e-5, "gradient \(i)")
        #expect(relative(two.gradients[i], twoAgain.gradients[i]) == 0, "gradient \(i) repeated")
    }
}

@Test func geluSplitOverThreadsMatchesOneThread() {
    let count = 70_000
    var rng = TestRandom(seed: 4)
    let inputs = [rng.floats(count, in: -4...4)]
    let r = rng.floats(count)
    let run = { runOp(shapes: [[count]], inputs: inputs, projection: r) { gelu($0[0]) } }
    let one = withThreads(1) { run() }
    let two = withThreads(2) { run() }
    #expect(relative(two.output, one.output) == 0)
    #expect(relative(two.gradients[0], one.gradients[0]) == 0)
    // and elementwise against the Float64 derivative (no O(n^2) finite differences needed)
    let x = inputs[0].map(Double.init)
    let expected = (0..<count).map { i -> Double in
        let h = 1e-6
        return Double(r[i]) * (naiveGelu(x[i] + h) - naiveGelu(x[i] - h)) / (2 * h)
    }
    #expect(relativeError(two.gradients[0] ?? [], expected) < 1e-5)
}

import Optim
import Tensors
import TestSupport
import Testing

/// Sparse Adagrad's vectorised, threaded update writes the scalar rule's bits
/// (G[r] += g^2; theta[r] -= lr g / (sqrt(G[r]) + eps)) on the touched rows only, for row
/// widths with and without a tail of fewer than eight lanes, over several steps.
@Test(arguments: [16, 21, 5]) func sparseAdagradMatchesTheScalarRule(_ dim: Int) {
    var rng = TestRandom(seed: UInt64(dim))
    let rows = 300
    let start = rng.floats(rows * dim)
    let table = EmbeddingTable(name: "t", weight: Tensor(shape: [rows, dim], values: start))
    let optimizer = SparseAdagrad(rows: rows, dim: dim, learningRate: 0.05)
    var weights = start, accumulator = [Float](repeating: 0, count: rows * dim)
    for step in 0..<3 {
        table.sparseGrad.reset()
        let touched = (0..<rows).filter { ($0 * 7 + step) % 3 != 0 }.map(Int32.init)
        for row in touched.reversed() {   // first-touch order differs from row order
            let g = rng.floats(dim)
            g.withUnsafeBufferPointer { table.sparseGrad.add(row: row, $0.baseAddress!) }
            for j in 0..<dim {
                let i = Int(row) * dim + j
                accumulator[i] += g[j] * g[j]
                weights[i] -= 0.05 * g[j] / (accumulator[i].squareRoot() + 1e-10)
            }
        }
        optimizer.update(table)
        #expect(table.weight.values == weights)
        #expect(Array(UnsafeBufferPointer(start: optimizer.accumulator.pointer, count: rows * dim)) == accumulator)
    }
}

import Foundation
import Kernels
import Tensors
import Testing
import TestSupport

// One line per op and case (tinygrad's helper_test_op): shapes, the op, a Float64
// reference; `checkOp` compares the forward and every input's gradient against
// central differences of the reference.

// MARK: dense algebra

@Test func linearOp() {
    checkOp(shapes: [[5, 7], [3, 7], [3]], forward: { linear($0[0], weight: $0[1], bias: $0[2]) },
            reference: { linearReference($0[0], $0[1], $0[2], nIn: 7, nOut: 3) })
    checkOp(shapes: [[2, 4, 17], [33, 17]], forward: { linear($0[0], weight: $0[1], bias: nil) },
            reference: { linearReference($0[0], $0[1], nil, nIn: 17, nOut: 33) })
    // with the ReLU fused, biased and not
    checkOp(shapes: [[6, 7], [5, 7], [5]], forward: { linear($0[0], weight: $0[1], bias: $0[2], relu: true) },
            reference: { linearReference($0[0], $0[1], $0[2], nIn: 7, nOut: 5).map { max($0, 0) } })
    checkOp(shapes: [[4, 3], [6, 3]], forward: { linear($0[0], weight: $0[1], bias: nil, relu: true) },
            reference: { linearReference($0[0], $0[1], nil, nIn: 3, nOut: 6).map { max($0, 0) } })
    checkOp(shapes: [[1, 1], [1, 1], [1]], forward: { linear($0[0], weight: $0[1], bias: $0[2]) },
            reference: { linearReference($0[0], $0[1], $0[2], nIn: 1, nOut: 1) })
    // only the weight differentiated (a frozen input)
    checkOp(shapes: [[4, 3], [2, 3], [2]], wrt: [1], forward: { linear($0[0], weight: $0[1], bias: $0[2]) },
            reference: { linearReference($0[0], $0[1], $0[2], nIn: 3, nOut: 2) })
}

/// The backward on the nonzero rows of dy only (`linearBackward`'s sparse path, taken when at
/// most 7/8 of 80 rows have a gradient): dy = r * mask with zero rows in a constant mask.
/// Twice on the same input with different masks, so x's gradient is written by one backward
/// and added to by the other; and with only the weight differentiated.
@Test func linearOpOnRowSparseGradients() {
    let rows = 80, nIn = 7, nOut = 9
    func mask(keeping keep: (Int) -> Bool, width: Int) -> [Float] {
        (0..<rows).flatMap { r in [Float](repeating: keep(r) ? 1 : 0, count: width) }
    }
    var rng = TestRandom(seed: 7)
    let x = rng.floats(rows * nIn, in: -1...1), w = rng.floats(nOut * nIn, in: -1...1), b = rng.floats(nOut, in: -1...1)
    let w2 = rng.floats(nOut * nIn, in: -1...1)
    let m1 = mask(keeping: { $0 % 3 == 0 || $0 == 79 }, width: nOut), m2 = mask(keeping: { $0 % 5 == 1 }, width: nOut)
    let shapes = [[rows, nIn], [nOut, nIn], [nOut], [rows, nOut], [nOut, nIn], [rows, nOut]]
    func reference(_ v: [[Double]]) -> [Double] {
        let y1 = linearReference(v[0], v[1], v[2], nIn: nIn, nOut: nOut), y2 = linearReference(v[0], v[4], nil, nIn: nIn, nOut: nOut)
        return (0..<(rows * nOut)).map { y1[$0] * v[3][$0] + y2[$0] * v[5][$0] }
    }
    checkOp(shapes: shapes, inputs: [x, w, b, m1, w2, m2], wrt: [0, 1, 2, 4], forward: { t in
        linear(t[0], weight: t[1], bias: t[2]) * t[3] + linear(t[0], weight: t[4], bias: nil) * t[5]
    }, reference: reference)
    checkOp(shapes: [[rows, nIn], [nOut, nIn], [nOut], [rows, nOut]], inputs: [x, w, b, m1], wrt: [1, 2], forward: { t in
        linear(t[0], weight: t[1], bias: t[2]) * t[3]
    }, reference: { v in zip(linearReference(v[0], v[1], v[2], nIn: nIn, nOut: nOut), v[3]).map(*) })
}

/// A linear layer added to a residual stream in one op: every input's gradient; a residual
/// read again afterwards (its gradient already holds a term when the op's rule runs, so dy
/// is added) that is also the linear's input; and the same bits as the separate add, with
/// a leaf residual and with an intermediate one (which takes over dy's buffer).
@Test func linearWithResidualOp() {
    checkOp(shapes: [[5, 7], [3, 7], [3], [5, 3]], forward: { linear($0[0], weight: $0[1], bias: $0[2], residual: $0[3]) },
            reference: { v in zip(linearReference(v[0], v[1], v[2], nIn: 7, nOut: 3), v[3]).map(+) })
    checkOp(shapes: [[2, 4, 6], [5, 6], [2, 4, 5]], forward: { linear($0[0], weight: $0[1], bias: nil, residual: $0[2]) },
            reference: { v in zip(linearReference(v[0], v[1], nil, nIn: 6, nOut: 5), v[2]).map(+) })
    // the residual is an intermediate read again later, and the linear's input is the residual
    checkOp(shapes: [[4, 3], [3, 3], [3]], forward: { t in
        let r = t[0] * 2
        return linear(r, weight: t[1], bias: t[2], residual: r) * r
    }, reference: { v in
        let r = v[0].map { 2 * $0 }
        return zip(zip(linearReference(r, v[1], v[2], nIn: 3, nOut: 3), r).map(+), r).map(*)
    })
    // the same bits as the separate add, the residual an input and an intermediate
    var rng = TestRandom(seed: 41)
    let shapes = [[6, 4], [5, 4], [5], [6, 5]], projection = rng.floats(30)
    let inputs = shapes.map { rng.floats($0.reduce(1, *), in: -1...1) }
    for scaled in [false, true] {
        func residual(_ t: [Tensor]) -> Tensor { scaled ? t[3] * 1.5 : t[3] }
        let fused = runOp(shapes: shapes, inputs: inputs, projection: projection) { t in
            linear(t[0], weight: t[1], bias: t[2], residual: residual(t))
        }
        let separate = runOp(shapes: shapes, inputs: inputs, projection: projection) { t in
            residual(t) + linear(t[0], weight: t[1], bias: t[2])
        }
        #expect(fused.output == separate.output)
        #expect(fused.gradients == separate.gradients)
    }
}

@Test func crossUpdateOp() {
    // x0 * (h W^T + b) + x with h [4, 3], W [5, 3]; then the first layer's form, x0 and x one tensor
    func reference(_ x0: [Double], _ x: [Double], _ h: [Double], _ w: [Double], _ b: [Double]) -> [Double] {
        let lin = linearReference(h, w, b, nIn: 3, nOut: 5)
        return (0..<20).map { x0[$0] * lin[$0] + x[$0] }
    }
    checkOp(shapes: [[4, 5], [4, 5], [4, 3], [5, 3], [5]], forward: { crossUpdate(x0: $0[0], x: $0[1], h: $0[2], weight: $0[3], bias: $0[4]) },
            reference: { reference($0[0], $0[1], $0[2], $0[3], $0[4]) })
    checkOp(shapes: [[4, 5], [4, 3], [5, 3], [5]], forward: { crossUpdate(x0: $0[0], x: $0[0], h: $0[1], weight: $0[2], bias: $0[3]) },
            reference: { reference($0[0], $0[0], $0[1], $0[2], $0[3]) })
}

@Test func matmulOp() {
    checkOp(shapes: [[3, 5], [5, 7]], forward: { matmul($0[0], $0[1]) }, reference: { naiveMatmul($0[0], $0[1], m: 3, n: 7, k: 5) })
    checkOp(shapes: [[2, 3, 4], [4, 1]], forward: { matmul($0[0], $0[1]) }, reference: { naiveMatmul($0[0], $0[1], m: 6, n: 1, k: 4) })
}

// MARK: broadcasting elementwise

@Test func addOp() {
    checkOp(shapes: [[3, 4], [3, 4]], forward: { $0[0] + $0[1] }, reference: { broadcast($0[0], [3, 4], $0[1], [3, 4], +) })
    checkOp(shapes: [[3, 5, 4], [5, 4]], forward: { $0[0] + $0[1] }, reference: { broadcast($0[0], [3, 5, 4], $0[1], [5, 4], +) })
    checkOp(shapes: [[2, 5, 4], [2, 1, 4]], forward: { $0[0] + $0[1] }, reference: { broadcast($0[0], [2, 5, 4], $0[1], [2, 1, 4], +) })
    checkOp(shapes: [[2, 1, 4], [2, 5, 4]], forward: { $0[0] + $0[1] }, reference: { broadcast($0[0], [2, 1, 4], $0[1], [2, 5, 4], +) })
    checkOp(shapes: [[4, 1], [1, 3]], forward: { $0[0] + $0[1] }, reference: { broadcast($0[0], [4, 1], $0[1], [1, 3], +) })
    checkOp(shapes: [[3, 4, 1], [4, 5]], forward: { $0[0] + $0[1] }, reference: { broadcast($0[0], [3, 4, 1], $0[1], [4, 5], +) })
    checkOp(shapes: [[1], [3, 2]], forward: { $0[0] + $0[1] }, reference: { broadcast($0[0], [1], $0[1], [3, 2], +) })
    checkOp(shapes: [[7], [7]], forward: { $0[0] + $0[1] }, reference: { broadcast($0[0], [7], $0[1], [7], +) })
}

@Test func mulOp() {
    checkOp(shapes: [[3, 4], [3, 4]], forward: { $0[0] * $0[1] }, reference: { broadcast($0[0], [3, 4], $0[1], [3, 4], *) })
    checkOp(shapes: [[4], [3, 4]], forward: { $0[0] * $0[1] }, reference: { broadcast($0[0], [4], $0[1], [3, 4], *) })
    checkOp(shapes: [[3, 5, 4], [5, 4]], forward: { $0[0] * $0[1] }, reference: { broadcast($0[0], [3, 5, 4], $0[1], [5, 4], *) })
    checkOp(shapes: [[2, 5, 4], [2, 1, 4]], forward: { $0[0] * $0[1] }, reference: { broadcast($0[0], [2, 5, 4], $0[1], [2, 1, 4], *) })
    checkOp(shapes: [[4, 1], [1, 3]], forward: { $0[0] * $0[1] }, reference: { broadcast($0[0], [4, 1], $0[1], [1, 3], *) })
    checkOp(shapes: [[2, 3, 1], [1, 3, 4]], forward: { $0[0] * $0[1] }, reference: { broadcast($0[0], [2, 3, 1], $0[1], [1, 3, 4], *) })
    // the same tensor on both sides: gradients of both uses add up
    checkOp(shapes: [[3, 4]], forward: { $0[0] * $0[0] }, reference: { $0[0].map { $0 * $0 } })
}

/// Intermediate tensors get their gradient buffers during the backward pass: a same-shape
/// add's first operand takes over the output's buffer (`adoptGradient`), the second gets a
/// fresh one written, not added to zeros (`gradForFullWrite`), and a reshape adopts too; later
/// uses of the same intermediate add into what it took. out = reshape(u + v) + reshape(u)
/// with u = 2 a, v = a b: 4 a + a b, whatever order the buffers were handed out in.
@Test func intermediateGradientsAddUpAcrossAdoptedBuffers() {
    checkOp(shapes: [[3, 4], [3, 4]], forward: { t in
        let u = t[0] * 2, v = t[1] * t[0]
        return reshape(u + v, [4, 3]) + reshape(u, [4, 3])
    }, reference: { x in zip(x[0], x[1]).map { 4 * $0 + $0 * $1 } })
    // both operands of an add are intermediates, and one intermediate is added to itself
    checkOp(shapes: [[2, 5]], forward: { t in
        let u = t[0] * t[0], v = t[0] * 3
        return (u + v) + (v + v)
    }, reference: { x in x[0].map { $0 * $0 + 9 * $0 } })
}

@Test func scalarMulOp() {
    checkOp(shapes: [[3, 7]], forward: { $0[0] * Float(-2.5) }, reference: { $0[0].map { $0 * -2.5 } })
}

@Test func activationOps() {
    checkOp(shapes: [[4, 9]], forward: { relu($0[0]) }, reference: { $0[0].map { max($0, 0) } })
    checkOp(shapes: [[4, 9]], range: -4...4, forward: { gelu($0[0]) }, reference: { $0[0].map(naiveGelu) })
    checkOp(shapes: [[4, 9]], range: -6...6, forward: { sigmoid($0[0]) }, reference: { $0[0].map(naiveSigmoid) })
}

// MARK: normalisation and softmax

@Test func layerNormOp() {
    let ln = { (x: [Double], w: [Double], b: [Double], n: Int) in naiveLayerNorm(x, weight: w, bias: b, rows: x.count / n, n: n).out }
    checkOp(shapes: [[5, 8], [8], [8]], range: -2...2, forward: { layerNorm($0[0], weight: $0[1], bias: $0[2]) },
            reference: { ln($0[0], $0[1], $0[2], 8) })
    checkOp(shapes: [[2, 3, 17], [17], [17]], range: -2...2, forward: { layerNorm($0[0], weight: $0[1], bias: $0[2]) },
            reference: { ln($0[0], $0[1], $0[2], 17) })
    checkOp(shapes: [[3, 1], [1], [1]], forward: { layerNorm($0[0], weight: $0[1], bias: $0[2]) },
            reference: { ln($0[0], $0[1], $0[2], 1) })
    // only the input differentiated (frozen weight and bias)
    checkOp(shapes: [[4, 6], [6], [6]], wrt: [0], forward: { layerNorm($0[0], weight: $0[1], bias: $0[2]) },
            reference: { ln($0[0], $0[1], $0[2], 6) })
}

@Test func softmaxOp() {
    checkOp(shapes: [[3, 7]], range: -3...3, forward: { softmax($0[0]) }, reference: { naiveSoftmax($0[0], rows: 3, n: 7) })
    // masked: row 1 fully masked (all 0, zero gradient)
    let mask: [UInt8] = [1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1]
    checkOp(shapes: [[3, 5]], range: -3...3, forward: { softmax($0[0], mask: mask) },
            reference: { naiveSoftmax($0[0], mask: mask, rows: 3, n: 5) })
}

// MARK: shape ops

@Test func shapeOps() {
    checkOp(shapes: [[2, 6]], forward: { reshape($0[0], [3, 2, 2]) }, reference: { $0[0] })
    // a reshaped tensor used twice: both gradient paths add up
    checkOp(shapes: [[2, 3]], forward: { reshape($0[0], [6]) + reshape($0[0], [6]) * Float(3) }, reference: { $0[0].map { 4 * $0 } })
    checkOp(shapes: [[2, 3], [2, 1], [2, 4]], forward: { concat($0) }, reference: { concatReference($0, widths: [3, 1, 4]) })
    checkOp(shapes: [[3, 7]], forward: { sliceColumns($0[0], offset: 2, width: 4) }, reference: { x in
        (0..<3).flatMap { r in Array(x[0][(r * 7 + 2)..<(r * 7 + 6)]) } })
    let index: [Int32] = [2, 0, 2, 3, 2]
    checkOp(shapes: [[4, 2, 3]], forward: { gatherRows($0[0], index) }, reference: { x in
        index.flatMap { i in Array(x[0][(Int(i) * 6)..<(Int(i) * 6 + 6)]) } })
}

// MARK: attention

/// lengths 0, 1, L and in between in one batch
@Test(arguments: [1, 2]) func selfAttentionOp(_ heads: Int) {
    let lengths: [Int32] = [3, 0, 5, 1], L = 5, d = 4
    checkOp(shapes: [[4, L, 3 * d]], range: -2...2, forward: { selfAttention($0[0], lengths: lengths, heads: heads) },
            reference: { naiveAttention($0[0], lengths: lengths, sequences: 4, length: L, dim: d, heads: heads) })
}

@Test(arguments: [1, 2]) func appendAttentionOp(_ heads: Int) {
    let lengths: [Int32] = [2, 0, 4], L = 4, d = 4
    // one candidate per user
    checkOp(shapes: [[3, 3 * d], [3, L, 3 * d]], range: -2...2,
            forward: { appendAttention($0[0], user: $0[1], lengths: lengths, userIndex: nil, heads: heads) },
            reference: { naiveAppendAttention($0[0], user: $0[1], lengths: lengths, userIndex: nil, candidates: 3, length: L, dim: d, heads: heads) })
    // several candidates per user
    let users: [Int32] = [2, 2, 0, 1, 2]
    checkOp(shapes: [[5, 3 * d], [3, L, 3 * d]], range: -2...2,
            forward: { appendAttention($0[0], user: $0[1], lengths: lengths, userIndex: users, heads: heads) },
            reference: { naiveAppendAttention($0[0], user: $0[1], lengths: lengths, userIndex: users, candidates: 5, length: L, dim: d, heads: heads) })
    // user side frozen, and candidate side frozen
    checkOp(shapes: [[5, 3 * d], [3, L, 3 * d]], range: -2...2, wrt: [0],
            forward: { appendAttention($0[0], user: $0[1], lengths: lengths, userIndex: users, heads: heads) },
            reference: { naiveAppendAttention($0[0], user: $0[1], lengths: lengths, userIndex: users, candidates: 5, length: L, dim: d, heads: heads) })
    checkOp(shapes: [[5, 3 * d], [3, L, 3 * d]], range: -2...2, wrt: [1],
            forward: { appendAttention($0[0], user: $0[1], lengths: lengths, userIndex: users, heads: heads) },
            reference: { naiveAppendAttention($0[0], user: $0[1], lengths: lengths, userIndex: users, candidates: 5, length: L, dim: d, heads: heads) })
}

// MARK: pooling and mixing

@Test func maxPoolOp() {
    let lengths: [Int32] = [3, 0, 1, 4], L = 4, d = 5
    checkOp(shapes: [[4, L, d]], forward: { maxPool($0[0], lengths: lengths) }, reference: { x in
        var y = [Double](repeating: 0, count: 4 * d)
        for b in 0..<4 where lengths[b] > 0 {
            for j in 0..<d { y[b * d + j] = (0..<Int(lengths[b])).map { x[0][(b * L + $0) * d + j] }.max()! }
        }
        return y
    })
}

@Test func batchedDotOp() {
    checkOp(shapes: [[3, 4, 5], [3, 5]], forward: { batchedDot($0[0], $0[1]) }, reference: { x in
        var s = [Double](repeating: 0, count: 12)
        for b in 0..<3 { for l in 0..<4 { for j in 0..<5 { s[b * 4 + l] += x[0][(b * 4 + l) * 5 + j] * x[1][b * 5 + j] } } }
        return s
    })
}

@Test func weightedSumOp() {
    checkOp(shapes: [[3, 4], [3, 4, 6]], forward: { weightedSum($0[0], $0[1]) }, reference: { x in
        var y = [Double](repeating: 0, count: 18)
        for b in 0..<3 { for k in 0..<4 { for j in 0..<6 { y[b * 6 + j] += x[0][b * 4 + k] * x[1][(b * 4 + k) * 6 + j] } } }
        return y
    })
}

@Test func mixtureOp() {
    checkOp(shapes: [[3, 2], [3, 5], [3, 5]], forward: { mixture($0[0], [$0[1], $0[2]]) }, reference: { x in
        var y = [Double](repeating: 0, count: 15)
        for i in 0..<15 {
            let b = i / 5
            y[i] = x[0][b * 2] * x[1][i] + x[0][b * 2 + 1] * x[2][i]
        }
        return y
    })
}

@Test func maskPositionsOp() {
    let lengths: [Int32] = [2, 0, 3], L = 3, d = 4
    checkOp(shapes: [[3, L, d]], forward: { maskPositions($0[0], lengths: lengths) }, reference: { x in
        (0..<(3 * L * d)).map { i in (i / d) % L < Int(lengths[i / (L * d)]) ? x[0][i] : 0 } })
}

// MARK: embeddings (sparse gradients, checked against a dense finite difference of the table)

/// The table's SparseRows gradient as a dense [rows, dim] array.
func densify(_ table: EmbeddingTable) -> [Float] {
    var dense = [Float](repeating: 0, count: table.rows * table.dim)
    let g = table.sparseGrad
    for (i, row) in g.rows.enumerated() {
        for j in 0..<g.dim { dense[Int(row) * g.dim + j] += g.values[i * g.dim + j] }
    }
    return dense
}

/// Runs checkOp on an embedding op whose table is input 0 (gradient read from SparseRows).
func checkEmbedding(rows: Int, dim: Int, _ forward: @escaping (EmbeddingTable) -> Tensor, reference: @escaping ([Double]) -> [Double],
                    sourceLocation: SourceLocation = #_sourceLocation) {
    var table: EmbeddingTable?
    checkOp(shapes: [[rows, dim]], forward: { t in
        let e = EmbeddingTable(name: "t", weight: t[0])
        table = e
        return forward(e)
    }, reference: { reference($0[0]) }, gradients: { _ in [densify(table!)] }, sourceLocation: sourceLocation)
}

@Test func embeddingBagOp() {
    let rows = 9, dim = 3
    // single ids (one per example, a repeated id)
    let single: [Int32] = [4, 0, 4, 8]
    checkEmbedding(rows: rows, dim: dim, { t in embeddingBag([EmbeddingLookup(table: t, ids: single)], count: 4) },
                   reference: { naiveEmbeddingBag(table: $0, dim: dim, ids: single, offsets: nil, mean: false) })
    // bags: multi, empty (row 0), single, multi with a repeat
    let ids: [Int32] = [1, 2, 3, 5, 7, 5, 5], offsets: [Int32] = [0, 3, 3, 4, 7]
    for mean in [false, true] {
        checkEmbedding(rows: rows, dim: dim, { t in embeddingBag([EmbeddingLookup(table: t, ids: ids, offsets: offsets, mean: mean)], count: 4) },
                       reference: { naiveEmbeddingBag(table: $0, dim: dim, ids: ids, offsets: offsets, mean: mean) })
    }
    // two lookups of the same table in one fused call -> [B, 2, D]
    checkEmbedding(rows: rows, dim: dim, { t in
        embeddingBag([EmbeddingLookup(table: t, ids: single), EmbeddingLookup(table: t, ids: ids, offsets: offsets, mean: true)], count: 4)
    }, reference: { w in
        let a = naiveEmbeddingBag(table: w, dim: dim, ids: single, offsets: nil, mean: false)
        let b = naiveEmbeddingBag(table: w, dim: dim, ids: ids, offsets: offsets, mean: true)
        return concatReference([a, b], widths: [dim, dim])
    })
}

@Test func embeddingOp() {
    let ids: [Int32] = [3, 3, 0, 6, 1, 2]
    checkEmbedding(rows: 7, dim: 4, { t in embedding(t, ids: ids, shape: [2, 3, 4]) },
                   reference: { naiveEmbeddingBag(table: $0, dim: 4, ids: ids, offsets: nil, mean: false) })
}

// MARK: loss

@Test func binaryCrossEntropyOp() {
    let targets: [Float] = [1, 0, 1, 0, 1, 0, 1]
    let weights: [Float] = [1, 0, 2, 0.5, 0, 1, 1]  // zero weights: missing labels
    checkOp(shapes: [[7]], range: -5...5, forward: { binaryCrossEntropy(logits: $0[0], targets: targets, weights: weights, divisor: 3) },
            reference: { [naiveBinaryCrossEntropy(logits: $0[0], targets: targets.map(Double.init), weights: weights.map(Double.init)).loss / 3] })
    // a [B, 1] logit column, all weights zero: loss 0, gradient 0
    checkOp(shapes: [[4, 1]], forward: { binaryCrossEntropy(logits: $0[0], targets: [1, 0, 1, 0], weights: [0, 0, 0, 0], divisor: 1) },
            reference: { _ in [0] })
}

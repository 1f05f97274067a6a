import Foundation
import Kernels
import Testing
import TestSupport

// Elementwise, reduction, softmax, layer-norm, loss, gather and layout kernels
// against Float64 twins on awkward sizes; backward kernels against central
// differences of the Float64 forward.

let counts = [0, 1, 3, 7, 17, 33, 65, 1001]

@Test(arguments: counts) func binaryElementwise(_ n: Int) {
    let a = randomFloats(n, seed: 1), b = randomFloats(n, seed: 2), y0 = randomFloats(n, seed: 3)
    let ad = a.doubles, bd = b.doubles, yd = y0.doubles
    func ref(_ f: (Int) -> Double) -> [Double] { (0..<n).map(f) }
    #expect(relativeError(mutating(y0) { add($0, a, b, count: n) }, ref { ad[$0] + bd[$0] }) < 1e-7)
    #expect(relativeError(mutating(y0) { mul($0, a, b, count: n) }, ref { ad[$0] * bd[$0] }) < 1e-7)
    #expect(relativeError(mutating(y0) { accumulate($0, a, count: n) }, ref { yd[$0] + ad[$0] }) < 1e-7)
    #expect(relativeError(mutating(y0) { axpy($0, a, alpha: -1.5, count: n) }, ref { yd[$0] - 1.5 * ad[$0] }) < 1e-7)
    #expect(relativeError(mutating(y0) { accumulateProduct($0, a, b, count: n) }, ref { yd[$0] + ad[$0] * bd[$0] }) < 1e-7)
    #expect(relativeError(mutating(y0) { multiplyAdd($0, a, b, y0, count: n) }, ref { ad[$0] * bd[$0] + yd[$0] }) < 1e-7)
    #expect(relativeError(mutating(y0) { multiplyAdd($0, a, $0, b, count: n) }, ref { ad[$0] * yd[$0] + bd[$0] }) < 1e-7)  // in place
    #expect(relativeError(mutating(y0) { reluForward($0, $0, count: n) }, ref { max(yd[$0], 0) }) == 0)                     // in place
    #expect(relativeError(mutating(y0) { scale($0, by: 0.3, count: n) }, ref { yd[$0] * Double(Float(0.3)) }) < 1e-7)
}

@Test(arguments: [(1, 1), (3, 7), (17, 33), (65, 1), (0, 5)]) func addRowVectorMatchesNaive(_ shape: (Int, Int)) {
    let (rows, n) = shape
    let x = randomFloats(rows * n, seed: 4), row = randomFloats(n, seed: 5)
    let out = mutating([Float](repeating: .nan, count: rows * n)) { addRowVector($0, x, row, rows: rows, n: n) }
    #expect(relativeError(out, (0..<rows * n).map { Double(x[$0]) + Double(row[$0 % max(n, 1)]) }) < 1e-7)
}

/// Checks an activation's forward against `f` and its backward (dx += dout f'(x),
/// given the input or the forward output as the kernel expects) against central differences of `f`.
func checkActivation(
    _ n: Int, f: (Double) -> Double,
    forward: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, Int) -> Void,
    backward: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, Int) -> Void,
    tolerance: Double = 1e-6, range: ClosedRange<Float> = -4...4, sourceLocation: SourceLocation = #_sourceLocation
) {
    let x = randomFloats(n, seed: 6, in: range), dout = randomFloats(n, seed: 7), dx0 = randomFloats(n, seed: 8)
    let y = mutating([Float](repeating: .nan, count: n)) { forward($0, x, n) }
    #expect(relativeError(y, x.map { f(Double($0)) }) < tolerance, sourceLocation: sourceLocation)
    // backward accumulates into dx: dx0 + dout * f'(x)
    let dx = mutating(dx0) { backward($0, dout, x, y, n) }
    let derivative = x.map { v -> Double in let h = 1e-6, d = Double(v); return (f(d + h) - f(d - h)) / (2 * h) }
    let expected = (0..<n).map { Double(dx0[$0]) + Double(dout[$0]) * derivative[$0] }
    #expect(relativeError(dx, expected) < 1e-5, sourceLocation: sourceLocation)
}

@Test(arguments: counts) func activations(_ n: Int) {
    checkActivation(n, f: { max($0, 0) }, forward: { reluForward($0, $1, count: $2) },
                    backward: { dx, dout, _, y, n in reluBackward(dx, dout, y, count: n) })
    checkActivation(n, f: naiveGelu, forward: { geluForward($0, $1, count: $2) },
                    backward: { dx, dout, x, _, n in geluBackward(dx, dout, x, count: n) })
    checkActivation(n, f: naiveSigmoid, forward: { sigmoidForward($0, $1, count: $2) },
                    backward: { dx, dout, _, y, n in sigmoidBackward(dx, dout, y, count: n) })
    // sigmoid far in the tails: no overflow, no NaN
    checkActivation(n, f: naiveSigmoid, forward: { sigmoidForward($0, $1, count: $2) },
                    backward: { dx, dout, _, y, n in sigmoidBackward(dx, dout, y, count: n) }, range: -90...90)
}

/// geluBackward's overwrite mode (a gradient's first contribution) writes dout gelu'(x)
/// without reading dx: a NaN-filled dx gives the accumulating mode's result from zeros, bit for bit.
@Test(arguments: counts) func geluBackwardOverwriteIgnoresOldContents(_ n: Int) {
    let x = randomFloats(n, seed: 9, in: -4...4), dout = randomFloats(n, seed: 10)
    let added = mutating([Float](repeating: 0, count: n)) { geluBackward($0, dout, x, count: n) }
    let written = mutating([Float](repeating: .nan, count: n)) { geluBackward($0, dout, x, count: n, overwrite: true) }
    #expect(written.map(\.bitPattern) == added.map(\.bitPattern))
    // runs of zeros in dout (either sign; whole groups of eight skip gelu'): the same values
    var sparse = dout
    for i in 0..<n where (i / 8) % 3 != 1 { sparse[i] = i % 2 == 0 ? 0 : -0.0 }
    let addedSparse = mutating([Float](repeating: 0, count: n)) { geluBackward($0, sparse, x, count: n) }
    let writtenSparse = mutating([Float](repeating: .nan, count: n)) { geluBackward($0, sparse, x, count: n, overwrite: true) }
    #expect(writtenSparse == addedSparse)
    #expect(writtenSparse.allSatisfy { !$0.isNaN })
}

@Test func logSigmoidIsStable() {
    for x: Float in [-100, -20, -1, -1e-3, 0, 1e-3, 1, 20, 100] {
        let d = Double(x)
        let ref = d >= 0 ? -log1p(exp(-d)) : d - log1p(exp(d))
        #expect(abs(Double(logSigmoid(x)) - ref) <= 1e-6 * max(1, abs(ref)), "logSigmoid(\(x))")
    }
}

@Test(arguments: [(1, 1), (3, 7), (17, 33), (65, 3), (0, 4), (4, 0), (300, 96), (513, 70)]) func reductions(_ shape: (Int, Int)) {
    let (rows, n) = shape
    let x = randomFloats(rows * n, seed: 9), out0 = randomFloats(max(rows, n), seed: 10)
    var colSums = [Double](repeating: 0, count: n), rowSums = [Double](repeating: 0, count: rows)
    for r in 0..<rows { for j in 0..<n { colSums[j] += Double(x[r * n + j]); rowSums[r] += Double(x[r * n + j]) } }
    let acc = mutating(out0) { sumRows($0, x, rows: rows, n: n) }
    #expect(relativeError(Array(acc[0..<n]), (0..<n).map { Double(out0[$0]) + colSums[$0] }) < 1e-6)
    // the same bits as adding each column's rows in order
    var inOrder = Array(out0[0..<n])
    for r in 0..<rows { for j in 0..<n { inOrder[j] += x[r * n + j] } }
    #expect(Array(acc[0..<n]) == inOrder)
    let fresh = mutating(out0) { sumRows($0, x, rows: rows, n: n, accumulate: false) }
    #expect(relativeError(Array(fresh[0..<n]), colSums) < 1e-6)
    let rs = mutating(out0) { sumColumns($0, x, rows: rows, n: n) }
    #expect(relativeError(Array(rs[0..<rows]), rowSums) < 1e-6)
    let total = rowSums.reduce(0, +)
    #expect(abs(sum(x, count: x.count) - total) < 1e-9)
    #expect(abs(mean(x, count: x.count) - (x.isEmpty ? 0 : total / Double(x.count))) < 1e-9)
}

/// Column max and first arg-max over rows (SIMD8 columns and the scalar tail), with ties.
@Test(arguments: [(1, 8), (3, 7), (5, 16), (65, 32), (9, 33)]) func maxPoolRowsMatchesNaive(_ shape: (Int, Int)) {
    let (n, d) = shape
    var x = randomFloats(n * d, seed: 11)
    if n > 2 { for j in stride(from: 0, to: d, by: 3) { x[2 * d + j] = x[j] } }  // ties with row 0
    let (m, a) = naiveMaxPoolRows(x, n: n, d: d)
    var out = [Float](repeating: .nan, count: d), argmax = [Int32](repeating: -7, count: d)
    x.withUnsafeBufferPointer { x in maxPoolRows(&out, argmax: &argmax, x.baseAddress!, n: n, d: d) }
    #expect(out == m)
    #expect(argmax == a)
    var noArgmax = [Float](repeating: .nan, count: d)
    x.withUnsafeBufferPointer { x in maxPoolRows(&noArgmax, argmax: nil, x.baseAddress!, n: n, d: d) }
    #expect(noArgmax == m)
}

/// Bias rows: every row a copy of the vector (SIMD8 widths and the memmove fallback).
@Test(arguments: [(1, 8), (7, 32), (3, 7), (2, 1024), (0, 8)]) func fillRowsCopiesTheRow(_ shape: (Int, Int)) {
    let (rows, n) = shape
    let row = randomFloats(n, seed: 12)
    var out = [Float](repeating: .nan, count: rows * n)
    fillRows(&out, with: row, rows: rows, n: n)
    #expect(out == Array((0..<rows).map { _ in row }.joined()))
}

@Test(arguments: [(1, 1), (3, 7), (5, 17), (2, 65), (0, 3)]) func softmaxMatchesNaive(_ shape: (Int, Int)) {
    let (rows, n) = shape
    let x = randomFloats(rows * n, seed: 11, in: -8...8)
    let p = mutating([Float](repeating: .nan, count: rows * n)) { softmaxForward($0, x, mask: nil, rows: rows, n: n) }
    #expect(relativeError(p, naiveSoftmax(x.doubles, rows: rows, n: n)) < 1e-6)
    // a mask with one fully masked row (row 0) and random holes elsewhere
    var rng = TestRandom(seed: 12)
    var mask = (0..<rows * n).map { _ in UInt8(rng.below(3) == 0 ? 0 : 1) }
    for j in 0..<min(n, rows * n) { mask[j] = 0 }
    let pm = mask.withUnsafeBufferPointer { m in mutating([Float](repeating: .nan, count: rows * n)) { softmaxForward($0, x, mask: m.baseAddress, rows: rows, n: n) } }
    #expect(relativeError(pm, naiveSoftmax(x.doubles, mask: mask, rows: rows, n: n)) < 1e-6)
    // in place over strided rows: only the first n of each stride-(n + 2) row change
    let stride = n + 2
    let xs = randomFloats(rows * stride, seed: 13)
    let ps = mutating(xs) { softmaxForward($0, $0, mask: nil, rowsStrided: rows, n: n, stride: stride) }
    for r in 0..<rows {
        let row = Array(xs[(r * stride)..<(r * stride + n)]).doubles
        #expect(relativeError(Array(ps[(r * stride)..<(r * stride + n)]), naiveSoftmax(row, rows: 1, n: n)) < 1e-6)
        #expect(ps[r * stride + n] == xs[r * stride + n] && ps[r * stride + n + 1] == xs[r * stride + n + 1])
    }
    // backward: dx += p (dp - sum p dp) equals the derivative of sum(softmax(x) * dp)
    let dp = randomFloats(rows * n, seed: 14), dx0 = randomFloats(rows * n, seed: 15)
    let dx = mutating(dx0) { softmaxBackward($0, dp, p, rows: rows, n: n) }
    let fd = centralDifference(at: x.doubles) { dot(naiveSoftmax($0, rows: rows, n: n), dp.doubles) }
    #expect(relativeError(dx, zip(dx0, fd).map { Double($0) + $1 }) < 1e-5)
}

@Test(arguments: [(1, 1), (3, 7), (5, 17), (2, 64), (7, 65), (0, 8)]) func layerNormMatchesNaive(_ shape: (Int, Int)) {
    let (rows, n) = shape
    let x = randomFloats(rows * n, seed: 16, in: -3...3), w = randomFloats(n, seed: 17), b = randomFloats(n, seed: 18)
    var out = [Float](repeating: .nan, count: rows * n), mu = [Float](repeating: .nan, count: rows), rs = mu
    layerNormForward(&out, mean: &mu, rstd: &rs, x, weight: w, bias: b, rows: rows, n: n)
    let ref = naiveLayerNorm(x.doubles, weight: w.doubles, bias: b.doubles, rows: rows, n: n)
    #expect(relativeError(out, ref.out) < 1e-5)
    #expect(relativeError(mu, ref.mean) < 1e-6)
    #expect(relativeError(rs, ref.rstd) < 1e-5)
    // backward accumulates into dx, dweight, dbias
    let dout = randomFloats(rows * n, seed: 19)
    var dx = randomFloats(rows * n, seed: 20), dw = randomFloats(n, seed: 21), db = randomFloats(n, seed: 22)
    let (dx0, dw0, db0) = (dx, dw, db)
    layerNormBackward(dx: &dx, dweight: &dw, dbias: &db, dout, x, weight: w, mean: mu, rstd: rs, rows: rows, n: n)
    let fx = centralDifference(at: x.doubles) { dot(naiveLayerNorm($0, weight: w.doubles, bias: b.doubles, rows: rows, n: n).out, dout.doubles) }
    let fw = centralDifference(at: w.doubles) { dot(naiveLayerNorm(x.doubles, weight: $0, bias: b.doubles, rows: rows, n: n).out, dout.doubles) }
    let fb = centralDifference(at: b.doubles) { dot(naiveLayerNorm(x.doubles, weight: w.doubles, bias: $0, rows: rows, n: n).out, dout.doubles) }
    #expect(relativeError(zip(dx, dx0).map { Double($0) - Double($1) }, fx) < 1e-4)
    #expect(relativeError(zip(dw, dw0).map { Double($0) - Double($1) }, fw) < 1e-4)
    #expect(relativeError(zip(db, db0).map { Double($0) - Double($1) }, fb) < 1e-4)
    // nil outputs are skipped
    var dx2 = dx0
    layerNormBackward(dx: &dx2, dweight: nil, dbias: nil, dout, x, weight: w, mean: mu, rstd: rs, rows: rows, n: n)
    expectIdentical(dx2, dx, "dx without dweight/dbias")
}

@Test(arguments: counts) func bceMatchesNaive(_ n: Int) {
    var x = randomFloats(n, seed: 23, in: -6...6)
    if n >= 3 { x[0] = 40; x[1] = -40; x[2] = 0 }  // saturated logits stay finite
    var rng = TestRandom(seed: 24)
    let y = (0..<n).map { _ in Float(rng.below(2)) }
    let w = (0..<n).map { i in i % 3 == 1 ? Float(0) : Float(0.5 + rng.uniform()) }  // every third weight is 0
    var grad = [Float](repeating: .nan, count: n)
    let loss = bceWithLogits(x, targets: y, weights: w, grad: &grad, scale: 0.25, count: n)
    let ref = naiveBinaryCrossEntropy(logits: x.doubles, targets: y.doubles, weights: w.doubles)
    #expect(abs(loss - ref.loss) <= 1e-6 * max(1, abs(ref.loss)))
    #expect(relativeError(grad, ref.grad.map { 0.25 * $0 }) < 1e-6)
    for i in 0..<n where w[i] == 0 { #expect(grad[i] == 0) }
    #expect(bceWithLogits(x, targets: y, weights: w, grad: nil, scale: 1, count: n) == loss)
}

@Test func gatherAndPooling() {
    let rows = 11, dim = 7
    let table = randomFloats(rows * dim, seed: 25)
    let ids: [Int32] = [3, 0, 10, 3, 5, 5, 1, 9, 2]
    let out = mutating([Float](repeating: .nan, count: ids.count * dim)) { gatherRows($0, table: table, ids: ids, count: ids.count, dim: dim) }
    #expect(relativeError(out, naiveEmbeddingBag(table: table.doubles, dim: dim, ids: ids, offsets: nil, mean: false)) == 0)
    // bags: single, empty (reads row 0), multi, empty, multi with a repeated id
    let offsets: [Int32] = [0, 1, 1, 4, 4, 9]
    for meanPool in [false, true] {
        let pooled = mutating([Float](repeating: .nan, count: 5 * dim)) {
            gatherPooled($0, table: table, ids: ids, offsets: offsets, bags: 5, dim: dim, mean: meanPool)
        }
        #expect(relativeError(pooled, naiveEmbeddingBag(table: table.doubles, dim: dim, ids: ids, offsets: offsets, mean: meanPool)) < 1e-6)
    }
    // scatter-add with repeated ids
    let dout = randomFloats(ids.count * dim, seed: 26), g0 = randomFloats(rows * dim, seed: 27)
    let g = mutating(g0) { scatterAddRows($0, ids: ids, dout, count: ids.count, dim: dim) }
    var ref = g0.doubles
    for (i, id) in ids.enumerated() { for j in 0..<dim { ref[Int(id) * dim + j] += Double(dout[i * dim + j]) } }
    #expect(relativeError(g, ref) < 1e-6)
    // empty gathers write nothing
    #expect(mutating([1]) { gatherRows($0, table: table, ids: [], count: 0, dim: dim) } == [1])
}

@Test(arguments: [(1, 1), (3, 7), (33, 65), (65, 33), (0, 5), (5, 0), (1, 40), (40, 1)]) func transposeMatchesNaive(_ shape: (Int, Int)) {
    let (rows, cols) = shape
    let x = randomFloats(rows * cols, seed: 28)
    let t = mutating([Float](repeating: .nan, count: rows * cols)) { transpose($0, x, rows: rows, cols: cols) }
    for i in 0..<rows { for j in 0..<cols { #expect(t[j * rows + i] == x[i * cols + j]) } }
}

@Test func columnLayout() {
    let rows = 5
    let a = randomFloats(rows * 3, seed: 29), b = randomFloats(rows * 1, seed: 30), c = randomFloats(rows * 7, seed: 31)
    let out = a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeBufferPointer { pc in
        mutating([Float](repeating: .nan, count: rows * 11)) {
            concatColumns($0, [(pa.baseAddress!, 3), (pb.baseAddress!, 1), (pc.baseAddress!, 7)], rows: rows)
        } } } }
    for r in 0..<rows {
        #expect(Array(out[(r * 11)..<(r * 11 + 3)]) == Array(a[(r * 3)..<(r * 3 + 3)]))
        #expect(out[r * 11 + 3] == b[r])
        #expect(Array(out[(r * 11 + 4)..<(r * 11 + 11)]) == Array(c[(r * 7)..<(r * 7 + 7)]))
    }
    // copyColumns (slice) and its accumulate form, addIntoColumns
    let slice = mutating([Float](repeating: .nan, count: rows * 7)) { copyColumns($0, out, rows: rows, n: 11, offset: 4, width: 7, accumulate: false) }
    #expect(slice == c)
    let base = randomFloats(rows * 7, seed: 32)
    let acc = mutating(base) { copyColumns($0, out, rows: rows, n: 11, offset: 4, width: 7, accumulate: true) }
    #expect(relativeError(acc, zip(base, c).map { Double($0) + Double($1) }) < 1e-7)
    let wide = randomFloats(rows * 11, seed: 33)
    let added = mutating(wide) { addIntoColumns($0, c, rows: rows, n: 11, offset: 4, width: 7) }
    for r in 0..<rows { for j in 0..<11 {
        let expected = j >= 4 ? wide[r * 11 + j] + c[r * 7 + j - 4] : wide[r * 11 + j]
        #expect(added[r * 11 + j] == expected)
    } }
    // gatherRowsOf with repeats
    let index: [Int32] = [4, 0, 4, 2]
    let g = mutating([Float](repeating: .nan, count: 4 * 11)) { gatherRowsOf($0, out, index: index, count: 4, n: 11) }
    for (i, src) in index.enumerated() { #expect(Array(g[(i * 11)..<(i * 11 + 11)]) == Array(out[(Int(src) * 11)..<(Int(src) * 11 + 11)])) }
}

/// `nonzeroRows` lists the rows with a nonzero (a -0 row counts as zero), in order, and
/// gives up (nil) once more than `limit` are; `scatterRowsOf` writes or adds rows back.
@Test func nonzeroRowsAndScatter() {
    let rows = 9, n = 5
    var x = randomFloats(rows * n, seed: 34)
    for r in [1, 2, 5, 8] { for j in 0..<n { x[r * n + j] = r == 5 ? -0.0 : 0 } }
    x[2 * n + 4] = 1e-30                                         // one nonzero element is enough
    let expected: [Int32] = (0..<rows).filter { r in (0..<n).contains { x[r * n + $0] != 0 } }.map(Int32.init)
    #expect(expected == [0, 2, 3, 4, 6, 7])
    var index = [Int32](repeating: -1, count: rows)
    #expect(nonzeroRows(x, rows: rows, n: n, limit: 6, into: &index) == 6)
    #expect(Array(index.prefix(6)) == expected)
    #expect(nonzeroRows(x, rows: rows, n: n, limit: 5, into: &index) == nil)
    #expect(nonzeroRows(x, rows: 0, n: n, limit: 0, into: &index) == 0)
    // rows wider than eight lanes: a nonzero in the vector part or in the tail, NaN, -0
    let wide = 21
    var y = [Float](repeating: 0, count: 6 * wide)
    y[1 * wide + 3] = -2; y[2 * wide + 20] = 1e-38; y[3 * wide + 9] = .nan; y[4 * wide + 16] = -0.0; y[5 * wide + 7] = .leastNonzeroMagnitude
    #expect(nonzeroRows(y, rows: 6, n: wide, limit: 6, into: &index) == 4)
    #expect(Array(index.prefix(4)) == [1, 2, 3, 5])
    // with the column sums in the same pass: sumRows's bits, over 64-row blocks, sparse or not
    let tall = 150
    var z = randomFloats(tall * wide, seed: 37)
    for r in 0..<tall where r % 3 != 0 { for j in 0..<wide { z[r * wide + j] = 0 } }
    let start = randomFloats(wide, seed: 38)
    for (limit, rows) in [(tall, [Int32](stride(from: 0, to: 150, by: 3).map(Int32.init))), (20, nil)] {
        var sums = start, expected = start, listed = [Int32](repeating: -1, count: tall)
        sumRows(&expected, z, rows: tall, n: wide)
        let m = nonzeroRows(z, rows: tall, n: wide, limit: limit, into: &listed, addingColumnSumsTo: &sums)
        #expect(m == rows?.count)
        if let rows { #expect(Array(listed.prefix(rows.count)) == rows) }
        #expect(sums == expected)
    }
    let src = randomFloats(3 * n, seed: 35), at: [Int32] = [6, 0, 3], base = randomFloats(rows * n, seed: 36)
    let ascending: [Int32] = [0, 3, 6], filled = mutating(base) { scatterRowsZeroingTheRest($0, src, index: ascending, count: 3, rows: rows, n: n) }
    for r in 0..<rows { for j in 0..<n {
        #expect(filled[r * n + j] == (ascending.firstIndex(of: Int32(r)).map { src[$0 * n + j] } ?? 0))
    } }
    let written = mutating(base) { scatterRowsOf($0, src, index: at, count: 3, n: n, accumulate: false) }
    let added = mutating(base) { scatterRowsOf($0, src, index: at, count: 3, n: n, accumulate: true) }
    for r in 0..<rows { for j in 0..<n {
        let s = at.firstIndex(of: Int32(r)).map { src[$0 * n + j] }
        #expect(written[r * n + j] == s ?? base[r * n + j])
        #expect(added[r * n + j] == base[r * n + j] + (s ?? 0))
    } }
}

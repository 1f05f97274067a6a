import Foundation
import Kernels
import Testing
import TestSupport

// matmul / gemm / batchedMatmul / naiveMatmulInto against the Float64 naive twin.

struct MatmulCase: CustomTestStringConvertible, Sendable {
    var m: Int, n: Int, k: Int, transA: Bool, transB: Bool, alpha: Float, beta: Float
    var testDescription: String { "m\(m) n\(n) k\(k) tA\(transA) tB\(transB) alpha\(alpha) beta\(beta)" }
}

let matmulCases: [MatmulCase] = {
    var cases: [MatmulCase] = []
    let shapes = [(1, 1, 1), (3, 7, 17), (17, 3, 7), (33, 65, 1), (65, 33, 17), (7, 1, 65), (1, 65, 33), (64, 64, 64), (130, 17, 33),
                  // smallProduct's shapes (runsAsSmallProduct: k <= 96, 8 <= n <= 128) and just outside them
                  (301, 96, 32), (13, 128, 96), (12, 129, 20), (9, 8, 97)]
    for (m, n, k) in shapes {
        for tA in [false, true] {
            for tB in [false, true] {
                for beta: Float in [0, 1] { cases.append(MatmulCase(m: m, n: n, k: k, transA: tA, transB: tB, alpha: 1, beta: beta)) }
            }
        }
    }
    cases.append(MatmulCase(m: 5, n: 9, k: 3, transA: true, transB: false, alpha: -0.5, beta: 0.25))
    cases.append(MatmulCase(m: 9, n: 5, k: 11, transA: false, transB: true, alpha: 2, beta: -1))
    return cases
}()

/// c0 is random for beta != 0, NaN for beta == 0 (must never be read).
func initialC(_ count: Int, beta: Float, seed: UInt64) -> [Float] {
    beta == 0 ? [Float](repeating: .nan, count: count) : randomFloats(count, seed: seed)
}

@Test(arguments: matmulCases) func matmulMatchesNaive(_ t: MatmulCase) {
    let a = randomFloats(t.m * t.k, seed: 1), b = randomFloats(t.k * t.n, seed: 2)
    let c0 = initialC(t.m * t.n, beta: t.beta, seed: 3)
    let c = mutating(c0) { matmul($0, a, b, m: t.m, n: t.n, k: t.k, transA: t.transA, transB: t.transB, alpha: t.alpha, beta: t.beta) }
    var ref = c0.doubles
    naiveGemm(&ref, ldc: t.n, a.doubles, lda: t.transA ? t.m : t.k, b.doubles, ldb: t.transB ? t.k : t.n,
              m: t.m, n: t.n, k: t.k, transA: t.transA, transB: t.transB, alpha: Double(t.alpha), beta: Double(t.beta))
    #expect(relativeError(c, ref) < 1e-5)
    // the loop form used for small batched products
    let cLoop = mutating(c0) { naiveMatmulInto($0, a, b, m: t.m, n: t.n, k: t.k, transA: t.transA, transB: t.transB, alpha: t.alpha, beta: t.beta) }
    #expect(relativeError(cLoop, ref) < 1e-5)
}

@Test(arguments: matmulCases) func gemmWithLeadingDimensionsMatchesNaive(_ t: MatmulCase) {
    // operands embedded in wider rows: padding is NaN in a and b (never read) and
    // must stay untouched in c.
    let pad = 3
    let aRows = t.transA ? t.k : t.m, aCols = t.transA ? t.m : t.k
    let bRows = t.transB ? t.n : t.k, bCols = t.transB ? t.k : t.n
    let lda = aCols + pad, ldb = bCols + pad, ldc = t.n + pad
    var a = randomFloats(aRows * lda, seed: 4), b = randomFloats(bRows * ldb, seed: 5)
    for r in 0..<aRows { for j in aCols..<lda { a[r * lda + j] = .nan } }
    for r in 0..<bRows { for j in bCols..<ldb { b[r * ldb + j] = .nan } }
    var c0 = randomFloats(t.m * ldc, seed: 6)
    if t.beta == 0 { for i in 0..<t.m { for j in 0..<t.n { c0[i * ldc + j] = .nan } } }
    let c = mutating(c0) { gemm($0, ldc: ldc, a, lda: lda, b, ldb: ldb, m: t.m, n: t.n, k: t.k,
                                transA: t.transA, transB: t.transB, alpha: t.alpha, beta: t.beta) }
    var ref = c0.doubles
    naiveGemm(&ref, ldc: ldc, a.doubles, lda: lda, b.doubles, ldb: ldb, m: t.m, n: t.n, k: t.k,
              transA: t.transA, transB: t.transB, alpha: Double(t.alpha), beta: Double(t.beta))
    #expect(relativeError(c, ref) < 1e-5)
    for i in 0..<t.m { for j in t.n..<ldc { #expect(c[i * ldc + j].bitPattern == c0[i * ldc + j].bitPattern) } }
}

@Test(arguments: [(0, 5, 3), (5, 0, 3), (0, 0, 0), (4, 6, 0)], [Float(0), 1, 0.5])
func emptySizes(_ shape: (Int, Int, Int), _ beta: Float) {
    let (m, n, k) = shape
    let a = randomFloats(max(m * k, 1), seed: 7), b = randomFloats(max(k * n, 1), seed: 8)
    let c0 = randomFloats(max(m * n, 1), seed: 9)
    // with k == 0 the product is empty: c = beta c
    let expected: [Double] = (0..<c0.count).map { i in i < m * n ? Double(beta) * Double(c0[i]) : Double(c0[i]) }
    let c = mutating(c0) { matmul($0, a, b, m: m, n: n, k: k, beta: beta) }
    #expect(relativeError(c, expected) == 0)
    let g = mutating(c0) { gemm($0, ldc: max(n, 1), a, lda: max(k, 1), b, ldb: max(n, 1), m: m, n: n, k: k, beta: beta) }
    #expect(relativeError(g, expected) == 0)
    let bm = mutating(c0) { batchedMatmul($0, a, b, batch: 1, m: m, n: n, k: k, strideA: 0, strideB: 0, strideC: 0, beta: beta) }
    #expect(relativeError(bm, expected) == 0)
}

struct BatchedCase: CustomTestStringConvertible, Sendable {
    var batch: Int, m: Int, n: Int, k: Int, transA: Bool, transB: Bool, beta: Float
    var testDescription: String { "batch\(batch) m\(m) n\(n) k\(k) tA\(transA) tB\(transB) beta\(beta)" }
}

let batchedCases: [BatchedCase] = {
    var cases: [BatchedCase] = []
    // small (loop path, m n k < 4096) and large (sgemm path) products
    for (batch, m, n, k) in [(1, 3, 7, 5), (5, 7, 3, 17), (3, 17, 33, 9), (7, 33, 17, 65), (2, 65, 65, 1)] {
        for tA in [false, true] { for tB in [false, true] { for beta: Float in [0, 1] {
            cases.append(BatchedCase(batch: batch, m: m, n: n, k: k, transA: tA, transB: tB, beta: beta))
        } } }
    }
    return cases
}()

@Test(arguments: batchedCases) func batchedMatmulMatchesNaive(_ t: BatchedCase) {
    // strided operands with a gap between consecutive matrices
    let sa = t.m * t.k + 2, sb = t.k * t.n + 5, sc = t.m * t.n + 1
    let a = randomFloats(t.batch * sa, seed: 10), b = randomFloats(t.batch * sb, seed: 11)
    let c0 = randomFloats(t.batch * sc, seed: 12)
    let run = { mutating(c0) { batchedMatmul($0, a, b, batch: t.batch, m: t.m, n: t.n, k: t.k, strideA: sa, strideB: sb, strideC: sc,
                                              transA: t.transA, transB: t.transB, alpha: 0.75, beta: t.beta) } }
    let c1 = withThreads(1) { run() }
    let c2 = withThreads(2) { run() }
    expectIdentical(c1, c2, "batchedMatmul, 1 vs 2 threads")
    var ref = c0.doubles
    for i in 0..<t.batch {
        var ci = Array(ref[(i * sc)..<(i * sc + t.m * t.n)])
        naiveGemm(&ci, ldc: t.n, Array(a.doubles[(i * sa)...]), lda: t.transA ? t.m : t.k, Array(b.doubles[(i * sb)...]),
                  ldb: t.transB ? t.k : t.n, m: t.m, n: t.n, k: t.k, transA: t.transA, transB: t.transB, alpha: 0.75, beta: Double(t.beta))
        ref.replaceSubrange((i * sc)..<(i * sc + t.m * t.n), with: ci)
    }
    #expect(relativeError(c1, ref) < 1e-5)
    // the gaps between matrices are untouched
    for i in 0..<t.batch { #expect(c1[i * sc + t.m * t.n] == c0[i * sc + t.m * t.n]) }
}

/// OpenBLAS's sgemm is deterministic for a given thread count, but NOT bitwise
/// identical across thread counts (measured: 1 vs 2 threads at 257 x 129 x 300
/// differ in the last bits of some entries; the split changes which entries go
/// through the edge micro-kernels). Braid's own loops are identical across counts.
@Test func matmulDeterministicPerThreadCount() {
    let (m, n, k) = (257, 129, 300)
    let a = randomFloats(m * k, seed: 13), b = randomFloats(k * n, seed: 14)
    let c0 = [Float](repeating: 0, count: m * n)
    let run = { mutating(c0) { matmul($0, a, b, m: m, n: n, k: k) } }
    let (c1, c1again) = withThreads(1) { (run(), run()) }
    let (c2, c2again) = withThreads(2) { (run(), run()) }
    expectIdentical(c1, c1again, "sgemm, 1 thread, run twice")
    expectIdentical(c2, c2again, "sgemm, 2 threads, run twice")
    let ref = naiveMatmul(a.doubles, b.doubles, m: m, n: n, k: k)
    #expect(relativeError(c1, ref) < 1e-5)
    #expect(relativeError(c2, ref) < 1e-5)
}

@Test(arguments: [(1, 1, 1), (5, 7, 3), (33, 17, 65), (300, 129, 40), (0, 4, 3), (3, 0, 2), (601, 96, 32)], [false, true])
func linearForwardMatchesNaive(_ shape: (Int, Int, Int), _ relu: Bool) {
    // (300, 129, 40) is large enough for the rows to split over 2 threads (sgemm); (601, 96, 32)
    // too, through smallProduct with the bias added as it writes (runsAsSmallProduct)
    let (m, n, k) = shape
    let x = randomFloats(m * k, seed: 20), w = randomFloats(n * k, seed: 21), bias = randomFloats(n, seed: 22)
    for withBias in [false, true] {
        var ref = [Double](repeating: 0, count: m * n)
        naiveGemm(&ref, ldc: n, x.doubles, lda: k, w.doubles, ldb: k, m: m, n: n, k: k, transB: true)
        for i in 0..<(m * n) {
            let v = ref[i] + (withBias ? Double(bias[i % n]) : 0)
            ref[i] = relu ? max(v, 0) : v
        }
        for threads in [1, 2] {
            let y = withThreads(threads) {
                mutating([Float](repeating: .nan, count: m * n)) { y in
                    bias.withUnsafeBufferPointer { b in
                        linearForward(y, x, weight: w, bias: withBias ? b.baseAddress : nil, m: m, n: n, k: k, relu: relu)
                    }
                }
            }
            #expect(relativeError(y, ref) < 1e-5, "bias \(withBias), \(threads) threads")
        }
    }
}

@Test(arguments: [(1, 1, 1), (7, 5, 3), (300, 129, 40)], [false, true])
func crossForwardMatchesNaive(_ shape: (Int, Int, Int), _ keepW: Bool) {
    // y = x0 * (h W^T + bias) + x; (300, 129, 40) splits over 2 threads
    let (m, n, k) = shape
    let x0 = randomFloats(m * n, seed: 23), x = randomFloats(m * n, seed: 24), h = randomFloats(m * k, seed: 25)
    let w = randomFloats(n * k, seed: 26), bias = randomFloats(n, seed: 27)
    var lin = [Double](repeating: 0, count: m * n)
    naiveGemm(&lin, ldc: n, h.doubles, lda: k, w.doubles, ldb: k, m: m, n: n, k: k, transB: true)
    for i in 0..<(m * n) { lin[i] += Double(bias[i % n]) }
    let ref = (0..<(m * n)).map { Double(x0[$0]) * lin[$0] + Double(x[$0]) }
    for threads in [1, 2] {
        var kept = [Float](repeating: .nan, count: m * n)
        let y = withThreads(threads) {
            mutating([Float](repeating: .nan, count: m * n)) { y in
                kept.withUnsafeMutableBufferPointer { kp in
                    crossForward(y, w: keepW ? kp.baseAddress : nil, x0: x0, x: x, h: h, weight: w, bias: bias, m: m, n: n, k: k)
                }
            }
        }
        #expect(relativeError(y, ref) < 1e-5, "\(threads) threads")
        if keepW { #expect(relativeError(kept, lin) < 1e-5, "w kept, \(threads) threads") }
    }
}

/// `smallProduct` in its short-inner-dimension use (attention scores S = Q K^T with K^T
/// from `transposeInto`) against the naive twin: every tail of its 4-row x 16/8-column
/// tiles and of the transpose's 8-row steps, strided a and c (padding NaN in a, untouched in c).
@Test(arguments: [(1, 1, 1), (3, 5, 2), (4, 16, 8), (5, 17, 16), (7, 31, 16), (9, 24, 3), (13, 65, 32), (64, 200, 16), (6, 20, 12)])
func transposedKeysScoresMatchNaive(_ shape: (Int, Int, Int)) {
    let (m, n, k) = shape
    let lda = k + 3, ldb = k + 5, ldc = n + 2
    var a = randomFloats(m * lda, seed: 31), b = randomFloats(n * ldb, seed: 32)
    for i in 0..<m { for t in k..<lda { a[i * lda + t] = .nan } }
    for j in 0..<n { for t in k..<ldb { b[j * ldb + t] = .nan } }
    var bT = [Float](repeating: .nan, count: k * n)
    transposeInto(&bT, b, ldb: ldb, n: n, k: k)
    for t in 0..<k { for j in 0..<n { #expect(bT[t * n + j] == b[j * ldb + t]) } }
    // into a wider scratch (row stride ldt): its padding untouched
    let ldt = n + 5
    var wide = [Float](repeating: -7, count: k * ldt)
    transposeInto(&wide, b, ldb: ldb, n: n, k: k, ldt: ldt)
    for t in 0..<k { for j in 0..<ldt { #expect(wide[t * ldt + j] == (j < n ? b[j * ldb + t] : -7)) } }
    let c0 = randomFloats(m * ldc, seed: 33)
    let c = mutating(c0) { smallProduct($0, ldc: ldc, a, lda: lda, bT, ldb: n, m: m, n: n, k: k, alpha: 0.25) }
    var ref = c0.doubles
    naiveGemm(&ref, ldc: ldc, a.doubles, lda: lda, b.doubles, ldb: ldb, m: m, n: n, k: k, transB: true, alpha: 0.25)
    #expect(relativeError(c, ref) < 1e-5)
    for i in 0..<m { for j in n..<ldc { #expect(c[i * ldc + j] == c0[i * ldc + j], "padding of c written at (\(i), \(j))") } }
}

/// `smallProduct` (attention's products with a head-wide output) against the naive twin:
/// every tile tail (rows mod 6 and 4, single rows by 32, 16 and 8 columns, columns mod 16 and 8), transposed and plain A, beta 0
/// (c NaN, never read) and beta 1, with and without a bias per column, strided operands,
/// padding of c untouched.
@Test(arguments: [(1, 1, 1), (3, 5, 2), (4, 16, 8), (5, 17, 64), (7, 31, 65), (9, 24, 3), (13, 8, 200), (64, 16, 64), (65, 57, 16), (3, 40, 9)], [false, true])
func smallProductMatchesNaive(_ shape: (Int, Int, Int), _ transA: Bool) {
    let (m, n, k) = shape
    let aRows = transA ? k : m, aCols = transA ? m : k
    let lda = aCols + 3, ldb = n + 5, ldc = n + 2
    var a = randomFloats(aRows * lda, seed: 41), b = randomFloats(k * ldb, seed: 42)
    for r in 0..<aRows { for t in aCols..<lda { a[r * lda + t] = .nan } }
    for t in 0..<k { for j in n..<ldb { b[t * ldb + j] = .nan } }
    let bias = randomFloats(n, seed: 44)
    for beta: Float in [0, 1] {
        for withBias in [false, true] {
            var c0 = randomFloats(m * ldc, seed: 43)
            if beta == 0 { for i in 0..<m { for j in 0..<n { c0[i * ldc + j] = .nan } } }
            let c = mutating(c0) { c in
                bias.withUnsafeBufferPointer { bp in
                    smallProduct(c, ldc: ldc, a, lda: lda, transA: transA, b, ldb: ldb, m: m, n: n, k: k, alpha: 0.5, beta: beta,
                                 bias: withBias ? bp.baseAddress : nil)
                }
            }
            var ref = c0.doubles
            naiveGemm(&ref, ldc: ldc, a.doubles, lda: lda, b.doubles, ldb: ldb, m: m, n: n, k: k, transA: transA, alpha: 0.5, beta: Double(beta))
            if withBias { for i in 0..<m { for j in 0..<n { ref[i * ldc + j] += Double(bias[j]) } } }
            #expect(relativeError(c, ref) < 1e-5, "beta \(beta), bias \(withBias)")
            for i in 0..<m { for j in n..<ldc { #expect(c[i * ldc + j] == c0[i * ldc + j], "padding of c written at (\(i), \(j))") } }
        }
    }
}

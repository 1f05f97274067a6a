// Attention's per-sequence, per-head products, where one dimension is the head width d_h
// (e.g. 16): OpenBLAS spends most of such a call packing operands and zeroing C for only a
// few multiply-adds per output. One register-tiled SIMD8 kernel instead, `smallProduct`:
// each tile of 4 rows x 16 columns of C accumulates over k in registers, reading one row
// of B (16 floats) and 4 entries of A per step, and is written once. It serves both shapes:
// - short inner dimension k = d_h (scores S = alpha Q K^T, dP = dO V^T): B = K^T, the keys
//   transposed once into a [d_h, n] scratch by `transposeInto`;
// - few output columns n = d_h (P V, dS K and the transposed-A forms P^T dO, dS^T Q).

/// bT [k, n] (row stride ldt, default n) = b^T for b [n, k] with row stride ldb (one
/// sequence's keys of one head). 8 x 8 blocks by `transpose8` (eight row loads, 24
/// shuffles, eight stores); the last n mod 8 rows and k mod 8 columns one float at a time.
@inlinable public func transposeInto(_ bT: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, ldb: Int, n: Int, k: Int,
                                     ldt: Int? = nil) {
    let ldt = ldt ?? n
    let n8 = n & ~7, k8 = k & ~7
    var j = 0
    while j < n8 {
        let r = b + j * ldb
        var t = 0
        while t < k8 {
            let c = r + t
            let v = transpose8(load8(c), load8(c + ldb), load8(c + 2 * ldb), load8(c + 3 * ldb),
                               load8(c + 4 * ldb), load8(c + 5 * ldb), load8(c + 6 * ldb), load8(c + 7 * ldb))
            let o = bT + t * ldt + j
            store8(v.0, o); store8(v.1, o + ldt); store8(v.2, o + 2 * ldt); store8(v.3, o + 3 * ldt)
            store8(v.4, o + 4 * ldt); store8(v.5, o + 5 * ldt); store8(v.6, o + 6 * ldt); store8(v.7, o + 7 * ldt)
            t += 8
        }
        for t in k8..<k { for i in 0..<8 { bT[t * ldt + j + i] = r[i * ldb + t] } }
        j += 8
    }
    while j < n {
        for t in 0..<k { bT[t * ldt + j] = b[j * ldb + t] }
        j += 1
    }
}

/// The transpose of the 8 x 8 block whose rows are v0 ... v7: three rounds of splitting the
/// 64 floats (row-major) into their even and odd positions, each of which moves the index's
/// lowest bit to the top (row r, column c at 8 r + c goes to 8 c + r after three).
@inlinable @inline(__always)
func transpose8(_ v0: SIMD8<Float>, _ v1: SIMD8<Float>, _ v2: SIMD8<Float>, _ v3: SIMD8<Float>, _ v4: SIMD8<Float>, _ v5: SIMD8<Float>,
                _ v6: SIMD8<Float>, _ v7: SIMD8<Float>)
    -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
    @inline(__always) func split(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> (SIMD8<Float>, SIMD8<Float>) {
        let c = SIMD16(lowHalf: a, highHalf: b)
        return (c.evenHalf, c.oddHalf)
    }
    var v = (v0, v1, v2, v3, v4, v5, v6, v7)
    for _ in 0..<3 {
        let (e0, o0) = split(v.0, v.1), (e1, o1) = split(v.2, v.3), (e2, o2) = split(v.4, v.5), (e3, o3) = split(v.6, v.7)
        v = (e0, e1, e2, e3, o0, o1, o2, o3)
    }
    return v
}

/// A row stride for a scratch of rows of n floats that the kernels read several rows of at
/// once (transposed keys, scores): n rounded up to whole 64-byte lines, made an odd number of
/// lines. Rows 4 KiB apart (n = 1024) all map to one set of the 8-way L1 and evict each
/// other within a tile; an odd number of lines spreads consecutive rows over every set.
@inlinable public func scratchStride(_ n: Int) -> Int {
    let lines = (n + 15) / 16
    return 16 * (lines % 2 == 0 ? lines + 1 : lines)
}

/// c [m, n] (row stride ldc) = alpha op(a) b (+ bias) + beta c, where op(a) [m, k] is a [m, k]
/// (row stride lda) or, with `transA`, the transpose of a [k, m] (row stride lda), and b [k, n]
/// has row stride ldb: c[i, j] = alpha sum_t op(a)[i, t] b[t, j] + bias[j] + beta c[i, j] (naive
/// twin: `naiveGemm`; bias [n] optional: a linear layer's). Meant for a short k or a narrow n
/// (a head width, a token-wise linear); beta 0 never reads c.
@inlinable public func smallProduct(
    _ c: UnsafeMutablePointer<Float>, ldc: Int, _ a: UnsafePointer<Float>, lda: Int, transA: Bool = false,
    _ b: UnsafePointer<Float>, ldb: Int, m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float = 0,
    bias: UnsafePointer<Float>? = nil
) {
    // whole groups of 8 columns by register tiles; the last n mod 8 (a sequence of 46 keys: 6)
    // by SIMD over a zero-padded copy of b's last columns
    let n8 = n & ~7
    if n8 > 0 { smallProductTiles(c, ldc: ldc, a, lda: lda, transA: transA, b, ldb: ldb, m: m, n: n8, k: k, alpha: alpha, beta: beta, bias: bias) }
    if n8 < n {
        smallProductColumnTail(c + n8, ldc: ldc, a, si: transA ? 1 : lda, st: transA ? lda : 1, b + n8, ldb: ldb, m: m, columns: n - n8,
                               k: k, alpha: alpha, beta: beta, bias: bias.map { $0 + n8 })
    }
}

/// `smallProduct` for n a multiple of 8: tiles of 6 x 16, then 4 x 16 and 4 x 8, then rows of 1 x 32, 1 x 16, 1 x 8.
@inlinable func smallProductTiles(
    _ c: UnsafeMutablePointer<Float>, ldc: Int, _ a: UnsafePointer<Float>, lda: Int, transA: Bool,
    _ b: UnsafePointer<Float>, ldb: Int, m: Int, n: Int, k: Int, alpha: Float, beta: Float, bias: UnsafePointer<Float>?
) {
    let al = SIMD8<Float>(repeating: alpha), be = SIMD8<Float>(repeating: beta)
    // op(a)[i, t] lives at a + i * si + t * st
    let si = transA ? 1 : lda, st = transA ? lda : 1
    // the 8 outputs at o, columns j ..< j + 8
    // (the bias as a plain pointer and a flag: unwrapping the optional in each finish cost
    // the tiles a third of their speed)
    let hasBias = bias != nil, biasRow = bias ?? UnsafePointer(bitPattern: MemoryLayout<Float>.alignment)!
    @inline(__always) func finish(_ acc: SIMD8<Float>, _ o: UnsafeMutablePointer<Float>, _ j: Int) {
        var v = acc * al
        if hasBias { v += load8(biasRow + j) }
        if beta != 0 { v += be * load8(o) }
        store8(v, o)
    }
    var i = 0
    // 6 x 16 tiles first: 12 accumulators + 2 rows of b + a broadcast fill the 16 AVX2
    // registers, 12 multiply-adds per 8 loads (the 4 x 16 tile below: 8 per 6)
    while i + 6 <= m && n >= 16 {
        let a0 = a + i * si, a1 = a0 + si, a2 = a1 + si, a3 = a2 + si, a4 = a3 + si, a5 = a4 + si
        var j = 0
        while j + 16 <= n {
            var c00 = SIMD8<Float>(), c01 = SIMD8<Float>(), c10 = SIMD8<Float>(), c11 = SIMD8<Float>()
            var c20 = SIMD8<Float>(), c21 = SIMD8<Float>(), c30 = SIMD8<Float>(), c31 = SIMD8<Float>()
            var c40 = SIMD8<Float>(), c41 = SIMD8<Float>(), c50 = SIMD8<Float>(), c51 = SIMD8<Float>()
            for t in 0..<k {
                let bt = b + t * ldb + j, o = t * st
                let b0 = load8(bt), b1 = load8(bt + 8)
                var x = SIMD8(repeating: a0[o]); c00 = c00.addingProduct(x, b0); c01 = c01.addingProduct(x, b1)
                x = SIMD8(repeating: a1[o]); c10 = c10.addingProduct(x, b0); c11 = c11.addingProduct(x, b1)
                x = SIMD8(repeating: a2[o]); c20 = c20.addingProduct(x, b0); c21 = c21.addingProduct(x, b1)
                x = SIMD8(repeating: a3[o]); c30 = c30.addingProduct(x, b0); c31 = c31.addingProduct(x, b1)
                x = SIMD8(repeating: a4[o]); c40 = c40.addingProduct(x, b0); c41 = c41.addingProduct(x, b1)
                x = SIMD8(repeating: a5[o]); c50 = c50.addingProduct(x, b0); c51 = c51.addingProduct(x, b1)
            }
            let o = c + i * ldc + j
            finish(c00, o, j); finish(c01, o + 8, j + 8)
            finish(c10, o + ldc, j); finish(c11, o + ldc + 8, j + 8)
            finish(c20, o + 2 * ldc, j); finish(c21, o + 2 * ldc + 8, j + 8)
            finish(c30, o + 3 * ldc, j); finish(c31, o + 3 * ldc + 8, j + 8)
            finish(c40, o + 4 * ldc, j); finish(c41, o + 4 * ldc + 8, j + 8)
            finish(c50, o + 5 * ldc, j); finish(c51, o + 5 * ldc + 8, j + 8)
            j += 16
        }
        if j < n {
            smallProductTiles(c + i * ldc + j, ldc: ldc, a0, lda: lda, transA: transA, b + j, ldb: ldb, m: 6, n: n - j, k: k,
                              alpha: alpha, beta: beta, bias: bias.map { $0 + j })
        }
        i += 6
    }
    while i + 4 <= m {
        let a0 = a + i * si, a1 = a0 + si, a2 = a1 + si, a3 = a2 + si
        var j = 0
        while j + 16 <= n {
            var c00 = SIMD8<Float>(), c01 = SIMD8<Float>(), c10 = SIMD8<Float>(), c11 = SIMD8<Float>()
            var c20 = SIMD8<Float>(), c21 = SIMD8<Float>(), c30 = SIMD8<Float>(), c31 = SIMD8<Float>()
            for t in 0..<k {
                let bt = b + t * ldb + j, o = t * st
                let b0 = load8(bt), b1 = load8(bt + 8)
                let x0 = SIMD8(repeating: a0[o]), x1 = SIMD8(repeating: a1[o])
                let x2 = SIMD8(repeating: a2[o]), x3 = SIMD8(repeating: a3[o])
                c00 = c00.addingProduct(x0, b0); c01 = c01.addingProduct(x0, b1)
                c10 = c10.addingProduct(x1, b0); c11 = c11.addingProduct(x1, b1)
                c20 = c20.addingProduct(x2, b0); c21 = c21.addingProduct(x2, b1)
                c30 = c30.addingProduct(x3, b0); c31 = c31.addingProduct(x3, b1)
            }
            let o = c + i * ldc + j
            finish(c00, o, j); finish(c01, o + 8, j + 8)
            finish(c10, o + ldc, j); finish(c11, o + ldc + 8, j + 8)
            finish(c20, o + 2 * ldc, j); finish(c21, o + 2 * ldc + 8, j + 8)
            finish(c30, o + 3 * ldc, j); finish(c31, o + 3 * ldc + 8, j + 8)
            j += 16
        }
        while j + 8 <= n {
            var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), c2 = SIMD8<Float>(), c3 = SIMD8<Float>()
            for t in 0..<k {
                let b0 = load8(b + t * ldb + j), o = t * st
                c0 = c0.addingProduct(SIMD8(repeating: a0[o]), b0); c1 = c1.addingProduct(SIMD8(repeating: a1[o]), b0)
                c2 = c2.addingProduct(SIMD8(repeating: a2[o]), b0); c3 = c3.addingProduct(SIMD8(repeating: a3[o]), b0)
            }
            let o = c + i * ldc + j
            finish(c0, o, j); finish(c1, o + ldc, j); finish(c2, o + 2 * ldc, j); finish(c3, o + 3 * ldc, j)
            j += 8
        }
        i += 4
    }
    // the last m mod 4 rows one at a time, 32 columns (4 independent accumulators) per pass:
    // one accumulator waited a multiply-add's latency for every t (a 65th query row of a
    // 65 x 65 score block cost ~1/8 of the block)
    while i < m {
        let ai = a + i * si
        var j = 0
        while j + 32 <= n {
            var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), c2 = SIMD8<Float>(), c3 = SIMD8<Float>()
            for t in 0..<k {
                let x = SIMD8(repeating: ai[t * st]), bt = b + t * ldb + j
                c0 = c0.addingProduct(x, load8(bt)); c1 = c1.addingProduct(x, load8(bt + 8))
                c2 = c2.addingProduct(x, load8(bt + 16)); c3 = c3.addingProduct(x, load8(bt + 24))
            }
            let o = c + i * ldc + j
            finish(c0, o, j); finish(c1, o + 8, j + 8); finish(c2, o + 16, j + 16); finish(c3, o + 24, j + 24)
            j += 32
        }
        while j + 16 <= n {
            var c0 = SIMD8<Float>(), c1 = SIMD8<Float>()
            for t in 0..<k {
                let x = SIMD8(repeating: ai[t * st]), bt = b + t * ldb + j
                c0 = c0.addingProduct(x, load8(bt)); c1 = c1.addingProduct(x, load8(bt + 8))
            }
            finish(c0, c + i * ldc + j, j); finish(c1, c + i * ldc + j + 8, j + 8)
            j += 16
        }
        while j + 8 <= n {
            var c0 = SIMD8<Float>()
            for t in 0..<k { c0 = c0.addingProduct(SIMD8(repeating: ai[t * st]), load8(b + t * ldb + j)) }
            finish(c0, c + i * ldc + j, j)
            j += 8
        }
        i += 1
    }
}

/// The last `columns` (< 8) columns of `smallProduct` (op(a)[i, t] at a + i * si + t * st; c, b
/// and bias start at those columns): b's columns are copied once into a zero-padded [k, 8]
/// scratch, so each row's update is one SIMD8 multiply-add per t (6 rows at a time) and only
/// the `columns` lanes are stored. (A scalar loop here took as long as the SIMD tiles of a
/// 46 x 46 score block.) Called once per product, so not inlined into its callers.
@usableFromInline @inline(never) func smallProductColumnTail(
    _ c: UnsafeMutablePointer<Float>, ldc: Int, _ a: UnsafePointer<Float>, si: Int, st: Int, _ b: UnsafePointer<Float>, ldb: Int,
    m: Int, columns w: Int, k: Int, alpha: Float, beta: Float, bias: UnsafePointer<Float>?
) {
    let al = SIMD8<Float>(repeating: alpha), be = SIMD8<Float>(repeating: beta)
    let biasLanes = bias.map { tail8($0, w) }
    @inline(__always) func finish(_ acc: SIMD8<Float>, _ o: UnsafeMutablePointer<Float>) {
        let v = biasLanes.map { acc * al + $0 } ?? acc * al
        let r = beta == 0 ? v : v + be * tail8(o, w)
        for l in 0..<w { o[l] = r[l] }
    }
    withUnsafeTemporaryAllocation(of: Float.self, capacity: Swift.max(1, k * 8)) { scratch in
        let bt = scratch.baseAddress!
        for t in 0..<k {
            for l in 0..<8 { bt[t * 8 + l] = l < w ? b[t * ldb + l] : 0 }
        }
        var i = 0
        while i + 6 <= m {
            let a0 = a + i * si
            var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), c2 = SIMD8<Float>(), c3 = SIMD8<Float>(), c4 = SIMD8<Float>(), c5 = SIMD8<Float>()
            for t in 0..<k {
                let bv = load8(bt + t * 8), o = t * st
                c0 = c0.addingProduct(SIMD8(repeating: a0[o]), bv); c1 = c1.addingProduct(SIMD8(repeating: a0[si + o]), bv)
                c2 = c2.addingProduct(SIMD8(repeating: a0[2 * si + o]), bv); c3 = c3.addingProduct(SIMD8(repeating: a0[3 * si + o]), bv)
                c4 = c4.addingProduct(SIMD8(repeating: a0[4 * si + o]), bv); c5 = c5.addingProduct(SIMD8(repeating: a0[5 * si + o]), bv)
            }
            let o = c + i * ldc
            finish(c0, o); finish(c1, o + ldc); finish(c2, o + 2 * ldc); finish(c3, o + 3 * ldc); finish(c4, o + 4 * ldc); finish(c5, o + 5 * ldc)
            i += 6
        }
        while i < m {
            let ai = a + i * si
            var c0 = SIMD8<Float>()
            for t in 0..<k { c0 = c0.addingProduct(SIMD8(repeating: ai[t * st]), load8(bt + t * 8)) }
            finish(c0, c + i * ldc)
            i += 1
        }
    }
}

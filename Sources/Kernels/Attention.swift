import Foundation

// Fused multi-head attention over sequences whose valid positions are a prefix
// (most recent first, 0-padded: SPEC 1.2), with one fused qkv buffer:
// qkv [U, L, 3d] holds q, k, v (head h: columns h*dh ..< (h+1)*dh of each),
// dh = d / heads, scale = 1/sqrt(dh). Sequence u has lengths[u] valid positions;
// query rows at or past it, and every row of a sequence with no valid key, give 0
// (SPEC 2.2: such rows are masked downstream, so their values are never read).

/// Self-attention forward. out [U, L, d]; probs [U, heads, L, L] saved for the backward.
/// Packed (jagged) layout with `offsets` [U]: sequence u's tokens are the rows
/// offsets[u] ..< offsets[u] + lengths[u] of qkv [T, 3d] and out [T, d] (no padding rows).
public func attentionForward(
    _ out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
    qkv: UnsafePointer<Float>, lengths: UnsafePointer<Int32>, sequences: Int, length L: Int, dim d: Int, heads: Int,
    offsets: UnsafePointer<Int32>? = nil
) {
    let dh = d / heads, ld = 3 * d
    let scale = 1 / Float(dh).squareRoot()
    parallelFor(sequences, grain: Swift.max(1, 16_384 / Swift.max(L * L * dh, 1))) { _, range in
        let kT = UnsafeMutablePointer<Float>.allocate(capacity: dh * L)
        defer { kT.deallocate() }
        for u in range {
            let n = Int(lengths[u])
            let row = offsets.map { Int($0[u]) } ?? u * L
            let base = qkv + row * ld, o = out + row * d
            if offsets == nil && n < L { (o + n * d).update(repeating: 0, count: (L - n) * d) }
            if n == 0 { continue }
            for h in 0..<heads {
                let q = base + h * dh, k = base + d + h * dh, v = base + 2 * d + h * dh
                let p = probs + (u * heads + h) * L * L  // [L, L], rows/cols < n used, row stride L
                transposeInto(kT, k, ldb: ld, n: n, k: dh)
                smallProduct(p, ldc: L, q, lda: ld, kT, ldb: n, m: n, n: n, k: dh, alpha: scale)
                for i in 0..<n { softmaxRow(p + i * L, n: n) }
                smallProduct(o + h * dh, ldc: d, p, lda: L, v, ldb: ld, m: n, n: dh, k: n)
            }
        }
    }
}

/// Self-attention backward: accumulates into dqkv [U, L, 3d] from dout [U, L, d].
/// dP = dO V^T; dV += P^T dO; dS = P (dP - rowsum(P dP)); dQ += scale dS K; dK += scale dS^T Q.
/// `offsets`: the packed layout of `attentionForward`. As `blockedAttentionBackward`, query
/// rows whose dO row is exactly zero are skipped: the products run on the m nonzero rows of a
/// sequence, gathered (Q, dO and P rows) into contiguous scratch, and dQ is scattered back
/// (the last Transformer layer, where the readout leaves at most d + K nonzero rows).
/// With `overwrite`, dqkv's old contents are not read: every row of it is written (the
/// gradient of a qkv that attention alone reads, so it needs no zero-filled buffer first).
public func attentionBackward(
    dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, probs: UnsafePointer<Float>,
    qkv: UnsafePointer<Float>, lengths: UnsafePointer<Int32>, sequences: Int, length L: Int, dim d: Int, heads: Int,
    offsets: UnsafePointer<Int32>? = nil, overwrite: Bool = false
) {
    let dh = d / heads, ld = 3 * d
    let scale = 1 / Float(dh).squareRoot()
    let chunks = Swift.max(1, Threads.count)
    // per chunk: dP [L, L], V^T [dh, L]; the sparse path's P rows [L, L], Q, dO and dQ rows [L, dh]
    let perChunk = 2 * L * L + dh * L + 3 * L * dh
    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: chunks * perChunk)
    let rowsScratch = UnsafeMutablePointer<Int32>.allocate(capacity: chunks * Swift.max(L, 1))
    defer { scratch.deallocate(); rowsScratch.deallocate() }
    parallelFor(sequences, grain: Swift.max(1, 16_384 / Swift.max(L * L * dh, 1))) { c, range in
        let dp = scratch + c * perChunk, vT = dp + L * L
        let pRows = vT + dh * L, qRows = pRows + L * L, dORows = qRows + L * dh, dqRows = dORows + L * dh
        let nonzero = rowsScratch + c * Swift.max(L, 1)
        for u in range {
            let n = Int(lengths[u])
            let row = offsets.map { Int($0[u]) } ?? u * L
            let base = qkv + row * ld, dbase = dqkv + row * ld, dO = dout + row * d
            if overwrite && offsets == nil && n < L { (dbase + n * ld).update(repeating: 0, count: (L - n) * ld) }
            if n == 0 { continue }
            var m = 0
            for i in 0..<n where !isZeroRow(dO + i * d, count: d) { nonzero[m] = Int32(i); m += 1 }
            if m == 0 {
                if overwrite { dbase.update(repeating: 0, count: n * ld) }
                continue
            }
            let beta: Float = overwrite ? 0 : 1
            for h in 0..<heads {
                let q = base + h * dh, k = base + d + h * dh, v = base + 2 * d + h * dh
                let dq = dbase + h * dh, dk = dbase + d + h * dh, dv = dbase + 2 * d + h * dh
                let p = probs + (u * heads + h) * L * L
                transposeInto(vT, v, ldb: ld, n: n, k: dh)
                // the m query rows the products run on: all n in place, or the nonzero ones
                // gathered (P, Q and dO rows) with dQ scattered back at the end
                let sparse = m < n
                if sparse {
                    for i in 0..<m {
                        let t = Int(nonzero[i])
                        (pRows + i * n).update(from: p + t * L, count: n)
                        (qRows + i * dh).update(from: q + t * ld, count: dh)
                        (dORows + i * dh).update(from: dO + t * d + h * dh, count: dh)
                    }
                }
                let (pm, ldp) = sparse ? (UnsafePointer(pRows), n) : (p, L)
                let (qm, ldq) = sparse ? (UnsafePointer(qRows), dh) : (q, ld)
                let (dOm, ldo) = sparse ? (UnsafePointer(dORows), dh) : (dO + h * dh, d)
                smallProduct(dp, ldc: n, dOm, lda: ldo, vT, ldb: n, m: m, n: n, k: dh, alpha: 1)
                smallProduct(dv, ldc: ld, pm, lda: ldp, transA: true, dOm, ldb: ldo, m: n, n: dh, k: m, beta: beta)
                for i in 0..<m { softmaxGradientRow(dp + i * n, probabilities: pm + i * ldp, n: n) }
                if sparse {
                    smallProduct(dqRows, ldc: dh, dp, lda: n, k, ldb: ld, m: m, n: dh, k: n, alpha: scale)
                    if overwrite { for i in 0..<n { (dq + i * ld).update(repeating: 0, count: dh) } }
                    for i in 0..<m { accumulate(dq + Int(nonzero[i]) * ld, dqRows + i * dh, count: dh) }
                } else {
                    smallProduct(dq, ldc: ld, dp, lda: n, k, ldb: ld, m: n, n: dh, k: n, alpha: scale, beta: beta)
                }
                smallProduct(dk, ldc: ld, dp, lda: n, transA: true, qm, ldb: ldq, m: n, n: dh, k: m, alpha: scale, beta: beta)
            }
        }
    }
}

/// Append-fusion attention forward (SPEC 2.2): candidate token b (qkvY [B, 3d])
/// attends to the first lengths[u] keys/values of its user u = userIndex[b]
/// (qkvUser [U, L, 3d]) and to itself. out [B, d]; probs [B, heads, L + 1]
/// (entries 0..<n: user keys, entry n: itself), or nil when no backward needs them.
///
/// With a `userIndex` (request-level broadcasting: many candidates per user), each run of
/// consecutive candidates of one user and each head is two products against the user's
/// keys and values, scores [r, n] = scale Q K_u^T and out [r, dh] = P V_u, plus the
/// candidates' own key and value; without `probs` the run is taken `appendBlockRows(L)`
/// candidates at a time, so their scores stay in a per-thread scratch in cache (at L 1024 a
/// run's [r, L + 1] probabilities per head would stream through memory three times). Without
/// a `userIndex` (every candidate its own user), each candidate is a loop over its n + 1 keys.
public func appendAttentionForward(
    _ out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>?, qkvY: UnsafePointer<Float>,
    qkvUser: UnsafePointer<Float>, lengths: UnsafePointer<Int32>, userIndex: UnsafePointer<Int32>?,
    candidates B: Int, length L: Int, dim d: Int, heads: Int, offsets: UnsafePointer<Int32>? = nil
) {
    let dh = d / heads, ld = 3 * d, lp = L + 1, ldp = heads * lp
    let scale = 1 / Float(dh).squareRoot()
    func userRows(_ u: Int) -> UnsafePointer<Float> { qkvUser + (offsets.map { Int($0[u]) } ?? u * L) * ld }
    if let userIndex {
        let blockRows = probs == nil ? appendBlockRows(length: L) : B
        parallelFor(B, grain: Swift.max(1, 65_536 / Swift.max(lp * d, 1))) { _, range in
            let ldk = scratchStride(L), lds = scratchStride(lp)
            let kT = UnsafeMutablePointer<Float>.allocate(capacity: dh * ldk)
            let scratch = probs == nil ? UnsafeMutablePointer<Float>.allocate(capacity: Swift.min(blockRows, range.count) * lds) : nil
            let inverseSums = UnsafeMutablePointer<Float>.allocate(capacity: Swift.min(blockRows, range.count))
            defer { kT.deallocate(); scratch?.deallocate(); inverseSums.deallocate() }
            forEachUserRun(userIndex, range) { u, b0, m in
                let n = Int(lengths[u]), user = userRows(u)
                for h in 0..<heads {
                    transposeInto(kT, user + d + h * dh, ldb: ld, n: n, k: dh, ldt: ldk)
                    for r0 in stride(from: 0, to: m, by: blockRows) {
                        let rows = Swift.min(blockRows, m - r0), b = b0 + r0
                        let p = probs.map { $0 + b * ldp + h * lp } ?? scratch!, ldc = probs == nil ? lds : ldp
                        let y = qkvY + b * ld + h * dh, o = out + b * d + h * dh
                        smallProduct(p, ldc: ldc, y, lda: ld, kT, ldb: ldk, m: rows, n: n, k: dh, alpha: scale)
                        // exp(s - max) per row; the output row is divided by the row's sum afterwards
                        // (dh multiplies instead of a pass over the n + 1 probabilities), and so are
                        // the saved probabilities, after P V
                        for r in 0..<rows {
                            let q = y + r * ld, k = q + d
                            var s: Float = 0
                            for t in 0..<dh { s += q[t] * k[t] }
                            p[r * ldc + n] = s * scale
                            inverseSums[r] = 1 / expRowMaxAndSum(p + r * ldc, n: n + 1).sum
                        }
                        smallProduct(o, ldc: d, p, lda: ldc, user + 2 * d + h * dh, ldb: ld, m: rows, n: dh, k: n)
                        for r in 0..<rows {
                            axpy(o + r * d, y + r * ld + 2 * d, alpha: p[r * ldc + n], count: dh)
                            Kernels.scale(o + r * d, by: inverseSums[r], count: dh)
                            if probs != nil { Kernels.scale(p + r * ldc, by: inverseSums[r], count: n + 1) }
                        }
                    }
                }
            }
        }
        return
    }
    parallelFor(B, grain: Swift.max(1, 8192 / Swift.max(L * dh, 1))) { _, range in
        let scratch = probs == nil ? UnsafeMutablePointer<Float>.allocate(capacity: lp) : nil
        defer { scratch?.deallocate() }
        for b in range {
            let n = Int(lengths[b])
            let y = qkvY + b * ld, user = userRows(b)
            for h in 0..<heads {
                let q = y + h * dh
                let p = probs.map { $0 + b * ldp + h * lp } ?? scratch!
                var mx = -Float.infinity
                for j in 0...n {
                    let k = j < n ? user + j * ld + d + h * dh : y + d + h * dh
                    var s: Float = 0
                    for t in 0..<dh { s += q[t] * k[t] }
                    s *= scale
                    p[j] = s
                    mx = Swift.max(mx, s)
                }
                var sum: Float = 0
                for j in 0...n { let e = expf(p[j] - mx); p[j] = e; sum += e }
                let inv = 1 / sum
                let o = out + b * d + h * dh
                for t in 0..<dh { o[t] = 0 }
                for j in 0...n {
                    p[j] *= inv
                    let v = j < n ? user + j * ld + 2 * d + h * dh : y + 2 * d + h * dh
                    let w = p[j]
                    for t in 0..<dh { o[t] += w * v[t] }
                }
            }
        }
    }
}

/// Candidates per block of `appendAttentionForward` without saved probabilities: their
/// scores [rows, L + 1] stay within about 128 KiB (a quarter of a core's L2), 8 to 64 rows.
@inlinable public func appendBlockRows(length L: Int) -> Int { Swift.min(64, Swift.max(8, 32_768 / (L + 1))) }

/// Append-fusion attention backward: accumulates into dqkvY [B, 3d] and dqkvUser [U, L, 3d].
/// Runs serially when several candidates share a user (their user gradients add up).
public func appendAttentionBackward(
    dqkvY: UnsafeMutablePointer<Float>?, dqkvUser: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
    probs: UnsafePointer<Float>, qkvY: UnsafePointer<Float>, qkvUser: UnsafePointer<Float>,
    lengths: UnsafePointer<Int32>, userIndex: UnsafePointer<Int32>?, candidates B: Int, length L: Int, dim d: Int, heads: Int,
    offsets: UnsafePointer<Int32>? = nil
) {
    let dh = d / heads, ld = 3 * d
    let scale = 1 / Float(dh).squareRoot()
    let body: (Int, Range<Int>) -> Void = { _, range in
        var dp = [Float](repeating: 0, count: L + 1)
        for b in range {
            let u = userIndex.map { Int($0[b]) } ?? b
            let n = Int(lengths[u])
            let urow = offsets.map { Int($0[u]) } ?? u * L
            let y = qkvY + b * ld, user = qkvUser + urow * ld
            let dO = dout + b * d
            for h in 0..<heads {
                let p = probs + (b * heads + h) * (L + 1)
                let q = y + h * dh, g = dO + h * dh
                var dot: Float = 0
                for j in 0...n {
                    let v = j < n ? user + j * ld + 2 * d + h * dh : y + 2 * d + h * dh
                    var s: Float = 0
                    for t in 0..<dh { s += g[t] * v[t] }
                    dp[j] = s
                    dot += p[j] * s
                    // dV_j += p_j dO
                    let dv: UnsafeMutablePointer<Float>? = j < n ? dqkvUser.map { $0 + urow * ld + j * ld + 2 * d + h * dh }
                                                                 : dqkvY.map { $0 + b * ld + 2 * d + h * dh }
                    if let dv { let w = p[j]; for t in 0..<dh { dv[t] += w * g[t] } }
                }
                for j in 0...n {
                    let ds = p[j] * (dp[j] - dot) * scale
                    let k = j < n ? user + j * ld + d + h * dh : y + d + h * dh
                    if let dqkvY { let dq = dqkvY + b * ld + h * dh; for t in 0..<dh { dq[t] += ds * k[t] } }
                    let dk: UnsafeMutablePointer<Float>? = j < n ? dqkvUser.map { $0 + urow * ld + j * ld + d + h * dh }
                                                                 : dqkvY.map { $0 + b * ld + d + h * dh }
                    if let dk { for t in 0..<dh { dk[t] += ds * q[t] } }
                }
            }
        }
    }
    if userIndex == nil { parallelFor(B, grain: 64, body) } else { body(0, 0..<B) }
}

/// Target attention of late fusion (SPEC 2.2), the user's tokens read in place: candidate b
/// with user u = userIndex[b] and n = lengths[u] valid tokens gets
/// out[b] = sum_{i < n} softmax_i(scale * q[b] . x[u, i]) x[u, i], and 0 when n == 0.
/// q [B, d], x [U, L, d], out [B, d]; `scores` [B, L] is scratch. Each run of consecutive
/// candidates of one user is two products, scores [r, n] = scale Q X_u^T and out [r, d] = P X_u,
/// with a vectorised softmax between (naive twin: `naiveTargetAttention`).
public func targetAttentionForward(
    _ out: UnsafeMutablePointer<Float>, query q: UnsafePointer<Float>, users x: UnsafePointer<Float>,
    lengths: UnsafePointer<Int32>, userIndex: UnsafePointer<Int32>, candidates B: Int, length L: Int, dim d: Int, scale: Float,
    scores: UnsafeMutablePointer<Float>
) {
    parallelFor(B, grain: Swift.max(1, 131_072 / Swift.max(L * d, 1))) { _, range in
        let scores = scores + range.lowerBound * L
        forEachUserRun(userIndex, range) { u, b0, m in
            let n = Int(lengths[u]), xu = x + u * L * d
            if n == 0 { (out + b0 * d).update(repeating: 0, count: m * d); return }
            gemm(scores, ldc: n, q + b0 * d, lda: d, xu, ldb: d, m: m, n: n, k: d, transB: true, alpha: scale)
            for r in 0..<m { softmaxRow(scores + r * n, n: n) }
            gemm(out + b0 * d, ldc: d, scores, lda: n, xu, ldb: d, m: m, n: d, k: n)
        }
    }
}

/// Calls `body(u, first, count)` for each maximal run of consecutive b in `range` with one
/// user u = userIndex[b] (candidates first ..< first + count).
func forEachUserRun(_ userIndex: UnsafePointer<Int32>, _ range: Range<Int>, _ body: (Int, Int, Int) -> Void) {
    var b0 = range.lowerBound
    while b0 < range.upperBound {
        var b1 = b0 + 1
        while b1 < range.upperBound && userIndex[b1] == userIndex[b0] { b1 += 1 }
        body(Int(userIndex[b0]), b0, b1 - b0)
        b0 = b1
    }
}

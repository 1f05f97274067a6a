import Foundation

// Blocked self-attention: the same result and qkv/out layouts as `attentionForward` /
// `attentionBackward` (Attention.swift), without the [L, L] probabilities per sequence and
// head. The forward takes query rows `block` at a time; a block's scores S [r, n] live in
// per-thread scratch only while they are used, and it keeps one number per query row and
// head, the log-sum-exp lse_i = log sum_j exp(s_ij) (s_ij = scale q_i . k_j), from which the
// backward recomputes P = exp(S - lse) one block x block tile at a time. Memory: O(block * L)
// per thread instead of O(heads * L^2) per sequence; cost: one more Q K^T product and exp
// pass in the backward.

/// Nominal query rows per block of the blocked attention forward (`queryBlockRows` balances
/// them to block ..< 2 block rows; scratch per thread: [2 block, scratchStride(L)]), and the
/// backward's query and key block.
public let attentionBlockRows = 64

/// The forward's block at sequence length L: `attentionBlockRows`, fewer for long sequences
/// (16 at L 1024) so a block's scores, [2 block, L] floats, stay well inside the per-core L2
/// instead of streaming through memory.
public func attentionBlock(length L: Int) -> Int { Swift.min(attentionBlockRows, Swift.max(8, 16_384 / Swift.max(L, 1))) }

/// Whether self-attention over sequences of at most L positions runs blocked (keeping only
/// lse) rather than saving the probabilities [U, heads, L, L]. Below it the probabilities of
/// a whole batch are small (L = 128, 512 sequences, 2 heads: 64 MiB) and saving them skips
/// the backward's recomputation; above it they grow as L^2 (L = 1024: 4 GiB per layer).
public func attentionRunsBlocked(length L: Int) -> Bool { L > 2 * attentionBlockRows }

/// Blocked self-attention forward. out [U, L, d] (or packed [T, d] with `offsets`, as
/// `attentionForward`); lse [rows, heads] with rows = U * L (padded) or T (packed): entry
/// (row of query i, head h) = log sum_{j < n} exp(scale q_i . k_j); rows past a sequence's
/// length are not written; lse nil (inference: no backward reads it): not computed. Work is
/// split over (sequence, query block) pairs, so one long sequence (serving one user) also
/// uses every thread.
public func blockedAttentionForward(
    _ out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>?,
    qkv: UnsafePointer<Float>, lengths: UnsafePointer<Int32>, sequences U: Int, length L: Int, dim d: Int, heads: Int,
    offsets: UnsafePointer<Int32>? = nil, block: Int? = nil
) {
    let block = block ?? attentionBlock(length: L)
    let dh = d / heads, ld = 3 * d
    let scale = 1 / Float(dh).squareRoot()
    // tasks: (sequence, first query row) for every block of every non-empty sequence
    var tasks: [(u: Int32, i0: Int32)] = []
    tasks.reserveCapacity(U * ((L + block - 1) / Swift.max(block, 1)))
    for u in 0..<U {
        let n = Int(lengths[u])
        if offsets == nil && n < L { (out + u * L * d + n * d).update(repeating: 0, count: (L - n) * d) }
        let rows = queryBlockRows(n, block: block)
        for i0 in stride(from: 0, to: n, by: rows) { tasks.append((Int32(u), Int32(i0))) }
    }
    // every sequence's keys transposed once per head, shared by all its query blocks:
    // [dh, n] with row stride scratchStride(n) at keysT + keysAt[u] + h * dh * scratchStride(n)
    var keysAt = [Int](repeating: 0, count: U + 1)
    for u in 0..<U { keysAt[u + 1] = keysAt[u] + heads * dh * scratchStride(Int(lengths[u])) }
    let keysT = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(1, keysAt[U]))
    defer { keysT.deallocate() }
    parallelFor(U, grain: Swift.max(1, 4_096 / Swift.max(L * d, 1))) { _, range in
        for u in range {
            let n = Int(lengths[u]), row = offsets.map { Int($0[u]) } ?? u * L, ldk = scratchStride(n)
            for h in 0..<heads { transposeInto(keysT + keysAt[u] + h * dh * ldk, qkv + row * ld + d + h * dh, ldb: ld, n: n, k: dh, ldt: ldk) }
        }
    }
    tasks.withUnsafeBufferPointer { tasks in
        parallelFor(tasks.count, grain: Swift.max(1, 32_768 / Swift.max(block * L * d, 1))) { _, range in
            let s = UnsafeMutablePointer<Float>.allocate(capacity: 2 * block * scratchStride(L))
            let inverseSums = UnsafeMutablePointer<Float>.allocate(capacity: 2 * block)
            defer { s.deallocate(); inverseSums.deallocate() }
            for t in range {
                let u = Int(tasks[t].u), i0 = Int(tasks[t].i0), n = Int(lengths[u]), ldn = scratchStride(n)
                let r = Swift.min(queryBlockRows(n, block: block), n - i0)
                let row = (offsets.map { Int($0[u]) } ?? u * L)
                let base = qkv + row * ld
                for h in 0..<heads {
                    let q = base + i0 * ld + h * dh, v = base + 2 * d + h * dh
                    smallProduct(s, ldc: ldn, q, lda: ld, keysT + keysAt[u] + h * dh * ldn, ldb: ldn, m: r, n: n, k: dh, alpha: scale)
                    // exp(s - max) per row; P V is divided by the row's sum afterwards (r x dh
                    // multiplies instead of a pass over the r x n probabilities)
                    for i in 0..<r {
                        let (mx, sum) = expRowMaxAndSum(s + i * ldn, n: n)
                        if let lse { lse[(row + i0 + i) * heads + h] = mx + logf(sum) }
                        inverseSums[i] = 1 / sum
                    }
                    let o = out + (row + i0) * d + h * dh
                    smallProduct(o, ldc: d, s, lda: ldn, v, ldb: ld, m: r, n: dh, k: n)
                    for i in 0..<r { Kernels.scale(o + i * d, by: inverseSums[i], count: dh) }
                }
            }
        }
    }
}

/// Blocked self-attention backward: accumulates into dqkv (layout of qkv) from dout, with the
/// forward's output `out` and lse. Per sequence and head, keys are taken `block` at a time
/// (outer loop) and query rows `block` at a time (inner loop), as FlashAttention-2's backward:
/// S = scale Q_r K_c^T, P = exp(S - lse), dV_c += P^T dO_r, dP = dO_r V_c^T,
/// dS = P (dP - D), dQ_r += scale dS K_c, dK_c += scale dS^T Q_r, where
/// D_i = rowsum(P dP)_i = dO_i . O_i (the forward's output row, so no pass over a whole score
/// row is needed). dK_c and dV_c stay in a [block, d_h] scratch over all query blocks and are
/// added to dqkv once; every product and score tile is at most block x block (in L1), and
/// every product's inner dimension is d_h or a block (not 16 rows of a 1024-long row).
/// Sequences are split over the threads (each owns its dK, dV).
///
/// Query rows whose dO row is exactly zero contribute exactly nothing (their dP, dS and the
/// dV, dQ, dK terms are all zero), so when some rows of a sequence are zero the kernel runs
/// the same products on the m nonzero rows only, gathered into contiguous blocks (dQ
/// scattered back). This is the last Transformer layer's case: its readout (max-pool and the
/// K most recent positions) and the token-wise layers after attention leave at most
/// d + K nonzero rows per sequence, so at L 1024 that layer's attention backward costs
/// m / n of the dense one.
public func blockedAttentionBackward(
    dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, out: UnsafePointer<Float>, lse: UnsafePointer<Float>,
    qkv: UnsafePointer<Float>, lengths: UnsafePointer<Int32>, sequences U: Int, length L: Int, dim d: Int, heads: Int,
    offsets: UnsafePointer<Int32>? = nil, block: Int? = nil
) {
    let block = Swift.max(1, block ?? attentionBlockRows)
    let dh = d / heads, ld = 3 * d
    let scale = 1 / Float(dh).squareRoot()
    parallelFor(U, grain: Swift.max(1, 16_384 / Swift.max(L * L * dh, 1))) { _, range in
        let lds = scratchStride(block)
        // a tile's scores / probabilities and dP / dS [block, lds]; one key block's K^T and
        // V^T [dh, lds] and its dK, dV [block, dh]; the gathered rows (Q, dO, dQ [L, dh],
        // lse and D [L])
        let s = UnsafeMutablePointer<Float>.allocate(capacity: 2 * block * lds + 2 * dh * lds + 2 * block * dh + 3 * L * dh + 2 * L)
        defer { s.deallocate() }
        let dp = s + block * lds, kT = dp + block * lds, vT = kT + dh * lds, dkBlock = vT + dh * lds, dvBlock = dkBlock + block * dh
        let qRows = dvBlock + block * dh, dORows = qRows + L * dh, dqRows = dORows + L * dh, lseRows = dqRows + L * dh
        let dRows = lseRows + L
        let nonzero = UnsafeMutablePointer<Int32>.allocate(capacity: Swift.max(L, 1))
        defer { nonzero.deallocate() }
        for u in range {
            let n = Int(lengths[u])
            if n == 0 { continue }
            let row = offsets.map { Int($0[u]) } ?? u * L
            let base = qkv + row * ld, dbase = dqkv + row * ld, dO = dout + row * d, o = out + row * d
            var m = 0
            for i in 0..<n where !isZeroRow(dO + i * d, count: d) { nonzero[m] = Int32(i); m += 1 }
            if m == 0 { continue }
            let sparse = m < n
            for h in 0..<heads {
                let q = base + h * dh, k = base + d + h * dh, v = base + 2 * d + h * dh
                let dq = dbase + h * dh, dk = dbase + d + h * dh, dv = dbase + 2 * d + h * dh
                // the m query rows the products run on: all n in place, or the nonzero ones
                // gathered (Q, dO and lse rows) with dQ summed in a scratch and scattered back
                for i in 0..<m {
                    let t = sparse ? Int(nonzero[i]) : i
                    dRows[i] = dotProduct(dO + t * d + h * dh, o + t * d + h * dh, count: dh)
                    if sparse {
                        (qRows + i * dh).update(from: q + t * ld, count: dh)
                        (dORows + i * dh).update(from: dO + t * d + h * dh, count: dh)
                        lseRows[i] = lse[(row + t) * heads + h]
                    }
                }
                if sparse { dqRows.update(repeating: 0, count: m * dh) }
                let (qm, ldq) = sparse ? (UnsafePointer(qRows), dh) : (q, ld)
                let (dOm, ldo) = sparse ? (UnsafePointer(dORows), dh) : (dO + h * dh, d)
                let (lseM, lseStride) = sparse ? (UnsafePointer(lseRows), 1) : (lse + row * heads + h, heads)
                let (dqm, lddq) = sparse ? (dqRows, dh) : (dq, ld)
                for j0 in stride(from: 0, to: n, by: block) {
                    let c = Swift.min(block, n - j0)
                    transposeInto(kT, k + j0 * ld, ldb: ld, n: c, k: dh, ldt: lds)
                    transposeInto(vT, v + j0 * ld, ldb: ld, n: c, k: dh, ldt: lds)
                    dkBlock.update(repeating: 0, count: c * dh)
                    dvBlock.update(repeating: 0, count: c * dh)
                    for i0 in stride(from: 0, to: m, by: block) {
                        let r = Swift.min(block, m - i0)
                        smallProduct(s, ldc: lds, qm + i0 * ldq, lda: ldq, kT, ldb: lds, m: r, n: c, k: dh, alpha: scale)
                        expShiftedRows(s, ld: lds, rows: r, n: c, by: lseM + i0 * lseStride, stride: lseStride)
                        smallProduct(dvBlock, ldc: dh, s, lda: lds, transA: true, dOm + i0 * ldo, ldb: ldo, m: c, n: dh, k: r, beta: 1)
                        smallProduct(dp, ldc: lds, dOm + i0 * ldo, lda: ldo, vT, ldb: lds, m: r, n: c, k: dh)
                        for i in 0..<r { softmaxGradientRow(dp + i * lds, probabilities: s + i * lds, n: c, rowDot: dRows[i0 + i]) }
                        smallProduct(dqm + i0 * lddq, ldc: lddq, dp, lda: lds, k + j0 * ld, ldb: ld, m: r, n: dh, k: c, alpha: scale, beta: 1)
                        smallProduct(dkBlock, ldc: dh, dp, lda: lds, transA: true, qm + i0 * ldq, ldb: ldq, m: c, n: dh, k: r,
                                     alpha: scale, beta: 1)
                    }
                    for j in 0..<c {
                        accumulate(dk + (j0 + j) * ld, dkBlock + j * dh, count: dh)
                        accumulate(dv + (j0 + j) * ld, dvBlock + j * dh, count: dh)
                    }
                }
                if sparse {
                    for i in 0..<m { accumulate(dq + Int(nonzero[i]) * ld, dqRows + i * dh, count: dh) }
                }
            }
        }
    }
}

/// Query rows per block of a sequence of n valid positions: n split into max(1, n / block)
/// blocks of equal size (rounded up), so every block has block ..< 2 block rows (n >= block)
/// and no block is a short remainder that repeats the per-block work (the keys' transpose)
/// for a few rows (at least 1, also for n = 0). Scratch per thread is therefore sized for 2 block rows.
@inlinable public func queryBlockRows(_ n: Int, block: Int) -> Int {
    let blocks = Swift.max(1, n / Swift.max(block, 1))
    return Swift.max(1, (n + blocks - 1) / blocks)
}

/// Whether the `count` floats at x are all exactly zero (+0 or -0).
@inlinable public func isZeroRow(_ x: UnsafePointer<Float>, count: Int) -> Bool {
    // eight lanes at a time, one compare and one mask test (masking the bits as an integer
    // vector and comparing it with `!=` compiled to a test per pair of lanes)
    var i = 0
    while i + 8 <= count {
        if !all(load8(x + i) .== 0) { return false }
        i += 8
    }
    for j in i..<count where x[j] != 0 { return false }
    return true
}

/// dp_j = p_j (dp_j - rowDot) in place over n entries (SIMD8): the softmax backward of one row
/// when rowDot = sum_k p_k dp_k is known beforehand (blocked attention: dO_i . O_i).
@inlinable public func softmaxGradientRow(_ dp: UnsafeMutablePointer<Float>, probabilities p: UnsafePointer<Float>, n: Int,
                                          rowDot: Float) {
    let dot8 = SIMD8<Float>(repeating: rowDot)
    var i = 0
    while i + 8 <= n { store8(load8(p + i) * (load8(dp + i) - dot8), dp + i); i += 8 }
    for j in i..<n { dp[j] = p[j] * (dp[j] - rowDot) }
}

/// p[i, j] = exp(p[i, j] - shift[i stride]) in place over rows x n entries (row stride ld;
/// every exponent <= 88, as a score minus its row's log-sum-exp is, `simdExpBelowOverflow`):
/// a tile's probabilities from its scores and each row's log-sum-exp, in one call (a call per
/// row of 64 cost a third more per entry than rows of 1,024 did).
@inlinable public func expShiftedRows(_ p: UnsafeMutablePointer<Float>, ld: Int, rows: Int, n: Int,
                                      by shift: UnsafePointer<Float>, stride: Int) {
    let n8 = n & ~7
    for i in 0..<rows {
        let row = p + i * ld, m8 = SIMD8<Float>(repeating: shift[i * stride])
        var j = 0
        while j < n8 { store8(simdExpBelowOverflow(load8(row + j) - m8), row + j); j += 8 }
        if j < n {
            let e = simdExpBelowOverflow(tail8(row + j, n - j) - m8)
            for l in 0..<(n - j) { row[j + l] = e[l] }
        }
    }
}

/// sum_t a_t b_t over `count` floats (SIMD8, then the tail).
@inlinable public func dotProduct(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
    var s8 = SIMD8<Float>(repeating: 0)
    var i = 0
    while i + 8 <= count { s8 = s8.addingProduct(load8(a + i), load8(b + i)); i += 8 }
    var s = s8.sum()
    for j in i..<count { s += a[j] * b[j] }
    return s
}

/// The softmax backward of one row in place: dp_j = p_j (dp_j - sum_k p_k dp_k) (SIMD8).
@inlinable public func softmaxGradientRow(_ dp: UnsafeMutablePointer<Float>, probabilities p: UnsafePointer<Float>, n: Int) {
    softmaxGradientRow(dp, probabilities: p, n: n, rowDot: dotProduct(p, dp, count: n))
}

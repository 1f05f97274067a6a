import Foundation

// Blocked self-attention: the same result and qkv/out layouts as `attentionForward` /
// `attentionBackward` (Attention.swift), without the [L, L] probabilities per sequence and
// head. Query rows are taken `block` at a time; a block's scores S [r, n] live in per-thread
// scratch only while they are used, and the forward keeps one number per query row and
// head, the log-sum-exp lse_i = log sum_j exp(s_ij) (s_ij = scale q_i . k_j), from which the
// backward recomputes P = exp(S - lse). Memory: O(block * L) per thread instead of
// O(heads * L^2) per sequence; cost: one more Q K^T product and exp pass in the backward.

/// Nominal query rows per block of the blocked attention kernels (`queryBlockRows` balances
/// them to block ..< 2 block rows; scratch per thread: 2 x [2 block, scratchStride(L)]).
public let attentionBlockRows = 64

/// The block the kernels use at sequence length L: `attentionBlockRows`, fewer for long
/// sequences (16 at L 1024) so a block's scores and their gradient, 2 x [2 block, L]
/// floats, stay within about 256 KiB (the per-core L2) instead of streaming through memory.
public func attentionBlock(length L: Int) -> Int { Swift.min(attentionBlockRows, Swift.max(8, 16_384 / Swift.max(L, 1))) }

/// Whether self-attention over sequences of at most L positions runs blocked (keeping only
/// lse) rather than saving the probabilities [U, heads, L, L]. Below it the probabilities of
/// a whole batch are small (L = 128, 512 sequences, 2 heads: 64 MiB) and saving them skips
/// the backward's recomputation; above it they grow as L^2 (L = 1024: 4 GiB per layer).
public func attentionRunsBlocked(length L: Int) -> Bool { L > 2 * attentionBlockRows }

/// Blocked self-attention forward. out [U, L, d] (or packed [T, d] with `offsets`, as
/// `attentionForward`); lse [rows, heads] with rows = U * L (padded) or T (packed): entry
/// (row of query i, head h) = log sum_{j < n} exp(scale q_i . k_j); rows past a sequence's
/// length are not written. Work is split over (sequence, query block) pairs, so one long
/// sequence (serving one user) also uses every thread.
public func blockedAttentionForward(
    _ out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>,
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
                        lse[(row + i0 + i) * heads + h] = mx + logf(sum)
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

/// Blocked self-attention backward: accumulates into dqkv (layout of qkv) from dout, with
/// the forward's lse. Per sequence, head and query block: S = scale Q_b K^T, P = exp(S - lse),
/// dP = dO_b V^T, dV += P^T dO_b, dS = P (dP - rowsum(P dP)), dQ_b += scale dS K,
/// dK += scale dS^T Q_b (dK and dV of a sequence and head summed over its blocks in a scratch,
/// then added to dqkv). Sequences are split over the threads (each owns its dK, dV).
///
/// Query rows whose dO row is exactly zero contribute exactly nothing (their dP, dS and the
/// dV, dQ, dK terms are all zero), so when some rows of a sequence are zero the kernel runs
/// the same products on the m nonzero rows only, gathered into contiguous blocks (dQ
/// scattered back). This is the last Transformer layer's case: its readout (max-pool and the
/// K most recent positions) and the token-wise layers after attention leave at most
/// d + K nonzero rows per sequence, so at L 1024 that layer's attention backward costs
/// m / n of the dense one.
public func blockedAttentionBackward(
    dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, lse: UnsafePointer<Float>,
    qkv: UnsafePointer<Float>, lengths: UnsafePointer<Int32>, sequences U: Int, length L: Int, dim d: Int, heads: Int,
    offsets: UnsafePointer<Int32>? = nil, block: Int? = nil
) {
    let block = block ?? attentionBlock(length: L)
    let dh = d / heads, ld = 3 * d
    let scale = 1 / Float(dh).squareRoot()
    parallelFor(U, grain: Swift.max(1, 16_384 / Swift.max(L * L * dh, 1))) { _, range in
        let ldL = scratchStride(L)
        let s = UnsafeMutablePointer<Float>.allocate(capacity: 4 * block * ldL + 2 * dh * ldL + 4 * L * dh + 2 * block * dh + L)
        defer { s.deallocate() }
        let dp = s + 2 * block * ldL, kT = dp + 2 * block * ldL, vT = kT + dh * ldL
        // one head's dK and dV [n, dh], contiguous while the query blocks add into them (in
        // dqkv their rows are 3d floats apart and, with q, k, v and the scratch above, one
        // sequence's working set outgrew L2), then added to dqkv once
        let dkHead = vT + dh * ldL, dvHead = dkHead + L * dh
        // the sparse path's gathered Q rows, dO rows [m, dh], their lse [m] and a block's dQ
        let qRows = dvHead + L * dh, dORows = qRows + L * dh, dqRows = dORows + L * dh, lseRows = dqRows + 2 * block * dh
        let nonzero = UnsafeMutablePointer<Int32>.allocate(capacity: Swift.max(L, 1))
        defer { nonzero.deallocate() }
        for u in range {
            let n = Int(lengths[u]), ldn = scratchStride(n)
            if n == 0 { continue }
            let row = offsets.map { Int($0[u]) } ?? u * L
            let base = qkv + row * ld, dbase = dqkv + row * ld, dO = dout + row * d
            var m = 0
            for i in 0..<n where !isZeroRow(dO + i * d, count: d) { nonzero[m] = Int32(i); m += 1 }
            if m == 0 { continue }
            let rows = queryBlockRows(m, block: block)
            for h in 0..<heads {
                let q = base + h * dh, k = base + d + h * dh, v = base + 2 * d + h * dh
                let dq = dbase + h * dh, dk = dbase + d + h * dh, dv = dbase + 2 * d + h * dh
                transposeInto(kT, k, ldb: ld, n: n, k: dh, ldt: ldn)
                transposeInto(vT, v, ldb: ld, n: n, k: dh, ldt: ldn)
                dkHead.update(repeating: 0, count: n * dh)
                dvHead.update(repeating: 0, count: n * dh)
                // the m query rows the products run on: all n in place, or the nonzero ones
                // gathered (Q, dO and lse rows) with dQ scattered back per block
                let sparse = m < n
                if sparse {
                    for i in 0..<m {
                        let t = Int(nonzero[i])
                        (qRows + i * dh).update(from: q + t * ld, count: dh)
                        (dORows + i * dh).update(from: dO + t * d + h * dh, count: dh)
                        lseRows[i] = lse[(row + t) * heads + h]
                    }
                }
                let (qm, ldq) = sparse ? (UnsafePointer(qRows), dh) : (q, ld)
                let (dOm, ldo) = sparse ? (UnsafePointer(dORows), dh) : (dO + h * dh, d)
                let (lseM, lseStride) = sparse ? (UnsafePointer(lseRows), 1) : (lse + row * heads + h, heads)
                for i0 in stride(from: 0, to: m, by: rows) {
                    let r = Swift.min(rows, m - i0)
                    smallProduct(s, ldc: ldn, qm + i0 * ldq, lda: ldq, kT, ldb: ldn, m: r, n: n, k: dh, alpha: scale)
                    for i in 0..<r { expShifted(s + i * ldn, n: n, by: lseM[(i0 + i) * lseStride]) }
                    smallProduct(dp, ldc: ldn, dOm + i0 * ldo, lda: ldo, vT, ldb: ldn, m: r, n: n, k: dh, alpha: 1)
                    smallProduct(dvHead, ldc: dh, s, lda: ldn, transA: true, dOm + i0 * ldo, ldb: ldo, m: n, n: dh, k: r, beta: 1)
                    for i in 0..<r { softmaxGradientRow(dp + i * ldn, probabilities: s + i * ldn, n: n) }
                    if sparse {
                        smallProduct(dqRows, ldc: dh, dp, lda: ldn, k, ldb: ld, m: r, n: dh, k: n, alpha: scale)
                        for i in 0..<r { accumulate(dq + Int(nonzero[i0 + i]) * ld, dqRows + i * dh, count: dh) }
                    } else {
                        smallProduct(dq + i0 * ld, ldc: ld, dp, lda: ldn, k, ldb: ld, m: r, n: dh, k: n, alpha: scale, beta: 1)
                    }
                    smallProduct(dkHead, ldc: dh, dp, lda: ldn, transA: true, qm + i0 * ldq, ldb: ldq, m: n, n: dh, k: r, alpha: scale, beta: 1)
                }
                for j in 0..<n {
                    accumulate(dk + j * ld, dkHead + j * dh, count: dh)
                    accumulate(dv + j * ld, dvHead + j * dh, count: dh)
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
    for i in 0..<count where x[i] != 0 { return false }
    return true
}

/// The softmax backward of one row in place: dp_j = p_j (dp_j - sum_k p_k dp_k) (SIMD8).
@inlinable public func softmaxGradientRow(_ dp: UnsafeMutablePointer<Float>, probabilities p: UnsafePointer<Float>, n: Int) {
    var d8 = SIMD8<Float>(repeating: 0)
    var i = 0
    while i + 8 <= n { d8 = d8.addingProduct(load8(p + i), load8(dp + i)); i += 8 }
    var dot = d8.sum()
    for j in i..<n { dot += p[j] * dp[j] }
    let dot8 = SIMD8<Float>(repeating: dot)
    i = 0
    while i + 8 <= n { store8(load8(p + i) * (load8(dp + i) - dot8), dp + i); i += 8 }
    for j in i..<n { dp[j] = p[j] * (dp[j] - dot) }
}

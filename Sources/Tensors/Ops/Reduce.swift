import Kernels

/// Max over the valid prefix of each sequence: x [B, L, d], lengths [B] -> [B, d]
/// (0 where a sequence has no valid position). The gradient goes to the argmax.
public func maxPool(_ x: Tensor, lengths: [Int32]) -> Tensor {
    let B = x.shape[0], L = x.shape[1], d = x.shape[2]
    let y = Tensor(shape: [B, d])
    let tape = Tape.needsGrad(x)
    // the row of each maximum, kept only for a backward pass (-1: an empty sequence)
    var argmax = [Int32](repeating: -1, count: tape == nil ? 0 : B * d)
    argmax.withUnsafeMutableBufferPointer { argmax in
        for b in 0..<B {
            let n = Int(lengths[b]), o = y.data + b * d
            if n == 0 { o.update(repeating: 0, count: d); continue }
            maxPoolRows(o, argmax: tape == nil ? nil : argmax.baseAddress! + b * d, x.data + b * L * d, n: n, d: d)
        }
    }
    y.recordBackward(on: tape) { dy in
        let dx = x.ensureGrad()
        for b in 0..<B {
            for j in 0..<d {
                let i = argmax[b * d + j]
                if i >= 0 { dx[(b * L + Int(i)) * d + j] += dy[b * d + j] }
            }
        }
    }
    return y
}

/// Batched dot products: s[b, l] = x[b, l, :] . q[b, :]   (x [B, L, d], q [B, d] -> [B, L]).
/// dx[b, l] += ds[b, l] q[b]; dq[b] += sum_l ds[b, l] x[b, l].
public func batchedDot(_ x: Tensor, _ q: Tensor) -> Tensor {
    let B = x.shape[0], L = x.shape[1], d = x.shape[2]
    let s = Tensor(shape: [B, L])
    for b in 0..<B {
        let qb = q.data + b * d
        for l in 0..<L {
            let xl = x.data + (b * L + l) * d
            var acc: Float = 0
            for j in 0..<d { acc += xl[j] * qb[j] }
            s.data[b * L + l] = acc
        }
    }
    s.recordBackward(on: Tape.needsGrad(x, q)) { ds in
        let dx = x.requiresGrad ? x.ensureGrad() : nil, dq = q.requiresGrad ? q.ensureGrad() : nil
        for b in 0..<B {
            for l in 0..<L {
                let g = ds[b * L + l]
                if let dx { axpy(dx + (b * L + l) * d, q.data + b * d, alpha: g, count: d) }
                if let dq { axpy(dq + b * d, x.data + (b * L + l) * d, alpha: g, count: d) }
            }
        }
    }
    return s
}

/// Weighted sums: y[b] = sum_k w[b, k] v[b, k, :]   (w [B, K], v [B, K, n] -> [B, n]):
/// the MMoE mixture and the target-attention readout.
/// dw[b, k] += dy[b] . v[b, k]; dv[b, k] += w[b, k] dy[b].
public func weightedSum(_ w: Tensor, _ v: Tensor) -> Tensor {
    let B = v.shape[0], K = v.shape[1], n = v.shape[2]
    precondition(w.count == B * K, "weightedSum: weights \(w.shape) for values \(v.shape)")
    let y = Tensor(shape: [B, n], zeroed: true)
    for b in 0..<B {
        for k in 0..<K { axpy(y.data + b * n, v.data + (b * K + k) * n, alpha: w.data[b * K + k], count: n) }
    }
    y.recordBackward(on: Tape.needsGrad(w, v)) { dy in
        let dw = w.requiresGrad ? w.ensureGrad() : nil, dv = v.requiresGrad ? v.ensureGrad() : nil
        for b in 0..<B {
            let g = dy + b * n
            for k in 0..<K {
                let vk = v.data + (b * K + k) * n
                if let dw { var acc: Float = 0; for j in 0..<n { acc += g[j] * vk[j] }; dw[b * K + k] += acc }
                if let dv { axpy(dv + (b * K + k) * n, g, alpha: w.data[b * K + k], count: n) }
            }
        }
    }
    return y
}

/// The mixture of K tensors of one shape: y[b] = sum_k w[b, k] v_k[b]  (w [B, K], v_k [B, n]
/// -> [B, n]): the MMoE mixture of expert outputs, without stacking them. The same arithmetic
/// as `weightedSum` over the stacked [B, K, n].
/// dw[b, k] += dy[b] . v_k[b]; dv_k[b] += w[b, k] dy[b].
public func mixture(_ w: Tensor, _ values: [Tensor]) -> Tensor {
    let K = values.count, B = w.rows, n = values.first?.lastDim ?? 0
    precondition(w.lastDim == K && values.allSatisfy { $0.count == B * n }, "mixture: weights \(w.shape) for \(K) values of [\(B), \(n)]")
    let y = Tensor(shape: [B, n], zeroed: K == 0)
    let pointers = values.map { UnsafePointer($0.data) }
    parallelFor(B, grain: Swift.max(1, 65_536 / Swift.max(K * n, 1))) { _, range in
        for b in range {
            let yb = y.data + b * n
            for k in 0..<K {
                let a = w.data[b * K + k], v = pointers[k] + b * n
                if k == 0 { for j in 0..<n { yb[j] = a * v[j] } } else { axpy(yb, v, alpha: a, count: n) }  // 0 + a v == a v
            }
        }
    }
    let tape = Tape.current.flatMap { t in w.requiresGrad || values.contains(where: \.requiresGrad) ? t : nil }
    y.recordBackward(on: tape) { dy in
        let dw = w.requiresGrad ? w.ensureGrad() : nil
        for (k, v) in values.enumerated() {
            let dv = v.requiresGrad ? v.ensureGrad() : nil
            for b in 0..<B {
                let g = dy + b * n, vb = v.data + b * n
                if let dw { var acc: Float = 0; for j in 0..<n { acc += g[j] * vb[j] }; dw[b * K + k] += acc }
                if let dv { axpy(dv + b * n, g, alpha: w.data[b * K + k], count: n) }
            }
        }
    }
    return y
}

/// Target attention of candidates over their user's tokens, without copying the tokens
/// per candidate (inference only: no gradient is recorded):
/// t[b] = sum_i softmax_i(scale * x[u, i] . q[b]) x[u, i] over the valid i < lengths[u],
/// u = userIndex[b]; t[b] = 0 when the user has no valid token.
/// x [U, L, d], q [B, d] -> [B, d]. The same values as
/// `weightedSum(softmax(batchedDot(gatherRows(x, userIndex), q) * scale, mask), ...)`, computed
/// as two matrix products per run of candidates sharing a user (`targetAttentionForward`).
public func indexedTargetAttention(users x: Tensor, lengths: [Int32], query q: Tensor, userIndex: [Int32], scale: Float) -> Tensor {
    precondition(Tape.current == nil, "indexedTargetAttention records no gradient; use it without a tape")
    let L = x.shape[1], d = x.shape[2], B = q.shape[0]
    precondition(userIndex.count == B && q.lastDim == d, "indexedTargetAttention: x \(x.shape), q \(q.shape), \(userIndex.count) users")
    let y = Tensor(shape: [B, d])
    if B == 0 { return y }
    let scores = Tensor(shape: [B, L])
    lengths.withUnsafeBufferPointer { lp in
        userIndex.withUnsafeBufferPointer { ui in
            targetAttentionForward(y.data, query: q.data, users: x.data, lengths: lp.baseAddress!, userIndex: ui.baseAddress!,
                                   candidates: B, length: L, dim: d, scale: scale, scores: scores.data)
        }
    }
    return y
}

/// Zeroes positions at or past each sequence's valid prefix: x [B, L, d] -> [B, L, d].
/// The gradient is masked the same way.
public func maskPositions(_ x: Tensor, lengths: [Int32]) -> Tensor {
    let B = x.shape[0], L = x.shape[1], d = x.count / max(B * L, 1)
    let y = Tensor(shape: x.shape)
    y.data.update(from: x.data, count: x.count)
    for b in 0..<B { let n = Int(lengths[b]); if n < L { (y.data + (b * L + n) * d).update(repeating: 0, count: (L - n) * d) } }
    y.recordBackward(on: Tape.needsGrad(x)) { dy in
        let dx = x.ensureGrad()
        for b in 0..<B { accumulate(dx + b * L * d, dy + b * L * d, count: Int(lengths[b]) * d) }
    }
    return y
}

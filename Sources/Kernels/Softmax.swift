import Foundation

/// Row softmax with an optional key mask, in place over `rows` rows of length n:
/// p[r, j] = exp(x[r, j] - max) / sum over allowed j, where `allowed(r, j)` is
/// `mask == nil || mask[r * n + j] != 0`. A row with no allowed entry becomes all 0.
@inlinable public func softmaxForward(_ p: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, mask: UnsafePointer<UInt8>?, rows: Int, n: Int) {
    for r in 0..<rows {
        let xi = x + r * n, pi = p + r * n
        var mx = -Float.infinity
        if let mask {
            let mi = mask + r * n
            for j in 0..<n where mi[j] != 0 { mx = Swift.max(mx, xi[j]) }
            if mx == -Float.infinity { pi.update(repeating: 0, count: n); continue }
            var s: Float = 0
            for j in 0..<n {
                let e = mi[j] != 0 ? expf(xi[j] - mx) : 0
                pi[j] = e; s += e
            }
            let inv = 1 / s
            for j in 0..<n { pi[j] *= inv }
        } else {
            for j in 0..<n { mx = Swift.max(mx, xi[j]) }
            var s: Float = 0
            for j in 0..<n { let e = expf(xi[j] - mx); pi[j] = e; s += e }
            let inv = 1 / s
            for j in 0..<n { pi[j] *= inv }
        }
    }
}

/// Softmax backward: dx[r, j] += p[r, j] (dp[r, j] - sum_k p[r, k] dp[r, k])
@inlinable public func softmaxBackward(_ dx: UnsafeMutablePointer<Float>, _ dp: UnsafePointer<Float>, _ p: UnsafePointer<Float>, rows: Int, n: Int) {
    for r in 0..<rows {
        let pi = p + r * n, dpi = dp + r * n, dxi = dx + r * n
        var dot: Float = 0
        for j in 0..<n { dot += pi[j] * dpi[j] }
        for j in 0..<n { dxi[j] += pi[j] * (dpi[j] - dot) }
    }
}

/// In-place-capable softmax over `rows` rows of n entries each, rows `stride` apart.
@inlinable public func softmaxForward(_ p: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, mask: UnsafePointer<UInt8>?, rowsStrided rows: Int, n: Int, stride: Int) {
    for r in 0..<rows { softmaxForward(p + r * stride, x + r * stride, mask: mask.map { $0 + r * stride }, rows: 1, n: n) }
}

/// In-place softmax of one row of n entries (no mask), vectorised with `simdExp`
/// (FastMath.swift; naive twin: `softmaxForward` above / `naiveSoftmax`).
@inlinable public func softmaxRow(_ p: UnsafeMutablePointer<Float>, n: Int) {
    _ = softmaxRowMaxAndSum(p, n: n)
}

/// The softmax of one row in place; returns the row's max and sum_j exp(p_j - max).
@inlinable @inline(__always) func softmaxRowMaxAndSum(_ p: UnsafeMutablePointer<Float>, n: Int) -> (max: Float, sum: Float) {
    let (mx, s) = expRowMaxAndSum(p, n: n)
    if n == 0 { return (mx, s) }
    let inv = SIMD8<Float>(repeating: 1 / s)
    var i = 0
    while i + 8 <= n { store8(load8(p + i) * inv, p + i); i += 8 }
    for j in i..<n { p[j] *= inv[0] }
    return (mx, s)
}

/// The unnormalised softmax of one row in place, p_j = exp(p_j - max_k p_k); returns that max
/// and the sum of the new p_j (blocked attention divides P V by the sum instead of P, and
/// saves max + log(sum) to recompute P = exp(s - lse) in the backward). n = 0: (-inf, 0).
@inlinable @inline(__always) public func expRowMaxAndSum(_ p: UnsafeMutablePointer<Float>, n: Int) -> (max: Float, sum: Float) {
    if n == 0 { return (-.infinity, 0) }
    var mx8 = SIMD8<Float>(repeating: -Float.infinity)
    var i = 0
    while i + 8 <= n { mx8 = simdMax(mx8, load8(p + i)); i += 8 }
    var mx = -Float.infinity
    for l in 0..<8 { mx = mx8[l] > mx ? mx8[l] : mx }
    for j in i..<n where p[j] > mx { mx = p[j] }
    return (mx, expShiftedSum(p, n: n, by: mx))
}

/// p_j = exp(p_j - shift) in place; returns the sum of the new p_j. For shift >= max_j p_j - 88
/// (a row's max or log-sum-exp: every exponent <= 0), `simdExpBelowOverflow`.
@inlinable func expShiftedSum(_ p: UnsafeMutablePointer<Float>, n: Int, by shift: Float) -> Float {
    let m8 = SIMD8<Float>(repeating: shift)
    var s8 = SIMD8<Float>(repeating: 0)
    var i = 0
    while i + 8 <= n { let e = simdExpBelowOverflow(load8(p + i) - m8); store8(e, p + i); s8 += e; i += 8 }
    var s = s8.sum()
    if i < n {
        let e = simdExpBelowOverflow(tail8(p + i, n - i) - m8)
        for j in 0..<(n - i) { p[i + j] = e[j]; s += e[j] }
    }
    return s
}

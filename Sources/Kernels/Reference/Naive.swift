import Foundation

// Naive twins of the kernels: the test oracles (llm.c's `matmul_forward_naive`).
// Each is written the most obvious way, in Float64, over Swift arrays, with the
// same index conventions as the kernel it mirrors (row-major, sizes named alike).
// They are slow on purpose: never call them from a training or serving path.

/// The general product, leading dimensions given: for i < m, j < n
/// c[i * ldc + j] = alpha * sum_p opA(i, p) opB(p, j) + beta * c[i * ldc + j],
/// where opA(i, p) = transA ? a[p * lda + i] : a[i * lda + p] and
/// opB(p, j) = transB ? b[j * ldb + p] : b[p * ldb + j]. With beta == 0 the old c
/// is never read (as in BLAS: NaN in c does not propagate).
public func naiveGemm(
    _ c: inout [Double], ldc: Int, _ a: [Double], lda: Int, _ b: [Double], ldb: Int,
    m: Int, n: Int, k: Int, transA: Bool = false, transB: Bool = false, alpha: Double = 1, beta: Double = 0
) {
    for i in 0..<m {
        for j in 0..<n {
            var s: Double = 0
            for p in 0..<k {
                let av = transA ? a[p * lda + i] : a[i * lda + p]
                let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
                s += av * bv
            }
            let old = beta == 0 ? 0 : beta * c[i * ldc + j]
            c[i * ldc + j] = alpha * s + old
        }
    }
}

/// c [m, n] = op(a) op(b) for contiguous operands: a is [m, k] ([k, m] when
/// transA), b is [k, n] ([n, k] when transB). The twin of `matmul` with beta = 0.
public func naiveMatmul(_ a: [Double], _ b: [Double], m: Int, n: Int, k: Int, transA: Bool = false, transB: Bool = false) -> [Double] {
    var c = [Double](repeating: 0, count: m * n)
    naiveGemm(&c, ldc: n, a, lda: transA ? m : k, b, ldb: transB ? k : n, m: m, n: n, k: k, transA: transA, transB: transB)
    return c
}

/// GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
public func naiveGelu(_ x: Double) -> Double {
    0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
}

/// 1 / (1 + exp(-x)).
public func naiveSigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }

/// Layer norm over rows of n: out = (x - mean) / sqrt(var + eps) * weight + bias,
/// var the biased (1/n) variance. x [rows, n] -> (out [rows, n], mean [rows], rstd [rows]).
public func naiveLayerNorm(_ x: [Double], weight: [Double], bias: [Double], rows: Int, n: Int, eps: Double = 1e-5)
    -> (out: [Double], mean: [Double], rstd: [Double])
{
    var out = [Double](repeating: 0, count: rows * n)
    var means = [Double](repeating: 0, count: rows), rstds = [Double](repeating: 0, count: rows)
    for r in 0..<rows {
        var m: Double = 0
        for j in 0..<n { m += x[r * n + j] }
        m /= Double(n)
        var v: Double = 0
        for j in 0..<n { v += (x[r * n + j] - m) * (x[r * n + j] - m) }
        v /= Double(n)
        let rs = 1 / (v + eps).squareRoot()
        for j in 0..<n { out[r * n + j] = (x[r * n + j] - m) * rs * weight[j] + bias[j] }
        means[r] = m; rstds[r] = rs
    }
    return (out, means, rstds)
}

/// Row softmax over [rows, n]: p[r, j] = exp(x[r, j]) / sum over allowed k of exp(x[r, k])
/// for allowed j (mask == nil or mask[r * n + j] != 0), 0 elsewhere; a row with
/// nothing allowed is all 0.
public func naiveSoftmax(_ x: [Double], mask: [UInt8]? = nil, rows: Int, n: Int) -> [Double] {
    var p = [Double](repeating: 0, count: rows * n)
    for r in 0..<rows {
        var mx = -Double.infinity
        for j in 0..<n where mask == nil || mask![r * n + j] != 0 { mx = max(mx, x[r * n + j]) }
        if mx == -Double.infinity { continue }
        var s: Double = 0
        for j in 0..<n where mask == nil || mask![r * n + j] != 0 { s += exp(x[r * n + j] - mx) }
        for j in 0..<n where mask == nil || mask![r * n + j] != 0 { p[r * n + j] = exp(x[r * n + j] - mx) / s }
    }
    return p
}

/// Weighted binary cross-entropy of logits, the textbook form:
/// sum_i w_i * -(y_i log s_i + (1 - y_i) log(1 - s_i)), s_i = sigmoid(x_i),
/// with log s = -log1p(exp(-x)) and log(1 - s) = -x - log1p(exp(-x)) (finite for
/// any x); and d/dx_i = w_i (s_i - y_i).
public func naiveBinaryCrossEntropy(logits x: [Double], targets y: [Double], weights w: [Double]) -> (loss: Double, grad: [Double]) {
    var loss: Double = 0
    var grad = [Double](repeating: 0, count: x.count)
    for i in 0..<x.count {
        let logS = x[i] >= 0 ? -log1p(exp(-x[i])) : x[i] - log1p(exp(x[i]))
        let log1mS = logS - x[i]
        loss += w[i] * -(y[i] * logS + (1 - y[i]) * log1mS)
        grad[i] = w[i] * (naiveSigmoid(x[i]) - y[i])
    }
    return (loss, grad)
}

/// Pooled embedding lookup: out[b, :] = sum (mean: average) of table rows
/// ids[offsets[b] ..< offsets[b + 1]]; an empty bag reads row 0. Without offsets,
/// one id per bag. table [rows, dim] -> out [bags, dim].
public func naiveEmbeddingBag(table: [Double], dim: Int, ids: [Int32], offsets: [Int32]?, mean: Bool) -> [Double] {
    let bags = offsets.map { $0.count - 1 } ?? ids.count
    var out = [Double](repeating: 0, count: bags * dim)
    for b in 0..<bags {
        let lo = offsets.map { Int($0[b]) } ?? b, hi = offsets.map { Int($0[b + 1]) } ?? b + 1
        if lo == hi {
            for j in 0..<dim { out[b * dim + j] = table[j] }
            continue
        }
        for p in lo..<hi { for j in 0..<dim { out[b * dim + j] += table[Int(ids[p]) * dim + j] } }
        if mean { for j in 0..<dim { out[b * dim + j] /= Double(hi - lo) } }
    }
    return out
}

/// Multi-head self-attention over a valid prefix (the twin of `attentionForward`):
/// qkv [U, L, 3d] (q at columns 0..<d, k at d..<2d, v at 2d..<3d; head h owns the
/// columns h*dh ..< (h+1)*dh of each, dh = d / heads). For query i < n = lengths[u]:
/// out[u, i, h] = sum_{j < n} softmax_j(q_i . k_j / sqrt(dh)) v_j; every other row is 0.
/// Returns out [U, L, d].
public func naiveAttention(_ qkv: [Double], lengths: [Int32], sequences U: Int, length L: Int, dim d: Int, heads: Int) -> [Double] {
    let dh = d / heads
    var out = [Double](repeating: 0, count: U * L * d)
    for u in 0..<U {
        let n = Int(lengths[u])
        for h in 0..<heads {
            for i in 0..<n {
                var scores = [Double](repeating: 0, count: n)
                for j in 0..<n {
                    for t in 0..<dh {
                        scores[j] += qkv[(u * L + i) * 3 * d + h * dh + t] * qkv[(u * L + j) * 3 * d + d + h * dh + t]
                    }
                    scores[j] /= Double(dh).squareRoot()
                }
                let p = naiveSoftmax(scores, rows: 1, n: n)
                for j in 0..<n {
                    for t in 0..<dh {
                        out[(u * L + i) * d + h * dh + t] += p[j] * qkv[(u * L + j) * 3 * d + 2 * d + h * dh + t]
                    }
                }
            }
        }
    }
    return out
}

/// Append-fusion attention (the twin of `appendAttentionForward`): candidate b
/// (qkvY [B, 3d]) with user u = userIndex?[b] ?? b attends to the keys/values of
/// the first lengths[u] positions of qkvUser [U, L, 3d] and to its own key/value.
/// out[b, h] = sum_j softmax_j(q_b . k_j / sqrt(dh)) v_j over those n + 1 entries. Returns [B, d].
public func naiveAppendAttention(
    _ qkvY: [Double], user qkvUser: [Double], lengths: [Int32], userIndex: [Int32]?,
    candidates B: Int, length L: Int, dim d: Int, heads: Int
) -> [Double] {
    let dh = d / heads
    var out = [Double](repeating: 0, count: B * d)
    for b in 0..<B {
        let u = userIndex.map { Int($0[b]) } ?? b
        let n = Int(lengths[u])
        // keys and values: user positions 0..<n, then the candidate itself
        func key(_ j: Int, _ c: Int) -> Double { j < n ? qkvUser[(u * L + j) * 3 * d + d + c] : qkvY[b * 3 * d + d + c] }
        func value(_ j: Int, _ c: Int) -> Double { j < n ? qkvUser[(u * L + j) * 3 * d + 2 * d + c] : qkvY[b * 3 * d + 2 * d + c] }
        for h in 0..<heads {
            var scores = [Double](repeating: 0, count: n + 1)
            for j in 0...n {
                for t in 0..<dh { scores[j] += qkvY[b * 3 * d + h * dh + t] * key(j, h * dh + t) }
                scores[j] /= Double(dh).squareRoot()
            }
            let p = naiveSoftmax(scores, rows: 1, n: n + 1)
            for j in 0...n { for t in 0..<dh { out[b * d + h * dh + t] += p[j] * value(j, h * dh + t) } }
        }
    }
    return out
}

/// Late-fusion target attention (the twin of `targetAttentionForward`): candidate b with
/// user u = userIndex[b] and n = lengths[u] gets
/// out[b] = sum_{i < n} softmax_i(scale * q[b] . x[u, i]) x[u, i], 0 when n == 0.
/// q [B, d], x [U, L, d]. Returns [B, d].
public func naiveTargetAttention(
    query q: [Double], users x: [Double], lengths: [Int32], userIndex: [Int32], length L: Int, dim d: Int, scale: Double
) -> [Double] {
    let B = userIndex.count
    var out = [Double](repeating: 0, count: B * d)
    for b in 0..<B {
        let u = Int(userIndex[b]), n = Int(lengths[u])
        var scores = [Double](repeating: 0, count: n)
        for i in 0..<n {
            for j in 0..<d { scores[i] += q[b * d + j] * x[(u * L + i) * d + j] }
            scores[i] *= scale
        }
        let p = naiveSoftmax(scores, rows: 1, n: n)
        for i in 0..<n { for j in 0..<d { out[b * d + j] += p[i] * x[(u * L + i) * d + j] } }
    }
    return out
}

/// Column-wise max over the n rows of x [n, d] and the first row attaining it (twin of `maxPoolRows`).
public func naiveMaxPoolRows(_ x: [Float], n: Int, d: Int) -> (max: [Float], argmax: [Int32]) {
    var m = Array(x[0..<d]), a = [Int32](repeating: 0, count: d)
    for i in 1..<n { for j in 0..<d where x[i * d + j] > m[j] { m[j] = x[i * d + j]; a[j] = Int32(i) } }
    return (m, a)
}

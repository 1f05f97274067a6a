import Kernels

/// Layer norm over the last dimension: y = (x - mean) / sqrt(var + eps) * weight + bias.
/// x: [..., n], weight, bias: [n]. Fused forward and backward (Kernels/LayerNorm.swift).
public func layerNorm(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float = 1e-5) -> Tensor {
    let n = x.lastDim, rows = x.rows
    precondition(weight.count == n && bias.count == n, "layerNorm: weight/bias \(weight.shape) for input \(x.shape)")
    let y = Tensor(shape: x.shape)
    let tape = Tape.needsGrad(x, weight, bias)
    let stats = Tensor(shape: [2, rows])  // mean, rstd
    let mean = stats.data, rstd = stats.data + rows
    parallelFor(rows, grain: 4096) { _, r in
        layerNormForward(y.data + r.lowerBound * n, mean: mean + r.lowerBound, rstd: rstd + r.lowerBound,
                         x.data + r.lowerBound * n, weight: weight.data, bias: bias.data, rows: r.count, n: n, eps: eps)
    }
    y.recordBackward(on: tape) { dy in
        let dx = x.requiresGrad ? x.ensureGrad() : nil
        // weight/bias gradients: per-chunk partial sums combined in chunk order (deterministic)
        let chunks = Swift.max(1, Swift.min(Threads.count, rows / 4096))
        let partial = Tensor(shape: [chunks, 2 * n], zeroed: true)
        parallelFor(rows, grain: 4096) { c, r in
            let pw = partial.data + c * 2 * n
            layerNormBackward(dx: dx.map { $0 + r.lowerBound * n }, dweight: pw, dbias: pw + n,
                              dy + r.lowerBound * n, x.data + r.lowerBound * n, weight: weight.data,
                              mean: mean + r.lowerBound, rstd: rstd + r.lowerBound, rows: r.count, n: n)
        }
        if weight.requiresGrad || bias.requiresGrad {
            let dw = weight.ensureGrad(), db = bias.ensureGrad()
            for c in 0..<chunks {
                accumulate(dw, partial.data + c * 2 * n, count: n)
                accumulate(db, partial.data + c * 2 * n + n, count: n)
            }
        }
        _ = stats
    }
    return y
}

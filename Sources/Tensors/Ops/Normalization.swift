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
    parallelFor(rows, grain: Swift.max(1, 32_768 / Swift.max(n, 1))) { _, r in  // rows are independent: any split, same bits
        layerNormForward(y.data + r.lowerBound * n, mean: mean + r.lowerBound, rstd: rstd + r.lowerBound,
                         x.data + r.lowerBound * n, weight: weight.data, bias: bias.data, rows: r.count, n: n, eps: eps)
    }
    y.recordBackward(on: tape) { dy in
        let dx = x.requiresGrad ? x.ensureGrad() : nil
        // weight/bias gradients: partial sums over blocks of ~4096 rows (boundaries set by the
        // row count alone, not the thread count), combined in block order: the same values
        // with any number of threads
        let blocks = Swift.max(1, rows / 4096)
        let partial = Tensor(shape: [blocks, 2 * n], zeroed: true)
        parallelFor(blocks, grain: 1) { _, range in
            for b in range {
                let lo = b * rows / blocks, count = (b + 1) * rows / blocks - lo
                let pw = partial.data + b * 2 * n
                layerNormBackward(dx: dx.map { $0 + lo * n }, dweight: pw, dbias: pw + n, dy + lo * n, x.data + lo * n,
                                  weight: weight.data, mean: mean + lo, rstd: rstd + lo, rows: count, n: n)
            }
        }
        if weight.requiresGrad || bias.requiresGrad {
            let dw = weight.ensureGrad(), db = bias.ensureGrad()
            for c in 0..<blocks {
                accumulate(dw, partial.data + c * 2 * n, count: n)
                accumulate(db, partial.data + c * 2 * n + n, count: n)
            }
        }
        _ = stats
    }
    return y
}

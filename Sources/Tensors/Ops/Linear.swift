import Kernels

/// y = x W^T + b, then max(y, 0) when `relu` (fused: `linearForward`).
/// x: [..., in], weight: [out, in], bias: [out] -> y: [..., out].
/// With g = dy (times y > 0 when `relu`): dx += g W; dW += g^T x; db += sum over rows of g.
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor?, relu: Bool = false) -> Tensor {
    let nIn = weight.shape[1], nOut = weight.shape[0]
    precondition(x.lastDim == nIn, "linear: input \(x.shape) does not end in \(nIn) (weight \(weight.shape))")
    let y = Tensor(shape: Array(x.shape.dropLast()) + [nOut])
    linearForward(y.data, x.data, weight: weight.data, bias: bias?.data, m: x.rows, n: nOut, k: nIn, relu: relu)
    y.recordBackward(on: Tape.needsGrad(x, weight, bias)) { dy in
        guard relu else { return linearBackward(dy, x: x, weight: weight, bias: bias) }
        let g = Tensor(shape: y.shape, zeroed: true)
        reluBackward(g.data, dy, y.data, count: y.count)
        linearBackward(g.data, x: x, weight: weight, bias: bias)
    }
    return y
}

/// A linear layer added to a residual stream: y = r + (x W^T + b). x: [..., in], weight:
/// [out, in], bias: [out], r: [..., out] -> y: r's shape. The same values as `r + linear(x,
/// ...)`, in one op: y is written by the product and r added in place, and the backward
/// (dr += dy; dx += dy W; dW += dy^T x; db += sum over rows of dy) reads dy as it is, where
/// the separate add would copy dy for the linear's output. r takes over dy's buffer when it
/// has no gradient yet, after the linear's rule has read it.
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor?, residual r: Tensor) -> Tensor {
    let nIn = weight.shape[1], nOut = weight.shape[0]
    precondition(x.lastDim == nIn && r.lastDim == nOut && r.rows == x.rows,
                 "linear: input \(x.shape), residual \(r.shape) do not fit weight \(weight.shape)")
    let y = Tensor(shape: r.shape)
    linearForward(y.data, x.data, weight: weight.data, bias: bias?.data, m: x.rows, n: nOut, k: nIn, relu: false)
    parallelFor(y.count, grain: 32_768) { _, i in accumulate(y.data + i.lowerBound, r.data + i.lowerBound, count: i.count) }
    y.recordBackward(on: Tape.needsGrad(x, weight, bias, r)) { dy in
        if x.requiresGrad || weight.requiresGrad || bias?.requiresGrad == true { linearBackward(dy, x: x, weight: weight, bias: bias) }
        guard r.requiresGrad, !r.adoptGradient(of: y) else { return }
        let (dr, fresh) = r.gradForFullWrite()
        if fresh { dr.update(from: dy, count: y.count) } else { accumulate(dr, dy, count: y.count) }
    }
    return y
}

/// The DCNv2 cross update x0 * (h W^T + b) + x in one pass over the rows (`crossForward`):
/// x0, x [..., n], h [..., k] (x itself for a full-rank layer, V^T x for a low-rank one),
/// weight [n, k], bias [n] -> [..., n]. With w = h W^T + b (kept only while a tape records):
/// dx += dy; dx0 += dy w; then g = dy x0 is w's gradient: dh += g W; dW += g^T h; db += sum of g.
public func crossUpdate(x0: Tensor, x: Tensor, h: Tensor, weight: Tensor, bias: Tensor) -> Tensor {
    let n = weight.shape[0], k = weight.shape[1], rows = x.rows
    precondition(x0.shape == x.shape && x.lastDim == n && h.lastDim == k && h.rows == rows && bias.count == n,
                 "crossUpdate: x0 \(x0.shape), x \(x.shape), h \(h.shape), weight \(weight.shape)")
    let y = Tensor(shape: x.shape)
    let tape = Tape.needsGrad(x0, x, h, weight, bias)
    let w = tape == nil ? nil : Tensor(shape: x.shape)
    crossForward(y.data, w: w?.data, x0: x0.data, x: x.data, h: h.data, weight: weight.data, bias: bias.data, m: rows, n: n, k: k)
    y.recordBackward(on: tape) { dy in
        let w = w!
        if x.requiresGrad {
            let (dx, fresh) = x.gradForFullWrite()
            if fresh { dx.update(from: dy, count: y.count) } else { accumulate(dx, dy, count: y.count) }
        }
        if x0.requiresGrad {
            let (dx0, fresh) = x0.gradForFullWrite()
            if fresh { mul(dx0, dy, w.data, count: y.count) } else { accumulateProduct(dx0, dy, w.data, count: y.count) }
        }
        let g = Tensor(shape: y.shape)
        mul(g.data, dy, x0.data, count: y.count)
        linearBackward(g.data, x: h, weight: weight, bias: bias)
    }
    return y
}

/// The backward of y = x W^T + b given g = dL/dy [rows, out]: dx += g W; dW += g^T x;
/// db += sum over rows of g (each only where a gradient is wanted).
///
/// When at most 7/8 of g's rows hold a nonzero (the last Transformer block, whose readout -
/// a max-pool and the K most recent tokens - leaves at most d + K nonzero rows per
/// sequence), the products run on those rows only, gathered: g's zero rows add nothing
/// to dW and db and leave zero rows in dx, so the result is the dense one up to the order of
/// float additions.
func linearBackward(_ g: UnsafePointer<Float>, x: Tensor, weight: Tensor, bias: Tensor?) {
    let nIn = weight.shape[1], nOut = weight.shape[0], n = x.rows
    // the bias gradient in the same pass over g as the search for its zero rows (adding a
    // zero row changes no sum, so it is the same on either path)
    let biasGrad = bias.flatMap { $0.requiresGrad ? $0.ensureGrad() : nil }
    if n >= 64 {
        let index = UnsafeMutablePointer<Int32>.allocate(capacity: n)
        defer { index.deallocate() }
        if let m = nonzeroRows(g, rows: n, n: nOut, limit: n - n / 8, into: index, addingColumnSumsTo: biasGrad) {
            return sparseLinearBackward(g, rows: index, count: m, x: x, weight: weight)
        }
    } else if let biasGrad {
        sumRows(biasGrad, g, rows: n, n: nOut)
    }
    if x.requiresGrad {
        let (dx, fresh) = x.gradForFullWrite()
        matmul(dx, g, weight.data, m: n, n: nIn, k: nOut, beta: fresh ? 0 : 1)
    }
    if weight.requiresGrad { matmul(weight.ensureGrad(), g, x.data, m: nOut, n: nIn, k: n, transA: true, beta: 1) }
}

/// `linearBackward`'s dx and dW on the m rows of g listed in `index` (g's other rows are
/// zero; the bias gradient is done).
private func sparseLinearBackward(_ g: UnsafePointer<Float>, rows index: UnsafePointer<Int32>, count m: Int, x: Tensor, weight: Tensor) {
    let nIn = weight.shape[1], nOut = weight.shape[0], n = x.rows
    let gRows = Tensor(shape: [m, nOut])
    gatherRowsOf(gRows.data, g, index: index, count: m, n: nOut)
    if x.requiresGrad {
        let (dx, fresh) = x.gradForFullWrite()
        let dxRows = Tensor(shape: [m, nIn])
        matmul(dxRows.data, gRows.data, weight.data, m: m, n: nIn, k: nOut)
        if fresh {
            scatterRowsZeroingTheRest(dx, dxRows.data, index: index, count: m, rows: n, n: nIn)
        } else {
            scatterRowsOf(dx, dxRows.data, index: index, count: m, n: nIn, accumulate: true)
        }
    }
    if weight.requiresGrad {
        let xRows = Tensor(shape: [m, nIn])
        gatherRowsOf(xRows.data, x.data, index: index, count: m, n: nIn)
        matmul(weight.ensureGrad(), gRows.data, xRows.data, m: nOut, n: nIn, k: m, transA: true, beta: 1)
    }
}

/// y = x M. x: [..., k], m: [k, n] -> y: [..., n]  (the V^T x of a low-rank cross layer).
/// dx += dy M^T; dM += x^T dy.
public func matmul(_ x: Tensor, _ m: Tensor) -> Tensor {
    let k = m.shape[0], nOut = m.shape[1]
    precondition(x.lastDim == k, "matmul: input \(x.shape) does not end in \(k) (matrix \(m.shape))")
    let rows = x.rows
    let y = Tensor(shape: Array(x.shape.dropLast()) + [nOut])
    matmul(y.data, x.data, m.data, m: rows, n: nOut, k: k)
    y.recordBackward(on: Tape.needsGrad(x, m)) { dy in
        if x.requiresGrad {
            let (dx, fresh) = x.gradForFullWrite()
            matmul(dx, dy, m.data, m: rows, n: k, k: nOut, transB: true, beta: fresh ? 0 : 1)
        }
        if m.requiresGrad { matmul(m.ensureGrad(), x.data, dy, m: k, n: nOut, k: rows, transA: true, beta: 1) }
    }
    return y
}

import Kernels

/// y = x W^T + b. x: [..., in], weight: [out, in], bias: [out] -> y: [..., out].
/// dx += dy W; dW += dy^T x; db += sum over rows of dy.
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
    let nIn = weight.shape[1], nOut = weight.shape[0]
    precondition(x.lastDim == nIn, "linear: input \(x.shape) does not end in \(nIn) (weight \(weight.shape))")
    let n = x.rows
    let y = Tensor(shape: Array(x.shape.dropLast()) + [nOut])
    if let bias {
        for r in 0..<n { (y.data + r * nOut).update(from: bias.data, count: nOut) }
        matmul(y.data, x.data, weight.data, m: n, n: nOut, k: nIn, transB: true, beta: 1)
    } else {
        matmul(y.data, x.data, weight.data, m: n, n: nOut, k: nIn, transB: true)
    }
    y.recordBackward(on: Tape.needsGrad(x, weight, bias)) { dy in
        if x.requiresGrad { matmul(x.ensureGrad(), dy, weight.data, m: n, n: nIn, k: nOut, beta: 1) }
        if weight.requiresGrad { matmul(weight.ensureGrad(), dy, x.data, m: nOut, n: nIn, k: n, transA: true, beta: 1) }
        if let bias, bias.requiresGrad { sumRows(bias.ensureGrad(), dy, rows: n, n: nOut) }
    }
    return y
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
        if x.requiresGrad { matmul(x.ensureGrad(), dy, m.data, m: rows, n: k, k: nOut, transB: true, beta: 1) }
        if m.requiresGrad { matmul(m.ensureGrad(), x.data, dy, m: k, n: nOut, k: rows, transA: true, beta: 1) }
    }
    return y
}

import Kernels

/// Softmax over the last dimension, with an optional mask of allowed entries
/// ([rows, n], nonzero = allowed); a row with no allowed entry gives all 0.
/// dx += y (dy - sum(y dy)).
public func softmax(_ x: Tensor, mask: [UInt8]? = nil) -> Tensor {
    let n = x.lastDim, rows = x.rows
    if let mask { precondition(mask.count == x.count, "softmax: mask of \(mask.count) for \(x.shape)") }
    let y = Tensor(shape: x.shape)
    if let mask {
        mask.withUnsafeBufferPointer { softmaxForward(y.data, x.data, mask: $0.baseAddress, rows: rows, n: n) }
    } else {
        softmaxForward(y.data, x.data, mask: nil, rows: rows, n: n)
    }
    y.recordBackward(on: Tape.needsGrad(x)) { dy in softmaxBackward(x.ensureGrad(), dy, y.data, rows: rows, n: n) }
    return y
}

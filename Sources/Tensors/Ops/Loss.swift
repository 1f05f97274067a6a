import Kernels

/// Weighted binary cross-entropy with logits, summed and divided (SPEC 2.6):
/// loss = sum_i w_i bce(logit_i, y_i) / divisor, a [1] tensor. Entries with w_i = 0
/// (missing label) contribute nothing. dlogit_i += dloss w_i (sigmoid(logit_i) - y_i) / divisor.
public func binaryCrossEntropy(logits: Tensor, targets: [Float], weights: [Float], divisor: Float) -> Tensor {
    let n = logits.count
    precondition(targets.count == n && weights.count == n, "binaryCrossEntropy: \(n) logits, \(targets.count) targets, \(weights.count) weights")
    let loss = Tensor(shape: [1])
    let grad = Tensor(shape: [max(n, 1)])
    let total = targets.withUnsafeBufferPointer { y in
        weights.withUnsafeBufferPointer { w in
            n == 0 ? 0 : bceWithLogits(logits.data, targets: y.baseAddress!, weights: w.baseAddress!, grad: grad.data, scale: 1 / divisor, count: n)
        }
    }
    loss.data[0] = Float(total / Double(divisor))
    loss.recordBackward(on: Tape.needsGrad(logits)) { dy in axpy(logits.ensureGrad(), grad.data, alpha: dy[0], count: n) }
    return loss
}

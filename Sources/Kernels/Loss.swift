import Foundation

/// log(sigmoid(x)), stable: min(x, 0) - log1p(exp(-|x|))
@inlinable public func logSigmoid(_ x: Float) -> Float {
    Swift.min(x, 0) - log1pf(expf(-abs(x)))
}

/// Binary cross-entropy with logits, weighted: returns sum_i w_i * bce(x_i, y_i)
/// over entries with w_i != 0, in Double, where bce = max(x, 0) - x y + log1p(exp(-|x|)).
/// If `grad` is given, grad[i] = scale * w_i * (sigmoid(x_i) - y_i).
@inlinable public func bceWithLogits(
    _ x: UnsafePointer<Float>, targets y: UnsafePointer<Float>, weights w: UnsafePointer<Float>,
    grad: UnsafeMutablePointer<Float>?, scale: Float, count: Int
) -> Double {
    var total: Double = 0
    for i in 0..<count {
        let wi = w[i]
        if wi == 0 { grad?[i] = 0; continue }
        let xi = x[i], yi = y[i]
        let l = Swift.max(xi, 0) - xi * yi + log1pf(expf(-abs(xi)))
        total += Double(wi) * Double(l)
        if let grad {
            let s: Float = xi >= 0 ? 1 / (1 + expf(-xi)) : expf(xi) / (1 + expf(xi))
            grad[i] = scale * wi * (s - yi)
        }
    }
    return total
}

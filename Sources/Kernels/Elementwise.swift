import Foundation

// Elementwise kernels over contiguous Float buffers: outputs first, sizes last.
// Simple counted loops over pointers: with the target CPU set they vectorise.

/// out[i] = a[i] + b[i]
@inlinable public func add(_ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { out[i] = a[i] + b[i] }
}

/// out[i] = a[i] * b[i]
@inlinable public func mul(_ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { out[i] = a[i] * b[i] }
}

/// out[i] = a[i] * b[i] + c[i]  (rounded after the product, as `mul` then `add`). Explicit
/// SIMD8, so it vectorises in place too (out == b): the compiler's overlap check would not.
@inlinable public func multiplyAdd(_ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                   _ c: UnsafePointer<Float>, count: Int) {
    var i = 0
    while i &+ 8 <= count { store8(load8(a + i) * load8(b + i) + load8(c + i), out + i); i &+= 8 }
    while i < count { out[i] = a[i] * b[i] + c[i]; i &+= 1 }
}

/// y[i] += x[i]
@inlinable public func accumulate(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { y[i] += x[i] }
}

/// y[i] += alpha * x[i]
@inlinable public func axpy(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, alpha: Float, count: Int) {
    for i in 0..<count { y[i] += alpha * x[i] }
}

/// y[i] += a[i] * b[i]
@inlinable public func accumulateProduct(_ y: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { y[i] += a[i] * b[i] }
}

/// One Adagrad row update, in place over count entries: G[j] += g[j]^2, then
/// w[j] -= lr g[j] / (sqrt(G[j]) + eps). Eight lanes at a time: square root and division are
/// correctly rounded in SIMD as in scalar code, so the bits are the scalar rule's (the tail).
@inlinable public func adagradUpdate(weight w: UnsafeMutablePointer<Float>, accumulator a: UnsafeMutablePointer<Float>,
                                     gradient g: UnsafePointer<Float>, count: Int, learningRate lr: Float, epsilon eps: Float) {
    let lr8 = SIMD8<Float>(repeating: lr), eps8 = SIMD8<Float>(repeating: eps)
    var j = 0
    while j + 8 <= count {
        let gv = load8(g + j), av = load8(a + j) + gv * gv
        store8(av, a + j)
        store8(load8(w + j) - lr8 * gv / (av.squareRoot() + eps8), w + j)
        j += 8
    }
    while j < count {
        a[j] += g[j] * g[j]
        w[j] -= lr * g[j] / (a[j].squareRoot() + eps)
        j += 1
    }
}

/// x[i] *= s
@inlinable public func scale(_ x: UnsafeMutablePointer<Float>, by s: Float, count: Int) {
    for i in 0..<count { x[i] *= s }
}

/// out[r, :] = x[r, :] + row[:] for r in 0..<rows  (x is [rows, n], row is [n])
@inlinable public func addRowVector(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ row: UnsafePointer<Float>, rows: Int, n: Int) {
    for r in 0..<rows {
        let o = out + r * n, xi = x + r * n
        for j in 0..<n { o[j] = xi[j] + row[j] }
    }
}

/// ReLU forward: out = max(x, 0) (x > 0 ? x : 0). Explicit SIMD8, so it vectorises in place too.
@inlinable public func reluForward(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    var i = 0
    let zero = SIMD8<Float>(repeating: 0)
    while i &+ 8 <= count { let v = load8(x + i); store8(zero.replacing(with: v, where: v .> zero), out + i); i &+= 8 }
    while i < count { out[i] = x[i] > 0 ? x[i] : 0; i &+= 1 }
}

/// ReLU backward: dx += dout * (out > 0)  (out is the forward output)
@inlinable public func reluBackward(_ dx: UnsafeMutablePointer<Float>, _ dout: UnsafePointer<Float>, _ out: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { dx[i] += out[i] > 0 ? dout[i] : 0 }
}

/// GELU (tanh approximation): out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))),
/// vectorised (FastMath.swift; naive twin: `naiveGelu`).
@inlinable public func geluForward(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    var i = 0
    while i + 8 <= count { store8(simdGelu(load8(x + i)), out + i); i += 8 }
    if i < count {
        let v = simdGelu(tail8(x + i, count - i))
        for j in 0..<(count - i) { out[i + j] = v[j] }
    }
}

/// GELU backward: dx += dout * gelu'(x), or dx = dout * gelu'(x) with `overwrite` (dx's
/// first contribution: its old contents are not read). With `overwrite`, eight lanes of dout
/// that are all zero (the last Transformer layer's tokens that the readout does not take)
/// give dout's zeros without evaluating gelu' (the same values wherever gelu'(x) is finite;
/// a zero's sign may differ from dout * gelu'(x)'s).
@inlinable public func geluBackward(_ dx: UnsafeMutablePointer<Float>, _ dout: UnsafePointer<Float>, _ x: UnsafePointer<Float>, count: Int,
                                    overwrite: Bool = false) {
    var i = 0
    if overwrite {
        while i + 8 <= count {
            let d = load8(dout + i)
            if all(d .== 0) { store8(d, dx + i) } else { store8(d * simdGeluDerivative(load8(x + i)), dx + i) }
            i += 8
        }
    } else {
        while i + 8 <= count { store8(load8(dx + i).addingProduct(load8(dout + i), simdGeluDerivative(load8(x + i))), dx + i); i += 8 }
    }
    if i < count {
        let d = simdGeluDerivative(tail8(x + i, count - i))
        for j in 0..<(count - i) { dx[i + j] = (overwrite ? 0 : dx[i + j]) + dout[i + j] * d[j] }
    }
}

/// Sigmoid: out = 1 / (1 + exp(-x)), stable for large |x|.
@inlinable public func sigmoidForward(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    for i in 0..<count {
        let v = x[i]
        if v >= 0 { out[i] = 1 / (1 + expf(-v)) } else { let e = expf(v); out[i] = e / (1 + e) }
    }
}

/// Sigmoid backward: dx += dout * out (1 - out)
@inlinable public func sigmoidBackward(_ dx: UnsafeMutablePointer<Float>, _ dout: UnsafePointer<Float>, _ out: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { dx[i] += dout[i] * out[i] * (1 - out[i]) }
}

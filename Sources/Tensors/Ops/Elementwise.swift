import Kernels

/// Broadcasting (numpy rules) of two shapes: the output shape, or nil if incompatible.
func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
    let n = max(a.count, b.count)
    var out = [Int](repeating: 1, count: n)
    for i in 0..<n {
        let da = i < n - a.count ? 1 : a[i - (n - a.count)]
        let db = i < n - b.count ? 1 : b[i - (n - b.count)]
        if da != db && da != 1 && db != 1 { return nil }
        out[i] = max(da, db)
    }
    return out
}

/// Element strides of `shape` read as `outShape` (0 along broadcast dimensions).
func broadcastStrides(_ shape: [Int], to outShape: [Int]) -> [Int] {
    let n = outShape.count
    var strides = [Int](repeating: 0, count: n)
    var s = 1
    for i in stride(from: n - 1, through: 0, by: -1) {
        let j = i - (n - shape.count)
        let d = j >= 0 ? shape[j] : 1
        strides[i] = d == 1 ? 0 : s
        s *= d
    }
    return strides
}

enum BinaryKind { case add, mul }

/// out[i] = a[ia] (op) b[ib] over `outShape`, iterating the last dimension innermost.
func broadcastApply(_ kind: BinaryKind, _ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ aStrides: [Int],
                    _ b: UnsafePointer<Float>, _ bStrides: [Int], outShape: [Int]) {
    let n = outShape.count
    let inner = outShape[n - 1], sa = aStrides[n - 1], sb = bStrides[n - 1]
    let outer = outShape.dropLast().reduce(1, *)
    var index = [Int](repeating: 0, count: max(n - 1, 0))
    var oa = 0, ob = 0
    for o in 0..<outer {
        let po = out + o * inner, pa = a + oa, pb = b + ob
        switch (kind, sa, sb) {
        case (.add, 1, 1): for j in 0..<inner { po[j] = pa[j] + pb[j] }
        case (.mul, 1, 1): for j in 0..<inner { po[j] = pa[j] * pb[j] }
        case (.add, _, _): for j in 0..<inner { po[j] = pa[j * sa] + pb[j * sb] }
        case (.mul, _, _): for j in 0..<inner { po[j] = pa[j * sa] * pb[j * sb] }
        }
        // advance the multi-index over the outer dimensions
        var d = n - 2
        while d >= 0 {
            index[d] += 1; oa += aStrides[d]; ob += bStrides[d]
            if index[d] < outShape[d] { break }
            oa -= aStrides[d] * outShape[d]; ob -= bStrides[d] * outShape[d]
            index[d] = 0; d -= 1
        }
    }
}

/// Un-broadcasting, the one place it happens: dx (shape `shape`) += sum of dy
/// (shape `outShape`) over the dimensions along which x was broadcast.
/// With `other` it adds dy * other (the product rule of `mul`).
func unbroadcastAccumulate(_ dx: UnsafeMutablePointer<Float>, shape: [Int], _ dy: UnsafePointer<Float>, outShape: [Int],
                           times other: (UnsafePointer<Float>, [Int])? = nil) {
    let xStrides = broadcastStrides(shape, to: outShape)
    let n = outShape.count
    let inner = outShape[n - 1], sx = xStrides[n - 1]
    let so = other.map { broadcastStrides($0.1, to: outShape) }
    let outer = outShape.dropLast().reduce(1, *)
    var index = [Int](repeating: 0, count: max(n - 1, 0))
    var ox = 0, oo = 0
    for o in 0..<outer {
        let pd = dy + o * inner, px = dx + ox
        if let other, let so {
            let po = other.0 + oo, s2 = so[n - 1]
            if sx == 1 && s2 == 1 { for j in 0..<inner { px[j] += pd[j] * po[j] } }
            else { for j in 0..<inner { px[j * sx] += pd[j] * po[j * s2] } }
        } else {
            if sx == 1 { for j in 0..<inner { px[j] += pd[j] } }
            else { var s: Float = 0; for j in 0..<inner { s += pd[j] }; if sx == 0 { px[0] += s } else { for j in 0..<inner { px[j * sx] += pd[j] } } }
        }
        var d = n - 2
        while d >= 0 {
            index[d] += 1; ox += xStrides[d]; if let so { oo += so[d] }
            if index[d] < outShape[d] { break }
            ox -= xStrides[d] * outShape[d]; if let so { oo -= so[d] * outShape[d] }
            index[d] = 0; d -= 1
        }
    }
}

private func binary(_ kind: BinaryKind, _ a: Tensor, _ b: Tensor) -> Tensor {
    guard let shape = broadcastShape(a.shape, b.shape) else {
        preconditionFailure("cannot broadcast \(a.shape) with \(b.shape)")
    }
    let y = Tensor(shape: shape)
    if a.shape == b.shape {
        parallelFor(y.count, grain: 32_768) { _, r in
            let o = r.lowerBound
            switch kind {
            case .add: add(y.data + o, a.data + o, b.data + o, count: r.count)
            case .mul: mul(y.data + o, a.data + o, b.data + o, count: r.count)
            }
        }
    } else {
        broadcastApply(kind, y.data, a.data, broadcastStrides(a.shape, to: shape), b.data, broadcastStrides(b.shape, to: shape), outShape: shape)
    }
    y.recordBackward(on: Tape.needsGrad(a, b)) { dy in
        // d(x) for operand x, whose partner is `other`: for an add, x of the output's shape
        // takes over dy's buffer when it has no gradient yet; else (both operands of the
        // output's shape for a product) written when x's gradient is fresh, added otherwise;
        // broadcasting goes through unbroadcastAccumulate
        func backward(_ x: Tensor, _ other: Tensor) {
            if kind == .add && x.shape == shape && x.adoptGradient(of: y) { return }
            if x.shape == shape && (kind == .add || other.shape == shape) {
                let (dx, fresh) = x.gradForFullWrite()
                switch (kind, fresh) {
                case (.add, true): dx.update(from: dy, count: x.count)
                case (.add, false): accumulate(dx, dy, count: x.count)
                case (.mul, true): mul(dx, dy, other.data, count: x.count)
                case (.mul, false): accumulateProduct(dx, dy, other.data, count: x.count)
                }
            } else {
                unbroadcastAccumulate(x.ensureGrad(), shape: x.shape, dy, outShape: shape,
                                      times: kind == .mul ? (UnsafePointer(other.data), other.shape) : nil)
            }
        }
        if a.requiresGrad { backward(a, b) }
        if b.requiresGrad { backward(b, a) }
    }
    return y
}

/// a + b with broadcasting. d/da = un-broadcast(dy), d/db likewise.
public func + (a: Tensor, b: Tensor) -> Tensor { binary(.add, a, b) }

/// a * b (elementwise) with broadcasting. d/da = un-broadcast(dy * b), d/db = un-broadcast(dy * a).
public func * (a: Tensor, b: Tensor) -> Tensor { binary(.mul, a, b) }

/// x * s for a constant s. dx += s dy.
public func * (x: Tensor, s: Float) -> Tensor {
    let y = Tensor(shape: x.shape)
    for i in 0..<x.count { y.data[i] = x.data[i] * s }
    y.recordBackward(on: Tape.needsGrad(x)) { dy in axpy(x.ensureGrad(), dy, alpha: s, count: x.count) }
    return y
}

/// y = f(x) elementwise for an f whose derivative is a function of y: `forward(y, x, count)`
/// writes y, `backward(dx, dy, y, count)` adds dy f'(x) (computed from y) into dx. The one
/// body of `relu` and `sigmoid`; any shape, y has x's.
private func elementwiseFromOutput(
    _ x: Tensor, forward: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, Int) -> Void,
    backward: @escaping (UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, Int) -> Void
) -> Tensor {
    let y = Tensor(shape: x.shape)
    forward(y.data, x.data, x.count)
    y.recordBackward(on: Tape.needsGrad(x)) { dy in backward(x.ensureGrad(), dy, y.data, x.count) }
    return y
}

/// max(x, 0). dx += dy (y > 0).
public func relu(_ x: Tensor) -> Tensor {
    elementwiseFromOutput(x, forward: { reluForward($0, $1, count: $2) }, backward: { reluBackward($0, $1, $2, count: $3) })
}

/// GELU, tanh approximation (SPEC 2). dx += dy gelu'(x).
public func gelu(_ x: Tensor) -> Tensor {
    let y = Tensor(shape: x.shape)
    let n = x.count
    parallelFor(n, grain: 32_768) { _, r in geluForward(y.data + r.lowerBound, x.data + r.lowerBound, count: r.count) }
    y.recordBackward(on: Tape.needsGrad(x)) { dy in
        let (dx, fresh) = x.gradForFullWrite()
        parallelFor(n, grain: 32_768) { _, r in
            geluBackward(dx + r.lowerBound, dy + r.lowerBound, x.data + r.lowerBound, count: r.count, overwrite: fresh)
        }
    }
    return y
}

/// 1 / (1 + exp(-x)). dx += dy y (1 - y).
public func sigmoid(_ x: Tensor) -> Tensor {
    elementwiseFromOutput(x, forward: { sigmoidForward($0, $1, count: $2) }, backward: { sigmoidBackward($0, $1, $2, count: $3) })
}

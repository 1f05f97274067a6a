import Kernels

/// The same values under another shape (a copy; the gradient is copied back).
public func reshape(_ x: Tensor, _ shape: [Int]) -> Tensor {
    precondition(shape.reduce(1, *) == x.count, "reshape \(x.shape) -> \(shape): counts differ")
    let y = Tensor(shape: shape, storage: x.storage, offset: x.offset)
    y.recordBackward(on: Tape.needsGrad(x)) { dy in
        if !x.adoptGradient(of: y) { accumulate(x.ensureGrad(), dy, count: x.count) }
    }
    return y
}

/// Concatenation along the last dimension: [..., n_i] -> [..., sum n_i]
/// (all parts have the same leading shape). Backward splits dy into the parts.
public func concat(_ parts: [Tensor]) -> Tensor {
    precondition(!parts.isEmpty, "concat of nothing")
    let rows = parts[0].rows
    let widths = parts.map(\.lastDim)
    for p in parts { precondition(p.rows == rows, "concat: \(p.shape) vs \(parts[0].shape)") }
    let total = widths.reduce(0, +)
    let y = Tensor(shape: Array(parts[0].shape.dropLast()) + [total])
    let sources = parts.map { (UnsafePointer($0.data), $0.lastDim) }
    parallelFor(rows, grain: Swift.max(1, 32_768 / Swift.max(total, 1))) { _, r in
        concatColumns(y.data + r.lowerBound * total, sources.map { ($0.0 + r.lowerBound * $0.1, $0.1) }, rows: r.count)
    }
    let tape = Tape.current.flatMap { t in parts.contains(where: \.requiresGrad) ? t : nil }
    y.recordBackward(on: tape) { dy in
        var offset = 0
        for (p, w) in zip(parts, widths) {
            if p.requiresGrad {
                let (dp, fresh) = p.gradForFullWrite()
                copyColumns(dp, dy, rows: rows, n: total, offset: offset, width: w, accumulate: !fresh)
            }
            offset += w
        }
    }
    return y
}

/// Columns [offset, offset + width) of the last dimension: [..., n] -> [..., width].
public func sliceColumns(_ x: Tensor, offset: Int, width: Int) -> Tensor {
    let n = x.lastDim, rows = x.rows
    precondition(offset >= 0 && offset + width <= n, "slice [\(offset), \(offset + width)) of \(x.shape)")
    let y = Tensor(shape: Array(x.shape.dropLast()) + [width])
    copyColumns(y.data, x.data, rows: rows, n: n, offset: offset, width: width, accumulate: false)
    y.recordBackward(on: Tape.needsGrad(x)) { dy in addIntoColumns(x.ensureGrad(), dy, rows: rows, n: n, offset: offset, width: width) }
    return y
}

/// Rows of x along the first dimension: y[i] = x[index[i]]  (x: [N, ...] -> [index.count, ...]).
/// Backward: scatter-add of dy into dx.
public func gatherRows(_ x: Tensor, _ index: [Int32]) -> Tensor {
    let inner = x.shape.dropFirst().reduce(1, *)
    let y = Tensor(shape: [index.count] + x.shape.dropFirst())
    if index.isEmpty { return y }
    index.withUnsafeBufferPointer { ip in
        parallelFor(index.count, grain: Swift.max(1, 32_768 / Swift.max(inner, 1))) { _, r in
            gatherRowsOf(y.data + r.lowerBound * inner, x.data, index: ip.baseAddress! + r.lowerBound, count: r.count, n: inner)
        }
    }
    y.recordBackward(on: Tape.needsGrad(x)) { dy in
        index.withUnsafeBufferPointer { scatterAddRows(x.ensureGrad(), ids: $0.baseAddress!, dy, count: index.count, dim: inner) }
    }
    return y
}

/// Scatter of rows into a zero-filled tensor: y[index[i]] = x[i] for x [n, ...] ->
/// y [rows, ...]; rows not named by `index` are 0 (index entries must be distinct).
/// The inverse of `gatherRows` for unpacking packed tokens. Backward: dx[i] += dy[index[i]].
public func scatterRows(_ x: Tensor, _ index: [Int32], rows: Int) -> Tensor {
    let inner = x.shape.dropFirst().reduce(1, *)
    precondition(index.count == x.shape[0], "scatterRows: \(index.count) indices for \(x.shape)")
    let y = Tensor(shape: [rows] + x.shape.dropFirst(), zeroed: true)
    for (i, r) in index.enumerated() { (y.data + Int(r) * inner).update(from: x.data + i * inner, count: inner) }
    y.recordBackward(on: Tape.needsGrad(x)) { dy in
        let dx = x.ensureGrad()
        for (i, r) in index.enumerated() { accumulate(dx + i * inner, dy + Int(r) * inner, count: inner) }
    }
    return y
}

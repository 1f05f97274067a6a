/// Embedding gather: out[i, :] = table[ids[i], :]   (out [n, D], table [rows, D], ids [n])
@inlinable public func gatherRows(_ out: UnsafeMutablePointer<Float>, table: UnsafePointer<Float>, ids: UnsafePointer<Int32>, count n: Int, dim: Int) {
    for i in 0..<n {
        (out + i * dim).update(from: table + Int(ids[i]) * dim, count: dim)
    }
}

/// Pooled gather over jagged ids: for bag b, the rows ids[offsets[b] ..< offsets[b+1]]
/// are summed (`mean`: divided by their count) into out[b, :]; an empty bag reads
/// row 0 (the learned "missing" row, SPEC 1.1). out [bags, D], offsets [bags + 1].
@inlinable public func gatherPooled(_ out: UnsafeMutablePointer<Float>, table: UnsafePointer<Float>, ids: UnsafePointer<Int32>,
                                   offsets: UnsafePointer<Int32>, bags: Int, dim: Int, mean: Bool) {
    for b in 0..<bags {
        let o = out + b * dim
        let lo = Int(offsets[b]), hi = Int(offsets[b + 1])
        if lo == hi { o.update(from: table, count: dim); continue }
        o.update(from: table + Int(ids[lo]) * dim, count: dim)
        for p in (lo + 1)..<hi {
            let row = table + Int(ids[p]) * dim
            for j in 0..<dim { o[j] += row[j] }
        }
        if mean && hi - lo > 1 {
            let s = 1 / Float(hi - lo)
            for j in 0..<dim { o[j] *= s }
        }
    }
}

/// Scatter-add of row gradients: grad[ids[i], :] += dout[i, :]   (the naive dense form;
/// training uses `SparseRows` so no dense [rows, D] gradient is ever touched).
@inlinable public func scatterAddRows(_ grad: UnsafeMutablePointer<Float>, ids: UnsafePointer<Int32>, _ dout: UnsafePointer<Float>, count n: Int, dim: Int) {
    for i in 0..<n {
        let g = grad + Int(ids[i]) * dim, d = dout + i * dim
        for j in 0..<dim { g[j] += d[j] }
    }
}

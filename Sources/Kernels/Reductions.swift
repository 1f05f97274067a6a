/// Column sums: out[j] (+)= sum_r x[r, j]   (x is [rows, n]); the bias gradient.
@inlinable public func sumRows(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Int, n: Int, accumulate: Bool = true) {
    if !accumulate { out.update(repeating: 0, count: n) }
    for r in 0..<rows {
        let xi = x + r * n
        for j in 0..<n { out[j] += xi[j] }
    }
}

/// Row sums: out[r] = sum_j x[r, j]   (x is [rows, n])
@inlinable public func sumColumns(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Int, n: Int) {
    for r in 0..<rows {
        let xi = x + r * n
        var s: Float = 0
        for j in 0..<n { s += xi[j] }
        out[r] = s
    }
}

/// Sum of all elements, accumulated in Double.
@inlinable public func sum(_ x: UnsafePointer<Float>, count: Int) -> Double {
    var s: Double = 0
    for i in 0..<count { s += Double(x[i]) }
    return s
}

/// Mean of all elements, accumulated in Double.
@inlinable public func mean(_ x: UnsafePointer<Float>, count: Int) -> Double {
    count == 0 ? 0 : sum(x, count: count) / Double(count)
}

/// out [d] = max over the n rows of x [n, d] (row stride d), column by column, and with
/// `argmax` the first row attaining it (strict >, so ties keep the earliest row): SIMD8 over
/// the columns where d is a multiple of 8 (naive twin: `naiveMaxPoolRows`). n >= 1.
@inlinable public func maxPoolRows(
    _ out: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>?, _ x: UnsafePointer<Float>, n: Int, d: Int
) {
    precondition(n >= 1, "maxPoolRows needs a row")
    out.update(from: x, count: d)
    argmax?.update(repeating: 0, count: d)
    if d % 8 == 0 {
        var j = 0
        while j < d {
            var m = load8(x + j)
            if let argmax {
                var a = SIMD8<Int32>(repeating: 0)
                for i in 1..<n {
                    let v = load8(x + i * d + j)
                    let greater = v .> m
                    m.replace(with: v, where: greater)
                    a.replace(with: SIMD8(repeating: Int32(i)), where: greater)
                }
                UnsafeMutableRawPointer(argmax + j).storeBytes(of: a, as: SIMD8<Int32>.self)
            } else {
                for i in 1..<n { m = simdMax(m, load8(x + i * d + j)) }
            }
            store8(m, out + j)
            j += 8
        }
        return
    }
    for i in 1..<n {
        let xi = x + i * d
        for j in 0..<d where xi[j] > out[j] { out[j] = xi[j]; argmax?[j] = Int32(i) }
    }
}

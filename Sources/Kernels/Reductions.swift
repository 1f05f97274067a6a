/// Column sums: out[j] (+)= sum_r x[r, j]   (x is [rows, n]); the bias gradient.
/// Thirty-two columns at a time in four registers over blocks of 256 rows (a block's rows
/// stay in cache for its next 32 columns); each column adds its rows in order, as the
/// naive loop `out[j] += x[r, j]` does, so the sums are the same bits.
@inlinable public func sumRows(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Int, n: Int, accumulate: Bool = true) {
    if !accumulate { out.update(repeating: 0, count: n) }
    let n32 = n - n % 32
    var r0 = 0
    while r0 < rows {
        let r1 = Swift.min(rows, r0 + 256)
        var j = 0
        while j < n32 {
            var a0 = load8(out + j), a1 = load8(out + j + 8), a2 = load8(out + j + 16), a3 = load8(out + j + 24)
            for r in r0..<r1 {
                let xi = x + r * n + j
                a0 += load8(xi); a1 += load8(xi + 8); a2 += load8(xi + 16); a3 += load8(xi + 24)
            }
            store8(a0, out + j); store8(a1, out + j + 8); store8(a2, out + j + 16); store8(a3, out + j + 24)
            j += 32
        }
        if n32 < n {
            for r in r0..<r1 {
                let xi = x + r * n
                for c in n32..<n { out[c] += xi[c] }
            }
        }
        r0 = r1
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

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

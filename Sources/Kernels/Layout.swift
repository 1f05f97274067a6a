/// Column concatenation: out[r, :] = [x_0[r, :] ; x_1[r, :] ; ...]; `parts` are
/// (pointer, width) pairs of [rows, width_i] buffers; out is [rows, sum width_i].
@inlinable public func concatColumns(_ out: UnsafeMutablePointer<Float>, _ parts: [(UnsafePointer<Float>, Int)], rows: Int) {
    var total = 0
    for p in parts { total += p.1 }
    var offset = 0
    for (src, w) in parts {
        for r in 0..<rows { (out + r * total + offset).update(from: src + r * w, count: w) }
        offset += w
    }
}

/// Copies columns [offset, offset + width) of x [rows, n] into out [rows, width]
/// (accumulate: adds). The backward of `concatColumns`, and a column slice.
@inlinable public func copyColumns(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Int, n: Int, offset: Int, width: Int, accumulate: Bool) {
    for r in 0..<rows {
        let o = out + r * width, s = x + r * n + offset
        if accumulate { for j in 0..<width { o[j] += s[j] } } else { o.update(from: s, count: width) }
    }
}

/// Adds x [rows, width] into columns [offset, offset + width) of out [rows, n].
@inlinable public func addIntoColumns(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Int, n: Int, offset: Int, width: Int) {
    for r in 0..<rows {
        let o = out + r * n + offset, s = x + r * width
        for j in 0..<width { o[j] += s[j] }
    }
}

/// out[j, i] = x[i, j]   (x [rows, cols] -> out [cols, rows])
@inlinable public func transpose(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Int, cols: Int) {
    let tile = 32
    var i0 = 0
    while i0 < rows {
        var j0 = 0
        while j0 < cols {
            for i in i0..<Swift.min(i0 + tile, rows) {
                for j in j0..<Swift.min(j0 + tile, cols) { out[j * rows + i] = x[i * cols + j] }
            }
            j0 += tile
        }
        i0 += tile
    }
}

/// Row gather: out[i, :] = x[index[i], :]   (x [*, n], out [count, n])
@inlinable public func gatherRowsOf(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, index: UnsafePointer<Int32>, count: Int, n: Int) {
    for i in 0..<count { (out + i * n).update(from: x + Int(index[i]) * n, count: n) }
}

/// The indices of the rows of x [rows, n] holding a nonzero, in order, written to `out`
/// [rows]: their count, or nil once it passes `limit`. Naive twin: `isZeroRow` per row.
/// Without `sums` it stops there (a dense x costs about one read per row, since its rows'
/// first elements are nonzero). With `sums` it also does `sumRows(sums, x, ...)` (a bias
/// gradient) in the same pass over x from memory: 64 rows at a time, each block checked and
/// then summed while in L1; the sums cover every row and are `sumRows`'s bits.
@inlinable public func nonzeroRows(_ x: UnsafePointer<Float>, rows: Int, n: Int, limit: Int, into out: UnsafeMutablePointer<Int32>,
                                   addingColumnSumsTo sums: UnsafeMutablePointer<Float>? = nil) -> Int? {
    var m = 0, sparse = true, r0 = 0
    while r0 < rows {
        let r1 = Swift.min(rows, r0 + 64)
        if sparse {
            for r in r0..<r1 where !isZeroRow(x + r * n, count: n) {
                if m == limit { sparse = false; break }
                out[m] = Int32(r)
                m += 1
            }
        }
        if let sums { sumRows(sums, x + r0 * n, rows: r1 - r0, n: n) } else if !sparse { return nil }
        r0 = r1
    }
    return sparse ? m : nil
}

/// out [rows, n] = x [count, n]'s rows at the ascending rows `index` and zero elsewhere, in
/// one write of out (instead of zero-filling it and then writing the rows).
@inlinable public func scatterRowsZeroingTheRest(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, index: UnsafePointer<Int32>,
                                                 count: Int, rows: Int, n: Int) {
    var next = 0
    for r in 0..<rows {
        if next < count && Int(index[next]) == r {
            (out + r * n).update(from: x + next * n, count: n)
            next += 1
        } else {
            (out + r * n).update(repeating: 0, count: n)
        }
    }
}

/// Row scatter: out[index[i], :] = x[i, :] (accumulate: +=)   (x [count, n], out [*, n])
@inlinable public func scatterRowsOf(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, index: UnsafePointer<Int32>, count: Int, n: Int,
                                     accumulate: Bool) {
    for i in 0..<count {
        let o = out + Int(index[i]) * n, s = x + i * n
        if accumulate { for j in 0..<n { o[j] += s[j] } } else { o.update(from: s, count: n) }
    }
}

import Foundation
import Kernels

// Float64 references of the ops, written the obvious way (index arithmetic),
// used by the one-line op tests.

/// Row-major strides of `shape`.
func strides(_ shape: [Int]) -> [Int] {
    var s = [Int](repeating: 1, count: shape.count)
    for i in stride(from: shape.count - 2, through: 0, by: -1) { s[i] = s[i + 1] * shape[i + 1] }
    return s
}

/// numpy broadcasting of a binary function, by multi-index.
func broadcast(_ a: [Double], _ aShape: [Int], _ b: [Double], _ bShape: [Int], _ f: (Double, Double) -> Double) -> [Double] {
    let n = max(aShape.count, bShape.count)
    let ap = [Int](repeating: 1, count: n - aShape.count) + aShape, bp = [Int](repeating: 1, count: n - bShape.count) + bShape
    let out = (0..<n).map { max(ap[$0], bp[$0]) }
    let os = strides(out), as_ = strides(ap), bs = strides(bp)
    return (0..<out.reduce(1, *)).map { flat in
        var ia = 0, ib = 0
        for d in 0..<n {
            let i = (flat / os[d]) % out[d]
            ia += (ap[d] == 1 ? 0 : i) * as_[d]
            ib += (bp[d] == 1 ? 0 : i) * bs[d]
        }
        return f(a[ia], b[ib])
    }
}

/// y = x W^T + b over rows of x [rows, nIn], W [nOut, nIn].
func linearReference(_ x: [Double], _ w: [Double], _ b: [Double]?, nIn: Int, nOut: Int) -> [Double] {
    let rows = x.count / nIn
    var y = naiveMatmul(x, w, m: rows, n: nOut, k: nIn, transB: true)
    if let b { for r in 0..<rows { for j in 0..<nOut { y[r * nOut + j] += b[j] } } }
    return y
}

/// Column concatenation of row-major parts [rows, widths[i]].
func concatReference(_ parts: [[Double]], widths: [Int]) -> [Double] {
    let rows = widths[0] == 0 ? 0 : parts[0].count / widths[0]
    var out: [Double] = []
    for r in 0..<rows {
        for (p, w) in zip(parts, widths) { out += p[(r * w)..<(r * w + w)] }
    }
    return out
}

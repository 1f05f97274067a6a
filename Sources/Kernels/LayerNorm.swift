import Foundation

/// Layer norm over the last dimension (eps as given, 1e-5 in SPEC 2):
/// out[r, :] = (x[r, :] - mean_r) * rstd_r * weight + bias, rstd_r = 1 / sqrt(var_r + eps)
/// x, out: [rows, n]; weight, bias: [n]; mean, rstd: [rows] (saved for the backward).
@inlinable public func layerNormForward(
    _ out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
    _ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
    rows: Int, n: Int, eps: Float = 1e-5
) {
    let invN = 1 / Float(n)
    for r in 0..<rows {
        let xi = x + r * n, oi = out + r * n
        var s: Float = 0
        for j in 0..<n { s += xi[j] }
        let m = s * invN
        var v: Float = 0
        for j in 0..<n { let d = xi[j] - m; v += d * d }
        let rs = 1 / (v * invN + eps).squareRoot()
        for j in 0..<n { oi[j] = (xi[j] - m) * rs * weight[j] + bias[j] }
        mean[r] = m; rstd[r] = rs
    }
}

/// Layer norm backward (accumulates into dx, dweight, dbias):
/// xhat = (x - mean) rstd; dxhat = dout * weight;
/// dx += rstd (dxhat - mean(dxhat) - xhat mean(dxhat * xhat)); dweight += sum_r dout xhat; dbias += sum_r dout.
@inlinable public func layerNormBackward(
    dx: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>?, dbias: UnsafeMutablePointer<Float>?,
    _ dout: UnsafePointer<Float>, _ x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, rows: Int, n: Int
) {
    let invN = 1 / Float(n)
    for r in 0..<rows {
        let xi = x + r * n, di = dout + r * n
        let m = mean[r], rs = rstd[r]
        var sumD: Float = 0, sumDX: Float = 0
        for j in 0..<n {
            let xh = (xi[j] - m) * rs
            let dxh = di[j] * weight[j]
            sumD += dxh; sumDX += dxh * xh
        }
        let meanD = sumD * invN, meanDX = sumDX * invN
        if let dx {
            let gi = dx + r * n
            for j in 0..<n {
                let xh = (xi[j] - m) * rs
                gi[j] += rs * (di[j] * weight[j] - meanD - xh * meanDX)
            }
        }
        if let dweight { for j in 0..<n { dweight[j] += di[j] * (xi[j] - m) * rs } }
        if let dbias { for j in 0..<n { dbias[j] += di[j] } }
    }
}

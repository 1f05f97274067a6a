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
    if n % 8 == 0 && n > 0 {  // vectorised rows (d_model is a multiple of 8 in practice)
        for r in 0..<rows {
            let xi = x + r * n, oi = out + r * n
            var s8 = SIMD8<Float>(repeating: 0)
            var j = 0
            while j < n { s8 += load8(xi + j); j += 8 }
            let m = s8.sum() * invN
            let m8 = SIMD8<Float>(repeating: m)
            var v8 = SIMD8<Float>(repeating: 0)
            j = 0
            while j < n { let dv = load8(xi + j) - m8; v8 = v8.addingProduct(dv, dv); j += 8 }
            let rs = 1 / (v8.sum() * invN + eps).squareRoot()
            let rs8 = SIMD8<Float>(repeating: rs)
            j = 0
            while j < n { store8(((load8(xi + j) - m8) * rs8) * load8(weight + j) + load8(bias + j), oi + j); j += 8 }
            mean[r] = m; rstd[r] = rs
        }
        return
    }
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
    if n % 8 == 0 && n > 0 {  // vectorised rows
        for r in 0..<rows {
            let xi = x + r * n, di = dout + r * n
            let m8 = SIMD8<Float>(repeating: mean[r]), rs8 = SIMD8<Float>(repeating: rstd[r])
            var sd8 = SIMD8<Float>(repeating: 0), sdx8 = SIMD8<Float>(repeating: 0)
            var j = 0
            while j < n {
                let xh = (load8(xi + j) - m8) * rs8, dxh = load8(di + j) * load8(weight + j)
                sd8 += dxh; sdx8 = sdx8.addingProduct(dxh, xh); j += 8
            }
            let meanD8 = SIMD8<Float>(repeating: sd8.sum() * invN), meanDX8 = SIMD8<Float>(repeating: sdx8.sum() * invN)
            j = 0
            while j < n {
                let xh = (load8(xi + j) - m8) * rs8, d8 = load8(di + j)
                if let dx { let gi = dx + r * n + j; store8(load8(gi) + rs8 * (d8 * load8(weight + j) - meanD8 - xh * meanDX8), gi) }
                if let dweight { store8(load8(dweight + j).addingProduct(d8, xh), dweight + j) }
                if let dbias { store8(load8(dbias + j) + d8, dbias + j) }
                j += 8
            }
        }
        return
    }
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

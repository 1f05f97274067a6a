// Vectorised transcendental functions. Swift calls libm once per lane for
// exp/tanh (PERF-NOTES: scalar calls dominate GELU), so these use SIMD8 with the
// classic range reduction exp(x) = 2^n exp(r), |r| <= ln2/2, and a degree-5
// polynomial fitted for least maximum relative error on that interval (1.05e-7; with
// float arithmetic 1.8e-7 over the clamped range [-87.3, 88.3], measured against libm).
// The degree-6 Taylor polynomial it replaced took one multiply-add more for 2.3e-7.

@usableFromInline let expMagic: Float = 12_582_912  // 1.5 * 2^23: float rounding to an integer

/// e^x per lane (x clamped to [-87.3, 88.3], so the result is a finite normal float).
@inlinable @inline(__always)
public func simdExp(_ x: SIMD8<Float>) -> SIMD8<Float> {
    simdExpReduced(simdMin(simdMax(x, SIMD8(repeating: -87.3)), SIMD8(repeating: 88.3)))
}

/// e^x per lane for x <= 88.3, as a score minus its row's max or log-sum-exp (<= 0) is: only
/// clamped below (at -87.3), one comparison fewer than `simdExp`.
@inlinable @inline(__always)
public func simdExpBelowOverflow(_ x: SIMD8<Float>) -> SIMD8<Float> {
    simdExpReduced(simdMax(x, SIMD8(repeating: -87.3)))
}

/// e^x for x in [-87.3, 88.3]: 2^n e^r with n = round(x log2 e), r = x - n ln 2 (in two
/// parts), e^r = 1 + r + r^2 (c2 + r (c3 + r (c4 + r c5))).
@inlinable @inline(__always)
public func simdExpReduced(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let t = SIMD8<Float>(repeating: expMagic).addingProduct(x, SIMD8(repeating: 1.442_695_04))  // x log2(e) + magic
    let n = t - SIMD8(repeating: expMagic)
    var r = x.addingProduct(n, SIMD8(repeating: -0.693_145_752))
    r = r.addingProduct(n, SIMD8(repeating: -1.428_606_8e-06))
    var p = SIMD8<Float>(repeating: 0.008_312_525_2)
    p = SIMD8(repeating: 0.041_890_115).addingProduct(p, r)
    p = SIMD8(repeating: 0.166_671_14).addingProduct(p, r)
    p = SIMD8(repeating: 0.499_992_31).addingProduct(p, r)
    p = SIMD8(repeating: 1).addingProduct(p, r)
    p = SIMD8(repeating: 1).addingProduct(p, r)
    let ni = unsafeBitCast(t, to: SIMD8<UInt32>.self) &- SIMD8<UInt32>(repeating: expMagic.bitPattern)  // n as a two's-complement integer
    let scale = unsafeBitCast((ni &+ 127) &<< 23, to: SIMD8<Float>.self)
    return p * scale
}

@usableFromInline let geluK: Float = 0.7978845608028654  // sqrt(2 / pi)

/// GELU (tanh approximation) via gelu(x) = x sigmoid(2u), u = sqrt(2/pi)(x + 0.044715 x^3),
/// since 0.5 (1 + tanh u) = sigmoid(2u).
@inlinable @inline(__always)
public func simdGelu(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let u = geluK * x * SIMD8(repeating: 1).addingProduct(SIMD8(repeating: 0.044715) * x, x)
    return x / (1 + simdExp(-2 * u))
}

/// d gelu / dx = s + 2 x s (1 - s) du/dx, s = sigmoid(2u), du/dx = sqrt(2/pi)(1 + 3 0.044715 x^2).
@inlinable @inline(__always)
public func simdGeluDerivative(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let x2 = x * x
    let u = geluK * x * SIMD8(repeating: 1).addingProduct(SIMD8(repeating: 0.044715), x2)
    let s = 1 / (1 + simdExp(-2 * u))
    let du = geluK * SIMD8(repeating: 1).addingProduct(SIMD8(repeating: 3 * 0.044715), x2)
    return s + 2 * x * s * (1 - s) * du
}

@inlinable @inline(__always)
func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }

@inlinable @inline(__always)
func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self) }

/// The last `count % 8` elements of a lane-wise loop, through a padded SIMD8.
@inlinable @inline(__always)
func tail8(_ p: UnsafePointer<Float>, _ n: Int) -> SIMD8<Float> {
    var v = SIMD8<Float>(repeating: 0)
    for i in 0..<n { v[i] = p[i] }
    return v
}

/// Lane-wise max / min without the stdlib's generic `pointwiseMax` (not inlined:
/// a call per vector, PERF-NOTES); compare + select compiles to vmaxps / vminps.
@inlinable @inline(__always)
public func simdMax(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a.replacing(with: b, where: a .< b) }

@inlinable @inline(__always)
public func simdMin(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a.replacing(with: b, where: b .< a) }

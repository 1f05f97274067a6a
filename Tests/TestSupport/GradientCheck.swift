import Foundation
import Kernels

// Numeric comparison helpers for tests: normwise relative error, central finite
// differences in Float64.

/// Normwise relative error max_i |a_i - b_i| / max_i |b_i| (b the reference),
/// the absolute error when the reference is all zeros, 0 for empty inputs and
/// infinity for a NaN or a length mismatch.
public func relativeError(_ a: [Double], _ b: [Double]) -> Double {
    if a.count != b.count { return .infinity }
    var diff: Double = 0, scale: Double = 0
    for i in 0..<a.count {
        let e = abs(a[i] - b[i])
        if e.isNaN { return .infinity }
        diff = max(diff, e)
        scale = max(scale, abs(b[i]))
    }
    return scale == 0 ? diff : diff / scale
}

/// `relativeError` of Float values against a Float64 reference.
public func relativeError(_ a: [Float], _ b: [Double]) -> Double { relativeError(a.map(Double.init), b) }

/// Central differences of a scalar function: g[i] = (f(x + h e_i) - f(x - h e_i)) / 2h.
public func centralDifference(at x: [Double], step h: Double = 1e-6, _ f: ([Double]) -> Double) -> [Double] {
    var xp = x
    var g = [Double](repeating: 0, count: x.count)
    for i in 0..<x.count {
        let x0 = xp[i]
        xp[i] = x0 + h; let fp = f(xp)
        xp[i] = x0 - h; let fm = f(xp)
        xp[i] = x0
        g[i] = (fp - fm) / (2 * h)
    }
    return g
}

/// sum_i y_i r_i: the scalar a gradient check differentiates.
public func dot(_ y: [Double], _ r: [Double]) -> Double {
    precondition(y.count == r.count, "dot of \(y.count) and \(r.count) values")
    var s: Double = 0
    for i in 0..<y.count { s += y[i] * r[i] }
    return s
}

private let threadsLock = NSLock()

/// Runs `body` with `Threads.set(count)`, holding a process-wide lock so tests
/// that compare thread counts never see another test change the count meanwhile;
/// restores 1 thread afterwards.
public func withThreads<T>(_ count: Int, _ body: () throws -> T) rethrows -> T {
    threadsLock.lock()
    defer { Threads.set(1); threadsLock.unlock() }
    Threads.set(count)
    return try body()
}

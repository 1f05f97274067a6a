// SPEC 2.7 Platt scaling, as `platt_fit` in braid_ref.py: fits the calibration pair that
// model.json stores (`Schema.PlattPair`).
import Foundation
import Schema

extension PlattPair {
    /// Fits (a, b) minimising the log loss sum(log(1 + e^z) - y z), z = a * logit + b, in
    /// float64 by Newton's method from (1, 0): Hessian + 1e-12 I; the step t * Newton step
    /// is taken for the first t in 1, 1/2, ..., 2^-30 whose loss does not increase (none:
    /// stop); stop when max |t * step| < 1e-10 or after `maximumIterations`. No rows or a
    /// single class: the identity. `labels` hold 0 or 1, one per logit.
    public static func fit(logits: [Double], labels: [Double], maximumIterations: Int = 100) -> PlattPair {
        precondition(logits.count == labels.count,
                     "PlattPair.fit: \(logits.count) logits but \(labels.count) labels; expected one label per logit")
        guard let first = labels.first, labels.contains(where: { $0 != first }) else { return .identity }
        let count = logits.count
        var terms = [Double](repeating: 0, count: count)
        // The log loss at (a, b), summed pairwise like numpy so step acceptance agrees with the reference.
        func loss(_ a: Double, _ b: Double) -> Double {
            for index in 0..<count {
                let z = a * logits[index] + b
                // logaddexp(0, z) = max(0, z) + log1p(exp(-|z|)), stable for any z.
                terms[index] = max(0, z) + log1p(exp(-abs(z))) - labels[index] * z
            }
            return pairwiseSum(terms)
        }
        var a = 1.0, b = 0.0
        var current = loss(a, b)
        for _ in 0..<maximumIterations {
            var gradientA = 0.0, gradientB = 0.0
            var hessianAA = 0.0, hessianAB = 0.0, hessianBB = 0.0
            for index in 0..<count {
                let x = logits[index]
                let p = 1 / (1 + exp(-(a * x + b)))
                let residual = p - labels[index], weight = p * (1 - p)
                gradientA += residual * x
                gradientB += residual
                hessianAA += weight * x * x
                hessianAB += weight * x
                hessianBB += weight
            }
            let (stepA, stepB) = solve2x2(hessianAA + 1e-12, hessianAB, hessianAB, hessianBB + 1e-12, gradientA, gradientB)
            var accepted: (a: Double, b: Double, loss: Double, t: Double)?
            for halvings in 0...30 {
                let t = 1 / Double(1 << halvings)
                let candidateA = a - t * stepA, candidateB = b - t * stepB
                let candidateLoss = loss(candidateA, candidateB)
                if candidateLoss <= current {
                    accepted = (candidateA, candidateB, candidateLoss, t)
                    break
                }
            }
            guard let step = accepted else { break }
            a = step.a
            b = step.b
            current = step.loss
            if max(abs(step.t * stepA), abs(step.t * stepB)) < 1e-10 { break }
        }
        return PlattPair(a: a, b: b)
    }
}

/// Solves [[m00, m01], [m10, m11]] (x, y) = (r0, r1) by LU with partial pivoting (LAPACK's
/// gesv on a 2x2 system).
private func solve2x2(_ m00: Double, _ m01: Double, _ m10: Double, _ m11: Double,
                      _ r0: Double, _ r1: Double) -> (Double, Double) {
    if abs(m10) > abs(m00) {  // swap the rows; the unknowns keep their order
        return solve2x2Pivoted(m10, m11, m00, m01, r1, r0)
    }
    return solve2x2Pivoted(m00, m01, m10, m11, r0, r1)
}

/// Elimination with the first row as pivot row.
private func solve2x2Pivoted(_ m00: Double, _ m01: Double, _ m10: Double, _ m11: Double,
                             _ r0: Double, _ r1: Double) -> (Double, Double) {
    let multiplier = m10 / m00
    let y = (r1 - multiplier * r0) / (m11 - multiplier * m01)
    let x = (r0 - m01 * y) / m00
    return (x, y)
}

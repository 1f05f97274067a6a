import Foundation
import Testing
import Tensors

/// The errors `checkOp` measured (normwise relative, see `relativeError`).
public struct OpCheck {
    /// The op's Float32 output against the Float64 reference.
    public var forward: Double
    /// Per input: the tape's gradient against central differences of the reference
    /// (nil for inputs not differentiated).
    public var gradients: [Double?]
}

/// tinygrad's `helper_test_op` for Braid: one line per op and case.
///
/// 1. Builds one parameter tensor per shape in `shapes` (values from `inputs`, or
///    seeded uniform in `range`), with a zeroed gradient slot (`attachGradient`) for
///    each input in `wrt` (default: all).
/// 2. Runs `forward` under a `Tape` and compares the output with `reference`, a
///    Float64 function of the same input values (relative error <= `forwardTolerance`).
/// 3. Reduces the output to a scalar with a fixed random projection,
///    loss = sum(y * r) (built from the `reshape` and `matmul` ops), runs
///    `tape.backward`, and compares each differentiated input's gradient with
///    central differences of sum(reference(x) * r) in Float64 (step `step`),
///    relative error <= `gradientTolerance`.
///
/// `gradients` reads the gradients after the backward pass (default: each input's
/// `grad`); ops whose gradient lives elsewhere (embedding tables: `SparseRows`)
/// pass a densifying closure. Failures are recorded at the caller's line.
@discardableResult
public func checkOp(
    shapes: [[Int]],
    inputs: [[Float]]? = nil,
    range: ClosedRange<Float> = -1...1,
    wrt: [Int]? = nil,
    forward: ([Tensor]) -> Tensor,
    reference: ([[Double]]) -> [Double],
    gradients: (([Tensor]) -> [[Float]?])? = nil,
    forwardTolerance: Double = 1e-5,
    gradientTolerance: Double = 1e-4,
    step: Double = 1e-6,
    seed: UInt64 = 1,
    sourceLocation: SourceLocation = #_sourceLocation
) -> OpCheck {
    var rng = TestRandom(seed: seed)
    let values: [[Float]] = inputs ?? shapes.map { rng.floats($0.reduce(1, *), in: range) }
    let differentiated = Set(wrt ?? Array(shapes.indices))
    let x64 = values.map { $0.map(Double.init) }
    let yRef = reference(x64)
    let r = rng.floats(yRef.count)
    let r64 = r.map(Double.init)

    let run = runOp(shapes: shapes, inputs: values, wrt: wrt, projection: r, forward: forward, gradients: gradients)
    let forwardError = relativeError(run.output, yRef)
    #expect(run.output.count == yRef.count, "output has \(run.output.count) values, reference \(yRef.count)", sourceLocation: sourceLocation)
    #expect(forwardError <= forwardTolerance, "forward relative error \(forwardError) > \(forwardTolerance)", sourceLocation: sourceLocation)
    var gradientErrors = [Double?](repeating: nil, count: shapes.count)
    guard run.output.count == yRef.count, yRef.count > 0 else { return OpCheck(forward: forwardError, gradients: gradientErrors) }
    let analytic = run.gradients

    for i in differentiated.sorted() {
        var x = x64
        let numeric = centralDifference(at: x64[i], step: step) { xi in
            x[i] = xi
            return dot(reference(x), r64)
        }
        guard let g = analytic[i] else {
            Issue.record("input \(i) (shape \(shapes[i])) received no gradient", sourceLocation: sourceLocation)
            continue
        }
        let e = relativeError(g, numeric)
        gradientErrors[i] = e
        #expect(e <= gradientTolerance, "gradient of input \(i) (shape \(shapes[i])): relative error \(e) > \(gradientTolerance)",
                sourceLocation: sourceLocation)
    }
    return OpCheck(forward: forwardError, gradients: gradientErrors)
}

/// Runs `forward` on parameter tensors built from `inputs` (those in `wrt`, default
/// all, get zeroed gradient slots) under a `Tape`, then backpropagates
/// loss = sum(y * projection) (skipped when `projection` is nil or y is empty).
/// Returns y and each input's gradient (`gradients` overrides how they are read).
public func runOp(
    shapes: [[Int]], inputs: [[Float]], wrt: [Int]? = nil, projection: [Float]?,
    forward: ([Tensor]) -> Tensor, gradients: (([Tensor]) -> [[Float]?])? = nil
) -> (output: [Float], gradients: [[Float]?]) {
    let differentiated = Set(wrt ?? Array(shapes.indices))
    let tensors: [Tensor] = shapes.indices.map { i in
        let t = Tensor(shape: shapes[i], values: inputs[i])
        if differentiated.contains(i) { t.attachGradient(Storage(count: t.count, zeroed: true), offset: 0) }
        return t
    }
    let tape = Tape()
    let y = tape.record { forward(tensors) }
    guard let r = projection, r.count == y.count, y.count > 0, !differentiated.isEmpty else {
        return (y.values, tensors.map { _ in nil })
    }
    let loss = tape.record { matmul(reshape(y, [1, y.count]), Tensor(shape: [y.count, 1], values: r)) }
    tape.backward(loss)
    return (y.values, gradients?(tensors) ?? tensors.map(\.gradValues))
}

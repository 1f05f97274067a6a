import Foundation
import Kernels
import NN
import Tensors

/// Adam for every dense parameter (lr 1e-3, beta1 0.9, beta2 0.999, eps 1e-8, no
/// weight decay), as one loop over the contiguous parameter block:
/// m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
/// theta -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps). Every entry updates every step.
public final class Adam {
    public var learningRate: Float
    public let beta1: Float, beta2: Float, epsilon: Float
    public private(set) var step = 0
    let m: FloatBlock
    let v: FloatBlock

    public init(count: Int, learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8) {
        self.learningRate = learningRate
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon
        m = FloatBlock(count: count)
        v = FloatBlock(count: count)
    }

    /// One update of `values` from `gradients` (both `count` floats).
    public func update(values: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>, count: Int) {
        step += 1
        let b1 = beta1, b2 = beta2, eps = epsilon
        let c1 = 1 - Float(pow(Double(b1), Double(step)))
        let c2 = Float((1 - pow(Double(b2), Double(step))).squareRoot())
        let lr = learningRate / c1
        let m = m.pointer, v = v.pointer
        parallelFor(count, grain: 65_536) { _, r in
            for i in r {
                let g = gradients[i]
                let mi = b1 * m[i] + (1 - b1) * g
                let vi = b2 * v[i] + (1 - b2) * g * g
                m[i] = mi; v[i] = vi
                values[i] -= lr * mi / (vi.squareRoot() / c2 + eps)
            }
        }
    }

    /// Optimizer state for checkpoints: step, m, v.
    public var state: (step: Int, m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, count: Int) { (step, m.pointer, v.pointer, m.count) }
    public func restore(step: Int) { self.step = step }
}

/// Sparse Adagrad for one embedding table (lr 0.02, eps 1e-10, accumulator 0, no
/// decay): for every row r the batch touched, G[r] += g[r]^2;
/// theta[r] -= lr g[r] / (sqrt(G[r]) + eps). Untouched rows and their G do not change.
public final class SparseAdagrad {
    public var learningRate: Float
    public let epsilon: Float
    public let accumulator: FloatBlock  // G: [rows, D]

    public init(rows: Int, dim: Int, learningRate: Float = 0.02, epsilon: Float = 1e-10) {
        self.learningRate = learningRate
        self.epsilon = epsilon
        accumulator = FloatBlock(count: rows * dim)
    }

    /// The touched rows (distinct) split over the threads, each by `adagradUpdate`.
    public func update(_ table: EmbeddingTable) {
        let g = table.sparseGrad, D = table.dim
        let w = table.weight.data, acc = accumulator.pointer
        let lr = learningRate, eps = epsilon
        g.rows.withUnsafeBufferPointer { rows in
            g.values.withUnsafeBufferPointer { values in
                parallelFor(rows.count, grain: Swift.max(1, 4_096 / Swift.max(D, 1))) { _, range in
                    for i in range {
                        let r = Int(rows[i]) * D
                        adagradUpdate(weight: w + r, accumulator: acc + r, gradient: values.baseAddress! + i * D, count: D,
                                      learningRate: lr, epsilon: eps)
                    }
                }
            }
        }
    }
}

/// The optimizers of a model, routed by parameter name (the reference README):
/// Adam for every dense parameter (including `surface`, `seq.action`,
/// `seq.position`), sparse Adagrad for every `embeddings.<table>.weight`.
public final class ModelOptimizer {
    public let store: ParameterStore
    public let adam: Adam
    public let adagrad: [SparseAdagrad]

    public init(_ store: ParameterStore, learningRate: Float = 1e-3, embeddingLearningRate: Float = 0.02) {
        self.store = store
        adam = Adam(count: store.denseCount, learningRate: learningRate)
        adagrad = store.embeddingTables.map { SparseAdagrad(rows: $0.rows, dim: $0.dim, learningRate: embeddingLearningRate) }
    }

    /// Applies the accumulated gradients, then zeroes them.
    public func step() {
        adam.update(values: store.values.pointer, gradients: store.gradients.pointer, count: store.denseCount)
        for (opt, table) in zip(adagrad, store.embeddingTables) { opt.update(table) }
        store.zeroGradients()
    }
}

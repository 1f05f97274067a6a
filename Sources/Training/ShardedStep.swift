import Data
import Foundation
import Kernels
import Model
import NN
import Tensors

/// What one sharded forward + backward pass gave.
public struct ShardedStepResult {
    /// Rows of the whole batch (the sum over shards).
    public var rows: Int
    /// sum over the batch of each row's loss (sum over shards of shard mean x shard rows).
    public var lossSum: Double
    /// Shard 0's forward and backward seconds (it runs on the calling thread), the seconds it
    /// then waited for the other shards (their imbalance), and the seconds spent folding the
    /// other shards' gradients into the model's.
    public var forwardSeconds = 0.0, backwardSeconds = 0.0, waitSeconds = 0.0, mergeSeconds = 0.0
}

/// Data parallelism inside one process: a batch of B rows is cut into `count` shards, shard s
/// takes every `count`-th row from position s (`Trainer.slice`, the cut MPI ranks use), and each
/// shard runs the whole forward and backward pass on its own thread, on its own model over the
/// same weights (`ParameterStore(replicating:)`: shared values, separate gradients). Shard s's
/// loss is its mean over b_s rows, so the batch's mean-loss gradient is
/// g = sum_s (b_s / B) g_s, formed in the trained model's store (`absorbGradients`).
///
/// Why: a training step is ~50 operations, many of them small (layer norms, GELU, bias and
/// residual passes, per-surface towers on a fraction of the batch); split one by one over two
/// cores they scaled 1.2x. Whole shards share nothing until the merge (one pass over the dense
/// gradient block and the touched embedding rows), as MPI ranks share nothing until the
/// allreduce. Inside a shard a `parallelFor` is the pool's nested loop: a shard that finishes first takes its chunks.
/// A shard's values do not depend on the thread count (`ProductSplitting`, fixed layer-norm
/// partial sums), so 2 threads give the same model as 2 MPI ranks of 1 thread, bit for bit.
///
/// With `count` 1 it is exactly the plain step: `model`'s own forward and backward, no scaling.
public final class ShardedStep {
    /// Shard 0's model is the trained model; the others are its replicas.
    public let models: [BraidModel]
    public var count: Int { models.count }

    public init(model: BraidModel, shards: Int) {
        precondition(shards >= 1, "shards must be >= 1, got \(shards)")
        models = [model] + (1..<shards).map { _ in
            BraidModel(config: model.config, parameters: ParameterStore(replicating: model.parameters))
        }
    }

    /// The rows of each shard of a batch (sorted by surface, so each shard stays sorted).
    public func shards(of rows: [Int]) -> [[Int]] {
        (0..<count).map { Trainer.slice(rows, rank: $0, of: count) }
    }

    /// Runs each shard's forward and backward pass (shard s on `batches[s]`) and leaves the
    /// gradient of the mean loss over every shard's rows in the trained model's store.
    public func run(_ batches: [Batch]) -> ShardedStepResult {
        precondition(batches.count == count, "\(batches.count) shard batches for \(count) shards")
        let clock = { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
        var losses = [Double](repeating: 0, count: count)
        var forward = 0.0, backward = 0.0, shard0End = 0.0
        let models = self.models
        losses.withUnsafeMutableBufferPointer { losses in
            parallelFor(count, grain: 1) { _, range in
                for s in range where batches[s].count > 0 {
                    let t0 = clock()
                    let model = models[s], batch = batches[s]
                    // one OpenBLAS call per product: the same values with any thread count
                    let (loss, t1) = ProductSplitting.withoutSplitting {
                        let tape = Tape()
                        let loss = tape.record { model.loss(model(batch), batch: batch) }
                        let t1 = clock()
                        tape.backward(loss)
                        return (loss, t1)
                    }
                    losses[s] = Double(loss[0]) * Double(batch.count)
                    if s == 0 { shard0End = clock(); forward = t1 - t0; backward = shard0End - t1 }
                }
            }
        }
        let rows = batches.reduce(0) { $0 + $1.count }
        let t0 = clock()
        let wait = shard0End > 0 ? t0 - shard0End : 0
        if count > 1 && rows > 0 {
            let store = models[0].parameters
            for s in 1..<count {
                store.absorbGradients(of: models[s].parameters, scale: Float(Double(batches[s].count) / Double(rows)),
                                      ownScale: s == 1 ? Float(Double(batches[0].count) / Double(rows)) : 1)
            }
        }
        return ShardedStepResult(rows: rows, lossSum: losses.reduce(0, +), forwardSeconds: forward, backwardSeconds: backward,
                                 waitSeconds: wait, mergeSeconds: clock() - t0)
    }
}

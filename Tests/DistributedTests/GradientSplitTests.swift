import Data
import Distributed
import Foundation
import Model
import Schema
import Tensors
import TestSupport
import Testing
import Training

/// The data-parallel identity the MPI trainer rests on, checked in one process: the gradient
/// of a batch's mean loss equals sum_r (b_r / B) x the gradient of slice r's mean loss, for the
/// dense block and for every embedding table's sparse rows.
@Suite struct GradientSplitTests {
    typealias Gradients = (dense: [Float], sparse: [String: [Int32: [Float]]])

    /// multi_exclusive's batch.csv (dense stats fitted), a seeded model, and its rows as one
    /// shuffled, surface-sorted batch.
    static func fixture() throws -> (rows: EncodedRows, model: BraidModel, plan: [Int]) {
        var config = try ModelConfig.load(from: Fixtures.url("multi_exclusive/model.json"))
        let rows = try EncodedRows(file: Fixtures.url("multi_exclusive/batch.csv"), config: config, options: EncodeOptions(fitDenseStats: true))
        config.denseStats = rows.denseStats
        let plan = shuffledBatches(surface: rows.surface, batchSize: rows.count, seed: 1, epoch: 1)[0]
        return (rows, BraidModel(config: config, seed: 7), plan)
    }

    /// The dense gradient block and per-table row -> gradient row held in `model`'s store.
    static func stored(_ model: BraidModel) -> Gradients {
        let store = model.parameters
        let dense = Array(UnsafeBufferPointer(start: store.gradients.pointer, count: store.denseCount))
        var sparse: [String: [Int32: [Float]]] = [:]
        for table in store.embeddingTables {
            let g = table.sparseGrad
            for (i, row) in g.rows.enumerated() { sparse[table.name, default: [:]][row] = Array(g.values[i * g.dim ..< (i + 1) * g.dim]) }
        }
        return (dense, sparse)
    }

    /// The gradients after one backward on `batch` (the store zeroed before and after).
    static func gradients(_ model: BraidModel, _ batch: Batch) -> Gradients {
        let store = model.parameters
        store.zeroGradients()
        let tape = Tape()
        let loss = tape.record { model.loss(model(batch), batch: batch) }
        tape.backward(loss)
        defer { store.zeroGradients() }
        return stored(model)
    }

    /// `got` equals `whole` within 1e-5 of the largest dense gradient: the dense block, the
    /// tables touched, each table's rows and each row's values.
    static func expectClose(_ got: Gradients, _ whole: Gradients, _ label: String) {
        let scale = whole.dense.map { abs($0) }.max() ?? 1
        let worst = zip(got.dense, whole.dense).map { abs($0 - $1) }.max() ?? 0
        print("\(label): max |dense difference| \(worst) (max |gradient| \(scale))")
        #expect(worst <= 1e-5 * scale, "\(label): max |dense difference| \(worst)")
        #expect(Set(got.sparse.keys) == Set(whole.sparse.keys), "\(label): tables")
        for (table, byRow) in whole.sparse {
            #expect(Set(byRow.keys) == Set(got.sparse[table]?.keys ?? [:].keys), "\(label): table \(table) rows")
            for (row, g) in byRow {
                let other = got.sparse[table]?[row] ?? []
                let difference = zip(g, other).map { abs($0 - $1) }.max() ?? .infinity
                #expect(difference <= 1e-5 * max(scale, 1e-3), "\(label): table \(table) row \(row): \(difference)")
            }
        }
    }

    @Test(arguments: [2, 3])
    func slicesScaledByTheirShareSumToTheBatchGradient(ranks: Int) throws {
        let (rows, model, plan) = try Self.fixture()
        let whole = Self.gradients(model, rows.batch(rows: plan))
        var dense = [Float](repeating: 0, count: whole.dense.count)
        var sparse: [String: [Int32: [Float]]] = [:]
        for r in 0..<ranks {
            let slice = Trainer.slice(plan, rank: r, of: ranks)
            let share = Float(slice.count) / Float(plan.count)
            let part = Self.gradients(model, rows.batch(rows: slice))
            for i in dense.indices { dense[i] += share * part.dense[i] }
            for (table, byRow) in part.sparse {
                for (row, g) in byRow {
                    let sum = sparse[table]?[row] ?? [Float](repeating: 0, count: g.count)
                    sparse[table, default: [:]][row] = zip(sum, g).map { $0 + share * $1 }
                }
            }
        }
        Self.expectClose((dense, sparse), whole, "ranks \(ranks)")
    }

    /// `ShardedStep` (the in-process form of the same identity, one shard per thread, each on a
    /// replica of the model over the same weights) leaves the whole batch's gradient in the
    /// trained model's store, and its replicas' gradients zeroed; an empty shard (more shards
    /// than rows) contributes nothing.
    @Test(arguments: [2, 3])
    func shardsOnThreadsLeaveTheBatchGradientInTheModel(shards: Int) throws {
        let (rows, model, plan) = try Self.fixture()
        let whole = Self.gradients(model, rows.batch(rows: plan))
        let store = model.parameters
        let sharded = ShardedStep(model: model, shards: shards)
        #expect(sharded.models[1].parameters.values === store.values, "replicas share the weights")
        let step = withThreads(shards) { sharded.run(sharded.shards(of: plan).map { rows.batch(rows: $0) }) }
        #expect(step.rows == plan.count)
        Self.expectClose(Self.stored(model), whole, "\(shards) shards")
        for replica in sharded.models.dropFirst() {
            let p = replica.parameters
            #expect(UnsafeBufferPointer(start: p.gradients.pointer, count: p.denseCount).allSatisfy { $0 == 0 })
            #expect(p.embeddingTables.allSatisfy { $0.sparseGrad.rows.isEmpty })
        }
        store.zeroGradients()
        // more shards than rows: the empty shards add nothing
        let few = Array(plan.prefix(1))
        let one = Self.gradients(model, rows.batch(rows: few))
        let tiny = withThreads(shards) { sharded.run(sharded.shards(of: few).map { rows.batch(rows: $0) }) }
        #expect(tiny.rows == 1)
        #expect(zip(Self.stored(model).dense, one.dense).allSatisfy { abs($0 - $1) <= 1e-6 * max(abs($1), 1) })
        store.zeroGradients()
    }

    /// Two shards leave the same gradient bits on 1 thread as on 2: inside a shard, products
    /// through OpenBLAS (whose entries depend on the rows per call) run as one call and layer
    /// norm's partial sums have fixed blocks, so 2 threads in one process train what 2 MPI ranks
    /// of 1 thread train. Every row 160 times: shards of ~1,900 rows and ~13k tokens, so weight
    /// gradients go through OpenBLAS above the size where a product splits, and the layer norms
    /// over tokens have several blocks (with the split following the thread count, 374 of the
    /// 3,713 dense gradients differed in the last bits).
    @Test func shardGradientsDoNotDependOnTheThreadCount() throws {
        let (rows, model, plan) = try Self.fixture()
        let big = plan.flatMap { Array(repeating: $0, count: 160) }
        let sharded = ShardedStep(model: model, shards: 2)
        let batches = sharded.shards(of: big).map { rows.batch(rows: $0) }
        func gradients(threads: Int) -> Gradients {
            model.parameters.zeroGradients()
            defer { model.parameters.zeroGradients() }
            _ = withThreads(threads) { sharded.run(batches) }
            return Self.stored(model)
        }
        let one = gradients(threads: 1), two = gradients(threads: 2)
        let differing = zip(one.dense, two.dense).filter { $0 != $1 }.count
        #expect(differing == 0, "\(differing) of \(one.dense.count) dense gradients differ")
        #expect(one.sparse == two.sparse)
    }
}

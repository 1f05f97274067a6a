import Checkpoint
import Data
import Foundation
import Model
import NN
import Optim
import Schema
import Tensors
import TestSupport
import Testing

/// Parity with the PyTorch reference on every golden fixture (llm.c's test_gpt2.c
/// style): inputs, every intermediate, logits, loss, every gradient, and a 5-step
/// training trajectory, each printed with its max difference.
@Suite struct ParityTests {
    static let outputTolerance: Float = 5e-4
    static let gradientTolerance: Float = 5e-4
    /// The reference's fixtures plus the long-sequence ones (max_length 256: attention runs
    /// blocked, several 64-row query blocks per sequence; scripts/make_long_fixtures.py).
    static let fixtures = Fixtures.modelFixtures + ["long_early", "long_append"]

    /// The batch the reference encoded, rebuilt from the fixture's `in.*` tensors.
    static func batch(from expected: SafeTensorsFile, schema: Schema) throws -> Batch {
        func ints(_ name: String) throws -> [Int64] { try expected.tensor(name).int64s() }
        func floats(_ name: String) throws -> [Float] {
            let t = try expected.tensor(name)
            return t.dtype == .float32 ? try t.floats() : try t.int64s().map(Float.init)
        }
        let surface = try ints("in.surface").map(Int32.init)
        let B = surface.count
        var categorical: [FeatureIDs] = []
        for f in schema.categorical {
            let t = try expected.tensor("in.cat.\(f.name)")
            let v = try t.int64s()
            if f.multi != nil {
                let M = t.shape[1]
                var ids: [Int32] = [], offsets: [Int32] = [0]
                for b in 0..<B {
                    for j in 0..<M where v[b * M + j] != 0 { ids.append(Int32(v[b * M + j])) }
                    offsets.append(Int32(ids.count))
                }
                categorical.append(FeatureIDs(ids: ids, offsets: offsets))
            } else {
                categorical.append(FeatureIDs(ids: v.map(Int32.init)))
            }
        }
        let T = schema.allTasks.count
        var labels = [Float](repeating: -1, count: B * T)
        for (t, task) in schema.allTasks.enumerated() {
            let l = try floats("in.label.\(task)")
            for b in 0..<B { labels[b * T + t] = l[b] }
        }
        let hasSeq = schema.sequence != nil
        return Batch(count: B, surface: surface, categorical: categorical, dense: try floats("in.dense"),
                     seqItems: hasSeq ? try ints("in.seq_items").map(Int32.init) : [],
                     seqActions: hasSeq ? try ints("in.seq_actions").map(Int32.init) : [],
                     userIndex: nil, labels: labels, oracle: [Float](repeating: .nan, count: B * T))
    }

    /// max |x - ref| and whether every element is within tol (0.01 + |ref|).
    static func compare(_ name: String, _ got: [Float], _ ref: [Float], tolerance: Float, floor: Float = 0.01) -> Bool {
        guard got.count == ref.count else {
            print("FAIL \(name): \(got.count) values, reference has \(ref.count)")
            return false
        }
        var maxDiff: Float = 0, ok = true
        for (g, r) in zip(got, ref) {
            let d = abs(g - r)
            maxDiff = max(maxDiff, d)
            if !(d <= tolerance * (floor + abs(r))) { ok = false }
        }
        print("\(ok ? "ok  " : "FAIL") \(name): max diff \(maxDiff)")
        return ok
    }

    static func denseGradient(_ table: EmbeddingTable) -> [Float] {
        var out = [Float](repeating: 0, count: table.rows * table.dim)
        let g = table.sparseGrad
        for (i, row) in g.rows.enumerated() {
            for j in 0..<table.dim { out[Int(row) * table.dim + j] += g.values[i * table.dim + j] }
        }
        return out
    }

    static func load(_ fixture: String) throws -> (ModelConfig, ParameterStore, SafeTensorsFile, Batch) {
        let config = try ModelConfig(jsonData: try Fixtures.data("\(fixture)/model.json"))
        let layout = parameterLayout(config)
        let store = ParameterStore(layout)
        try store.load(from: try Fixtures.safeTensors(fixture, "weights.safetensors"), layout: layout)
        let expected = try Fixtures.safeTensors(fixture, "expected.safetensors")
        return (config, store, expected, try batch(from: expected, schema: config.schema))
    }

    @Test(arguments: Self.fixtures)
    func forwardAndGradients(fixture: String) throws {
        let (config, store, expected, batch) = try Self.load(fixture)
        let model = BraidModel(config: config, parameters: store)
        let trace = Trace()
        let tape = Tape()
        let (outputs, loss) = tape.record { () -> ([SurfaceLogits], Tensor) in
            let out = model(batch, trace: trace)
            return (out, model.loss(out, batch: batch))
        }
        print("== \(fixture)")
        var failures: [String] = []
        // every traced intermediate the reference stored
        for key in expected.names where key.hasPrefix("out.") && !key.hasPrefix("out.rows.") {
            let name = String(key.dropFirst(4))
            guard let t = trace[name] else { failures.append("no trace for \(key)"); continue }
            if !Self.compare(key, t.values, try expected.tensor(key).floats(), tolerance: Self.outputTolerance) { failures.append(key) }
        }
        for s in outputs {
            let name = config.schema.surfaces[s.surface]
            let ref = try expected.tensor("rows.\(name)").int64s().map(Int32.init)
            if s.rows != ref { failures.append("rows.\(name): \(s.rows) vs \(ref)") }
        }
        if !Self.compare("loss", loss.values, try expected.tensor("loss").floats(), tolerance: Self.outputTolerance) { failures.append("loss") }
        tape.backward(loss)
        for name in store.allNames {
            let got: [Float]
            if name.hasPrefix("embeddings.") {
                let table = String(name.dropFirst("embeddings.".count).dropLast(".weight".count))
                got = Self.denseGradient(store.table(table))
            } else {
                got = store[name].gradValues ?? []
            }
            if !Self.compare("grad.\(name)", got, try expected.tensor("grad.\(name)").floats(), tolerance: Self.gradientTolerance) {
                failures.append("grad.\(name)")
            }
        }
        #expect(failures.isEmpty, "\(fixture): \(failures)")
    }

    @Test(arguments: Self.fixtures)
    func trainingTrajectory(fixture: String) throws {
        let (config, store, expected, batch) = try Self.load(fixture)
        let model = BraidModel(config: config, parameters: store)
        let optimizer = ModelOptimizer(store)
        var losses: [Float] = []
        for _ in 0..<5 {
            let tape = Tape()
            let loss = tape.record { model.loss(model(batch), batch: batch) }
            losses.append(loss[0])
            tape.backward(loss)
            optimizer.step()
        }
        print("== \(fixture) trajectory")
        var failures: [String] = []
        if !Self.compare("train.loss", losses, try expected.tensor("train.loss").floats(), tolerance: 1e-4) { failures.append("train.loss") }
        for key in expected.names where key.hasPrefix("train.final.") {
            let name = String(key.dropFirst("train.final.".count))
            let got = store.tensor(named: name)!.values
            if !Self.compare(key, got, try expected.tensor(key).floats(), tolerance: 1e-5, floor: 0.1) { failures.append(key) }
        }
        #expect(failures.isEmpty, "\(fixture): \(failures)")
    }
}

import Data
import NN
import Schema
import Tensors

/// The logits of one surface's rows of a batch.
public struct SurfaceLogits {
    /// Index into schema.surfaces.
    public var surface: Int
    /// Batch rows of this surface, ascending: [B_s].
    public var rows: [Int32]
    /// One [B_s, 1] logit tensor per task of the surface, in schema order, with
    /// the task's index into schema.allTasks.
    public var logits: [(task: Int, logit: Tensor)]
}

/// One surface's tree (SPEC 2.5): gate, trunk, late-fused module, one head per task.
public struct SurfaceTower {
    public let gate: Linear                // [experts, n_h]
    public let trunk: MLP                  // tower_layers
    public let module: MLP?                // module_layers over [exclusive embeddings ; exclusive dense]
    public let exclusiveCategorical: [Int] // indices into schema.categorical
    public let exclusiveDense: [Int]       // indices into schema.dense
    public let heads: [(task: Int, head: Linear)]
}

/// The unified model of SPEC 2, composed of named parts:
/// embeddings (fused gather) -> sequence encoder -> x0 -> cross network -> deep MLP
/// -> experts -> per-surface gate, tower tree and heads. Only the surfaces present
/// in a batch run, each on its own rows (never every tower then select).
///
/// Shapes (B examples, F categorical features, D = embedding_dim):
/// emb [B, F, D]; x0 [B, n] with n = F D + n_dense + proj_dim + D; h [B, n_h];
/// experts E x [B, n_e] (traced stacked as [B, E, n_e]); per surface s: gate [B_s, E],
/// m_s [B_s, n_e] (the gate's mixture of the experts), z_s [B_s, n_z], logits [B_s, 1].
public final class BraidModel {
    public let config: ModelConfig
    public let parameters: ParameterStore
    public let tables: [EmbeddingTable]     // one per categorical feature (shared tables repeat)
    public let itemTable: EmbeddingTable?
    public let surfaceEmbedding: Tensor     // [S, D]
    public let sequence: SequenceEncoder?
    public let cross: [CrossLayer]
    public let deep: MLP
    public let experts: [MLP]
    public let towers: [Int: SurfaceTower]  // by surface index, included surfaces only

    /// A model whose parameters live in `parameters` (laid out by `parameterLayout(config)`).
    public init(config: ModelConfig, parameters: ParameterStore) {
        self.config = config
        self.parameters = parameters
        let schema = config.schema, m = config.model
        tables = schema.categorical.map { parameters.table($0.table) }
        itemTable = schema.sequence.map { parameters.table($0.itemTable) }
        surfaceEmbedding = parameters["surface.weight"]
        if let spec = schema.sequence, let sq = m.sequence {
            sequence = SequenceEncoder(parameters, spec: spec, config: sq)
        } else {
            sequence = nil
        }
        cross = (0..<m.crossLayers).map { CrossLayer(parameters, "cross.\($0)", lowRank: m.crossRank > 0) }
        deep = MLP(parameters, "deep", count: m.deep.count)
        experts = (0..<m.experts).map { MLP(parameters, "experts.\($0)", count: m.expertLayers.count) }
        var towers: [Int: SurfaceTower] = [:]
        for s in config.surfacesIncluded {
            let ex = schema.exclusive(on: s)
            let hasModule = moduleInputWidth(config, surface: s) > 0
            towers[schema.surfaces.firstIndex(of: s)!] = SurfaceTower(
                gate: Linear(parameters, "gates.\(s)"),
                trunk: MLP(parameters, "towers.\(s).trunk", count: m.towerLayers.count),
                module: hasModule ? MLP(parameters, "towers.\(s).module", count: m.moduleLayers.count) : nil,
                exclusiveCategorical: ex.categorical, exclusiveDense: ex.dense,
                heads: (schema.tasks[s] ?? []).map { t in (schema.allTasks.firstIndex(of: t)!, Linear(parameters, "towers.\(s).heads.\(t)")) })
        }
        self.towers = towers
    }

    /// A freshly initialised model (`initializeParameters`, seeded).
    public convenience init(config: ModelConfig, seed: UInt64) {
        let store = ParameterStore(parameterLayout(config))
        initializeParameters(store, seed: seed)
        self.init(config: config, parameters: store)
    }

    /// The logits of every example, grouped by surface (SPEC 2.1-2.5).
    ///
    /// Without a tape or trace, `late` and `append` fusion run the user side once per unique
    /// user first (`SequenceEncoder.serve`), taking users whose sequence `userStates` holds from
    /// it (see `UserStateCache` for how its scores compare with computing every user anew).
    public func callAsFunction(_ batch: Batch, trace: Trace? = nil, userStates: UserStateCache? = nil) -> [SurfaceLogits] {
        let schema = config.schema, D = config.model.embeddingDim, B = batch.count
        let F = schema.categorical.count
        // 2.1: one fused gather for every categorical feature -> [B, F, D]
        let lookups = zip(tables, zip(schema.categorical, batch.categorical)).map { table, pair in
            EmbeddingLookup(table: table, ids: pair.1.ids, offsets: pair.1.offsets, mean: pair.0.multi == .mean)
        }
        let emb = embeddingBag(lookups, count: B)
        let flatEmb = reshape(emb, [B, F * D])
        trace?["emb"] = emb
        var parts = [flatEmb]
        if !schema.dense.isEmpty { parts.append(Tensor(shape: [B, schema.dense.count], values: batch.dense)) }
        // 2.2: the sequence
        if let sequence, let spec = schema.sequence, let cf = schema.candidateFeature {
            let L = spec.maxLength
            let c = sliceColumns(flatEmb, offset: cf * D, width: D)
            if sequence.fusion != .early && trace == nil && !Tape.isRecording {
                parts.append(sequence.serve(itemIDs: batch.seqItems, actions: batch.seqActions, items: itemTable!, candidate: c,
                                            userIndex: batch.userIndex, cache: userStates))
            } else {
                let items = embedding(itemTable!, ids: batch.seqItems, shape: [batch.seqItems.count / L, L, D])
                parts.append(sequence(items: items, actions: batch.seqActions, candidate: c, userIndex: batch.userIndex, trace: trace))
            }
        }
        parts.append(gatherRows(surfaceEmbedding, batch.surface))
        // 2.3: cross network and deep MLP
        let x0 = concat(parts)
        var x = x0
        for layer in cross { x = layer(x0, x) }
        let h = deep(x)
        // 2.4: experts, each [B, n_e]
        let expertOutputs = experts.map { $0(h) }
        if let trace {
            trace["x0"] = x0; trace["cross"] = x; trace["h"] = h
            trace["experts"] = reshape(concat(expertOutputs), [B, experts.count, expertOutputs[0].lastDim])
        }
        // 2.4-2.5: per surface, its rows only
        var rowsBySurface = [[Int32]](repeating: [], count: schema.surfaces.count)
        for (b, s) in batch.surface.enumerated() { rowsBySurface[Int(s)].append(Int32(b)) }
        var out: [SurfaceLogits] = []
        for (si, rows) in rowsBySurface.enumerated() where !rows.isEmpty {
            guard let tower = towers[si] else {
                preconditionFailure("surface \(schema.surfaces[si]) is not served by this model (surfaces_included \(config.surfacesIncluded))")
            }
            let name = schema.surfaces[si]
            // rows are ascending and distinct: B of them are every row, in order (no gather)
            let ofSurface = { (t: Tensor) in rows.count == B ? t : gatherRows(t, rows) }
            let g = softmax(tower.gate(ofSurface(h)))
            let m = mixture(g, expertOutputs.map(ofSurface))
            var z = tower.trunk(m)
            if let module = tower.module {
                var inputs = tower.exclusiveCategorical.map { ofSurface(sliceColumns(flatEmb, offset: $0 * D, width: D)) }
                if !tower.exclusiveDense.isEmpty {
                    let cols = tower.exclusiveDense
                    var values = [Float](repeating: 0, count: rows.count * cols.count)
                    for (i, r) in rows.enumerated() { for (j, c) in cols.enumerated() { values[i * cols.count + j] = batch.dense[Int(r) * schema.dense.count + c] } }
                    inputs.append(Tensor(shape: [rows.count, cols.count], values: values))
                }
                z = concat([z, module(concat(inputs))])
            }
            let logits = tower.heads.map { (task: $0.task, logit: $0.head(z)) }
            if let trace {
                trace["gate.\(name)"] = g; trace["m.\(name)"] = m; trace["z.\(name)"] = z
                for (t, l) in logits { trace["logit.\(name).\(schema.allTasks[t])"] = l }
            }
            out.append(SurfaceLogits(surface: si, rows: rows, logits: logits))
        }
        return out
    }

    /// SPEC 2.6: BCE with logits summed over the labelled tasks of each example
    /// (weight task_weights[t]), divided by the batch size. A [1] tensor.
    public func loss(_ outputs: [SurfaceLogits], batch: Batch) -> Tensor {
        let schema = config.schema, T = schema.allTasks.count
        var total: Tensor?
        for s in outputs {
            for (t, logit) in s.logits {
                let w = Float(config.model.taskWeight(schema.allTasks[t]))
                var targets = [Float](repeating: 0, count: s.rows.count), weights = targets
                for (i, r) in s.rows.enumerated() {
                    let y = batch.labels[Int(r) * T + t]
                    if y >= 0 { targets[i] = y; weights[i] = w }
                }
                let l = binaryCrossEntropy(logits: logit, targets: targets, weights: weights, divisor: Float(batch.count))
                total = total.map { $0 + l } ?? l
            }
        }
        return total ?? Tensor(shape: [1], zeroed: true)
    }
}

import Foundation
import JSON
import Model
import NN
import Schema
import Tensors

/// The ONNX operator set Braid's graphs use (default domain). At 17, LayerNormalization
/// exists, GELU is decomposed (Pow, Mul, Add, Tanh), ReduceMax/ReduceMean take `axes` as
/// an attribute and ReduceSum/Unsqueeze/Squeeze take it as an input.
public let onnxOpset: Int64 = 17

/// The ONNX IR version written (IR 8 is the one of opset 17).
public let onnxIRVersion: Int64 = 8

/// A model that cannot be written as an ONNX graph, or a surface it does not serve.
public struct ONNXExportError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public var description: String { message }
}

/// The ONNX graph of one surface of a Braid model (SPEC 2, all three fusion modes): a
/// surface-free `ModelProto` whose inputs are the encoded request of docs/ONNX.md
/// (`ONNXInputContract`) and whose outputs `p_<task>` [candidates] are the calibrated
/// probabilities of the surface's tasks (SPEC 2.7 Platt scaling in float64, in the graph).
///
/// Shapes: U = `users`, B = `candidates`, L = max_length, D = embedding_dim, d = d_model.
/// User-side inputs are [U] (sequences [U, L]) and are gathered per candidate by
/// `user_index` [B] after the per-user work: with `late` fusion the Transformer runs on
/// [U, L, d]; with `append` fusion the user tokens run once per user and each candidate's
/// token attends to its user's keys and values (gathered to [B, H, L, d/H]); with `early`
/// fusion the tokens are gathered to [B, L, d] before the Transformer. Masking is Braid's:
/// invalid keys get the score -1e9 before the softmax (exp underflows to exactly 0), a row
/// with no valid key gets attention output 0, invalid x_i read as 0 and the max-pool runs
/// over the valid tokens (0 if none). Features absent on the surface, the surface embedding
/// and absent dense values (0) are constants.
///
/// Parameters are initializers under their SPEC 2.9 names (weights [out, in], applied by
/// Gemm with transB = 1); only the tensors the surface reads are written, and a table of
/// features absent on the surface only as its row 0 (`embeddings.<table>.weight.row0`).
public func onnxModel(_ model: BraidModel, surface: String) throws -> Onnx_ModelProto {
    let config = model.config
    guard config.surfacesIncluded.contains(surface), let si = config.schema.surfaceIndex(surface),
          let tower = model.towers[si] else {
        throw ONNXExportError(message: "export --format onnx: \(pythonRepr(surface)) is not a surface this model serves; expected one of "
            + "\(pythonRepr(config.surfacesIncluded))")
    }
    let contract = try ONNXInputContract(config: config, surface: surface)
    var g = SurfaceGraph(model: model, surface: surface, surfaceIndex: si, contract: contract)
    g.build(tower: tower)
    var proto = Onnx_ModelProto()
    proto.irVersion = onnxIRVersion
    var opset = Onnx_OperatorSetIdProto()
    opset.domain = ""
    opset.version = onnxOpset
    proto.opsetImport = [opset]
    proto.producerName = "braid"
    proto.domain = "braid"
    proto.modelVersion = 1
    proto.docString = "Braid surface model of \(surface) (SPEC 2): inputs are the encoded request (docs/ONNX.md), "
        + "outputs the calibrated probabilities of \(contract.tasks.joined(separator: ", "))."
    var metadata: [(String, String)] = [
        ("braid.surface", surface),
        ("braid.fusion", config.model.sequence?.fusion.rawValue ?? "none"),
        ("braid.tasks", contract.tasks.joined(separator: ",")),
    ]
    for side in [Side.user, .context, .candidate] {
        metadata.append(("braid.inputs.\(side.rawValue)", contract.inputs.filter { $0.side == side }.map(\.name).joined(separator: ",")))
    }
    proto.metadataProps = metadata.map { key, value in
        var entry = Onnx_StringStringEntryProto()
        entry.key = key
        entry.value = value
        return entry
    }
    proto.graph = g.b.graph
    return proto
}

/// Builds the graph of `onnxModel` node by node.
private struct SurfaceGraph {
    let model: BraidModel
    let config: ModelConfig
    let schema: Schema
    let surface: String
    let surfaceIndex: Int
    let contract: ONNXInputContract
    var b: GraphBuilder
    /// [B, 1] int64: the shape a [1, n] constant is expanded to for B candidates.
    var batchShape = ""

    init(model: BraidModel, surface: String, surfaceIndex: Int, contract: ONNXInputContract) {
        self.model = model
        config = model.config
        schema = config.schema
        self.surface = surface
        self.surfaceIndex = surfaceIndex
        self.contract = contract
        b = GraphBuilder(name: "braid_\(surface)")
    }

    var D: Int { config.model.embeddingDim }

    // MARK: parameters

    /// The initializer of parameter `name` (added once).
    mutating func parameter(_ name: String) -> String {
        if b.initializerNames.contains(name) { return name }
        guard let t = model.parameters.tensor(named: name) else {
            preconditionFailure("onnx export: parameter \(name) is missing from the model (SPEC 2.9 layout)")
        }
        return b.initializer(name, shape: t.shape, floats: UnsafeBufferPointer(start: t.data, count: t.count))
    }

    /// Row `row` of a parameter as a [1, n] initializer named `<name>.row<row>`.
    mutating func parameterRow(_ name: String, _ row: Int) -> String {
        let rowName = "\(name).row\(row)"
        if b.initializerNames.contains(rowName) { return rowName }
        let t = model.parameters.tensor(named: name)!
        let n = t.shape.dropFirst().reduce(1, *)
        return b.initializer(rowName, shape: [1, n], floats: UnsafeBufferPointer(start: t.data + row * n, count: n))
    }

    // MARK: layers

    /// Linear `name` on 2-D x [N, in]: Gemm(x, W [out, in], b, transB = 1) -> [N, out].
    mutating func linear(_ x: String, _ name: String, relu: Bool = false) -> String {
        let y = b.op("Gemm", x, parameter("\(name).weight"), parameter("\(name).bias"), attributes: [Attr.int("transB", 1)], hint: name)
        return relu ? b.op("Relu", y, hint: name) : y
    }

    mutating func mlp(_ x: String, _ mlp: MLP, _ name: String) -> String {
        var h = x
        for i in mlp.layers.indices { h = linear(h, "\(name).\(i)", relu: true) }
        return h
    }

    mutating func layerNorm(_ x: String, _ name: String) -> String {
        b.op("LayerNormalization", x, parameter("\(name).weight"), parameter("\(name).bias"),
             attributes: [Attr.int("axis", -1), Attr.float("epsilon", 1e-5)], hint: name)
    }

    /// gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (SPEC 2: tanh approximation).
    mutating func gelu(_ x: String, _ hint: String) -> String {
        let cube = b.op("Pow", x, b.constant(floats: [3]), hint: hint)
        let inner = b.op("Add", x, b.op("Mul", cube, b.constant(floats: [0.044715]), hint: hint), hint: hint)
        let t = b.op("Tanh", b.op("Mul", inner, b.constant(floats: [0.7978845608028654]), hint: hint), hint: hint)
        let half = b.op("Mul", x, b.constant(floats: [0.5]), hint: hint)
        return b.op("Mul", half, b.op("Add", t, b.constant(floats: [1]), hint: hint), hint: hint)
    }

    /// A DCNv2 cross layer x0 * (W x + b) + x, W full or U V^T (SPEC 2.3).
    mutating func cross(_ x0: String, _ x: String, _ name: String, lowRank: Bool) -> String {
        let w: String
        if lowRank {
            let xv = b.op("MatMul", x, parameter("\(name).V"), hint: name)     // [N, r]
            w = b.op("Gemm", xv, parameter("\(name).U"), parameter("\(name).bias"), attributes: [Attr.int("transB", 1)], hint: name)
        } else {
            w = b.op("Gemm", x, parameter("\(name).weight"), parameter("\(name).bias"), attributes: [Attr.int("transB", 1)], hint: name)
        }
        return b.op("Add", b.op("Mul", x0, w, hint: name), x, hint: name)
    }

    mutating func unsqueeze(_ x: String, _ axes: [Int64]) -> String { b.op("Unsqueeze", x, b.constant(int64: axes)) }
    mutating func squeeze(_ x: String, _ axes: [Int64]) -> String { b.op("Squeeze", x, b.constant(int64: axes)) }
    mutating func reshape(_ x: String, _ shape: [Int64]) -> String { b.op("Reshape", x, b.constant(int64: shape)) }
    mutating func gather(_ x: String, _ indices: String, hint: String? = nil) -> String {
        b.op("Gather", x, indices, attributes: [Attr.int("axis", 0)], hint: hint)
    }
    mutating func toFloat(_ x: String) -> String { b.op("Cast", x, attributes: [Attr.int("to", Int(ONNXElementType.float.rawValue))]) }
    /// A [1, n] constant repeated for the B candidates: [B, n].
    mutating func expandToBatch(_ x: String) -> String { b.op("Expand", x, batchShape) }

    /// Per-candidate rows of a user-side value [U, ...] -> [B, ...].
    mutating func perCandidate(_ x: String, side: Side) -> String {
        side == .user ? gather(x, ONNXInputContract.userIndex, hint: "per_candidate") : x
    }

    /// Masked multi-head attention (SPEC 2.2): q [N, H, Lq, dh], k and v [N, H, Lk, dh],
    /// keys [N, Lk] bool; softmax(q k^T / sqrt(dh)) v over the valid keys. With
    /// `zeroWithoutKeys`, a row whose keys are all invalid gets output 0. -> [N, H, Lq, dh].
    mutating func attention(q: String, k: String, v: String, keys: String, anyKey: String?, dh: Int, hint: String) -> String {
        let kt = b.op("Transpose", k, attributes: [Attr.ints("perm", [0, 1, 3, 2])], hint: hint)
        let raw = b.op("MatMul", q, kt, hint: hint)
        let scores = b.op("Mul", raw, b.constant(floats: [1 / Float(dh).squareRoot()]), hint: hint)
        let mask = unsqueeze(keys, [1, 2])                                               // [N, 1, 1, Lk]
        let masked = b.op("Where", mask, scores, b.constant(floats: [-1e9]), hint: hint)
        let p = b.op("Softmax", masked, attributes: [Attr.int("axis", -1)], hint: hint)
        var out = b.op("MatMul", p, v, hint: hint)
        if let anyKey { out = b.op("Mul", out, reshape(anyKey, [-1, 1, 1, 1]), hint: hint) }  // 0 without a valid key
        return out
    }

    /// [N * L, 3d] fused qkv rows -> q, k, v each [N, H, L, dh] (heads take contiguous slices).
    mutating func heads(_ qkv: String, length L: Int, d: Int, heads H: Int, hint: String) -> [String] {
        let parts = b.node("Split", [qkv, b.constant(int64: [Int64(d), Int64(d), Int64(d)])], outputs: 3, [Attr.int("axis", 1)], hint: hint)
        return parts.map { part in
            b.op("Transpose", reshape(part, [-1, Int64(L), Int64(H), Int64(d / H)]), attributes: [Attr.ints("perm", [0, 2, 1, 3])], hint: hint)
        }
    }

    // MARK: the graph

    mutating func build(tower: SurfaceTower) {
        let m = config.model
        for input in contract.inputs {
            b.input(input.name, input.type, input.shape, doc: input.doc)
        }
        // [B, 1]: the candidates' count, for constants
        let reference = contract.inputs.first { $0.side != .user }?.name ?? ONNXInputContract.userIndex
        let count = b.op("Shape", reference, attributes: [Attr.int("start", 0), Attr.int("end", 1)], hint: "candidates")
        batchShape = b.op("Concat", count, b.constant(int64: [1]), attributes: [Attr.int("axis", 0)], hint: "candidates")

        // 2.1: embeddings [B, D] per categorical feature, schema order
        var embeddings: [String] = []
        for (i, f) in schema.categorical.enumerated() {
            let table = "embeddings.\(f.table).weight"
            guard schema.exists(categorical: i, on: surface) else {
                embeddings.append(expandToBatch(parameterRow(table, 0)))   // always missing here: row 0
                continue
            }
            let ids = perCandidate(f.name, side: f.side)
            let e = gather(parameter(table), ids, hint: f.name)
            guard let pooling = f.multi else { embeddings.append(e); continue }
            // [B, M, D] bag: sum (or mean) over the non-zero ids; an empty bag reads row 0
            let present = toFloat(b.op("Not", b.op("Equal", ids, b.constant(int64: [0]), hint: f.name), hint: f.name))  // [B, M]
            let sum = b.op("ReduceSum", b.op("Mul", e, unsqueeze(present, [2]), hint: f.name), b.constant(int64: [1]),
                           attributes: [Attr.int("keepdims", 0)], hint: f.name)                                       // [B, D]
            let n = b.op("ReduceSum", present, b.constant(int64: [1]), attributes: [Attr.int("keepdims", 1)], hint: f.name)  // [B, 1]
            let pooled = pooling == .mean ? b.op("Div", sum, b.op("Max", n, b.constant(floats: [1]), hint: f.name), hint: f.name) : sum
            let nonEmpty = b.op("Greater", n, b.constant(floats: [0]), hint: f.name)
            embeddings.append(b.op("Where", nonEmpty, pooled, parameterRow(table, 0), hint: f.name))
        }
        // 1.4: dense values [B, 1] each, transformed in float64 and stored as float32; NaN (missing) -> 0
        var denseColumns: [String] = []
        for (j, f) in schema.dense.enumerated() {
            guard schema.exists(dense: j, on: surface) else {
                denseColumns.append(expandToBatch(b.constant(floats: [0], shape: [1, 1])))
                continue
            }
            let x = perCandidate(f.name, side: f.side)
            var t: String
            switch f.transform {
            case .none:
                t = x
            case .log1p:
                t = b.op("Log", b.op("Add", b.op("Max", x, b.constant(doubles: [0]), hint: f.name), b.constant(doubles: [1]), hint: f.name), hint: f.name)
            case .standardize:
                let stats = config.denseStats[f.name] ?? .identity
                t = b.op("Div", b.op("Sub", x, b.constant(doubles: [stats.mean]), hint: f.name), b.constant(doubles: [max(stats.std, 1e-6)]), hint: f.name)
            }
            t = b.op("Where", b.op("IsNaN", x, hint: f.name), b.constant(doubles: [0]), t, hint: f.name)
            denseColumns.append(unsqueeze(toFloat(t), [1]))
        }
        // 2.2: the sequence
        var parts = embeddings
        if !denseColumns.isEmpty { parts.append(b.node("Concat", denseColumns, [Attr.int("axis", 1)], hint: "dense")[0]) }
        if let encoder = model.sequence, let spec = schema.sequence, let cf = schema.candidateFeature {
            parts.append(sequence(encoder, spec: spec, candidate: embeddings[cf]))
        }
        parts.append(expandToBatch(parameterRow("surface.weight", surfaceIndex)))
        // 2.3: x0, cross network, deep MLP
        let x0 = b.node("Concat", parts, [Attr.int("axis", 1)], hint: "x0")[0]
        var x = x0
        for l in 0..<m.crossLayers { x = cross(x0, x, "cross.\(l)", lowRank: m.crossRank > 0) }
        let h = mlp(x, model.deep, "deep")
        // 2.4: experts and this surface's gate: m_s = sum_k g_k expert_k(h)
        var stacked: [String] = []
        for (k, expert) in model.experts.enumerated() { stacked.append(unsqueeze(mlp(h, expert, "experts.\(k)"), [1])) }
        let experts = b.node("Concat", stacked, [Attr.int("axis", 1)], hint: "experts")[0]        // [B, E, n_e]
        let gate = b.op("Softmax", linear(h, "gates.\(surface)"), attributes: [Attr.int("axis", -1)], hint: "gates.\(surface)")
        let mixture = squeeze(b.op("MatMul", unsqueeze(gate, [1]), experts, hint: "mixture"), [1])  // [B, n_e]
        // 2.5: trunk, late-fused module, heads
        var z = mlp(mixture, tower.trunk, "towers.\(surface).trunk")
        if let module = tower.module {
            var inputs = tower.exclusiveCategorical.map { embeddings[$0] }
            inputs.append(contentsOf: tower.exclusiveDense.map { denseColumns[$0] })
            let moduleInput = inputs.count == 1 ? inputs[0] : b.node("Concat", inputs, [Attr.int("axis", 1)], hint: "module")[0]
            z = b.node("Concat", [z, mlp(moduleInput, module, "towers.\(surface).module")], [Attr.int("axis", 1)], hint: "z")[0]
        }
        // 2.7: Platt scaling in float64, p = sigmoid(a logit + b)
        for (t, _) in tower.heads {
            let task = schema.allTasks[t]
            let logit = linear(z, "towers.\(surface).heads.\(task)")                                   // [B, 1]
            let pair = config.calibration[surface]?[task] ?? .identity
            let z64 = b.op("Cast", logit, attributes: [Attr.int("to", Int(ONNXElementType.double.rawValue))], hint: "calibration.\(task)")
            let scaled = b.op("Add", b.op("Mul", z64, b.constant(doubles: [pair.a]), hint: "calibration.\(task)"),
                              b.constant(doubles: [pair.b]), hint: "calibration.\(task)")
            let p = toFloat(b.op("Sigmoid", scaled, hint: "calibration.\(task)"))
            b.output(squeeze(p, [1]), as: "p_\(task)", .float, [.symbolic(ONNXInputContract.candidates)],
                     doc: "calibrated probability of \(task) on \(surface) (SPEC 2.7), one per candidate")
        }
    }

    /// z_seq [B, proj_dim] of SPEC 2.2; `candidate` is c = E_item(candidate feature) [B, D].
    mutating func sequence(_ encoder: SequenceEncoder, spec: SequenceSpec, candidate c: String) -> String {
        let L = spec.maxLength, d = encoder.dModel, K = encoder.recentK
        let Li = Int64(L), di = Int64(d)
        let items = spec.items, actions = spec.actions
        // tokens [U, L, d] = seq.input([E_item(s) ; E_action(a)]) + P
        let valid = b.op("Not", b.op("Equal", actions, b.constant(int64: [0]), hint: "seq.valid"), hint: "seq.valid")   // [U, L]
        let pairs = b.op("Concat", gather(parameter("embeddings.\(spec.itemTable).weight"), items, hint: "seq.items"),
                         gather(parameter("seq.action.weight"), actions, hint: "seq.actions"), attributes: [Attr.int("axis", 2)], hint: "seq.input")
        let projected = linear(reshape(pairs, [-1, 2 * Int64(D)]), "seq.input")                                  // [U L, d]
        var tokens = b.op("Add", reshape(projected, [-1, Li, di]), parameter("seq.position.weight"), hint: "seq.tokens")  // [U, L, d]
        var sequenceValid = valid
        var y: String?
        switch encoder.fusion {
        case .early:  // one sequence per candidate: [B, L, d] + seq.candidate(c)
            tokens = b.op("Add", gather(tokens, ONNXInputContract.userIndex, hint: "seq.tokens"),
                          unsqueeze(linear(c, "seq.candidate"), [1]), hint: "seq.tokens")
            sequenceValid = gather(valid, ONNXInputContract.userIndex, hint: "seq.valid")
        case .append:
            y = linear(c, "seq.candidate")                                                                       // [B, d]
        case .late:
            break
        }
        let validFloat = toFloat(sequenceValid)                                                                  // [N, L]
        let anyValid = b.op("ReduceMax", validFloat, attributes: [Attr.ints("axes", [1]), Attr.int("keepdims", 1)], hint: "seq.any_valid")  // [N, 1]
        var x = reshape(tokens, [-1, di])                                                                       // [N L, d]
        let H = encoder.blocks.first?.attention.heads ?? 1, dh = d / max(H, 1)
        for l in encoder.blocks.indices {
            let name = "seq.layers.\(l)"
            // user (or, with early fusion, candidate) tokens: pre-LN self-attention over valid keys
            let qkv = linear(layerNorm(x, "\(name).ln1"), "\(name).attn.qkv")                                   // [N L, 3d]
            let qkvHeads = heads(qkv, length: L, d: d, heads: H, hint: "\(name).attn")
            let a = attention(q: qkvHeads[0], k: qkvHeads[1], v: qkvHeads[2], keys: sequenceValid, anyKey: anyValid, dh: dh, hint: "\(name).attn")
            let merged = reshape(b.op("Transpose", a, attributes: [Attr.ints("perm", [0, 2, 1, 3])], hint: "\(name).attn"), [-1, di])
            x = b.op("Add", x, linear(merged, "\(name).attn.out"), hint: name)
            x = b.op("Add", x, ffn(x, name), hint: name)
            // append fusion: the candidate token attends to its user's valid tokens, then itself
            if let yIn = y {
                let qkvY = linear(layerNorm(yIn, "\(name).ln1"), "\(name).attn.qkv")                            // [B, 3d]
                let yHeads = heads(qkvY, length: 1, d: d, heads: H, hint: "\(name).attn.y")                     // [B, H, 1, dh]
                let keys = b.op("Concat", gather(qkvHeads[1], ONNXInputContract.userIndex, hint: "\(name).attn.y"), yHeads[1],
                                attributes: [Attr.int("axis", 2)], hint: "\(name).attn.y")                     // [B, H, L + 1, dh]
                let values = b.op("Concat", gather(qkvHeads[2], ONNXInputContract.userIndex, hint: "\(name).attn.y"), yHeads[2],
                                  attributes: [Attr.int("axis", 2)], hint: "\(name).attn.y")
                let keyMask = b.op("Concat", gather(valid, ONNXInputContract.userIndex, hint: "\(name).attn.y"),
                                   expandToBatch(b.constant(bools: [true], shape: [1, 1])), attributes: [Attr.int("axis", 1)], hint: "\(name).attn.y")
                let ay = attention(q: yHeads[0], k: keys, v: values, keys: keyMask, anyKey: nil, dh: dh, hint: "\(name).attn.y")
                var yOut = b.op("Add", yIn, linear(reshape(ay, [-1, di]), "\(name).attn.out"), hint: "\(name).y")
                yOut = b.op("Add", yOut, ffn(yOut, name), hint: "\(name).y")
                y = yOut
            }
        }
        // final LN; invalid x_i read as 0: [N, L, d]
        let xf = b.op("Mul", reshape(layerNorm(x, "seq.ln_f"), [-1, Li, di]), unsqueeze(validFloat, [2]), hint: "seq.x")
        // readout [maxpool over valid (0 if none) ; x_0 .. x_{K-1}]
        let filled = b.op("Where", unsqueeze(sequenceValid, [2]), xf, b.constant(floats: [-3e38]), hint: "seq.maxpool")
        let mx = b.op("ReduceMax", filled, attributes: [Attr.ints("axes", [1]), Attr.int("keepdims", 0)], hint: "seq.maxpool")
        let pooled = b.op("Where", b.op("Greater", anyValid, b.constant(floats: [0]), hint: "seq.maxpool"), mx, b.constant(floats: [0]), hint: "seq.maxpool")
        let recent = reshape(b.op("Slice", xf, b.constant(int64: [0]), b.constant(int64: [Int64(K)]), b.constant(int64: [1]), hint: "seq.recent"),
                             [-1, Int64(K) * di])
        var readout = [b.op("Concat", pooled, recent, attributes: [Attr.int("axis", 1)], hint: "seq.r")]
        if encoder.fusion != .early { readout = [gather(readout[0], ONNXInputContract.userIndex, hint: "seq.r")] }  // per user -> per candidate
        switch encoder.fusion {
        case .append:
            readout.append(layerNorm(y!, "seq.ln_f"))
        case .late:
            // target attention t = sum_i alpha_i x_i, alpha = softmax over valid i of (seq.target(c) . x_i) / sqrt(d)
            let xb = gather(xf, ONNXInputContract.userIndex, hint: "seq.target")                               // [B, L, d]
            let validB = gather(valid, ONNXInputContract.userIndex, hint: "seq.target")
            let anyB = gather(anyValid, ONNXInputContract.userIndex, hint: "seq.target")
            let q = unsqueeze(linear(c, "seq.target"), [2])                                                     // [B, d, 1]
            let scores = b.op("Mul", squeeze(b.op("MatMul", xb, q, hint: "seq.target"), [2]), b.constant(floats: [1 / Float(d).squareRoot()]), hint: "seq.target")
            let alpha = b.op("Softmax", b.op("Where", validB, scores, b.constant(floats: [-1e9]), hint: "seq.target"),
                             attributes: [Attr.int("axis", -1)], hint: "seq.target")                            // [B, L]
            let t = squeeze(b.op("MatMul", unsqueeze(alpha, [1]), xb, hint: "seq.target"), [1])                 // [B, d]
            readout.append(b.op("Mul", t, anyB, hint: "seq.target"))
        case .early:
            break
        }
        let r = b.node("Concat", readout, [Attr.int("axis", 1)], hint: "seq.r")[0]
        return linear(cross(r, r, "seq.proj.cross", lowRank: true), "seq.proj.linear")
    }

    /// FFN of block `name` on LN2(x): down(GELU(up(.))).
    mutating func ffn(_ x: String, _ name: String) -> String {
        let up = linear(layerNorm(x, "\(name).ln2"), "\(name).ffn.up")
        return linear(gelu(up, "\(name).ffn.gelu"), "\(name).ffn.down")
    }
}

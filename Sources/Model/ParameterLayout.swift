import Schema

/// The names and shapes of every parameter of the model a config describes
/// (SPEC 2.9), in declaration order. A table used by none of the config's
/// `surfacesIncluded` (a surface export) keeps only row 0: [1, D] (SPEC 3).
public func parameterLayout(_ config: ModelConfig) -> [(name: String, shape: [Int])] {
    let schema = config.schema, m = config.model, D = m.embeddingDim
    var out: [(name: String, shape: [Int])] = []
    var used = Set<String>()
    for (i, f) in schema.categorical.enumerated() where config.surfacesIncluded.contains(where: { schema.exists(categorical: i, on: $0) }) {
        used.insert(f.table)
    }
    if let seq = schema.sequence { used.insert(seq.itemTable) }
    for t in schema.tables { out.append(("embeddings.\(t).weight", [used.contains(t) ? schema.tableBuckets[t]! : 1, D])) }
    out.append(("surface.weight", [schema.surfaces.count, D]))
    func linear(_ name: String, _ nIn: Int, _ nOut: Int) {
        out.append(("\(name).weight", [nOut, nIn]))
        out.append(("\(name).bias", [nOut]))
    }
    func mlp(_ name: String, _ nIn: Int, _ sizes: [Int]) -> Int {
        var n = nIn
        for (i, s) in sizes.enumerated() { linear("\(name).\(i)", n, s); n = s }
        return n
    }
    var n = schema.categorical.count * D + schema.dense.count + D
    if let seqSpec = schema.sequence, let sq = m.sequence {
        let d = sq.dModel
        out.append(("seq.action.weight", [seqSpec.actionTypes, D]))
        linear("seq.input", 2 * D, d)
        linear(sq.fusion == .late ? "seq.target" : "seq.candidate", D, d)
        out.append(("seq.position.weight", [seqSpec.maxLength, d]))
        for i in 0..<sq.nLayers {
            let p = "seq.layers.\(i)"
            out.append(("\(p).ln1.weight", [d])); out.append(("\(p).ln1.bias", [d]))
            linear("\(p).attn.qkv", d, 3 * d)
            linear("\(p).attn.out", d, d)
            out.append(("\(p).ln2.weight", [d])); out.append(("\(p).ln2.bias", [d]))
            linear("\(p).ffn.up", d, sq.dFF)
            linear("\(p).ffn.down", sq.dFF, d)
        }
        out.append(("seq.ln_f.weight", [d])); out.append(("seq.ln_f.bias", [d]))
        let nr = readoutWidth(sq)
        out.append(("seq.proj.cross.U", [nr, sq.projRank]))
        out.append(("seq.proj.cross.V", [nr, sq.projRank]))
        out.append(("seq.proj.cross.bias", [nr]))
        linear("seq.proj.linear", nr, sq.projDim)
        n += sq.projDim
    }
    for l in 0..<m.crossLayers {
        if m.crossRank > 0 {
            out.append(("cross.\(l).U", [n, m.crossRank])); out.append(("cross.\(l).V", [n, m.crossRank]))
        } else {
            out.append(("cross.\(l).weight", [n, n]))
        }
        out.append(("cross.\(l).bias", [n]))
    }
    let nh = mlp("deep", n, m.deep)
    var ne = nh
    for k in 0..<m.experts { ne = mlp("experts.\(k)", nh, m.expertLayers) }
    for s in config.surfacesIncluded { linear("gates.\(s)", nh, m.experts) }
    for s in config.surfacesIncluded {
        var nz = mlp("towers.\(s).trunk", ne, m.towerLayers)
        let moduleIn = moduleInputWidth(config, surface: s)
        if moduleIn > 0 { nz += mlp("towers.\(s).module", moduleIn, m.moduleLayers) }
        for t in schema.tasks[s] ?? [] { linear("towers.\(s).heads.\(t)", nz, 1) }
    }
    return out
}

/// n_r of SPEC 2.2: d (K + 1) with early fusion, d (K + 2) with late or append.
public func readoutWidth(_ sq: SequenceConfig) -> Int {
    sq.dModel * (1 + sq.recentK + (sq.fusion == .early ? 0 : 1))
}

/// The width of surface s's late-fused module input: its exclusive features'
/// embeddings and dense values (SPEC 2.5); 0 when it has none.
public func moduleInputWidth(_ config: ModelConfig, surface s: String) -> Int {
    let ex = config.schema.exclusive(on: s)
    return ex.categorical.count * config.model.embeddingDim + ex.dense.count
}

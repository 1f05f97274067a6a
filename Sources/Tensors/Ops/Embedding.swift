import Kernels

/// An embedding table E: [rows, dim], row 0 the learned "missing" row (SPEC 1.3),
/// trained with sparse row gradients (`sparseGrad`; SPEC 2.1).
public final class EmbeddingTable {
    public let name: String
    public let weight: Tensor
    public let sparseGrad: SparseRows
    /// When false (inference) lookups record nothing.
    public var trainable = true

    public init(name: String, weight: Tensor) {
        precondition(weight.shape.count == 2, "embedding table \(name) must be 2-D, got \(weight.shape)")
        self.name = name
        self.weight = weight
        sparseGrad = SparseRows(dim: weight.shape[1])
    }
    public var rows: Int { weight.shape[0] }
    public var dim: Int { weight.shape[1] }
}

/// One lookup of a fused embedding gather: a table and, per example, one id
/// (`offsets == nil`) or a bag ids[offsets[b] ..< offsets[b+1]] pooled by sum or
/// mean (an empty bag reads row 0).
public struct EmbeddingLookup {
    public var table: EmbeddingTable
    public var ids: [Int32]
    public var offsets: [Int32]?
    public var mean: Bool
    public init(table: EmbeddingTable, ids: [Int32], offsets: [Int32]? = nil, mean: Bool = false) {
        self.table = table; self.ids = ids; self.offsets = offsets; self.mean = mean
    }
}

/// The fused embedding gather of SPEC 2.1: every lookup of a batch in one call,
/// into one output buffer [B, F, D] (F = lookups.count). The backward adds each
/// output row's gradient to the rows it read, sparsely (`EmbeddingTable.sparseGrad`).
public func embeddingBag(_ lookups: [EmbeddingLookup], count B: Int) -> Tensor {
    let F = lookups.count
    let D = lookups.first?.table.dim ?? 0
    let y = Tensor(shape: [B, F, D])
    let strideB = F * D
    parallelFor(F) { _, fr in
        for f in fr {
            let l = lookups[f]
            precondition(l.table.dim == D, "embeddingBag: table \(l.table.name) has dim \(l.table.dim), expected \(D)")
            let table = UnsafePointer(l.table.weight.data)
            l.ids.withUnsafeBufferPointer { ids in
                if let offsets = l.offsets {
                    offsets.withUnsafeBufferPointer { off in
                        for b in 0..<B {
                            let o = y.data + b * strideB + f * D
                            let lo = Int(off[b]), hi = Int(off[b + 1])
                            if lo == hi { o.update(from: table, count: D); continue }
                            o.update(from: table + Int(ids[lo]) * D, count: D)
                            for p in (lo + 1)..<hi { let r = table + Int(ids[p]) * D; for j in 0..<D { o[j] += r[j] } }
                            if l.mean && hi - lo > 1 { let s = 1 / Float(hi - lo); for j in 0..<D { o[j] *= s } }
                        }
                    }
                } else {
                    for b in 0..<B { (y.data + b * strideB + f * D).update(from: table + Int(ids[b]) * D, count: D) }
                }
            }
        }
    }
    let tape = Tape.current.flatMap { t in lookups.contains(where: \.table.trainable) ? t : nil }
    y.recordBackward(on: tape) { dy in
        for (f, l) in lookups.enumerated() where l.table.trainable {
            let g = l.table.sparseGrad
            for b in 0..<B {
                let src = UnsafePointer(dy + b * strideB + f * D)
                if let offsets = l.offsets {
                    let lo = Int(offsets[b]), hi = Int(offsets[b + 1])
                    if lo == hi { g.add(row: 0, src); continue }
                    let s: Float = l.mean ? 1 / Float(hi - lo) : 1
                    for p in lo..<hi { g.add(row: l.ids[p], src, scale: s) }
                } else {
                    g.add(row: l.ids[b], src)
                }
            }
        }
    }
    return y
}

/// Plain row gather from an embedding table: ids [n] -> [n, D] (sequence items),
/// sparse backward.
public func embedding(_ table: EmbeddingTable, ids: [Int32], shape: [Int]? = nil) -> Tensor {
    let D = table.dim
    let y = Tensor(shape: shape ?? [ids.count, D])
    precondition(y.count == ids.count * D, "embedding: shape \(shape ?? []) for \(ids.count) ids")
    if !ids.isEmpty {
        ids.withUnsafeBufferPointer { gatherRows(y.data, table: table.weight.data, ids: $0.baseAddress!, count: ids.count, dim: D) }
    }
    let tape = table.trainable ? Tape.current : nil
    y.recordBackward(on: tape) { dy in
        let g = table.sparseGrad
        for (i, id) in ids.enumerated() { g.add(row: id, dy + i * D) }
    }
    return y
}

import Kernels
import Tensors

/// Every dense parameter of a model in one contiguous block of values and one of
/// gradients (llm.c style), each a named view; plus the embedding tables, each its
/// own allocation with sparse row gradients. Names are dotted paths (SPEC 2.9), so
/// saving, loading and routing to optimizers are walks over one map.
///
/// Built from a list of (name, shape); a name starting with `embeddings.` becomes
/// an `EmbeddingTable`, everything else a view into the dense block.
public final class ParameterStore {
    /// Dense parameter names in declaration order.
    public let denseNames: [String]
    /// Embedding table parameter names (`embeddings.<table>.weight`) in declaration order.
    public let tableNames: [String]
    public let values: FloatBlock
    public let gradients: FloatBlock
    private var dense: [String: Tensor] = [:]
    private var tables: [String: EmbeddingTable] = [:]
    private let valueStorage: Storage
    private let gradientStorage: Storage

    public init(_ layout: [(name: String, shape: [Int])]) {
        var denseNames: [String] = [], tableNames: [String] = [], total = 0
        for (name, shape) in layout {
            if name.hasPrefix("embeddings.") { tableNames.append(name) } else { denseNames.append(name); total += shape.reduce(1, *) }
        }
        self.denseNames = denseNames
        self.tableNames = tableNames
        values = FloatBlock(count: total)
        gradients = FloatBlock(count: total)
        valueStorage = Storage(borrowing: values.pointer, capacity: max(total, 1), owner: values)
        gradientStorage = Storage(borrowing: gradients.pointer, capacity: max(total, 1), owner: gradients)
        var offset = 0
        for (name, shape) in layout {
            if name.hasPrefix("embeddings.") {
                let table = name.dropFirst("embeddings.".count).dropLast(".weight".count)
                tables[name] = EmbeddingTable(name: String(table), weight: Tensor(shape: shape, zeroed: true))
            } else {
                let t = Tensor(shape: shape, storage: valueStorage, offset: offset)
                t.attachGradient(gradientStorage, offset: offset)
                dense[name] = t
                offset += shape.reduce(1, *)
            }
        }
    }

    /// A store over the same values as `source` (the dense block and every embedding table's
    /// weights are shared, not copied) with gradients of its own: a zeroed dense gradient
    /// block and an empty sparse gradient per table. A model built on it (`BraidModel(config:
    /// parameters:)`) computes the same outputs as one built on `source`, and its backward pass
    /// writes only its own gradients, so several such models run a batch's shards on several
    /// threads at once (`ShardedStep`); `absorbGradients(of:scale:)` folds them back.
    public init(replicating source: ParameterStore) {
        denseNames = source.denseNames
        tableNames = source.tableNames
        values = source.values
        valueStorage = source.valueStorage
        gradients = FloatBlock(count: source.values.count)
        gradientStorage = Storage(borrowing: gradients.pointer, capacity: max(gradients.count, 1), owner: gradients)
        for (name, t) in source.dense {
            let view = Tensor(shape: t.shape, storage: valueStorage, offset: t.offset)
            view.attachGradient(gradientStorage, offset: t.offset)
            dense[name] = view
        }
        for (name, table) in source.tables { tables[name] = EmbeddingTable(name: table.name, weight: table.weight) }
    }

    /// gradient = `ownScale` x gradient + `scale` x `replica`'s gradient, dense and sparse, then
    /// `replica`'s gradients are zeroed. `replica` must share this store's layout (`init(replicating:)`).
    /// Dense elements are independent, so the block is split over Braid's threads; each table's sparse
    /// rows are added in the replica's first-touch order (new rows go after this store's).
    public func absorbGradients(of replica: ParameterStore, scale: Float, ownScale: Float = 1) {
        precondition(replica.denseCount == denseCount && replica.tableNames == tableNames, "absorbGradients: stores of different layouts")
        let g = gradients.pointer, r = replica.gradients.pointer
        parallelFor(denseCount, grain: 1 << 15) { _, range in
            for i in range { g[i] = ownScale * g[i] + scale * r[i]; r[i] = 0 }
        }
        for name in tableNames {
            let mine = tables[name]!.sparseGrad, theirs = replica.tables[name]!.sparseGrad
            if ownScale != 1 { mine.scale(by: ownScale) }
            theirs.values.withUnsafeBufferPointer { v in
                for (i, row) in theirs.rows.enumerated() { mine.add(row: row, v.baseAddress! + i * theirs.dim, scale: scale) }
            }
            theirs.reset()
        }
    }

    /// The dense parameter `name`; a missing name is a programmer error.
    public subscript(name: String) -> Tensor {
        guard let t = dense[name] else { preconditionFailure("no parameter \(name)") }
        return t
    }

    /// The embedding table stored as `embeddings.<table>.weight`.
    public func table(_ table: String) -> EmbeddingTable {
        guard let t = tables["embeddings.\(table).weight"] else { preconditionFailure("no embedding table \(table)") }
        return t
    }

    /// The tensor holding parameter `name` (dense or table), or nil.
    public func tensor(named name: String) -> Tensor? { dense[name] ?? tables[name]?.weight }

    /// Every parameter name (dense, then tables).
    public var allNames: [String] { denseNames + tableNames }
    public var embeddingTables: [EmbeddingTable] { tableNames.map { tables[$0]! } }
    public var denseCount: Int { values.count }

    /// Zeroes every dense gradient and forgets every sparse row gradient.
    public func zeroGradients() {
        gradients.pointer.update(repeating: 0, count: gradients.count)
        for t in tables.values { t.sparseGrad.reset() }
    }
}

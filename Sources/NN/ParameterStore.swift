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

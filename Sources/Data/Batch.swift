/// Jagged ids of one categorical feature over B rows. Single-valued: `ids.count == B`,
/// `offsets` nil. Multi-valued: row b holds `ids[offsets[b] ..< offsets[b + 1]]`
/// (`offsets.count == B + 1`, empty = all missing).
public struct FeatureIDs: Equatable, Sendable {
    public var ids: [Int32]
    public var offsets: [Int32]?

    public init(ids: [Int32], offsets: [Int32]? = nil) {
        self.ids = ids
        self.offsets = offsets
    }
}

/// An encoded batch (SPEC 1.2-1.4), the model's input. B = `count` rows,
/// T = `schema.allTasks.count`, L = `sequence.maxLength` (0 without a sequence).
///
/// - `surface` [B]: index into `schema.surfaces`.
/// - `categorical`: one `FeatureIDs` per schema feature; a feature absent on the row's
///   surface is 0 (missing) or an empty bag.
/// - `dense` [B, nDense]: transformed values (float64 math, stored float32), missing -> 0.
/// - `seqItems`, `seqActions` [U, L]: item buckets and action ids, most recent first,
///   truncated to L, 0-padded. `userIndex` [B] maps rows to users (serving shares one user
///   between candidates); nil means U = B, row b is user b.
/// - `labels` [B, T]: 1, 0, or -1 = missing; `oracle` [B, T]: `p_<task>` values, NaN = none.
public struct Batch: Equatable, Sendable {
    public var count: Int
    public var surface: [Int32]
    public var categorical: [FeatureIDs]
    public var dense: [Float]
    public var seqItems: [Int32]
    public var seqActions: [Int32]
    public var userIndex: [Int32]?
    public var labels: [Float]
    public var oracle: [Float]

    public init(count: Int, surface: [Int32], categorical: [FeatureIDs], dense: [Float], seqItems: [Int32],
                seqActions: [Int32], userIndex: [Int32]? = nil, labels: [Float], oracle: [Float]) {
        self.count = count
        self.surface = surface
        self.categorical = categorical
        self.dense = dense
        self.seqItems = seqItems
        self.seqActions = seqActions
        self.userIndex = userIndex
        self.labels = labels
        self.oracle = oracle
    }

    /// Equality with NaN oracle entries equal to each other (a batch equals its copy).
    public static func == (lhs: Batch, rhs: Batch) -> Bool {
        lhs.count == rhs.count && lhs.surface == rhs.surface && lhs.categorical == rhs.categorical
            && lhs.dense == rhs.dense && lhs.seqItems == rhs.seqItems && lhs.seqActions == rhs.seqActions
            && lhs.userIndex == rhs.userIndex && lhs.labels == rhs.labels
            && lhs.oracle.count == rhs.oracle.count
            && zip(lhs.oracle, rhs.oracle).allSatisfy { $0.bitPattern == $1.bitPattern }
    }
}

import Schema

/// Encoded rows (SPEC 1.2-1.4) that training, evaluation and scoring read from: in memory
/// (`EncodedRows`) or memory-mapped from a binary cache (`DataCache`). N = `count` rows in
/// file order; both give the same `Batch` for the same rows of the same file.
public protocol RowSource: Sendable {
    var schema: Schema { get }
    /// N, the rows stored (bad rows skipped with `EncodeOptions.skipBadRows` excluded).
    var count: Int { get }
    /// The statistics `standardize` features were transformed with.
    var denseStats: [String: DenseStats] { get }
    /// Rows left out with `skipBadRows`, and the first 10 of their errors.
    var skippedRows: Int { get }
    var errors: [InputError] { get }
    /// The rows `rows` (indices into 0 ..< N) as a batch, in the order given.
    func batch(rows: [Int]) -> Batch
    /// Surface, labels and oracle of the rows in `range`.
    func targets(rows range: Range<Int>) -> RowTargets
    /// Lets go of resident memory that reading rows brought in (mapped pages); rows read later
    /// are read again. Nothing for rows held in memory.
    func releaseResidentPages()
}

/// Rows' surfaces and targets, what metrics and calibration read: N = `count` rows,
/// T = `schema.allTasks.count`. `surface` [N] indexes `schema.surfaces`; `labels` [N, T]
/// are 1, 0 or -1 (missing); `oracle` [N, T] are the `p_<task>` columns, NaN where absent.
public protocol LabelledRows {
    var schema: Schema { get }
    var count: Int { get }
    var surface: [Int32] { get }
    var labels: [Float] { get }
    var oracle: [Float] { get }
}

/// `LabelledRows` held on their own (a slice of a `RowSource`, built by `gatherTargets`), without
/// the inputs: N = `surface.count` rows, `labels` and `oracle` [N, T].
public struct RowTargets: LabelledRows, Sendable {
    public var schema: Schema
    public var surface: [Int32]
    public var labels: [Float]
    public var oracle: [Float]
    public var count: Int { surface.count }
}

extension EncodedRows: RowSource, LabelledRows {
    /// Nothing: the rows are held in memory.
    public func releaseResidentPages() {}

    /// Copies of the rows' surface, labels and oracle (`gatherTargets`).
    public func targets(rows range: Range<Int>) -> RowTargets { gatherTargets(self, rows: range) }
}

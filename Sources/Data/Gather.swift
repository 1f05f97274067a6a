import Schema

/// Where a stored row is: row `row` of block `block` (`EncodedRows` holds one block, so there
/// the row's index; `DataCache` one block per parsed segment of the CSV).
struct RowPlace {
    var block: Int
    var row: Int
}

/// The columns `Batch` and `RowTargets` are gathered from, row by row: `EncodedRows` (arrays in
/// memory, dense values stored transformed) and `DataCache` (memory-mapped blocks, dense values
/// stored raw and transformed as they are copied). `gatherBatch` and `gatherTargets` are the
/// one gather of both: a storage only locates row n and copies one row's values of one column.
/// The gathers are generic, so each storage gets its own specialised loop with these accessors
/// inlined (no closure per row or element).
///
/// Per row, with T = `schema.allTasks.count`, W = `schema.dense.count`, L = the sequence's
/// `maxLength` (0 without a sequence): a surface (index into `schema.surfaces`), T labels
/// (1, 0, -1 = missing) and T oracle values (NaN = none), W transformed dense values (missing
/// -> 0), at most L sequence items and actions (most recent first), and per categorical feature
/// one id (single-valued) or a bag of ids (multi-valued).
protocol RowColumns {
    var schema: Schema { get }
    /// N, the rows stored.
    var count: Int { get }
    /// Where row n (in 0 ..< N) is, and how many rows from n on its block holds (rows n, n + 1,
    /// ... are rows `place.row`, `place.row + 1`, ... of the same block).
    func place(ofRow n: Int) -> (place: RowPlace, rowsInBlock: Int)
    func surface(at place: RowPlace) -> Int32
    /// Writes the row's `tasks` = T labels and T oracle values.
    func copyTargets(at place: RowPlace, tasks: Int, labels: UnsafeMutablePointer<Float>, oracle: UnsafeMutablePointer<Float>)
    /// Writes the row's `width` = W dense values, transformed (SPEC 1.4).
    func copyDense(at place: RowPlace, width: Int, into out: UnsafeMutablePointer<Float>)
    /// Writes the row's sequence items and actions (at most `length` = L each); the rest of the
    /// batch's L slots are left as they are (0).
    func copySequence(at place: RowPlace, length: Int, items: UnsafeMutablePointer<Int32>, actions: UnsafeMutablePointer<Int32>)
    /// The id of single-valued categorical feature `f`.
    func id(feature f: Int, at place: RowPlace) -> Int32
    /// How many ids the row holds of multi-valued categorical feature `f`.
    func bagCount(feature f: Int, at place: RowPlace) -> Int
    /// Writes the row's ids of multi-valued feature `f` (`bagCount` of them).
    func copyBag(feature f: Int, at place: RowPlace, into out: UnsafeMutablePointer<Int32>)
}

/// The rows `rows` (indices into 0 ..< N) of `source` as a batch, in the order given: B =
/// rows.count; surface [B], labels and oracle [B, T], dense [B, W], seqItems and seqActions
/// [B, L] (0-padded), one `FeatureIDs` per categorical feature (ids [B], or a bag per row with
/// offsets [B + 1]). The one gather of `EncodedRows.batch(rows:)` and `DataCache.batch(rows:)`.
func gatherBatch<Source: RowColumns>(_ source: Source, rows: [Int]) -> Batch {
    let b = rows.count, schema = source.schema
    let tasks = schema.allTasks.count, width = schema.dense.count, length = schema.sequence?.maxLength ?? 0
    var places: [RowPlace] = []
    places.reserveCapacity(b)
    for n in rows {
        precondition(n >= 0 && n < source.count, "row \(n) is outside 0..<\(source.count)")
        places.append(source.place(ofRow: n).place)
    }
    var surface = [Int32](repeating: 0, count: b)
    var labels = [Float](repeating: -1, count: b * tasks)
    var oracle = [Float](repeating: .nan, count: b * tasks)
    var dense = [Float](repeating: 0, count: b * width)
    var items = [Int32](repeating: 0, count: b * length)
    var actions = [Int32](repeating: 0, count: b * length)
    surface.withUnsafeMutableBufferPointer { surface in
    labels.withUnsafeMutableBufferPointer { labels in
    oracle.withUnsafeMutableBufferPointer { oracle in
    dense.withUnsafeMutableBufferPointer { dense in
    items.withUnsafeMutableBufferPointer { items in
    actions.withUnsafeMutableBufferPointer { actions in
        for (k, place) in places.enumerated() {
            surface[k] = source.surface(at: place)
            if tasks > 0 {
                source.copyTargets(at: place, tasks: tasks, labels: labels.baseAddress! + k * tasks, oracle: oracle.baseAddress! + k * tasks)
            }
            if width > 0 { source.copyDense(at: place, width: width, into: dense.baseAddress! + k * width) }
            if length > 0 {
                source.copySequence(at: place, length: length, items: items.baseAddress! + k * length,
                                    actions: actions.baseAddress! + k * length)
            }
        }
    }}}}}}
    var categorical: [FeatureIDs] = []
    categorical.reserveCapacity(schema.categorical.count)
    for f in schema.categorical.indices {
        if schema.categorical[f].multi != nil {
            var offsets = [Int32](repeating: 0, count: b + 1)
            for (k, place) in places.enumerated() { offsets[k + 1] = offsets[k] + Int32(source.bagCount(feature: f, at: place)) }
            var ids = [Int32](repeating: 0, count: Int(offsets[b]))
            ids.withUnsafeMutableBufferPointer { ids in
                for (k, place) in places.enumerated() { source.copyBag(feature: f, at: place, into: ids.baseAddress! + Int(offsets[k])) }
            }
            categorical.append(FeatureIDs(ids: ids, offsets: offsets))
        } else {
            var ids = [Int32](repeating: 0, count: b)
            for (k, place) in places.enumerated() { ids[k] = source.id(feature: f, at: place) }
            categorical.append(FeatureIDs(ids: ids))
        }
    }
    return Batch(count: b, surface: surface, categorical: categorical, dense: dense, seqItems: items,
                 seqActions: actions, labels: labels, oracle: oracle)
}

/// Surface [n], labels and oracle [n, T] of the n rows in `range` of `source`, walked block by
/// block: the one gather of `EncodedRows.targets(rows:)` and `DataCache.targets(rows:)`.
func gatherTargets<Source: RowColumns>(_ source: Source, rows range: Range<Int>) -> RowTargets {
    precondition(range.lowerBound >= 0 && range.upperBound <= source.count, "rows \(range) are outside 0..<\(source.count)")
    let tasks = source.schema.allTasks.count
    var surface = [Int32](repeating: 0, count: range.count)
    var labels = [Float](repeating: -1, count: range.count * tasks)
    var oracle = [Float](repeating: .nan, count: range.count * tasks)
    surface.withUnsafeMutableBufferPointer { surface in
    labels.withUnsafeMutableBufferPointer { labels in
    oracle.withUnsafeMutableBufferPointer { oracle in
        var n = range.lowerBound
        while n < range.upperBound {
            var (place, run) = source.place(ofRow: n)
            run = min(run, range.upperBound - n)
            for k in (n - range.lowerBound) ..< (n - range.lowerBound + run) {
                surface[k] = source.surface(at: place)
                if tasks > 0 {
                    source.copyTargets(at: place, tasks: tasks, labels: labels.baseAddress! + k * tasks, oracle: oracle.baseAddress! + k * tasks)
                }
                place.row += 1
            }
            n += run
        }
    }}}
    return RowTargets(schema: source.schema, surface: surface, labels: labels, oracle: oracle)
}

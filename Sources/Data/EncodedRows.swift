import Foundation
import JSON
import Schema

/// Options of `EncodedRows(file:config:options:)`.
public struct EncodeOptions: Sendable {
    /// Training and evaluation (true) need the label columns of the served surfaces' tasks;
    /// scoring (false) does not.
    public var labels: Bool
    /// false: the first bad row throws. true: bad rows are skipped and counted
    /// (`EncodedRows.skippedRows`, the first 10 errors in `errors`).
    public var skipBadRows: Bool
    /// true: fit the `standardize` features' statistics on these rows (SPEC 1.4, training
    /// data) and use them; false: use `config.denseStats`.
    public var fitDenseStats: Bool
    /// When set, rows of other surfaces are passed over (and counted in
    /// `otherSurfaceRows`) instead of being errors: a per-surface model reading a
    /// multi-surface file (`braid train --separate`).
    public var onlySurfaces: Set<String>?

    public init(labels: Bool = true, skipBadRows: Bool = false, fitDenseStats: Bool = false, onlySurfaces: Set<String>? = nil) {
        self.labels = labels
        self.skipBadRows = skipBadRows
        self.fitDenseStats = fitDenseStats
        self.onlySurfaces = onlySurfaces
    }
}

/// Every row of a CSV file encoded (SPEC 1.2-1.4) in `Batch` layout, N = `count` rows in file
/// order, plus `lines[n]` (where row n starts in the file). `batch(rows:)` gathers a batch.
/// `denseStats` are the statistics the `standardize` features were transformed with.
public struct EncodedRows: Sendable {
    public let schema: Schema
    public fileprivate(set) var count = 0
    public fileprivate(set) var lines: [Int] = []
    public fileprivate(set) var surface: [Int32] = []
    public fileprivate(set) var categorical: [FeatureIDs]
    /// [N, nDense], transformed.
    public fileprivate(set) var dense: [Float] = []
    /// [N, L] each.
    public fileprivate(set) var seqItems: [Int32] = []
    public fileprivate(set) var seqActions: [Int32] = []
    /// [N, T] each.
    public fileprivate(set) var labels: [Float] = []
    public fileprivate(set) var oracle: [Float] = []
    public fileprivate(set) var denseStats: [String: DenseStats]
    /// Rows left out with `skipBadRows` (0 otherwise), and the first 10 of their errors.
    public fileprivate(set) var skippedRows = 0
    /// Rows passed over because of `EncodeOptions.onlySurfaces`.
    public fileprivate(set) var otherSurfaceRows = 0
    public fileprivate(set) var errors: [InputError] = []

    /// The most errors kept in `errors` when skipping bad rows.
    public static let keptErrors = 10

    /// Reads and encodes `file` with `config` (its dense stats, unless `options.fitDenseStats`).
    public init(file: URL, config: ModelConfig, options: EncodeOptions = EncodeOptions()) throws {
        try self.init(csv: CSVFile(contentsOf: file), config: config, options: options)
    }

    /// Encodes every remaining record of `csv`.
    public init(csv: CSVFile, config: ModelConfig, options: EncodeOptions = EncodeOptions()) throws {
        var rawDense: [Double] = []
        try self.init(encoding: csv, config: config, options: options, rawDense: &rawDense)
        if options.fitDenseStats {
            for (j, feature) in schema.dense.enumerated() where feature.transform == .standardize {
                var values: [Double] = []
                for n in 0..<count where !rawDense[n * schema.dense.count + j].isNaN {
                    values.append(rawDense[n * schema.dense.count + j])
                }
                denseStats[feature.name] = fitDenseStats(values: values)
            }
        }
        dense = try transformDense(rawDense)
    }

    /// Encodes every remaining record of `csv` but leaves `dense` empty: the untransformed
    /// values go to `rawDense` [N, nDense] (NaN = missing). `options.fitDenseStats` is ignored.
    init(encoding csv: CSVFile, config: ModelConfig, options: EncodeOptions, rawDense: inout [Double]) throws {
        schema = config.schema
        denseStats = config.denseStats
        categorical = config.schema.categorical.map { FeatureIDs(ids: [], offsets: $0.multi == nil ? nil : [0]) }
        var encoder = try RowEncoder(csv: csv, config: config, labels: options.labels)
        let firstByte = csv.position
        var reserved = false
        while true {
            let line: Int
            do {
                if !reserved && count == Self.rowsBeforeReserving {
                    reserved = true
                    reserve(rows: count, bytes: csv.position - firstByte, remainingBytes: csv.stopAt - csv.position, rawDense: &rawDense)
                }
                guard let start = try csv.nextRecord() else { break }
                line = start
                if let only = options.onlySurfaces, !only.contains(csv.string(encoder.surfaceColumn)) {
                    otherSurfaceRows += 1
                    continue
                }
                try encoder.append(record: csv.record, line: line, into: &self, rawDense: &rawDense)
            } catch let error as InputError {
                guard options.skipBadRows else { throw error }
                skippedRows += 1
                if errors.count < Self.keptErrors { errors.append(error) }
            }
        }
    }

    /// Rows encoded before the columns' capacity is reserved from their bytes per row.
    static let rowsBeforeReserving = 256

    /// Reserves room in every column for the rows expected in `remainingBytes` more of the file,
    /// judged by the first `rows` rows (which took `bytes`), so that the columns do not grow by
    /// reallocating and copying. Only capacity changes.
    private mutating func reserve(rows: Int, bytes: Int, remainingBytes: Int, rawDense: inout [Double]) {
        guard rows > 0, bytes > 0, remainingBytes > 0 else { return }
        let expected = count + Int(Double(remainingBytes) / Double(bytes) * Double(rows) * 1.02) + 16
        func grow<T>(_ column: inout [T], perRow: Double) {
            column.reserveCapacity(Int(Double(expected) * perRow) + 16)
        }
        let perRow = { (values: Int) in Double(values) / Double(rows) }
        grow(&lines, perRow: 1)
        grow(&surface, perRow: 1)
        grow(&seqItems, perRow: perRow(seqItems.count))
        grow(&seqActions, perRow: perRow(seqActions.count))
        grow(&labels, perRow: perRow(labels.count))
        grow(&oracle, perRow: perRow(oracle.count))
        grow(&rawDense, perRow: perRow(rawDense.count))
        for f in categorical.indices {
            grow(&categorical[f].ids, perRow: perRow(categorical[f].ids.count))
            if categorical[f].offsets != nil { grow(&categorical[f].offsets!, perRow: 1) }
        }
    }

    /// `DenseTransform` of every raw value [N, nDense].
    private func transformDense(_ raw: [Double]) throws -> [Float] {
        let transform = try DenseTransform(schema: schema, stats: denseStats)
        let width = schema.dense.count
        var out = [Float](repeating: 0, count: raw.count)
        for n in raw.indices { out[n] = transform(raw[n], feature: n % width) }
        return out
    }

    /// The rows `rows` (indices into this file's rows) as a batch, in the order given
    /// (`gatherBatch`).
    public func batch(rows: [Int]) -> Batch { gatherBatch(self, rows: rows) }

    /// All rows in file order.
    public func batch() -> Batch { batch(rows: Array(0..<count)) }

    // Row storage, appended by `RowEncoder` and rolled back when a row turns out bad.
    fileprivate mutating func appendRow(line: Int, surface index: Int32) {
        lines.append(line)
        surface.append(index)
        count += 1
    }
}

/// The arrays as one block: row n is `RowPlace(block: 0, row: n)`.
extension EncodedRows: RowColumns {
    @inline(__always)
    func place(ofRow n: Int) -> (place: RowPlace, rowsInBlock: Int) { (RowPlace(block: 0, row: n), count - n) }

    @inline(__always)
    func surface(at place: RowPlace) -> Int32 { surface[place.row] }

    @inline(__always)
    func copyTargets(at place: RowPlace, tasks: Int, labels out: UnsafeMutablePointer<Float>, oracle outOracle: UnsafeMutablePointer<Float>) {
        let from = place.row * tasks
        for t in 0..<tasks {
            out[t] = labels[from + t]
            outOracle[t] = oracle[from + t]
        }
    }

    @inline(__always)
    func copyDense(at place: RowPlace, width: Int, into out: UnsafeMutablePointer<Float>) {
        let from = place.row * width
        for j in 0..<width { out[j] = dense[from + j] }
    }

    @inline(__always)
    func copySequence(at place: RowPlace, length: Int, items: UnsafeMutablePointer<Int32>, actions: UnsafeMutablePointer<Int32>) {
        seqItems.withUnsafeBufferPointer { items.update(from: $0.baseAddress! + place.row * length, count: length) }
        seqActions.withUnsafeBufferPointer { actions.update(from: $0.baseAddress! + place.row * length, count: length) }
    }

    @inline(__always)
    func id(feature f: Int, at place: RowPlace) -> Int32 { categorical[f].ids[place.row] }

    @inline(__always)
    func bagCount(feature f: Int, at place: RowPlace) -> Int {
        let offsets = categorical[f].offsets!
        return Int(offsets[place.row + 1] - offsets[place.row])
    }

    @inline(__always)
    func copyBag(feature f: Int, at place: RowPlace, into out: UnsafeMutablePointer<Int32>) {
        let feature = categorical[f], from = Int(feature.offsets![place.row]), to = Int(feature.offsets![place.row + 1])
        feature.ids.withUnsafeBufferPointer { out.update(from: $0.baseAddress! + from, count: to - from) }
    }
}

/// The per-file plan of `EncodedRows`: column indices and per-surface existence of every
/// input, resolved once from the header (the reference's `check_columns`), then one
/// `append` per record.
private struct RowEncoder {
    let schema: Schema
    let path: String
    /// Included surfaces' UTF-8 names and their index in `schema.surfaces`.
    let served: [([UInt8], Int32)]
    let included: [String]
    let surfaceColumn: Int
    /// Per categorical feature: column (-1: none), table buckets, multi, exists[surface index].
    let categoricalColumns: [Int]
    let categoricalBuckets: [BucketHasher]
    let categoricalMulti: [Bool]
    /// exists[f * surfaceCount + surface index]
    let categoricalOn: [Bool]
    let surfaceCount: Int
    let denseColumns: [Int]
    let denseOn: [Bool]
    let itemsColumn: Int, actionsColumn: Int
    let itemBuckets: BucketHasher
    let maxLength: Int, actionTypes: Int
    let labelColumns: [Int], oracleColumns: [Int]
    var scratch = [CChar](repeating: 0, count: 64)
    /// The first `maxLength` sequence items' buckets and actions of the row being encoded.
    var itemScratch: [Int32], actionScratch: [Int32]

    init(csv: CSVFile, config: ModelConfig, labels: Bool) throws {
        schema = config.schema
        path = csv.path
        included = config.surfacesIncluded
        served = included.map { (Array($0.utf8), Int32(config.schema.surfaceIndex($0)!)) }
        surfaceColumn = csv.columnIndex["surface"]!
        let column = { (name: String) in csv.columnIndex[name] ?? -1 }
        let onMask = { (list: [String]?) in config.schema.surfaces.map { list?.contains($0) ?? true } }
        categoricalColumns = schema.categorical.map { column($0.name) }
        categoricalBuckets = schema.categorical.map { BucketHasher(buckets: UInt64($0.buckets)) }
        categoricalMulti = schema.categorical.map { $0.multi != nil }
        categoricalOn = schema.categorical.flatMap { onMask($0.surfaces) }
        surfaceCount = schema.surfaces.count
        denseColumns = schema.dense.map { column($0.name) }
        denseOn = schema.dense.flatMap { onMask($0.surfaces) }
        itemsColumn = schema.sequence.map { column($0.items) } ?? -1
        actionsColumn = schema.sequence.map { column($0.actions) } ?? -1
        itemBuckets = BucketHasher(buckets: schema.sequence.map { UInt64(config.schema.tableBuckets[$0.itemTable]!) } ?? 2)
        maxLength = schema.sequence?.maxLength ?? 0
        itemScratch = [Int32](repeating: 0, count: maxLength)
        actionScratch = [Int32](repeating: 0, count: maxLength)
        actionTypes = schema.sequence?.actionTypes ?? 0
        labelColumns = schema.allTasks.map { column($0) }
        oracleColumns = schema.allTasks.map { column("p_" + $0) }

        // check_columns: features on a served surface, the sequence, and (labels) the served tasks.
        let included = self.included
        var needed = (schema.categorical.map { ($0.name, $0.surfaces) } + schema.dense.map { ($0.name, $0.surfaces) })
            .filter { name, list in included.contains { list?.contains($0) ?? true } }
            .map(\.0)
        if let sequence = schema.sequence { needed += [sequence.items, sequence.actions] }
        let tasks = labels ? schema.allTasks.filter { task in included.contains { config.schema.tasks[$0]!.contains(task) } } : []
        let missingFeatures = needed.filter { csv.columnIndex[$0] == nil }
        let missingLabels = tasks.filter { csv.columnIndex[$0] == nil }
        if !missingFeatures.isEmpty || !missingLabels.isEmpty {
            let parts = [("schema features", missingFeatures), ("labels", missingLabels)]
                .filter { !$0.1.isEmpty }
                .map { "\($0.0) \(pythonRepr($0.1))" }
            throw InputError(file: path, line: csv.headerLine, message: "no column for " + parts.joined(separator: " and ")
                             + "; expected the header to name every feature" + (tasks.isEmpty ? "" : " and label"))
        }
    }

    private func fail(_ line: Int, _ column: String, _ message: String) -> InputError {
        InputError(file: path, line: line, column: column, message: message)
    }

    /// Encodes the current record of `csv` into `rows`; on an error nothing of the row is kept.
    mutating func append(record: CSVRecord, line: Int, into rows: inout EncodedRows, rawDense: inout [Double]) throws {
        let csv = record
        // Validate and compute everything that can fail before appending, so a bad row leaves no trace.
        let surfaceBytes = csv.field(surfaceColumn)
        var surfaceIndex: Int32 = -1
        for (name, index) in served where name.count == surfaceBytes.count && name.elementsEqual(surfaceBytes) {
            surfaceIndex = index
            break
        }
        if surfaceIndex < 0 {
            let text = csv.string(surfaceColumn)
            let what = schema.surfaces.contains(text) ? "a surface this model does not serve" : "unknown surface"
            throw fail(line, "surface", "\(what) \(pythonRepr(text)); expected one of the surfaces this model serves \(pythonRepr(included))")
        }
        let s = Int(surfaceIndex)
        let denseStart = rawDense.count
        for j in denseColumns.indices {
            var value = Double.nan
            if denseOn[j * surfaceCount + s] {
                let cell = csv.field(denseColumns[j])
                if !cell.isEmpty {
                    if matchesNumberSyntax(cell) { value = parseDouble(cell, scratch: &scratch) }
                    if !value.isFinite {
                        rawDense.removeSubrange(denseStart...)
                        throw fail(line, schema.dense[j].name,
                                   "bad number \(pythonRepr(csv.string(denseColumns[j]))); expected \(numberExpectation)")
                    }
                }
            }
            rawDense.append(value)
        }
        do {
            try appendRest(record: record, line: line, surface: s, into: &rows)
        } catch {
            rawDense.removeSubrange(denseStart...)
            throw error
        }
    }

    private mutating func appendRest(record csv: CSVRecord, line: Int, surface s: Int, into rows: inout EncodedRows) throws {
        // Sequence: items hashed and actions parsed in one pass each (the first maxLength kept
        // in the scratch buffers), counts and actions validated before anything is appended.
        var kept = 0
        if maxLength > 0 {
            let actionsCell = csv.field(actionsColumn)
            let length = maxLength
            let items = csv.field(itemsColumn)
            let hasher = itemBuckets
            let itemCount = itemScratch.withUnsafeMutableBufferPointer { hasher.bucketTokens(items, limit: length, into: $0.baseAddress!) }
            let types = actionTypes
            let actions = actionScratch.withUnsafeMutableBufferPointer { parseActions(actionsCell, actionTypes: types, limit: length, into: $0.baseAddress!) }
            let sequence = schema.sequence!
            if itemCount != actions.count {
                throw fail(line, sequence.actions, "\(actions.count) actions but \(itemCount) items in column \"\(sequence.items)\"; "
                           + "expected one action per item")
            }
            if let bad = actions.firstBad {
                throw fail(line, sequence.actions, "action \(pythonRepr(String(decoding: bad, as: UTF8.self))); "
                           + "expected an integer in [1, \(actionTypes))")
            }
            kept = min(itemCount, length)
        }
        // Labels and oracle probabilities, in task order (label, then p_<task>).
        let labelStart = rows.labels.count
        for t in labelColumns.indices {
            var label: Float = -1
            if labelColumns[t] >= 0 {
                let cell = csv.field(labelColumns[t])
                if cell.count == 1 && (cell[0] == 0x30 || cell[0] == 0x31) {
                    label = cell[0] == 0x31 ? 1 : 0
                } else if !cell.isEmpty {
                    rows.labels.removeSubrange(labelStart...)
                    rows.oracle.removeSubrange(labelStart...)
                    throw fail(line, schema.allTasks[t], "label \(pythonRepr(csv.string(labelColumns[t]))); expected 0, 1 or empty")
                }
            }
            var probability = Float.nan
            if oracleColumns[t] >= 0 {
                let cell = csv.field(oracleColumns[t])
                if !cell.isEmpty {
                    let value = matchesNumberSyntax(cell) ? parseDouble(cell, scratch: &scratch) : .nan
                    if !(value >= 0 && value <= 1) {
                        rows.labels.removeSubrange(labelStart...)
                        rows.oracle.removeSubrange(labelStart...)
                        throw fail(line, "p_" + schema.allTasks[t], "probability \(pythonRepr(csv.string(oracleColumns[t]))); "
                                   + "expected empty or a number in [0, 1]")
                    }
                    probability = Float(value)
                }
            }
            rows.labels.append(label)
            rows.oracle.append(probability)
        }
        // Nothing below can fail.
        if maxLength > 0 {
            for k in kept..<maxLength {  // padding
                itemScratch[k] = 0
                actionScratch[k] = 0
            }
            rows.seqItems.append(contentsOf: itemScratch)
            rows.seqActions.append(contentsOf: actionScratch)
        }
        for f in categoricalColumns.indices {
            let on = categoricalOn[f * surfaceCount + s]
            if categoricalMulti[f] {
                if on {
                    let hasher = categoricalBuckets[f]
                    forEachToken(csv.field(categoricalColumns[f])) { token in
                        rows.categorical[f].ids.append(hasher.bucket(token))
                    }
                }
                rows.categorical[f].offsets!.append(Int32(rows.categorical[f].ids.count))
            } else {
                rows.categorical[f].ids.append(on ? categoricalBuckets[f].bucket(csv.field(categoricalColumns[f])) : 0)
            }
        }
        rows.appendRow(line: line, surface: Int32(s))
    }
}

/// An action id in [1, actionTypes) written as ASCII digits, else nil.
@inline(__always)
func parseAction(_ token: UnsafeRawBufferPointer, actionTypes: Int) -> Int? {
    var value = 0
    for byte in token {
        let digit = Int(byte &- 0x30)
        guard digit < 10 && byte >= 0x30 else { return nil }
        value = value * 10 + digit
        if value >= actionTypes { return nil }
    }
    return value >= 1 ? value : nil
}

/// The space-separated non-empty tokens of a `seq_actions` cell in one pass: their count, the
/// first that is not an action id in [1, actionTypes) (`parseAction`), and the ids of the first
/// `limit` tokens in `out` (0 for an invalid one). Gives what `forEachToken` with `parseAction`
/// gives (`EncodingKernelTests` compares them).
///
/// The usual cell is single digits each followed by a space ("3 1 5 1 ..."): eight bytes
/// "d d d d " are checked and decoded at once, anything else one token at a time.
@inline(__always)
func parseActions(_ cell: UnsafeRawBufferPointer, actionTypes: Int, limit: Int,
                  into out: UnsafeMutablePointer<Int32>) -> (count: Int, firstBad: UnsafeRawBufferPointer?) {
    guard let base = cell.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return (0, nil) }
    let n = cell.count
    let lanes: UInt64 = 0x0001_0001_0001_0001
    // Single-digit ids 1 ... maxDigit are valid.
    let maxDigit = UInt64(max(0, min(actionTypes - 1, 9)))
    var i = 0
    var count = 0
    var firstBad: UnsafeRawBufferPointer?
    while i < n {
        if base[i] == 0x20 {
            i += 1
            continue
        }
        if i + 8 <= n {
            let word = UInt64(littleEndian: UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self))
            // Odd bytes spaces; even bytes d with 0x100 + d - '1' per 16-bit lane in [0x100, 0x100 + maxDigit).
            let digits = (word & (0xFF &* lanes) | (0x100 &* lanes)) &- (0x31 &* lanes)
            if word & (0xFF00 &* lanes) == 0x2000 &* lanes && digits & (0x100 &* lanes) == 0x100 &* lanes
                && ((digits & (0xFF &* lanes)) &+ (0x100 &- maxDigit) &* lanes) & (0x100 &* lanes) == 0 {
                for k in 0..<4 where count + k < limit {
                    out[count + k] = Int32(truncatingIfNeeded: (digits >> (16 * UInt64(k))) & 0xFF) + 1
                }
                count += 4
                i += 8
                continue
            }
        }
        let start = i
        var value = 0
        var valid = true
        repeat {
            let digit = Int(base[i] &- 0x30)
            if digit >= 10 { valid = false }
            value = value &* 10 &+ digit
            if value >= actionTypes { valid = false }
            i += 1
        } while i < n && base[i] != 0x20
        valid = valid && value >= 1
        if !valid && firstBad == nil { firstBad = UnsafeRawBufferPointer(start: base + start, count: i - start) }
        if count < limit { out[count] = valid ? Int32(truncatingIfNeeded: value) : 0 }
        count += 1
    }
    return (count, firstBad)
}

/// Calls `body` with each space-separated non-empty token of `cell` (SPEC 1.2).
@inline(__always)
func forEachToken(_ cell: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
    var i = 0
    let n = cell.count
    while i < n {
        while i < n && cell[i] == 0x20 { i += 1 }
        let start = i
        while i < n && cell[i] != 0x20 { i += 1 }
        if i > start { body(UnsafeRawBufferPointer(rebasing: cell[start..<i])) }
    }
}

import Foundation
import JSON

/// Which object of a request a feature belongs to (SPEC 1.1): user-side inputs are equal
/// for every candidate of one user and computed once per unique user when serving.
public enum Side: String, Sendable { case user, candidate, context }

/// How a multi-valued categorical feature pools the embeddings of its non-missing values.
public enum Pooling: String, Sendable { case sum, mean }

/// SPEC 1.4 dense transform: `none` x, `log1p` log(1 + max(x, 0)), `standardize` (x - mean) / std.
public enum DenseTransform: String, Sendable { case none, log1p, standardize }

/// A categorical feature: a column of hashed values looked up in the embedding table `table`
/// of `buckets` rows (row 0 = missing). `multi` is set for space-separated multi-valued
/// cells; `surfaces` lists where the feature exists (nil = every surface).
public struct CategoricalFeature: Equatable, Sendable {
    public var name: String
    public var side: Side
    public var buckets: Int
    public var table: String
    public var multi: Pooling?
    public var surfaces: [String]?

    public init(name: String, side: Side, buckets: Int, table: String? = nil,
                multi: Pooling? = nil, surfaces: [String]? = nil) {
        self.name = name
        self.side = side
        self.buckets = buckets
        self.table = table ?? name
        self.multi = multi
        self.surfaces = surfaces
    }
}

/// A dense (numeric) feature: one float per row after `transform`; `surfaces` as for
/// categorical features.
public struct DenseFeature: Equatable, Sendable {
    public var name: String
    public var side: Side
    public var transform: DenseTransform
    public var surfaces: [String]?

    public init(name: String, side: Side, transform: DenseTransform = .none, surfaces: [String]? = nil) {
        self.name = name
        self.side = side
        self.transform = transform
        self.surfaces = surfaces
    }
}

/// The user's action sequence (SPEC 1.2, 2.2): the columns `items` and `actions`, the first
/// `maxLength` entries kept (most recent first), actions in [1, actionTypes), items hashed
/// with the table `itemTable`.
public struct SequenceSpec: Equatable, Sendable {
    public var items: String
    public var actions: String
    public var maxLength: Int
    public var actionTypes: Int
    public var itemTable: String

    public init(items: String, actions: String, maxLength: Int, actionTypes: Int, itemTable: String) {
        self.items = items
        self.actions = actions
        self.maxLength = maxLength
        self.actionTypes = actionTypes
        self.itemTable = itemTable
    }
}

/// The SPEC 1.1 schema plus derived facts, validated on construction exactly as the
/// reference's `Schema.__init__` (names, column collisions, shared tables, item table).
///
/// - `allTasks`: every task, first seen over `surfaces` in order (the T axis of labels).
/// - `tables`: table names, first seen over `categorical`; `tableBuckets` their row counts.
/// - `candidateFeature`: index into `categorical` of the single-valued candidate-side feature
///   on `sequence.itemTable` (the candidate embedding c of SPEC 2.2); nil iff no sequence.
public struct Schema: Equatable, Sendable {
    public var surfaces: [String]
    public var tasks: [String: [String]]
    public var allTasks: [String]
    public var categorical: [CategoricalFeature]
    public var dense: [DenseFeature]
    public var sequence: SequenceSpec?
    public var tables: [String]
    public var tableBuckets: [String: Int]
    public var candidateFeature: Int?

    /// The names the reference refuses for every feature, table, surface, task and sequence column.
    public static let reservedNames = ["train", "eval", "type", "update"]

    /// Validates and derives; throws `ConfigError` with the reference's message on an invalid schema.
    public init(surfaces: [String], tasks: [String: [String]], categorical: [CategoricalFeature],
                dense: [DenseFeature], sequence: SequenceSpec?) throws {
        self.surfaces = surfaces
        self.categorical = categorical
        self.dense = dense
        self.sequence = sequence
        let unknown = Set(tasks.keys).subtracting(surfaces).sorted()
        if !unknown.isEmpty {
            throw ConfigError("schema.tasks names unknown surfaces \(pythonRepr(unknown))")
        }
        let repeatedSurfaces = duplicates(surfaces)
        if !repeatedSurfaces.isEmpty {
            throw ConfigError("schema.surfaces lists \(pythonRepr(repeatedSurfaces)) twice; expected each surface once")
        }
        var taskLists: [String: [String]] = [:]
        var all: [String] = []
        for surface in surfaces {
            let list = tasks[surface] ?? []
            let repeated = duplicates(list)
            if !repeated.isEmpty {
                throw ConfigError("schema.tasks.\(surface) lists \(pythonRepr(repeated)) twice; expected each task once")
            }
            taskLists[surface] = list
            for task in list where !all.contains(task) { all.append(task) }
        }
        self.tasks = taskLists
        self.allTasks = all

        var tables: [String] = []
        var tableBuckets: [String: Int] = [:]
        var firstUser: [String: String] = [:]
        for feature in categorical {
            if feature.buckets < 2 || feature.buckets > Int(Int32.max) {
                throw ConfigError("schema.categorical \(feature.name): buckets = \(feature.buckets); "
                                  + "expected an integer in [2, \(Int32.max)] (row 0 is the missing row)")
            }
            if let known = tableBuckets[feature.table] {
                if known != feature.buckets {
                    throw ConfigError("table \(feature.table): buckets disagree (\(firstUser[feature.table]!): \(known), "
                                      + "\(feature.name): \(feature.buckets)); expected one bucket count per shared table")
                }
            } else {
                tables.append(feature.table)
                tableBuckets[feature.table] = feature.buckets
                firstUser[feature.table] = feature.name
            }
        }
        self.tables = tables
        self.tableBuckets = tableBuckets
        for (name, list) in categorical.map({ ($0.name, $0.surfaces) }) + dense.map({ ($0.name, $0.surfaces) }) {
            let unknownSurfaces = (list ?? []).filter { !surfaces.contains($0) }
            if !unknownSurfaces.isEmpty {
                throw ConfigError("schema: feature \(name) lists surfaces \(pythonRepr(unknownSurfaces)) that are not "
                                  + "in schema.surfaces \(pythonRepr(surfaces)); expected a subset")
            }
        }
        if let sequence, sequence.maxLength < 1 || sequence.actionTypes < 2 {
            throw ConfigError("schema.sequence: max_length = \(sequence.maxLength), action_types = \(sequence.actionTypes); "
                              + "expected max_length >= 1 and action_types >= 2 (action 0 is padding)")
        }

        let features = categorical.map(\.name) + dense.map(\.name)
        let sequenceColumns = sequence.map { [$0.items, $0.actions] } ?? []
        let names = surfaces + all + tables + features + sequenceColumns
        let invalid = Set(names.filter { !Schema.isValidName($0) || Schema.reservedNames.contains($0) }).sorted()
        if !invalid.isEmpty {
            throw ConfigError("schema: invalid names \(pythonRepr(invalid)); names of features, tables, surfaces, tasks "
                              + "and the sequence columns match [A-Za-z0-9_]+ and are not "
                              + "\(Schema.reservedNames.joined(separator: ", ")) (SPEC 1.1)")
        }
        let columns = features + sequenceColumns
        let taken = ["surface", "row"] + all + all.map { "p_" + $0 }
        let clashing = Set(columns.filter { taken.contains($0) } + all.filter { $0 == "surface" || $0 == "row" }).sorted()
        if !clashing.isEmpty {
            throw ConfigError("schema: features, tasks or sequence columns named \(pythonRepr(clashing)); no feature or "
                              + "task may be named surface or row, no feature a task name or p_<task> (SPEC 1.1)")
        }
        let repeatedColumns = duplicates(taken + columns).sorted()
        if !repeatedColumns.isEmpty {
            throw ConfigError("schema: column names \(pythonRepr(repeatedColumns)) are used twice (surface, row, task, "
                              + "p_<task>, feature and sequence columns share one CSV header)")
        }
        self.candidateFeature = nil
        if let sequence {
            let itemTable = sequence.itemTable
            if !tables.contains(itemTable) {
                throw ConfigError("item_table \(itemTable) is not a table of any categorical feature")
            }
            let candidates = categorical.indices.filter {
                categorical[$0].table == itemTable && categorical[$0].side == .candidate && categorical[$0].multi == nil
            }
            if candidates.count != 1 {
                throw ConfigError("schema: \(candidates.count) single-valued candidate-side features use item_table "
                                  + "\(pythonRepr(itemTable)) \(pythonRepr(candidates.map { categorical[$0].name })); "
                                  + "expected exactly one: the candidate embedding c (SPEC 1.1)")
            }
            self.candidateFeature = candidates[0]
        }
    }

    /// `[A-Za-z0-9_]+`.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x5F
        }
    }

    /// Whether categorical feature `i` exists on `surface` (its `surfaces`, nil = all).
    public func exists(categorical i: Int, on surface: String) -> Bool {
        categorical[i].surfaces?.contains(surface) ?? surfaces.contains(surface)
    }

    /// Whether dense feature `i` exists on `surface`.
    public func exists(dense i: Int, on surface: String) -> Bool {
        dense[i].surfaces?.contains(surface) ?? surfaces.contains(surface)
    }

    /// Indices of the features exclusive to `surface`: those whose `surfaces` is exactly `[surface]` (SPEC 1.1, 2.5).
    public func exclusive(on surface: String) -> (categorical: [Int], dense: [Int]) {
        (categorical.indices.filter { categorical[$0].surfaces == [surface] },
         dense.indices.filter { dense[$0].surfaces == [surface] })
    }

    /// Index of `surface` in `surfaces`, nil when the schema has no such surface.
    public func surfaceIndex(_ surface: String) -> Int? { surfaces.firstIndex(of: surface) }
}

/// Names that occur more than once, in first-seen order of their second occurrence.
func duplicates(_ names: [String]) -> [String] {
    var seen = Set<String>()
    var repeated: [String] = []
    for name in names {
        if !seen.insert(name).inserted && !repeated.contains(name) { repeated.append(name) }
    }
    return repeated
}

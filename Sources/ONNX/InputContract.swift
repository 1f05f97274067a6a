import Schema

/// One named input of a Braid ONNX graph (docs/ONNX.md).
public struct ONNXInput: Equatable, Sendable {
    public var name: String
    /// Whose value it is: `user` inputs have one row per user ([users, ...]), `candidate`
    /// and `context` inputs one row per candidate ([candidates, ...]).
    public var side: Side
    public var type: ONNXElementType
    public var shape: [ONNXDimension]
    public var doc: String
}

/// The input contract of the ONNX graph of one surface (docs/ONNX.md), in input order:
/// - one input per categorical feature that exists on the surface, named after it, int64
///   bucket ids (SPEC 1.3, 0 = missing): [N] single-valued, [N, M] multi-valued with 0 as
///   padding (any M >= 1; pooled over the non-zero ids, an all-zero row reads row 0);
/// - one input per dense feature that exists on the surface, named after it, float64 raw
///   values [N], NaN = missing (the SPEC 1.4 transform runs in the graph);
/// - the sequence columns (`seq_items`, `seq_actions`): int64 [users, L], item buckets and
///   action ids, most recent first, 0-padded (padding only after the valid actions);
/// - `user_index` int64 [candidates]: the user row of each candidate (when the graph has
///   user-side inputs).
/// N is `users` for user-side features and `candidates` for candidate- and context-side
/// ones. Features absent on the surface are not inputs (always missing there).
public struct ONNXInputContract: Equatable, Sendable {
    /// The name of the candidate -> user row input.
    public static let userIndex = "user_index"
    /// Symbolic dimension names.
    public static let users = "users"
    public static let candidates = "candidates"

    public var surface: String
    public var inputs: [ONNXInput]
    /// The surface's tasks (schema order): the graph's outputs are `p_<task>`.
    public var tasks: [String]

    public init(config: ModelConfig, surface: String) throws {
        let schema = config.schema
        self.surface = surface
        tasks = schema.tasks[surface] ?? []
        let L = schema.sequence?.maxLength ?? 0
        func rows(_ side: Side) -> ONNXDimension { .symbolic(side == .user ? Self.users : Self.candidates) }
        var inputs: [ONNXInput] = []
        for (i, f) in schema.categorical.enumerated() where schema.exists(categorical: i, on: surface) {
            let buckets = schema.tableBuckets[f.table] ?? f.buckets
            if let multi = f.multi {
                inputs.append(ONNXInput(name: f.name, side: f.side, type: .int64, shape: [rows(f.side), .symbolic("\(f.name)_values")],
                                        doc: "\(f.side.rawValue)-side multi-valued bucket ids in [0, \(buckets)) (SPEC 1.3), 0 = padding; "
                                            + "\(multi.rawValue)-pooled over the non-zero ids"))
            } else {
                inputs.append(ONNXInput(name: f.name, side: f.side, type: .int64, shape: [rows(f.side)],
                                        doc: "\(f.side.rawValue)-side bucket id in [0, \(buckets)) (SPEC 1.3), 0 = missing"))
            }
        }
        for (j, f) in schema.dense.enumerated() where schema.exists(dense: j, on: surface) {
            inputs.append(ONNXInput(name: f.name, side: f.side, type: .double, shape: [rows(f.side)],
                                    doc: "\(f.side.rawValue)-side raw value, NaN = missing; transform \(f.transform.rawValue) in the graph (SPEC 1.4)"))
        }
        if let seq = schema.sequence {
            let buckets = schema.tableBuckets[seq.itemTable] ?? 0
            inputs.append(ONNXInput(name: seq.items, side: .user, type: .int64, shape: [.symbolic(Self.users), .fixed(L)],
                                    doc: "item bucket ids in [0, \(buckets)), most recent first, 0-padded to \(L)"))
            inputs.append(ONNXInput(name: seq.actions, side: .user, type: .int64, shape: [.symbolic(Self.users), .fixed(L)],
                                    doc: "action ids in [1, \(seq.actionTypes)), most recent first, 0 = padding (only after the valid actions)"))
        }
        if inputs.contains(where: { $0.side == .user }) {
            inputs.append(ONNXInput(name: Self.userIndex, side: .candidate, type: .int64, shape: [.symbolic(Self.candidates)],
                                    doc: "row of each candidate's user in the user-side inputs, in [0, users)"))
        }
        if let clash = inputs.dropLast().first(where: { $0.name == Self.userIndex }) {
            throw ONNXExportError(message: "export --format onnx: the feature \(clash.name) has the name of the graph input that maps "
                + "candidates to users; expected a feature named otherwise (rename it in the schema)")
        }
        guard inputs.contains(where: { $0.side != .user }) || inputs.contains(where: { $0.name == Self.userIndex }) else {
            throw ONNXExportError(message: "export --format onnx: surface \(surface) has no input features; expected at least one "
                + "feature that exists on it")
        }
        self.inputs = inputs
    }
}

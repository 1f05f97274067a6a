import Data
import Foundation
import JSON
import Schema

/// A request that cannot be scored (SPEC 5): `status` is the HTTP status a server answers
/// with — 400 for bad input, 413 for a batch over `max_unique_users`. `description` reads
/// exactly like the reference's `InputError`: `where: what; expected ...`, with `where` a
/// JSON path into the body (`requests[0].candidates[2].ad_hist_ctr`).
public struct RequestError: Error, CustomStringConvertible, Equatable, Sendable {
    public var location: String
    public var message: String
    public var status: Int

    public init(_ location: String, _ message: String, status: Int = 400) {
        self.location = location
        self.message = message
        self.status = status
    }

    public var description: String { "\(location): \(message)" }
}

/// A scoring body encoded for the model (SPEC 5), as the reference's `encode_request`.
///
/// `batch` holds N = sum(`counts`) candidate rows in request and candidate order, all of
/// surface `surface`; its `userIndex` [N] maps each row to one of `users` unique users
/// (equal encoded user-side inputs: buckets, transformed float32 dense values, sequence
/// after truncation), whose sequences are `batch.seqItems`/`seqActions` [users, L].
/// `ignoredKeys` counts the keys that are not features of their object's side (for `/metrics`).
public struct EncodedRequests: Sendable {
    public var surface: Int
    public var batch: Batch
    public var counts: [Int]
    public var users: Int
    public var ignoredKeys: Int

    public init(surface: Int, batch: Batch, counts: [Int], users: Int, ignoredKeys: Int = 0) {
        self.surface = surface
        self.batch = batch
        self.counts = counts
        self.users = users
        self.ignoredKeys = ignoredKeys
    }
}

/// SPEC 5 `POST /v1/score` body -> `EncodedRequests`, check for check and message for
/// message the reference's `encode_request` (see its docstring for the value rules).
/// `maxUniqueUsers`: more distinct users than this is a `RequestError` with status 413
/// naming the bound; nil = unbounded. Every other failure is status 400.
public func encodeRequests(_ body: Foundation.Data, config: ModelConfig, maxUniqueUsers: Int? = nil) throws -> EncodedRequests {
    let json: JSONValue
    do {
        json = try JSONValue.parse(body)
    } catch let error as JSONSyntaxError {
        throw RequestError("body", "malformed JSON (\(error.message)); expected a JSON object")
    }
    return try encodeRequests(json, config: config, maxUniqueUsers: maxUniqueUsers)
}

/// As `encodeRequests(_:config:maxUniqueUsers:)` over an already parsed body.
public func encodeRequests(_ body: JSONValue, config: ModelConfig, maxUniqueUsers: Int? = nil) throws -> EncodedRequests {
    var encoder = RequestEncoder(config: config)
    return try encoder.encode(body, maxUniqueUsers: maxUniqueUsers)
}

private struct RequestEncoder {
    let schema: Schema
    let config: ModelConfig
    let side: [String: Side]
    var ignored = 0
    var surfaceName = ""

    init(config: ModelConfig) {
        self.config = config
        schema = config.schema
        var side: [String: Side] = [:]
        for f in schema.categorical { side[f.name] = f.side }
        for f in schema.dense { side[f.name] = f.side }
        if let seq = schema.sequence { side[seq.items] = .user; side[seq.actions] = .user }
        self.side = side
    }

    /// The members of `value` (absent or null: none) that are `want`-side features; the
    /// others are counted as ignored.
    mutating func features(_ value: JSONValue?, _ want: Side, _ location: String) throws -> [String: JSONValue] {
        guard let value, value != .null else { return [:] }
        guard case .object(let keys, let values) = value else {
            throw RequestError(location, "\(value.typeName); expected an object of \(want.rawValue)-side features")
        }
        var mine: [String: JSONValue] = [:]
        for k in keys where side[k] == want { mine[k] = values[k]! }
        ignored += keys.count - mine.count
        return mine
    }

    func category(_ v: JSONValue, _ location: String) throws -> String {
        switch v {
        case .string(let s): return s
        case .integer(let text): return text
        default: throw RequestError(location, "\(v.typeName); expected a string or an integer")
        }
    }

    /// Buckets of categorical feature `i` in `obj`: one id (single-valued) or the non-missing ids.
    func categorical(_ i: Int, _ obj: [String: JSONValue], _ location: String) throws -> [Int32] {
        let f = schema.categorical[i], buckets = schema.tableBuckets[f.table]!
        let location = "\(location).\(f.name)"
        guard schema.exists(categorical: i, on: surfaceName) else { return f.multi == nil ? [0] : [] }
        let v = obj[f.name] ?? .null
        if f.multi == nil {
            return [v == .null ? 0 : bucket(try category(v, location), buckets: buckets)]
        }
        switch v {
        case .null: return []
        case .array(let items):
            var out: [Int32] = []
            for (k, x) in items.enumerated() {
                let b = bucket(try category(x, "\(location)[\(k)]"), buckets: buckets)
                if b != 0 { out.append(b) }
            }
            return out
        default: throw RequestError(location, "\(v.typeName); expected an array of strings or integers")
        }
    }

    /// Dense feature `j` of `obj` after its transform (float64, stored float32); missing -> 0.
    func denseValue(_ j: Int, _ obj: [String: JSONValue], _ location: String) throws -> Float {
        let f = schema.dense[j], location = "\(location).\(f.name)"
        guard let v = obj[f.name], v != .null, schema.exists(dense: j, on: surfaceName) else { return 0 }
        let x: Double
        switch v {
        case .integer(let text): x = text.withCString { strtod($0, nil) }
        case .number(let value): x = value
        default: throw RequestError(location, "\(v.typeName); expected a JSON number")
        }
        guard x.isFinite else { throw RequestError(location, "\(v.pythonDescription); expected a finite number") }
        switch f.transform {
        case .none: return Float(x)
        case .log1p: return Float(Foundation.log1p(Swift.max(x, 0)))
        case .standardize:
            let stats = config.denseStats[f.name] ?? .identity
            return Float((x - stats.mean) / Swift.max(stats.std, 1e-6))
        }
    }

    /// The user's sequence: item buckets and actions, truncated to L and 0-padded.
    func sequence(_ seq: SequenceSpec, _ user: [String: JSONValue], _ location: String) throws -> (items: [Int32], actions: [Int32]) {
        var lists: [[JSONValue]] = []
        for key in [seq.items, seq.actions] {
            switch user[key] ?? .null {
            case .null: lists.append([])
            case .array(let items): lists.append(items)
            case let v: throw RequestError("\(location).\(key)", "\(v.typeName); expected an array")
            }
        }
        let itemValues = lists[0], actionValues = lists[1]
        let items = try itemValues.enumerated().map { try category($0.element, "\(location).\(seq.items)[\($0.offset)]") }
        for (k, x) in items.enumerated() where x.isEmpty {
            throw RequestError("\(location).\(seq.items)[\(k)]", "an empty string; expected a non-empty string or an integer")
        }
        var actions: [Int32] = []
        for (k, x) in actionValues.enumerated() {
            guard case .integer(let text) = x, let a = Int(text), a >= 1, a < seq.actionTypes else {
                throw RequestError("\(location).\(seq.actions)[\(k)]", "\(x.pythonDescription); expected an integer in [1, \(seq.actionTypes))")
            }
            actions.append(Int32(a))
        }
        guard items.count == actions.count else {
            throw RequestError("\(location).\(seq.actions)", "\(actions.count) actions but \(items.count) items; expected one action per item")
        }
        let L = seq.maxLength, buckets = schema.tableBuckets[seq.itemTable]!
        var outItems = [Int32](repeating: 0, count: L), outActions = [Int32](repeating: 0, count: L)
        for k in 0..<Swift.min(L, items.count) {  // most recent first: keep the head
            outItems[k] = bucket(items[k], buckets: buckets)
            outActions[k] = actions[k]
        }
        return (outItems, outActions)
    }

    mutating func encode(_ body: JSONValue, maxUniqueUsers: Int?) throws -> EncodedRequests {
        guard case .object(let bodyKeys, let bodyValues) = body else {
            throw RequestError("body", "\(body.typeName); expected an object {\"surface\", \"requests\"}")
        }
        let unknown = Set(bodyKeys).subtracting(["surface", "requests"])
        if !unknown.isEmpty {
            throw RequestError("body", "unknown keys \(pythonRepr(unknown.sorted())); expected surface, requests")
        }
        let included = config.surfacesIncluded
        let surfaceValue = bodyValues["surface"] ?? .null
        guard case .string(let surfaceName) = surfaceValue, included.contains(surfaceName) else {
            var known = false
            if case .string(let s) = surfaceValue { known = schema.surfaces.contains(s) }
            let what = known ? "a surface this model does not serve" : "unknown surface"
            throw RequestError("surface", "\(what) \(surfaceValue.pythonDescription); expected one of the surfaces this model serves \(pythonRepr(included))")
        }
        self.surfaceName = surfaceName
        guard case .array(let requests) = bodyValues["requests"] ?? .null else {
            throw RequestError("requests", "\((bodyValues["requests"] ?? .null).typeName); expected an array of requests")
        }
        let F = schema.categorical.count, nDense = schema.dense.count
        let L = schema.sequence?.maxLength ?? 0
        var ids = [[Int32]](repeating: [], count: F)
        var offsets = schema.categorical.map { $0.multi == nil ? [Int32]? .none : [0] }
        var dense: [Float] = [], seqItems: [Int32] = [], seqActions: [Int32] = [], userIndex: [Int32] = [], counts: [Int] = []
        var users: [[Int32]: Int32] = [:]
        var fixedCategorical = [[Int32]](repeating: [], count: F), fixedDense = [Float](repeating: 0, count: nDense)
        for (r, request) in requests.enumerated() {
            let location = "requests[\(r)]"
            guard case .object(let keys, let values) = request else {
                throw RequestError(location, "\(request.typeName); expected an object {user, context, candidates}")
            }
            let unknown = Set(keys).subtracting(["user", "context", "candidates"])
            if !unknown.isEmpty {
                throw RequestError(location, "unknown keys \(pythonRepr(unknown.sorted())); expected user, context, candidates")
            }
            let user = try features(values["user"], .user, "\(location).user")
            let context = try features(values["context"], .context, "\(location).context")
            guard case .array(let candidates) = values["candidates"] ?? .null else {
                throw RequestError("\(location).candidates", "\((values["candidates"] ?? .null).typeName); expected an array of candidate objects")
            }
            // user- and context-side values, the same for every candidate of the request
            var key: [Int32] = []
            for (i, f) in schema.categorical.enumerated() where f.side != .candidate {
                let (obj, at) = f.side == .user ? (user, "\(location).user") : (context, "\(location).context")
                fixedCategorical[i] = try categorical(i, obj, at)
                if f.side == .user {
                    if f.multi != nil { key.append(Int32(fixedCategorical[i].count)) }
                    key.append(contentsOf: fixedCategorical[i])
                }
            }
            for (j, f) in schema.dense.enumerated() where f.side != .candidate {
                let (obj, at) = f.side == .user ? (user, "\(location).user") : (context, "\(location).context")
                fixedDense[j] = try denseValue(j, obj, at)
                if f.side == .user { key.append(Int32(bitPattern: (fixedDense[j] == 0 ? 0 : fixedDense[j]).bitPattern)) }  // -0 == 0
            }
            if let seq = schema.sequence {
                let (items, actions) = try sequence(seq, user, "\(location).user")
                key.append(contentsOf: items)
                key.append(contentsOf: actions)
                if users[key] == nil { seqItems.append(contentsOf: items); seqActions.append(contentsOf: actions) }
            }
            if users[key] == nil { users[key] = Int32(users.count) }
            if let bound = maxUniqueUsers, users.count > bound {
                throw RequestError("\(location).user", "more than max_unique_users = \(bound) distinct users in one batch; "
                    + "expected at most that many (split the batch)", status: 413)
            }
            let u = users[key]!
            for (c, candidate) in candidates.enumerated() {
                let at = "\(location).candidates[\(c)]"
                guard case .object = candidate else {
                    throw RequestError(at, "\(candidate.typeName); expected an object of candidate-side features")
                }
                let own = try features(candidate, .candidate, at)
                for (i, f) in schema.categorical.enumerated() {
                    let values = f.side == .candidate ? try categorical(i, own, at) : fixedCategorical[i]
                    ids[i].append(contentsOf: values)
                    if f.multi != nil { offsets[i]!.append(Int32(ids[i].count)) }
                }
                for (j, f) in schema.dense.enumerated() {
                    dense.append(f.side == .candidate ? try denseValue(j, own, at) : fixedDense[j])
                }
                userIndex.append(u)
            }
            counts.append(candidates.count)
        }
        let N = userIndex.count, T = schema.allTasks.count
        precondition(seqItems.count == users.count * L)
        let si = Int32(schema.surfaces.firstIndex(of: surfaceName)!)
        let batch = Batch(count: N, surface: [Int32](repeating: si, count: N),
                          categorical: (0..<F).map { FeatureIDs(ids: ids[$0], offsets: offsets[$0]) },
                          dense: dense, seqItems: seqItems, seqActions: seqActions, userIndex: userIndex,
                          labels: [Float](repeating: -1, count: N * T), oracle: [Float](repeating: .nan, count: N * T))
        return EncodedRequests(surface: Int(si), batch: batch, counts: counts, users: users.count, ignoredKeys: ignored)
    }
}

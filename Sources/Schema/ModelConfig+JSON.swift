import Foundation
import JSON

extension ModelConfig {
    /// The SPEC 2.8 document, pretty-printed with keys in SPEC order (as the reference's
    /// `json.dump(indent=1)` writes it); `ModelConfig(jsonData:)` reads it back equal.
    public func jsonData() -> Foundation.Data {
        Foundation.Data(orderedJSON().serialized(indent: 1, python: true).utf8)
    }

    func orderedJSON() -> JSONValue {
        let strings = { (list: [String]) in JSONValue.array(list.map { .string($0) }) }
        let ints = { (list: [Int]) in JSONValue.array(list.map { .integer($0) }) }
        let categorical = schema.categorical.map { f -> JSONValue in
            var members: [(String, JSONValue)] = [("name", .string(f.name)), ("side", .string(f.side.rawValue)), ("buckets", .integer(f.buckets))]
            if f.table != f.name { members.append(("table", .string(f.table))) }
            if let multi = f.multi { members.append(("multi", .string(multi.rawValue))) }
            if let surfaces = f.surfaces { members.append(("surfaces", strings(surfaces))) }
            return .object(members)
        }
        let dense = schema.dense.map { f -> JSONValue in
            var members: [(String, JSONValue)] = [("name", .string(f.name)), ("side", .string(f.side.rawValue)),
                                                    ("transform", .string(f.transform.rawValue))]
            if let surfaces = f.surfaces { members.append(("surfaces", strings(surfaces))) }
            return .object(members)
        }
        var schemaMembers: [(String, JSONValue)] = [
            ("surfaces", strings(schema.surfaces)),
            ("tasks", .object(schema.surfaces.map { ($0, strings(schema.tasks[$0] ?? [])) })),
            ("categorical", .array(categorical)),
            ("dense", .array(dense)),
        ]
        if let s = schema.sequence {
            schemaMembers.append(("sequence", .object([("items", .string(s.items)), ("actions", .string(s.actions)),
                                                       ("max_length", .integer(s.maxLength)), ("action_types", .integer(s.actionTypes)),
                                                       ("item_table", .string(s.itemTable))])))
        }
        var modelMembers: [(String, JSONValue)] = [("embedding_dim", .integer(model.embeddingDim))]
        if let s = model.sequence {
            modelMembers.append(("sequence", .object([
                ("fusion", .string(s.fusion.rawValue)), ("d_model", .integer(s.dModel)), ("n_heads", .integer(s.nHeads)),
                ("n_layers", .integer(s.nLayers)), ("d_ff", .integer(s.dFF)), ("recent_k", .integer(s.recentK)),
                ("proj_rank", .integer(s.projRank)), ("proj_dim", .integer(s.projDim)),
            ])))
        }
        modelMembers += [
            ("cross_layers", .integer(model.crossLayers)), ("cross_rank", .integer(model.crossRank)), ("deep", ints(model.deep)),
            ("experts", .integer(model.experts)), ("expert_layers", ints(model.expertLayers)),
            ("tower_layers", ints(model.towerLayers)), ("module_layers", ints(model.moduleLayers)),
            ("task_weights", .object(orderedKeys(model.taskWeights.keys, first: schema.allTasks).map { ($0, .number(model.taskWeights[$0]!)) })),
            ("calibration_mode", .string(model.calibrationMode)),
        ]
        let denseOrder = schema.dense.map(\.name)
        let stats = orderedKeys(denseStats.keys, first: denseOrder).map { name -> (String, JSONValue) in
            (name, .object([("mean", .number(denseStats[name]!.mean)), ("std", .number(denseStats[name]!.std))]))
        }
        let calibrationMembers = orderedKeys(calibration.keys, first: schema.surfaces).map { surface -> (String, JSONValue) in
            let pairs = calibration[surface]!
            return (surface, .object(orderedKeys(pairs.keys, first: schema.allTasks).map {
                ($0, .object([("a", .number(pairs[$0]!.a)), ("b", .number(pairs[$0]!.b))]))
            }))
        }
        return .object([
            ("format", .string("braid-model")), ("version", .integer(1)),
            ("schema", .object(schemaMembers)), ("model", .object(modelMembers)),
            ("dense_stats", .object(stats)), ("calibration", .object(calibrationMembers)),
            ("surfaces_included", strings(surfacesIncluded)),
        ])
    }
}

/// `keys` in the order of `first`, then any others sorted.
private func orderedKeys<Keys: Collection<String>>(_ keys: Keys, first: [String]) -> [String] {
    let present = Set(keys)
    return first.filter { present.contains($0) } + present.subtracting(first).sorted()
}

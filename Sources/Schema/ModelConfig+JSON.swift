import Foundation

/// A JSON value with ordered object members, for writing `model.json` in SPEC 2.8 key order.
enum OrderedJSON {
    case string(String)
    case int(Int)
    case double(Double)
    case array([OrderedJSON])
    case object([(String, OrderedJSON)])

    /// Python's `json.dumps(value, indent=1)`: one space per level, `[]` and `{}` when empty.
    func write(into out: inout String, indent: Int) {
        switch self {
        case .string(let text): out += jsonQuoted(text)
        case .int(let value): out += String(value)
        case .double(let value): out += value.isFinite ? "\(value)" : (value.isNaN ? "NaN" : (value > 0 ? "Infinity" : "-Infinity"))
        case .array(let items):
            if items.isEmpty { out += "[]"; return }
            out += "[\n"
            for (i, item) in items.enumerated() {
                out += String(repeating: " ", count: indent + 1)
                item.write(into: &out, indent: indent + 1)
                out += i + 1 < items.count ? ",\n" : "\n"
            }
            out += String(repeating: " ", count: indent) + "]"
        case .object(let members):
            if members.isEmpty { out += "{}"; return }
            out += "{\n"
            for (i, (key, value)) in members.enumerated() {
                out += String(repeating: " ", count: indent + 1) + jsonQuoted(key) + ": "
                value.write(into: &out, indent: indent + 1)
                out += i + 1 < members.count ? ",\n" : "\n"
            }
            out += String(repeating: " ", count: indent) + "}"
        }
    }
}

/// A JSON string literal, non-ASCII escaped as `\uXXXX` like Python's `ensure_ascii`.
func jsonQuoted(_ text: String) -> String {
    var out = "\""
    for unit in text.utf16 {
        switch unit {
        case 0x22: out += "\\\""
        case 0x5C: out += "\\\\"
        case 0x0A: out += "\\n"
        case 0x0D: out += "\\r"
        case 0x09: out += "\\t"
        case 0x08: out += "\\b"
        case 0x0C: out += "\\f"
        case 0x20..<0x7F: out.unicodeScalars.append(Unicode.Scalar(unit)!)
        default: out += String(format: "\\u%04x", unit)
        }
    }
    return out + "\""
}

extension ModelConfig {
    /// The SPEC 2.8 document, pretty-printed with keys in SPEC order (as the reference's
    /// `json.dump(indent=1)` writes it); `ModelConfig(jsonData:)` reads it back equal.
    public func jsonData() -> Foundation.Data {
        var out = ""
        orderedJSON().write(into: &out, indent: 0)
        return Foundation.Data(out.utf8)
    }

    func orderedJSON() -> OrderedJSON {
        let strings = { (list: [String]) in OrderedJSON.array(list.map { .string($0) }) }
        let ints = { (list: [Int]) in OrderedJSON.array(list.map { .int($0) }) }
        let categorical = schema.categorical.map { f -> OrderedJSON in
            var members: [(String, OrderedJSON)] = [("name", .string(f.name)), ("side", .string(f.side.rawValue)), ("buckets", .int(f.buckets))]
            if f.table != f.name { members.append(("table", .string(f.table))) }
            if let multi = f.multi { members.append(("multi", .string(multi.rawValue))) }
            if let surfaces = f.surfaces { members.append(("surfaces", strings(surfaces))) }
            return .object(members)
        }
        let dense = schema.dense.map { f -> OrderedJSON in
            var members: [(String, OrderedJSON)] = [("name", .string(f.name)), ("side", .string(f.side.rawValue)),
                                                    ("transform", .string(f.transform.rawValue))]
            if let surfaces = f.surfaces { members.append(("surfaces", strings(surfaces))) }
            return .object(members)
        }
        var schemaMembers: [(String, OrderedJSON)] = [
            ("surfaces", strings(schema.surfaces)),
            ("tasks", .object(schema.surfaces.map { ($0, strings(schema.tasks[$0] ?? [])) })),
            ("categorical", .array(categorical)),
            ("dense", .array(dense)),
        ]
        if let s = schema.sequence {
            schemaMembers.append(("sequence", .object([("items", .string(s.items)), ("actions", .string(s.actions)),
                                                       ("max_length", .int(s.maxLength)), ("action_types", .int(s.actionTypes)),
                                                       ("item_table", .string(s.itemTable))])))
        }
        var modelMembers: [(String, OrderedJSON)] = [("embedding_dim", .int(model.embeddingDim))]
        if let s = model.sequence {
            modelMembers.append(("sequence", .object([
                ("fusion", .string(s.fusion.rawValue)), ("d_model", .int(s.dModel)), ("n_heads", .int(s.nHeads)),
                ("n_layers", .int(s.nLayers)), ("d_ff", .int(s.dFF)), ("recent_k", .int(s.recentK)),
                ("proj_rank", .int(s.projRank)), ("proj_dim", .int(s.projDim)),
            ])))
        }
        modelMembers += [
            ("cross_layers", .int(model.crossLayers)), ("cross_rank", .int(model.crossRank)), ("deep", ints(model.deep)),
            ("experts", .int(model.experts)), ("expert_layers", ints(model.expertLayers)),
            ("tower_layers", ints(model.towerLayers)), ("module_layers", ints(model.moduleLayers)),
            ("task_weights", .object(orderedKeys(model.taskWeights.keys, first: schema.allTasks).map { ($0, .double(model.taskWeights[$0]!)) })),
            ("calibration_mode", .string(model.calibrationMode)),
        ]
        let denseOrder = schema.dense.map(\.name)
        let stats = orderedKeys(denseStats.keys, first: denseOrder).map { name -> (String, OrderedJSON) in
            (name, .object([("mean", .double(denseStats[name]!.mean)), ("std", .double(denseStats[name]!.std))]))
        }
        let calibrationMembers = orderedKeys(calibration.keys, first: schema.surfaces).map { surface -> (String, OrderedJSON) in
            let pairs = calibration[surface]!
            return (surface, .object(orderedKeys(pairs.keys, first: schema.allTasks).map {
                ($0, .object([("a", .double(pairs[$0]!.a)), ("b", .double(pairs[$0]!.b))]))
            }))
        }
        return .object([
            ("format", .string("braid-model")), ("version", .int(1)),
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

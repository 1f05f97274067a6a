import Foundation
import JSON

/// How the sequence embedding meets the candidate (SPEC 2.2): `early` (candidate token in the
/// sequence), `late` (target attention after the Transformer), `append` (candidate token
/// beside the user tokens).
public enum Fusion: String, Sendable, CaseIterable { case early, late, append }

/// `model.sequence` (SPEC 2.2, 2.8): Transformer width `dModel`, `nHeads` heads of
/// dModel / nHeads, `nLayers` blocks with FFN width `dFF`; the readout keeps the `recentK`
/// most recent tokens; the projection is a rank-`projRank` cross layer then a Linear to `projDim`.
public struct SequenceConfig: Equatable, Sendable {
    public var fusion: Fusion
    public var dModel: Int
    public var nHeads: Int
    public var nLayers: Int
    public var dFF: Int
    public var recentK: Int
    public var projRank: Int
    public var projDim: Int
}

/// The `model` object of SPEC 2.8: embedding width, sequence encoder, cross network
/// (`crossLayers` layers, `crossRank` 0 = full rank), deep MLP widths, MMoE (`experts`
/// experts of `expertLayers`), per-surface `towerLayers` and exclusive `moduleLayers`,
/// loss `taskWeights` (absent tasks weigh 1) and `calibrationMode` ("surface" or "global").
public struct ModelHyperparameters: Equatable, Sendable {
    public var embeddingDim: Int
    public var sequence: SequenceConfig?
    public var crossLayers: Int
    public var crossRank: Int
    public var deep: [Int]
    public var experts: Int
    public var expertLayers: [Int]
    public var towerLayers: [Int]
    public var moduleLayers: [Int]
    public var taskWeights: [String: Double]
    public var calibrationMode: String

    /// The loss weight of `task` (SPEC 2.6): `taskWeights[task]`, default 1.
    public func taskWeight(_ task: String) -> Double { taskWeights[task] ?? 1 }
}

/// Mean and population standard deviation of a `standardize` dense feature (SPEC 1.4).
public struct DenseStats: Equatable, Sendable {
    public var mean: Double
    public var std: Double
    public init(mean: Double, std: Double) { (self.mean, self.std) = (mean, std) }

    /// (0, 1): standardising leaves a value as it is (no training rows to fit).
    public static let identity = DenseStats(mean: 0, std: 1)
}

/// A Platt calibration pair (SPEC 2.7): calibrated p = sigmoid(a * logit + b); (1, 0) is
/// the identity. `PlattPair.fit` (module Metrics) fits one to logits and labels.
public struct PlattPair: Equatable, Sendable {
    public var a: Double
    public var b: Double
    public init(a: Double, b: Double) { (self.a, self.b) = (a, b) }

    public static let identity = PlattPair(a: 1, b: 0)

    /// sigmoid(a * logit + b).
    public func probability(logit: Double) -> Double {
        1 / (1 + exp(-(a * logit + b)))
    }
}

/// The whole `model.json` (SPEC 2.8): schema, hyperparameters, fitted dense stats,
/// calibration `[surface: [task: pair]]` (missing pairs are the identity (1, 0)) and the
/// surfaces this model serves. Loading validates like the reference's `check_config` and
/// `Schema`; `jsonData()` writes it back in SPEC 2.8 key order.
public struct ModelConfig: Equatable, Sendable {
    public var schema: Schema
    public var model: ModelHyperparameters
    public var denseStats: [String: DenseStats]
    public var calibration: [String: [String: PlattPair]]
    public var surfacesIncluded: [String]

    public init(schema: Schema, model: ModelHyperparameters, denseStats: [String: DenseStats] = [:],
                calibration: [String: [String: PlattPair]] = [:], surfacesIncluded: [String]? = nil) {
        self.schema = schema
        self.model = model
        self.denseStats = denseStats
        self.calibration = calibration
        self.surfacesIncluded = surfacesIncluded ?? schema.surfaces
    }

    /// Reads `model.json` from `url`; errors name the file.
    public static func load(from url: URL) throws -> ModelConfig {
        let data: Foundation.Data
        do {
            data = try Foundation.Data(contentsOf: url)
        } catch {
            throw ConfigError("\(url.path): cannot read the model config (\(error.localizedDescription)); expected a readable model.json")
        }
        do {
            return try ModelConfig(jsonData: data)
        } catch let error as ConfigError {
            throw ConfigError("\(url.path): \(error.message)")
        }
    }

    /// Parses and validates a SPEC 2.8 document, read as Python's `json.load` reads it (exact
    /// integers, correctly rounded numbers, NaN and Infinity literals). Throws `ConfigError`
    /// naming the JSON path of a missing or mistyped key, or the fields and values of an
    /// invalid setting.
    public init(jsonData: Foundation.Data) throws {
        let document: JSONValue
        do {
            document = try JSONValue.parse(jsonData, nonFiniteLiterals: true)
        } catch let error as JSONSyntaxError {
            throw ConfigError("model config is not JSON (\(error.message)); expected a SPEC 2.8 JSON object")
        }
        do {
            self = try Self.parse(JSONNode(document))
        } catch let error as JSONShapeError {
            throw ConfigError(error.message)
        }
    }

    private static func parse(_ root: JSONNode) throws -> ModelConfig {
        _ = try root.object()
        let format = root.optionalMember("format")?.value
        let version = root.optionalMember("version")?.value
        if format != .string("braid-model") || version?.intValue != 1 {
            throw ConfigError("unknown model config format = \(format?.pythonDescription ?? "None"), version = "
                              + "\(version?.pythonDescription ?? "None"); expected format 'braid-model', version 1")
        }
        let schemaNode = try root.member("schema", expected: "the SPEC 1.1 schema object")
        let modelNode = try root.member("model", expected: "the SPEC 2.8 model object")
        let hasSequence = schemaNode.optionalMember("sequence") != nil
        let model = try Self.parseModel(modelNode, schemaNode: schemaNode, hasSequence: hasSequence)
        let schema = try Self.parseSchema(schemaNode)

        var stats: [String: DenseStats] = [:]
        for (name, node) in try root.optionalMember("dense_stats")?.object() ?? [] {
            stats[name] = DenseStats(mean: try node.member("mean", expected: "a number").double(),
                                     std: try node.member("std", expected: "a number").double())
        }
        var calibration: [String: [String: PlattPair]] = [:]
        for (surface, node) in try root.optionalMember("calibration")?.object() ?? [] {
            for (task, pair) in try node.object() {
                calibration[surface, default: [:]][task] = PlattPair(a: try pair.member("a", expected: "a number").double(),
                                                                    b: try pair.member("b", expected: "a number").double())
            }
        }
        let included = try root.optionalMember("surfaces_included")?.strings() ?? schema.surfaces
        let unserved = included.filter { !schema.surfaces.contains($0) }
        if !unserved.isEmpty || included.isEmpty || !duplicates(included).isEmpty {
            throw ConfigError("surfaces_included = \(pythonRepr(included)); expected distinct surfaces of "
                              + "schema.surfaces \(pythonRepr(schema.surfaces)), at least one")
        }
        return ModelConfig(schema: schema, model: model, denseStats: stats, calibration: calibration, surfacesIncluded: included)
    }

    private static func parseModel(_ node: JSONNode, schemaNode: JSONNode, hasSequence: Bool) throws -> ModelHyperparameters {
        _ = try node.object()
        // check_config: collect every invalid setting, then refuse them in one message.
        var bad: [String] = []
        if let old = node.optionalMember("calibration") {
            bad.append("model.calibration = \(old.value.pythonDescription) was renamed model.calibration_mode (SPEC v1.1, 2.8)")
        }
        let modeValue = node.optionalMember("calibration_mode")?.value ?? .string("surface")
        var mode: String?
        if case .string(let name) = modeValue { mode = name }
        if mode != "surface" && mode != "global" {
            bad.append("model.calibration_mode = \(modeValue.pythonDescription), expected 'surface' or 'global'")
        }
        var sequence: SequenceConfig?
        var fusion: Fusion?
        if hasSequence {
            let sq = try node.member("sequence", expected: "the sequence encoder settings (the schema has a sequence)")
            let fusionName = try sq.member("fusion", expected: "one of early, late, append").string()
            fusion = Fusion(rawValue: fusionName)
            if fusion == nil {
                bad.append("model.sequence.fusion = \(pythonRepr(fusionName)), expected one of early, late, append")
            }
            let int = { (key: String) in try sq.member(key, expected: "an integer").int() }
            let dModel = try int("d_model"), nHeads = try int("n_heads"), recentK = try int("recent_k"), projRank = try int("proj_rank")
            if nHeads < 1 || dModel % nHeads != 0 {
                bad.append("model.sequence.d_model = \(dModel) is not a multiple of model.sequence.n_heads = \(nHeads)")
            }
            let maxLength = try schemaNode.member("sequence", expected: "").member("max_length", expected: "an integer").int()
            if !(1...max(1, maxLength)).contains(recentK) || maxLength < 1 {
                bad.append("model.sequence.recent_k = \(recentK) is not in [1, schema.sequence.max_length = \(maxLength)]")
            }
            if projRank < 1 {
                bad.append("model.sequence.proj_rank = \(projRank), expected >= 1")
            }
            sequence = SequenceConfig(fusion: fusion ?? .early, dModel: dModel, nHeads: nHeads, nLayers: try int("n_layers"),
                                      dFF: try int("d_ff"), recentK: recentK, projRank: projRank, projDim: try int("proj_dim"))
        }
        let experts = try node.member("experts", expected: "an integer").int()
        if experts < 1 {
            bad.append("model.experts = \(experts), expected >= 1")
        }
        let expertLayers = try node.member("expert_layers", expected: "an array of layer widths").ints()
        if expertLayers.isEmpty {
            bad.append("model.expert_layers = [], expected at least one layer")
        }
        if !bad.isEmpty {
            throw ConfigError("invalid config: " + bad.joined(separator: "; "))
        }
        var weights: [String: Double] = [:]
        for (task, value) in try node.optionalMember("task_weights")?.object() ?? [] {
            weights[task] = try value.double()
        }
        let model = ModelHyperparameters(
            embeddingDim: try node.member("embedding_dim", expected: "an integer").int(),
            sequence: sequence,
            crossLayers: try node.member("cross_layers", expected: "an integer").int(),
            crossRank: try node.member("cross_rank", expected: "an integer").int(),
            deep: try node.member("deep", expected: "an array of layer widths").ints(),
            experts: experts, expertLayers: expertLayers,
            towerLayers: try node.member("tower_layers", expected: "an array of layer widths").ints(),
            moduleLayers: try node.member("module_layers", expected: "an array of layer widths").ints(),
            taskWeights: weights, calibrationMode: mode ?? "surface")
        return model
    }

    private static func parseSchema(_ node: JSONNode) throws -> Schema {
        let surfaces = try node.member("surfaces", expected: "an array of surface names").strings()
        var tasks: [String: [String]] = [:]
        for (surface, list) in try node.optionalMember("tasks")?.object() ?? [] {
            tasks[surface] = try list.strings()
        }
        let categorical = try (node.optionalMember("categorical")?.array() ?? []).map { f -> CategoricalFeature in
            let name = try f.member("name", expected: "a feature name").string()
            var multi: Pooling?
            if let m = f.optionalMember("multi") {
                guard let pooling = Pooling(rawValue: try m.string()) else {
                    throw m.wrongType("'sum' or 'mean' (or no key: single-valued)")
                }
                multi = pooling
            }
            return CategoricalFeature(name: name, side: try parseSide(f), buckets: try f.member("buckets", expected: "an integer").int(),
                                      table: try f.optionalMember("table")?.string(), multi: multi,
                                      surfaces: try f.optionalMember("surfaces")?.strings())
        }
        let dense = try (node.optionalMember("dense")?.array() ?? []).map { f -> DenseFeature in
            let name = try f.member("name", expected: "a feature name").string()
            var transform = DenseTransform.none
            if let t = f.optionalMember("transform") {
                guard let parsed = DenseTransform(rawValue: try t.string()) else {
                    throw t.wrongType("'none', 'log1p' or 'standardize'")
                }
                transform = parsed
            }
            return DenseFeature(name: name, side: try parseSide(f), transform: transform,
                                surfaces: try f.optionalMember("surfaces")?.strings())
        }
        var sequence: SequenceSpec?
        if let s = node.optionalMember("sequence") {
            sequence = SequenceSpec(items: try s.member("items", expected: "a column name").string(),
                                    actions: try s.member("actions", expected: "a column name").string(),
                                    maxLength: try s.member("max_length", expected: "an integer").int(),
                                    actionTypes: try s.member("action_types", expected: "an integer").int(),
                                    itemTable: try s.member("item_table", expected: "a table name").string())
        }
        return try Schema(surfaces: surfaces, tasks: tasks, categorical: categorical, dense: dense, sequence: sequence)
    }

    private static func parseSide(_ feature: JSONNode) throws -> Side {
        let node = try feature.member("side", expected: "'user', 'candidate' or 'context'")
        guard let side = Side(rawValue: try node.string()) else {
            throw node.wrongType("'user', 'candidate' or 'context'")
        }
        return side
    }
}

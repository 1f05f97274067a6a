import Foundation
import Schema
import Testing

/// model.json (SPEC 2.8) loading, writing and every validation message of the reference's
/// `Schema.__init__` and `check_config`.
@Suite struct ModelConfigTests {
    func fixtureConfigText(_ fixture: String) throws -> String {
        try String(contentsOf: fixturesDirectory.appendingPathComponent(fixture).appendingPathComponent("model.json"), encoding: .utf8)
    }

    /// Parses `text` after applying edits to the multi_exclusive fixture's JSON.
    func message(editing edit: (inout [String: Any]) -> Void) throws -> String {
        let original = try fixtureConfigText("multi_exclusive")
        var object = try #require(try JSONSerialization.jsonObject(with: Foundation.Data(original.utf8)) as? [String: Any])
        edit(&object)
        let data = try JSONSerialization.data(withJSONObject: object)
        do {
            _ = try ModelConfig(jsonData: data)
        } catch let error as ConfigError {
            return error.message
        }
        Issue.record("the edited config was accepted")
        return ""
    }

    func editSchema(_ edit: @escaping (inout [String: Any]) -> Void) -> (inout [String: Any]) -> Void {
        { root in
            var schema = root["schema"] as! [String: Any]
            edit(&schema)
            root["schema"] = schema
        }
    }

    func editModel(_ edit: @escaping (inout [String: Any]) -> Void) -> (inout [String: Any]) -> Void {
        { root in
            var model = root["model"] as! [String: Any]
            edit(&model)
            root["model"] = model
        }
    }

    func editFeature(_ index: Int, _ edit: @escaping (inout [String: Any]) -> Void) -> (inout [String: Any]) -> Void {
        editSchema { schema in
            var features = schema["categorical"] as! [[String: Any]]
            edit(&features[index])
            schema["categorical"] = features
        }
    }

    @Test(arguments: fixtureNames)
    func loadsAndRoundTrips(fixture: String) throws {
        let text = try fixtureConfigText(fixture)
        let config = try ModelConfig(jsonData: Foundation.Data(text.utf8))
        let written = config.jsonData()
        #expect(try ModelConfig(jsonData: written) == config)
        if text.contains("calibration_mode") {  // late_fullrank leaves it to the default
            #expect(String(decoding: written, as: UTF8.self) == text.trimmingCharacters(in: .newlines))
        }
    }

    @Test func derivedFacts() throws {
        let config = try ModelConfig(jsonData: Foundation.Data(try fixtureConfigText("multi_exclusive").utf8))
        let schema = config.schema
        #expect(schema.allTasks == ["click", "save"])
        #expect(schema.tables == ["user_id", "user_country", "item", "advertiser_id", "interests", "query_tokens", "context_pin_cat"])
        #expect(schema.tableBuckets["item"] == 64)
        #expect(schema.candidateFeature == 2)
        #expect(schema.exists(categorical: 5, on: "search") && !schema.exists(categorical: 5, on: "home_feed"))
        #expect(schema.exists(dense: 0, on: "related_pins") && !schema.exists(dense: 1, on: "related_pins"))
        #expect(schema.exclusive(on: "search").categorical == [5] && schema.exclusive(on: "search").dense == [1])
        #expect(schema.exclusive(on: "related_pins").categorical == [6, 7])
        #expect(schema.exclusive(on: "home_feed").categorical.isEmpty)
        #expect(config.model.taskWeight("save") == 0.5 && config.model.taskWeight("other") == 1)
        #expect(config.denseStats["query_ad_sim"]?.mean == -0.09999999999999999)
        let late = try ModelConfig(jsonData: Foundation.Data(try fixtureConfigText("late_fullrank").utf8))
        #expect(late.model.calibrationMode == "surface" && late.model.taskWeights.isEmpty)
        #expect(late.model.sequence?.fusion == .late)
    }

    @Test func schemaMessages() throws {
        #expect(try message(editing: editSchema { $0["tasks"] = ["web": ["click"]] })
                == "schema.tasks names unknown surfaces ['web']")
        #expect(try message(editing: editFeature(7) { $0["buckets"] = 32 })
                == "table item: buckets disagree (ad_id: 64, context_ad_id: 32); expected one bucket count per shared table")
        #expect(try message(editing: editFeature(0) { $0["name"] = "user-id" })
                == "schema: invalid names ['user-id']; names of features, tables, surfaces, tasks and the sequence columns "
                + "match [A-Za-z0-9_]+ and are not train, eval, type, update (SPEC 1.1)")
        #expect(try message(editing: editSchema { $0["tasks"] = ["home_feed": ["click", "eval"]] })
                == "schema: invalid names ['eval']; names of features, tables, surfaces, tasks and the sequence columns "
                + "match [A-Za-z0-9_]+ and are not train, eval, type, update (SPEC 1.1)")
        #expect(try message(editing: editFeature(1) { $0["name"] = "p_click" })
                == "schema: features, tasks or sequence columns named ['p_click']; no feature or task may be named "
                + "surface or row, no feature a task name or p_<task> (SPEC 1.1)")
        #expect(try message(editing: editFeature(1) { $0["name"] = "row" })
                == "schema: features, tasks or sequence columns named ['row']; no feature or task may be named "
                + "surface or row, no feature a task name or p_<task> (SPEC 1.1)")
        #expect(try message(editing: editSchema { var dense = $0["dense"] as! [[String: Any]]; dense[0]["name"] = "user_id"; $0["dense"] = dense })
                == "schema: column names ['user_id'] are used twice (surface, row, task, p_<task>, feature and sequence "
                + "columns share one CSV header)")
        #expect(try message(editing: editSchema { var s = $0["sequence"] as! [String: Any]; s["item_table"] = "items"; $0["sequence"] = s })
                == "item_table items is not a table of any categorical feature")
        #expect(try message(editing: editFeature(7) { $0["side"] = "candidate" })
                == "schema: 2 single-valued candidate-side features use item_table 'item' ['ad_id', 'context_ad_id']; "
                + "expected exactly one: the candidate embedding c (SPEC 1.1)")
        #expect(try message(editing: editFeature(2) { $0["side"] = "context" })
                == "schema: 0 single-valued candidate-side features use item_table 'item' []; "
                + "expected exactly one: the candidate embedding c (SPEC 1.1)")
        #expect(try message(editing: editFeature(0) { $0["buckets"] = 1 })
                == "schema.categorical user_id: buckets = 1; expected an integer in [2, 2147483647] (row 0 is the missing row)")
        #expect(try message(editing: editFeature(4) { $0["multi"] = "max" })
                == "schema.categorical[4].multi = 'max'; expected 'sum' or 'mean' (or no key: single-valued)")
        #expect(try message(editing: editFeature(0) { $0["side"] = "item" })
                == "schema.categorical[0].side = 'item'; expected 'user', 'candidate' or 'context'")
        #expect(try message(editing: editFeature(5) { $0["surfaces"] = ["web"] })
                == "schema: feature query_tokens lists surfaces ['web'] that are not in schema.surfaces "
                + "['home_feed', 'search', 'related_pins']; expected a subset")
    }

    @Test func modelMessages() throws {
        #expect(try message(editing: editModel { $0["calibration"] = "surface" })
                == "invalid config: model.calibration = 'surface' was renamed model.calibration_mode (SPEC v1.1, 2.8)")
        #expect(try message(editing: editModel { $0["calibration_mode"] = "per_surface" })
                == "invalid config: model.calibration_mode = 'per_surface', expected 'surface' or 'global'")
        #expect(try message(editing: editModel { var s = $0["sequence"] as! [String: Any]; s["fusion"] = "middle"; $0["sequence"] = s })
                == "invalid config: model.sequence.fusion = 'middle', expected one of early, late, append")
        #expect(try message(editing: editModel { var s = $0["sequence"] as! [String: Any]; s["n_heads"] = 3; $0["sequence"] = s })
                == "invalid config: model.sequence.d_model = 8 is not a multiple of model.sequence.n_heads = 3")
        #expect(try message(editing: editModel { var s = $0["sequence"] as! [String: Any]; s["recent_k"] = 7; $0["sequence"] = s })
                == "invalid config: model.sequence.recent_k = 7 is not in [1, schema.sequence.max_length = 6]")
        #expect(try message(editing: editModel { var s = $0["sequence"] as! [String: Any]; s["proj_rank"] = 0; $0["sequence"] = s })
                == "invalid config: model.sequence.proj_rank = 0, expected >= 1")
        #expect(try message(editing: editModel { $0["experts"] = 0; $0["expert_layers"] = [Int]() })
                == "invalid config: model.experts = 0, expected >= 1; model.expert_layers = [], expected at least one layer")
        #expect(try message(editing: { $0["version"] = 2 })
                == "unknown model config format = 'braid-model', version = 2; expected format 'braid-model', version 1")
        #expect(try message(editing: { $0["format"] = "torch" })
                == "unknown model config format = 'torch', version = 1; expected format 'braid-model', version 1")
    }

    @Test func missingAndMistypedKeysNameTheirPath() throws {
        #expect(try message(editing: editFeature(3) { $0["buckets"] = nil })
                == "missing key schema.categorical[3].buckets; expected an integer")
        #expect(try message(editing: editModel { $0["embedding_dim"] = nil })
                == "missing key model.embedding_dim; expected an integer")
        #expect(try message(editing: editModel { $0["deep"] = [16, "8"] })
                == "model.deep[1] = '8'; expected an integer")
        #expect(try message(editing: editModel { $0["sequence"] = nil })
                == "missing key model.sequence; expected the sequence encoder settings (the schema has a sequence)")
        #expect(try message(editing: { $0["surfaces_included"] = ["web"] })
                == "surfaces_included = ['web']; expected distinct surfaces of schema.surfaces ['home_feed', 'search', 'related_pins'], at least one")
        #expect(throws: ConfigError.self) { try ModelConfig(jsonData: Foundation.Data("{\"format\": ".utf8)) }
    }

    @Test func loadNamesTheFile() throws {
        let url = try writeTemporary("model.json", "{\"format\": \"braid-model\", \"version\": 1}")
        #expect(throws: ConfigError("\(url.path): missing key schema; expected the SPEC 1.1 schema object")) {
            try ModelConfig.load(from: url)
        }
    }
}

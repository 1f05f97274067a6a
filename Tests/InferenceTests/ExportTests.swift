import Data
import Foundation
import Inference
import Model
import NN
import Schema
import TestSupport
import Testing

/// SPEC 3 surface exports: what they hold, that they score their surface exactly as the
/// unified model, and that they reload through `BraidModel.load`.
@Suite struct ExportTests {
    static func logits(_ model: BraidModel, _ batch: Batch) -> [Float] {
        model(batch).flatMap { s in s.logits.flatMap { $0.logit.values } }
    }

    @Test(arguments: ["early_lowrank", "late_fullrank", "append_fusion", "multi_exclusive", "empty_sequences"])
    func exportScoresItsSurfaceLikeTheUnifiedModel(fixture: String) throws {
        let unified = try fixtureModel(fixture)
        let schema = unified.config.schema
        let rows = try fixtureRows(fixture, config: unified.config)
        for (si, s) in schema.surfaces.enumerated() {
            let (config, parameters) = try exportSurface(unified, surface: s)
            #expect(config.surfacesIncluded == [s])
            let export = BraidModel(config: config, parameters: parameters)
            let mine = (0..<rows.count).filter { rows.surface[$0] == Int32(si) }
            let batch = rows.batch(rows: mine)
            let a = Self.logits(unified, batch), b = Self.logits(export, batch)
            #expect(a.count == mine.count * (schema.tasks[s]?.count ?? 0) && a == b, "\(fixture) \(s): export logits differ")
            // tables of features absent on s keep row 0 only; shared and present ones stay whole
            for (i, f) in schema.categorical.enumerated() {
                let usedOnS = schema.categorical.indices.contains { schema.categorical[$0].table == f.table && schema.exists(categorical: $0, on: s) }
                    || f.table == schema.sequence?.itemTable
                let rowsKept = parameters.table(f.table).weight.shape[0]
                #expect(rowsKept == (usedOnS ? schema.tableBuckets[f.table]! : 1), "\(fixture) \(s): table \(f.table) of feature \(i)")
            }
            #expect(parameters["surface.weight"].shape == [schema.surfaces.count, unified.config.model.embeddingDim])
            #expect(!parameters.allNames.contains { $0.hasPrefix("gates.") && $0 != "gates.\(s).weight" && $0 != "gates.\(s).bias" })
        }
    }

    @Test func exportReloadsAndKeepsOnlyItsCalibration() throws {
        let unified = try fixtureModel("multi_exclusive")
        var config = unified.config
        config.calibration = ["search": ["click": PlattPair(a: 1.25, b: -0.5)], "home_feed": ["click": PlattPair(a: 0.5, b: 0.25)]]
        let model = BraidModel(config: config, parameters: unified.parameters)
        let (exportConfig, parameters) = try exportSurface(model, surface: "search")
        #expect(exportConfig.calibration == ["search": ["click": PlattPair(a: 1.25, b: -0.5)]])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("braid-export-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try BraidModel(config: exportConfig, parameters: parameters).save(directory: dir)
        let reloaded = try BraidModel.load(directory: dir)
        #expect(reloaded.config == exportConfig)
        #expect(reloaded.parameters.allNames == parameters.allNames)
        for name in parameters.allNames {
            #expect(reloaded.parameters.tensor(named: name)!.values == parameters.tensor(named: name)!.values, "\(name)")
        }
        #expect(parameters.table("query_tokens").weight.shape[0] > 1 && parameters.table("context_pin_cat").weight.shape[0] == 1)
        #expect(parameterCount(parameterLayout(exportConfig)) < parameterCount(parameterLayout(config)))
        // the reloaded export serves search with its calibration, and refuses other surfaces
        let engine = InferenceEngine(model: reloaded)
        let body = #"{"surface": "search", "requests": [{"user": {"user_id": "u"}, "context": {"query_tokens": ["red"]}, "candidates": [{"ad_id": "a1"}]}]}"#
        let viaExport = try engine.score(body: Data(body.utf8))
        let viaUnified = try InferenceEngine(model: model).score(body: Data(body.utf8))
        #expect(viaExport.probabilities == viaUnified.probabilities)
        #expect(throws: RequestError("surface", "a surface this model does not serve 'home_feed'; expected one of the surfaces this model serves ['search']")) {
            try engine.score(body: Data(body.replacingOccurrences(of: "search", with: "home_feed").utf8))
        }
        // exporting a surface the export does not serve is refused with the reason
        #expect(throws: SurfaceExportError.self) { try exportSurface(reloaded, surface: "home_feed") }
    }
}

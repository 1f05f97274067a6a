import Foundation
import Schema
import Testing
@testable import Data

/// Every fixture's batch.csv + model.json encodes to exactly the reference's `in.*` tensors.
@Suite struct FixtureEncodingTests {
    @Test(arguments: fixtureNames)
    func encodesLikeTheReference(fixture: String) throws {
        let directory = fixturesDirectory.appendingPathComponent(fixture)
        let config = try ModelConfig.load(from: directory.appendingPathComponent("model.json"))
        let rows = try EncodedRows(file: directory.appendingPathComponent("batch.csv"), config: config)
        let expected = try readSafetensors(directory.appendingPathComponent("expected.safetensors"))
        let batch = rows.batch()
        let schema = config.schema
        #expect(batch.count == 24)
        #expect(rows.skippedRows == 0)

        #expect(batch.surface.map(Double.init) == expected["in.surface"]?.values)
        for (f, feature) in schema.categorical.enumerated() {
            let stored = try #require(expected["in.cat.\(feature.name)"], "in.cat.\(feature.name)")
            let ids = batch.categorical[f]
            if let offsets = ids.offsets {
                let width = stored.shape[1]
                var padded = [Double](repeating: 0, count: batch.count * width)
                for b in 0..<batch.count {
                    for (k, id) in ids.ids[Int(offsets[b]) ..< Int(offsets[b + 1])].enumerated() {
                        try #require(k < width, "\(feature.name) row \(b) has more ids than the reference's \(width)")
                        padded[b * width + k] = Double(id)
                    }
                }
                #expect(padded == stored.values, "in.cat.\(feature.name)")
            } else {
                #expect(ids.ids.map(Double.init) == stored.values, "in.cat.\(feature.name)")
            }
        }
        #expect(batch.dense.map(Double.init) == expected["in.dense"]?.values, "in.dense")
        #expect(batch.seqItems.map(Double.init) == expected["in.seq_items"]?.values, "in.seq_items")
        #expect(batch.seqActions.map(Double.init) == expected["in.seq_actions"]?.values, "in.seq_actions")
        let tasks = schema.allTasks.count
        for (t, task) in schema.allTasks.enumerated() {
            let column = (0..<batch.count).map { Double(batch.labels[$0 * tasks + t]) }
            #expect(column == expected["in.label.\(task)"]?.values, "in.label.\(task)")
        }
    }

    /// The fixtures' dense_stats were fitted on batch.csv by the reference: fitting again gives
    /// the same float64 values, to the bit.
    @Test(arguments: fixtureNames)
    func fitsTheReferenceDenseStats(fixture: String) throws {
        let directory = fixturesDirectory.appendingPathComponent(fixture)
        let config = try ModelConfig.load(from: directory.appendingPathComponent("model.json"))
        let rows = try EncodedRows(file: directory.appendingPathComponent("batch.csv"), config: config,
                                   options: EncodeOptions(fitDenseStats: true))
        for feature in config.schema.dense where feature.transform == .standardize {
            #expect(rows.denseStats[feature.name] == config.denseStats[feature.name], "\(fixture) \(feature.name)")
        }
        #expect(rows.batch() == (try EncodedRows(file: directory.appendingPathComponent("batch.csv"), config: config)).batch())
    }

    @Test func batchGathersRowsInTheOrderGiven() throws {
        let directory = fixturesDirectory.appendingPathComponent("multi_exclusive")
        let config = try ModelConfig.load(from: directory.appendingPathComponent("model.json"))
        let rows = try EncodedRows(file: directory.appendingPathComponent("batch.csv"), config: config)
        let all = rows.batch()
        let order = [5, 0, 17, 5, 23]
        let picked = rows.batch(rows: order)
        #expect(picked.count == 5)
        #expect(picked.surface == order.map { all.surface[$0] })
        let width = config.schema.dense.count, length = config.schema.sequence!.maxLength, tasks = config.schema.allTasks.count
        for (b, n) in order.enumerated() {
            #expect(Array(picked.dense[b * width ..< (b + 1) * width]) == Array(all.dense[n * width ..< (n + 1) * width]))
            #expect(Array(picked.seqItems[b * length ..< (b + 1) * length]) == Array(all.seqItems[n * length ..< (n + 1) * length]))
            #expect(Array(picked.labels[b * tasks ..< (b + 1) * tasks]) == Array(all.labels[n * tasks ..< (n + 1) * tasks]))
            for (f, ids) in picked.categorical.enumerated() {
                let source = all.categorical[f]
                if let offsets = ids.offsets, let sourceOffsets = source.offsets {
                    #expect(Array(ids.ids[Int(offsets[b]) ..< Int(offsets[b + 1])])
                            == Array(source.ids[Int(sourceOffsets[n]) ..< Int(sourceOffsets[n + 1])]))
                } else {
                    #expect(ids.ids[b] == source.ids[n])
                }
            }
        }
        #expect(rows.lines.count == 24 && rows.lines.first == 2)
    }
}

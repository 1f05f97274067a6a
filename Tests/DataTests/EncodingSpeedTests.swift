import Foundation
import Schema
import Testing
@testable import Data

/// Encoding throughput on one core: 200k rows of 20 columns (a sequence of 8, a multi-valued
/// feature, 4 dense, 2 labels) read from a file into memory. Prints rows/s; the floor only
/// catches a pathological regression (the target is >= 500k rows/s, release build).
@Suite struct EncodingSpeedTests {
    @Test func encodesTwoHundredThousandRowsQuickly() throws {
        var categorical: [String] = []
        var header = ["surface"]
        for i in 0..<10 {
            let table = i == 0 ? ", \"table\": \"item\"" : ""
            let side = i == 0 ? "candidate" : (i < 5 ? "user" : "context")
            let multi = i == 9 ? ", \"multi\": \"sum\"" : ""
            categorical.append("{\"name\": \"c\(i)\", \"side\": \"\(side)\", \"buckets\": 100000\(table)\(multi)}")
            header.append("c\(i)")
        }
        let dense = (0..<4).map { "{\"name\": \"d\($0)\", \"side\": \"candidate\", \"transform\": \"\($0 % 2 == 0 ? "log1p" : "standardize")\"}" }
        header += (0..<4).map { "d\($0)" } + ["seq_items", "seq_actions", "click", "save"]
        let configText = """
        {"format": "braid-model", "version": 1,
         "schema": {"surfaces": ["home_feed", "search"], "tasks": {"home_feed": ["click", "save"], "search": ["click"]},
           "categorical": [\(categorical.joined(separator: ","))], "dense": [\(dense.joined(separator: ","))],
           "sequence": {"items": "seq_items", "actions": "seq_actions", "max_length": 16, "action_types": 8, "item_table": "item"}},
         "model": {"embedding_dim": 8,
           "sequence": {"fusion": "late", "d_model": 8, "n_heads": 2, "n_layers": 1, "d_ff": 16, "recent_k": 2, "proj_rank": 2, "proj_dim": 4},
           "cross_layers": 1, "cross_rank": 2, "deep": [8], "experts": 2, "expert_layers": [8], "tower_layers": [4], "module_layers": [4]}}
        """
        let config = try ModelConfig(jsonData: Foundation.Data(configText.utf8))
        var text = header.joined(separator: ",") + "\n"
        let rowCount = 200_000
        var state: UInt64 = 42
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 33
        }
        text.reserveCapacity(rowCount * 160)
        for _ in 0..<rowCount {
            var fields = [next() % 2 == 0 ? "home_feed" : "search"]
            for i in 0..<10 { fields.append(i == 9 ? "t\(next() % 50) t\(next() % 50)" : "v\(next() % 5000)") }
            for _ in 0..<4 { fields.append("\(Double(next() % 10000) / 100)") }
            fields.append((0..<8).map { _ in "a\(next() % 5000)" }.joined(separator: " "))
            fields.append((0..<8).map { _ in "\(1 + next() % 7)" }.joined(separator: " "))
            fields.append("\(next() % 2)")
            fields.append(next() % 3 == 0 ? "" : "\(next() % 2)")
            text += fields.joined(separator: ",") + "\n"
        }
        let url = try writeTemporary("speed.csv", text)
        let clock = ContinuousClock()
        var rows: EncodedRows?
        let elapsed = try clock.measure {
            rows = try EncodedRows(file: url, config: config, options: EncodeOptions(fitDenseStats: true))
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        let rate = Double(rowCount) / seconds
        print("encoded \(rowCount) rows x \(header.count) columns (\(text.utf8.count / 1_000_000) MB) in "
              + "\(String(format: "%.3f", seconds)) s: \(Int(rate)) rows/s")
        #expect(rows?.count == rowCount)
        #expect(rate > 100_000, "encoding ran at \(Int(rate)) rows/s")
    }
}

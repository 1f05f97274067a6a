import Foundation
import Schema
import Testing
@testable import Data

/// The repository root, found from this source file.
private let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()
private let doubanSample = "/work/shared/data/douban-3domain/douban_sample.csv"

private func python3() -> String? {
    ["/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"].first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// scripts/adapters/douban.py on the first 300 rows of the shared sample: its output encodes
/// with `EncodedRows` (every split, labels included) and the cache reads it back alike.
@Suite(.enabled(if: python3() != nil && FileManager.default.fileExists(atPath: doubanSample),
                "needs python3 and /work/shared/data"))
struct AdapterTests {
    @Test func doubanOutputEncodes() throws {
        let out = try temporaryDirectory()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python3()!)
        process.arguments = [repositoryRoot.appendingPathComponent("scripts/adapters/douban.py").path, out.path,
                             "--limit", "300", "--seed", "3"]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let config = try ModelConfig.load(from: out.appendingPathComponent("model.json"))
        #expect(config.schema.surfaces == ["book", "movie", "music"])
        #expect(config.schema.allTasks == ["click"])
        var total = 0
        for (name, expected) in [("train.csv", 240), ("valid.csv", 30), ("test.csv", 30)] {
            let csv = out.appendingPathComponent(name)
            let rows = try EncodedRows(file: csv, config: config)
            #expect(rows.count == expected, "\(name)")
            #expect(rows.labels.allSatisfy { $0 == 0 || $0 == 1 }, "every row has a click label")
            let cache = try DataCache.open(csv: csv, config: config)
            #expect(cache.batch(rows: Array(0..<cache.count)) == rows.batch())
            total += rows.count
        }
        #expect(total == 300)
    }
}

import Foundation
import Testing

/// Tests/Fixtures, found from this source file.
let fixturesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fixtures")

let fixtureNames = ["early_lowrank", "late_fullrank", "multi_exclusive", "empty_sequences", "append_fusion"]

/// One tensor of a safetensors file: shape and values widened to Double (I64 and F32 only).
struct StoredTensor {
    var shape: [Int]
    var values: [Double]
}

/// A minimal safetensors reader for the golden files: 8-byte little-endian header length,
/// a JSON header `{name: {dtype, shape, data_offsets}}`, then raw little-endian data.
func readSafetensors(_ url: URL) throws -> [String: StoredTensor] {
    let bytes = [UInt8](try Foundation.Data(contentsOf: url))
    let headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    let header = try #require(try JSONSerialization.jsonObject(with: Foundation.Data(bytes[8 ..< 8 + headerLength])) as? [String: Any])
    let dataStart = 8 + headerLength
    var tensors: [String: StoredTensor] = [:]
    for (name, entry) in header where name != "__metadata__" {
        let info = try #require(entry as? [String: Any])
        let dtype = try #require(info["dtype"] as? String)
        let shape = try #require(info["shape"] as? [Int])
        let offsets = try #require(info["data_offsets"] as? [Int])
        let raw = Array(bytes[dataStart + offsets[0] ..< dataStart + offsets[1]])
        var values: [Double] = []
        switch dtype {
        case "I64":
            for i in stride(from: 0, to: raw.count, by: 8) {
                let bits = (0..<8).reduce(UInt64(0)) { $0 | UInt64(raw[i + $1]) << (8 * UInt64($1)) }
                values.append(Double(Int64(bitPattern: bits)))
            }
        case "F32":
            for i in stride(from: 0, to: raw.count, by: 4) {
                let bits = (0..<4).reduce(UInt32(0)) { $0 | UInt32(raw[i + $1]) << (8 * UInt32($1)) }
                values.append(Double(Float(bitPattern: bits)))
            }
        default:
            continue
        }
        #expect(values.count == shape.reduce(1, *), "\(name): \(values.count) values for shape \(shape)")
        tensors[name] = StoredTensor(shape: shape, values: values)
    }
    return tensors
}

/// One folder per test process for every temporary file of these tests, removed when the
/// process exits (Swift Testing has no per-test teardown for a free function to hook).
private let temporaryRoot: URL = {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("braid-data-tests-\(UUID().uuidString)")
    atexit { try? FileManager.default.removeItem(at: temporaryRoot) }
    return url
}()

/// A fresh temporary directory for one test's files (inside the process's `temporaryRoot`).
func temporaryDirectory() throws -> URL {
    let url = temporaryRoot.appendingPathComponent(UUID().uuidString)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Writes `text` (or raw `bytes`) to `name` in a temporary directory and returns its URL.
func writeTemporary(_ name: String, bytes: [UInt8]) throws -> URL {
    let url = try temporaryDirectory().appendingPathComponent(name)
    try Foundation.Data(bytes).write(to: url)
    return url
}

func writeTemporary(_ name: String, _ text: String) throws -> URL {
    try writeTemporary(name, bytes: Array(text.utf8))
}

// The golden fixtures of the PyTorch reference (Tests/Fixtures, the layout of
// reference/fixtures): where they are and how to load their tensors.
import Checkpoint
import Foundation

/// Locates and loads the files under Tests/Fixtures.
public enum Fixtures {
    /// Tests/Fixtures, found relative to this source file.
    public static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // TestSupport
        .deletingLastPathComponent()  // Tests
        .appendingPathComponent("Fixtures", isDirectory: true)

    /// The model fixtures: each folder holds model.json, batch.csv, weights.safetensors and
    /// expected.safetensors.
    public static let modelFixtures = ["early_lowrank", "late_fullrank", "multi_exclusive", "empty_sequences", "append_fusion"]

    /// Tests/Fixtures/<relativePath>.
    public static func url(_ relativePath: String) -> URL {
        directory.appendingPathComponent(relativePath)
    }

    /// The bytes of Tests/Fixtures/<relativePath>.
    public static func data(_ relativePath: String) throws -> Data {
        try Data(contentsOf: url(relativePath))
    }

    /// Tests/Fixtures/<fixture>/<file> parsed as safetensors.
    public static func safeTensors(_ fixture: String, _ file: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(contentsOf: url(fixture + "/" + file))
    }

    /// Every F32 tensor of Tests/Fixtures/<fixture>/<file> by name.
    public static func floatTensors(_ fixture: String, _ file: String) throws -> [String: (shape: [Int], floats: [Float])] {
        let tensors = try safeTensors(fixture, file)
        var result: [String: (shape: [Int], floats: [Float])] = [:]
        for name in tensors.names {
            let tensor = try tensors.tensor(name)
            if tensor.dtype == .float32 { result[name] = (tensor.shape, try tensor.floats()) }
        }
        return result
    }

    /// Every I64 tensor of Tests/Fixtures/<fixture>/<file> by name (the encoded inputs and row indices).
    public static func intTensors(_ fixture: String, _ file: String) throws -> [String: (shape: [Int], values: [Int64])] {
        let tensors = try safeTensors(fixture, file)
        var result: [String: (shape: [Int], values: [Int64])] = [:]
        for name in tensors.names {
            let tensor = try tensors.tensor(name)
            if tensor.dtype == .int64 { result[name] = (tensor.shape, try tensor.int64s()) }
        }
        return result
    }
}

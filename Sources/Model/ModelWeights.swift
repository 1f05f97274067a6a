import Checkpoint
import Foundation
import NN
import Schema

extension ParameterStore {
    /// Copies every parameter of `layout` from a safetensors file, checking that the
    /// file holds exactly these names with these shapes.
    public func load(from file: SafeTensorsFile, layout: [(name: String, shape: [Int])]) throws {
        let expected = Set(layout.map(\.name)), found = Set(file.names)
        if expected != found {
            let missing = expected.subtracting(found).sorted(), extra = found.subtracting(expected).sorted()
            throw CheckpointError("\(file.source): weights do not match model.json: "
                + (missing.isEmpty ? "" : "missing \(missing.prefix(8))\(missing.count > 8 ? " and \(missing.count - 8) more" : "") ")
                + (extra.isEmpty ? "" : "unexpected \(extra.prefix(8))\(extra.count > 8 ? " and \(extra.count - 8) more" : "")")
                + "; expected the tensors of SPEC 2.9 for this config")
        }
        for (name, shape) in layout {
            let t = try file.tensor(name)
            guard t.shape == shape else {
                throw CheckpointError("\(file.source): tensor \(name) has shape \(t.shape); expected \(shape) from model.json")
            }
            let dst = tensor(named: name)!
            try t.copyFloats(into: UnsafeMutableBufferPointer(start: dst.data, count: dst.count))
        }
    }

    /// The safetensors bytes of every parameter (SPEC 2.9 names).
    public func safetensorsData() throws -> Data {
        try encodeSafeTensors(allNames.map { name in
            let t = tensor(named: name)!
            return SafeTensorSource(name: name, shape: t.shape, floatsAt: UnsafeBufferPointer(start: t.data, count: t.count))
        })
    }
}

extension BraidModel {
    /// Loads a model directory (SPEC 3): model.json and weights.safetensors.
    public static func load(directory url: URL) throws -> BraidModel {
        let (json, weights) = try readModelDirectory(at: url)
        let config = try ModelConfig(jsonData: json)
        let layout = parameterLayout(config)
        let store = ParameterStore(layout)
        try store.load(from: weights, layout: layout)
        return BraidModel(config: config, parameters: store)
    }

    /// Writes this model as a new model directory (atomically, never replacing one; SPEC 3).
    public func save(directory url: URL, config: ModelConfig? = nil) throws {
        try writeModelDirectory(at: url, modelJSON: (config ?? self.config).jsonData(), weights: parameters.safetensorsData())
    }
}

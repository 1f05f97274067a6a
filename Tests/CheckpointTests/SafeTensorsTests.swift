import Foundation
import Testing
@testable import Checkpoint
import TestSupport

/// Tensor counts of the reference fixtures (weights, expected), read from their headers with Python.
private let fixtureTensorCounts: [String: (weights: Int, expected: Int)] = [
    "early_lowrank": (81, 124), "late_fullrank": (70, 112), "multi_exclusive": (89, 135),
    "empty_sequences": (78, 120), "append_fusion": (83, 127),
]

@Test(arguments: Fixtures.modelFixtures)
func readsEveryFixtureFile(fixture: String) throws {
    let weights = try Fixtures.safeTensors(fixture, "weights.safetensors")
    let expected = try Fixtures.safeTensors(fixture, "expected.safetensors")
    let counts = try #require(fixtureTensorCounts[fixture])
    #expect(weights.names.count == counts.weights)
    #expect(expected.names.count == counts.expected)
    #expect(weights["embeddings.item.weight"]?.shape == [64, 4])
    #expect(weights["embeddings.item.weight"]?.dtype == .float32)
    let surface = try expected.tensor("in.surface")
    #expect(surface.dtype == .int64 && surface.shape == [24])
    #expect(try expected.tensor("loss").shape == [1])
    // Every tensor converts at its own dtype.
    for name in weights.names { #expect(try weights.tensor(name).floats().count == weights[name]!.elementCount) }
    for name in expected.names {
        let tensor = try expected.tensor(name)
        let count = tensor.dtype == .int64 ? try tensor.int64s().count : try tensor.floats().count
        #expect(count == tensor.shape.reduce(1, *), "\(fixture) \(name)")
    }
}

@Test func decodesKnownValues() throws {
    let weights = try Fixtures.safeTensors("early_lowrank", "weights.safetensors")
    let item = try weights.tensor("embeddings.item.weight").floats()
    // struct.unpack('<3f', ...) of the file's bytes.
    #expect(Array(item.prefix(3)) == [0.26671692728996277, 0.054317064583301544, -0.2910938858985901])
    let expected = try Fixtures.safeTensors("early_lowrank", "expected.safetensors")
    #expect(try expected.tensor("in.surface").int64s() == (0..<24).map { Int64($0 % 3) })
    #expect(try expected.tensor("loss").floats() == [0.7036135196685791])
    let typed = try Fixtures.intTensors("early_lowrank", "expected.safetensors")
    #expect(typed["in.surface"]?.shape == [24])
    #expect(try Fixtures.floatTensors("early_lowrank", "weights.safetensors").count == 81)
}

/// The sources that rewrite a parsed file (F32 and I64 only, as in the fixtures).
private func sources(of file: SafeTensorsFile) throws -> [SafeTensorSource] {
    try file.names.map { name in
        let tensor = try file.tensor(name)
        switch tensor.dtype {
        case .float32: return SafeTensorSource(name: name, shape: tensor.shape, floats: try tensor.floats())
        case .int64: return SafeTensorSource(name: name, shape: tensor.shape, int64s: try tensor.int64s())
        default: throw CheckpointError("fixture tensor \(name) has dtype \(tensor.dtype)")
        }
    }
}

/// Files written by the Rust safetensors library (through safetensors.torch) come back byte for byte.
@Test(arguments: Fixtures.modelFixtures)
func rewritingAFixtureReproducesItsBytes(fixture: String) throws {
    for file in ["weights.safetensors", "expected.safetensors"] {
        let original = try Fixtures.data(fixture + "/" + file)
        let parsed = try SafeTensorsFile(data: original)
        // Shuffled input order: the writer orders by element size, then name.
        let rewritten = try encodeSafeTensors(try sources(of: parsed).reversed())
        #expect(rewritten == original, "\(fixture)/\(file)")
    }
}

@Test func roundTripKeepsShapesValuesAndMetadata() throws {
    let block: [Float] = (0..<10).map { Float($0) * 0.5 - 1 }
    let data = try block.withUnsafeBufferPointer { pointer in
        try encodeSafeTensors([
            SafeTensorSource(name: "b.slice", shape: [2, 3], floatsAt: UnsafeBufferPointer(rebasing: pointer[2..<8])),
            SafeTensorSource(name: "a.scalar", shape: [], floats: [Float.pi]),
            SafeTensorSource(name: "c.empty", shape: [0, 4], floats: []),
            SafeTensorSource(name: "d.ids", shape: [3], int64s: [-1, 0, Int64.max]),
            SafeTensorSource(name: "quote\"name", shape: [1], floats: [-0.0]),
        ], metadata: ["format": "pt", "note": "tab\there"])
    }
    let headerLength = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    #expect(headerLength % 8 == 0)
    let header = String(decoding: data[8..<(8 + headerLength)], as: UTF8.self)
    #expect(header.hasPrefix(#"{"__metadata__":{"format":"pt","note":"tab\there"},"d.ids":{"dtype":"I64","shape":[3],"data_offsets":[0,24]},"a.scalar""#))
    let file = try SafeTensorsFile(data: data, source: "round trip")
    #expect(file.names == ["d.ids", "a.scalar", "b.slice", "c.empty", "quote\"name"])
    #expect(file.metadata == ["format": "pt", "note": "tab\there"])
    #expect(try file.tensor("b.slice").floats() == Array(block[2..<8]))
    #expect(try file.tensor("b.slice").shape == [2, 3])
    #expect(try file.tensor("a.scalar").floats() == [Float.pi])
    #expect(try file.tensor("a.scalar").shape == [])
    #expect(try file.tensor("c.empty").floats() == [])
    #expect(try file.tensor("d.ids").int64s() == [-1, 0, Int64.max])
    #expect(try file.tensor("quote\"name").floats()[0].sign == .minus)
    var destination = [Float](repeating: 0, count: 6)
    try destination.withUnsafeMutableBufferPointer { try file.tensor("b.slice").copyFloats(into: $0) }
    #expect(destination == Array(block[2..<8]))
    // Writing what was read gives the same bytes again.
    #expect(try encodeSafeTensors(try sources(of: file), metadata: file.metadata) == data)
}

@Test func readsI32AndF64Tensors() throws {
    // Hand-built file: {"f":F64 [2], "i":I32 [2]} laid out f then i.
    var header = Array(#"{"f":{"dtype":"F64","shape":[2],"data_offsets":[0,16]},"i":{"dtype":"I32","shape":[2],"data_offsets":[16,24]}}"#.utf8)
    header += Array(repeating: UInt8(ascii: " "), count: (8 - header.count % 8) % 8)
    var data = Data()
    withUnsafeBytes(of: UInt64(header.count).littleEndian) { data.append(contentsOf: $0) }
    data.append(contentsOf: header)
    for value in [1.5, -2.25] { withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
    for value: Int32 in [7, -9] { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
    let file = try SafeTensorsFile(data: data)
    #expect(try file.tensor("f").doubles() == [1.5, -2.25])
    #expect(try file.tensor("i").int32s() == [7, -9])
}

// MARK: - Malformed files

/// A file with `header` as its JSON header (unpadded) and `dataSize` zero bytes of data.
private func file(header: String, dataSize: Int, lengthField: UInt64? = nil) -> Data {
    let bytes = Array(header.utf8)
    var data = Data()
    withUnsafeBytes(of: (lengthField ?? UInt64(bytes.count)).littleEndian) { data.append(contentsOf: $0) }
    data.append(contentsOf: bytes)
    data.append(Data(count: dataSize))
    return data
}

private func readError(_ data: Data) -> String {
    do {
        _ = try SafeTensorsFile(data: data, source: "bad.safetensors")
        return "no error"
    } catch {
        return "\(error)"
    }
}

@Test func malformedFilesAreRefusedWithTheirReason() {
    let tensor = #""t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#
    let cases: [(Data, String)] = [
        (Data([1, 0, 0]), "bad.safetensors: the file holds 3 bytes; expected at least 8"),
        (file(header: "{\(tensor)}", dataSize: 8, lengthField: 1_000),
         "bad.safetensors: the header length field reads 1000 bytes; expected at most"),
        (file(header: "[\(tensor)]", dataSize: 8), "does not start with \"{\""),
        (file(header: "{\(tensor)", dataSize: 8), "bad.safetensors: the header is not the expected JSON"),
        (file(header: #"{"t":{"dtype":"F32","shape":[2]}}"#, dataSize: 8), "missing key t.data_offsets; expected [begin, end]"),
        (file(header: #"{"t":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}"#, dataSize: 8),
         "the header is not the expected JSON ({name: {\"dtype\", \"shape\", \"data_offsets\"}}): t.shape[0] = '2'; expected an integer; rewrite"),
        (file(header: #"{"t":{"dtype":"Q8","shape":[2],"data_offsets":[0,2]}}"#, dataSize: 2),
         "tensor \"t\" has dtype \"Q8\"; expected one of BOOL"),
        (file(header: #"{"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, dataSize: 8),
         "tensor \"t\" has shape [-2]; expected non-negative dimensions"),
        (file(header: #"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8,9]}}"#, dataSize: 8),
         "expected [begin, end]"),
        (file(header: #"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,12]}}"#, dataSize: 8),
         "tensor \"t\" has data_offsets [0, 12]; expected 0 <= begin <= end <= 8"),
        (file(header: #"{"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, dataSize: 8),
         "tensor \"t\" (F32, shape [3]) needs 12 bytes; found data_offsets [0, 8] spanning 8"),
        (file(header: #"{"t":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, dataSize: 12),
         "tensor \"t\" data starts at offset 4; expected 0 (tensors must cover the data section contiguously, without gaps)"),
        (file(header: #"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"u":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, dataSize: 8),
         "data starts at offset 4; expected 8 (tensors must cover the data section contiguously, without overlaps)"),
        (file(header: "{\(tensor)}", dataSize: 12),
         "the tensors cover 8 bytes of data; found 12 bytes after the header"),
    ]
    for (data, message) in cases {
        let found = readError(data)
        #expect(found.contains(message), "expected \(message), found \(found)")
    }
}

@Test func wrongAccessorsAndMissingNamesAreRefused() throws {
    let file = try Fixtures.safeTensors("early_lowrank", "expected.safetensors")
    let error = #expect(throws: CheckpointError.self) { try file.tensor("in.surface").floats() }
    #expect(error?.message.hasSuffix("early_lowrank/expected.safetensors: tensor \"in.surface\" has dtype I64; expected F32 (SPEC 2.9: weights are float32; SPEC 3)") == true)
    let missing = #expect(throws: CheckpointError.self) { try file.tensor("no.such") }
    #expect(missing?.message.contains("no tensor \"no.such\"; the file holds 124 tensors (in.cat.ad_id,") == true)
    var tooSmall = [Float](repeating: 0, count: 3)
    let size = #expect(throws: CheckpointError.self) {
        try tooSmall.withUnsafeMutableBufferPointer { try file.tensor("loss").copyFloats(into: $0) }
    }
    #expect(size?.message.contains("tensor \"loss\" has shape [1] (1 floats); expected 3 floats") == true)
    let unreadable = #expect(throws: CheckpointError.self) {
        try SafeTensorsFile(contentsOf: URL(fileURLWithPath: "/nonexistent/w.safetensors"))
    }
    #expect(unreadable?.message.hasPrefix("/nonexistent/w.safetensors: cannot read the safetensors file") == true)
}

@Test func writerRefusesInconsistentTensors() {
    let duplicate = #expect(throws: CheckpointError.self) {
        try encodeSafeTensors([SafeTensorSource(name: "x", shape: [1], floats: [1]),
                               SafeTensorSource(name: "x", shape: [1], floats: [2])])
    }
    #expect(duplicate?.message == "safetensors writer: tensor \"x\" is given twice; expected unique names")
    let shape = #expect(throws: CheckpointError.self) {
        try encodeSafeTensors([SafeTensorSource(name: "x", shape: [2, 2], floats: [1, 2, 3])])
    }
    #expect(shape?.message == "safetensors writer: tensor \"x\" has shape [2, 2] (4 elements); found 3 elements; pass a matching shape")
    #expect(throws: CheckpointError.self) {
        try encodeSafeTensors([SafeTensorSource(name: "__metadata__", shape: [1], floats: [1])])
    }
}

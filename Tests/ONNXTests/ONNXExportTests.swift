import Data
import Foundation
import Inference
import Model
import ONNX
import Schema
import SwiftProtobuf
import TestSupport
import Testing
import Training

/// A fixture model (Tests/Fixtures/<name>) with a non-trivial calibration pair per
/// (surface, task), so the graph's Platt scaling is exercised (the fixtures have none).
func calibratedFixture(_ name: String) throws -> BraidModel {
    let model = try BraidModel.load(directory: Fixtures.url(name))
    var config = model.config
    for (k, s) in config.schema.surfaces.enumerated() {
        for (t, task) in (config.schema.tasks[s] ?? []).enumerated() {
            config.calibration[s, default: [:]][task] = PlattPair(a: 0.75 + 0.1 * Double(k), b: -0.3 + 0.2 * Double(t))
        }
    }
    return BraidModel(config: config, parameters: model.parameters)
}

/// The ops a Braid graph may use (all in the default domain at opset 17).
let allowedOps: Set<String> = [
    "Add", "Cast", "Concat", "Div", "Equal", "Expand", "Gather", "Gemm", "Greater", "Identity", "IsNaN",
    "LayerNormalization", "Log", "MatMul", "Max", "Mul", "Not", "Pow", "ReduceMax", "ReduceSum", "Relu",
    "Reshape", "Shape", "Sigmoid", "Slice", "Softmax", "Split", "Squeeze", "Sub", "Tanh", "Transpose",
    "Unsqueeze", "Where",
]

@Suite struct ONNXGraphStructureTests {
    @Test(arguments: Fixtures.modelFixtures)
    func graphIsWellFormed(fixture: String) throws {
        let model = try calibratedFixture(fixture)
        let schema = model.config.schema
        for surface in schema.surfaces {
            let proto = try onnxModel(model, surface: surface)
            // round trip through the protobuf bytes
            let decoded = try Onnx_ModelProto(serializedBytes: try proto.serializedData())
            #expect(decoded == proto)
            #expect(decoded.irVersion == 8)
            #expect(decoded.opsetImport.map(\.version) == [17] && decoded.opsetImport[0].domain == "")
            let graph = decoded.graph
            // topological order: every node input is a graph input, an initializer or an earlier output
            var defined = Set(graph.input.map(\.name)).union(graph.initializer.map(\.name))
            for node in graph.node {
                #expect(allowedOps.contains(node.opType), "\(fixture)/\(surface): op \(node.opType) outside the allowed opset-17 set")
                #expect(node.domain == "")
                for input in node.input where !input.isEmpty {
                    #expect(defined.contains(input), "\(fixture)/\(surface): \(node.name) reads \(input) before it is defined")
                }
                for output in node.output { #expect(!defined.contains(output), "\(output) defined twice"); defined.insert(output) }
            }
            for output in graph.output { #expect(defined.contains(output.name)) }
            // inputs: exactly the contract, features of other surfaces absent
            let contract = try ONNXInputContract(config: model.config, surface: surface)
            #expect(graph.input.map(\.name) == contract.inputs.map(\.name))
            for (i, f) in schema.categorical.enumerated() {
                #expect(graph.input.contains { $0.name == f.name } == schema.exists(categorical: i, on: surface))
            }
            for (j, f) in schema.dense.enumerated() {
                let input = graph.input.first { $0.name == f.name }
                #expect((input != nil) == schema.exists(dense: j, on: surface))
                if let input { #expect(input.type.tensorType.elemType == 11) }  // float64 raw values
            }
            if let seq = schema.sequence {
                let items = try #require(graph.input.first { $0.name == seq.items })
                #expect(items.type.tensorType.elemType == 7)
                #expect(items.type.tensorType.shape.dim.map(\.dimParam) == ["users", ""])
                #expect(items.type.tensorType.shape.dim[1].dimValue == Int64(seq.maxLength))
                #expect(graph.input.last?.name == "user_index")
            }
            // outputs: p_<task> [candidates] float per task of the surface
            #expect(graph.output.map(\.name) == (schema.tasks[surface] ?? []).map { "p_\($0)" })
            for output in graph.output {
                #expect(output.type.tensorType.elemType == 1)
                #expect(output.type.tensorType.shape.dim.map(\.dimParam) == ["candidates"])
            }
            // initializers: SPEC 2.9 names of this surface only (no other surface's gate or tower)
            let names = Set(graph.initializer.map(\.name))
            for other in schema.surfaces where other != surface {
                #expect(!names.contains { $0.hasPrefix("towers.\(other).") || $0.hasPrefix("gates.\(other).") })
            }
            #expect(names.contains("gates.\(surface).weight"))
            for name in names where !name.hasPrefix("const:") {
                let base = name.replacingOccurrences(of: #"\.row[0-9]+$"#, with: "", options: .regularExpression)
                #expect(model.parameters.tensor(named: base) != nil, "initializer \(name) is not a model parameter")
            }
            // features absent on the surface read row 0 only
            for (i, f) in schema.categorical.enumerated() where !schema.exists(categorical: i, on: surface) {
                #expect(names.contains("embeddings.\(f.table).weight.row0"))
            }
        }
    }

    @Test func unknownSurfaceIsRefused() throws {
        let model = try calibratedFixture("late_fullrank")
        let (config, parameters) = try exportSurface(model, surface: "search")
        let export = BraidModel(config: config, parameters: parameters)
        #expect(throws: ONNXExportError.self) { try onnxModel(export, surface: "home_feed") }
        do {
            _ = try onnxModel(export, surface: "nowhere")
        } catch let error as ONNXExportError {
            #expect(error.message.contains("'nowhere' is not a surface this model serves; expected one of ['search']"))
        }
    }

    /// A surface export (SPEC 3) gives the same graph as the unified model for its surface.
    @Test func exportAndUnifiedGiveTheSameGraph() throws {
        let model = try calibratedFixture("multi_exclusive")
        let (config, parameters) = try exportSurface(model, surface: "related_pins")
        let fromExport = try onnxModel(BraidModel(config: config, parameters: parameters), surface: "related_pins")
        let fromUnified = try onnxModel(model, surface: "related_pins")
        #expect(fromExport.graph == fromUnified.graph)
    }
}

/// Runs `scripts/check_onnx.py --onnx F --test-data DIR` (ONNX Runtime, installed by
/// scripts/test) and returns its exit status and output.
func checkWithONNXRuntime(onnx: URL, testData: URL) throws -> (status: Int32, output: String) {
    let repo = Fixtures.directory.deletingLastPathComponent().deletingLastPathComponent()
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", repo.appendingPathComponent("scripts/check_onnx.py").path,
                         "--onnx", onnx.path, "--test-data", testData.path, "--tolerance", "1e-5"]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, output)
}

/// The rows `rows` of a [N, ...] tensor with 8-byte elements (int64, float64).
func selectRows(_ t: Onnx_TensorProto, _ rows: [Int]) -> Onnx_TensorProto {
    var out = t
    let width = Int(t.dims.dropFirst().reduce(1, *)) * 8
    var data = Foundation.Data(capacity: rows.count * width)
    for r in rows { data.append(t.rawData[(r * width)..<((r + 1) * width)]) }
    out.dims[0] = Int64(rows.count)
    out.rawData = data
    return out
}

@Suite(.serialized) struct ONNXRuntimeParityTests {
    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("braid-onnx-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Every row its own user: ONNX Runtime's probabilities equal Braid's (predict) to 1e-5.
    @Test(arguments: Fixtures.modelFixtures)
    func rowsMatchBraid(fixture: String) throws {
        let model = try calibratedFixture(fixture)
        let schema = model.config.schema, T = schema.allTasks.count
        let work = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        for surface in schema.surfaces {
            let encoded = try ONNXEncodedRows(csv: Fixtures.url("\(fixture)/batch.csv"), config: model.config, surface: surface)
            try #require(encoded.rows.count >= 2, "\(fixture) has \(encoded.rows.count) rows of \(surface)")
            let p = predictLogits(model, rows: encoded.rows)
                .probabilities(surface: encoded.rows.surface, schema: schema, calibration: model.config.calibration)
            let outputs = (schema.tasks[surface] ?? []).map { task in
                let t = schema.allTasks.firstIndex(of: task)!
                return tensorProto("p_\(task)", dims: [encoded.rows.count], floats: (0..<encoded.rows.count).map { Float(p[$0 * T + t]) })
            }
            let onnx = work.appendingPathComponent("\(surface).onnx")
            try onnxModel(model, surface: surface).serializedData().write(to: onnx)
            let data = work.appendingPathComponent("\(surface).data")
            try writeTestDataSet(data, inputs: encoded.inputs, outputs: outputs, fileRows: encoded.fileRows)
            let (status, output) = try checkWithONNXRuntime(onnx: onnx, testData: data)
            print("\(fixture)/\(surface):\n\(output)")
            #expect(status == 0, "\(fixture)/\(surface): check_onnx.py exited \(status):\n\(output)")
        }
    }

    /// Request-level broadcasting through `user_index`: U users x N candidates each scored
    /// by ONNX Runtime equal Braid's InferenceEngine on the same requests.
    @Test(arguments: Fixtures.modelFixtures)
    func usersSharedByCandidatesMatchBraid(fixture: String) throws {
        let model = try calibratedFixture(fixture)
        let schema = model.config.schema
        let engine = InferenceEngine(model: model, maxUniqueUsers: 64)
        let work = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        for surface in schema.surfaces {
            let encoded = try ONNXEncodedRows(csv: Fixtures.url("\(fixture)/batch.csv"), config: model.config, surface: surface)
            let N = encoded.rows.count
            // request u: user row u, candidates: every row but u's successor (so counts differ from N)
            let requests = (0..<N).map { u in (user: u, candidates: (0..<N).filter { $0 != (u + 1) % N || N == 1 }) }
            let scored = try engine.score(EncodedRequests(rows: encoded.rows, requests: requests))
            let contract = try ONNXInputContract(config: model.config, surface: surface)
            let candidateRows = requests.flatMap(\.candidates)
            let userOfCandidate = requests.enumerated().flatMap { q, r in r.candidates.map { _ in q } }
            var inputs: [Onnx_TensorProto] = []
            for (input, tensor) in zip(contract.inputs, encoded.inputs) {
                switch (input.name, input.side) {
                case (ONNXInputContract.userIndex, _):
                    inputs.append(tensorProto(input.name, dims: [candidateRows.count], int64: userOfCandidate.map(Int64.init)))
                case (_, .user): inputs.append(tensor)                                          // [U = N]
                case (_, .context): inputs.append(selectRows(tensor, requests.flatMap { r in r.candidates.map { _ in r.user } }))
                case (_, .candidate): inputs.append(selectRows(tensor, candidateRows))
                }
            }
            let K = scored.tasks.count
            let outputs = scored.tasks.enumerated().map { k, task in
                tensorProto("p_\(task)", dims: [candidateRows.count], floats: (0..<candidateRows.count).map { Float(scored.probabilities[$0 * K + k]) })
            }
            let onnx = work.appendingPathComponent("\(surface).onnx")
            try onnxModel(model, surface: surface).serializedData().write(to: onnx)
            let data = work.appendingPathComponent("\(surface).requests")
            try writeTestDataSet(data, inputs: inputs, outputs: outputs, fileRows: candidateRows)
            let (status, output) = try checkWithONNXRuntime(onnx: onnx, testData: data)
            #expect(status == 0, "\(fixture)/\(surface): check_onnx.py exited \(status):\n\(output)")
        }
    }
}

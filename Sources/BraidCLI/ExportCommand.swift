import ArgumentParser
import Checkpoint
import Data
import Foundation
import Model
import ONNX
import Training

/// `braid export --model DIR --surface S --out DIR` (SPEC 3, 6): a model directory that
/// serves one surface with only the tensors that surface uses; with `--format onnx`, the
/// surface's ONNX graph (`onnxModel`, docs/ONNX.md) as one .onnx file, and optionally an
/// ONNX test data set of a CSV's rows of that surface with Braid's probabilities.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a surface export: a model directory (or an ONNX graph) that serves one surface.",
        discussion: """
            The export's model.json has surfaces_included [S] and only S's calibration; its \
            weights hold S's gate and tower tree, the shared modules, the tables of the \
            features that exist on S, and row 0 only of the tables of features absent on S. \
            It scores S's rows exactly as the unified model does. OUT is written once \
            (temporary sibling, fsync, rename) and never replaces an existing path.

            --format onnx writes OUT as one ONNX file (opset 17) instead: named inputs for the \
            encoded request (bucket ids, raw dense values, sequence ids and actions, user_index), \
            outputs p_<task>, the calibrated probabilities; docs/ONNX.md is the input contract. \
            --test-data CSV also writes the CSV's rows of S as an ONNX test data set \
            (input_<i>.pb, output_<i>.pb holding Braid's probabilities, braid_rows.pb) to \
            --test-data-dir (default: test_data_set_0 beside OUT); scripts/check_onnx.py \
            scores it with ONNX Runtime.

            Example: braid export --model run/model --surface search --out run/search
            Example: braid export --model run/model --surface search --format onnx --out run/search.onnx
            """)

    @Option(name: .long, help: ArgumentHelp("The unified model directory.", valueName: "dir"))
    var model: String

    @Option(name: .long, help: ArgumentHelp("The surface to export (one of the model's surfaces_included).", valueName: "s"))
    var surface: String

    @Option(name: .long, help: ArgumentHelp("The export's model directory, or .onnx file with --format onnx (must not exist).", valueName: "path"))
    var out: String

    @Option(name: .long, help: ArgumentHelp("model (a model directory) or onnx (one ONNX graph file).", valueName: "format"))
    var format = "model"

    @Option(name: .long, help: ArgumentHelp("With --format onnx: CSV rows whose rows of S are written as an ONNX test data set.", valueName: "csv"))
    var testData: String?

    @Option(name: .long, help: ArgumentHelp("Where --test-data goes (must not exist; default: test_data_set_0 beside OUT).", valueName: "dir"))
    var testDataDir: String?

    func validate() throws {
        guard format == "model" || format == "onnx" else {
            throw ValidationError("--format: unknown format '\(format)'; expected model or onnx")
        }
        if format == "model" && (testData != nil || testDataDir != nil) {
            throw ValidationError("--test-data and --test-data-dir go with --format onnx")
        }
        if testDataDir != nil && testData == nil { throw ValidationError("--test-data-dir needs --test-data CSV") }
    }

    func run() throws {
        if format == "onnx" { return try runONNX() }
        let source = URL(fileURLWithPath: model)
        let unified = try BraidModel.load(directory: source)
        let (config, parameters) = try exportSurface(unified, surface: surface)
        let target = URL(fileURLWithPath: out)
        try BraidModel(config: config, parameters: parameters).save(directory: target)
        let before = (bytes: directoryBytes(source), parameters: parameterCount(parameterLayout(unified.config)))
        let after = (bytes: directoryBytes(target), parameters: parameterCount(parameterLayout(config)))
        func share(_ a: Int, _ b: Int) -> String { b == 0 ? "-" : String(format: "%.1f%%", 100 * Double(a) / Double(b)) }
        print("""
            exported surface \(surface) to \(out)
              unified model: \(grouped(before.parameters)) parameters, \(grouped(before.bytes)) bytes (\(model))
              export:        \(grouped(after.parameters)) parameters, \(grouped(after.bytes)) bytes \
            (\(share(after.parameters, before.parameters)) of the parameters, \(share(after.bytes, before.bytes)) of the bytes)
            """)
    }

    /// `--format onnx`: the graph file and, with --test-data, its test data set.
    private func runONNX() throws {
        let loaded = try BraidModel.load(directory: URL(fileURLWithPath: model))
        let graph = try onnxModel(loaded, surface: surface)
        let bytes = try graph.serializedData()
        let target = URL(fileURLWithPath: out)
        try writeNewFile(at: target, bytes: bytes, what: "an export is written once")
        let nodes = graph.graph.node.count, inputs = graph.graph.input.map(\.name)
        print("""
            exported surface \(surface) as ONNX (opset \(onnxOpset)) to \(out): \(grouped(bytes.count)) bytes, \(grouped(nodes)) nodes
              inputs:  \(inputs.joined(separator: ", "))
              outputs: \(graph.graph.output.map(\.name).joined(separator: ", "))
            """)
        guard let testData else { return }
        let encoded = try ONNXEncodedRows(csv: URL(fileURLWithPath: testData), config: loaded.config, surface: surface)
        // Braid's probabilities of those rows, as `braid predict` computes them
        let config = loaded.config, schema = config.schema
        let probabilities = predictLogits(loaded, rows: encoded.rows)
            .probabilities(surface: encoded.rows.surface, schema: schema, calibration: config.calibration)
        let T = schema.allTasks.count, N = encoded.rows.count
        let outputs = (schema.tasks[surface] ?? []).map { task -> Onnx_TensorProto in
            let t = schema.allTasks.firstIndex(of: task)!
            return tensorProto("p_\(task)", dims: [N], floats: (0..<N).map { Float(probabilities[$0 * T + t]) })
        }
        let directory = testDataDir.map { URL(fileURLWithPath: $0) }
            ?? target.deletingLastPathComponent().appendingPathComponent("test_data_set_0")
        try writeTestDataSet(directory, inputs: encoded.inputs, outputs: outputs, fileRows: encoded.fileRows)
        print("  test data: \(grouped(N)) rows of \(surface) from \(testData) in \(directory.path)")
    }

    /// Bytes of model.json plus weights.safetensors of a model directory.
    private func directoryBytes(_ url: URL) -> Int {
        [ModelDirectoryFile.config, ModelDirectoryFile.weights].reduce(0) { total, name in
            let attributes = try? FileManager.default.attributesOfItem(atPath: url.appendingPathComponent(name).path)
            return total + ((attributes?[.size] as? NSNumber)?.intValue ?? 0)
        }
    }
}

/// 1234567 -> "1,234,567".
func grouped(_ n: Int) -> String {
    let digits = String(n.magnitude)
    var out = ""
    for (i, c) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return n < 0 ? "-" + out : out
}

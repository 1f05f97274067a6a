import Checkpoint
import Data
import Foundation
import Schema
import SwiftProtobuf

/// The rows of one surface of a CSV file (SPEC 1.2) encoded as the inputs of that surface's
/// ONNX graph (`ONNXInputContract`), every row its own user (users = candidates = N,
/// `user_index` = 0 ..< N): the encoding of SPEC 1.3 (buckets), raw dense values (NaN =
/// missing), sequences truncated to L and 0-padded, multi-valued ids padded with 0 to the
/// longest bag (at least 1).
public struct ONNXEncodedRows {
    /// The encoded rows (labels not read), in file order.
    public var rows: EncodedRows
    /// The 0-based data row of each encoded row in the whole file (`braid predict`'s `row`).
    public var fileRows: [Int]
    /// One tensor per graph input, in contract order, named as the input.
    public var inputs: [Onnx_TensorProto]

    public init(csv url: URL, config: ModelConfig, surface: String) throws {
        let contract = try ONNXInputContract(config: config, surface: surface)
        let schema = config.schema
        rows = try EncodedRows(file: url, config: config, options: EncodeOptions(labels: false, onlySurfaces: [surface]))
        // raw dense values and file rows: a second pass over the records (EncodedRows keeps only transformed values)
        let csv = try CSVFile(contentsOf: url)
        let surfaceColumn = csv.columnIndex["surface"]!
        let denseColumns = schema.dense.enumerated().filter { schema.exists(dense: $0.offset, on: surface) }
            .map { (index: $0.offset, column: csv.columnIndex[$0.element.name]!) }
        var raw = [[Double]](repeating: [], count: schema.dense.count)
        var fileRows: [Int] = []
        var record = 0
        while let line = try csv.nextRecord() {
            defer { record += 1 }
            guard csv.string(surfaceColumn) == surface else { continue }
            fileRows.append(record)
            for (j, column) in denseColumns {
                let text = csv.string(column)
                do {
                    raw[j].append(text.isEmpty ? .nan : try parseDenseNumber(text))
                } catch let error as DenseNumberError {
                    throw InputError(file: csv.path, line: line, message: "column \(schema.dense[j].name): \(error)")
                }
            }
        }
        precondition(fileRows.count == rows.count, "onnx inputs: \(fileRows.count) records of \(surface), \(rows.count) encoded rows")
        self.fileRows = fileRows
        let N = rows.count
        let batch = rows.batch()
        var inputs: [Onnx_TensorProto] = []
        for input in contract.inputs {
            if input.name == ONNXInputContract.userIndex {
                inputs.append(tensorProto(input.name, dims: [N], int64: (0..<N).map(Int64.init)))
            } else if let i = schema.categorical.firstIndex(where: { $0.name == input.name }) {
                let ids = batch.categorical[i]
                if let offsets = ids.offsets {
                    let M = max(1, (0..<N).map { Int(offsets[$0 + 1] - offsets[$0]) }.max() ?? 1)
                    var padded = [Int64](repeating: 0, count: N * M)
                    for n in 0..<N {
                        for (k, id) in ids.ids[Int(offsets[n])..<Int(offsets[n + 1])].enumerated() { padded[n * M + k] = Int64(id) }
                    }
                    inputs.append(tensorProto(input.name, dims: [N, M], int64: padded))
                } else {
                    inputs.append(tensorProto(input.name, dims: [N], int64: ids.ids.map(Int64.init)))
                }
            } else if let j = schema.dense.firstIndex(where: { $0.name == input.name }) {
                inputs.append(tensorProto(input.name, dims: [N], doubles: raw[j]))
            } else if let seq = schema.sequence, input.name == seq.items || input.name == seq.actions {
                let values = input.name == seq.items ? batch.seqItems : batch.seqActions
                inputs.append(tensorProto(input.name, dims: [N, seq.maxLength], int64: values.map(Int64.init)))
            } else {
                preconditionFailure("onnx inputs: no encoding for input \(input.name)")
            }
        }
        self.inputs = inputs
    }
}

/// Writes an ONNX test data set (the layout of the ONNX model zoo and `onnx_test_runner`):
/// `input_<i>.pb` and `output_<i>.pb`, one serialized `TensorProto` each, plus
/// `braid_rows.pb` (int64: the file row of each candidate), as a new directory written
/// atomically (`writeNewDirectory`); an existing `directory` is never replaced.
public func writeTestDataSet(_ directory: URL, inputs: [Onnx_TensorProto], outputs: [Onnx_TensorProto], fileRows: [Int]) throws {
    var files: [(name: String, bytes: Foundation.Data)] = []
    for (i, t) in inputs.enumerated() { files.append(("input_\(i).pb", try t.serializedData())) }
    for (i, t) in outputs.enumerated() { files.append(("output_\(i).pb", try t.serializedData())) }
    files.append(("braid_rows.pb", try tensorProto("braid_rows", dims: [fileRows.count], int64: fileRows.map(Int64.init)).serializedData()))
    try writeNewDirectory(at: directory, files: files, what: "a test data set is written once")
}

/// A tensor with int64 values (raw little-endian data).
public func tensorProto(_ name: String, dims: [Int], int64 values: [Int64]) -> Onnx_TensorProto {
    var t = Onnx_TensorProto(name: name, dims: dims, type: .int64)
    t.rawData = values.withUnsafeBufferPointer { p in Foundation.Data(buffer: UnsafeBufferPointer(start: p.baseAddress, count: p.count)) }
    return t
}

/// A tensor with float64 values (raw little-endian data).
public func tensorProto(_ name: String, dims: [Int], doubles values: [Double]) -> Onnx_TensorProto {
    var t = Onnx_TensorProto(name: name, dims: dims, type: .double)
    t.rawData = values.withUnsafeBufferPointer { Foundation.Data(buffer: $0) }
    return t
}

/// A tensor with float32 values (raw little-endian data).
public func tensorProto(_ name: String, dims: [Int], floats values: [Float]) -> Onnx_TensorProto {
    var t = Onnx_TensorProto(name: name, dims: dims, type: .float)
    t.rawData = values.withUnsafeBufferPointer { littleEndianBytes($0) }
    return t
}

// SPEC 3: the standard safetensors layout, read and written byte for byte as the
// Rust `safetensors` library (and so PyTorch's `safetensors.torch`) does:
//
//   [8 bytes: N, little-endian UInt64]
//   [N bytes: JSON header {"__metadata__": {str: str}?, name: {"dtype", "shape", "data_offsets": [begin, end]}, ...},
//             padded with spaces to a multiple of 8]
//   [data: every tensor's raw little-endian row-major bytes, offsets relative to the data start]
//
// The writer orders tensors by element size (largest first), then by name, lays their
// data out contiguously in that order and lists the header in that order too, so
// reading a file the Rust library wrote and writing it again gives the same bytes.
import Foundation
import JSON

/// A problem reading or writing a checkpoint: a safetensors file or a model directory.
/// `message` says what was expected, what was found, where, and how to fix it.
public struct CheckpointError: Error, CustomStringConvertible, LocalizedError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}

/// The element types of the safetensors format, spelled as in its header.
public enum SafeTensorDType: String, CaseIterable, Sendable {
    case bool = "BOOL"
    case uint8 = "U8", int8 = "I8"
    case int16 = "I16", uint16 = "U16", float16 = "F16", bfloat16 = "BF16"
    case int32 = "I32", uint32 = "U32", float32 = "F32"
    case float64 = "F64", int64 = "I64", uint64 = "U64"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .bool, .uint8, .int8: return 1
        case .int16, .uint16, .float16, .bfloat16: return 2
        case .int32, .uint32, .float32: return 4
        case .float64, .int64, .uint64: return 8
        }
    }
}

/// One tensor of a safetensors file: its name, element type, shape (row-major) and the
/// byte range of its data inside the file's buffer (shared, not copied).
/// `dtype.size * shape.product == byteRange.count` always holds.
public struct SafeTensor: Sendable {
    public let name: String
    public let dtype: SafeTensorDType
    public let shape: [Int]
    /// Where the tensor's bytes sit in `storage` (absolute indices into that `Data`).
    public let byteRange: Range<Int>
    /// The whole file's bytes (shared by every tensor of the file).
    let storage: Data
    /// Names the file in error messages.
    let source: String

    /// The number of elements: the product of `shape` (1 for a scalar, shape []).
    public var elementCount: Int { byteRange.count / dtype.size }

    /// The elements of an F32 tensor, row-major.
    public func floats() throws -> [Float] {
        try require(.float32)
        return [Float](unsafeUninitializedCapacity: elementCount) { buffer, count in
            copyElements(into: UnsafeMutableRawBufferPointer(buffer))
            count = elementCount
        }
    }

    /// The elements of an F64 tensor, row-major.
    public func doubles() throws -> [Double] {
        try require(.float64)
        return [Double](unsafeUninitializedCapacity: elementCount) { buffer, count in
            copyElements(into: UnsafeMutableRawBufferPointer(buffer))
            count = elementCount
        }
    }

    /// The elements of an I64 tensor, row-major.
    public func int64s() throws -> [Int64] {
        try require(.int64)
        return [Int64](unsafeUninitializedCapacity: elementCount) { buffer, count in
            copyElements(into: UnsafeMutableRawBufferPointer(buffer))
            count = elementCount
        }
    }

    /// The elements of an I32 tensor, row-major.
    public func int32s() throws -> [Int32] {
        try require(.int32)
        return [Int32](unsafeUninitializedCapacity: elementCount) { buffer, count in
            copyElements(into: UnsafeMutableRawBufferPointer(buffer))
            count = elementCount
        }
    }

    /// Copies an F32 tensor into `destination` (exactly `elementCount` floats), e.g. a slice
    /// of a model's contiguous parameter block, without an intermediate array.
    public func copyFloats(into destination: UnsafeMutableBufferPointer<Float>) throws {
        try require(.float32)
        guard destination.count == elementCount else {
            throw CheckpointError("\(source): tensor \"\(name)\" has shape \(shape) (\(elementCount) floats); "
                + "expected \(destination.count) floats to fill the destination; check the model config matches the weights")
        }
        copyElements(into: UnsafeMutableRawBufferPointer(destination))
    }

    private func require(_ expected: SafeTensorDType) throws {
        guard dtype == expected else {
            throw CheckpointError("\(source): tensor \"\(name)\" has dtype \(dtype.rawValue); expected \(expected.rawValue)"
                + " (SPEC 2.9: weights are float32; SPEC 3)")
        }
    }

    /// Copies the raw little-endian bytes; the host is little-endian (checked below).
    private func copyElements(into destination: UnsafeMutableRawBufferPointer) {
        guard !byteRange.isEmpty else { return }
        storage.withUnsafeBytes { raw in
            let start = raw.baseAddress! + (byteRange.lowerBound - storage.startIndex)
            destination.baseAddress!.copyMemory(from: start, byteCount: byteRange.count)
        }
    }
}

#if !_endian(little)
#error("Checkpoint reads and writes safetensors data by copying bytes: it needs a little-endian host")
#endif

/// A parsed safetensors file: its tensors (in data order), the optional `__metadata__`
/// string map, and the file's bytes, which the tensors view without copying.
public struct SafeTensorsFile: Sendable {
    /// The Rust library's limit on the JSON header size.
    public static let maximumHeaderLength = 100_000_000

    /// Tensor names in the order their data appears in the file.
    public let names: [String]
    /// The header's `__metadata__` map ([:] when absent).
    public let metadata: [String: String]
    /// The file path (or the name given for in-memory data), for messages.
    public let source: String
    private let tensors: [String: SafeTensor]

    /// Reads and validates the file at `url` (memory-mapped when possible).
    public init(contentsOf url: URL) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw CheckpointError("\(url.path): cannot read the safetensors file (\(error.localizedDescription)); "
                + "expected a readable file written by Braid or safetensors.torch.save_file")
        }
        try self.init(data: data, source: url.path)
    }

    /// Parses and validates `data`; `source` names the bytes in error messages.
    public init(data: Data, source: String = "<safetensors data>") throws {
        let fileSize = data.count
        guard fileSize >= 8 else {
            throw CheckpointError("\(source): the file holds \(fileSize) bytes; expected at least 8 "
                + "(the little-endian header length of the safetensors layout, SPEC 3); the file is truncated or not safetensors")
        }
        var headerLength64: UInt64 = 0
        for index in (0..<8).reversed() {
            headerLength64 = headerLength64 << 8 | UInt64(data[data.startIndex + index])
        }
        guard headerLength64 <= UInt64(Self.maximumHeaderLength), Int(headerLength64) <= fileSize - 8 else {
            throw CheckpointError("\(source): the header length field reads \(headerLength64) bytes; expected at most "
                + "\(min(Self.maximumHeaderLength, fileSize - 8)) (the file holds \(fileSize) bytes); the file is truncated or not safetensors")
        }
        let headerLength = Int(headerLength64)
        let headerStart = data.startIndex + 8
        let dataStart = headerStart + headerLength
        guard headerLength >= 2, data[headerStart] == UInt8(ascii: "{") else {
            throw CheckpointError("\(source): the \(headerLength)-byte header does not start with \"{\"; "
                + "expected a JSON object (SPEC 3); the file is not safetensors")
        }
        let header: RawHeader
        do {
            header = try RawHeader(JSONValue.parse(data[headerStart..<dataStart]))
        } catch {
            throw CheckpointError("\(source): the header is not the expected JSON ({name: {\"dtype\", \"shape\", "
                + "\"data_offsets\"}}): \(error); rewrite the file with Braid or safetensors.torch.save_file")
        }
        let dataSize = fileSize - 8 - headerLength
        var parsed: [SafeTensor] = []
        parsed.reserveCapacity(header.entries.count)
        for entry in header.entries {
            let name = entry.name
            guard let dtype = SafeTensorDType(rawValue: entry.dtype) else {
                throw CheckpointError("\(source): tensor \"\(name)\" has dtype \"\(entry.dtype)\"; expected one of "
                    + SafeTensorDType.allCases.map(\.rawValue).joined(separator: ", "))
            }
            guard entry.shape.allSatisfy({ $0 >= 0 }) else {
                throw CheckpointError("\(source): tensor \"\(name)\" has shape \(entry.shape); expected non-negative dimensions")
            }
            guard entry.dataOffsets.count == 2 else {
                throw CheckpointError("\(source): tensor \"\(name)\" has data_offsets \(entry.dataOffsets); expected [begin, end]")
            }
            let begin = entry.dataOffsets[0], end = entry.dataOffsets[1]
            guard 0 <= begin, begin <= end, end <= dataSize else {
                throw CheckpointError("\(source): tensor \"\(name)\" has data_offsets [\(begin), \(end)]; expected "
                    + "0 <= begin <= end <= \(dataSize) (the data section's size); the file is truncated or corrupt")
            }
            var byteCount = dtype.size
            for dimension in entry.shape {
                let (product, overflow) = byteCount.multipliedReportingOverflow(by: dimension)
                guard !overflow else {
                    throw CheckpointError("\(source): tensor \"\(name)\" has shape \(entry.shape), too large to address")
                }
                byteCount = product
            }
            guard byteCount == end - begin else {
                throw CheckpointError("\(source): tensor \"\(name)\" (\(dtype.rawValue), shape \(entry.shape)) needs "
                    + "\(byteCount) bytes; found data_offsets [\(begin), \(end)] spanning \(end - begin); the file is corrupt")
            }
            parsed.append(SafeTensor(name: name, dtype: dtype, shape: entry.shape,
                                     byteRange: (dataStart + begin)..<(dataStart + end), storage: data, source: source))
        }
        // Like the Rust library: the data is covered exactly once, in offset order, no gaps or overlaps.
        parsed.sort { ($0.byteRange.lowerBound, $0.byteRange.upperBound, $0.name) < ($1.byteRange.lowerBound, $1.byteRange.upperBound, $1.name) }
        var expectedBegin = dataStart
        for tensor in parsed {
            guard tensor.byteRange.lowerBound == expectedBegin else {
                let relative = tensor.byteRange.lowerBound - dataStart, expected = expectedBegin - dataStart
                throw CheckpointError("\(source): tensor \"\(tensor.name)\" data starts at offset \(relative); expected "
                    + "\(expected) (tensors must cover the data section contiguously, without "
                    + (relative < expected ? "overlaps" : "gaps") + "); the file is corrupt")
            }
            expectedBegin = tensor.byteRange.upperBound
        }
        guard expectedBegin == dataStart + dataSize else {
            throw CheckpointError("\(source): the tensors cover \(expectedBegin - dataStart) bytes of data; found "
                + "\(dataSize) bytes after the header; the file holds trailing bytes or is corrupt")
        }
        names = parsed.map(\.name)
        metadata = header.metadata
        self.source = source
        tensors = Dictionary(uniqueKeysWithValues: parsed.map { ($0.name, $0) })
    }

    /// The tensor called `name`, or nil.
    public subscript(name: String) -> SafeTensor? { tensors[name] }

    /// The tensor called `name`; throws naming the file when it is absent.
    public func tensor(_ name: String) throws -> SafeTensor {
        guard let tensor = tensors[name] else {
            throw CheckpointError("\(source): no tensor \"\(name)\"; the file holds \(names.count) tensors"
                + (names.isEmpty ? "" : " (\(names.prefix(8).joined(separator: ", "))\(names.count > 8 ? ", ..." : ""))")
                + "; check the model config matches the weights (SPEC 2.9 names)")
        }
        return tensor
    }
}

/// The JSON header as read, before validation: `{"__metadata__": {str: str}?, name:
/// {"dtype": str, "shape": [int], "data_offsets": [int]}, ...}`, entries in header order.
private struct RawHeader {
    struct Entry {
        let name: String
        let dtype: String
        let shape: [Int]
        let dataOffsets: [Int]
    }

    var entries: [Entry] = []
    var metadata: [String: String] = [:]

    /// Throws `JSONShapeError` naming the path of a missing or mistyped value.
    init(_ document: JSONValue) throws {
        for (name, node) in try JSONNode(document).object() {
            if name == "__metadata__" {
                for (key, value) in try node.object() { metadata[key] = try value.string() }
            } else {
                entries.append(Entry(name: name, dtype: try node.member("dtype", expected: "a dtype name").string(),
                                     shape: try node.member("shape", expected: "an array of dimensions").ints(),
                                     dataOffsets: try node.member("data_offsets", expected: "[begin, end]").ints()))
            }
        }
    }
}

/// One tensor to write: name, row-major shape and its elements (F32 or I64).
/// The pointer form lets a caller write a slice of a larger block (a model's contiguous
/// parameters) without copying it first; the memory must stay valid until
/// `encodeSafeTensors` returns.
public struct SafeTensorSource {
    enum Elements {
        case floats([Float])
        case int64s([Int64])
        case floatPointer(UnsafeBufferPointer<Float>)
    }

    public let name: String
    public let shape: [Int]
    let elements: Elements

    public init(name: String, shape: [Int], floats: [Float]) {
        self.name = name; self.shape = shape; elements = .floats(floats)
    }

    public init(name: String, shape: [Int], int64s: [Int64]) {
        self.name = name; self.shape = shape; elements = .int64s(int64s)
    }

    public init(name: String, shape: [Int], floatsAt pointer: UnsafeBufferPointer<Float>) {
        self.name = name; self.shape = shape; elements = .floatPointer(pointer)
    }

    var dtype: SafeTensorDType {
        switch elements {
        case .floats, .floatPointer: return .float32
        case .int64s: return .int64
        }
    }

    var count: Int {
        switch elements {
        case .floats(let values): return values.count
        case .int64s(let values): return values.count
        case .floatPointer(let pointer): return pointer.count
        }
    }

    func copyBytes(to destination: UnsafeMutableRawPointer) {
        guard count > 0 else { return }
        switch elements {
        case .floats(let values):
            values.withUnsafeBytes { destination.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        case .int64s(let values):
            values.withUnsafeBytes { destination.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        case .floatPointer(let pointer):
            destination.copyMemory(from: pointer.baseAddress!, byteCount: pointer.count * MemoryLayout<Float>.size)
        }
    }
}

/// Serialises `tensors` in the safetensors layout exactly as the Rust library does
/// (sorted by element size, largest first, then name; compact JSON header padded with
/// spaces to a multiple of 8; `__metadata__` first when given). Each tensor's data is
/// copied once, into the returned buffer.
/// Throws on duplicate names, `__metadata__` as a name, or a shape that does not match
/// the element count.
public func encodeSafeTensors(_ tensors: [SafeTensorSource], metadata: [String: String] = [:]) throws -> Data {
    var seen = Set<String>()
    for tensor in tensors {
        guard tensor.name != "__metadata__" else {
            throw CheckpointError("safetensors writer: \"__metadata__\" is reserved for the metadata map; rename the tensor")
        }
        guard seen.insert(tensor.name).inserted else {
            throw CheckpointError("safetensors writer: tensor \"\(tensor.name)\" is given twice; expected unique names")
        }
        guard tensor.shape.allSatisfy({ $0 >= 0 }), tensor.shape.reduce(1, *) == tensor.count else {
            throw CheckpointError("safetensors writer: tensor \"\(tensor.name)\" has shape \(tensor.shape) "
                + "(\(tensor.shape.reduce(1, *)) elements); found \(tensor.count) elements; pass a matching shape")
        }
    }
    let ordered = tensors.sorted { left, right in
        left.dtype.size != right.dtype.size ? left.dtype.size > right.dtype.size : left.name < right.name
    }
    var header: [(key: String, value: JSONValue)] = []
    if !metadata.isEmpty {
        header.append(("__metadata__", .object(metadata.keys.sorted().map { ($0, .string(metadata[$0]!)) })))
    }
    var offset = 0
    for tensor in ordered {
        let byteCount = tensor.count * tensor.dtype.size
        header.append((tensor.name, .object([
            ("dtype", .string(tensor.dtype.rawValue)), ("shape", .array(tensor.shape.map { .integer($0) })),
            ("data_offsets", .array([.integer(offset), .integer(offset + byteCount)])),
        ])))
        offset += byteCount
    }
    var headerBytes = Array(JSONValue.object(header).serialized().utf8)
    headerBytes += [UInt8](repeating: UInt8(ascii: " "), count: (8 - headerBytes.count % 8) % 8)

    var output = Data(count: 8 + headerBytes.count + offset)
    output.withUnsafeMutableBytes { raw in
        let base = raw.baseAddress!
        var length = UInt64(headerBytes.count).littleEndian
        withUnsafeBytes(of: &length) { base.copyMemory(from: $0.baseAddress!, byteCount: 8) }
        headerBytes.withUnsafeBytes { (base + 8).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        var position = 8 + headerBytes.count
        for tensor in ordered {
            tensor.copyBytes(to: base + position)
            position += tensor.count * tensor.dtype.size
        }
    }
    return output
}

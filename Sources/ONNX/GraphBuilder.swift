import Foundation
import SwiftProtobuf

/// ONNX element types used by Braid's graphs (`TensorProto.DataType` of onnx.proto).
public enum ONNXElementType: Int32, Sendable {
    case float = 1
    case int64 = 7
    case bool = 9
    case double = 11

    /// The name ONNX Runtime and numpy print (`tensor(float)`, ...).
    public var name: String {
        switch self {
        case .float: return "float"
        case .int64: return "int64"
        case .bool: return "bool"
        case .double: return "double"
        }
    }
}

extension Onnx_TensorProto {
    /// A tensor named `name` of shape `dims` and element type `type`, with no values yet.
    init(name: String, dims: [Int], type: ONNXElementType) {
        self.init()
        self.name = name
        self.dims = dims.map(Int64.init)
        self.dataType = type.rawValue
    }
}

/// One dimension of a graph input or output: a fixed size or a named symbolic one.
public enum ONNXDimension: Equatable, Sendable {
    case fixed(Int)
    case symbolic(String)
}

/// Appends nodes, initializers, inputs and outputs to an `Onnx_GraphProto`, giving every
/// intermediate value a unique name `<hint>:<n>` so a graph viewer shows where it comes from.
/// Nodes are appended in execution order (the graph stays topologically sorted).
struct GraphBuilder {
    private(set) var graph = Onnx_GraphProto()
    private var counter = 0
    private var constants: [String: String] = [:]   // key of a small constant -> its initializer name
    private(set) var initializerNames = Set<String>()

    init(name: String) { graph.name = name }

    /// A fresh value name.
    mutating func fresh(_ hint: String) -> String {
        counter += 1
        return "\(hint):\(counter)"
    }

    /// Appends `op` and returns its `outputs` output names.
    @discardableResult
    mutating func node(_ op: String, _ inputs: [String], outputs count: Int = 1, _ attributes: [Onnx_AttributeProto] = [],
                       hint: String? = nil) -> [String] {
        var n = Onnx_NodeProto()
        n.opType = op
        n.input = inputs
        let base = hint ?? op
        n.output = (0..<count).map { _ in fresh(base) }
        n.name = n.output[0]
        n.attribute = attributes
        graph.node.append(n)
        return n.output
    }

    /// Appends a one-output `op` and returns the output's name.
    mutating func op(_ op: String, _ inputs: String..., attributes: [Onnx_AttributeProto] = [], hint: String? = nil) -> String {
        node(op, inputs, attributes, hint: hint)[0]
    }

    /// A float32 initializer `name` of `shape` (row-major values).
    @discardableResult
    mutating func initializer(_ name: String, shape: [Int], floats: UnsafeBufferPointer<Float>) -> String {
        precondition(shape.reduce(1, *) == floats.count, "initializer \(name): shape \(shape) holds \(shape.reduce(1, *)) values, got \(floats.count)")
        precondition(!initializerNames.contains(name), "initializer \(name) added twice")
        var t = Onnx_TensorProto(name: name, dims: shape, type: .float)
        t.rawData = littleEndianBytes(floats)
        graph.initializer.append(t)
        initializerNames.insert(name)
        return name
    }

    /// A small constant tensor (an initializer named `const:<n>`), shared between equal uses.
    mutating func constant(floats values: [Float], shape: [Int]? = nil) -> String {
        let shape = shape ?? [values.count]
        let key = "f\(shape):\(values.map { $0.bitPattern })"
        if let name = constants[key] { return name }
        let name = fresh("const")
        values.withUnsafeBufferPointer { _ = initializer(name, shape: shape, floats: $0) }
        constants[key] = name
        return name
    }

    /// The initializer already made for `key`, or a new one `const:<n>` made by `make(name)`.
    private mutating func sharedConstant(_ key: String, _ make: (String) -> Onnx_TensorProto) -> String {
        if let name = constants[key] { return name }
        let name = fresh("const")
        graph.initializer.append(make(name))
        constants[key] = name
        return name
    }

    mutating func constant(int64 values: [Int64], shape: [Int]? = nil) -> String {
        let shape = shape ?? [values.count]
        let key = "i\(shape):\(values)"
        return sharedConstant(key) { name in
            var t = Onnx_TensorProto(name: name, dims: shape, type: .int64)
            t.int64Data = values
            return t
        }
    }

    mutating func constant(doubles values: [Double], shape: [Int]? = nil) -> String {
        let shape = shape ?? [values.count]
        let key = "d\(shape):\(values.map { $0.bitPattern })"
        return sharedConstant(key) { name in
            var t = Onnx_TensorProto(name: name, dims: shape, type: .double)
            t.doubleData = values
            return t
        }
    }

    mutating func constant(bools values: [Bool], shape: [Int]? = nil) -> String {
        let shape = shape ?? [values.count]
        let key = "b\(shape):\(values)"
        return sharedConstant(key) { name in
            var t = Onnx_TensorProto(name: name, dims: shape, type: .bool)
            t.int32Data = values.map { $0 ? 1 : 0 }
            return t
        }
    }

    /// Declares a graph input.
    mutating func input(_ name: String, _ type: ONNXElementType, _ shape: [ONNXDimension], doc: String) {
        graph.input.append(valueInfo(name, type, shape, doc: doc))
    }

    /// Declares `value` as the graph output `name` (through an Identity node, so the output
    /// carries the public name).
    mutating func output(_ value: String, as name: String, _ type: ONNXElementType, _ shape: [ONNXDimension], doc: String) {
        var n = Onnx_NodeProto()
        n.opType = "Identity"
        n.input = [value]
        n.output = [name]
        n.name = name
        graph.node.append(n)
        graph.output.append(valueInfo(name, type, shape, doc: doc))
    }

    private func valueInfo(_ name: String, _ type: ONNXElementType, _ shape: [ONNXDimension], doc: String) -> Onnx_ValueInfoProto {
        var info = Onnx_ValueInfoProto()
        info.name = name
        info.docString = doc
        var tensor = Onnx_TypeProto.Tensor()
        tensor.elemType = type.rawValue
        var s = Onnx_TensorShapeProto()
        s.dim = shape.map { d in
            var dim = Onnx_TensorShapeProto.Dimension()
            switch d {
            case .fixed(let n): dim.dimValue = Int64(n)
            case .symbolic(let p): dim.dimParam = p
            }
            return dim
        }
        tensor.shape = s
        info.type.tensorType = tensor
        return info
    }
}

/// Attribute constructors (onnx.proto `AttributeProto`).
enum Attr {
    static func int(_ name: String, _ value: Int) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .int
        a.i = Int64(value)
        return a
    }

    static func ints(_ name: String, _ values: [Int]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .ints
        a.ints = values.map(Int64.init)
        return a
    }

    static func float(_ name: String, _ value: Float) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .float
        a.f = value
        return a
    }
}

/// The little-endian bytes of Float values (`TensorProto.raw_data`).
func littleEndianBytes(_ values: UnsafeBufferPointer<Float>) -> Foundation.Data {
    var data = Foundation.Data(count: values.count * 4)
    data.withUnsafeMutableBytes { raw in
        let out = raw.bindMemory(to: UInt32.self)
        for (i, v) in values.enumerated() { out[i] = v.bitPattern.littleEndian }
    }
    return data
}

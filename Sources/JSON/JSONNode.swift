/// A document that is JSON but not of the expected shape: `message` names the path of the
/// missing or mistyped value and says what was expected
/// (`model.deep[1] = '8'; expected an integer`).
public struct JSONShapeError: Error, CustomStringConvertible, Equatable, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One value of a parsed document together with its path from the root
/// (`schema.categorical[2].buckets`; "" for the root), so that every type or presence
/// error names where it happened. Readers of model.json and safetensors headers walk
/// documents with it; every accessor throws `JSONShapeError`.
public struct JSONNode {
    public let value: JSONValue
    public let path: String

    public init(_ value: JSONValue, path: String = "") {
        self.value = value
        self.path = path
    }

    /// The member `key`; throws naming the path when it is absent or null.
    public func member(_ key: String, expected: String) throws -> JSONNode {
        guard let node = optionalMember(key) else {
            throw JSONShapeError("missing key \(childPath(key)); expected \(expected)")
        }
        return node
    }

    /// The member `key`, or nil when it is absent or null (or this is not an object).
    public func optionalMember(_ key: String) -> JSONNode? {
        guard let child = value[key], child != .null else { return nil }
        return JSONNode(child, path: childPath(key))
    }

    private func childPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// `path = <Python repr of the value>; expected <expected>`.
    public func wrongType(_ expected: String) -> JSONShapeError {
        JSONShapeError("\(path) = \(value.pythonDescription); expected \(expected)")
    }

    public func string() throws -> String {
        guard case .string(let text) = value else { throw wrongType("a string") }
        return text
    }

    /// An integer literal that fits in an Int (`1.0` is refused).
    public func int() throws -> Int {
        guard let integer = value.intValue else { throw wrongType("an integer") }
        return integer
    }

    /// A number or an integer literal, correctly rounded.
    public func double() throws -> Double {
        guard let number = value.doubleValue else { throw wrongType("a number") }
        return number
    }

    public func array() throws -> [JSONNode] {
        guard case .array(let items) = value else { throw wrongType("an array") }
        return items.enumerated().map { JSONNode($0.element, path: "\(path)[\($0.offset)]") }
    }

    /// The members of an object, in document order.
    public func object() throws -> [(key: String, node: JSONNode)] {
        guard case .object(let keys, let values) = value else { throw wrongType("an object") }
        return keys.map { ($0, JSONNode(values[$0]!, path: childPath($0))) }
    }

    public func strings() throws -> [String] { try array().map { try $0.string() } }
    public func ints() throws -> [Int] { try array().map { try $0.int() } }
}

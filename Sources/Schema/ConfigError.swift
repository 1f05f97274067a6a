/// An error in `model.json` (SPEC 1.1, 2.8): the message names the JSON path or the
/// fields and values at fault and says what was expected.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

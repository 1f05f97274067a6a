import Schema

/// Bad input data (SPEC 1.2 rows): where (`file:line`, and the column when one cell is at
/// fault), what was found and what was expected. `description` reads exactly like the
/// reference's `InputError`: `file:line, column "name": what; expected ...`.
public struct InputError: Error, CustomStringConvertible, Equatable, Sendable {
    public var file: String
    /// 1-based line where the record starts (quoted newlines count).
    public var line: Int
    public var column: String?
    public var message: String

    public init(file: String, line: Int, column: String? = nil, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String {
        if let column { return "\(file):\(line), column \"\(column)\": \(message)" }
        return "\(file):\(line): \(message)"
    }
}

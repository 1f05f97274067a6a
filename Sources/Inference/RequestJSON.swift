import JSON

/// A parsed SPEC 5 request body: the JSON module's `JSONValue` (integers as exact decimal
/// text, numbers correctly rounded, object keys in order), read by
/// `RequestJSON.parse(_:)` = `JSONValue.parse(_:nonFiniteLiterals: false)`, which refuses
/// NaN and Infinity as the reference's `parse_constant` does. The name Serving uses.
public typealias RequestJSON = JSONValue

/// A body that is not JSON; `message` is what Python's `json.loads` would say.
public typealias RequestJSONError = JSONSyntaxError

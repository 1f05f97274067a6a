import Foundation
import JSON
import Random
import Testing

@Test func jsonWriterFollowsPythonsIndentedLayoutAndRoundTripsDoubles() throws {
    let value = JSONValue.object([("b", .array([.integer(1), .number(0.1), .null])), ("a", .object([])),
                                  ("s", .string("q\"\\\n\u{01}é")), ("t", .bool(true)), ("n", .number(.nan))])
    #expect(value.serialized(indent: 1) == "{\n \"b\": [\n  1,\n  0.1,\n  null\n ],\n \"a\": {},\n \"s\": \"q\\\"\\\\\\n\\u0001é\",\n \"t\": true,\n \"n\": null\n}")
    var generator = SplitMix64(seed: 9)
    for _ in 0..<200 {
        let x = Double(bitPattern: generator.next() >> 2)  // finite, spanning magnitudes
        let text = JSONValue.number(x).serialized()
        #expect(Double(text) == x, "\(x) -> \(text)")
        #expect(try JSONDecoder().decode([Double].self, from: Data("[\(text)]".utf8)) == [x])
    }
}

@Test func stringsAreEscapedAsSerdeJSONDoes() {
    #expect(jsonString("plain é ∑ 🙂") == "\"plain é ∑ 🙂\"")
    #expect(jsonString("q\"b\\") == #""q\"b\\""#)
    #expect(jsonString("\n\r\t\u{08}\u{0C}") == #""\n\r\t\b\f""#)
    #expect(jsonString("\u{00}\u{01}\u{1F}\u{7F}") == "\"\\u0000\\u0001\\u001f\u{7F}\"")
    #expect(JSONValue.object([("k\n", .string("\t"))]).serialized() == #"{"k\n":"\t"}"#)
}

@Test func nonFiniteNumbersAreNull() {
    #expect([Double.nan, .infinity, -.infinity].map { jsonNumber($0) } == ["null", "null", "null"])
    #expect([0.1, 1, 1e-05, 1e16].map { jsonNumber($0) } == ["0.1", "1.0", "1e-05", "1e+16"])
}

/// The Python dialect (model.json, read and written like the reference's `json.dump`):
/// ASCII-only strings with UTF-16 escapes, NaN and Infinity literals.
@Test func pythonDialectEscapesNonASCIIAndWritesNaNLiterals() {
    #expect(jsonString("é∑🙂\u{7F}q\"", asciiOnly: true) == #""\u00e9\u2211\ud83d\ude42\u007fq\"""#)
    #expect(jsonString("\n\r\t\u{08}\u{0C}\u{01}", asciiOnly: true) == #""\n\r\t\b\f\u0001""#)
    #expect([Double.nan, .infinity, -.infinity, 0.5].map { jsonNumber($0, pythonLiterals: true) } == ["NaN", "Infinity", "-Infinity", "0.5"])
    let value = JSONValue.object([("é", .array([.number(.nan), .string("ü")])), ("e", .array([]))])
    #expect(value.serialized(indent: 1, python: true) == "{\n \"\\u00e9\": [\n  NaN,\n  \"\\u00fc\"\n ],\n \"e\": []\n}")
}

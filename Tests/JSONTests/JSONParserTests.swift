import Foundation
import JSON
import Random
import Testing

private func parse(_ text: String, nonFiniteLiterals: Bool = false) throws -> JSONValue {
    try JSONValue.parse(Data(text.utf8), nonFiniteLiterals: nonFiniteLiterals)
}

/// The message of the error parsing `text` throws, or "no error".
private func syntaxError(_ text: String) -> String {
    do {
        _ = try parse(text)
        return "no error"
    } catch let error as JSONSyntaxError {
        return error.message
    } catch {
        return "\(error)"
    }
}

@Test func parserKeepsIntegersExactAndNumbersCorrectlyRounded() throws {
    let value = try parse(#"{"a": [1, 1.0, -0, 1e2, 123456789012345678901234567890, -0.09999999999999999, 1e400, 2E-3]}"#)
    #expect(value["a"] == .array([.integer("1"), .number(1.0), .integer("0"), .number(100), .integer("123456789012345678901234567890"),
                                 .number(-0.09999999999999999), .number(.infinity), .number(0.002)]))
    #expect(JSONValue.integer("7").intValue == 7 && JSONValue.number(7).intValue == nil)
    #expect(JSONValue.integer("123456789012345678901234567890").intValue == nil)
    #expect(JSONValue.integer("123456789012345678901234567890").doubleValue == 1.2345678901234568e29)
    var generator = SplitMix64(seed: 4)
    for _ in 0..<200 {
        let x = Double(bitPattern: generator.next() >> 2)
        #expect(try parse(JSONValue.array([.number(x)]).serialized()) == .array([.number(x)]))
    }
}

@Test func objectsKeepFirstSeenKeyOrderAndTheLastValue() throws {
    let value = try parse(#"{"b": 1, "a": {"z": null, "y": []}, "b": 2}"#)
    #expect(value == .object([("b", .integer(2)), ("a", .object([("z", .null), ("y", .array([]))]))]))
    #expect(value.members?.map(\.key) == ["b", "a"])
    #expect(value.pythonDescription == "{'b': 2, 'a': {'z': None, 'y': []}}")
    #expect(value["a"]?["y"] == .array([]) && value["missing"] == nil && JSONValue.array([])["b"] == nil)
}

@Test func stringsUnescapeLikePython() throws {
    #expect(try parse(#""\u00e9\ud83d\ude00\n\t\/\\\"é""#) == .string("é😀\n\t/\\\"é"))
    #expect(try parse(#""\ud800x""#) == .string("\u{FFFD}x"))  // a lone surrogate
    #expect(try parse("\u{FEFF}[true, false, null]") == .array([.bool(true), .bool(false), .null]))  // BOM skipped
}

/// The messages of CPython's json scanner, positions in characters (here after a 2-byte é).
@Test func syntaxErrorsReadLikePythons() {
    let cases: [(String, String)] = [
        ("", "Expecting value: line 1 column 1 (char 0)"),
        ("{x", "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        (#"{"é" 1}"#, "Expecting ':' delimiter: line 1 column 6 (char 5)"),
        (#"["é" 1]"#, "Expecting ',' delimiter: line 1 column 6 (char 5)"),
        ("[1,\n ]", "Expecting value: line 2 column 2 (char 5)"),
        ("1 2", "Extra data: line 1 column 3 (char 2)"),
        ("1.", "Extra data: line 1 column 2 (char 1)"),
        ("-", "Expecting value: line 1 column 1 (char 0)"),
        (#"["abc"#, "Unterminated string starting at: line 1 column 2 (char 1)"),
        ("[\"a\u{01}\"]", "Invalid control character at: line 1 column 4 (char 3)"),
        (#"["\x"]"#, "Invalid \\escape: line 1 column 3 (char 2)"),
        (#"["\u12"]"#, "Invalid \\uXXXX escape: line 1 column 4 (char 3)"),
        ("[NaN]", "NaN is not JSON"),
        ("[-Infinity]", "-Infinity is not JSON"),
        (String(repeating: "[", count: 600), "nesting deeper than 512 levels: line 1 column 513 (char 512)"),
    ]
    for (text, message) in cases {
        #expect(syntaxError(text) == message, "\(text)")
    }
    #expect(throws: JSONSyntaxError(message: "invalid UTF-8 at byte 3")) { try JSONValue.parse(Data([0x5B, 0x22, 0x61, 0xFF, 0x22, 0x5D])) }
}

/// model.json is read as Python's `json.load` reads it: the NaN literals it writes come back.
@Test func nonFiniteLiteralsAreNumbersWhenAllowed() throws {
    let value = JSONValue.object([("x", .array([.number(.infinity), .number(-.infinity), .number(0.5)]))])
    #expect(try parse(value.serialized(indent: 1, python: true), nonFiniteLiterals: true) == value)
    guard case .array(let items)? = try parse("{\"x\": [NaN]}", nonFiniteLiterals: true)["x"], case .number(let x) = items[0] else {
        Issue.record("NaN did not parse")
        return
    }
    #expect(x.isNaN)
}

@Test func nodesNameThePathOfWhatIsMissingOrMistyped() throws {
    let root = JSONNode(try parse(#"{"model": {"deep": [16, "8"], "lr": 1, "name": null}}"#))
    let model = try root.member("model", expected: "an object")
    #expect(try model.member("lr", expected: "a number").double() == 1)
    #expect(model.optionalMember("name") == nil)
    #expect(throws: JSONShapeError("model.deep[1] = '8'; expected an integer")) { try model.member("deep", expected: "").ints() }
    #expect(throws: JSONShapeError("missing key model.name; expected a string")) { try model.member("name", expected: "a string") }
    #expect(throws: JSONShapeError("model.lr = 1; expected a string")) { try model.member("lr", expected: "").string() }
    #expect(try model.object().map(\.key) == ["deep", "lr", "name"])
}

@Test func pythonReprOfFloatsAndStrings() {
    #expect([1e-5, 1e16, 9.5e15, 0.1, 1, -0.0, .nan, -.infinity].map(pythonFloatRepr)
            == ["1e-05", "1e+16", "9500000000000000.0", "0.1", "1.0", "-0.0", "nan", "-inf"])
    #expect(pythonRepr("it's") == #""it's""# && pythonRepr("a\tb\u{7F}") == #"'a\tb\x7f'"#)
    #expect(pythonRepr(["a", "b"]) == "['a', 'b']")
}

/// `braid generate`'s model.json layout: scalar arrays and small flat objects on one line.
@Test func lineWidthLayoutWrapsOnlyWhatDoesNotFit() {
    let value = JSONValue.object([
        ("list", .array([.integer(1), .string("a")])),
        ("flat", .object([("name", .string("x")), ("buckets", .integer(8))])),
        ("wide", .object([("name", .string(String(repeating: "w", count: 120)))])),
        ("rows", .array([.object([("a", .integer(1))])])),
        ("empty", .object([])),
    ])
    #expect(value.serialized(lineWidth: 120) == """
        {
          "list": [1, "a"],
          "flat": {"name": "x", "buckets": 8},
          "wide": {
            "name": "\(String(repeating: "w", count: 120))"
          },
          "rows": [
            {"a": 1}
          ],
          "empty": {}
        }
        """)
}

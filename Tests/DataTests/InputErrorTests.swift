import Foundation
import JSON
import Schema
import Testing
@testable import Data

/// One test per SPEC 1.2 / 1.4 input rule, each asserting the reference's exact message.
@Suite struct InputErrorTests {
    static let configText = """
    {"format": "braid-model", "version": 1,
     "schema": {"surfaces": ["home_feed", "search"],
       "tasks": {"home_feed": ["click", "save"], "search": ["click"]},
       "categorical": [{"name": "user_id", "side": "user", "buckets": 100},
                       {"name": "ad_id", "side": "candidate", "buckets": 50, "table": "item"},
                       {"name": "tokens", "side": "context", "buckets": 30, "multi": "mean", "surfaces": ["search"]},
                       {"name": "home_only", "side": "context", "buckets": 10, "surfaces": ["home_feed"]}],
       "dense": [{"name": "ctr", "side": "candidate", "transform": "log1p"},
                 {"name": "query_sim", "side": "context", "transform": "standardize", "surfaces": ["search"]}],
       "sequence": {"items": "seq_items", "actions": "seq_actions", "max_length": 3, "action_types": 5, "item_table": "item"}},
     "model": {"embedding_dim": 4,
       "sequence": {"fusion": "early", "d_model": 8, "n_heads": 2, "n_layers": 1, "d_ff": 16, "recent_k": 2, "proj_rank": 2, "proj_dim": 4},
       "cross_layers": 1, "cross_rank": 2, "deep": [8], "experts": 2, "expert_layers": [8], "tower_layers": [4],
       "module_layers": [4], "task_weights": {}, "calibration_mode": "surface"},
     "dense_stats": {"query_sim": {"mean": 1.0, "std": 2.0}}, "calibration": {}, "surfaces_included": %INCLUDED%}
    """

    static func config(included: [String] = ["home_feed", "search"]) throws -> ModelConfig {
        let list = "[" + included.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
        return try ModelConfig(jsonData: Foundation.Data(configText.replacingOccurrences(of: "%INCLUDED%", with: list).utf8))
    }

    static let header = "surface,user_id,ad_id,tokens,home_only,ctr,query_sim,seq_items,seq_actions,click,save,p_click"
    static let goodRow = "search,u1,a1,x y,,0.5,3,a2 a3,1 2,1,,0.25"

    /// The message of encoding `text` (with `config`), or nil when it encodes.
    func error(_ text: String, config: ModelConfig? = nil, labels: Bool = true) throws -> (String, String)? {
        try error(bytes: Array(text.utf8), config: config, labels: labels)
    }

    func error(bytes: [UInt8], config: ModelConfig? = nil, labels: Bool = true) throws -> (String, String)? {
        let url = try writeTemporary("rows.csv", bytes: bytes)
        do {
            _ = try EncodedRows(file: url, config: config ?? Self.config(), options: EncodeOptions(labels: labels))
            return nil
        } catch let error as InputError {
            return (url.path, error.description)
        }
    }

    /// Asserts that `text` fails with `file:` + `expected`.
    func expectError(_ text: String, _ expected: String, config: ModelConfig? = nil, labels: Bool = true,
                     sourceLocation: SourceLocation = #_sourceLocation) throws {
        let found = try error(text, config: config, labels: labels)
        #expect(found.map { $0.1 } == found.map { "\($0.0):" + expected }, sourceLocation: sourceLocation)
        #expect(found != nil, "no error for \(text.debugDescription)", sourceLocation: sourceLocation)
    }

    @Test func goodRowsEncode() throws {
        #expect(try error("\(Self.header)\n\(Self.goodRow)\n") == nil)
    }

    @Test func wrongFieldCount() throws {
        try expectError("\(Self.header)\n\(Self.goodRow)\nsearch,u1\n", "3: 2 fields; expected 12 as in the header")
    }

    @Test func duplicateHeaderName() throws {
        try expectError("\(Self.header),ad_id,user_id\n", "1: duplicate column names ['ad_id', 'user_id']; expected each name once")
    }

    @Test func noSurfaceColumn() throws {
        try expectError("user_id,ad_id\nu,a\n", "1: no column 'surface'; expected a header naming the surface, feature and label columns")
    }

    @Test func missingFeatureAndLabelColumns() throws {
        let header = Self.header.replacingOccurrences(of: ",ctr", with: "").replacingOccurrences(of: ",save", with: "")
        try expectError("\(header)\n", "1: no column for schema features ['ctr'] and labels ['save']; "
                        + "expected the header to name every feature and label")
        try expectError("\(header)\n", "1: no column for schema features ['ctr']; expected the header to name every feature",
                        labels: false)
    }

    @Test func labelColumnsOnlyForTraining() throws {
        let header = Self.header.replacingOccurrences(of: ",click,save,p_click", with: "")
        let row = "search,u1,a1,x y,,0.5,3,a2 a3,1 2"
        try expectError("\(header)\n\(row)\n", "1: no column for labels ['click', 'save']; expected the header to name every feature and label")
        #expect(try error("\(header)\n\(row)\n", labels: false) == nil)
        // only the served surfaces' tasks are required: a search-only model needs no `save`
        let noSave = Self.header.replacingOccurrences(of: ",save", with: "")
        #expect(try error("\(noSave)\nsearch,u1,a1,x y,,0.5,3,a2 a3,1 2,1,0.25\n", config: Self.config(included: ["search"])) == nil)
    }

    @Test func featuresOnNoServedSurfaceNeedNoColumn() throws {
        let header = Self.header.replacingOccurrences(of: ",home_only", with: "")
        #expect(try error("\(header)\nsearch,u1,a1,x y,0.5,3,a2 a3,1 2,1,,0.25\n", config: Self.config(included: ["search"])) == nil)
        try expectError("\(header)\n", "1: no column for schema features ['home_only']; "
                        + "expected the header to name every feature and label")
    }

    @Test func unknownSurface() throws {
        try expectError("\(Self.header)\nweb,u1,a1,,,0.5,,,,1,,\n",
                        "2, column \"surface\": unknown surface 'web'; expected one of the surfaces this model serves ['home_feed', 'search']")
    }

    @Test func surfaceNotServed() throws {
        try expectError("\(Self.header)\nhome_feed,u1,a1,,,0.5,,,,1,,\n",
                        "2, column \"surface\": a surface this model does not serve 'home_feed'; expected one of the surfaces "
                        + "this model serves ['search']", config: Self.config(included: ["search"]))
    }

    @Test func badLabel() throws {
        try expectError("\(Self.header)\n\(Self.goodRow)\nsearch,u1,a1,,,0.5,,,,1,2,\n",
                        "3, column \"save\": label '2'; expected 0, 1 or empty")
        try expectError("\(Self.header)\nsearch,u1,a1,,,0.5,,,,yes,,\n", "2, column \"click\": label 'yes'; expected 0, 1 or empty")
    }

    @Test func badProbability() throws {
        for bad in ["1.5", "-0.1", "x", "nan", "1e999"] {
            try expectError("\(Self.header)\nsearch,u1,a1,,,0.5,,,,1,,\(bad)\n",
                            "2, column \"p_click\": probability '\(bad)'; expected empty or a number in [0, 1]")
        }
    }

    @Test func badDenseNumberForms() throws {
        for bad in ["1.", "nan", "inf", " 1", "1 ", "1e", "--1", "0x10", "1e999", "."] {
            try expectError("\(Self.header)\nhome_feed,u1,a1,,,\(bad),,,,1,,\n",
                            "2, column \"ctr\": bad number \(pythonRepr(bad)); expected a finite decimal number like 0.25, -3, .5 or 1e-3")
        }
        for good in [".5", "-3", "+2", "1E-3", "007", "2.50e+1"] {
            #expect(try error("\(Self.header)\nhome_feed,u1,a1,,,\(good),,,,1,,\n") == nil, "\(good)")
        }
    }

    @Test func cellsOfAbsentFeaturesAreNotRead() throws {
        // query_sim and tokens do not exist on home_feed: "n/a" there is never parsed
        #expect(try error("\(Self.header)\nhome_feed,u1,a1,n/a,h,0.5,n/a,,,1,0,\n") == nil)
        try expectError("\(Self.header)\nsearch,u1,a1,,,0.5,n/a,,,1,,\n",
                        "2, column \"query_sim\": bad number 'n/a'; expected a finite decimal number like 0.25, -3, .5 or 1e-3")
    }

    @Test func actionOutOfRange() throws {
        for bad in ["5", "0", "x", "-1", "99999999999999999999"] {
            try expectError("\(Self.header)\nsearch,u1,a1,,,0.5,,a1 a2,1 \(bad),1,,\n",
                            "2, column \"seq_actions\": action '\(bad)'; expected an integer in [1, 5)")
        }
    }

    @Test func itemsAndActionsCountMismatch() throws {
        try expectError("\(Self.header)\nsearch,u1,a1,,,0.5,,a1 a2,1,1,,\n",
                        "2, column \"seq_actions\": 1 actions but 2 items in column \"seq_items\"; expected one action per item")
    }

    @Test func unterminatedQuote() throws {
        try expectError("\(Self.header)\n\(Self.goodRow)\n\"search,u1\n", "3: unexpected end of data; expected RFC 4180 quoting")
        try expectError("\(Self.header)\r\n\"search\r\n\r\nmore", "4: unexpected end of data; expected RFC 4180 quoting")
    }

    @Test func textAfterClosingQuote() throws {
        try expectError("\(Self.header)\n\"search\"x,u1\n", "2: ',' expected after '\"'; expected RFC 4180 quoting")
    }

    @Test func invalidUTF8() throws {
        let bytes = Array("\(Self.header)\nsearch,u".utf8) + [0xFF] + Array(",a1,,,0.5,,,,1,,\n".utf8)
        let found = try error(bytes: bytes)
        #expect(found?.1 == found.map { "\($0.0):2: invalid UTF-8 byte 0xff; expected UTF-8 text" })
        let overlong = Array("\(Self.header)\n\n".utf8) + [0xC0, 0xAF]
        let second = try error(bytes: overlong)
        #expect(second?.1 == second.map { "\($0.0):3: invalid UTF-8 byte 0xc0; expected UTF-8 text" })
    }

    @Test func emptyFile() throws {
        try expectError("", "1: empty file; expected a header row")
        try expectError("\u{FEFF}\r\n\n", "1: empty file; expected a header row")
    }

    @Test func quotingBOMLineEndingsAndLineNumbers() throws {
        // BOM, CRLF, blank lines, a quoted newline (line numbers count it), a doubled quote,
        // a bare quote inside an unquoted field (read literally), a lone CR ending a line.
        let text = "\u{FEFF}\(Self.header)\r\n\r\n\"sea\"\"rch\",u1,a1,,,0.5,,,,1,,\r\n"
            + "search,\"u\n1\",a\"1,\"x, y\",,0.5,,,,1,,\rsearch,u1,a1,,,0.5,,,,1,,7\n"
        let url = try writeTemporary("rows.csv", text)
        #expect(throws: InputError(file: url.path, line: 3, column: "surface",
                                   message: "unknown surface 'sea\"rch'; expected one of the surfaces this model serves ['home_feed', 'search']")) {
            try EncodedRows(file: url, config: try Self.config())
        }
        let rows = try EncodedRows(file: url, config: try Self.config(), options: EncodeOptions(skipBadRows: true))
        #expect(rows.count == 1 && rows.lines == [4] && rows.skippedRows == 2)
        #expect(rows.errors.map(\.description) == [
            "\(url.path):3, column \"surface\": unknown surface 'sea\"rch'; expected one of the surfaces this model serves ['home_feed', 'search']",
            "\(url.path):6, column \"p_click\": probability '7'; expected empty or a number in [0, 1]",
        ])
        let batch = rows.batch()
        #expect(batch.categorical[0].ids == [bucket("u\n1", buckets: 100)])
        #expect(batch.categorical[1].ids == [bucket("a\"1", buckets: 50)])
        #expect(batch.categorical[2].ids == [bucket("x,", buckets: 30), bucket("y", buckets: 30)])
    }

    @Test func encodedValues() throws {
        let text = "\(Self.header)\nsearch,u1,a1,x  y,h,-2,5,a1 a2 a3 a4,4 3 2 1,,1,0.25\nhome_feed,,,x,h,1e0,7,,,0,,\n"
        let rows = try EncodedRows(file: try writeTemporary("rows.csv", text), config: try Self.config())
        let batch = rows.batch()
        #expect(batch.surface == [1, 0])
        #expect(batch.categorical[0].ids == [bucket("u1", buckets: 100), 0])
        #expect(batch.categorical[2] == FeatureIDs(ids: [bucket("x", buckets: 30), bucket("y", buckets: 30)], offsets: [0, 2, 2]))
        #expect(batch.categorical[3].ids == [0, bucket("h", buckets: 10)])
        #expect(batch.dense == [Float(log1p(0.0)), Float((5.0 - 1) / 2), Float(log1p(1.0)), 0])
        #expect(batch.seqItems == ["a1", "a2", "a3"].map { bucket($0, buckets: 50) } + [0, 0, 0])
        #expect(batch.seqActions == [4, 3, 2, 0, 0, 0])
        #expect(batch.labels == [-1, 1, 0, -1])
        #expect(batch.oracle[0] == 0.25 && batch.oracle[1].isNaN && batch.oracle[2].isNaN)
    }

    @Test func skipBadRowsCountsAndKeepsTheFirstTen() throws {
        var text = "\(Self.header)\n"
        for i in 0..<30 { text += i % 2 == 0 ? "\(Self.goodRow)\n" : "search,u1,a1,,,0.5,,,,2,,\n" }
        text += "search,u1\n\"search\"x\n"
        let url = try writeTemporary("rows.csv", text)
        let rows = try EncodedRows(file: url, config: try Self.config(), options: EncodeOptions(skipBadRows: true))
        #expect(rows.count == 15 && rows.skippedRows == 17 && rows.errors.count == 10)
        #expect(rows.lines == stride(from: 2, through: 30, by: 2).map { $0 })
        #expect(rows.errors.first?.description == "\(url.path):3, column \"click\": label '2'; expected 0, 1 or empty")
        #expect(rows.batch().labels.count == 15 * 2 && rows.batch().dense.count == 15 * 2)
        #expect(throws: InputError.self) { try EncodedRows(file: url, config: try Self.config()) }
    }

    @Test func standardizeNeedsStats() throws {
        var config = try Self.config()
        config.denseStats = [:]
        let url = try writeTemporary("rows.csv", "\(Self.header)\n\(Self.goodRow)\n")
        #expect(throws: ConfigError("dense_stats has no entry for standardize feature query_sim; expected the statistics "
                                    + "fitted on the training data (SPEC 1.4)")) {
            try EncodedRows(file: url, config: config)
        }
        let fitted = try EncodedRows(file: url, config: config, options: EncodeOptions(fitDenseStats: true))
        #expect(fitted.denseStats["query_sim"] == DenseStats(mean: 3, std: 1e-6))
    }

    @Test func exactSumMatchesFsum() {
        #expect(exactSum([0.1, 0.2, 0.3]) == 0.6)
        #expect(exactSum([1e100, 1, -1e100]) == 1)
        #expect(exactSum(Array(repeating: 0.1, count: 10)) == 1.0)
        #expect(fitDenseStats(values: []) == DenseStats(mean: 0, std: 1))
        #expect(fitDenseStats(values: [1, 3]) == DenseStats(mean: 2, std: 1))
    }
}

import Data
import Foundation
import Random
import Schema
import Testing
@testable import Synthetic

/// Generates a data set into a fresh temporary directory and returns its path.
private func generate(rows: Int, seed: UInt64 = 0) throws -> (directory: String, report: SyntheticReport) {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("braid-synthetic-\(UUID().uuidString)").path
    let report = try SyntheticGenerator(configuration: SyntheticConfiguration(rows: rows, seed: seed))
        .write(to: directory)
    return (directory, report)
}

private func contents(_ directory: String, _ file: String) throws -> Foundation.Data {
    try Foundation.Data(contentsOf: URL(fileURLWithPath: directory).appendingPathComponent(file))
}

/// The rows of a generated CSV (no quoting is ever written) as dictionaries by column name.
private func readRows(_ directory: String, _ file: String) throws -> (header: [String], rows: [[String: String]]) {
    let text = String(decoding: try contents(directory, file), as: UTF8.self)
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    #expect(lines.last == "", "the file should end with a newline")
    lines.removeLast()
    let header = lines[0].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    let rows = lines.dropFirst().map { line -> [String: String] in
        let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        #expect(fields.count == header.count, "row has \(fields.count) fields, header \(header.count): \(line)")
        return Dictionary(uniqueKeysWithValues: zip(header, fields))
    }
    return (header, rows)
}

@Test func sameSeedGivesIdenticalBytesAndDifferentSeedDiffers() throws {
    let first = try generate(rows: 3000, seed: 11)
    let second = try generate(rows: 3000, seed: 11)
    let other = try generate(rows: 3000, seed: 12)
    defer { for run in [first, second, other] { try? FileManager.default.removeItem(atPath: run.directory) } }
    for file in SyntheticGenerator.files {
        #expect(try contents(first.directory, file) == contents(second.directory, file), "\(file) differs for one seed")
    }
    #expect(try contents(first.directory, "train.csv") != contents(other.directory, "train.csv"))
    #expect(try contents(first.directory, "test.csv") != contents(other.directory, "test.csv"))
}

@Test func splitsHaveTheHeaderAndTheConfiguredRowCounts() throws {
    let run = try generate(rows: 3001)
    defer { try? FileManager.default.removeItem(atPath: run.directory) }
    let expectedHeader = [
        "request_id", "surface", "click", "save", "p_click", "p_save", "user_id", "user_country", "ad_id",
        "advertiser_id", "ad_category", "position", "ad_hist_ctr", "query_tokens", "query_ad_sim", "context_pin_cat",
        "seq_items", "seq_actions",
    ]
    var counts: [Int] = []
    for file in ["train.csv", "valid.csv", "test.csv"] {
        let (header, rows) = try readRows(run.directory, file)
        #expect(header == expectedHeader)
        counts.append(rows.count)
    }
    #expect(counts == [2101, 450, 450])
    #expect(run.report.splitRows == counts)
    #expect(run.report.surfaces.map(\.rows).reduce(0, +) == 3001)
}

@Test func cellsAreEmptyExactlyWhereTheSurfaceLacksTheFeatureOrTask() throws {
    let run = try generate(rows: 6000, seed: 3)
    defer { try? FileManager.default.removeItem(atPath: run.directory) }
    let (_, rows) = try readRows(run.directory, "train.csv")
    var seen: Set<String> = []
    for row in rows {
        let surface = try #require(row["surface"])
        seen.insert(surface)
        let isSearch = surface == "search", isRelated = surface == "related_pins"
        #expect(["home_feed", "search", "related_pins"].contains(surface))
        #expect(row["p_click"]!.isEmpty == false)
        #expect(row["p_save"]!.isEmpty == isSearch, "p_save on \(surface)")
        if isSearch { #expect(row["save"] == "") }
        #expect(row["query_tokens"]!.isEmpty == !isSearch, "query_tokens on \(surface)")
        #expect(row["query_ad_sim"]!.isEmpty == !isSearch, "query_ad_sim on \(surface)")
        #expect(row["context_pin_cat"]!.isEmpty == !isRelated, "context_pin_cat on \(surface)")
        for column in ["request_id", "user_id", "user_country", "ad_id", "advertiser_id", "position"] {
            #expect(row[column]!.isEmpty == false, "\(column) is empty")
        }
    }
    #expect(seen == ["home_feed", "search", "related_pins"])
}

@Test func labelsAreBinaryAndConsistentWithTheTrueProbabilities() throws {
    let run = try generate(rows: 8000, seed: 5)
    defer { try? FileManager.default.removeItem(atPath: run.directory) }
    var sequenceLengths: [Int] = []
    var missingClicks = 0
    for file in ["train.csv", "valid.csv", "test.csv"] {
        for row in try readRows(run.directory, file).rows {
            let click = row["click"]!, save = row["save"]!
            #expect(["", "0", "1"].contains(click) && ["", "0", "1"].contains(save), "labels \(click) \(save)")
            if click.isEmpty { missingClicks += 1 }
            let pClick = try #require(Double(row["p_click"]!))
            #expect(pClick > 0 && pClick < 1)
            if let pSave = Double(row["p_save"]!) {
                #expect(pSave > 0 && pSave <= pClick, "p_save \(pSave) above p_click \(pClick)")
            }
            if save == "1" && !click.isEmpty { #expect(click == "1", "a save without a click") }
            if let ctr = row["ad_hist_ctr"], !ctr.isEmpty {
                let value = try #require(Double(ctr))
                #expect(value > 0 && value < 1)
            }
            let items = row["seq_items"]!.split(separator: " ")
            let actions = row["seq_actions"]!.split(separator: " ").map { Int($0) }
            #expect(items.count == actions.count)
            #expect(actions.allSatisfy { $0 != nil && (1..<8).contains($0!) })
            #expect(items.allSatisfy { $0.hasPrefix("pc") })
            sequenceLengths.append(items.count)
        }
    }
    #expect(sequenceLengths.contains(0), "cold users with no history should exist")
    #expect(sequenceLengths.contains { $0 > 64 }, "some sequences should exceed max_length 64")
    #expect(missingClicks > 0 && missingClicks < 8000 / 20, "about 1% of click labels are missing: \(missingClicks)")
}

@Test func baseRatesFollowTheIntendedOrderAndOracleAUCIsLearnableButNotTrivial() throws {
    let run = try generate(rows: 40000, seed: 1)
    defer { try? FileManager.default.removeItem(atPath: run.directory) }
    let bySurface = Dictionary(uniqueKeysWithValues: run.report.surfaces.map { ($0.surface, $0) })
    let home = try #require(bySurface["home_feed"]), search = try #require(bySurface["search"])
    let related = try #require(bySurface["related_pins"])
    #expect(search.clickRate > home.clickRate && home.clickRate > related.clickRate,
            "click rates \(search.clickRate) \(home.clickRate) \(related.clickRate)")
    #expect(home.rows > search.rows && search.rows > related.rows)
    #expect(abs(Double(home.rows) / 40000 - 0.5) < 0.02)
    for statistics in [home, search, related] {
        let auc = try #require(statistics.clickOracleAUC)
        #expect(auc > 0.75 && auc < 0.88, "oracle AUC \(auc) on \(statistics.surface)")
        let withoutSequence = try #require(statistics.clickOracleAUCWithoutSequence)
        #expect(withoutSequence < auc - 0.01, "the sequence should matter on \(statistics.surface)")
        #expect(abs(statistics.meanClickProbability - statistics.clickRate) < 0.01)
    }
    #expect(search.saveRate == nil && search.saveOracleAUC == nil)
    let homeSaves = try #require(home.saveRate)
    #expect(homeSaves > 0 && homeSaves < home.clickRate)
    // The report agrees with the file.
    var clicks = 0, labelled = 0
    for file in ["train.csv", "valid.csv", "test.csv"] {
        for row in try readRows(run.directory, file).rows where row["surface"] == "search" && row["click"] != "" {
            labelled += 1
            if row["click"] == "1" { clicks += 1 }
        }
    }
    #expect(abs(Double(clicks) / Double(labelled) - search.clickRate) < 1e-12)
    let readme = String(decoding: try contents(run.directory, "README.txt"), as: UTF8.self)
    #expect(readme.contains("oracle_auc") && readme.contains("related_pins"))
}

@Test func modelConfigurationParsesWithTheSpecKeys() throws {
    let run = try generate(rows: 2000)
    defer { try? FileManager.default.removeItem(atPath: run.directory) }
    let json = try JSONSerialization.jsonObject(with: contents(run.directory, "model.json"))
    let config = try #require(json as? [String: Any])
    #expect(Set(config.keys) == ["format", "version", "schema", "model", "dense_stats", "calibration",
                                 "surfaces_included"])
    #expect(config["format"] as? String == "braid-model")
    #expect(config["version"] as? Int == 1)
    let schema = try #require(config["schema"] as? [String: Any])
    #expect(schema["surfaces"] as? [String] == ["home_feed", "search", "related_pins"])
    #expect(schema["tasks"] as? [String: [String]] == SyntheticGenerator.tasks)
    let categorical = try #require(schema["categorical"] as? [[String: Any]])
    let dense = try #require(schema["dense"] as? [[String: Any]])
    let sequence = try #require(schema["sequence"] as? [String: Any])
    let features = (categorical + dense).compactMap { $0["name"] as? String }
    #expect(Set(features).isSubset(of: SyntheticGenerator.columns), "every feature has a column")
    #expect(features == ["user_country", "ad_category", "query_tokens", "context_pin_cat", "ad_hist_ctr", "position",
                         "query_ad_sim"], "ids are written but left out of the default config")
    #expect(sequence["max_length"] as? Int == 64 && sequence["action_types"] as? Int == 8)
    #expect(sequence["item_table"] as? String == "category")
    let itemTables = categorical.filter { $0["table"] as? String == "category" }
    #expect(itemTables.count == 1 && itemTables[0]["name"] as? String == "ad_category"
            && itemTables[0]["side"] as? String == "candidate")
    let model = try #require(config["model"] as? [String: Any])
    for key in ["embedding_dim", "sequence", "cross_layers", "cross_rank", "deep", "experts", "expert_layers",
                "tower_layers", "module_layers", "task_weights", "calibration_mode"] {
        #expect(model[key] != nil, "model.\(key) missing")
    }
    #expect((model["sequence"] as? [String: Any])?["fusion"] as? String == "early")
    #expect((config["dense_stats"] as? [String: Any])?.isEmpty == true)
    #expect((config["calibration"] as? [String: Any])?.isEmpty == true)
}

@Test func invalidConfigurationsThrowMessagesNamingTheValue() {
    #expect { try SyntheticGenerator(configuration: SyntheticConfiguration(rows: 0)) } throws: { error in
        "\(error)".contains("--rows is 0") && "\(error)".contains("expected a positive number")
    }
    #expect { try SyntheticGenerator(configuration: SyntheticConfiguration(users: 0)) } throws: { error in
        "\(error)".contains("--users is 0")
    }
    #expect { try SyntheticGenerator(configuration: SyntheticConfiguration(validFraction: 0.5, testFraction: 0.5)) }
        throws: { error in "\(error)".contains("expected less than 1") }
}

@Test func numbersAreFormattedExactly() {
    var buffer = ByteBuffer()
    for (value, decimals) in [(0.0, 6), (-0.03125, 4), (0.9999996, 6), (12.5, 1), (-0.00001, 4), (0.000001, 6)] {
        buffer.appendFixed(value, decimals: decimals)
        buffer.append(UInt8(ascii: " "))
    }
    for value in [0, 7, -45, 1_234_567_890] {
        buffer.appendInteger(value)
        buffer.append(UInt8(ascii: " "))
    }
    #expect(String(decoding: buffer.bytes, as: UTF8.self)
        == "0.000000 -0.0313 1.000000 12.5 0.0000 0.000001 0 7 -45 1234567890 ")
}

@Test func areaUnderCurveMatchesPairCounting() {
    var random = Xoshiro256StarStar(seed: 9)
    let scores = (0..<300).map { _ in Double(random.below(20)) / 20 }  // many ties
    let labels = scores.map { random.uniform() < 0.2 + 0.6 * $0 }
    var wins = 0.0, pairs = 0.0
    for i in scores.indices where labels[i] {
        for j in scores.indices where !labels[j] {
            pairs += 1
            wins += scores[i] > scores[j] ? 1 : scores[i] == scores[j] ? 0.5 : 0
        }
    }
    let auc = areaUnderCurve(scores: scores, labels: labels)
    #expect(auc != nil && abs(auc! - wins / pairs) < 1e-12)
    #expect(areaUnderCurve(scores: [0.1, 0.2], labels: [true, true]) == nil)
}

@Test func generatedFilesEncodeWithTheDataModule() throws {
    let run = try generate(rows: 5000, seed: 2)
    defer { try? FileManager.default.removeItem(atPath: run.directory) }
    let base = URL(fileURLWithPath: run.directory)
    let config = try ModelConfig.load(from: base.appendingPathComponent("model.json"))
    let train = try EncodedRows(file: base.appendingPathComponent("train.csv"), config: config,
                                options: EncodeOptions(fitDenseStats: true))
    #expect(train.count == run.report.splitRows[0])
    #expect(train.skippedRows == 0)
    let stats = try #require(train.denseStats["query_ad_sim"])
    #expect(stats.std > 0.1, "query_ad_sim varies on search rows")
    var fitted = config
    fitted.denseStats = train.denseStats
    let valid = try EncodedRows(file: base.appendingPathComponent("valid.csv"), config: fitted)
    #expect(valid.count == run.report.splitRows[1])
    // The click oracle (first task) is present on every row, the save oracle only off search.
    let taskCount = valid.oracle.count / valid.count
    #expect(taskCount == 2)
    for row in 0..<valid.count {
        #expect(!valid.oracle[row * taskCount].isNaN)
        let isSearch = valid.surface[row] == 1
        #expect(valid.oracle[row * taskCount + 1].isNaN == isSearch)
    }
}

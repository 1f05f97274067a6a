import Checkpoint
import Foundation
import Inference
import Model
@testable import Serving
import TestSupport
import XCTest

/// The model registry (`braid serve --registry DIR`): version order, newest complete version,
/// non-atomic copies, failed versions, rollback pins and unpin, shared (symlinked) versions.
final class RegistryTests: XCTestCase {
    func testVersionOrderIsNumericOnDigitRuns() {
        let sorted = ["1", "2", "10", "0011", "v2", "v9", "v10", "v10a", "20261203T0800", "20261203T0930"]
        XCTAssertEqual(sorted.shuffled().sorted(by: versionOrder),
                       ["1", "2", "10", "0011", "20261203T0800", "20261203T0930", "v2", "v9", "v10", "v10a"])
        XCTAssertFalse(versionOrder("7", "7"))
        XCTAssertTrue(versionOrder("07", "007"), "equal numbers: fewer leading zeros first (a total order)")
    }

    func testRegistryLifecycle() async throws {
        let dirs = try ModelDirs()
        let (root, feed) = try dirs.registry([("0001", dirs.v1)])
        // never read: a writer's temporary name, a .tmp name, a stray file
        try FileManager.default.copyItem(at: dirs.v2, to: feed.appendingPathComponent(".0099.tmp-Ab12Cd"))
        try FileManager.default.copyItem(at: dirs.v2, to: feed.appendingPathComponent("0098.tmp"))
        try Data("notes".utf8).write(to: feed.appendingPathComponent("README"))

        let lines = LogLines()
        let state = ServingState(configuration: ServingConfiguration(models: [], batchWaitMicroseconds: 0, adminToken: "t",
                                                                     registry: root.path), log: { lines.append($0) })
        try await state.loadStartModels()
        XCTAssertTrue(state.ready)
        XCTAssertEqual(Array(state.versions.keys), ["home_feed"], "only the surface folders present are served")
        XCTAssertTrue(state.versions["home_feed"]!.hasPrefix("0001-"), "\(state.versions)")
        let v1Scores = try await scores(state)

        // a non-atomic copy: model.json whole, half of weights.safetensors -> never served
        let v3 = feed.appendingPathComponent("0003")
        let weights = try Data(contentsOf: dirs.v2.appendingPathComponent(ModelDirectoryFile.weights))
        try FileManager.default.createDirectory(at: v3, withIntermediateDirectories: false)
        try FileManager.default.copyItem(at: dirs.v2.appendingPathComponent(ModelDirectoryFile.config),
                                         to: v3.appendingPathComponent(ModelDirectoryFile.config))
        try weights.prefix(weights.count / 2).write(to: v3.appendingPathComponent(ModelDirectoryFile.weights))
        // a version that fails to load: whole weights, model.json cut short
        let v2 = feed.appendingPathComponent("0002")
        try FileManager.default.copyItem(at: dirs.v2, to: v2)
        let config = try Data(contentsOf: v2.appendingPathComponent(ModelDirectoryFile.config))
        try config.prefix(config.count / 2).write(to: v2.appendingPathComponent(ModelDirectoryFile.config))
        for _ in 0..<3 { await state.pollRegistry() }
        XCTAssertTrue(state.versions["home_feed"]!.hasPrefix("0001-"), "kept the previous version: \(state.versions)")
        let scoresDuring = try await scores(state)
        XCTAssertEqual(scoresDuring, v1Scores)
        XCTAssertEqual(lines.matching("home_feed/0003: incomplete").count, 1, "logged once, not every scan:\n\(lines.all)")
        XCTAssertTrue(lines.matching("home_feed/0003: incomplete")[0].contains("truncated"), lines.all)
        XCTAssertEqual(lines.matching("home_feed/0002: failed to load").count, 1, lines.all)
        var text = state.metrics.render()
        XCTAssertTrue(text.contains(#"braid_model_lifecycle_total{action="registry",surface="home_feed",result="incomplete"} 1"#), text)
        XCTAssertTrue(text.contains(#"braid_model_lifecycle_total{action="registry",surface="home_feed",result="error"} 1"#), text)
        XCTAssertTrue(lines.matching(".tmp").isEmpty && lines.matching("README").isEmpty, lines.all)

        // the copy completes: the files changed, so 0003 is checked again and served
        try weights.write(to: v3.appendingPathComponent(ModelDirectoryFile.weights))
        await state.pollRegistry()
        XCTAssertTrue(state.versions["home_feed"]!.hasPrefix("0003-"), "\(state.versions)")
        let v3Scores = try await scores(state)
        XCTAssertNotEqual(v3Scores, v1Scores, "v2's calibration scores differently")

        // rollback pins 0001 against 0003 (and the still broken 0002)
        XCTAssertTrue(try state.rollback(surface: "home_feed").hasPrefix("0001-"))
        XCTAssertEqual(state.pinned, ["home_feed": "0003"])
        await state.pollRegistry()
        XCTAssertTrue(state.versions["home_feed"]!.hasPrefix("0001-"), "pinned: \(state.versions)")
        let pinnedScores = try await scores(state)
        XCTAssertEqual(pinnedScores, v1Scores)
        // a newer version ends the pin
        try dirs.model.save(directory: feed.appendingPathComponent("0004"))
        await state.pollRegistry()
        XCTAssertTrue(state.versions["home_feed"]!.hasPrefix("0004-"), "\(state.versions)")
        XCTAssertEqual(state.pinned, [String: String]())
        // rollback goes to the version served before 0004 (0001, not 0003); unpin: back to
        // the newest (0004) without loading it again
        XCTAssertTrue(try state.rollback(surface: "home_feed").hasPrefix("0001-"))
        XCTAssertEqual(state.pinned, ["home_feed": "0004"])
        await state.pollRegistry()
        XCTAssertTrue(state.versions["home_feed"]!.hasPrefix("0001-"))
        XCTAssertTrue(try state.unpin(surface: "home_feed"))
        XCTAssertFalse(try state.unpin(surface: "home_feed"))
        let loadsBefore = lines.matching("registry: home_feed serves").count
        await state.pollRegistry()
        XCTAssertTrue(state.versions["home_feed"]!.hasPrefix("0004-"))
        XCTAssertEqual(lines.matching("registry: home_feed serves").count, loadsBefore + 1)
        text = state.metrics.render()
        XCTAssertTrue(text.contains(#"braid_model_info{surface="home_feed",version="\#(state.versions["home_feed"]!)"} 1.0"#), text)
        XCTAssertEqual(text.components(separatedBy: "braid_model_info{").count - 1, 1, "only the serving version's series:\n\(text)")
        XCTAssertTrue(text.contains(#"braid_model_pinned{surface="home_feed"} 0.0"#), text)

        // one unified directory serving two surfaces through symlinks is loaded once
        let unified = dirs.root.appendingPathComponent("shared/u5")
        try dirs.model.save(directory: unified)
        for surface in ["search", "related_pins"] {
            let folder = root.appendingPathComponent(surface)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: folder.appendingPathComponent("0005").path, withDestinationPath: unified.path)
        }
        // a surface folder whose version does not serve that surface is refused
        try FileManager.default.createDirectory(at: root.appendingPathComponent("nope"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: dirs.v1, to: root.appendingPathComponent("nope/0001"))
        await state.pollRegistry()
        XCTAssertTrue(state.versions["search"]!.hasPrefix("0005-") && state.versions["related_pins"]!.hasPrefix("0005-"), "\(state.versions)")
        XCTAssertTrue(state.serving("search")! === state.serving("related_pins")!, "one load for both surfaces")
        XCTAssertNil(state.versions["nope"])
        XCTAssertTrue(lines.matching("registry: nope/0001: serves").first?.contains("not nope") ?? false, lines.all)
    }

    /// Shadow scoring: every request (share 1) is scored by v2 too; the exported mean |diff|
    /// equals the one computed from the two engines directly.
    func testShadowScoringExportsTheDifference() async throws {
        let dirs = try ModelDirs()
        let state = ServingState(configuration: ServingConfiguration(models: [dirs.v1.path], batchWaitMicroseconds: 0,
                                                                     shadows: ["home_feed": dirs.v2.path], shadowShare: 1),
                                 log: { _ in })
        try await state.loadStartModels()
        let bodies = (0..<5).map { scoreBody(users: 2, firstUser: $0, candidates: 3) }
        var expected = 0.0, rows = 0
        let live = InferenceEngine(model: try BraidModel.load(directory: dirs.v1), maxUniqueUsers: 256)
        let shadow = InferenceEngine(model: try BraidModel.load(directory: dirs.v2), maxUniqueUsers: 256)
        for body in bodies {
            let (reply, _) = await state.score(body: Data(body.utf8))
            XCTAssertEqual(reply.status, 200, reply.body)
            let a = try live.score(body: Data(body.utf8)), b = try shadow.score(body: Data(body.utf8))
            let k = a.tasks.firstIndex(of: "click")!
            for n in 0..<(a.probabilities.count / a.tasks.count) {
                expected += abs(a.probabilities[n * a.tasks.count + k] - b.probabilities[n * b.tasks.count + k])
                rows += 1
            }
        }
        let shadowVersion = state.shadows["home_feed"]!.model.version
        await state.finishShadows()  // the shadow runs off the response path: wait until it is done
        let text = state.metrics.render()
        XCTAssertTrue(text.contains(#"braid_shadow_requests_total{surface="home_feed",version="\#(shadowVersion)",result="ok"} 5"#), text)
        XCTAssertTrue(text.contains(#"braid_shadow_rows_total{surface="home_feed",task="click",version="\#(shadowVersion)"} \#(rows)"#), text)
        let sum = try XCTUnwrap(metricValue(text, #"braid_shadow_abs_diff_sum{surface="home_feed",task="click",version="\#(shadowVersion)"}"#))
        XCTAssertGreaterThan(expected, 0.01, "v2's calibration differs")
        // float32 scoring: merged batches may differ from lone requests in the last bits
        XCTAssertEqual(sum, expected, accuracy: 1e-6 * Double(rows))
        let liveVersion = state.versions["home_feed"]!
        for (version, role) in [(liveVersion, "live"), (shadowVersion, "shadow")] {
            let n = metricValue(text, #"braid_predicted_rows_total{surface="home_feed",task="click",version="\#(version)",role="\#(role)"}"#)
            XCTAssertEqual(n, Double(rows), "\(role) rows\n\(text)")
        }
    }

    /// `--shadow home_feed=0002` with a registry: the candidate folder is the shadow and is
    /// never served by the watcher, though it is the newest version.
    func testRegistryShadowVersionIsNotServed() async throws {
        let dirs = try ModelDirs()
        let (root, _) = try dirs.registry([("0001", dirs.v1), ("0002", dirs.v2)])
        let state = ServingState(configuration: ServingConfiguration(models: [], batchWaitMicroseconds: 0, registry: root.path,
                                                                     shadows: ["home_feed": "0002"], shadowShare: 0.5),
                                 log: { _ in })
        try await state.loadStartModels()
        await state.pollRegistry()
        XCTAssertTrue(state.versions["home_feed"]!.hasPrefix("0001-"), "\(state.versions)")
        let shadowVersion = state.shadows["home_feed"]!.model.version
        XCTAssertTrue(shadowVersion.hasPrefix("0002-"), shadowVersion)
        for user in 0..<4 {
            let (reply, _) = await state.score(body: Data(scoreBody(firstUser: user).utf8))
            XCTAssertEqual(reply.status, 200, reply.body)
        }
        await state.finishShadows()
        let text = state.metrics.render()
        XCTAssertEqual(metricValue(text, #"braid_shadow_requests_total{surface="home_feed",version="\#(shadowVersion)",result="ok"}"#), 2,
                       "share 0.5 of 4 requests\n\(text)")
    }

    /// The scores of one fixed body (all candidates, all tasks).
    private func scores(_ state: ServingState) async throws -> [Double] {
        let (reply, _) = await state.score(body: Data(scoreBody(users: 2, candidates: 3).utf8))
        XCTAssertEqual(reply.status, 200, reply.body)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [String: Any])
        let lists = try XCTUnwrap(json["scores"] as? [[[String: Double]]])
        return lists.flatMap { $0.flatMap { $0.sorted { $0.key < $1.key }.map(\.value) } }
    }
}

/// Log lines collected from a `ServingState`.
final class LogLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.lock(); lines.append(line); lock.unlock() }
    var all: String { lock.lock(); defer { lock.unlock() }; return lines.joined(separator: "\n") }
    func matching(_ s: String) -> [String] { lock.lock(); defer { lock.unlock() }; return lines.filter { $0.contains(s) } }
}

/// The value of the sample `series` (name{labels}) in Prometheus text.
func metricValue(_ text: String, _ series: String) -> Double? {
    for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
        return Double(line.dropFirst(series.count + 1))
    }
    return nil
}

import Checkpoint
import Foundation
import TestSupport
import XCTest

/// `braid serve` as users run it: the release binary that `swift test` builds next to this
/// test bundle (or $BRAID_BINARY) on 127.0.0.1, a registry it watches, scoring over HTTP, a
/// non-atomic copy it must not serve, rollback, unpin, and SIGTERM while requests are in
/// flight. Every wait is for an event (a log line, a metric, a version) with a generous
/// deadline, never a fixed sleep; "still serving X" is checked after two more registry scans.
final class ServeCLITests: XCTestCase {
    func testBinaryServesRegistryRollsBackAndDrainsOnSIGTERM() async throws {
        let dirs = try ModelDirs()
        let (root, feed) = try dirs.registry([("0001", dirs.v1)])

        let server = try ServerProcess(arguments: ["serve", "--registry", root.path, "--port", "0", "--admin-token", "t",
                                                   "--poll-ms", "50"])
        defer { server.kill() }
        let port = try await server.port()
        let client = Client(port: port)
        let auth = ["Authorization": "Bearer t"]
        func version() async throws -> String {
            let r = try await client.request("GET", "/v1/models")
            return ((r.json as? [String: Any])?["models"] as? [String: String])?["home_feed"] ?? "<none: \(r.text)>"
        }
        func metric(_ series: String) async throws -> Double {
            metricValue(try await client.request("GET", "/metrics").text, series) ?? 0
        }
        /// Waits until two more registry scans have completed.
        func twoScans() async throws {
            let scans = try await metric("braid_registry_scans_total")
            try await eventually("two registry scans after \(scans)", server) { try await metric("braid_registry_scans_total") >= scans + 2 }
        }

        var r = try await client.request("POST", "/v1/score", body: scoreBody())
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertTrue(((r.json as? [String: Any])?["model"] as? [String: String])?["version"]?.hasPrefix("0001-") ?? false, r.text)

        // a version appears by atomic rename: loaded, warmed, swapped in
        try FileManager.default.copyItem(at: dirs.v2, to: feed.appendingPathComponent(".0002.tmp-x"))
        try FileManager.default.moveItem(at: feed.appendingPathComponent(".0002.tmp-x"), to: feed.appendingPathComponent("0002"))
        try await eventually("0002 serves", server) { try await version().hasPrefix("0002-") }
        r = try await client.request("POST", "/v1/score", body: scoreBody())
        XCTAssertTrue(((r.json as? [String: Any])?["model"] as? [String: String])?["version"]?.hasPrefix("0002-") ?? false, r.text)

        // a non-atomic copy (half a weights file) is logged, counted and never served
        let v3 = feed.appendingPathComponent("0003")
        try FileManager.default.createDirectory(at: v3, withIntermediateDirectories: false)
        try FileManager.default.copyItem(at: dirs.v1.appendingPathComponent(ModelDirectoryFile.config),
                                         to: v3.appendingPathComponent(ModelDirectoryFile.config))
        let weights = try Data(contentsOf: dirs.v1.appendingPathComponent(ModelDirectoryFile.weights))
        try weights.prefix(weights.count / 2).write(to: v3.appendingPathComponent(ModelDirectoryFile.weights))
        try await eventually("0003 logged as incomplete", server) { server.stderr.contains("home_feed/0003: incomplete") }
        try await twoScans()
        let kept = try await version()
        XCTAssertTrue(kept.hasPrefix("0002-"), "the previous version keeps serving: \(kept)")
        let incomplete = try await metric(#"braid_model_lifecycle_total{action="registry",surface="home_feed",result="incomplete"}"#)
        XCTAssertEqual(incomplete, 1, "counted once, not once per scan")

        // rollback pins 0001 against 0002; unpin goes back to the newest complete version
        r = try await client.request("POST", "/admin/rollback", body: #"{"surface": "home_feed"}"#, headers: auth)
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertEqual((r.json as? [String: Any])?["pinned_until_after"] as? String, "0002", r.text)
        try await twoScans()
        let pinned = try await version(), pinGauge = try await metric(#"braid_model_pinned{surface="home_feed"}"#)
        XCTAssertTrue(pinned.hasPrefix("0001-"), "pinned: \(pinned)")
        XCTAssertEqual(pinGauge, 1)
        r = try await client.request("POST", "/admin/unpin", body: #"{"surface": "home_feed"}"#, headers: auth)
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertEqual((r.json as? [String: Any])?["was_pinned"] as? Bool, true, r.text)
        try await eventually("0002 serves again after unpin", server) { try await version().hasPrefix("0002-") }

        // SIGTERM: requests already accepted (their handlers running: bodies half sent) are
        // answered after the listening socket closed; clients sending meanwhile get 200 or a
        // refused connection, never an error status; the process exits 0.
        let held = try (0..<3).map { k in try HeldRequest(port: port, body: Array(scoreBody(users: 2, firstUser: 100 * k).utf8)) }
        try await eventually("3 requests in flight", server) {
            try await metric(#"braid_http_requests_in_flight{route="/v1/score"}"#) == 3
        }
        let results = ResultsBox(), stop = Flag()
        let loops = (0..<4).map { k in
            Task.detached {
                var i = 0
                while !stop.isSet {
                    let body = Array(scoreBody(users: 2, firstUser: k * 1000 + i, candidates: 20).utf8)
                    do {
                        let (status, _) = try Client.exchange(port: port, method: "POST", uri: "/v1/score", body: body, headers: [:])
                        results.add(status)
                    } catch {
                        results.add(-1)  // refused, or closed by the server before it read the request
                    }
                    i += 1
                }
            }
        }
        try await eventually("load running", server) { results.all.filter { $0 == 200 }.count >= 20 }
        server.terminate()
        try await eventually("the listening socket closed after SIGTERM", server) { !Client.canConnect(port: port) }
        let answers = try held.map { try $0.finish() }
        let status = try await server.exit()
        stop.set()
        for loop in loops { await loop.value }
        XCTAssertEqual(answers.map(\.status), [200, 200, 200], "requests in flight at SIGTERM: \(answers)")
        for answer in answers { XCTAssertTrue(answer.text.contains(#""scores": [["#), answer.text) }
        XCTAssertEqual(status, 0, "exit status after SIGTERM\n\(server.stderr)")
        XCTAssertTrue(server.stderr.contains("stopped (in-flight requests answered)"), server.stderr)
        XCTAssertTrue(results.all.allSatisfy { $0 == 200 || $0 == -1 }, "no error statuses: \(Set(results.all))")
    }
}

/// Polls `condition` every 50 ms until it holds; fails (with the server's log) after 120 s.
func eventually(_ what: String, _ server: ServerProcess, _ condition: () async throws -> Bool) async throws {
    for _ in 0..<2400 {
        if try await condition() { return }
        try await Task.sleep(nanoseconds: 50_000_000)
    }
    throw Failure(message: "timed out waiting for: \(what)\n\(server.stderr)")
}

/// A scoring request whose head and first half of body are sent at once and the rest only
/// on `finish()`: the server has accepted it and runs its handler, which waits for the body.
final class HeldRequest {
    let fd: Int32
    let rest: [UInt8]

    init(port: Int, body: [UInt8]) throws {
        fd = try Client.connect(port: port)
        let head = "POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.count)\r\n\r\n"
        let half = body.count / 2
        rest = Array(body[half...])
        try Client.sendAll(fd, Array(head.utf8) + body[..<half])
    }

    /// Sends the rest of the body and reads the answer.
    func finish() throws -> (status: Int, text: String) {
        defer { close(fd) }
        try Client.sendAll(fd, rest)
        return try Client.readResponse(fd, what: "the held request")
    }
}

/// The `braid` binary started with `arguments`, its stderr collected.
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    private let lock = NSLock()
    private var err = ""

    static var binary: URL {
        if let path = ProcessInfo.processInfo.environment["BRAID_BINARY"] { return URL(fileURLWithPath: path) }
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("braid")
    }

    init(arguments: [String]) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary.path) else {
            throw Failure(message: "no braid binary at \(Self.binary.path): swift test builds it next to the test bundle; or set BRAID_BINARY")
        }
        process.executableURL = Self.binary
        process.arguments = arguments
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.lock(); self.err += String(decoding: data, as: UTF8.self); self.lock.unlock()
        }
        try process.run()
    }

    var stderr: String { lock.lock(); defer { lock.unlock() }; return err }

    /// The port from "listening on http://127.0.0.1:PORT".
    func port() async throws -> Int {
        var port: Int?
        try await eventually("braid serve listening", self) {
            if let range = stderr.range(of: #"listening on http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                port = Int(stderr[range].split(separator: ":").last!)
            }
            guard port != nil || process.isRunning else { throw Failure(message: "braid serve exited:\n\(stderr)") }
            return port != nil
        }
        return port!
    }

    func terminate() { process.terminate() }  // SIGTERM

    /// The exit status, once the process has exited.
    func exit() async throws -> Int32 {
        try await eventually("braid serve exits", self) { !process.isRunning }
        return process.terminationStatus
    }

    func kill() { if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) } }
}

struct Failure: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

final class ResultsBox: @unchecked Sendable {
    private let lock = NSLock()
    private var statuses: [Int] = []
    func add(_ status: Int) { lock.lock(); statuses.append(status); lock.unlock() }
    var all: [Int] { lock.lock(); defer { lock.unlock() }; return statuses }
}

final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}

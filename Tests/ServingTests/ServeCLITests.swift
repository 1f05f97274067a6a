import Checkpoint
import Foundation
import TestSupport
import XCTest

/// `braid serve` as users run it: the real binary (built next to this test bundle, or
/// $BRAID_BINARY) on 127.0.0.1, a registry it watches, scoring over HTTP, a non-atomic copy
/// it must not serve, rollback, unpin, and SIGTERM while requests are in flight.
final class ServeCLITests: XCTestCase {
    func testBinaryServesRegistryRollsBackAndDrainsOnSIGTERM() async throws {
        let dirs = try ModelDirs()
        let root = dirs.root.appendingPathComponent("registry")
        let feed = root.appendingPathComponent("home_feed")
        try FileManager.default.createDirectory(at: feed, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: dirs.v1, to: feed.appendingPathComponent("0001"))

        // every scoring request waits 100 ms for neighbours, so some are in flight at SIGTERM
        let server = try ServerProcess(arguments: ["serve", "--registry", root.path, "--port", "0", "--admin-token", "t",
                                                   "--poll-ms", "100", "--batch-wait-us", "100000"])
        defer { server.kill() }
        let port = try await server.port()
        let client = Client(port: port)
        let auth = ["Authorization": "Bearer t"]
        func version() async throws -> String {
            let r = try await client.request("GET", "/v1/models")
            return ((r.json as? [String: Any])?["models"] as? [String: String])?["home_feed"] ?? "<none: \(r.text)>"
        }
        func waitFor(_ prefix: String) async throws {
            for _ in 0..<300 where !(try await version()).hasPrefix(prefix) { try await Task.sleep(nanoseconds: 100_000_000) }
            let v = try await version()
            XCTAssertTrue(v.hasPrefix(prefix), "expected \(prefix)*, serving \(v)\n\(server.stderr)")
        }

        var r = try await client.request("POST", "/v1/score", body: scoreBody())
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertTrue(((r.json as? [String: Any])?["model"] as? [String: String])?["version"]?.hasPrefix("0001-") ?? false, r.text)

        // a version appears by atomic rename: hot-swapped in
        try FileManager.default.copyItem(at: dirs.v2, to: feed.appendingPathComponent(".0002.tmp-x"))
        try FileManager.default.moveItem(at: feed.appendingPathComponent(".0002.tmp-x"), to: feed.appendingPathComponent("0002"))
        try await waitFor("0002-")

        // a non-atomic copy (half a weights file) is never served, and is logged
        let v3 = feed.appendingPathComponent("0003")
        try FileManager.default.createDirectory(at: v3, withIntermediateDirectories: false)
        try FileManager.default.copyItem(at: dirs.v1.appendingPathComponent(ModelDirectoryFile.config),
                                         to: v3.appendingPathComponent(ModelDirectoryFile.config))
        let weights = try Data(contentsOf: dirs.v1.appendingPathComponent(ModelDirectoryFile.weights))
        try weights.prefix(weights.count / 2).write(to: v3.appendingPathComponent(ModelDirectoryFile.weights))
        for _ in 0..<100 where !server.stderr.contains("home_feed/0003: incomplete") { try await Task.sleep(nanoseconds: 50_000_000) }
        XCTAssertTrue(server.stderr.contains("home_feed/0003: incomplete"), server.stderr)
        try await Task.sleep(nanoseconds: 500_000_000)
        XCTAssertTrue(try await version().hasPrefix("0002-"))

        // rollback pins 0001; unpin goes back to the newest complete version
        r = try await client.request("POST", "/admin/rollback", body: #"{"surface": "home_feed"}"#, headers: auth)
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertEqual((r.json as? [String: Any])?["pinned_until_after"] as? String, "0002", r.text)
        try await Task.sleep(nanoseconds: 500_000_000)
        XCTAssertTrue(try await version().hasPrefix("0001-"), "pinned")
        r = try await client.request("POST", "/admin/unpin", body: #"{"surface": "home_feed"}"#, headers: auth)
        XCTAssertEqual(r.status, 200, r.text)
        try await waitFor("0002-")
        r = try await client.request("GET", "/metrics")
        XCTAssertTrue(r.text.contains(#"braid_model_lifecycle_total{action="registry",surface="home_feed",result="incomplete"} 1"#), r.text)

        // SIGTERM under load: every request sent before it is answered with 200; exit 0
        let clock = MonotonicClock.shared
        let results = ResultsBox()
        let stop = Flag()
        let loops = (0..<6).map { k in
            Task.detached {
                var i = 0
                while !stop.isSet {
                    let body = Array(scoreBody(users: 2, firstUser: k * 1000 + i, candidates: 50).utf8)
                    let sent = clock.now
                    do {
                        let (status, _) = try Client.exchange(port: port, method: "POST", uri: "/v1/score", body: body, headers: [:])
                        results.add(sent: sent, status: status)
                    } catch {
                        results.add(sent: sent, status: -1)   // refused or closed without an answer
                        if clock.now > 0, server.signalled != nil { break }
                    }
                    i += 1
                }
            }
        }
        try await Task.sleep(nanoseconds: 700_000_000)
        server.terminate()
        let signalled = server.signalled!
        let status = try await server.exit()
        stop.set()
        for loop in loops { await loop.value }
        XCTAssertEqual(status, 0, "exit status after SIGTERM\n\(server.stderr)")
        XCTAssertTrue(server.stderr.contains("stopped (in-flight requests answered)"), server.stderr)
        let all = results.all
        let before = all.filter { $0.sent < signalled - 0.02 }
        XCTAssertGreaterThan(before.count, 10)
        XCTAssertEqual(before.filter { $0.status != 200 }.count, 0, "requests sent before SIGTERM that failed: \(before.filter { $0.status != 200 })")
        let inFlight = before.filter { $0.sent > signalled - 0.1 }
        XCTAssertGreaterThan(inFlight.count, 0, "some requests were in flight (100 ms batch wait) when SIGTERM came")
        XCTAssertTrue(all.allSatisfy { $0.status == 200 || $0.status == -1 }, "no error statuses: \(Set(all.map(\.status)))")
    }
}

/// The `braid` binary started with `arguments`, its stderr collected.
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    private let lock = NSLock()
    private var err = ""
    private(set) var signalled: Double?

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

    /// The port from "listening on http://127.0.0.1:PORT" (waits up to 120 s).
    func port() async throws -> Int {
        for _ in 0..<1200 {
            if let range = stderr.range(of: #"listening on http://127\.0\.0\.1:(\d+)"#, options: .regularExpression),
               let port = Int(stderr[range].split(separator: ":").last!) {
                return port
            }
            guard process.isRunning else { break }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        throw Failure(message: "braid serve did not start:\n\(stderr)")
    }

    func terminate() {
        lock.lock(); signalled = MonotonicClock.shared.now; lock.unlock()
        process.terminate()  // SIGTERM
    }

    /// The exit status (waits up to 60 s, then kills).
    func exit() async throws -> Int32 {
        for _ in 0..<600 where process.isRunning { try await Task.sleep(nanoseconds: 100_000_000) }
        if process.isRunning { kill(); return -9 }
        return process.terminationStatus
    }

    func kill() { if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) } }
}

struct Failure: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Seconds since a fixed start (monotonic).
struct MonotonicClock: Sendable {
    static let shared = MonotonicClock()
    let start = DispatchTime.now().uptimeNanoseconds
    init() {}
    var now: Double { Double(DispatchTime.now().uptimeNanoseconds - MonotonicClock.shared.start) / 1e9 }
}

final class ResultsBox: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [(sent: Double, status: Int)] = []
    func add(sent: Double, status: Int) { lock.lock(); results.append((sent, status)); lock.unlock() }
    var all: [(sent: Double, status: Int)] { lock.lock(); defer { lock.unlock() }; return results }
}

final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}

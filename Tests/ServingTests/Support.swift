import Foundation
import Hummingbird
import Model
import Schema
@testable import Serving
import TestSupport
import XCTest

/// Model directories for the tests: `v1` is the late_fullrank fixture saved to a temp dir,
/// `v2` the same weights with a different calibration (another version, other scores).
final class ModelDirs {
    let root: URL
    let v1: URL
    let v2: URL
    /// The late_fullrank fixture model (v1's weights and calibration).
    let model: BraidModel

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("braid-serving-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        model = try BraidModel.load(directory: Fixtures.url("late_fullrank"))
        v1 = root.appendingPathComponent("v1")
        v2 = root.appendingPathComponent("v2")
        try model.save(directory: v1)
        var config = model.config
        config.calibration["home_feed", default: [:]]["click"] = PlattPair(a: 2, b: 0.5)
        try model.save(directory: v2, config: config)
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    /// A model registry under `root`: `registry/home_feed/<name>/` copied from each source
    /// directory of `versions`. Returns the registry and its home_feed folder.
    func registry(_ versions: [(name: String, source: URL)]) throws -> (root: URL, feed: URL) {
        let registry = root.appendingPathComponent("registry")
        let feed = registry.appendingPathComponent("home_feed")
        try FileManager.default.createDirectory(at: feed, withIntermediateDirectories: true)
        for (name, source) in versions { try FileManager.default.copyItem(at: source, to: feed.appendingPathComponent(name)) }
        return (registry, feed)
    }
}

/// A scoring body for late_fullrank (surfaces home_feed, search, related_pins): `users`
/// requests, request r with user "u<r + firstUser>" and `candidates` candidates.
func scoreBody(surface: String = "home_feed", users: Int = 1, firstUser: Int = 0, candidates: Int = 3) -> String {
    let requests = (0..<users).map { r -> String in
        let u = r + firstUser
        let cands = (0..<candidates).map { c in
            #"{"ad_id": "ad\#(c)", "advertiser_id": \#(c % 5), "ad_hist_ctr": \#(Double(c) * 0.01)}"#
        }.joined(separator: ", ")
        return #"{"user": {"user_id": "u\#(u)", "user_country": "US", "user_age": \#(20 + u % 40), "#
            + #""seq_items": ["a\#(u % 7)", "a3"], "seq_actions": [1, 2]}, "context": {"query_ad_sim": 0.5}, "#
            + #""candidates": [\#(cands)]}"#
    }.joined(separator: ", ")
    return #"{"surface": "\#(surface)", "requests": [\#(requests)]}"#
}

/// Runs the app of `state` on 127.0.0.1 (an ephemeral port) for the duration of `body`.
func withServer<T>(_ state: ServingState, _ body: (Int) async throws -> T) async throws -> T {
    let port = PortBox()
    let app = ServingApp.application(state: state) { port.set($0) }
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await app.run() }
        let value: T
        do {
            value = try await body(await port.wait())
        } catch {
            group.cancelAll()
            throw error
        }
        group.cancelAll()
        return value
    }
}

final class PortBox: @unchecked Sendable {
    private let lock = NSLock()
    private var port: Int?
    private var waiters: [CheckedContinuation<Int, Never>] = []
    func set(_ p: Int) {
        lock.lock(); port = p; let w = waiters; waiters = []; lock.unlock()
        for c in w { c.resume(returning: p) }
    }
    func wait() async -> Int {
        await withCheckedContinuation { c in
            lock.lock()
            if let port { lock.unlock(); c.resume(returning: port) } else { waiters.append(c); lock.unlock() }
        }
    }
}

/// A minimal HTTP/1.1 client for the tests: one connection to 127.0.0.1:port per request
/// (`Connection: close`), blocking socket I/O run off the cooperative executors.
struct Client: Sendable {
    let port: Int

    init(port: Int) { self.port = port }

    func request(_ method: String, _ uri: String, body: String? = nil, headers: [String: String] = [:]) async throws
        -> (status: Int, text: String, json: Any?)
    {
        let port = self.port
        return try await offload {
            let (status, text) = try Self.exchange(port: port, method: method, uri: uri, body: Array((body ?? "").utf8),
                                                   headers: headers)
            return (status, text, try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]))
        }
    }

    static func exchange(port: Int, method: String, uri: String, body: [UInt8], headers: [String: String]) throws -> (Int, String) {
        let fd = try connect(port: port)
        defer { close(fd) }
        var head = "\(method) \(uri) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: \(body.count)\r\n"
        if !body.isEmpty { head += "Content-Type: application/json\r\n" }
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        try? sendAll(fd, Array((head + "\r\n").utf8) + body)  // the server may answer (413) and close before reading everything
        return try readResponse(fd, what: "\(method) \(uri)")
    }

    /// A TCP connection to 127.0.0.1:port (30 s receive timeout).
    static func connect(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(message: "socket failed") }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw Failure(message: "connect to 127.0.0.1:\(port) failed")
        }
        return fd
    }

    /// Whether a TCP connection to 127.0.0.1:port is accepted (closed again at once).
    static func canConnect(port: Int) -> Bool {
        guard let fd = try? connect(port: port) else { return false }
        close(fd)
        return true
    }

    static func sendAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure(message: "send failed after \(sent) of \(bytes.count) bytes") }
            sent += n
        }
    }

    /// Reads until the server closes the connection; the status and the (de-chunked) body.
    static func readResponse(_ fd: Int32, what: String) throws -> (Int, String) {
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            response += buffer[0..<n]
        }
        let text = String(decoding: response, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n"), let status = Int(text.split(separator: " ").dropFirst().first ?? "") else {
            throw Failure(message: "no HTTP response to \(what): \(text.prefix(200))")
        }
        let headText = text[..<split.lowerBound].lowercased()
        var bodyText = String(text[split.upperBound...])
        if headText.contains("transfer-encoding: chunked") {  // de-chunk
            var rest = Substring(bodyText), plain = ""
            while let line = rest.range(of: "\r\n"), let size = Int(rest[..<line.lowerBound], radix: 16), size > 0 {
                let start = rest.utf8.index(line.upperBound, offsetBy: 0)
                let chunk = rest.utf8[start...].prefix(size)
                plain += String(decoding: chunk, as: UTF8.self)
                rest = Substring(rest.utf8[rest.utf8.index(start, offsetBy: size)...].dropFirst(2))
            }
            bodyText = plain
        }
        return (status, bodyText)
    }
}

/// `{"error": {"message": m}}` -> m.
func errorMessage(_ json: Any?) -> String? {
    ((json as? [String: Any])?["error"] as? [String: Any])?["message"] as? String
}

/// max |a - b| over two equally long arrays (infinity when the lengths differ).
func maxAbsDiff(_ a: [Double], _ b: [Double]) -> Double {
    guard a.count == b.count else { return .infinity }
    return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

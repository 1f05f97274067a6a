import Foundation

/// The service's counters and histograms, rendered as Prometheus text (exposition format
/// 0.0.4) by `render()`. Thread-safe; label values are surfaces this server serves (or
/// `unknown`), statuses and versions, never free client text.
public final class ServingMetrics: @unchecked Sendable {
    struct Histogram {
        let bounds: [Double]
        var counts: [Int]
        var sum = 0.0
        var count = 0
        init(bounds: [Double]) { self.bounds = bounds; counts = [Int](repeating: 0, count: bounds.count) }
        mutating func observe(_ x: Double) {
            for (i, b) in bounds.enumerated() where x <= b { counts[i] += 1 }
            sum += x
            count += 1
        }
    }

    static let latencyBounds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
    static let batchRequestBounds: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256]
    static let batchCandidateBounds: [Double] = [1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000]
    static let userBounds: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]

    private let lock = NSLock()
    private var requests: [[String]: Int] = [:]          // [route, surface, status]
    private var latency: [String: Histogram] = [:]       // surface (scoring, status 200)
    private var batchRequests: [String: Histogram] = [:]
    private var batchCandidates: [String: Histogram] = [:]
    private var batchUsers: [String: Histogram] = [:]
    private var batchSeconds: [String: Histogram] = [:]
    private var ignoredKeys: [String: Int] = [:]
    private var modelVersions: [String: String] = [:]
    private var lifecycle: [[String]: Int] = [:]         // [action, surface, result]

    public init() {}

    private func locked<T>(_ body: () -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body()
    }

    func request(route: String, surface: String, status: Int, seconds: Double?) {
        locked {
            requests[[route, surface, String(status)], default: 0] += 1
            if let seconds { latency[surface, default: Histogram(bounds: Self.latencyBounds)].observe(seconds) }
        }
    }

    func batch(surface: String, requests n: Int, candidates: Int, users: Int, seconds: Double) {
        locked {
            batchRequests[surface, default: Histogram(bounds: Self.batchRequestBounds)].observe(Double(n))
            batchCandidates[surface, default: Histogram(bounds: Self.batchCandidateBounds)].observe(Double(candidates))
            batchUsers[surface, default: Histogram(bounds: Self.userBounds)].observe(Double(users))
            batchSeconds[surface, default: Histogram(bounds: Self.latencyBounds)].observe(seconds)
        }
    }

    func ignored(surface: String, keys: Int) {
        guard keys > 0 else { return }
        locked { ignoredKeys[surface, default: 0] += keys }
    }

    func setVersions(_ versions: [String: String]) { locked { modelVersions = versions } }

    func lifecycle(action: String, surface: String, result: String) {
        locked { lifecycle[[action, surface, result], default: 0] += 1 }
    }

    /// Prometheus text exposition of everything recorded so far.
    public func render() -> String {
        locked {
            var out = ""
            func labels(_ pairs: [(String, String)]) -> String {
                "{" + pairs.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",") + "}"
            }
            func header(_ name: String, _ type: String, _ help: String) {
                out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            }
            func histogram(_ name: String, _ help: String, _ values: [String: Histogram]) {
                header(name, "histogram", help)
                for (surface, h) in values.sorted(by: { $0.key < $1.key }) {
                    for (b, c) in zip(h.bounds, h.counts) {
                        out += "\(name)_bucket\(labels([("surface", surface), ("le", Self.number(b))])) \(c)\n"
                    }
                    out += "\(name)_bucket\(labels([("surface", surface), ("le", "+Inf")])) \(h.count)\n"
                    out += "\(name)_sum\(labels([("surface", surface)])) \(Self.number(h.sum))\n"
                    out += "\(name)_count\(labels([("surface", surface)])) \(h.count)\n"
                }
            }
            header("braid_http_requests_total", "counter", "HTTP requests by route, surface (scoring only) and status.")
            for (k, v) in requests.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
                out += "braid_http_requests_total\(labels([("route", k[0]), ("surface", k[1]), ("status", k[2])])) \(v)\n"
            }
            header("braid_score_errors_total", "counter", "Scoring requests answered with an error status, by surface and status.")
            for (k, v) in requests.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) where k[0] == "/v1/score" && k[2] != "200" {
                out += "braid_score_errors_total\(labels([("surface", k[1]), ("status", k[2])])) \(v)\n"
            }
            histogram("braid_score_latency_seconds", "Latency of successful POST /v1/score requests (body read to response).", latency)
            histogram("braid_batch_requests", "HTTP scoring requests merged into one micro-batch.", batchRequests)
            histogram("braid_batch_candidates", "Candidate rows scored in one micro-batch.", batchCandidates)
            histogram("braid_batch_unique_users", "Distinct users in one micro-batch (the max_unique_users bound).", batchUsers)
            histogram("braid_batch_seconds", "Engine time of one micro-batch (merge, score, split).", batchSeconds)
            header("braid_ignored_keys_total", "counter", "Request keys that are not features of their object's side (SPEC 5).")
            for (s, v) in ignoredKeys.sorted(by: { $0.key < $1.key }) {
                out += "braid_ignored_keys_total\(labels([("surface", s)])) \(v)\n"
            }
            header("braid_model_info", "gauge", "The model version serving each surface (value 1).")
            for (s, v) in modelVersions.sorted(by: { $0.key < $1.key }) {
                out += "braid_model_info\(labels([("surface", s), ("version", v)])) 1\n"
            }
            header("braid_model_lifecycle_total", "counter", "Reloads and rollbacks by surface and result.")
            for (k, v) in lifecycle.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
                out += "braid_model_lifecycle_total\(labels([("action", k[0]), ("surface", k[1]), ("result", k[2])])) \(v)\n"
            }
            return out
        }
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }

    static func number(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : "\(x)"
    }
}

import CoreMetrics
import Foundation
import Model
import Prometheus

/// The service's metrics, recorded through swift-metrics (`Counter`, `FloatingPointCounter`,
/// `Timer`, `Recorder`, `Gauge`) into this server's own `PrometheusCollectorRegistry`
/// (swift-prometheus), and rendered as Prometheus text (exposition format 0.0.4) by
/// `render()`. Each `ServingState` owns one (no process-wide bootstrap, so tests can run
/// several servers). Label values are surfaces this server serves (or `unknown`), routes,
/// statuses, tasks and versions, never free client text. docs/SERVING.md lists every metric.
public final class ServingMetrics: @unchecked Sendable {
    /// Where the metrics live; `render()` emits it.
    public let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let lock = NSLock()
    private var versionGauges: [String: (version: String, gauge: CoreMetrics.Gauge)] = [:]   // surface ->
    private var pinnedGauges: [String: CoreMetrics.Gauge] = [:]

    static let latencyBuckets: [Duration] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
        .map { Duration.nanoseconds(Int64(($0 * 1e9).rounded())) }

    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = Self.latencyBuckets
        factory.valueHistogramBuckets = [
            "braid_batch_requests": [1, 2, 4, 8, 16, 32, 64, 128, 256],
            "braid_batch_candidates": [1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000],
            "braid_batch_unique_users": [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
        ]
        self.factory = factory
    }

    /// The text exposition of everything recorded so far.
    public func render() -> String { registry.emitToString() }

    /// One answered HTTP request: `braid_http_requests_total{route, surface, status}`, its
    /// latency in `braid_http_request_duration_seconds{route, surface}`, and for scoring
    /// errors `braid_score_errors_total{surface, status}` (400 bad input, 413 rejected).
    func request(route: String, surface: String, status: Int, seconds: Double) {
        CoreMetrics.Counter(label: "braid_http_requests_total",
                dimensions: [("route", route), ("surface", surface), ("status", String(status))], factory: factory).increment()
        CoreMetrics.Timer(label: "braid_http_request_duration_seconds", dimensions: [("route", route), ("surface", surface)], factory: factory)
            .recordNanoseconds(Int64((seconds * 1e9).rounded()))
        if route == "/v1/score" && status != 200 {
            CoreMetrics.Counter(label: "braid_score_errors_total", dimensions: [("surface", surface), ("status", String(status))],
                    factory: factory).increment()
        }
    }

    /// `braid_http_requests_in_flight{route}`: requests of `route` being handled now (body
    /// read, scored, not yet answered); `delta` +1 when one starts, -1 when it is answered.
    func inFlight(route: String, _ delta: Int) {
        let meter = CoreMetrics.Meter(label: "braid_http_requests_in_flight", dimensions: [("route", route)], factory: factory)
        if delta > 0 { meter.increment(by: Double(delta)) } else { meter.decrement(by: Double(-delta)) }
    }

    /// One completed scan of the model registry (`braid_registry_scans_total`).
    func registryScan() {
        CoreMetrics.Counter(label: "braid_registry_scans_total", factory: factory).increment()
    }

    /// One micro-batch: requests merged, candidate rows, distinct users, engine seconds.
    func batch(surface: String, requests n: Int, candidates: Int, users: Int, seconds: Double) {
        let labels = [("surface", surface)]
        CoreMetrics.Recorder(label: "braid_batch_requests", dimensions: labels, aggregate: true, factory: factory).record(n)
        CoreMetrics.Recorder(label: "braid_batch_candidates", dimensions: labels, aggregate: true, factory: factory).record(candidates)
        CoreMetrics.Recorder(label: "braid_batch_unique_users", dimensions: labels, aggregate: true, factory: factory).record(users)
        CoreMetrics.Timer(label: "braid_batch_seconds", dimensions: labels, factory: factory).recordNanoseconds(Int64((seconds * 1e9).rounded()))
    }

    /// The user-state cache of model `version` after a batch: hits, misses and evictions
    /// (counters, by the change since the previous batch), entries and bytes (gauges).
    func userCache(version: String, _ counts: (delta: UserStateCache.Statistics, now: UserStateCache.Statistics)) {
        let labels = [("version", version)]
        for (name, n) in [("hits", counts.delta.hits), ("misses", counts.delta.misses), ("evictions", counts.delta.evictions)] where n > 0 {
            CoreMetrics.Counter(label: "braid_user_cache_\(name)_total", dimensions: labels, factory: factory).increment(by: n)
        }
        CoreMetrics.Gauge(label: "braid_user_cache_entries", dimensions: labels, factory: factory).record(counts.now.entries)
        CoreMetrics.Gauge(label: "braid_user_cache_bytes", dimensions: labels, factory: factory).record(counts.now.bytes)
    }

    /// Keys of a body that are not features of their side (SPEC 5), per occurrence.
    func ignored(surface: String, keys: Int) {
        guard keys > 0 else { return }
        CoreMetrics.Counter(label: "braid_ignored_keys_total", dimensions: [("surface", surface)], factory: factory).increment(by: keys)
    }

    /// Sums of predicted probabilities and their row counts per surface, task, version and
    /// role (`live` or `shadow`): sum / rows is the mean predicted probability, to compare
    /// with the observed rate (calibration drift) and between versions. `probabilities` is
    /// [N, K] row-major over `tasks`.
    func predicted(surface: String, version: String, role: String, tasks: [String], probabilities: [Double]) {
        let K = tasks.count
        guard K > 0, !probabilities.isEmpty else { return }
        let rows = probabilities.count / K
        for (k, task) in tasks.enumerated() {
            var sum = 0.0
            for n in 0..<rows { sum += probabilities[n * K + k] }
            let labels = [("surface", surface), ("task", task), ("version", version), ("role", role)]
            CoreMetrics.FloatingPointCounter(label: "braid_predicted_probability_sum", dimensions: labels, factory: factory).increment(by: sum)
            CoreMetrics.Counter(label: "braid_predicted_rows_total", dimensions: labels, factory: factory).increment(by: rows)
        }
    }

    /// A shadow comparison of `rows` candidates: the sum over them of |live - shadow| per
    /// task (`braid_shadow_abs_diff_sum` / `braid_shadow_rows_total` = mean |diff|).
    func shadowDiff(surface: String, version: String, task: String, absDiffSum: Double, rows: Int) {
        let labels = [("surface", surface), ("task", task), ("version", version)]
        CoreMetrics.FloatingPointCounter(label: "braid_shadow_abs_diff_sum", dimensions: labels, factory: factory).increment(by: absDiffSum)
        CoreMetrics.Counter(label: "braid_shadow_rows_total", dimensions: labels, factory: factory).increment(by: rows)
    }

    /// A request offered to a shadow version: `result` is ok, error (the shadow refused or
    /// failed it) or skipped (too many shadow requests in flight).
    func shadowRequest(surface: String, version: String, result: String) {
        CoreMetrics.Counter(label: "braid_shadow_requests_total", dimensions: [("surface", surface), ("version", version), ("result", result)],
                factory: factory).increment()
    }

    /// `braid_model_info{surface, version} 1` for the versions now serving; the series of a
    /// version that stopped serving a surface is removed.
    func setVersions(_ versions: [String: String]) {
        lock.lock()
        defer { lock.unlock() }
        for (surface, old) in versionGauges where versions[surface] != old.version {
            old.gauge.destroy()
            versionGauges[surface] = nil
        }
        for (surface, version) in versions where versionGauges[surface] == nil {
            let gauge = CoreMetrics.Gauge(label: "braid_model_info", dimensions: [("surface", surface), ("version", version)], factory: factory)
            gauge.record(1)
            versionGauges[surface] = (version, gauge)
        }
    }

    /// `braid_model_pinned{surface}`: 1 while a rollback pins the surface's version.
    func setPinned(surface: String, _ pinned: Bool) {
        lock.lock()
        let gauge = pinnedGauges[surface] ?? CoreMetrics.Gauge(label: "braid_model_pinned", dimensions: [("surface", surface)], factory: factory)
        pinnedGauges[surface] = gauge
        lock.unlock()
        gauge.record(pinned ? 1 : 0)
    }

    /// Model lifecycle events: `action` reload (admin), registry (a version found in the
    /// registry), rollback, unpin; `result` ok, error (failed to load or warm), incomplete
    /// (files not whole yet, e.g. a weights file still being copied).
    func lifecycle(action: String, surface: String, result: String) {
        CoreMetrics.Counter(label: "braid_model_lifecycle_total", dimensions: [("action", action), ("surface", surface), ("result", result)],
                factory: factory).increment()
    }
}

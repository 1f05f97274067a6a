import Dispatch
import Foundation
import Inference
import JSON
import Schema

/// What the HTTP routes answer: a status and a JSON (or text) body.
public struct Reply: Sendable {
    public var status: Int
    public var body: String
    public var contentType = "application/json"

    static func json(_ status: Int, _ body: String) -> Reply { Reply(status: status, body: body) }
    static func error(_ status: Int, _ message: String) -> Reply {
        Reply(status: status, body: #"{"error": {"message": \#(jsonString(message))}}"#)
    }
}

/// The serving state behind the routes: which loaded model version serves each surface (and
/// the previous one, for rollback), readiness, and metrics. Thread-safe.
public final class ServingState: @unchecked Sendable {
    struct Slot {
        var current: LoadedModel
        var previous: LoadedModel?
    }

    public let configuration: ServingConfiguration
    public let metrics = ServingMetrics()
    private let lock = NSLock()
    private var slots: [String: Slot] = [:]
    private var busy: Set<String> = []      // surfaces with a reload or rollback in progress
    private var isReady = false

    public init(configuration: ServingConfiguration) {
        precondition(configuration.maxUniqueUsers >= 1, "maxUniqueUsers must be >= 1")
        self.configuration = configuration
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Ready once the start models are loaded and warmed (`GET /readyz`).
    public var ready: Bool { locked { isReady } }

    /// surface -> version of the model serving it (`GET /v1/models`).
    public var versions: [String: String] { locked { slots.mapValues(\.current.version) } }

    /// Loads and warms `configuration.models`, then marks the service ready. Each surface
    /// must be served by exactly one of them.
    public func loadStartModels() async throws {
        var loaded: [String: LoadedModel] = [:]
        for path in configuration.models {
            let model = try await offload { try LoadedModel(path: path, configuration: self.configuration, metrics: self.metrics) }
            for surface in model.surfaces {
                if let other = loaded[surface] {
                    throw ServingError(400, "surface \(surface) is served by both \(other.directory.path) and \(path); "
                        + "expected each surface in one --model directory (use surface exports, or one unified model)")
                }
                loaded[surface] = model
            }
        }
        guard !loaded.isEmpty else { throw ServingError(400, "no models; expected at least one --model DIR") }
        locked {
            slots = loaded.mapValues { Slot(current: $0, previous: nil) }
            isReady = true
        }
        metrics.setVersions(versions)
    }

    // MARK: scoring

    /// `POST /v1/score` (SPEC 5) over a received body.
    public func score(body: Foundation.Data) async -> (reply: Reply, surface: String) {
        let json: RequestJSON
        do {
            json = try RequestJSON.parse(body)
        } catch {
            return (.error(400, "body: malformed JSON (\(error)); expected a JSON object"), "unknown")
        }
        guard case .object(_, let values) = json else {
            return (.error(400, "body: \(json.typeName); expected an object {\"surface\", \"requests\"}"), "unknown")
        }
        let served = locked { slots }
        let surfaceValue = values["surface"] ?? .null
        guard case .string(let surface) = surfaceValue, let slot = served[surface] else {
            return (.error(400, "surface: unknown surface \(surfaceValue.pythonDescription); expected one of the surfaces "
                + "this server serves \(pythonRepr(served.keys.sorted()))"), "unknown")
        }
        let model = slot.current
        do {
            let encoded = try encodeRequests(json, config: model.engine.model.config,
                                             maxUniqueUsers: configuration.maxUniqueUsers)
            metrics.ignored(surface: surface, keys: encoded.ignoredKeys)
            let scored = try await model.batchers[surface]!.score(encoded)
            return (.json(200, Self.scoresJSON(scored, surface: surface, version: model.version)), surface)
        } catch let error as RequestError {
            return (.error(error.status, error.description), surface)
        } catch {
            return (.error(500, "scoring failed: \(error)"), surface)
        }
    }

    static func scoresJSON(_ scored: PartScores, surface: String, version: String) -> String {
        var out = #"{"model": {"surface": \#(jsonString(surface)), "version": \#(jsonString(version))}, "scores": ["#
        let K = scored.tasks.count, keys = scored.tasks.map { jsonString($0) + ": " }
        var n = 0
        for (r, count) in scored.counts.enumerated() {
            if r > 0 { out += ", " }
            out += "["
            for c in 0..<count {
                if c > 0 { out += ", " }
                out += "{"
                for k in 0..<K {
                    if k > 0 { out += ", " }
                    out += keys[k] + jsonNumber(scored.probabilities[n * K + k])
                }
                out += "}"
                n += 1
            }
            out += "]"
        }
        return out + "]}"
    }

    // MARK: lifecycle

    /// Loads and warms the model directory `path`, then makes it serve `surface`; the
    /// replaced version stays as the rollback target. Requests already running finish on the
    /// old version. Returns the new version.
    public func reload(surface: String, path: String) async throws -> String {
        try begin(surface)
        defer { end(surface) }
        let model: LoadedModel
        do {
            model = try await offload { try LoadedModel(path: path, configuration: self.configuration, metrics: self.metrics) }
        } catch {
            metrics.lifecycle(action: "reload", surface: surface, result: "error")
            throw error
        }
        guard model.surfaces.contains(surface) else {
            metrics.lifecycle(action: "reload", surface: surface, result: "error")
            throw ServingError(400, "model: \(path) serves \(pythonRepr(model.surfaces)), not surface \(pythonRepr(surface)); "
                + "expected a model directory whose surfaces_included holds it")
        }
        locked {
            let old = slots[surface]!.current
            slots[surface] = Slot(current: model, previous: old)
        }
        metrics.setVersions(versions)
        metrics.lifecycle(action: "reload", surface: surface, result: "ok")
        return model.version
    }

    /// Swaps `surface` back to the version it served before the last reload (and keeps the
    /// current one as the next rollback target). Returns the version now serving.
    public func rollback(surface: String) throws -> String {
        try begin(surface)
        defer { end(surface) }
        let version: String = try locked {
            guard let slot = slots[surface], let previous = slot.previous else {
                throw ServingError(409, "surface: \(pythonRepr(surface)) has no previous version to roll back to; "
                    + "expected a surface reloaded at least once")
            }
            slots[surface] = Slot(current: previous, previous: slot.current)
            return previous.version
        }
        metrics.setVersions(versions)
        metrics.lifecycle(action: "rollback", surface: surface, result: "ok")
        return version
    }

    private func begin(_ surface: String) throws {
        try locked {
            guard slots[surface] != nil else {
                throw ServingError(400, "surface: unknown surface \(pythonRepr(surface)); expected one of the surfaces "
                    + "this server serves \(pythonRepr(slots.keys.sorted()))")
            }
            guard busy.insert(surface).inserted else {
                throw ServingError(409, "surface: a reload or rollback of \(pythonRepr(surface)) is in progress; expected one at a time")
            }
        }
    }

    private func end(_ surface: String) { _ = locked { busy.remove(surface) } }
}

/// Runs blocking work (model loading) on a global queue, off Swift's cooperative executors.
func offload<T>(_ body: @escaping () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global(qos: .userInitiated).async {
            continuation.resume(with: Result { try body() })
        }
    }
}

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
/// the previous one, for rollback; a rollback pin), the registry watcher's memory of bad
/// versions, shadow versions, readiness, and metrics. Thread-safe.
public final class ServingState: @unchecked Sendable {
    struct Slot {
        var current: LoadedModel
        var previous: LoadedModel?
        /// Set by a rollback: the registry serves no version named at or before it (in
        /// `versionOrder`) until `POST /admin/unpin`.
        var pin: String?
    }

    public let configuration: ServingConfiguration
    public let metrics = ServingMetrics()
    /// Where lifecycle events are written (one line each); stderr by default.
    let log: @Sendable (String) -> Void
    let registry: ModelRegistry?
    private let lock = NSLock()
    private var slots: [String: Slot] = [:]
    private var busy: Set<String> = []      // surfaces with a reload, rollback or registry swap in progress
    private var isReady = false
    /// Registry versions that were incomplete or failed, with their files' signature then:
    /// skipped until the files change.
    private var refused: [String: ModelRegistry.FileSignature?] = [:]
    var shadows: [String: ShadowScorer] = [:]

    public init(configuration: ServingConfiguration,
                log: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Foundation.Data("braid serve: \($0)\n".utf8)) }) {
        precondition(configuration.maxUniqueUsers >= 1, "maxUniqueUsers must be >= 1")
        self.configuration = configuration
        self.log = log
        registry = configuration.registry.map { ModelRegistry(root: URL(fileURLWithPath: $0)) }
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Ready once the start models are loaded and warmed (`GET /readyz`); with a registry,
    /// once at least one surface has a version.
    public var ready: Bool { locked { isReady } }

    /// surface -> version of the model serving it (`GET /v1/models`).
    public var versions: [String: String] { locked { slots.mapValues(\.current.version) } }

    /// The loaded model serving `surface`.
    func serving(_ surface: String) -> LoadedModel? { locked { slots[surface]?.current } }

    /// Surfaces pinned by a rollback.
    public var pinned: [String: String] { locked { slots.compactMapValues(\.pin) } }

    /// Loads and warms `configuration.models` (each surface served by exactly one of them)
    /// or the registry's newest complete versions, and the shadow versions; then marks the
    /// service ready (with a registry: once some surface has a version).
    public func loadStartModels() async throws {
        if let registry {
            guard ModelRegistry.isDirectory(registry.root) else {
                throw ServingError(400, "--registry \(registry.root.path) is not a directory; expected a folder of "
                    + "<surface>/<version>/ model directories (docs/SERVING.md)")
            }
            await pollRegistry()
        } else {
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
            guard !loaded.isEmpty else { throw ServingError(400, "no models; expected at least one --model DIR or a --registry DIR") }
            locked {
                slots = loaded.mapValues { Slot(current: $0, previous: nil) }
                isReady = true
            }
            metrics.setVersions(versions)
        }
        for (surface, source) in configuration.shadows.sorted(by: { $0.key < $1.key }) {
            var path = source
            if let registry, !source.contains("/") { path = registry.root.appendingPathComponent(surface).appendingPathComponent(source).path }
            let model = try await offload { try LoadedModel(path: path, configuration: self.configuration, metrics: self.metrics) }
            guard model.surfaces.contains(surface) else {
                throw ServingError(400, "--shadow \(surface)=\(source): \(path) serves \(pythonRepr(model.surfaces)), not \(surface); "
                    + "expected a model directory whose surfaces_included holds it")
            }
            shadows[surface] = ShadowScorer(surface: surface, model: model, share: configuration.shadowShare, metrics: metrics)
            log("shadow: \(surface) is also scored by \(model.version) (\(model.directory.path)), share \(configuration.shadowShare)")
        }
    }

    /// Returns once every shadow request already offered has been scored and counted.
    public func finishShadows() async {
        for shadow in shadows.values { await shadow.idle() }
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
            metrics.predicted(surface: surface, version: model.version, role: "live", tasks: scored.tasks,
                              probabilities: scored.probabilities)
            shadows[surface]?.offer(json, live: scored, maxUniqueUsers: configuration.maxUniqueUsers)
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
    /// replaced version stays as the rollback target, and a rollback pin is cleared.
    /// Requests already running finish on the old version. Returns the new version.
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
        swapIn(model, surface: surface, action: "reload")
        return model.version
    }

    /// Swaps `surface` back to the version it served before the last swap (the current one
    /// becomes the next rollback target, so a second rollback swaps forward again). With a
    /// registry the surface is then pinned: no registry version named at or before the one
    /// rolled back from is served until `unpin`; a newer one ends the pin. Returns the
    /// version now serving.
    public func rollback(surface: String) throws -> String {
        try begin(surface)
        defer { end(surface) }
        let (version, pin): (String, String?) = try locked {
            guard let slot = slots[surface], let previous = slot.previous else {
                throw ServingError(409, "surface: \(pythonRepr(surface)) has no previous version to roll back to; "
                    + "expected a surface reloaded at least once")
            }
            var pin: String? = nil
            if registry != nil, let newest = Self.floor(slot), versionOrder(previous.name, newest) { pin = newest }
            slots[surface] = Slot(current: previous, previous: slot.current, pin: pin)
            return (previous.version, pin)
        }
        metrics.setVersions(versions)
        metrics.setPinned(surface: surface, pin != nil)
        metrics.lifecycle(action: "rollback", surface: surface, result: "ok")
        log("rollback: \(surface) serves \(version)" + (pin.map { "; pinned until a version after \($0) or POST /admin/unpin" } ?? ""))
        return version
    }

    /// Ends a rollback pin of `surface`: the registry's newest complete version serves it
    /// again from the next scan. Returns whether it was pinned.
    public func unpin(surface: String) throws -> Bool {
        try begin(surface)
        defer { end(surface) }
        let was = locked { () -> Bool in
            let was = slots[surface]?.pin != nil
            slots[surface]?.pin = nil
            return was
        }
        metrics.setPinned(surface: surface, false)
        metrics.lifecycle(action: "unpin", surface: surface, result: "ok")
        log("unpin: \(surface)" + (was ? "; the registry's newest version serves it from the next scan" : " was not pinned"))
        return was
    }

    private func swapIn(_ model: LoadedModel, surface: String, action: String) {
        locked {
            let old = slots[surface]?.current
            slots[surface] = Slot(current: model, previous: old, pin: nil)
            isReady = true
        }
        metrics.setVersions(versions)
        metrics.setPinned(surface: surface, false)
        metrics.lifecycle(action: action, surface: surface, result: "ok")
        log("\(action): \(surface) serves \(model.version) (\(model.directory.path))")
    }

    /// Claims `surface` for one lifecycle change; `known` = it must be served already.
    private func begin(_ surface: String, known: Bool = true) throws {
        try locked {
            guard !known || slots[surface] != nil else {
                throw ServingError(400, "surface: unknown surface \(pythonRepr(surface)); expected one of the surfaces "
                    + "this server serves \(pythonRepr(slots.keys.sorted()))")
            }
            guard busy.insert(surface).inserted else {
                throw ServingError(409, "surface: a reload, rollback or registry swap of \(pythonRepr(surface)) is in progress; "
                    + "expected one at a time")
            }
        }
    }

    private func end(_ surface: String) { _ = locked { busy.remove(surface) } }

    // MARK: registry

    /// Scans the registry every `registryPollMilliseconds` until the task is cancelled.
    public func watchRegistry() async {
        guard registry != nil else { return }
        let interval = UInt64(max(10, configuration.registryPollMilliseconds)) * 1_000_000
        while !Task.isCancelled {
            try? await Task.sleep(nanoseconds: interval)
            if Task.isCancelled { break }
            await pollRegistry()
        }
    }

    /// One scan of the registry: for each surface folder, the newest version after the one
    /// serving (and after a rollback pin) that is complete and loads and warms is swapped in;
    /// versions that are incomplete or fail are logged, counted in
    /// `braid_model_lifecycle_total{action="registry"}` and skipped until their files change.
    /// A version directory shared by several surfaces (symlinks) is loaded once per scan.
    /// Loading holds no claim on the surface (a rollback meanwhile is not refused); the swap
    /// re-checks the version is still newer than what serves and any pin.
    public func pollRegistry() async {
        guard let registry else { return }
        var loadedThisScan: [String: LoadedModel] = [:]    // directory path -> model
        for surface in registry.surfaces() {
            let slot = locked { slots[surface] }
            for entry in registry.versions(of: surface) {
                if let floor = Self.floor(slot), !versionOrder(floor, entry.name) { break }
                if configuration.shadows[surface] == entry.name { continue }  // the shadow candidate: never served from here
                if let seen = locked({ refused[entry.key] }), seen == entry.signature { continue }
                if let why = entry.signature == nil ? "model.json or weights.safetensors is missing" : ModelRegistry.incompleteness(of: entry) {
                    refuse(entry, result: "incomplete", "incomplete (\(why)); not served, waiting for its files to change")
                    continue
                }
                let model: LoadedModel
                if let previous = slot?.previous, previous.name == entry.name, previous.directory.path == entry.directory.path,
                   previous.signature == entry.signature {
                    model = previous   // rolled back from, then unpinned: still loaded
                } else if let shared = loadedThisScan[entry.directory.path], shared.signature == entry.signature {
                    model = shared
                } else {
                    do {
                        let loaded = try await offload {
                            try LoadedModel(path: entry.directory.path, name: entry.name, configuration: self.configuration,
                                            metrics: self.metrics)
                        }
                        loaded.signature = entry.signature
                        model = loaded
                    } catch {
                        refuse(entry, result: "error", "failed to load or warm (\(error)); not served until its files change")
                        continue
                    }
                    guard ModelRegistry.signature(of: entry.directory) == entry.signature else { break }  // changed while loading: next scan
                    loadedThisScan[entry.directory.path] = model
                }
                guard model.surfaces.contains(surface) else {
                    refuse(entry, result: "error", "serves \(pythonRepr(model.surfaces)), not \(surface); "
                        + "expected a model directory whose surfaces_included holds its surface folder's name")
                    continue
                }
                guard (try? begin(surface, known: false)) != nil else { break }  // an admin change is running: next scan
                defer { end(surface) }
                if let floor = Self.floor(locked({ slots[surface] })), !versionOrder(floor, entry.name) { break }
                swapIn(model, surface: surface, action: "registry")
                break
            }
        }
        metrics.registryScan()
    }

    /// The newest of the version serving and the pin: the registry serves only names after it.
    private static func floor(_ slot: Slot?) -> String? {
        [slot?.current.name, slot?.pin].compactMap { $0 }.max(by: versionOrder)
    }

    private func refuse(_ entry: ModelRegistry.Entry, result: String, _ message: String) {
        locked { refused[entry.key] = .some(entry.signature) }
        metrics.lifecycle(action: "registry", surface: entry.surface, result: result)
        log("registry: \(entry.key): \(message)")
    }
}

/// Runs blocking work (model loading) on a global queue, off Swift's cooperative executors.
func offload<T>(_ body: @escaping () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global(qos: .userInitiated).async {
            continuation.resume(with: Result { try body() })
        }
    }
}

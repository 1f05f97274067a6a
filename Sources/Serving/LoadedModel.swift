import Checkpoint
import Dispatch
import Foundation
import Inference
import Model

/// One loaded, warmed model version: its engine, the serial queue its batches run on, and
/// one micro-batcher per surface it serves. Immutable once built; requests that picked it
/// keep it alive and finish on it even after a reload swaps it out.
final class LoadedModel: @unchecked Sendable {
    let directory: URL
    /// The folder name it was found under (the registry's version name; a symlink's own name).
    let name: String
    /// `<name>-<12 hex digits>`, see `version(of:name:)`.
    let version: String
    /// Files of the directory when it was loaded (nil outside a registry).
    var signature: ModelRegistry.FileSignature?
    let engine: InferenceEngine
    let batchers: [String: MicroBatcher]
    var surfaces: [String] { engine.model.config.surfacesIncluded }

    /// Loads the model directory at `path` and warms it with one scoring call per surface
    /// (blocking; call off the async executors). `name` defaults to the folder's name.
    init(path: String, name: String? = nil, configuration: ServingConfiguration, metrics: ServingMetrics) throws {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ServingError(400, "model directory \(path) does not exist; expected a folder with "
                + "\(ModelDirectoryFile.config) and \(ModelDirectoryFile.weights) (from braid train or braid export)")
        }
        let model: BraidModel
        do {
            model = try BraidModel.load(directory: url)
        } catch {
            throw ServingError(400, "cannot load model directory \(path): \(error)")
        }
        directory = url
        self.name = name ?? url.lastPathComponent
        version = try Self.version(of: url, name: self.name)
        let userStates = configuration.userCacheBytes > 0 ? UserStateCache(budgetBytes: configuration.userCacheBytes) : nil
        let engine = InferenceEngine(model: model, maxUniqueUsers: configuration.maxUniqueUsers, userStates: userStates)
        self.engine = engine
        let version = self.version
        let cacheCounts = UserCacheCounts()
        let queue = DispatchQueue(label: "braid.serving.\(url.lastPathComponent)", qos: .userInitiated)
        var batchers: [String: MicroBatcher] = [:]
        for surface in model.config.surfacesIncluded {
            batchers[surface] = MicroBatcher(
                engine: engine, queue: queue, waitMicroseconds: configuration.batchWaitMicroseconds,
                maxUniqueUsers: configuration.maxUniqueUsers, maxRows: configuration.maxBatchCandidates,
                onBatch: { [metrics, engine, version] o in
                    metrics.batch(surface: surface, requests: o.requests, candidates: o.candidates, users: o.users, seconds: o.seconds)
                    if let cache = engine.userStates { metrics.userCache(version: version, cacheCounts.advance(to: cache.statistics)) }
                })
        }
        self.batchers = batchers
        for surface in model.config.surfacesIncluded {  // warm-up: one scoring call per surface
            let body = #"{"surface": "\#(surface)", "requests": [{"user": {}, "context": {}, "candidates": [{}]}]}"#
            let scored = try engine.score(body: Foundation.Data(body.utf8))
            guard scored.probabilities.allSatisfy({ (0...1).contains($0) }) else {
                throw ServingError(400, "model directory \(path): warm-up on \(surface) scored \(scored.probabilities) "
                    + "(not probabilities: NaN or infinite weights?); expected values in [0, 1]")
            }
        }
    }

    /// `<name>-<12 hex digits of FNV-1a 64 over model.json and weights.safetensors>`:
    /// names the folder for people and changes whenever the files do.
    static func version(of url: URL, name: String) throws -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for file in [ModelDirectoryFile.config, ModelDirectoryFile.weights] {
            let data = try Foundation.Data(contentsOf: url.appendingPathComponent(file), options: .alwaysMapped)
            data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
                for b in bytes { hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3 }
            }
        }
        let hex = String(hash, radix: 16)
        return "\(name)-\((String(repeating: "0", count: 16 - hex.count) + hex).prefix(12))"
    }
}

/// The user-state cache statistics last reported to the metrics, so each batch adds only what
/// changed since (batches of one model run one at a time on its queue; the lock covers the rest).
final class UserCacheCounts: @unchecked Sendable {
    private let lock = NSLock()
    private var last = UserStateCache.Statistics()

    /// (the change since the last call, the current statistics).
    func advance(to now: UserStateCache.Statistics) -> (delta: UserStateCache.Statistics, now: UserStateCache.Statistics) {
        lock.withLock {
            var delta = now
            delta.hits -= last.hits; delta.misses -= last.misses; delta.evictions -= last.evictions
            last = now
            return (delta, now)
        }
    }
}

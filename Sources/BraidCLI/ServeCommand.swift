import ArgumentParser
import Dispatch
import Foundation
import Hummingbird
import Kernels
import Serving

/// `braid serve` (SPEC 5, 6): the HTTP scoring service. See docs/SERVING.md.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the scoring API over HTTP (POST /v1/score, /healthz, /readyz, /metrics, /v1/models).",
        discussion: """
            Loads and warms every --model directory (a unified model, or surface exports from \
            braid export; each surface served by exactly one), or the newest complete version \
            of each surface of a --registry DIR (DIR/<surface>/<version>/ model directories, \
            scanned every --poll-ms; new versions are loaded, warmed and swapped in, bad ones \
            logged and skipped), then answers on HOST:PORT. Concurrent requests of one surface \
            are merged into micro-batches of at most --max-unique-users distinct users. With \
            --admin-token, POST /admin/reload {"surface", "model": DIR}, POST /admin/rollback \
            {"surface"} (pins the previous version) and POST /admin/unpin {"surface"} change \
            versions without failing requests. --shadow SURFACE=VERSION also scores a share of \
            that surface's requests with a candidate, off the response path, for its metrics. \
            SIGINT/SIGTERM stop accepting connections, finish the requests in flight and exit 0. \
            See docs/SERVING.md and docs/openapi.yaml.

            Example: braid serve --registry models --port 8080 --admin-token "$TOKEN"
            """)

    @Option(name: .long, help: ArgumentHelp("A model directory to serve (repeat for surface exports).", valueName: "dir"))
    var model: [String] = []

    @Option(name: .long, help: ArgumentHelp("A model registry folder of <surface>/<version>/ model directories (instead of --model).", valueName: "dir"))
    var registry: String?

    @Option(name: .long, help: ArgumentHelp("How often the registry is scanned for new versions, milliseconds.", valueName: "ms"))
    var pollMs = 1000

    @Option(name: .long, help: ArgumentHelp("Shadow-score SURFACE with VERSION (a registry version folder, or a model directory path); repeatable.", valueName: "surface=version"))
    var shadow: [String] = []

    @Option(name: .long, help: ArgumentHelp("Share of a shadowed surface's requests scored by its shadow, in [0, 1].", valueName: "share"))
    var shadowShare = 0.1

    @Option(name: .long, help: ArgumentHelp("Address to bind.", valueName: "host"))
    var host = "127.0.0.1"

    @Option(name: .long, help: ArgumentHelp("TCP port (0 = any free port).", valueName: "port"))
    var port = 8080

    @Option(name: .long, help: ArgumentHelp("Distinct users per scoring batch; a request over it gets 413.", valueName: "n"))
    var maxUniqueUsers = 256

    @Option(name: .long, help: ArgumentHelp("Largest request body in bytes (413 above).", valueName: "bytes"))
    var maxBodyBytes = 8 << 20

    @Option(name: .long, help: ArgumentHelp("Micro-batch wait for neighbour requests, microseconds (0 = none).", valueName: "us"))
    var batchWaitUs = 2000

    @Option(name: .long, help: ArgumentHelp("Most candidate rows merged into one micro-batch.", valueName: "n"))
    var maxBatchCandidates = 4096

    @Option(name: .long, help: ArgumentHelp("Enables /admin/reload and /admin/rollback with this bearer token.", valueName: "token"))
    var adminToken: String?

    @Option(name: .customLong("user-cache-mb"),
            help: ArgumentHelp("MiB of users' sequence states each model keeps across requests (late and append fusion; 0 = none).",
                               valueName: "MiB"))
    var userCacheMiB = 256

    @Option(help: "Threads of Braid's loops inside one scoring batch (every model scores one batch at a time).")
    var threads = 1

    func validate() throws {
        guard model.isEmpty != (registry == nil) else {
            throw ValidationError("expected either --model DIR (repeatable; a model directory from braid train or braid export) "
                + "or --registry DIR (<surface>/<version>/ model directories), not both and not neither")
        }
        guard pollMs >= 10 else { throw ValidationError("--poll-ms \(pollMs); expected >= 10") }
        guard (0...1).contains(shadowShare) else { throw ValidationError("--shadow-share \(shadowShare); expected a share in [0, 1]") }
        _ = try shadows()
        guard maxUniqueUsers >= 1 else { throw ValidationError("--max-unique-users \(maxUniqueUsers); expected an integer >= 1") }
        guard (0...65535).contains(port) else { throw ValidationError("--port \(port); expected 0...65535") }
        guard maxBodyBytes >= 1 else { throw ValidationError("--max-body-bytes \(maxBodyBytes); expected >= 1") }
        guard batchWaitUs >= 0 else { throw ValidationError("--batch-wait-us \(batchWaitUs); expected >= 0") }
        guard threads >= 1 else { throw ValidationError("--threads \(threads); expected >= 1") }
        guard userCacheMiB >= 0 else { throw ValidationError("--user-cache-mb \(userCacheMiB); expected >= 0 (0 = no cache)") }
        guard maxBatchCandidates >= 1 else { throw ValidationError("--max-batch-candidates \(maxBatchCandidates); expected >= 1") }
        if let token = adminToken, token.isEmpty { throw ValidationError("--admin-token is empty; expected a secret string") }
    }

    /// `--shadow SURFACE=VERSION` values as surface -> version.
    func shadows() throws -> [String: String] {
        var out: [String: String] = [:]
        for value in shadow {
            guard let eq = value.firstIndex(of: "="), eq != value.startIndex, value.index(after: eq) != value.endIndex else {
                throw ValidationError("--shadow \(value); expected SURFACE=VERSION (a registry version folder or a model directory)")
            }
            let surface = String(value[..<eq])
            guard out[surface] == nil else { throw ValidationError("--shadow \(value): \(surface) has two shadows; expected one per surface") }
            out[surface] = String(value[value.index(after: eq)...])
        }
        return out
    }

    func run() throws {
        Threads.set(threads)
        let configuration = ServingConfiguration(
            models: model, host: host, port: port, maxUniqueUsers: maxUniqueUsers, maxBodyBytes: maxBodyBytes,
            batchWaitMicroseconds: batchWaitUs, maxBatchCandidates: maxBatchCandidates, adminToken: adminToken,
            registry: registry, registryPollMilliseconds: pollMs, shadows: try shadows(), shadowShare: shadowShare,
            userCacheBytes: userCacheMiB << 20)
        let outcome = BlockingResult()
        let done = DispatchSemaphore(value: 0)
        Task {
            do {
                let state = ServingState(configuration: configuration)
                let sources = configuration.registry.map { "the newest versions in registry \($0)" }
                    ?? configuration.models.joined(separator: ", ")
                FileHandle.standardError.write(Data("loading and warming \(sources)\n".utf8))
                try await state.loadStartModels()
                for (surface, version) in state.versions.sorted(by: { $0.key < $1.key }) {
                    FileHandle.standardError.write(Data("  \(surface): \(version)\n".utf8))
                }
                let app = ServingApp.application(state: state) { port in
                    FileHandle.standardError.write(Data("braid serve: listening on http://\(configuration.host):\(port)\n".utf8))
                }
                let watcher = Task { await state.watchRegistry() }
                defer { watcher.cancel() }
                try await app.runService()  // returns after SIGTERM/SIGINT once in-flight requests are answered
                await state.finishShadows()
                FileHandle.standardError.write(Data("braid serve: stopped (in-flight requests answered)\n".utf8))
            } catch {
                outcome.set(error)
            }
            done.signal()
        }
        done.wait()
        if let error = outcome.error { throw ServeFailure(message: "\(error)") }
    }
}

private final class BlockingResult: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Error?
    func set(_ error: Error) { lock.lock(); stored = error; lock.unlock() }
    var error: Error? { lock.lock(); defer { lock.unlock() }; return stored }
}

private struct ServeFailure: Error, CustomStringConvertible {
    let message: String
    var description: String { "braid serve: \(message)" }
}

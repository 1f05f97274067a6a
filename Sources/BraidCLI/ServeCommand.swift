import ArgumentParser
import Dispatch
import Foundation
import Hummingbird
import Serving

/// `braid serve` (SPEC 5, 6): the HTTP scoring service. See docs/SERVING.md.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the scoring API over HTTP (POST /v1/score, /healthz, /readyz, /metrics, /v1/models).",
        discussion: """
            Loads and warms every --model directory (a unified model, or surface exports from \
            braid export; each surface served by exactly one), then answers on HOST:PORT. \
            Concurrent requests of one surface are merged into micro-batches of at most \
            --max-unique-users distinct users. With --admin-token, POST /admin/reload \
            {"surface", "model": DIR} and POST /admin/rollback {"surface"} swap versions \
            without failing requests. SIGINT/SIGTERM stop it gracefully.

            Example: braid serve --model run/model --port 8080
            """)

    @Option(name: .long, help: ArgumentHelp("A model directory to serve (repeat for surface exports).", valueName: "dir"))
    var model: [String] = []

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

    func validate() throws {
        guard !model.isEmpty else { throw ValidationError("expected at least one --model DIR (a model directory from braid train or braid export)") }
        guard maxUniqueUsers >= 1 else { throw ValidationError("--max-unique-users \(maxUniqueUsers); expected an integer >= 1") }
        guard (0...65535).contains(port) else { throw ValidationError("--port \(port); expected 0...65535") }
        guard maxBodyBytes >= 1 else { throw ValidationError("--max-body-bytes \(maxBodyBytes); expected >= 1") }
        guard batchWaitUs >= 0 else { throw ValidationError("--batch-wait-us \(batchWaitUs); expected >= 0") }
        guard maxBatchCandidates >= 1 else { throw ValidationError("--max-batch-candidates \(maxBatchCandidates); expected >= 1") }
        if let token = adminToken, token.isEmpty { throw ValidationError("--admin-token is empty; expected a secret string") }
    }

    func run() throws {
        let configuration = ServingConfiguration(
            models: model, host: host, port: port, maxUniqueUsers: maxUniqueUsers, maxBodyBytes: maxBodyBytes,
            batchWaitMicroseconds: batchWaitUs, maxBatchCandidates: maxBatchCandidates, adminToken: adminToken)
        let outcome = BlockingResult()
        let done = DispatchSemaphore(value: 0)
        Task {
            do {
                let state = ServingState(configuration: configuration)
                FileHandle.standardError.write(Data("loading and warming \(configuration.models.joined(separator: ", "))\n".utf8))
                try await state.loadStartModels()
                for (surface, version) in state.versions.sorted(by: { $0.key < $1.key }) {
                    FileHandle.standardError.write(Data("  \(surface): \(version)\n".utf8))
                }
                let app = ServingApp.application(state: state) { port in
                    FileHandle.standardError.write(Data("braid serve: listening on http://\(configuration.host):\(port)\n".utf8))
                }
                try await app.runService()
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

import Dispatch
import Foundation
import Hummingbird
import Inference
import JSON
import Schema

/// The Hummingbird application of `braid serve` (SPEC 5):
///
/// - `POST /v1/score` -> `{"model": {"surface", "version"}, "scores": [[{task: p}]]}`;
///   bad input 400, over `max_unique_users` or the body limit 413, errors as
///   `{"error": {"message": "<where>: <what>; expected ..."}}`.
/// - `GET /healthz` (the process answers), `GET /readyz` (models loaded and warmed),
///   `GET /metrics` (Prometheus text), `GET /v1/models` (surface -> version).
/// - With an admin token: `POST /admin/reload` `{"surface", "model": DIR}`,
///   `POST /admin/rollback` `{"surface"}` and `POST /admin/unpin` `{"surface"}`, with
///   `Authorization: Bearer <token>`. docs/openapi.yaml describes every route.
public enum ServingApp {
    /// The router over `state` (no models need to be loaded yet: /readyz says 503 until then).
    public static func router(state: ServingState) -> Router<BasicRequestContext> {
        let router = Router()
        let metrics = state.metrics
        let limit = state.configuration.maxBodyBytes

        router.get("/healthz") { _, _ in
            response(Reply(status: 200, body: #"{"status": "ok"}"#))
        }
        router.get("/readyz") { _, _ in
            state.ready ? response(Reply(status: 200, body: #"{"status": "ready"}"#))
                : response(.error(503, "models are not loaded and warmed yet; expected readiness after start-up"))
        }
        router.get("/metrics") { _, _ in
            response(Reply(status: 200, body: metrics.render(), contentType: "text/plain; version=0.0.4; charset=utf-8"))
        }
        router.get("/v1/models") { _, _ in
            let versions = state.versions.sorted { $0.key < $1.key }
            let members = versions.map { "\(jsonString($0.key)): \(jsonString($0.value))" }
            return response(Reply(status: 200, body: #"{"models": {"# + members.joined(separator: ", ") + "}}"))
        }
        router.post("/v1/score") { request, _ in
            let start = DispatchTime.now().uptimeNanoseconds
            metrics.inFlight(route: "/v1/score", 1)
            defer { metrics.inFlight(route: "/v1/score", -1) }
            func answer(_ reply: Reply, surface: String) -> Response {
                metrics.request(route: "/v1/score", surface: surface, status: reply.status,
                                seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                return response(reply)
            }
            guard state.ready else {
                return answer(.error(503, "models are not loaded and warmed yet; retry when /readyz answers 200"), surface: "unknown")
            }
            switch await readBody(request, limit: limit) {
            case .failure(let error): return answer(error.reply, surface: "unknown")
            case .success(let body):
                let (reply, surface) = await state.score(body: body)
                return answer(reply, surface: surface)
            }
        }

        if let token = state.configuration.adminToken {
            router.post("/admin/reload") { request, _ in
                await admin(request, token: token, limit: limit, state: state, route: "/admin/reload") { fields in
                    guard case .string(let surface)? = fields["surface"], case .string(let path)? = fields["model"] else {
                        throw ServingError(400, #"body: expected {"surface": "<surface>", "model": "<model directory>"}"#)
                    }
                    let version = try await state.reload(surface: surface, path: path)
                    return #"{"surface": \#(jsonString(surface)), "version": \#(jsonString(version))}"#
                }
            }
            router.post("/admin/rollback") { request, _ in
                await admin(request, token: token, limit: limit, state: state, route: "/admin/rollback") { fields in
                    guard case .string(let surface)? = fields["surface"] else {
                        throw ServingError(400, #"body: expected {"surface": "<surface>"}"#)
                    }
                    let version = try state.rollback(surface: surface)
                    let pin = state.pinned[surface].map { jsonString($0) } ?? "null"
                    return #"{"surface": \#(jsonString(surface)), "version": \#(jsonString(version)), "pinned_until_after": \#(pin)}"#
                }
            }
            router.post("/admin/unpin") { request, _ in
                await admin(request, token: token, limit: limit, state: state, route: "/admin/unpin") { fields in
                    guard case .string(let surface)? = fields["surface"] else {
                        throw ServingError(400, #"body: expected {"surface": "<surface>"}"#)
                    }
                    let was = try state.unpin(surface: surface)
                    return #"{"surface": \#(jsonString(surface)), "was_pinned": \#(was)}"#
                }
            }
        }
        // added last, so it wraps only the not-found responder: JSON 404s, and 405s for
        // other methods of a known path
        router.add(middleware: UnroutedMiddleware(methods: Dictionary(grouping: router.routes, by: { "\($0.path)" })
            .mapValues { $0.map { "\($0.method)" }.sorted() }))
        return router
    }

    /// Answers requests no route takes: 405 (with `Allow`) when the path is served with
    /// other methods, else 404; both with the JSON error body of every other error.
    struct UnroutedMiddleware: RouterMiddleware {
        typealias Context = BasicRequestContext
        /// path -> its methods, sorted.
        let methods: [String: [String]]

        func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
            let path = request.uri.path
            guard let allowed = methods[path] else {
                return response(.error(404, "\(request.method) \(path): no such route; expected one of the paths in docs/openapi.yaml"))
            }
            var reply = response(.error(405, "\(request.method) \(path): method not allowed; expected \(allowed.joined(separator: " or "))"))
            reply.headers[.allow] = allowed.joined(separator: ", ")
            return reply
        }
    }

    /// The application bound to `configuration.host:port`.
    public static func application(state: ServingState, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in })
        -> some ApplicationProtocol
    {
        let configuration = state.configuration
        return Application(
            router: router(state: state),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "braid"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? configuration.port) })
    }

    static func response(_ reply: Reply) -> Response {
        Response(status: .init(code: reply.status), headers: [.contentType: reply.contentType],
                 body: .init(byteBuffer: ByteBuffer(string: reply.body)))
    }

    /// The request body as Data, or a 413 reply past `limit` bytes.
    static func readBody(_ request: Request, limit: Int) async -> Result<Foundation.Data, ReplyError> {
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            return .failure(ReplyError(.error(413, "body: \(length) bytes; expected at most \(limit) bytes (split the batch)")))
        }
        do {
            let buffer = try await request.body.collect(upTo: limit)
            return .success(Foundation.Data(buffer.readableBytesView))
        } catch {
            return .failure(ReplyError(.error(413, "body: more than \(limit) bytes; expected at most \(limit) bytes (split the batch)")))
        }
    }

    struct ReplyError: Error {
        let reply: Reply
        init(_ reply: Reply) { self.reply = reply }
    }

    /// An admin route: bearer token check, JSON object body, `action` -> 200 JSON, or the error.
    static func admin(_ request: Request, token: String, limit: Int, state: ServingState, route: String,
                      _ action: ([String: RequestJSON]) async throws -> String) async -> Response {
        let start = DispatchTime.now().uptimeNanoseconds
        let reply: Reply
        if request.headers[.authorization] != "Bearer \(token)" {
            reply = .error(401, "Authorization: missing or wrong bearer token; expected \"Authorization: Bearer <admin token>\"")
        } else {
            switch await readBody(request, limit: limit) {
            case .failure(let error): reply = error.reply
            case .success(let body):
                do {
                    guard case .object(_, let values) = try RequestJSON.parse(body) else {
                        throw ServingError(400, "body: expected a JSON object")
                    }
                    reply = .json(200, try await action(values))
                } catch let error as ServingError {
                    reply = .error(error.status, error.message)
                } catch {
                    reply = .error(400, "body: malformed JSON (\(error)); expected a JSON object")
                }
            }
        }
        state.metrics.request(route: route, surface: "", status: reply.status,
                              seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        return response(reply)
    }
}

import Foundation
import Hummingbird
@testable import Serving
import XCTest

/// docs/openapi.yaml describes exactly the routes the router serves (with an admin token),
/// and every error status a route can answer.
final class OpenAPITests: XCTestCase {
    static let document = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/openapi.yaml")

    /// "METHOD /path" -> the statuses documented for it, read from the YAML's layout
    /// (paths at indent 2, methods at 4, status codes at 8 under `responses:`).
    static func documented() throws -> [String: Set<Int>] {
        let text = try String(contentsOf: document, encoding: .utf8)
        var out: [String: Set<Int>] = [:], path = "", route = "", inPaths = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let indent = line.prefix { $0 == " " }.count, body = line.trimmingCharacters(in: .whitespaces)
            if indent == 0 { inPaths = body == "paths:"; continue }
            guard inPaths else { continue }
            if indent == 2, body.hasPrefix("/") { path = String(body.dropLast()) }
            else if indent == 4, ["get:", "post:"].contains(body) { route = "\(body.dropLast().uppercased()) \(path)"; out[route] = [] }
            else if indent == 8, body.hasPrefix("\""), let code = Int(body.dropFirst().prefix(3)) { out[route]!.insert(code) }
        }
        return out
    }

    func testDocumentMatchesTheRouter() throws {
        let state = ServingState(configuration: ServingConfiguration(models: [], adminToken: "t"))
        let served = Set(ServingApp.router(state: state).routes.map { "\($0.method) \($0.path)" })
        let documented = try Self.documented()
        XCTAssertEqual(Set(documented.keys), served, "docs/openapi.yaml paths vs the router")
        XCTAssertEqual(documented["POST /v1/score"], [200, 400, 413, 500, 503])
        for admin in ["/admin/reload", "/admin/rollback", "/admin/unpin"] {
            XCTAssertEqual(documented["POST \(admin)"], [200, 400, 401, 409, 413], admin)
        }
        let noAdmin = ServingApp.router(state: ServingState(configuration: ServingConfiguration(models: [])))
        XCTAssertFalse(noAdmin.routes.contains { "\($0.path)".hasPrefix("/admin") }, "no admin routes without a token")
    }
}

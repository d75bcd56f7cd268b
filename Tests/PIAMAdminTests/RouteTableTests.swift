import Foundation
@testable import PIAMAdmin
import PIAMEngine
import PIAMStore
import Testing

/// The route tables, the store's operations and the committed OpenAPI document agree.
@Suite("routes, operations and the OpenAPI document agree")
struct RouteTableTests {
    static func sample(_ f: APIField) -> Any {
        switch f.kind {
        case .id, .string, .clearableString: f.name == "kind" ? "partner" : "x-\(f.name)"
        case .bool: true
        case .time: "2027-06-30T00:00:00Z"
        case .strings: f.name == "permissions" ? ["claim:read"] : ["a-\(f.name)"]
        case .int: 7
        case .cursor: "c161"
        case .rowCursor: "12"
        }
    }

    /// Every administrative operation has exactly one route, and a form carrying every field
    /// the route documents parses as that operation: the table and the store's parser (which
    /// refuses unknown keys) name the same fields.
    @Test func everyOperationHasOneRouteWhoseFieldsTheStoreParses() throws {
        let routed = OperationRoute.all.map(\.operation)
        #expect(Set(routed) == Set(AdminOperation.names), "operations without a route: \(Set(AdminOperation.names).subtracting(routed))")
        #expect(routed.count == Set(routed).count, "an operation routed twice")
        for route in OperationRoute.all {
            var params: [String: String] = [:], query: [String: String] = [:], body: [String: Any] = [:]
            for f in route.pathFields { params[f.name] = "\(Self.sample(f))" }
            for f in route.queryFields { query[f.name] = f.kind == .bool ? "true" : "\(Self.sample(f))" }
            for f in route.bodyFields { body[f.name] = Self.sample(f) }
            let form = try route.applyForm(path: params, query: query, body: body)
            let op = try AdminOperation(json: form, path: route.path)
            #expect(op.name == route.operation)
            // Required fields only parse too.
            var minimal: [String: Any] = [:]
            for f in route.bodyFields where f.required { minimal[f.name] = Self.sample(f) }
            _ = try AdminOperation(json: try route.applyForm(path: params, query: [:], body: minimal), path: route.path)
        }
    }

    @Test func aFieldTheRouteDoesNotTakeIsRefusedByName() throws {
        let route = try #require(OperationRoute.all.first { $0.operation == "user.suspend" })
        #expect(throws: Problem.self) { try route.applyForm(path: ["user": "bob"], query: [:], body: ["user": "eve"]) }
        let grant = try #require(OperationRoute.all.first { $0.operation == "grant" })
        do {
            _ = try grant.applyForm(path: ["user": "bob"], query: [:], body: ["role": "r", "bogus": 1])
            Issue.record("an unknown field was accepted")
        } catch let p as Problem {
            #expect(p.status == .badRequest)
            #expect(p.detail.contains("\"bogus\""))
        }
    }

    /// The committed document is the one the service serves (regenerate with
    /// `swift run piam-admind openapi > Docs/openapi/admin-v1.json`).
    @Test func theCommittedDocumentIsTheGeneratedOne() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let committed = try String(contentsOf: root.appendingPathComponent("Docs/openapi/admin-v1.json"), encoding: .utf8)
        #expect(committed == OpenAPIDocument.text, "Docs/openapi/admin-v1.json is stale: regenerate it with piam-admind openapi")
    }

    /// Every route of the tables is in the document with its method, and the document has no
    /// other paths.
    @Test func theDocumentListsExactlyTheRoutes() throws {
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.text.utf8)) as? [String: Any])
        #expect(doc["openapi"] as? String == "3.1.0")
        let paths = try #require(doc["paths"] as? [String: [String: Any]])
        var expected: Set<String> = []
        for r in OperationRoute.all { expected.insert("\(r.method.rawValue.lowercased()) \(r.path)") }
        for r in ReadRoute.all { expected.insert("get \(r.path)") }
        for extra in ["operations", "apply", "what-if", "invitations/accept"] { expected.insert("post \(OperationRoute.prefix)/\(extra)") }
        for m in ["get", "post"] { expected.insert("\(m) \(AdminAPI.scimTokensPath)") }
        expected.insert("delete \(AdminAPI.scimTokensPath)/{id}")
        for r in ReviewRoutes.all { expected.insert("\(r.method.lowercased()) \(r.path)") }
        // The 405 table knows the same routes.
        #expect(Set(APIRoutes.all.map { "\($0.method.lowercased()) /\($0.template.joined(separator: "/"))" }) == expected)
        var documented: Set<String> = []
        for (path, methods) in paths { for m in methods.keys { documented.insert("\(m) \(path)") } }
        #expect(documented == expected)
        // Path parameters are declared for each template's {names}.
        for (path, methods) in paths {
            let names = Set(path.split(separator: "/").filter { $0.hasPrefix("{") }.map { String($0.dropFirst().dropLast()) })
            for (_, op) in methods {
                let params = ((op as? [String: Any])?["parameters"] as? [[String: Any]] ?? []).filter { $0["in"] as? String == "path" }
                #expect(Set(params.compactMap { $0["name"] as? String }) == names, "\(path)")
            }
        }
    }
}

@Suite("piam-admind configuration")
struct AdminConfigTests {
    func load(_ json: String, env: [String: String] = [:]) throws -> AdminConfig {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("admind-\(UUID().uuidString).json")
        try Data(json.utf8).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let c = try AdminConfig.load(file: url.path, environment: env)
        try c.validate()
        return c
    }

    @Test func theShippedFileLoadsWithTheDefaults() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let c = try AdminConfig.load(file: root.appendingPathComponent("Config/piam-admind.json").path, environment: [:])
        var defaults = AdminConfig()
        defaults.trustedHeader = "X-Forwarded-User"
        #expect(c == defaults)
    }

    @Test func keysAndEnvironment() throws {
        let c = try load("""
            {"database": {"path": "/x.db"}, "listen": ["unix:/run/a.sock", "127.0.0.1:8181", "10.0.0.5:8182"],
             "auth": {"trusted_header": "X-User", "header_listeners": ["unix:/run/a.sock"],
                      "jwt": {"jwks": "/etc/jwks.json", "issuer": "https://idp", "audience": "piam"}},
             "api": {"max_page_size": 50, "default_page_size": 20}, "_comment": "ignored"}
            """, env: ["PIAM_ADMIND_FOLLOW_POLL_MS": "250"])
        #expect(c.databasePath == "/x.db")
        #expect(c.listen == [.unix("/run/a.sock"), .tcp(host: "127.0.0.1", port: 8181), .tcp(host: "10.0.0.5", port: 8182)])
        #expect(c.trustsHeader(on: .unix("/run/a.sock")))
        #expect(!c.trustsHeader(on: .tcp(host: "127.0.0.1", port: 8181)), "not listed")
        #expect(!c.trustsHeader(on: .tcp(host: "10.0.0.5", port: 8182)), "never on a non-local listener")
        #expect(c.jwt?.userClaim == "sub")
        #expect(c.api.maxPageSize == 50 && c.followMS == 250)
        #expect(c.consolePublicURL == nil && c.usageRefreshMS == 30_000)
        let proxied = try load(#"{"console": {"public_url": "https://partners.example.com//"}, "usage": {"refresh_ms": 0}}"#)
        #expect(proxied.consolePublicURL == "https://partners.example.com" && proxied.usageRefreshMS == 0)
    }

    @Test func errorsAreOneLineAndNameTheKey() throws {
        let cases: [(String, String)] = [
            (#"{"listen": ["tcp://x"]}"#, "listen tcp://x"),
            (#"{"bogus": 1}"#, "unknown key bogus"),
            (#"{"auth": {"trusted_header": "Authorization"}}"#, "auth.trusted_header"),
            (#"{"listen": ["10.0.0.5:1"], "auth": {"trusted_header": "X-U", "header_listeners": ["10.0.0.5:1"]}}"#, "not a Unix socket or loopback"),
            (#"{"auth": {"jwt": {"jwks": "/j"}}}"#, "needs issuer and audience"),
            (#"{"api": {"max_page_size": 0}}"#, "api.max_page_size"),
            (#"{"console": {"public_url": "partners.example.com"}}"#, "console.public_url"),
            (#"{"console": {"public_url": "https://"}}"#, "console.public_url"),
        ]
        for (json, needle) in cases {
            do {
                _ = try load(json)
                Issue.record("accepted: \(json)")
            } catch let e as PIAMError {
                #expect(e.message.contains(needle), "\(e.message)")
                #expect(!e.message.contains("\n"))
            }
        }
        #expect(throws: PIAMError.self) { try AdminConfig.load(file: nil, environment: ["PIAM_ADMIND_NOPE": "1"]) }
    }
}

import Foundation
import Hummingbird
import PIAMEngine
import PIAMStore

// The usage reports of `piamctl usage`, over HTTP: read from piamd's usage files
// (``AdminConfig/usagePaths``, merged by the ``UsageCache``), and filtered to what the caller
// may `view` on the published graph (the engine decides). A partner or person the caller may not
// view is a 404, exactly like one that does not exist.

extension AdminAPI {
    /// `body` on the merged usage files; without any configured, the reports say so (404
    /// `not_configured`) rather than report no use.
    func withUsageReader<T: Sendable>(_ body: (UsageReader) throws -> T) throws -> T {
        guard let value = try usageCache.read(body) else {
            throw Problem(.notFound, "not_configured",
                          "piam-admind reads no usage files: set usage.paths to piamd's usage.path (or its directory)")
        }
        return value
    }

    /// `features=N` (default 20).
    func featureLimit(_ request: Request) throws -> Int {
        guard let f = request.uri.queryParameters.get("features") else { return 20 }
        guard let n = Int(f), n >= 1, n <= 1000 else { throw Problem(.badRequest, "invalid_input", "features: 1 to 1000, not \(f)") }
        return n
    }

    /// A report document (the same as `piamctl usage … --json`) as a JSON object.
    static func object(_ value: some Encodable) throws -> [String: Any] {
        guard let o = try JSONSerialization.jsonObject(with: JSONEncoder().encode(value)) as? [String: Any] else {
            throw Problem(.internalServerError, "internal", "a usage report did not encode as an object")
        }
        return o
    }

    /// A report document with the graph revision it was judged on.
    static func report(_ value: some Encodable, revision: Int64) throws -> Response {
        var o = try object(value)
        o["revision"] = revision
        return JSONBody.response(o, headers: revisionHeaders(revision))
    }

    /// `GET /admin/v1/usage/partners`: partners with recorded use that the caller may view,
    /// ranked by people active over 30 days, then 7, then decisions; paged by position.
    func usagePartners(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let (limit, cursor) = try page(request)
        let start = try cursor.map { c -> Int in
            guard let n = Int(c), n >= 0 else { throw Problem(.badRequest, PIAMError.Code.badCursor.rawValue, "not a cursor this API gave") }
            return n
        } ?? 0
        let now = Self.now()
        let ranking = try withUsageReader { try $0.partnerRanking(now: now) }
        let loaded = service.graph
        let shown = ranking.filter { visible(loaded.graph, principal.user, BuiltinType.org, $0.partner) }
        let page = shown.dropFirst(start).prefix(limit)
        let next = start + page.count < shown.count ? String(start + page.count) : nil
        return Self.list(try page.map(Self.object), next: next, revision: loaded.revision)
    }

    /// `GET /admin/v1/usage/partners/{org}`: one partner the caller may view.
    func usagePartner(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let id = parameter(context, "org")
        let limit = try featureLimit(request)
        let loaded = service.graph
        guard visible(loaded.graph, principal.user, BuiltinType.org, id), loaded.graph.partnerRoot(ofOrg: id) == id else {
            throw Problem.notFound("partner")
        }
        let now = Self.now()
        let r = try withUsageReader { try $0.partnerReport(id, graph: loaded.graph, now: now, limit: limit) }
        return try Self.report(r, revision: loaded.revision)
    }

    /// `GET /admin/v1/usage/users/{user}`: one person the caller may view.
    func usageUser(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let id = parameter(context, "user")
        let limit = try featureLimit(request)
        let loaded = service.graph
        guard let user = loaded.graph.userID(for: id), visible(loaded.graph, principal.user, BuiltinType.user, user) else {
            throw Problem.notFound("user")
        }
        let now = Self.now()
        var r = try withUsageReader { try $0.userReport(user, graph: loaded.graph, now: now, limit: limit) }
        // Holdings the caller may not view stay out (a partner admin sees its partner's side).
        r.holdings = r.holdings.filter { h in
            h.source != "org_grant" || visible(loaded.graph, principal.user, BuiltinType.org, h.grantOrg ?? h.scope)
        }
        return try Self.report(r, revision: loaded.revision)
    }
}

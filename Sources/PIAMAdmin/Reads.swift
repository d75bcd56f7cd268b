import Foundation
import HTTPTypes
import Hummingbird
import PIAMEngine
import PIAMStore

// The API's reads: each filtered to what the caller may `view`, decided by the engine on the
// published graph. An id the caller may not see is a 404, exactly like one that does not exist.

extension AdminAPI {
    func addReads(to router: Router<AdminRequestContext>) {
        for route in ReadRoute.all {
            router.get(RouterPath(route.path)) { request, context in
                switch route.name {
                case .me: try await me(context)
                case .orgs: try await listOrgs(request, context)
                case .org: try await org(context)
                case .orgGrants: try await orgGrants(context)
                case .users: try await listUsers(request, context)
                case .user: try await user(context)
                case .userGrants: try await userGrants(context)
                case .roles: try await listRoles(request, context)
                case .requests: try await listRequests(request, context)
                case .audit: try await audit(request, context)
                case .scimGroups: try await scimGroups(context)
                case .findings: try await findings(request, context)
                case .usagePartners: try await usagePartners(request, context)
                case .usagePartner: try await usagePartner(request, context)
                case .usageUser: try await usageUser(request, context)
                case .openapi:
                    Response(status: .ok, headers: [.contentType: "application/json"],
                             body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.text)))
                }
            }
        }
    }

    // MARK: Paging

    /// `limit` and `cursor` of a list request.
    func page(_ request: Request) throws -> (limit: Int, cursor: String?) {
        var limit = settings.defaultPageSize
        if let l = request.uri.queryParameters.get("limit") {
            guard let n = Int(l), n >= 1, n <= settings.maxPageSize else {
                throw Problem(.badRequest, "invalid_input", "limit: 1 to \(settings.maxPageSize), not \(l)")
            }
            limit = n
        }
        let cursor = request.uri.queryParameters.get("cursor").flatMap { $0.isEmpty ? nil : $0 }
        return (limit, cursor)
    }

    static func list(_ items: [[String: Any]], next: String?, revision: Int64) -> Response {
        var o: [String: Any] = ["items": items, "revision": revision]
        o["next_cursor"] = next ?? NSNull()
        return JSONBody.response(o, headers: revisionHeaders(revision))
    }

    func parameter(_ context: AdminRequestContext, _ name: String) -> String {
        let v = context.parameters.get(name) ?? ""
        return v.removingPercentEncoding ?? v
    }

    func visible(_ g: AccessGraph, _ user: String, _ type: String, _ id: String) -> Bool {
        if type == BuiltinType.user, g.userID(for: id) == user { return true }
        return g.check(subject: user, action: "view", resource: ResourceRef(type: type, id: id), now: Self.now()).allowed
    }

    // MARK: Me

    /// `GET /admin/v1/me`: who the caller is and what the engine lets it do, for a UI to offer
    /// only that (the server decides every request again).
    func me(_ context: AdminRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let loaded = service.graph
        let g = loaded.graph, now = Self.now()
        guard let report = g.accessReport(user: principal.user, now: now) else { throw Problem.unauthenticated("no such user") }
        let info = try await service.read { store, _ in try store.user(idOrAlias: principal.user) }
        let orgRef = ResourceRef(type: BuiltinType.org, id: report.org)
        let o: [String: Any] = [
            "user": report.user, "name": info?.name ?? NSNull(), "email": info?.email ?? NSNull(),
            "org": report.org, "org_path": report.orgPath,
            "partner": g.partnerRoot(ofOrg: report.org) ?? NSNull(), "host": report.host, "status": report.status,
            "state": report.subjectState.name, "credential": principal.credential,
            "org_actions": g.listActions(subject: principal.user, resource: orgRef, now: now),
            "user_actions": Self.userActions(report, vocabulary: g.vocabulary(ofType: BuiltinType.user)),
            "permissions": report.effective.map { ["permission": $0.permission, "scope": $0.scope, "via": $0.via] as [String: Any] },
            "revision": loaded.revision,
        ]
        return JSONBody.response(o, headers: Self.revisionHeaders(loaded.revision))
    }

    /// The actions on people some effective permission of the report grants (within its scope;
    /// the engine decides each request again), `*` expanded to the vocabulary.
    static func userActions(_ report: AccessReport, vocabulary: [String]) -> [String] {
        var out: Set<String> = []
        for e in report.effective where e.permission.hasPrefix("\(BuiltinType.user):") {
            let action = e.permission.split(separator: ":")[1]
            if action == "*" { out.formUnion(vocabulary) } else { out.insert(String(action)) }
        }
        return out.sorted()
    }

    // MARK: Organizations

    func orgJSON(_ o: OrgInfo, _ g: AccessGraph) -> [String: Any] {
        ["id": o.id, "parent": o.parent ?? NSNull(), "name": o.name, "kind": o.kind.name, "status": o.status.name,
         "partner": g.partnerRoot(ofOrg: o.id) ?? NSNull()]
    }

    func listOrgs(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let (limit, cursor) = try page(request)
        let loaded = service.graph
        let page = try loaded.graph.listResources(subject: principal.user, action: "view", type: BuiltinType.org, cursor: cursor,
                                                  limit: limit, now: Self.now())
        let items = try await service.read { store, _ in try page.items.compactMap { try store.org(id: $0) } }
        return Self.list(items.map { orgJSON($0, loaded.graph) }, next: page.nextCursor, revision: loaded.revision)
    }

    func org(_ context: AdminRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let id = parameter(context, "org")
        let loaded = service.graph
        guard visible(loaded.graph, principal.user, BuiltinType.org, id) else { throw Problem.notFound("org:\(id)") }
        let (info, entitlements) = try await service.read { store, _ in (try store.org(id: id), try store.entitlements(org: id)) }
        guard let info else { throw Problem.notFound("org:\(id)") }
        var o = orgJSON(info, loaded.graph)
        o["entitlements"] = entitlements
        o["revision"] = loaded.revision
        return JSONBody.response(o, headers: Self.revisionHeaders(loaded.revision))
    }

    func orgGrants(_ context: AdminRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let id = parameter(context, "org")
        let loaded = service.graph
        guard visible(loaded.graph, principal.user, BuiltinType.org, id) else { throw Problem.notFound("org:\(id)") }
        let grants = try await service.read { store, _ in try store.orgGrants(org: id) }
        let items = grants.map { g -> [String: Any] in
            ["org": g.org, "role": g.role, "include_suborgs": g.includeSuborgs, "valid_until": g.validUntil.map(RFC3339.format) ?? NSNull(),
             "granted_by": g.grantedBy ?? NSNull(), "granted_at": g.grantedAt.map(RFC3339.format) ?? NSNull()]
        }
        return Self.list(items, next: nil, revision: loaded.revision)
    }

    /// `GET /admin/v1/orgs/{org}/scim-groups`: a partner's SCIM groups with their members and
    /// the roles each maps to, for whoever may view the partner root (its admins maintain the
    /// mapping).
    func scimGroups(_ context: AdminRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let id = parameter(context, "org")
        let loaded = service.graph
        guard visible(loaded.graph, principal.user, BuiltinType.org, id) else { throw Problem.notFound("org:\(id)") }
        let data = try await service.read { store, _ in
            JSONBody.data(["items": try store.scimGroups(partner: id).map { g -> [String: Any] in
                ["id": g.id, "display_name": g.displayName, "external_id": g.externalID ?? NSNull(), "members": g.members, "roles": g.roles]
            }, "next_cursor": NSNull(), "revision": loaded.revision])
        }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    // MARK: People

    func userJSON(_ u: UserInfo, _ g: AccessGraph) -> [String: Any] {
        ["id": u.id, "org": u.org, "name": u.name ?? NSNull(), "email": u.email ?? NSNull(), "aliases": u.aliases,
         "status": u.status.name, "valid_until": u.validUntil.map(RFC3339.format) ?? NSNull(),
         "partner": g.partnerRoot(ofOrg: u.org) ?? NSNull()]
    }

    /// `GET /admin/v1/users[?org=O]`: the people the caller may view (of one org when given).
    func listUsers(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let (limit, cursor) = try page(request)
        let loaded = service.graph
        let g = loaded.graph
        let ids: [String], next: String?
        if let org = request.uri.queryParameters.get("org") {
            guard visible(g, principal.user, BuiltinType.org, org) else { throw Problem.notFound("org:\(org)") }
            // The engine's cursor format: the same as the other lists'.
            let after = try Cursor.decode(cursor)
            var out: [String] = []
            var more = false
            for u in g.users(ofOrg: org) {
                if let after, !after.utf8.lexicographicallyPrecedes(u.utf8) { continue }
                guard visible(g, principal.user, BuiltinType.user, u) else { continue }
                if out.count == limit { more = true; break }
                out.append(u)
            }
            ids = out
            next = more ? out.last.map(Cursor.encode) : nil
        } else {
            let page = try g.listResources(subject: principal.user, action: "view", type: BuiltinType.user, cursor: cursor,
                                           limit: limit, now: Self.now())
            ids = page.items
            next = page.nextCursor
        }
        let infos = try await service.read { store, _ in try ids.compactMap { try store.user(idOrAlias: $0) } }
        return Self.list(infos.map { userJSON($0, g) }, next: next, revision: loaded.revision)
    }

    func user(_ context: AdminRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let id = parameter(context, "user")
        let loaded = service.graph
        guard visible(loaded.graph, principal.user, BuiltinType.user, id) else { throw Problem.notFound("user:\(id)") }
        guard let info = try await service.read({ store, _ in try store.user(idOrAlias: id) }) else { throw Problem.notFound("user:\(id)") }
        var o = userJSON(info, loaded.graph)
        o["revision"] = loaded.revision
        return JSONBody.response(o, headers: Self.revisionHeaders(loaded.revision))
    }

    /// `GET /admin/v1/users/{user}/grants`: the user's holdings (assignments and org grants that
    /// reach it) with their state, and its effective permissions.
    func userGrants(_ context: AdminRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let id = parameter(context, "user")
        let loaded = service.graph
        guard visible(loaded.graph, principal.user, BuiltinType.user, id),
              let report = loaded.graph.accessReport(user: id, now: Self.now()) else { throw Problem.notFound("user:\(id)") }
        let holdings = report.holdings.map { h -> [String: Any] in
            ["source": h.source, "role": h.role, "scope": h.scope, "org_grant": h.grantOrg ?? NSNull(),
             "include_suborgs": h.includeSuborgs ?? NSNull(), "valid_until": h.validUntil.map(RFC3339.format) ?? NSNull(),
             "state": h.state, "permissions": h.permissions]
        }
        let o: [String: Any] = [
            "user": report.user, "items": holdings,
            "effective": report.effective.map { ["permission": $0.permission, "scope": $0.scope, "via": $0.via] as [String: Any] },
            "revision": loaded.revision, "next_cursor": NSNull(),
        ]
        return JSONBody.response(o, headers: Self.revisionHeaders(loaded.revision))
    }

    // MARK: Roles

    func listRoles(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let (limit, cursor) = try page(request)
        let loaded = service.graph
        let page = try loaded.graph.listResources(subject: principal.user, action: "view", type: BuiltinType.role, cursor: cursor,
                                                  limit: limit, now: Self.now())
        let roles = try await service.read { store, _ in try page.items.compactMap { try store.role(id: $0) } }
        let items = roles.map { r -> [String: Any] in
            ["id": r.id, "name": r.name ?? NSNull(), "description": r.description ?? NSNull(), "permissions": r.permissions]
        }
        return Self.list(items, next: page.nextCursor, revision: loaded.revision)
    }

    // MARK: Access requests

    /// `GET /admin/v1/requests[?status=pending]`: the caller's own requests and those of people
    /// it may view, oldest first.
    func listRequests(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let (limit, cursor) = try page(request)
        let status = request.uri.queryParameters.get("status")
        if let status, !["pending", "approved", "denied"].contains(status) {
            throw Problem(.badRequest, "invalid_input", "status: pending, approved or denied, not \(status)")
        }
        let after = try cursor.map { c -> Int64 in
            guard let n = Int64(c) else { throw Problem(.badRequest, PIAMError.Code.badCursor.rawValue, "not a cursor this API gave") }
            return n
        }
        let loaded = service.graph
        let all = try await service.read { store, _ in try store.accessRequests(status: status) }
        var out: [AccessRequestInfo] = []
        var more = false
        for r in all where after.map({ r.id > $0 }) ?? true {
            guard r.user == principal.user || visible(loaded.graph, principal.user, BuiltinType.user, r.user) else { continue }
            if out.count == limit { more = true; break }
            out.append(r)
        }
        let items = out.map { r -> [String: Any] in
            ["id": r.id, "user": r.user, "role": r.role, "scope": r.scope, "note": r.note ?? NSNull(), "status": r.status,
             "created_at": RFC3339.format(r.createdAt), "decided_by": r.decidedBy ?? NSNull(),
             "decided_at": r.decidedAt.map(RFC3339.format) ?? NSNull(), "decision_note": r.decisionNote ?? NSNull()]
        }
        return Self.list(items, next: more ? out.last.map { String($0.id) } : nil, revision: loaded.revision)
    }

    // MARK: Audit

    /// `GET /admin/v1/audit[?cursor=&limit=]`: newest first. A caller the engine lets `update`
    /// the root org (the business's administrators) reads every row; anyone else the rows of
    /// the partners whose root org it may `update` (a partner's admins: their partner's rows).
    func audit(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let (limit, cursor) = try page(request)
        let before = try cursor.map { c -> Int64 in
            guard let n = Int64(c) else { throw Problem(.badRequest, PIAMError.Code.badCursor.rawValue, "not a cursor this API gave") }
            return n
        }
        let loaded = service.graph
        let g = loaded.graph, now = Self.now()
        let root = g.allOrgIDs.first ?? ""
        func may(_ org: String) -> Bool {
            g.check(subject: principal.user, action: "update", resource: ResourceRef(type: BuiltinType.org, id: org), now: now).allowed
        }
        let everything = may(root)
        var partner: String?
        if !everything {
            guard let org = g.accessReport(user: principal.user, now: now)?.org, let p = g.partnerRoot(ofOrg: org), may(p) else {
                throw Problem(.forbidden, Reason.outOfScope.name, "reading the audit log takes update on your partner's organization")
            }
            partner = p
        }
        let filter = AuditFilter(partner: partner, beforeID: before, limit: limit + 1)
        let rows = try await service.read { store, _ in Array(try store.auditLog(filter).reversed()) }
        let page = Array(rows.prefix(limit))
        let items = page.map { a -> [String: Any] in
            var o: [String: Any] = ["id": a.id, "at": RFC3339.format(a.at), "actor": a.actor, "operation": a.operation,
                                    "target": a.target, "decision": a.decision, "reason": a.reason, "revision": a.revision]
            o["partner"] = a.partner ?? NSNull()
            o["actor_partner"] = a.actorPartner ?? NSNull()
            o["message"] = a.message ?? NSNull()
            o["batch"] = a.batch ?? NSNull()
            o["credential"] = a.credential ?? NSNull()
            let detail: Any? = a.detail.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) }
            o["detail"] = detail ?? NSNull()
            return o
        }
        return Self.list(items, next: rows.count > limit ? page.last.map { String($0.id) } : nil, revision: loaded.revision)
    }

    // MARK: Findings

    /// `GET /admin/v1/findings?days=N`: the findings whose remedy the caller may perform (the
    /// engine decides: a partner admin gets its partner's, a host admin everyone's), paged by
    /// position.
    func findings(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let (limit, cursor) = try page(request)
        var days = 90
        if let d = request.uri.queryParameters.get("days") {
            guard let n = Int(d), n >= 0, n <= 36_500 else { throw Problem(.badRequest, "invalid_input", "days: 0 to 36500, not \(d)") }
            days = n
        }
        let start = try cursor.map { c -> Int in
            guard let n = Int(c), n >= 0 else { throw Problem(.badRequest, PIAMError.Code.badCursor.rawValue, "not a cursor this API gave") }
            return n
        } ?? 0
        var kind: Finding.Kind?
        if let k = request.uri.queryParameters.get("kind").flatMap({ $0.isEmpty ? nil : String($0) }) {
            guard let parsed = Finding.Kind(rawValue: k) else {
                throw Problem(.badRequest, "invalid_input", "kind: one of \(Finding.Kind.allCases.map(\.rawValue).joined(separator: ", ")), not \(k)")
            }
            kind = parsed
        }
        let usage = try self.usage()
        let now = Self.now(), window = days
        var (found, revision) = try await service.read { store, g in
            (try store.findings(usage: usage, days: window, now: now, viewer: principal.user, graph: g), g.revision)
        }
        if let kind { found = found.filter { $0.kind == kind } }
        let page = found.dropFirst(start).prefix(limit)
        let next = start + page.count < found.count ? String(start + page.count) : nil
        return Self.list(page.map(\.json), next: next, revision: revision)
    }
}

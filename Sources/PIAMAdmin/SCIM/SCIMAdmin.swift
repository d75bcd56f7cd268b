import Foundation
import HTTPTypes
import Hummingbird
import PIAMEngine
import PIAMStore

/// The administration API's side of SCIM: the business creates, lists and revokes a partner's
/// SCIM tokens (`/admin/v1/orgs/{org}/scim-tokens`), and a partner's admin maps its SCIM groups
/// to PIAM roles (`scim.group.map`, `scim.group.unmap`).
extension AdminAPI {
    static let scimTokensPath = "\(OperationRoute.prefix)/orgs/{org}/scim-tokens"

    func addSCIMAdmin(to router: Router<AdminRequestContext>) {
        router.post(RouterPath(Self.scimTokensPath)) { request, context in try await createSCIMToken(request, context) }
        router.get(RouterPath(Self.scimTokensPath)) { request, context in try await listSCIMTokens(request, context) }
        router.delete(RouterPath(Self.scimTokensPath + "/{id}")) { request, context in try await revokeSCIMToken(request, context) }
    }

    static func scimTokenJSON(_ t: SCIMTokenInfo, now: Timestamp) -> [String: Any] {
        ["id": t.id, "partner": t.partner, "service_user": t.serviceUser, "status": t.status(at: now),
         "created_at": RFC3339.format(t.createdAt), "created_by": t.createdBy ?? NSNull(),
         "expires_at": t.expiresAt.map(RFC3339.format) ?? NSNull(), "revoked_at": t.revokedAt.map(RFC3339.format) ?? NSNull(),
         "last_used_at": t.lastUsedAt.map(RFC3339.format) ?? NSNull(), "endpoint": "\(SCIMAPI.prefix)/\(t.partner)"]
    }

    /// The business only: `check(caller, entitle, org:P)` (host-only, like the partner's
    /// ceiling). Refused: 404 when the caller may not even view the org, else 403 — audited.
    func requireSCIMAdministrator(_ principal: Principal, org: String, operation: String) async throws {
        let d = service.graph.graph.check(subject: principal.user, action: "entitle", resource: ResourceRef(type: BuiltinType.org, id: org),
                                          now: Self.now())
        guard !d.allowed else { return }
        let partner = service.graph.graph.partnerRoot(ofOrg: org)
        let message = "\(principal.user) may not manage the SCIM tokens of org:\(org) (\(d.reason.name))"
        _ = try? await service.write { w in
            try w.store.auditSCIM(operation: operation, target: "org:\(org)", actor: principal.user, decision: "refused", reason: d.reason.name,
                                  message: message, partner: partner, credential: principal.credential)
        }
        if try await !isVisible("org:\(org)", to: principal.user) { throw Problem.notFound("org:\(org)") }
        throw Problem(.forbidden, d.reason.name, message)
    }

    func createSCIMToken(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let org = parameter(context, "org")
        let body = try await JSONBody.object(request, limit: settings.maxBodyBytes)
        for k in body.keys.sorted() where k != "roles" && k != "expires" {
            throw Problem(.badRequest, "invalid_input", "unknown field \"\(k)\" (takes: roles, expires)")
        }
        guard let roles = body["roles"] as? [String], !roles.isEmpty, roles.allSatisfy({ entityIDProblem($0) == nil }) else {
            throw Problem(.unprocessableContent, "invalid_input", "roles: a non-empty list of role ids (the SCIM service user's roles)")
        }
        var expires: Timestamp?
        if let e = body["expires"], !(e is NSNull) {
            guard let s = e as? String, let t = RFC3339.parse(s) else {
                throw Problem(.unprocessableContent, "invalid_input", "expires: an RFC 3339 time")
            }
            expires = t
        }
        try await requireSCIMAdministrator(principal, org: org, operation: "scim.token.create")
        let now = Self.now()
        let until = expires
        let made: Result<(SCIMTokenInfo, String), PIAMError> = try await service.write { w in
            do {
                let r = try w.store.createSCIMToken(partner: org, roles: roles, expires: until, createdBy: principal.user, now: now,
                                                    credential: principal.credential)
                try w.catchUp()
                return .success((r.info, r.secret))
            } catch let e as PIAMError {
                return .failure(e)
            }
        }
        switch made {
        case .success(let (info, secret)):
            var o = Self.scimTokenJSON(info, now: now)
            o["secret"] = secret
            o["secret_note"] = "shown once: the database keeps only its SHA-256"
            return JSONBody.response(o, status: .created)
        case .failure(let e) where e.code == .invalidInput || e.code.rawValue == Reason.outsideCeiling.name:
            throw Problem(.unprocessableContent, e.code.rawValue, e.message)
        case .failure(let e):
            throw Problem.from(e)
        }
    }

    func listSCIMTokens(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let org = parameter(context, "org")
        try await requireSCIMAdministrator(principal, org: org, operation: "scim.token.list")
        let now = Self.now()
        let data = try await service.read { store, _ in JSONBody.data(["items": try store.scimTokens(partner: org).map { Self.scimTokenJSON($0, now: now) }]) }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    func revokeSCIMToken(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let org = parameter(context, "org")
        guard let id = Int64(parameter(context, "id")) else { throw Problem.notFound("SCIM token") }
        try await requireSCIMAdministrator(principal, org: org, operation: "scim.token.revoke")
        let now = Self.now()
        let data = try await service.read { store, _ in try store.scimToken(id: id)?.partner == org }
        guard data else { throw Problem.notFound("SCIM token #\(id)") }
        let data2 = try await service.write { w in
            JSONBody.data(Self.scimTokenJSON(try w.store.revokeSCIMToken(id: id, revokedBy: principal.user, now: now,
                                                                          credential: principal.credential), now: now))
        }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data2)))
    }

    /// `PUT|DELETE /admin/v1/scim/groups/{group}/roles/{role}`: the mapping operation by the
    /// caller, and — in the same transaction — the grants or revocations it brings to the
    /// group's members, made by the partner's SCIM service user through `can_assign`.
    func performSCIMMapping(_ route: OperationRoute, _ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let group = parameter(context, "group"), role = parameter(context, "role")
        let map = route.operation == "scim.group.map"
        let op: AdminOperation = map ? .mapSCIMGroup(group: group, role: role) : .unmapSCIMGroup(group: group, role: role)
        let outcome: Result<ApplyResult, PIAMError> = try await service.write { w in
            do {
                try w.catchUp()
                var items = [AdminBatchItem(actor: principal.user, operation: op)]
                if let g = try w.store.scimGroup(group) {
                    let svc = Store.scimServiceUser(partner: g.partner)
                    var roles = Set(g.roles)
                    if map { roles.insert(role) } else { roles.remove(role) }
                    let ops = try SCIMAPI.membershipOperations(group: group, roles: Array(roles), members: g.members, affected: Set(g.members),
                                                               actor: svc, store: w.store)
                    items += ops.map { AdminBatchItem(actor: svc, operation: $0) }
                }
                return .success(try w.apply(items, credential: principal.credential))
            } catch let e as PIAMError {
                return .failure(e)
            }
        }
        let result: ApplyResult
        switch outcome {
        case .success(let r): result = r
        case .failure(let e): throw Problem.from(e)
        }
        if result.committed {
            return JSONBody.response(Self.applyJSON(result), headers: Self.revisionHeaders(result.revision))
        }
        let failed = result.results.first { $0.status == "refused" || $0.status == "failed" }
        if failed?.status == "failed" {
            throw Problem.from(PIAMError(PIAMError.Code(failed?.reason ?? "failed"), failed?.message ?? ""))
        }
        if let f = failed, f.index == 0, try await !isVisible(f.target, to: principal.user) { throw Problem.notFound(f.target) }
        throw Problem(.forbidden, failed?.reason ?? "refused",
                      "\(failed?.operation ?? "") \(failed?.target ?? ""): \(failed?.message ?? "") — nothing was applied",
                      extra: ["results": Self.applyJSON(result)["results"] ?? [Any]()])
    }
}

import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import PIAMEngine
import PIAMStore

/// The SCIM 2.0 service provider (RFC 7643/7644): one endpoint per partner,
/// `/scim/v2/orgs/{partner}/` with `Users`, `Groups`, `Roles`, `ServiceProviderConfig`,
/// `ResourceTypes` and `Schemas`.
///
/// A request authenticates with one of the partner's SCIM tokens
/// (``PIAMStore/Store/createSCIMToken(partner:roles:expires:createdBy:now:credential:)``) and
/// acts as the partner's SCIM service user. Every write is one or more existing administrative
/// operations run through ``PIAMStore/AdminWriter`` as that user — one transaction, decided by
/// the engine, audited with the credential `scim:PARTNER#ID` — so a SCIM request can never do
/// what the partner's admin could not do by hand. See <doc:SCIMProvisioning>.
public struct SCIMAPI: Sendable {
    let service: AdminService
    let settings: APISettings

    /// The SCIM provider of `service`, with the API's body and page limits.
    public init(service: AdminService, settings: APISettings) {
        self.service = service
        self.settings = settings
    }

    static let prefix = "/scim/v2/orgs"

    /// Adds the SCIM routes to `router`.
    public func add(to router: Router<AdminRequestContext>) {
        let p = "\(Self.prefix)/{partner}"
        router.get("\(p)/ServiceProviderConfig") { r, c in try await discovery(r, c) { SCIMResponse.json(SCIMSchemas.serviceProviderConfig(base: $0)) } }
        router.get("\(p)/ResourceTypes") { r, c in
            try await discovery(r, c) { SCIMResponse.json(Self.listJSON(SCIMSchemas.resourceTypes(base: $0), total: 2, start: 1)) }
        }
        router.get("\(p)/ResourceTypes/{id}") { r, c in
            try await discovery(r, c) { base in
                guard let t = SCIMSchemas.resourceTypes(base: base).first(where: { $0["id"] as? String == c.parameters.get("id") }) else {
                    throw SCIMError.notFound("resource type")
                }
                return SCIMResponse.json(t)
            }
        }
        router.get("\(p)/Schemas") { r, c in
            try await scim(r, c) { caller in
                SCIMResponse.json(Self.listJSON(SCIMSchemas.schemas(base: caller.base, roles: assignableRoles(caller)), total: 3, start: 1))
            }
        }
        router.get("\(p)/Schemas/{id}") { r, c in
            try await scim(r, c) { caller in
                let id = c.parameters.get("id").map { $0.removingPercentEncoding ?? $0 }
                guard let s = SCIMSchemas.schemas(base: caller.base, roles: assignableRoles(caller)).first(where: { $0["id"] as? String == id }) else {
                    throw SCIMError.notFound("schema")
                }
                return SCIMResponse.json(s)
            }
        }
        router.get("\(p)/Roles") { r, c in try await scim(r, c) { caller in try await listRoles(caller, r) } }
        router.get("\(p)/Users") { r, c in try await scim(r, c) { caller in try await listUsers(caller, r) } }
        router.post("\(p)/Users") { r, c in try await scim(r, c) { caller in try await createUser(caller, r) } }
        router.post("\(p)/Users/.search") { r, c in try await scim(r, c) { caller in try await search(caller, r, users: true, groups: false) } }
        router.get("\(p)/Users/{id}") { r, c in try await scim(r, c) { caller in try await getUser(caller, r, id(c)) } }
        router.put("\(p)/Users/{id}") { r, c in try await scim(r, c) { caller in try await replaceUser(caller, r, id(c), patch: false) } }
        router.patch("\(p)/Users/{id}") { r, c in try await scim(r, c) { caller in try await replaceUser(caller, r, id(c), patch: true) } }
        router.delete("\(p)/Users/{id}") { r, c in try await scim(r, c) { caller in try await deleteUser(caller, r, id(c)) } }
        router.post("\(p)/Groups/.search") { r, c in try await scim(r, c) { caller in try await search(caller, r, users: false, groups: true) } }
        router.post("\(p)/.search") { r, c in try await scim(r, c) { caller in try await search(caller, r, users: true, groups: true) } }
        router.get("\(p)/Groups") { r, c in try await scim(r, c) { caller in try await listGroups(caller, r) } }
        router.post("\(p)/Groups") { r, c in try await scim(r, c) { caller in try await createGroup(caller, r) } }
        router.get("\(p)/Groups/{id}") { r, c in try await scim(r, c) { caller in try await getGroup(caller, r, id(c)) } }
        router.put("\(p)/Groups/{id}") { r, c in try await scim(r, c) { caller in try await replaceGroup(caller, r, id(c), patch: false) } }
        router.patch("\(p)/Groups/{id}") { r, c in try await scim(r, c) { caller in try await replaceGroup(caller, r, id(c), patch: true) } }
        router.delete("\(p)/Groups/{id}") { r, c in try await scim(r, c) { caller in try await deleteGroup(caller, r, id(c)) } }
    }

    /// The SCIM routes as (method, path below the partner's endpoint), for 405 answers.
    static let routes: [(String, String)] = [
        ("GET", "ServiceProviderConfig"), ("GET", "ResourceTypes"), ("GET", "ResourceTypes/{id}"), ("GET", "Schemas"),
        ("GET", "Schemas/{id}"), ("GET", "Roles"), ("GET", "Users"), ("POST", "Users"), ("POST", "Users/.search"),
        ("POST", "Groups/.search"), ("POST", ".search"), ("GET", "Users/{id}"), ("PUT", "Users/{id}"), ("PATCH", "Users/{id}"), ("DELETE", "Users/{id}"),
        ("GET", "Groups"), ("POST", "Groups"), ("GET", "Groups/{id}"), ("PUT", "Groups/{id}"), ("PATCH", "Groups/{id}"),
        ("DELETE", "Groups/{id}"),
    ]

    /// The methods a SCIM path answers (empty: no such path).
    static func methods(matching path: String) -> [String] {
        let parts = path.split(separator: "/")
        guard parts.count >= 5, parts[0] == "scim", parts[1] == "v2", parts[2] == "orgs" else { return [] }
        let rest = parts.dropFirst(4)
        var out: Set<String> = []
        for (method, template) in routes {
            let t = template.split(separator: "/")
            guard t.count == rest.count else { continue }
            if zip(t, rest).allSatisfy({ a, b in a.hasPrefix("{") ? b != ".search" : a == b }) { out.insert(method) }
        }
        return out.sorted()
    }

    func id(_ c: AdminRequestContext) -> String {
        let v = c.parameters.get("id") ?? ""
        return v.removingPercentEncoding ?? v
    }

    // MARK: Authentication

    /// Who a SCIM request acts as.
    struct Caller: Sendable {
        var token: SCIMTokenInfo
        var partner: String { token.partner }
        var actor: String { token.serviceUser }
        var credential: String { token.credential }
        /// The endpoint's base URL path (`/scim/v2/orgs/acme`).
        var base: String {
            "\(SCIMAPI.prefix)/\(token.partner.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? token.partner)"
        }
    }

    /// Authenticates the request for the partner of its path, then runs `body`; every error
    /// becomes a SCIM error.
    func scim(_ request: Request, _ context: AdminRequestContext, _ body: (Caller) async throws -> Response) async throws -> Response {
        do {
            let raw = context.parameters.get("partner") ?? ""
            let caller = try await authenticate(request, partner: raw.removingPercentEncoding ?? raw)
            return try await body(caller)
        } catch let e as SCIMError {
            throw e
        } catch let e as PIAMError {
            throw SCIMError.from(e)
        } catch let p as Problem {
            throw SCIMError(p.status, code: p.code, p.detail)
        }
    }

    /// Discovery documents need a valid token of the partner too (RFC 7644 allows them
    /// unauthenticated; PIAM keeps which partners exist to the partners themselves).
    func discovery(_ request: Request, _ context: AdminRequestContext, _ body: (String) throws -> Response) async throws -> Response {
        try await scim(request, context) { caller in try body(caller.base) }
    }

    /// The token of `Authorization: Bearer`, checked for this partner: a missing, unknown,
    /// expired or revoked token is 401; another partner's token 404 (the endpoint of a
    /// partner one may not see looks like none); a token whose partner (or service user) the
    /// engine finds inactive 403 with the engine's reason. Every refusal of a known token is
    /// audited (`scim.auth`).
    func authenticate(_ request: Request, partner: String) async throws -> Caller {
        guard let auth = request.headers[.authorization] else {
            throw SCIMError.unauthenticated("authenticate with Authorization: Bearer and the partner's SCIM token")
        }
        let parts = auth.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw SCIMError.unauthenticated("Authorization must be Bearer <SCIM token>")
        }
        let secret = String(parts[1]).trimmingCharacters(in: .whitespaces)
        let now = AdminAPI.now()
        let check = try await service.read { store, _ in try store.authenticateSCIMToken(secret, now: now) }
        let token: SCIMTokenInfo
        switch check {
        case .unknown: throw SCIMError.unauthenticated("unknown SCIM token")
        case .expired(let t):
            try await audit(t, decision: "refused", reason: "token_expired", message: "SCIM token #\(t.id) expired")
            throw SCIMError.unauthenticated("SCIM token #\(t.id) expired")
        case .revoked(let t):
            try await audit(t, decision: "refused", reason: "token_revoked", message: "SCIM token #\(t.id) was revoked")
            throw SCIMError.unauthenticated("SCIM token #\(t.id) was revoked")
        case .valid(let t): token = t
        }
        guard token.partner == partner else {
            try await audit(token, decision: "refused", reason: Reason.outOfScope.name,
                            message: "SCIM token #\(token.id) of partner \(token.partner) used on the endpoint of \"\(partner.prefix(64))\"")
            throw SCIMError.notFound("SCIM endpoint")
        }
        // The engine: may the service user act at all (its partner active, itself active)?
        let d = service.graph.graph.check(subject: token.serviceUser, action: "view",
                                          resource: ResourceRef(type: BuiltinType.org, id: partner), now: now)
        guard d.allowed else {
            try await audit(token, decision: "refused", reason: d.reason.name,
                            message: "SCIM token #\(token.id): user:\(token.serviceUser) may not act (\(d.reason.name))")
            throw SCIMError(.forbidden, code: d.reason.name, "partner \(partner)'s SCIM service user may not act: \(d.reason.name)")
        }
        return Caller(token: token)
    }

    func audit(_ t: SCIMTokenInfo, decision: String, reason: String, message: String, operation: String = "scim.auth",
               target: String? = nil) async throws {
        _ = try await service.write { w in
            try w.store.auditSCIM(operation: operation, target: target ?? "org:\(t.partner)", actor: t.serviceUser, decision: decision,
                                  reason: reason, message: message, partner: t.partner, credential: t.credential)
        }
    }

    /// Audits a read (every use of a token is in the audit log).
    func auditRead(_ caller: Caller, _ request: Request) async throws {
        try await audit(caller.token, decision: "allowed", reason: Reason.allowed.name,
                        message: "\(request.method.rawValue) \(request.uri.path)", operation: "scim.read")
    }

    // MARK: Lists

    static func listJSON(_ resources: [[String: Any]], total: Int, start: Int) -> [String: Any] {
        ["schemas": [SCIMSchemas.listResponse], "totalResults": total, "itemsPerPage": resources.count, "startIndex": start,
         "Resources": resources]
    }

    /// The query of a list request: filter, startIndex, count, attributes, excludedAttributes.
    struct ListQuery: Sendable {
        var filter: SCIMFilter?
        var start = 1
        var count: Int
        var attributes: [String] = []
        var excluded: [String] = []

        init(get request: Request, settings: APISettings) throws {
            let q = Self.form(request.uri.query ?? "")
            try self.init(filter: q["filter"], start: q["startIndex"], count: q["count"],
                          attributes: q["attributes"], excluded: q["excludedAttributes"], settings: settings)
        }

        /// The query as an HTML form (`+` is a space, as Entra ID sends it), names without case.
        static func form(_ query: String) -> [String: String] {
            var out: [String: String] = [:]
            for pair in query.split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1).map { String($0).replacingOccurrences(of: "+", with: " ") }
                let k = kv[0].removingPercentEncoding ?? kv[0]
                let v = kv.count > 1 ? (kv[1].removingPercentEncoding ?? kv[1]) : ""
                let known = ["filter", "startIndex", "count", "attributes", "excludedAttributes", "sortBy", "sortOrder"]
                out[known.first { $0.lowercased() == k.lowercased() } ?? k] = v
            }
            return out
        }

        init(filter: String?, start: String?, count: String?, attributes: String?, excluded: String?, settings: APISettings) throws {
            if let f = filter, !f.trimmingCharacters(in: .whitespaces).isEmpty { self.filter = try SCIMFilter.parse(f) }
            if let s = start {
                guard let n = Int(s) else { throw SCIMError.invalidValue("startIndex: an integer, not \(s)") }
                self.start = max(1, n)
            }
            self.count = settings.defaultPageSize
            if let c = count {
                guard let n = Int(c) else { throw SCIMError.invalidValue("count: an integer, not \(c)") }
                self.count = min(max(0, n), settings.maxPageSize)
            }
            self.attributes = Self.names(attributes)
            self.excluded = Self.names(excluded)
        }

        static func names(_ s: String?) -> [String] {
            (s ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }

        func page(_ all: [[String: Any]]) -> [String: Any] {
            let matching = filter.map { f in all.filter { f.matches($0) } } ?? all
            let slice = Array(matching.dropFirst(start - 1).prefix(count))
            return SCIMAPI.listJSON(slice.map { SCIMAPI.project($0, attributes: attributes, excluded: excluded) }, total: matching.count,
                                    start: start)
        }
    }

    /// `attributes` / `excludedAttributes` (top-level names, with or without their schema URN);
    /// `id` and `schemas` are always returned.
    static func project(_ r: [String: Any], attributes: [String], excluded: [String]) -> [String: Any] {
        func bare(_ a: String) -> String {
            let l = a.lowercased()
            for s in SCIMPath.coreSchemas where l.hasPrefix(s.lowercased() + ":") { return String(l.dropFirst(s.count + 1)) }
            return String(l.split(separator: ".").first ?? Substring(l))
        }
        let always: Set<String> = ["id", "schemas"]
        if !attributes.isEmpty {
            let keep = Set(attributes.map(bare)).union(always)
            return r.filter { keep.contains($0.key.lowercased()) }
        }
        if !excluded.isEmpty {
            let drop = Set(excluded.map(bare)).subtracting(always)
            return r.filter { !drop.contains($0.key.lowercased()) }
        }
        return r
    }

    /// `W/"…"`: a digest of the resource without `meta` (any change, by SCIM or by hand, moves it).
    static func etag(_ r: [String: Any]) -> String {
        var copy = r
        copy.removeValue(forKey: "meta")
        let digest = SHA256.hash(data: JSONBody.data(copy))
        return "W/\"" + digest.prefix(8).map { String(format: "%02x", $0) }.joined() + "\""
    }

    /// Reads a SCIM request body (JSON object).
    func body(_ request: Request) async throws -> Data {
        var req = request
        let buffer: ByteBuffer
        do {
            buffer = try await req.collectBody(upTo: settings.maxBodyBytes)
        } catch {
            throw SCIMError(.contentTooLarge, code: "too_large", "the body exceeds \(settings.maxBodyBytes) bytes")
        }
        let data = Data(buffer: buffer)
        guard (try? JSONSerialization.jsonObject(with: data)) is [String: Any] else {
            throw SCIMError.invalidSyntax("the body must be a JSON object")
        }
        return data
    }

    static func object(_ data: Data) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
    }

    /// A resource answer with its `ETag` (and `Location` when created), and for a write the
    /// graph revision it produced (`X-PIAM-Revision`: piamd's `min_revision`).
    static func resourceResponse(_ r: [String: Any], status: HTTPResponse.Status = .ok, revision: Int64? = nil) -> Response {
        var h: HTTPFields = revision.map(AdminAPI.revisionOnly) ?? [:]
        if let meta = r["meta"] as? [String: Any] {
            if let v = meta["version"] as? String { h[.eTag] = v }
            if status == .created, let l = meta["location"] as? String { h[.location] = l }
        }
        return SCIMResponse.json(r, status: status, headers: h)
    }

    // MARK: Roles

    /// The roles of the partner's ceiling its SCIM service user may hand out (the engine's
    /// `canGrantToOrg` at the partner root), sorted: the canonical values of `roles`.
    func assignableRoles(_ caller: Caller) -> [String] {
        service.graph.graph.grantableRoles(actor: caller.actor, org: caller.partner, now: AdminAPI.now())
    }

    /// `GET /Roles`: the roles the partner may be given (its ceiling), as a list response;
    /// `assignable` says whether the partner's SCIM service user could hand it out (the engine's
    /// rule 5 of can_assign at the partner root).
    func listRoles(_ caller: Caller, _ request: Request) async throws -> Response {
        let query = try ListQuery(get: request, settings: settings)
        try await auditRead(caller, request)
        let data = try await service.read { store, loaded in
            let items = try store.listRoles().filter { loaded.graph.isInCeiling(role: $0.id, of: caller.partner) }.map { r -> [String: Any] in
                var o: [String: Any] = ["schemas": [SCIMSchemas.role], "id": r.id, "value": r.id, "displayName": r.name ?? r.id,
                                        "permissions": r.permissions]
                if let d = r.description { o["description"] = d }
                o["assignable"] = loaded.graph.canGrantToOrg(actor: caller.actor, org: caller.partner, role: r.id, now: AdminAPI.now()).allowed
                return o
            }
            return JSONBody.data(query.page(items))
        }
        return SCIMResponse.raw(data)
    }
}

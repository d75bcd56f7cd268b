import Foundation
import HTTPTypes
import Hummingbird
import PIAMEngine
import PIAMStore

/// SCIM Users: each a PIAM user of the partner, provisioned through existing administrative
/// operations (`user.invite`, `user.activate`, `user.update`, `user.suspend`,
/// `user.reactivate`, `user.remove`, `user.alias.add|remove`, `grant`, `revoke`) performed as
/// the partner's SCIM service user, in one transaction per request.
extension SCIMAPI {
    /// The key under which the stored resource remembers the aliases SCIM gave the user.
    static let aliasesKey = "_piam_aliases"

    /// What a SCIM User resource asks of PIAM.
    struct DesiredUser {
        var userName: String
        var externalID: String?
        var name: String?
        var email: String?
        var active: Bool
        /// Roles asked for directly (the `roles` attribute), as role ids.
        var roles: [String]
        /// The resource to keep (attributes without a PIAM column), without the aliases.
        var kept: [String: Any]
    }

    /// Reads a User resource (POST, PUT, or the result of a PATCH). Throws 400s. An absent
    /// `active` keeps `currentActive` (a PUT without it never reactivates a suspended user),
    /// and is true on creation.
    static func desiredUser(_ body: [String: Any], store: Store, currentActive: Bool? = nil) throws -> DesiredUser {
        guard let userName = (SCIMJSON.member(body, "userName") as? String)?.trimmingCharacters(in: .whitespaces), !userName.isEmpty else {
            throw SCIMError.invalidValue("userName is required (a non-empty string)")
        }
        guard userName.utf8.count <= 200 else { throw SCIMError.invalidValue("userName: at most 200 bytes") }
        var externalID: String?
        if let e = SCIMJSON.member(body, "externalId"), !(e is NSNull) {
            guard let s = e as? String else { throw SCIMError.invalidValue("externalId must be a string") }
            externalID = s.isEmpty ? nil : s
            if s.utf8.count > 200 { throw SCIMError.invalidValue("externalId: at most 200 bytes") }
        }
        let active = try bool(SCIMJSON.member(body, "active"), "active") ?? currentActive ?? true
        var kept: [String: Any] = [:]
        let dropped: Set<String> = ["schemas", "id", "meta", "username", "externalid", "active", "groups", "password", aliasesKey.lowercased()]
        for (k, v) in body where !dropped.contains(k.lowercased()) && !(v is NSNull) { kept[k] = v }
        // Roles: ids, also inside Entra ID's JSON strings.
        var roles: [String] = []
        if let r = SCIMJSON.member(body, "roles"), !(r is NSNull) {
            var elements: [[String: Any]] = []
            for e in SCIMPatch.list((r as? String).flatMap(SCIMPatch.jsonText) ?? r) {
                guard let id = roleID(e) else { throw SCIMError.invalidValue("roles: each is {\"value\": ROLE} (see the Roles endpoint)") }
                guard try store.role(id: id) != nil else {
                    throw SCIMError.invalidValue("roles: no such role \"\(id)\" (see the Roles endpoint)", code: Reason.unknownRole.name)
                }
                if !roles.contains(id) {
                    roles.append(id)
                    var element = (e as? [String: Any]) ?? [:]
                    element["value"] = id
                    elements.append(element)
                }
            }
            kept[SCIMJSON.key(kept, "roles")] = elements
            if elements.isEmpty { kept.removeValue(forKey: SCIMJSON.key(kept, "roles")) }
        }
        if let emails = SCIMJSON.member(body, "emails"), !(emails is NSNull), !(emails is [Any]) {
            throw SCIMError.invalidValue("emails must be a list")
        }
        return DesiredUser(userName: userName, externalID: externalID, name: piamName(body), email: piamEmail(body), active: active,
                           roles: roles, kept: kept)
    }

    /// A role element's id: `"id"`, `{"value": "id"}`, or (Entra ID) a value that is itself
    /// JSON text `{"value": "id", …}` or `{"id": "id"}`.
    static func roleID(_ e: Any) -> String? {
        var v: Any? = e
        if let d = e as? [String: Any] { v = SCIMJSON.member(d, "value") }
        guard let s = v as? String, !s.isEmpty else { return nil }
        if s.hasPrefix("{"), let o = (try? JSONSerialization.jsonObject(with: Data(s.utf8))) as? [String: Any] {
            return (SCIMJSON.member(o, "value") as? String) ?? (SCIMJSON.member(o, "id") as? String)
        }
        return s
    }

    /// A boolean as clients send it: `true`, `"False"`, `"true"`.
    static func bool(_ v: Any?, _ name: String) throws -> Bool? {
        guard let v, !(v is NSNull) else { return nil }
        if let n = v as? NSNumber, String(cString: n.objCType) == "c" { return n.boolValue }
        if let b = v as? Bool { return b }
        if let s = v as? String, let b = Bool(s.lowercased()) { return b }
        throw SCIMError.invalidValue("\(name) must be true or false, not \(v)")
    }

    /// PIAM's name: displayName, else name.formatted, else given and family name.
    static func piamName(_ r: [String: Any]) -> String? {
        if let d = SCIMJSON.member(r, "displayName") as? String, !d.isEmpty { return d }
        guard let n = SCIMJSON.member(r, "name") as? [String: Any] else { return nil }
        if let f = SCIMJSON.member(n, "formatted") as? String, !f.isEmpty { return f }
        let parts = [SCIMJSON.member(n, "givenName") as? String, SCIMJSON.member(n, "familyName") as? String].compactMap { $0 }.filter { !$0.isEmpty }
        return parts.isEmpty ? nil : parts.joined(separator: " ")
    }

    /// PIAM's e-mail: the primary address, else the work one, else the first.
    static func piamEmail(_ r: [String: Any]) -> String? {
        let emails = (SCIMJSON.member(r, "emails") as? [Any])?.compactMap { $0 as? [String: Any] } ?? []
        let pick = emails.first { (try? bool(SCIMJSON.member($0, "primary"), "primary")) == true }
            ?? emails.first { (SCIMJSON.member($0, "type") as? String)?.lowercased() == "work" } ?? emails.first
        return (pick.flatMap { SCIMJSON.member($0, "value") } as? String).flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The alias a SCIM identifier (userName, externalId) becomes: itself when it lies inside
    /// one of the partner's identity namespaces, else qualified by the partner's first issuer
    /// prefix (`okta-acme|` + value), else a 400 `outside_namespace`.
    static func alias(for value: String, what: String, partner: String, namespaces: [IdentityNamespace]) throws -> String {
        if namespaces.contains(where: { $0.contains(value) }) { return value }
        if let p = namespaces.first(where: { $0.kind == .prefix }) { return p.text + value }
        throw SCIMError.invalidValue("\(what) \"\(value)\" lies outside partner \(partner)'s identity namespaces (\(namespaces.map(\.text).joined(separator: ", "))), and the partner has no issuer prefix to qualify it with; ask the business to declare one",
                                     code: AliasDecision.reasonCode)
    }

    static func aliases(_ d: DesiredUser, partner: String, namespaces: [IdentityNamespace]) throws -> [String] {
        var out = [try alias(for: d.userName, what: "userName", partner: partner, namespaces: namespaces)]
        if let e = d.externalID {
            let a = try alias(for: e, what: "externalId", partner: partner, namespaces: namespaces)
            if !out.contains(a) { out.append(a) }
        }
        return out
    }

    // MARK: The resource

    /// The User resource of a provisioned user, as PIAM holds it now.
    static func userResource(_ rec: SCIMUserRecord, _ info: UserInfo, store: Store, base: String) throws -> [String: Any] {
        var r = object(Data(rec.resource.utf8))
        r.removeValue(forKey: aliasesKey)
        var schemas = [SCIMSchemas.user]
        let extKey = SCIMJSON.key(r, SCIMSchemas.enterprise)
        if let ext = r[extKey] as? [String: Any], !ext.isEmpty {
            schemas.append(SCIMSchemas.enterprise)
        } else {
            r.removeValue(forKey: extKey)
        }
        r["schemas"] = schemas
        r["id"] = info.id
        r["userName"] = rec.userName
        if let e = rec.externalID { r["externalId"] = e }
        r["active"] = info.status == .active
        if let n = info.name, piamName(r) != n { r[SCIMJSON.key(r, "displayName")] = n }
        if let e = info.email, piamEmail(r)?.lowercased() != e.lowercased() {
            r[SCIMJSON.key(r, "emails")] = [["value": e, "type": "work", "primary": true]]
        }
        let groups = try store.scimGroupMemberships(user: info.id)
        if !groups.isEmpty {
            r["groups"] = groups.map { ["value": $0.id, "display": $0.displayName, "$ref": "\(base)/Groups/\($0.id)"] }
        }
        let version = etag(r)
        r["meta"] = ["resourceType": "User", "created": RFC3339.format(rec.createdAt), "lastModified": RFC3339.format(rec.modifiedAt),
                     "location": "\(base)/Users/\(info.id)", "version": version]
        return r
    }

    /// The provisioned user `id` of the caller's partner, when the service user may view it.
    static func provisioned(_ id: String, caller: Caller, store: Store, graph: AccessGraph) throws -> (SCIMUserRecord, UserInfo)? {
        guard let rec = try store.scimUser(id), rec.partner == caller.partner,
              let info = try store.user(idOrAlias: id), info.id == id,
              graph.check(subject: caller.actor, action: "view", resource: ResourceRef(type: BuiltinType.user, id: id), now: AdminAPI.now()).allowed
        else { return nil }
        return (rec, info)
    }

    // MARK: Reads

    func getUser(_ caller: Caller, _ request: Request, _ id: String) async throws -> Response {
        try await auditRead(caller, request)
        let q = try ListQuery(get: request, settings: settings)
        let data = try await service.read { store, loaded in
            guard let (rec, info) = try Self.provisioned(id, caller: caller, store: store, graph: loaded.graph) else { throw SCIMError.notFound("User \(id)") }
            return JSONBody.data(Self.project(try Self.userResource(rec, info, store: store, base: caller.base), attributes: q.attributes,
                                              excluded: q.excluded))
        }
        let r = Self.object(data)
        return Self.resourceResponse(r)
    }

    func listUsers(_ caller: Caller, _ request: Request) async throws -> Response {
        try await auditRead(caller, request)
        return try await users(caller, try ListQuery(get: request, settings: settings))
    }

    /// `POST /Users/.search`, `/Groups/.search` and `/.search` (both types) (RFC 7644 §3.4.3).
    func search(_ caller: Caller, _ request: Request, users: Bool, groups: Bool) async throws -> Response {
        let b = Self.object(try await body(request))
        try await auditRead(caller, request)
        func text(_ k: String) -> String? { (SCIMJSON.member(b, k)).map { "\($0)" } }
        func names(_ k: String) -> String? { (SCIMJSON.member(b, k) as? [String])?.joined(separator: ",") ?? (SCIMJSON.member(b, k) as? String) }
        let q = try ListQuery(filter: SCIMJSON.member(b, "filter") as? String, start: text("startIndex"), count: text("count"),
                              attributes: names("attributes"), excluded: names("excludedAttributes"), settings: settings)
        return try await resources(caller, q, users: users, groups: groups)
    }

    func users(_ caller: Caller, _ q: ListQuery) async throws -> Response {
        try await resources(caller, q, users: true, groups: false)
    }

    func resources(_ caller: Caller, _ q: ListQuery, users: Bool, groups: Bool) async throws -> Response {
        let data = try await service.read { store, loaded in
            var all: [[String: Any]] = []
            if users {
                for rec in try store.scimUsers(partner: caller.partner) {
                    guard let (r, info) = try Self.provisioned(rec.user, caller: caller, store: store, graph: loaded.graph) else { continue }
                    all.append(try Self.userResource(r, info, store: store, base: caller.base))
                }
            }
            if groups {
                for g in try store.scimGroups(partner: caller.partner) { all.append(try Self.groupResource(g, store: store, base: caller.base)) }
            }
            return JSONBody.data(q.page(all))
        }
        return SCIMResponse.raw(data)
    }

    // MARK: Writes

    /// `POST /Users`: `user.invite` (aliases: userName and externalId inside the partner's
    /// namespaces), `user.activate` unless `active` is false, a `grant` per role asked for.
    func createUser(_ caller: Caller, _ request: Request) async throws -> Response {
        let data = try await body(request)
        let data2 = try await service.write { w in
            try w.catchUp()
            let body = Self.object(data)
            let d = try Self.desiredUser(body, store: w.store)
            if try w.store.scimUsers(partner: caller.partner).contains(where: { $0.userName.lowercased() == d.userName.lowercased() }) {
                throw SCIMError(.conflict, scimType: "uniqueness", code: "conflict", "userName \"\(d.userName)\" already exists")
            }
            let aliases = try Self.aliases(d, partner: caller.partner, namespaces: try w.store.identityNamespaces(partner: caller.partner))
            let id = Self.newID(caller.partner)
            var ops: [AdminOperation] = [.inviteUser(user: id, org: caller.partner, name: d.name, email: d.email, aliases: aliases, validUntil: nil)]
            if d.active { ops.append(.activateUser(user: id)) }
            for role in d.roles { ops.append(.grant(user: id, role: role, scope: nil, validUntil: nil)) }
            let now = AdminAPI.now()
            var kept = d.kept
            kept[Self.aliasesKey] = aliases
            let rec = SCIMUserRecord(user: id, partner: caller.partner, userName: d.userName, externalID: d.externalID,
                                     resource: String(decoding: JSONBody.data(kept), as: UTF8.self), createdAt: now, modifiedAt: now)
            let revision = try Self.run(ops, caller: caller, writer: w) { () throws(PIAMError) in try w.store.saveSCIMUser(rec) }
            guard let info = try w.store.user(idOrAlias: id) else { throw SCIMError.notFound("User \(id)") }
            return (JSONBody.data(try Self.userResource(rec, info, store: w.store, base: caller.base)), revision)
        }
        return Self.resourceResponse(Self.object(data2.0), status: .created, revision: data2.1)
    }

    /// `PUT` and `PATCH /Users/{id}`: the difference between the user and the resource asked
    /// for, as operations — activation first, then name and e-mail, aliases, roles, and a
    /// suspension last.
    func replaceUser(_ caller: Caller, _ request: Request, _ id: String, patch: Bool) async throws -> Response {
        let data = try await body(request)
        let ifMatch = request.headers[.ifMatch]
        let data2 = try await service.write { w in
            try w.catchUp()
            guard let (rec, info) = try Self.provisioned(id, caller: caller, store: w.store, graph: w.current.graph) else {
                throw SCIMError.notFound("User \(id)")
            }
            let current = try Self.userResource(rec, info, store: w.store, base: caller.base)
            try Self.checkIfMatch(ifMatch, current: current["meta"].flatMap { ($0 as? [String: Any])?["version"] as? String } ?? "")
            var next: [String: Any]
            if patch {
                next = current
                next.removeValue(forKey: "meta")
                let ops = try SCIMPatch.operations(Self.object(data))
                for op in ops where (SCIMJSON.member(op, "op") as? String)?.lowercased() == "remove"
                    && ((SCIMJSON.member(op, "path") as? String).map { try? SCIMPath.parse($0) } ?? nil)?.components == ["active"] {
                    throw SCIMError(.badRequest, scimType: "mutability", code: "invalid_input",
                                    "active is required: every PIAM user has a status (replace it with false to suspend the user)")
                }
                try SCIMPatch.apply(ops, to: &next, multiValued: SCIMSchemas.userMultiValued)
            } else {
                next = Self.object(data)
            }
            let d = try Self.desiredUser(next, store: w.store, currentActive: info.status == .active)
            if d.userName.lowercased() != rec.userName.lowercased(),
               try w.store.scimUsers(partner: caller.partner).contains(where: { $0.userName.lowercased() == d.userName.lowercased() }) {
                throw SCIMError(.conflict, scimType: "uniqueness", code: "conflict", "userName \"\(d.userName)\" already exists")
            }
            let aliases = try Self.aliases(d, partner: caller.partner, namespaces: try w.store.identityNamespaces(partner: caller.partner))
            let before = (Self.object(Data(rec.resource.utf8))[Self.aliasesKey] as? [String]) ?? []
            var ops: [AdminOperation] = []
            if d.active && info.status == .invited { ops.append(.activateUser(user: id)) }
            if d.active && info.status == .suspended { ops.append(.reactivateUser(user: id)) }
            if d.name != info.name || d.email != info.email {
                ops.append(.updateUser(user: id, name: .some(d.name), email: .some(d.email), validUntil: nil))
            }
            for a in before where !aliases.contains(a) && info.aliases.contains(a) { ops.append(.removeAlias(user: id, alias: a)) }
            for a in aliases where !info.aliases.contains(a) { ops.append(.addAlias(user: id, alias: a)) }
            ops += try Self.roleOperations(user: info, direct: d.roles, groupRoles: try w.store.scimGroupRoles(ofUser: id), actor: caller.actor,
                                           store: w.store)
            if !d.active && info.status == .active { ops.append(.suspendUser(user: id)) }
            var kept = d.kept
            kept[Self.aliasesKey] = aliases
            var updated = rec
            updated.userName = d.userName
            updated.externalID = d.externalID
            updated.resource = String(decoding: JSONBody.data(kept), as: UTF8.self)
            updated.modifiedAt = AdminAPI.now()
            let revision = try Self.run(ops, caller: caller, writer: w) { () throws(PIAMError) in try w.store.saveSCIMUser(updated) }
            guard let now = try w.store.user(idOrAlias: id) else { throw SCIMError.notFound("User \(id)") }
            return (JSONBody.data(try Self.userResource(updated, now, store: w.store, base: caller.base)), revision)
        }
        return Self.resourceResponse(Self.object(data2.0), revision: data2.1)
    }

    /// `DELETE /Users/{id}`: `user.remove`.
    func deleteUser(_ caller: Caller, _ request: Request, _ id: String) async throws -> Response {
        let ifMatch = request.headers[.ifMatch]
        let revision = try await service.write { w in
            try w.catchUp()
            guard let (rec, info) = try Self.provisioned(id, caller: caller, store: w.store, graph: w.current.graph) else {
                throw SCIMError.notFound("User \(id)")
            }
            if ifMatch != nil {
                let current = try Self.userResource(rec, info, store: w.store, base: caller.base)
                try Self.checkIfMatch(ifMatch, current: (current["meta"] as? [String: Any])?["version"] as? String ?? "")
            }
            return try Self.run([.removeUser(user: id)], caller: caller, writer: w, finishing: nil)
        }
        return Response(status: .noContent, headers: AdminAPI.revisionOnly(revision))
    }

    /// The grants and revocations that make the user's SCIM-made roles over its org equal to
    /// `direct` ∪ `groupRoles`: a `grant` for each role it lacks there, a `revoke` for each
    /// role SCIM granted (granted_by the service user) that is no longer asked for. Roles given
    /// by hand are never revoked by SCIM.
    static func roleOperations(user: UserInfo, direct: [String], groupRoles: [String], actor: String, store: Store) throws -> [AdminOperation] {
        let desired = Set(direct).union(groupRoles)
        let held = try store.assignments(user: user.id).filter { $0.scope == user.org }
        let heldRoles = Set(held.map(\.role))
        let bySCIM = Set(held.filter { $0.grantedBy == actor }.map(\.role))
        var ops: [AdminOperation] = []
        for r in desired.sorted() where !heldRoles.contains(r) { ops.append(.grant(user: user.id, role: r, scope: nil, validUntil: nil)) }
        for r in bySCIM.sorted() where !desired.contains(r) { ops.append(.revoke(user: user.id, role: r, scope: nil)) }
        return ops
    }

    /// Runs `ops` as the caller's service user in ONE transaction (with `finishing` inside it);
    /// a refusal or an error becomes the SCIM error for it, with nothing written.
    @discardableResult
    static func run(_ ops: [AdminOperation], caller: Caller, writer w: AdminWriter,
                    finishing: (() throws(PIAMError) -> Void)?) throws -> Int64 {
        let items = ops.map { AdminBatchItem(actor: caller.actor, operation: $0) }
        let result = try w.apply(items, credential: caller.credential, finishing: { _ throws(PIAMError) in try finishing?() })
        guard !result.committed else { return result.revision }
        guard let f = result.results.first(where: { $0.status == "refused" || $0.status == "failed" }) else {
            throw SCIMError(.internalServerError, code: "internal", "the write did not commit")
        }
        let detail = "\(f.operation) \(f.target): \(f.message) — nothing was written"
        if f.status == "failed" {
            var e = SCIMError.from(PIAMError(PIAMError.Code(f.reason), detail))
            if f.reason == PIAMError.Code.notFound.rawValue { e = SCIMError(.notFound, code: f.reason, detail) }
            throw e
        }
        switch f.reason {
        case AliasDecision.reasonCode, Reason.unknownRole.name:
            throw SCIMError.invalidValue(detail, code: f.reason)
        default:
            // Hidden targets look like missing ones (a user this very request was creating is
            // no hidden one: the refusal is about it).
            if f.target.hasPrefix("user:"), w.current.graph.userID(for: String(f.target.dropFirst(5))) != nil, !w.current.graph.check(subject: caller.actor, action: "view",
                                                                    resource: ResourceRef(type: BuiltinType.user, id: String(f.target.dropFirst(5))),
                                                                    now: AdminAPI.now()).allowed {
                throw SCIMError.notFound(f.target)
            }
            throw SCIMError(.forbidden, code: f.reason, detail)
        }
    }

    static func checkIfMatch(_ given: String?, current: String) throws {
        guard let v = given?.trimmingCharacters(in: .whitespaces), !v.isEmpty, v != "*" else { return }
        let bare = { (s: String) in s.hasPrefix("W/") ? String(s.dropFirst(2)) : s }
        if !v.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }).contains(where: { bare($0) == bare(current) }) {
            throw SCIMError(.preconditionFailed, code: AdminWriter.preconditionFailed.rawValue, "If-Match \(v): the resource is now \(current); read it again")
        }
    }

    /// A new user or group id: the partner's id and 16 random hex digits.
    static func newID(_ partner: String) -> String {
        var rng = SystemRandomNumberGenerator()
        let hex = String(format: "%016llx", rng.next() as UInt64)
        return "\(partner.prefix(200))-\(hex)"
    }
}

import Foundation
import HTTPTypes
import Hummingbird
import PIAMEngine
import PIAMStore

/// SCIM Groups: a partner's groups and their members. Each group maps to PIAM roles through a
/// mapping the partner's admin maintains (`scim.group.map`); a member holds the mapped roles
/// over its org, granted by the SCIM service user through `can_assign` (`grant`, `revoke`), in
/// the transaction of the membership change. An unmapped group grants nothing.
extension SCIMAPI {
    static func groupResource(_ g: SCIMGroupRecord, store: Store, base: String) throws -> [String: Any] {
        var r: [String: Any] = ["schemas": [SCIMSchemas.group], "id": g.id, "displayName": g.displayName]
        if let e = g.externalID { r["externalId"] = e }
        if !g.members.isEmpty {
            r["members"] = try g.members.map { m -> [String: Any] in
                var o: [String: Any] = ["value": m, "$ref": "\(base)/Users/\(m)", "type": "User"]
                if let n = try store.user(idOrAlias: m)?.name { o["display"] = n }
                return o
            }
        }
        let version = etag(r)
        r["meta"] = ["resourceType": "Group", "created": RFC3339.format(g.createdAt), "lastModified": RFC3339.format(g.modifiedAt),
                     "location": "\(base)/Groups/\(g.id)", "version": version]
        return r
    }

    static func group(_ id: String, caller: Caller, store: Store) throws -> SCIMGroupRecord {
        guard let g = try store.scimGroup(id), g.partner == caller.partner else { throw SCIMError.notFound("Group \(id)") }
        return g
    }

    /// The members of a Group resource: user ids the service user may view. Throws 400.
    static func members(_ r: [String: Any], caller: Caller, graph: AccessGraph) throws -> [String] {
        var out: [String] = []
        for e in (SCIMJSON.member(r, "members") as? [Any]) ?? [] {
            guard let v = SCIMPatch.elementKey(e) else { throw SCIMError.invalidValue("members: each is {\"value\": USER_ID}") }
            guard graph.userID(for: v) == v, v != caller.actor,
                  graph.check(subject: caller.actor, action: "view", resource: ResourceRef(type: BuiltinType.user, id: v), now: AdminAPI.now()).allowed
            else { throw SCIMError.invalidValue("members: no such user \"\(v)\"", code: PIAMError.Code.notFound.rawValue) }
            if !out.contains(v) { out.append(v) }
        }
        return out.sorted()
    }

    /// The grants and revocations that follow a group's membership (or mapping) change: for
    /// every user in `affected`, its SCIM-made roles become its direct SCIM roles plus the
    /// roles of its groups after the change.
    static func membershipOperations(group: String, roles: [String], members: [String], affected: Set<String>, actor: String,
                                     store: Store) throws -> [AdminOperation] {
        var ops: [AdminOperation] = []
        for u in affected.sorted() {
            guard let info = try store.user(idOrAlias: u), info.id == u else { continue }
            var groupRoles = Set(try store.scimGroupRoles(ofUser: u, excluding: group))
            if members.contains(u) { groupRoles.formUnion(roles) }
            ops += try roleOperations(user: info, direct: try store.scimDirectRoles(ofUser: u), groupRoles: Array(groupRoles),
                                      actor: actor, store: store)
        }
        return ops
    }

    func getGroup(_ caller: Caller, _ request: Request, _ id: String) async throws -> Response {
        try await auditRead(caller, request)
        let q = try ListQuery(get: request, settings: settings)
        let data = try await service.read { store, _ in
            JSONBody.data(Self.project(try Self.groupResource(try Self.group(id, caller: caller, store: store), store: store, base: caller.base),
                                       attributes: q.attributes, excluded: q.excluded))
        }
        return Self.resourceResponse(Self.object(data))
    }

    func listGroups(_ caller: Caller, _ request: Request) async throws -> Response {
        try await auditRead(caller, request)
        let q = try ListQuery(get: request, settings: settings)
        let data = try await service.read { store, _ in
            JSONBody.data(q.page(try store.scimGroups(partner: caller.partner).map { try Self.groupResource($0, store: store, base: caller.base) }))
        }
        return SCIMResponse.raw(data)
    }

    func createGroup(_ caller: Caller, _ request: Request) async throws -> Response {
        let data = try await body(request)
        let out = try await service.write { w in
            try w.catchUp()
            let body = Self.object(data)
            guard let name = (SCIMJSON.member(body, "displayName") as? String)?.trimmingCharacters(in: .whitespaces), !name.isEmpty else {
                throw SCIMError.invalidValue("displayName is required")
            }
            if try w.store.scimGroups(partner: caller.partner).contains(where: { $0.displayName == name }) {
                throw SCIMError(.conflict, scimType: "uniqueness", code: "conflict", "a group named \"\(name)\" exists")
            }
            let members = try Self.members(body, caller: caller, graph: w.current.graph)
            let now = AdminAPI.now()
            let g = SCIMGroupRecord(id: Self.newID(caller.partner), partner: caller.partner, displayName: name,
                                    externalID: SCIMJSON.member(body, "externalId") as? String, members: members, roles: [],
                                    createdAt: now, modifiedAt: now)
            let revision = try Self.run([], caller: caller, writer: w) { () throws(PIAMError) in try w.store.saveSCIMGroup(g) }
            return (JSONBody.data(try Self.groupResource(g, store: w.store, base: caller.base)), revision)
        }
        return Self.resourceResponse(Self.object(out.0), status: .created, revision: out.1)
    }

    func replaceGroup(_ caller: Caller, _ request: Request, _ id: String, patch: Bool) async throws -> Response {
        let data = try await body(request)
        let ifMatch = request.headers[.ifMatch]
        let out = try await service.write { w in
            try w.catchUp()
            let g = try Self.group(id, caller: caller, store: w.store)
            let current = try Self.groupResource(g, store: w.store, base: caller.base)
            try Self.checkIfMatch(ifMatch, current: (current["meta"] as? [String: Any])?["version"] as? String ?? "")
            var next: [String: Any]
            if patch {
                next = current
                next.removeValue(forKey: "meta")
                try SCIMPatch.apply(try SCIMPatch.operations(Self.object(data)), to: &next, multiValued: SCIMSchemas.groupMultiValued)
            } else {
                next = Self.object(data)
            }
            guard let name = (SCIMJSON.member(next, "displayName") as? String)?.trimmingCharacters(in: .whitespaces), !name.isEmpty else {
                throw SCIMError.invalidValue("displayName is required")
            }
            if name != g.displayName, try w.store.scimGroups(partner: caller.partner).contains(where: { $0.displayName == name }) {
                throw SCIMError(.conflict, scimType: "uniqueness", code: "conflict", "a group named \"\(name)\" exists")
            }
            let members = try Self.members(next, caller: caller, graph: w.current.graph)
            var updated = g
            updated.displayName = name
            updated.externalID = SCIMJSON.member(next, "externalId") as? String
            updated.members = members
            updated.modifiedAt = AdminAPI.now()
            let affected = Set(g.members).symmetricDifference(members)
            let ops = try Self.membershipOperations(group: id, roles: g.roles, members: members, affected: affected, actor: caller.actor, store: w.store)
            let revision = try Self.run(ops, caller: caller, writer: w) { () throws(PIAMError) in try w.store.saveSCIMGroup(updated) }
            return (JSONBody.data(try Self.groupResource(updated, store: w.store, base: caller.base)), revision)
        }
        return Self.resourceResponse(Self.object(out.0), revision: out.1)
    }

    func deleteGroup(_ caller: Caller, _ request: Request, _ id: String) async throws -> Response {
        let revision = try await service.write { w in
            try w.catchUp()
            let g = try Self.group(id, caller: caller, store: w.store)
            let ops = try Self.membershipOperations(group: id, roles: [], members: [], affected: Set(g.members), actor: caller.actor, store: w.store)
            return try Self.run(ops, caller: caller, writer: w) { () throws(PIAMError) in try w.store.deleteSCIMGroup(id) }
        }
        return Response(status: .noContent, headers: AdminAPI.revisionOnly(revision))
    }
}

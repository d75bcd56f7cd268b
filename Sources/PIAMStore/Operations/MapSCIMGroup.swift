import PIAMEngine

extension AdminOperation {
    /// The partner's admin maps a SCIM group to a PIAM role: the group's members receive it.
    public static func mapSCIMGroup(group: String, role: String) -> AdminOperation {
        AdminOperation(AdminOps.MapSCIMGroup(group: group, role: role))
    }

    /// Takes a role out of a SCIM group's mapping.
    public static func unmapSCIMGroup(group: String, role: String) -> AdminOperation {
        AdminOperation(AdminOps.UnmapSCIMGroup(group: group, role: role))
    }
}

extension Store {
    /// The partner root of SCIM group `id`, or `nil`.
    func scimGroupPartner(_ id: String) throws(PIAMError) -> String? {
        let s = try cached("SELECT partner FROM scim_groups WHERE id = ?1")
        s.bind(1, id)
        defer { s.reset() }
        return try s.step() ? s.text(0) : nil
    }
}

extension AdminOps {
    /// `scim.group.map`: only a role the actor may give every member of the partner —
    /// `canGrantToOrg(actor, partner, role)`: `org:grant_role` there, the role in the partner's
    /// ceiling, no escalation. Targets the partner root (`org:P`); an unknown group is
    /// `not_found` (and another partner's group looks the same: the question is asked on the
    /// group's own partner, which the actor cannot reach).
    struct MapSCIMGroup: AdministrativeOperation {
        static let name = "scim.group.map"
        var group: String
        var role: String

        init(group: String, role: String) { self.group = group; self.role = role }
        init(reading f: inout FieldReader) throws(PIAMError) { self.init(group: try f.string("group"), role: try f.id("role")) }
        func write(to f: inout FieldWriter) { f.set("group", group); f.set("role", role) }
        func target(actor: String) -> String { "scim-group:\(group)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            guard let partner = try store.scimGroupPartner(group) else { throw PIAMError(.notFound, "no such SCIM group \"\(group)\"") }
            return [.grantToOrg(actor: actor, org: partner, role: role)]
        }

        func auditPartner(actor: String, in store: Store) throws(PIAMError) -> String? { try store.scimGroupPartner(group) }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            try s.exec("INSERT INTO scim_group_roles(group_id, role) VALUES (?1, ?2) ON CONFLICT DO NOTHING", group, role)
            out.changed = s.db.changes > 0
            out.message = "SCIM group \(group) maps to role \(role)"
        }
    }

    /// `scim.group.unmap`: as `scim.group.map` (the same question: whoever may map a role
    /// may unmap it).
    struct UnmapSCIMGroup: AdministrativeOperation {
        static let name = "scim.group.unmap"
        var group: String
        var role: String

        init(group: String, role: String) { self.group = group; self.role = role }
        init(reading f: inout FieldReader) throws(PIAMError) { self.init(group: try f.string("group"), role: try f.id("role")) }
        func write(to f: inout FieldWriter) { f.set("group", group); f.set("role", role) }
        func target(actor: String) -> String { "scim-group:\(group)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            guard let partner = try store.scimGroupPartner(group) else { throw PIAMError(.notFound, "no such SCIM group \"\(group)\"") }
            return [.grantToOrg(actor: actor, org: partner, role: role)]
        }

        func auditPartner(actor: String, in store: Store) throws(PIAMError) -> String? { try store.scimGroupPartner(group) }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            try s.exec("DELETE FROM scim_group_roles WHERE group_id = ?1 AND role = ?2", group, role)
            guard s.db.changes > 0 else { throw PIAMError(.notFound, "SCIM group \(group) does not map to role \(role)") }
            out.changed = true
            out.message = "SCIM group \(group) no longer maps to role \(role)"
        }
    }
}

import PIAMEngine

extension AdminOperation {
    /// Deletes a role (host-only); one in use only with `force`, which revokes its uses.
    public static func deleteRole(role: String, force: Bool) -> AdminOperation { AdminOperation(AdminOps.DeleteRole(role: role, force: force)) }
}

extension AdminOps {
    /// `role.delete`: with `force`, every assignment, org grant, entitlement and pending
    /// request of the role goes with it, each listed.
    struct DeleteRole: AdministrativeOperation {
        static let name = "role.delete"
        var role: String
        var force: Bool

        init(role: String, force: Bool) { self.role = role; self.force = force }
        init(reading f: inout FieldReader) throws(PIAMError) { self.init(role: try f.id("role"), force: try f.bool("force")) }
        func write(to f: inout FieldWriter) { f.set("role", role); f.flag("force", force) }
        func target(actor: String) -> String { "role:\(role)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [Self.check(actor, "delete", BuiltinType.role, role)]
        }

        /// Roles belong to no partner.
        func auditPartner(actor: String, in store: Store) throws(PIAMError) -> String? { nil }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            let r = role
            guard try s.roleExists(r) else { throw PIAMError(.notFound, "no such role \"\(r)\"") }
            let assignments = try s.db.prepare("SELECT user, scope FROM assignments WHERE role = ?1 ORDER BY user, scope")
            assignments.bind(1, r)
            let uses = try assignments.rows { "assignment: user:\($0.text(0)) over org:\($0.text(1))" }
            let grants = try s.db.prepare("SELECT org FROM org_grants WHERE role = ?1 ORDER BY org")
            grants.bind(1, r)
            let grantUses = try grants.rows { "org grant: org:\($0.text(0))" }
            let ents = try s.db.prepare("SELECT org FROM entitlements WHERE role = ?1 ORDER BY org")
            ents.bind(1, r)
            let entUses = try ents.rows { "entitlement: org:\($0.text(0))" }
            let pending = try s.count("SELECT count(*) FROM access_requests WHERE role = ?1 AND status = 'pending'", r)
            let all = uses + grantUses + entUses + (pending > 0 ? ["\(pending) pending access requests"] : [])
            if !all.isEmpty && !force {
                throw PIAMError(.conflict, "role \"\(r)\" is in use: \(uses.count) assignments, \(grantUses.count) org grants, \(entUses.count) entitlements, \(pending) pending requests (--force revokes them all)")
            }
            try s.exec("DELETE FROM roles WHERE id = ?1", r)
            out.details = all.map { "revoked \($0)" }
            out.message = "deleted role \(r)" + (all.isEmpty ? "" : ", revoking \(all.count) uses")
        }
    }
}

import PIAMEngine

extension AdminOperation {
    /// Takes an org grant back.
    public static func revokeFromOrg(org: String, role: String) -> AdminOperation {
        AdminOperation(AdminOps.RevokeFromOrg(org: org, role: role))
    }
}

extension AdminOps {
    /// `org-revoke`: an org grant taken back; the last-admin guard applies (it may take anyone's
    /// power at the org).
    struct RevokeFromOrg: AdministrativeOperation {
        static let name = "org-revoke"
        var org: String
        var role: String

        init(org: String, role: String) { self.org = org; self.role = role }
        init(reading f: inout FieldReader) throws(PIAMError) { self.init(org: try f.id("org"), role: try f.id("role")) }
        func write(to f: inout FieldWriter) { f.set("org", org); f.set("role", role) }
        func target(actor: String) -> String { "org:\(org)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [Self.check(actor, "grant_role", BuiltinType.org, org)]
        }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            guard try s.count("SELECT count(*) FROM org_grants WHERE org = ?1 AND role = ?2", org, role) > 0 else {
                throw PIAMError(.notFound, "org \"\(org)\" has no org grant of role \(role)")
            }
            try s.guardLastAdmin(actor: actor, root: try s.store.partnerRootSQL(org), affected: nil, removesAffected: false) {
                try s.exec("DELETE FROM org_grants WHERE org = ?1 AND role = ?2", org, role)
            }
            out.message = "revoked the org grant of role \(role) on org:\(org)"
        }
    }
}

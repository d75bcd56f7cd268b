import PIAMEngine

extension AdminOperation {
    /// Takes an entitlement back.
    public static func unentitle(org: String, role: String) -> AdminOperation { AdminOperation(AdminOps.Unentitle(org: org, role: role)) }
}

extension AdminOps {
    /// `unentitle`: a role leaves an org's entitlements.
    struct Unentitle: AdministrativeOperation {
        static let name = "unentitle"
        var org: String
        var role: String

        init(org: String, role: String) { self.org = org; self.role = role }
        init(reading f: inout FieldReader) throws(PIAMError) { self.init(org: try f.id("org"), role: try f.id("role")) }
        func write(to f: inout FieldWriter) { f.set("org", org); f.set("role", role) }
        func target(actor: String) -> String { "org:\(org)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [Self.check(actor, "entitle", BuiltinType.org, org)]
        }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            try s.exec("DELETE FROM entitlements WHERE org = ?1 AND role = ?2", org, role)
            out.message = s.db.changes > 0 ? "took role \(role) out of org:\(org)'s entitlements" : "org:\(org) was not entitled to role \(role)"
        }
    }
}

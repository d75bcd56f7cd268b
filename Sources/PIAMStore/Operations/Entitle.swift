import PIAMEngine

extension AdminOperation {
    /// The business makes `role` available to `org`'s subtree.
    public static func entitle(org: String, role: String) -> AdminOperation { AdminOperation(AdminOps.Entitle(org: org, role: role)) }
}

extension AdminOps {
    /// `entitle`: a role joins the ceiling of an org's subtree.
    struct Entitle: AdministrativeOperation {
        static let name = "entitle"
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
            _ = try s.org(org)
            try s.requireRoleToEntitle(role)
            try s.exec("INSERT INTO entitlements(org, role) VALUES (?1, ?2) ON CONFLICT DO NOTHING", org, role)
            out.message = "entitled org:\(org) to role \(role)"
        }
    }
}

import PIAMEngine

extension AdminOperation {
    /// Renames an org.
    public static func updateOrg(org: String, name: String) -> AdminOperation { AdminOperation(AdminOps.UpdateOrg(org: org, name: name)) }
}

extension AdminOps {
    /// `org.update`: an org's display name.
    struct UpdateOrg: AdministrativeOperation {
        static let name = "org.update"
        var org: String
        var name: String

        init(org: String, name: String) { self.org = org; self.name = name }
        init(reading f: inout FieldReader) throws(PIAMError) { self.init(org: try f.id("org"), name: try f.string("name")) }
        func write(to f: inout FieldWriter) { f.set("org", org); f.set("name", name) }
        func target(actor: String) -> String { "org:\(org)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [Self.check(actor, "update", BuiltinType.org, org)]
        }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            _ = try s.org(org)
            try s.exec("UPDATE orgs SET name = ?2 WHERE id = ?1 AND name IS NOT ?2", org, name)
            out.message = "renamed org:\(org) to \"\(name)\""
        }
    }
}

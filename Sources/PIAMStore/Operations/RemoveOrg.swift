import PIAMEngine

extension AdminOperation {
    /// Deletes an org; one that holds sub-orgs, users or resources only with `cascade`.
    public static func removeOrg(org: String, cascade: Bool) -> AdminOperation {
        AdminOperation(AdminOps.RemoveOrg(org: org, cascade: cascade))
    }
}

extension AdminOps {
    /// `org.remove`. The root and `partners` are never removed.
    struct RemoveOrg: AdministrativeOperation {
        static let name = "org.remove"
        var org: String
        var cascade: Bool

        init(org: String, cascade: Bool) { self.org = org; self.cascade = cascade }
        init(reading f: inout FieldReader) throws(PIAMError) { self.init(org: try f.id("org"), cascade: try f.bool("cascade")) }
        func write(to f: inout FieldWriter) { f.set("org", org); f.flag("cascade", cascade) }
        func target(actor: String) -> String { "org:\(org)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [Self.check(actor, "remove", BuiltinType.org, org)]
        }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            let info = try s.org(org)
            if info.parent == nil || org == Seed.partnersOrgID {
                throw PIAMError(.invalidInput, "org \"\(org)\" is seeded by init and may not be removed")
            }
            let subtree = try s.subtreeSQL(org)
            let inList = "(SELECT value FROM json_each(?1))"
            let ids = JSONText.array(subtree)
            let users = try s.count("SELECT count(*) FROM users WHERE org IN \(inList)", ids)
            let resources = try s.count("SELECT count(*) FROM resources WHERE org IN \(inList)", ids)
            if !cascade && (subtree.count > 1 || users > 0 || resources > 0) {
                throw PIAMError(.conflict, "org \"\(org)\" is not empty: \(subtree.count - 1) sub-orgs, \(users) users, \(resources) resources (--cascade removes them all)")
            }
            out.details = try s.removeSubtree(org)
            out.message = "removed org:\(org)" + (out.details.isEmpty ? "" : " and everything in it")
        }
    }
}

import PIAMEngine

extension AdminOperation {
    /// Reactivates a suspended org.
    public static func reactivateOrg(org: String) -> AdminOperation { AdminOperation(AdminOps.ReactivateOrg(org: org)) }
}

extension AdminOps {
    /// `org.reactivate`: its people are restored exactly as they were.
    struct ReactivateOrg: AdministrativeOperation {
        static let name = "org.reactivate"
        var org: String

        init(org: String) { self.org = org }
        init(reading f: inout FieldReader) throws(PIAMError) { self.init(org: try f.id("org")) }
        func write(to f: inout FieldWriter) { f.set("org", org) }
        func target(actor: String) -> String { "org:\(org)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [Self.check(actor, "reactivate", BuiltinType.org, org)]
        }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            try s.setOrgStatus(org, to: .active, out: &out)
        }
    }
}

import PIAMEngine

extension AdminOperation {
    /// Suspends an org: every user at or below it is denied (`org_inactive`).
    public static func suspendOrg(org: String) -> AdminOperation { AdminOperation(AdminOps.SuspendOrg(org: org)) }
}

extension AdminOps {
    /// `org.suspend`. The engine's self-action rule keeps an actor from suspending its own org
    /// or one above it.
    struct SuspendOrg: AdministrativeOperation {
        static let name = "org.suspend"
        var org: String

        init(org: String) { self.org = org }
        init(reading f: inout FieldReader) throws(PIAMError) { self.init(org: try f.id("org")) }
        func write(to f: inout FieldWriter) { f.set("org", org) }
        func target(actor: String) -> String { "org:\(org)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [Self.check(actor, "suspend", BuiltinType.org, org)]
        }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            try s.setOrgStatus(org, to: .suspended, out: &out)
        }
    }
}

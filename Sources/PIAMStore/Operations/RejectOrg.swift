import PIAMEngine

extension AdminOperation {
    /// A pending registration is withdrawn: the org, its sub-orgs and its people are deleted.
    public static func rejectOrg(org: String) -> AdminOperation { AdminOperation(AdminOps.RejectOrg(org: org)) }
}

extension AdminOps {
    /// `org.reject`: the business turns a registration down.
    struct RejectOrg: AdministrativeOperation {
        static let name = "org.reject"
        var org: String

        init(org: String) { self.org = org }
        init(reading f: inout FieldReader) throws(PIAMError) { self.init(org: try f.id("org")) }
        func write(to f: inout FieldWriter) { f.set("org", org) }
        func target(actor: String) -> String { "org:\(org)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [Self.check(actor, "approve", BuiltinType.org, org)]
        }

        func precheck(as actor: String, in store: Store) throws(PIAMError) -> (reason: String, message: String)? {
            try store.ownRegistrationRefusal(actor: actor, org: org)
        }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            try s.requirePendingOrg(org, else: "only a pending registration is rejected")
            out.details = try s.removeSubtree(org)
            out.message = "rejected the registration of org:\(org) (removed)"
        }
    }
}

import PIAMEngine

extension AdminOperation {
    /// Moves a user to another org of the same partner.
    public static func moveUser(user: String, org: String) -> AdminOperation { AdminOperation(AdminOps.MoveUser(user: user, org: org)) }
}

extension AdminOps {
    /// `user.move`: within its own partner (or among host orgs) only; the last-admin guard
    /// applies.
    struct MoveUser: AdministrativeOperation {
        static let name = "user.move"
        var user: String
        var org: String

        init(user: String, org: String) { self.user = user; self.org = org }
        init(reading f: inout FieldReader) throws(PIAMError) { self.init(user: try f.id("user"), org: try f.id("org")) }
        func write(to f: inout FieldWriter) { f.set("user", user); f.set("org", org) }
        func target(actor: String) -> String { "user:\(user)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [Self.check(actor, "update", BuiltinType.user, user), Self.check(actor, "invite_user", BuiltinType.org, org)]
        }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            let info = try s.user(user)
            let to = try s.org(org)
            // The same-partner guard (cross_partner), as for org.move.
            guard try s.store.partnerRootSQL(info.org) == s.store.partnerRootSQL(to.id), to.kind == (try s.org(info.org)).kind else {
                throw Refusal(reason: AdminReason.crossPartner,
                              message: "user:\(info.id) may move only within its own \(try s.store.partnerRootSQL(info.org).map { "partner (org:\($0))" } ?? "host organization")")
            }
            try s.guardLastAdmin(actor: actor, root: try s.store.partnerRootSQL(info.org), affected: [info.id], removesAffected: false) {
                try s.exec("UPDATE users SET org = ?2 WHERE id = ?1", info.id, to.id)
            }
            out.message = "moved user:\(info.id) from org:\(info.org) to org:\(to.id)"
        }
    }
}

import PIAMEngine

extension AdminOperation {
    /// Suspends a user (`subject_inactive`).
    public static func suspendUser(user: String) -> AdminOperation { AdminOperation(AdminOps.SuspendUser(user: user)) }
}

extension AdminOps {
    /// `user.suspend`. The engine's self-action rule keeps an actor from suspending itself;
    /// the store's last-admin guard applies.
    struct SuspendUser: AdministrativeOperation {
        static let name = "user.suspend"
        var user: String

        init(user: String) { self.user = user }
        init(reading f: inout FieldReader) throws(PIAMError) { self.init(user: try f.id("user")) }
        func write(to f: inout FieldWriter) { f.set("user", user) }
        func target(actor: String) -> String { "user:\(user)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [Self.check(actor, "suspend", BuiltinType.user, user)]
        }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            let info = try s.user(user)
            guard info.status != .suspended else { out.message = "user:\(info.id) is already suspended"; return }
            try s.guardLastAdmin(actor: actor, root: try s.store.partnerRootSQL(info.org), affected: [info.id], removesAffected: true) {
                try s.exec("UPDATE users SET status = 'suspended' WHERE id = ?1", info.id)
            }
            out.message = "suspended user:\(info.id)"
        }
    }
}

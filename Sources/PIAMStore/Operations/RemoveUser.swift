import PIAMEngine

extension AdminOperation {
    /// Deletes a user with its aliases and assignments.
    public static func removeUser(user: String) -> AdminOperation { AdminOperation(AdminOps.RemoveUser(user: user)) }
}

extension AdminOps {
    /// `user.remove`. The engine's self-action rule keeps an actor from removing itself; the
    /// store's last-admin guard applies.
    struct RemoveUser: AdministrativeOperation {
        static let name = "user.remove"
        var user: String

        init(user: String) { self.user = user }
        init(reading f: inout FieldReader) throws(PIAMError) { self.init(user: try f.id("user")) }
        func write(to f: inout FieldWriter) { f.set("user", user) }
        func target(actor: String) -> String { "user:\(user)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [Self.check(actor, "remove", BuiltinType.user, user)]
        }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            let info = try s.user(user)
            try s.guardLastAdmin(actor: actor, root: try s.store.partnerRootSQL(info.org), affected: [info.id], removesAffected: true) {
                try s.exec("DELETE FROM users WHERE id = ?1", info.id)
            }
            out.message = "removed user:\(info.id)"
        }
    }
}

import PIAMEngine

extension AdminOperation {
    /// Reactivates a suspended user.
    public static func reactivateUser(user: String) -> AdminOperation { AdminOperation(AdminOps.ReactivateUser(user: user)) }
}

extension AdminOps {
    /// `user.reactivate`: a suspended user only (an invited one accepts its invitation).
    struct ReactivateUser: AdministrativeOperation {
        static let name = "user.reactivate"
        var user: String

        init(user: String) { self.user = user }
        init(reading f: inout FieldReader) throws(PIAMError) { self.init(user: try f.id("user")) }
        func write(to f: inout FieldWriter) { f.set("user", user) }
        func target(actor: String) -> String { "user:\(user)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [Self.check(actor, "reactivate", BuiltinType.user, user)]
        }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            let info = try s.user(user)
            switch info.status {
            case .active: out.message = "user:\(info.id) is already active"
            case .invited: throw PIAMError(.conflict, "user \"\(info.id)\" is invited, not suspended: the user accepts its invitation (invitation accept), or an admin activates it (user activate)")
            case .suspended:
                try s.exec("UPDATE users SET status = 'active' WHERE id = ?1", info.id)
                out.message = "reactivated user:\(info.id)"
            }
        }
    }
}

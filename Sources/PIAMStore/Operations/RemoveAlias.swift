import PIAMEngine

extension AdminOperation {
    /// Removes an alias.
    public static func removeAlias(user: String, alias: String) -> AdminOperation {
        AdminOperation(AdminOps.RemoveAlias(user: user, alias: alias))
    }
}

extension AdminOps {
    /// `user.alias.remove`: an alias of that user.
    struct RemoveAlias: AdministrativeOperation {
        static let name = "user.alias.remove"
        var user: String
        var alias: String

        init(user: String, alias: String) { self.user = user; self.alias = alias }
        init(reading f: inout FieldReader) throws(PIAMError) { self.init(user: try f.id("user"), alias: try f.id("alias")) }
        func write(to f: inout FieldWriter) { f.set("user", user); f.set("alias", alias) }
        func target(actor: String) -> String { "user:\(user)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [Self.check(actor, "update", BuiltinType.user, user)]
        }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            let info = try s.user(user)
            guard info.aliases.contains(alias) else { throw PIAMError(.notFound, "user \"\(info.id)\" has no alias \"\(alias)\"") }
            try s.exec("DELETE FROM user_aliases WHERE alias = ?1", alias)
            out.message = "removed alias \"\(alias)\" from user:\(info.id)"
        }
    }
}

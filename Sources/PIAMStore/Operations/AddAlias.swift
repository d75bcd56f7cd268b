import PIAMEngine

extension AdminOperation {
    /// Adds an alias (an IdP subject, a login) to a user.
    public static func addAlias(user: String, alias: String) -> AdminOperation { AdminOperation(AdminOps.AddAlias(user: user, alias: alias)) }
}

extension AdminOps {
    /// `user.alias.add`: the alias must be free in the user namespace, and — given by a partner
    /// actor — inside the user's partner's identity namespaces (`outside_namespace`).
    struct AddAlias: AdministrativeOperation {
        static let name = "user.alias.add"
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
            try s.requireFreeUserName(alias, what: "alias")
            try s.requireAliasInNamespace(actor: actor, org: info.org, alias: alias)
            try s.exec("INSERT INTO user_aliases(alias, user) VALUES (?1, ?2)", alias, info.id)
            out.message = "added alias \"\(alias)\" to user:\(info.id)"
        }
    }
}

import PIAMEngine

extension AdminOperation {
    /// Takes an assignment back.
    public static func revoke(user: String, role: String, scope: String?) -> AdminOperation {
        AdminOperation(AdminOps.Revoke(user: user, role: role, scope: scope))
    }
}

extension AdminOps {
    /// `revoke`: an assignment taken back; the last-admin guard applies.
    struct Revoke: AdministrativeOperation {
        static let name = "revoke"
        var user: String
        var role: String
        var scope: String?

        init(user: String, role: String, scope: String?) { self.user = user; self.role = role; self.scope = scope }

        init(reading f: inout FieldReader) throws(PIAMError) {
            self.init(user: try f.id("user"), role: try f.id("role"), scope: try f.optString("scope"))
        }

        func write(to f: inout FieldWriter) { f.set("user", user); f.set("role", role); f.optional("scope", scope) }
        func target(actor: String) -> String { "user:\(user)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [Self.check(actor, "revoke_role", BuiltinType.user, user)]
        }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            let info = try s.user(user)
            let l = scope ?? info.org
            guard try s.count("SELECT count(*) FROM assignments WHERE user = ?1 AND role = ?2 AND scope = ?3", info.id, role, l) > 0 else {
                throw PIAMError(.notFound, "user \"\(info.id)\" holds no role \(role) over org \"\(l)\"")
            }
            try s.guardLastAdmin(actor: actor, root: try s.store.partnerRootSQL(info.org), affected: [info.id], removesAffected: false) {
                try s.exec("DELETE FROM assignments WHERE user = ?1 AND role = ?2 AND scope = ?3", info.id, role, l)
            }
            out.message = "revoked role \(role) over org:\(l) from user:\(info.id)"
        }
    }
}

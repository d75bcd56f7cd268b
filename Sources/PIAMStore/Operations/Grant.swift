import PIAMEngine

extension AdminOperation {
    /// Gives `role` to `user` over `scope` (default: the user's org), by `can_assign`.
    public static func grant(user: String, role: String, scope: String?, validUntil: Timestamp?) -> AdminOperation {
        AdminOperation(AdminOps.Grant(user: user, role: role, scope: scope, validUntil: validUntil))
    }
}

extension AdminOps {
    /// `grant`: an assignment. Every rule of it — the actor's `assign_role`, the role and the
    /// scope existing, the ceiling, the scope's bounds, no escalation — is the engine's
    /// `can_assign`; the store only writes.
    struct Grant: AdministrativeOperation {
        static let name = "grant"
        var user: String
        var role: String
        var scope: String?
        var validUntil: Timestamp?

        init(user: String, role: String, scope: String?, validUntil: Timestamp?) {
            self.user = user; self.role = role; self.scope = scope; self.validUntil = validUntil
        }

        init(reading f: inout FieldReader) throws(PIAMError) {
            self.init(user: try f.id("user"), role: try f.id("role"), scope: try f.optString("scope"),
                      validUntil: try f.time("valid_until") ?? nil)
        }

        func write(to f: inout FieldWriter) {
            f.set("user", user); f.set("role", role); f.optional("scope", scope); f.time("valid_until", validUntil)
        }

        func target(actor: String) -> String { "user:\(user)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [.canAssign(actor: actor, target: user, role: role, scope: scope)]
        }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            let info = try s.user(user)
            let l = scope ?? info.org
            // A re-grant that changes nothing keeps who granted it and when.
            try s.exec("""
                INSERT INTO assignments(user, role, scope, valid_until, granted_by, granted_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                ON CONFLICT(user, role, scope) DO UPDATE SET valid_until = excluded.valid_until, granted_by = excluded.granted_by,
                  granted_at = excluded.granted_at
                WHERE valid_until IS NOT excluded.valid_until
                """, info.id, role, l, validUntil, actor, s.now)
            out.message = "granted role \(role) to user:\(info.id) over org:\(l)" + (validUntil.map { " until \(RFC3339.format($0))" } ?? "")
        }
    }
}

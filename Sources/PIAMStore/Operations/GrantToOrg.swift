import PIAMEngine

extension AdminOperation {
    /// Gives `role` to every member of `org` (and of its sub-orgs with `includeSuborgs`).
    public static func grantToOrg(org: String, role: String, includeSuborgs: Bool, validUntil: Timestamp?) -> AdminOperation {
        AdminOperation(AdminOps.GrantToOrg(org: org, role: role, includeSuborgs: includeSuborgs, validUntil: validUntil))
    }
}

extension AdminOps {
    /// `org-grant`: an org grant. Every rule of it is the engine's `canGrantToOrg`.
    struct GrantToOrg: AdministrativeOperation {
        static let name = "org-grant"
        var org: String
        var role: String
        var includeSuborgs: Bool
        var validUntil: Timestamp?

        init(org: String, role: String, includeSuborgs: Bool, validUntil: Timestamp?) {
            self.org = org; self.role = role; self.includeSuborgs = includeSuborgs; self.validUntil = validUntil
        }

        init(reading f: inout FieldReader) throws(PIAMError) {
            self.init(org: try f.id("org"), role: try f.id("role"), includeSuborgs: try f.bool("include_suborgs"),
                      validUntil: try f.time("valid_until") ?? nil)
        }

        func write(to f: inout FieldWriter) {
            f.set("org", org); f.set("role", role); f.flag("include_suborgs", includeSuborgs); f.time("valid_until", validUntil)
        }

        func target(actor: String) -> String { "org:\(org)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [.grantToOrg(actor: actor, org: org, role: role)]
        }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            try s.exec("""
                INSERT INTO org_grants(org, role, include_suborgs, valid_until, granted_by, granted_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                ON CONFLICT(org, role) DO UPDATE SET include_suborgs = excluded.include_suborgs, valid_until = excluded.valid_until,
                  granted_by = excluded.granted_by, granted_at = excluded.granted_at
                WHERE include_suborgs IS NOT excluded.include_suborgs OR valid_until IS NOT excluded.valid_until
                """, org, role, includeSuborgs, validUntil, actor, s.now)
            out.message = "granted role \(role) to every member of org:\(org)\(includeSuborgs ? " and its sub-orgs" : "")"
        }
    }
}

import PIAMEngine

extension AdminOperation {
    /// A pending partner org (kind partner, under `parent`, default `partners`) plus its first
    /// admin as an invited user holding `partner-admin` over the org.
    public static func registerOrg(org: String, name: String?, parent: String?, admin: String, adminName: String?,
                                   adminEmail: String?) -> AdminOperation {
        AdminOperation(AdminOps.RegisterOrg(org: org, name: name, parent: parent, admin: admin, adminName: adminName,
                                            adminEmail: adminEmail))
    }
}

extension AdminOps {
    /// `org.register`: a partner's registration, by the business or by the new admin itself.
    struct RegisterOrg: AdministrativeOperation {
        static let name = "org.register"
        var org: String
        var name: String?
        var parent: String?
        var admin: String
        var adminName: String?
        var adminEmail: String?

        init(org: String, name: String?, parent: String?, admin: String, adminName: String?, adminEmail: String?) {
            self.org = org; self.name = name; self.parent = parent; self.admin = admin
            self.adminName = adminName; self.adminEmail = adminEmail
        }

        init(reading f: inout FieldReader) throws(PIAMError) {
            self.init(org: try f.id("org"), name: try f.optString("name"), parent: try f.optString("parent"),
                      admin: try f.id("admin"), adminName: try f.optString("admin_name"), adminEmail: try f.optString("admin_email"))
        }

        func write(to f: inout FieldWriter) {
            f.set("org", org); f.optional("name", name); f.optional("parent", parent); f.set("admin", admin)
            f.optional("admin_name", adminName); f.optional("admin_email", adminEmail)
        }

        func target(actor: String) -> String { "org:\(org)" }

        /// None for a self-registration (the new admin as actor): the engine cannot decide it.
        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            actor == admin ? [] : [Self.check(actor, "create_suborg", BuiltinType.org, parent ?? Seed.partnersOrgID)]
        }

        /// The new org is its own partner root.
        func auditPartner(actor: String, in store: Store) throws(PIAMError) -> String? { org }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            let parent = parent ?? Seed.partnersOrgID
            try validateEntityID(org, what: "org id")
            let p = try s.org(parent)
            guard p.kind == .host else {
                throw PIAMError(.invalidInput, "a partner registers under a host org (\(Seed.partnersOrgID)), not under partner org \"\(parent)\"")
            }
            guard try s.store.org(id: org) == nil else { throw PIAMError(.conflict, "org \"\(org)\" already exists") }
            try s.requireFreeUserName(admin, what: "admin user id")
            guard try s.roleExists(Seed.partnerAdmin.id) else {
                throw PIAMError(.notFound, "role \(Seed.partnerAdmin.id) is not defined: a registration's first admin needs it")
            }
            try s.exec("INSERT INTO orgs(id, parent, name, kind, status) VALUES (?1, ?2, ?3, 'partner', 'pending')", org, parent, name ?? org)
            try s.exec("INSERT INTO users(id, org, name, email, status) VALUES (?1, ?2, ?3, ?4, 'invited')", admin, org, adminName, adminEmail)
            // In effect once the org is approved, partner-admin entitled, and the invitation accepted.
            try s.exec("INSERT INTO assignments(user, role, scope, granted_by, granted_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                       admin, Seed.partnerAdmin.id, org, actor == admin ? "registration" : actor, s.now)
            try s.createInvitation(user: admin, validUntil: nil, expires: nil, createdBy: actor == admin ? "registration" : actor, out: &out)
            out.message = "registered org:\(org) (pending approval) with its first admin user:\(admin) (invited)"
        }
    }
}

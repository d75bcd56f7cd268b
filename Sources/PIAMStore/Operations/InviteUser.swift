import PIAMEngine

extension AdminOperation {
    /// A new user with status `invited`, and its invitation: a single-use secret returned once
    /// in ``AdminResult/invitationToken``, expiring at `invitationExpires` (default: 7 days
    /// after the operation, never later than the user's `validUntil`).
    public static func inviteUser(user: String, org: String, name: String?, email: String?, aliases: [String], validUntil: Timestamp?,
                                  invitationExpires: Timestamp? = nil) -> AdminOperation {
        AdminOperation(AdminOps.InviteUser(user: user, org: org, name: name, email: email, aliases: aliases, validUntil: validUntil,
                                           invitationExpires: invitationExpires))
    }
}

extension AdminOps {
    /// `user.invite`: a new person, and the invitation with which it becomes active.
    struct InviteUser: AdministrativeOperation {
        static let name = "user.invite"
        var user: String
        var org: String
        var name: String?
        var email: String?
        var aliases: [String]
        var validUntil: Timestamp?
        var invitationExpires: Timestamp?

        init(user: String, org: String, name: String?, email: String?, aliases: [String], validUntil: Timestamp?,
             invitationExpires: Timestamp?) {
            self.user = user; self.org = org; self.name = name; self.email = email; self.aliases = aliases
            self.validUntil = validUntil; self.invitationExpires = invitationExpires
        }

        init(reading f: inout FieldReader) throws(PIAMError) {
            self.init(user: try f.id("user"), org: try f.id("org"), name: try f.optString("name"),
                      email: try f.optString("email"), aliases: try f.strings("aliases") ?? [],
                      validUntil: try f.time("valid_until") ?? nil, invitationExpires: try f.time("invitation_expires") ?? nil)
        }

        func write(to f: inout FieldWriter) {
            f.set("user", user); f.set("org", org); f.optional("name", name); f.optional("email", email)
            f.list("aliases", aliases); f.time("valid_until", validUntil); f.time("invitation_expires", invitationExpires)
        }

        func target(actor: String) -> String { "user:\(user)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [Self.check(actor, "invite_user", BuiltinType.org, org)]
        }

        /// The user's partner once it exists, else the org's.
        func auditPartner(actor: String, in store: Store) throws(PIAMError) -> String? {
            if let p = try store.userPartnerRoot(user) { return p }
            return try store.partnerRootSQL(org)
        }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            _ = try s.org(org)
            try s.requireFreeUserName(user, what: "user id")
            for a in aliases {
                try s.requireFreeUserName(a, what: "alias")
                try s.requireAliasInNamespace(actor: actor, org: org, alias: a)
            }
            guard Set(aliases).count == aliases.count, !aliases.contains(user) else {
                throw PIAMError(.invalidInput, "user \"\(user)\": aliases repeat each other or the id")
            }
            try s.exec("INSERT INTO users(id, org, name, email, status, valid_until) VALUES (?1, ?2, ?3, ?4, 'invited', ?5)",
                       user, org, name, email, validUntil)
            for a in aliases {
                try s.exec("INSERT INTO user_aliases(alias, user) VALUES (?1, ?2)", a, user)
            }
            try s.createInvitation(user: user, validUntil: validUntil, expires: invitationExpires, createdBy: actor, out: &out)
            out.message = "invited user:\(user) to org:\(org)"
        }
    }
}

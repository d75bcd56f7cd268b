import PIAMEngine

// Just-in-time creation of partner users (issue 17): the per-partner setting (`jit.set`,
// `jit.clear`), what piamd loads of it (``Store/jitNamespaces()``), and the creation itself
// (`jit.create`), which piam-admind performs for piamd (`POST /admin/v1/jit`).

extension Store {
    /// Every partner's JIT setting (partners without one have JIT off), sorted by partner.
    /// Empty before schema v7.
    public func jitSettings() throws(PIAMError) -> [JITSetting] {
        guard try schemaVersion >= Schema.jitVersion else { return [] }
        let s = try db.prepare("SELECT partner, org, role FROM partner_jit ORDER BY partner")
        return try s.rows { JITSetting(partner: $0.text(0), org: $0.text(1), role: $0.text(2)) }
    }

    /// Partner root `partner`'s JIT setting, or `nil` when JIT is off for it.
    public func jitSetting(partner: String) throws(PIAMError) -> JITSetting? {
        try jitSettings().first { $0.partner == partner }
    }

    /// The identity namespaces of the JIT-enabled partners with their settings: what piamd
    /// holds beside the graph (``LoadedGraph/jit``, ``ChangeSet/jit``).
    public func jitNamespaces() throws(PIAMError) -> JITNamespaces {
        let settings = try jitSettings()
        guard !settings.isEmpty else { return .empty }
        return JITNamespaces(namespaces: try allIdentityNamespaces(), settings: settings)
    }

    /// The user id a JIT creation gives subject `subject`: `jit-` and the first 32 hex digits
    /// (128 bits) of the subject's SHA-256. Deterministic (two piamd asking for one subject ask
    /// for one id) and free of the subject's characters; two subjects with one id would need a
    /// 128-bit collision, and even then the second creation is refused `conflict` (the id is
    /// taken), never merged into the first user.
    public static func jitUserID(subject: String) -> String {
        "jit-" + SHA256.hex(Array(subject.utf8)).prefix(32)
    }
}

extension AdminOperation {
    /// The business enables just-in-time creation for partner root `org`: unknown subjects
    /// inside its identity namespaces become active users of `jitOrg` holding `role` there.
    public static func setJIT(org: String, jitOrg: String, role: String) -> AdminOperation {
        AdminOperation(AdminOps.SetJIT(org: org, jitOrg: jitOrg, role: role))
    }

    /// The business switches just-in-time creation off for partner root `org`.
    public static func clearJIT(org: String) -> AdminOperation {
        AdminOperation(AdminOps.ClearJIT(org: org))
    }

    /// Creates the user an unknown subject names, just in time (piamd asks piam-admind for it).
    public static func createJIT(subject: String) -> AdminOperation {
        AdminOperation(AdminOps.CreateJIT(subject: subject))
    }
}

extension AdminOps {
    /// `jit.set`: host-only (`org:entitle` on the partner root, like its namespaces). The org
    /// must be a partner root; the rest is the engine's
    /// ``PIAMEngine/AccessGraph/jitSettingDecision(partner:org:role:now:)`` (the org in the
    /// partner's subtree, the role in its ceiling and one the partner's admins could assign).
    struct SetJIT: AdministrativeOperation {
        static let name = "jit.set"
        var org: String
        var jitOrg: String
        var role: String

        init(org: String, jitOrg: String, role: String) { self.org = org; self.jitOrg = jitOrg; self.role = role }
        init(reading f: inout FieldReader) throws(PIAMError) {
            self.init(org: try f.id("org"), jitOrg: try f.id("jit_org"), role: try f.id("role"))
        }
        func write(to f: inout FieldWriter) { f.set("org", org); f.set("jit_org", jitOrg); f.set("role", role) }
        func target(actor: String) -> String { "org:\(org)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [Self.check(actor, "entitle", BuiltinType.org, org)]
        }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            try s.requirePartnerRoot(org)
            try s.catchUp()
            let d = s.graph.jitSettingDecision(partner: org, org: jitOrg, role: role, now: s.now)
            guard d.allowed else {
                throw Refusal(reason: d.reason.name,
                              message: "partner \(org) cannot create people just in time in org:\(jitOrg) with role \(role) (\(d.reason.name))")
            }
            try s.exec("""
                INSERT INTO partner_jit(partner, org, role, updated_at, updated_by) VALUES (?1, ?2, ?3, ?4, ?5)
                ON CONFLICT(partner) DO UPDATE SET org = excluded.org, role = excluded.role, updated_at = excluded.updated_at,
                  updated_by = excluded.updated_by
                WHERE org IS NOT excluded.org OR role IS NOT excluded.role
                """, org, jitOrg, role, s.now, actor)
            out.changed = s.db.changes > 0
            out.message = out.changed == true ? "partner \(org) creates unknown people just in time in org:\(jitOrg) with role \(role)"
                : "partner \(org) already creates people just in time in org:\(jitOrg) with role \(role)"
        }
    }

    /// `jit.clear`: host-only, as `jit.set`. Clearing a partner without a setting changes nothing.
    struct ClearJIT: AdministrativeOperation {
        static let name = "jit.clear"
        var org: String

        init(org: String) { self.org = org }
        init(reading f: inout FieldReader) throws(PIAMError) { self.init(org: try f.id("org")) }
        func write(to f: inout FieldWriter) { f.set("org", org) }
        func target(actor: String) -> String { "org:\(org)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [Self.check(actor, "entitle", BuiltinType.org, org)]
        }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            _ = try s.org(org)
            try s.exec("DELETE FROM partner_jit WHERE partner = ?1", org)
            out.changed = s.db.changes > 0
            out.message = out.changed == true ? "partner \(org) no longer creates people just in time"
                : "partner \(org) had just-in-time creation off"
        }
    }

    /// `jit.create`: a host actor (piamd's service user; a partner user is refused `host_only`)
    /// with `org:invite_user` on the partner's JIT org creates the user `subject` names, when the engine's
    /// ``PIAMEngine/AccessGraph/jitDecision(subject:jit:)`` says so: an active user
    /// ``Store/jitUserID(subject:)`` of the setting's org, with `subject` as its alias and the
    /// setting's role over the org (rules 2–4 of `can_assign` asked of the new user). A subject
    /// that already names a user changes nothing (idempotent); one outside every JIT-enabled
    /// namespace is refused `jit_not_eligible`.
    struct CreateJIT: AdministrativeOperation {
        static let name = "jit.create"
        var subject: String

        init(subject: String) { self.subject = subject }
        init(reading f: inout FieldReader) throws(PIAMError) { self.init(subject: try f.id("subject")) }
        func write(to f: inout FieldWriter) { f.set("subject", subject) }
        func target(actor: String) -> String { "user:\(subject)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            guard let setting = try store.jitNamespaces().setting(for: subject) else { return [] }
            return [Self.check(actor, "invite_user", BuiltinType.org, setting.org)]
        }

        func auditPartner(actor: String, in store: Store) throws(PIAMError) -> String? {
            if let p = try store.userPartnerRoot(subject) { return p }
            return try store.jitNamespaces().setting(for: subject)?.partner
        }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            try s.catchUp()
            // Only the business's own users (piamd's service user) create people just in time.
            guard let org = s.graph.org(ofUser: actor), s.graph.isHostOrg(org) else {
                throw Refusal(reason: Reason.hostOnly.name, message: "\(actor) may not create people just in time: only the business's service users do")
            }
            switch s.graph.jitDecision(subject: subject, jit: try s.store.jitNamespaces()) {
            case .known(let user):
                out.changed = false
                out.message = "subject \"\(subject)\" already names user:\(user)"
            case .notEligible:
                throw Refusal(reason: JITDecision.reasonCode,
                              message: "subject \"\(subject)\" lies inside no identity namespace of a partner with just-in-time creation enabled")
            case .create(let setting):
                let id = Store.jitUserID(subject: subject)
                try s.requireFreeUserName(id, what: "user id")
                try s.exec("INSERT INTO users(id, org, status) VALUES (?1, ?2, 'active')", id, setting.org)
                try s.exec("INSERT INTO user_aliases(alias, user) VALUES (?1, ?2)", subject, id)
                try s.catchUp()
                let d = s.graph.assignable(role: setting.role, to: id, over: nil)
                guard d.allowed else {
                    throw Refusal(reason: d.reason.name,
                                  message: "partner \(setting.partner)'s just-in-time role \(setting.role) cannot be held in org:\(setting.org) (\(d.reason.name))")
                }
                try s.exec("INSERT INTO assignments(user, role, scope, granted_by, granted_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                           id, setting.role, setting.org, actor, s.now)
                out.changed = true
                out.details = ["user \(id)", "alias \(subject)", "org \(setting.org)", "role \(setting.role)"]
                out.message = "created user:\(id) just in time for subject \"\(subject)\" in org:\(setting.org) with role \(setting.role)"
            }
        }
    }
}

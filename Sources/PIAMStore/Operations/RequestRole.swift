import PIAMEngine

extension AdminOperation {
    /// The actor asks for `role` for itself, over `scope` (default: its org).
    public static func requestRole(role: String, scope: String?, note: String?) -> AdminOperation {
        AdminOperation(AdminOps.RequestRole(role: role, scope: scope, note: note))
    }
}

extension AdminOps {
    /// `request.create`: an access request, for the actor itself.
    struct RequestRole: AdministrativeOperation {
        static let name = "request.create"
        var role: String
        var scope: String?
        var note: String?

        init(role: String, scope: String?, note: String?) { self.role = role; self.scope = scope; self.note = note }

        init(reading f: inout FieldReader) throws(PIAMError) {
            self.init(role: try f.id("role"), scope: try f.optString("scope"), note: try f.optString("note"))
        }

        func write(to f: inout FieldWriter) { f.set("role", role); f.optional("scope", scope); f.optional("note", note) }

        /// The actor's own user record.
        func target(actor: String) -> String { "user:\(actor)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [Self.check(actor, "request_role", BuiltinType.user, actor)]
        }

        func auditPartner(actor: String, in store: Store) throws(PIAMError) -> String? { try store.userPartnerRoot(actor) }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            let me = try s.user(actor)
            let l = scope ?? me.org
            // A request nobody could approve is refused now: the rules of can_assign that do not
            // depend on the approver (the role and scope exist, the ceiling, the scope's bounds),
            // answered by the engine — the same function its can_assign calls for the approver.
            let d = try s.decide(assignable: role, to: me.id, over: l)
            if !d.allowed {
                let message = switch d.reason {
                case .unknownRole: "no such role \"\(role)\""
                case .unknownOrg: "no such org \"\(l)\""
                case .outsideCeiling: "role \(role) is not in the ceiling of org:\(me.org)"
                case .outOfScope: "a partner user's role acts at its org or below, not over org:\(l)"
                default: "\(me.id) may not ask for role \(role) over org:\(l)"
                }
                throw Refusal(reason: d.reason.name, message: message)
            }
            if try s.count("SELECT count(*) FROM access_requests WHERE user = ?1 AND role = ?2 AND scope = ?3 AND status = 'pending'", me.id, role, l) > 0 {
                throw PIAMError(.conflict, "user \"\(me.id)\" already has a pending request for role \(role) over org \"\(l)\"")
            }
            try s.exec("INSERT INTO access_requests(user, role, scope, note, created_at) VALUES (?1, ?2, ?3, ?4, ?5)", me.id, role, l, note, s.now)
            out.requestID = s.db.lastInsertRowID
            out.changed = true
            out.message = "request #\(s.db.lastInsertRowID): user:\(me.id) asks for role \(role) over org:\(l)"
        }
    }
}

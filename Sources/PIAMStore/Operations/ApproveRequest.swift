import PIAMEngine

extension AdminOperation {
    /// Approves a pending request: a grant by `can_assign`.
    public static func approveRequest(id: Int64, note: String?) -> AdminOperation { AdminOperation(AdminOps.ApproveRequest(id: id, note: note)) }
}

extension AdminOps {
    /// `request.approve`: the requested grant, decided by `can_assign` exactly as a `grant`.
    struct ApproveRequest: AdministrativeOperation {
        static let name = "request.approve"
        var id: Int64
        var note: String?

        init(id: Int64, note: String?) { self.id = id; self.note = note }
        init(reading f: inout FieldReader) throws(PIAMError) { self.init(id: try f.int("id"), note: try f.optString("note")) }
        func write(to f: inout FieldWriter) { f.set("id", id); f.optional("note", note) }
        func target(actor: String) -> String { "request:\(id)" }

        /// `can_assign` for the request's user, role and scope (read from the database).
        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            let r = try store.accessRequest(id: id)
            return [.canAssign(actor: actor, target: r.user, role: r.role, scope: r.scope)]
        }

        /// Nobody approves its own request: a store guard, since a request names its user and
        /// `can_assign` would let an admin grant itself what it may grant others.
        func precheck(as actor: String, in store: Store) throws(PIAMError) -> (reason: String, message: String)? {
            let r = try store.accessRequest(id: id)
            guard try store.sameUser(actor, r.user) else { return nil }
            return (AdminReason.selfAction, "\(r.user) may not approve its own access request #\(id)")
        }

        /// The requester's partner.
        func auditPartner(actor: String, in store: Store) throws(PIAMError) -> String? {
            try store.userPartnerRoot((try? store.accessRequest(id: id))?.user ?? "")
        }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            let req = try s.store.accessRequest(id: id)
            try s.requirePending(req)
            try s.exec("""
                INSERT INTO assignments(user, role, scope, valid_until, granted_by, granted_at) VALUES (?1, ?2, ?3, NULL, ?4, ?5)
                ON CONFLICT(user, role, scope) DO UPDATE SET valid_until = NULL, granted_by = excluded.granted_by,
                  granted_at = excluded.granted_at
                WHERE valid_until IS NOT NULL
                """, req.user, req.role, req.scope, actor, s.now)
            try s.decideRequest(id, status: "approved", actor: actor, note: note)
            out.requestID = id
            out.changed = true
            out.message = "approved request #\(id): granted role \(req.role) to user:\(req.user) over org:\(req.scope)"
        }
    }
}

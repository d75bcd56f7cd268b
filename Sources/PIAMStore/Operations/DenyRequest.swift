import PIAMEngine

extension AdminOperation {
    /// Denies a pending request.
    public static func denyRequest(id: Int64, note: String?) -> AdminOperation { AdminOperation(AdminOps.DenyRequest(id: id, note: note)) }
}

extension AdminOps {
    /// `request.deny`: whoever may assign roles to the requester may say no.
    struct DenyRequest: AdministrativeOperation {
        static let name = "request.deny"
        var id: Int64
        var note: String?

        init(id: Int64, note: String?) { self.id = id; self.note = note }
        init(reading f: inout FieldReader) throws(PIAMError) { self.init(id: try f.int("id"), note: try f.optString("note")) }
        func write(to f: inout FieldWriter) { f.set("id", id); f.optional("note", note) }
        func target(actor: String) -> String { "request:\(id)" }

        /// `assign_role` on the requester (read from the database).
        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            let r = try store.accessRequest(id: id)
            return [Self.check(actor, "assign_role", BuiltinType.user, r.user)]
        }

        /// The requester's partner.
        func auditPartner(actor: String, in store: Store) throws(PIAMError) -> String? {
            try store.userPartnerRoot((try? store.accessRequest(id: id))?.user ?? "")
        }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            let req = try s.store.accessRequest(id: id)
            try s.requirePending(req)
            try s.decideRequest(id, status: "denied", actor: actor, note: note)
            out.requestID = id
            out.changed = true
            out.message = "denied request #\(id) (role \(req.role) for user:\(req.user))"
        }
    }
}

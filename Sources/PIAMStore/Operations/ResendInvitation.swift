import PIAMEngine

extension AdminOperation {
    /// A new invitation for a user still `invited`: its open invitations are revoked and a new
    /// secret is returned once (expiring at `expires`, default 7 days, capped as for
    /// `user.invite`). Needs `invite_user` on the user's org.
    public static func resendInvitation(user: String, expires: Timestamp? = nil) -> AdminOperation {
        AdminOperation(AdminOps.ResendInvitation(user: user, expires: expires))
    }
}

extension AdminOps {
    /// `invitation.resend`: replaces a lost or expired invitation.
    struct ResendInvitation: AdministrativeOperation {
        static let name = "invitation.resend"
        var user: String
        var expires: Timestamp?

        init(user: String, expires: Timestamp?) { self.user = user; self.expires = expires }
        init(reading f: inout FieldReader) throws(PIAMError) { self.init(user: try f.id("user"), expires: try f.time("expires") ?? nil) }
        func write(to f: inout FieldWriter) { f.set("user", user); f.time("expires", expires) }
        func target(actor: String) -> String { "user:\(user)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [try store.invitationQuestion(actor: actor, user: user)]
        }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            let info = try s.user(user)
            guard info.status == .invited else {
                throw PIAMError(.conflict, "user \"\(info.id)\" is \(info.status.name), not invited: there is no invitation to resend")
            }
            let revoked = try s.revokeOpenInvitations(of: info.id)
            try s.createInvitation(user: info.id, validUntil: info.validUntil, expires: expires, createdBy: actor, out: &out)
            out.changed = true
            out.message = "sent user:\(info.id) a new invitation" + (revoked > 0 ? " (revoking \(revoked) open one\(revoked == 1 ? "" : "s"))" : "")
        }
    }
}

import PIAMEngine

extension AdminOperation {
    /// Revokes a user's open invitations. Needs `invite_user` on the user's org.
    public static func revokeInvitation(user: String) -> AdminOperation { AdminOperation(AdminOps.RevokeInvitation(user: user)) }
}

extension AdminOps {
    /// `invitation.revoke`: the user stays `invited`, with nothing to accept.
    struct RevokeInvitation: AdministrativeOperation {
        static let name = "invitation.revoke"
        var user: String

        init(user: String) { self.user = user }
        init(reading f: inout FieldReader) throws(PIAMError) { self.init(user: try f.id("user")) }
        func write(to f: inout FieldWriter) { f.set("user", user) }
        func target(actor: String) -> String { "user:\(user)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [try store.invitationQuestion(actor: actor, user: user)]
        }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            let info = try s.user(user)
            let revoked = try s.revokeOpenInvitations(of: info.id)
            out.changed = revoked > 0
            out.message = revoked > 0 ? "revoked \(revoked) open invitation\(revoked == 1 ? "" : "s") of user:\(info.id)"
                : "user:\(info.id) has no open invitation"
        }
    }
}

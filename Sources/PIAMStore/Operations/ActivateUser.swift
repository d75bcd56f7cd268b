import PIAMEngine

extension AdminOperation {
    /// An admin with `user:reactivate` makes an invited user active without its invitation.
    /// (An invitee accepts with ``Store/acceptInvitation(secret:identity:now:)``; the invitee
    /// itself may not perform this: ``AdminReason/invitationRequired``.)
    public static func activateUser(user: String) -> AdminOperation { AdminOperation(AdminOps.ActivateUser(user: user)) }
}

extension AdminOps {
    /// `user.activate`: an invited user made active by an admin (its invitations revoked).
    struct ActivateUser: AdministrativeOperation {
        static let name = "user.activate"
        var user: String

        init(user: String) { self.user = user }
        init(reading f: inout FieldReader) throws(PIAMError) { self.init(user: try f.id("user")) }
        func write(to f: inout FieldWriter) { f.set("user", user) }
        func target(actor: String) -> String { "user:\(user)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [Self.check(actor, "reactivate", BuiltinType.user, user)]
        }

        /// No self-activation: a bare claim to be the invitee is no proof (its invitation's
        /// secret is). A store guard: the engine decides what a user may do, not whether a
        /// request comes from whom it names.
        func precheck(as actor: String, in store: Store) throws(PIAMError) -> (reason: String, message: String)? {
            guard try store.sameUser(actor, user) else { return nil }
            return (AdminReason.invitationRequired,
                    "\(actor) may not activate itself: an invited user accepts its invitation (piamctl invitation accept SECRET --identity ID)")
        }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            let info = try s.user(user)
            guard info.status == .invited else {
                throw PIAMError(.conflict, "user \"\(info.id)\" is \(info.status.name), not invited: nothing to activate")
            }
            if let end = info.validUntil, end <= s.now {
                throw Refusal(reason: Reason.subjectExpired.name, message: "the access of user:\(info.id) ended at \(RFC3339.format(end))")
            }
            try s.exec("UPDATE users SET status = 'active' WHERE id = ?1", info.id)
            // Its invitations have nothing left to accept.
            let revoked = try s.revokeOpenInvitations(of: info.id)
            out.message = "activated invited user:\(info.id)" + (revoked > 0 ? " (its open invitation revoked)" : "")
        }
    }
}

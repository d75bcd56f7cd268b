import Foundation
import PIAMEngine

/// An invitation: a single-use, expiring secret with which an `invited` user becomes active
/// (schema v4, table `invitations`; only the secret's SHA-256 is stored).
public struct InvitationInfo: Sendable, Hashable {
    public var id: Int64
    /// The invited user (its id).
    public var user: String
    public var createdAt: Timestamp
    /// Who invited (a user id; `registration` for a self-registered partner's first admin).
    public var createdBy: String?
    public var expiresAt: Timestamp
    /// When it was accepted; `nil` = not yet.
    public var usedAt: Timestamp?
    /// When it was revoked (a resend, a revocation, the user activated otherwise).
    public var revokedAt: Timestamp?

    /// `open`, `used`, `revoked` or `expired` at `now`.
    public func status(at now: Timestamp) -> String {
        if usedAt != nil { return "used" }
        if revokedAt != nil { return "revoked" }
        return expiresAt <= now ? "expired" : "open"
    }
}

extension Store {
    /// How long an invitation is valid by default: 7 days (never beyond the user's
    /// `valid_until`).
    public static let invitationLifetime: Timestamp = 7 * 86_400_000

    static let invitationColumns = "id, user, created_at, created_by, expires_at, used_at, revoked_at"

    static func invitationInfo(_ s: Statement) -> InvitationInfo {
        InvitationInfo(id: s.int64(0), user: s.text(1), createdAt: s.int64(2), createdBy: s.optionalText(3),
                       expiresAt: s.int64(4), usedAt: s.optionalInt64(5), revokedAt: s.optionalInt64(6))
    }

    /// The invitations, of one user (id or alias) when given, oldest first (never their
    /// secrets: the database has none).
    public func invitations(user: String? = nil) throws(PIAMError) -> [InvitationInfo] {
        var id: String?
        if let user {
            guard let u = try userRecord(user) else { throw PIAMError(.notFound, "no such user \"\(user)\"") }
            id = u.id
        }
        let s = try db.prepare("SELECT \(Self.invitationColumns) FROM invitations WHERE ?1 IS NULL OR user = ?1 ORDER BY id")
        s.bind(1, id)
        return try s.rows(Self.invitationInfo)
    }

    /// Accepts an invitation: the invitee, proving itself with the invitation's secret, becomes
    /// active and binds `identity` (its identity provider's subject, a login) as an alias — in
    /// ONE write transaction.
    ///
    /// The invitation must be unused, unrevoked and unexpired, and its user still `invited`.
    /// Then, as the user itself: `user.activate` (status `active`), `user.alias.add(identity)`
    /// unless `identity` already names this user (it must be free in the user namespace
    /// otherwise), the invitation marked used (and any other open invitation of the user
    /// revoked). Both operations are audited with the user as actor and credential
    /// `invitation`. This is the only way an invitee activates itself: `user.activate` by the
    /// user itself is refused (``AdminReason/invitationRequired``).
    ///
    /// - Returns: the result of the activation (operation `user.activate`, target `user:U`),
    ///   with the alias in `details`; `revision` is the revision the transaction produced.
    /// - Throws: `PIAMError` with code `invitation_invalid` (no such secret, revoked, or the
    ///   user is no longer invited), `invitation_expired`, `invitation_used`; `conflict` when
    ///   `identity` names another user; `invalid_input` for an identity that is no valid id.
    ///   A failure on a known invitation is audited as `failed` (actor: its user).
    public func acceptInvitation(secret: String, identity: String, now: Timestamp? = nil) throws(PIAMError) -> AdminResult {
        let now = now ?? Self.clock()
        var known: String?
        do {
            return try writeTransaction { () throws -> AdminResult in
                try acceptInTransaction(secret: secret, identity: identity, now: now, known: &known)
            }
        } catch {
            guard let user = known else { throw (error as? PIAMError) ?? PIAMError(.database, "\(error)") }
            _ = try record(failure: error, op: .activateUser(user: user), actor: user, now: now, batch: nil, credential: "invitation")
            throw (error as? PIAMError) ?? PIAMError(.database, "\(error)")
        }
    }

    private func acceptInTransaction(secret: String, identity: String, now: Timestamp, known: inout String?) throws -> AdminResult {
        guard secret.hasPrefix(Secrets.invitationPrefix), secret.utf8.count <= 512 else {
            throw PIAMError(.invitationInvalid, "not an invitation secret (it starts with \(Secrets.invitationPrefix))")
        }
        let s = try db.prepare("SELECT \(Self.invitationColumns) FROM invitations WHERE hash = ?1")
        s.bind(1, Secrets.hash(secret))
        guard try s.step() else {
            throw PIAMError(.invitationInvalid, "no invitation has this secret (ask for a new one: invitation resend)")
        }
        let inv = Self.invitationInfo(s)
        s.reset()
        known = inv.user
        if let used = inv.usedAt {
            throw PIAMError(.invitationUsed, "the invitation of user:\(inv.user) was already accepted at \(RFC3339.format(used))")
        }
        if let revoked = inv.revokedAt {
            throw PIAMError(.invitationInvalid, "the invitation of user:\(inv.user) was revoked at \(RFC3339.format(revoked)) (a newer one may have been sent)")
        }
        if inv.expiresAt <= now {
            throw PIAMError(.invitationExpired, "the invitation of user:\(inv.user) expired at \(RFC3339.format(inv.expiresAt)) (ask for a new one: invitation resend)")
        }
        guard let user = try userRecord(inv.user) else {
            throw PIAMError(.invitationInvalid, "the invited user \"\(inv.user)\" no longer exists")
        }
        guard user.status == .invited else {
            throw PIAMError(.invitationInvalid, "user:\(user.id) is \(user.status.name), not invited: there is nothing to accept")
        }
        if let end = user.validUntil, end <= now {
            throw PIAMError(.invitationExpired, "the access of user:\(user.id) ended at \(RFC3339.format(end))")
        }
        try validateEntityID(identity, what: "identity")
        // The alias rule at acceptance: once the business declared namespaces for the invitee's
        // partner, the identity bound must lie inside them (else whoever holds the secret — the
        // admin who invited — could bind someone else's subject).
        if let root = try partnerRootSQL(user.org) {
            let declared = try identityNamespaces(partner: root)
            if !declared.isEmpty && !declared.contains(where: { $0.contains(identity) }) {
                throw PIAMError(PIAMError.Code(AliasDecision.reasonCode),
                                "identity \"\(identity)\" lies outside partner \(root)'s identity namespaces (\(declared.map(\.text).joined(separator: ", ")))")
            }
        }
        var addAlias = true
        if let holder = try userRecord(identity) {
            guard holder.id == user.id else {
                throw PIAMError(.conflict, "identity \"\(identity)\" is already a user id or alias of another user")
            }
            addAlias = false  // the invitation named it already (an alias given at invite time, or the id)
        }
        // As the user itself: user.activate, then user.alias.add, each audited.
        let activate = AdminOperation.activateUser(user: user.id)
        let partner = try partnerRootSQL(user.org)
        let activation = try cached("UPDATE users SET status = 'active' WHERE id = ?1")
        activation.bind(1, user.id)
        try activation.run()
        // This invitation is used; any other open one of the user has nothing left to accept.
        let used = try cached("UPDATE invitations SET used_at = ?2 WHERE id = ?1")
        used.bind(1, inv.id); used.bind(2, now)
        try used.run()
        let others = try cached("UPDATE invitations SET revoked_at = ?3 WHERE user = ?1 AND id <> ?2 AND used_at IS NULL AND revoked_at IS NULL")
        others.bind(1, user.id); others.bind(2, inv.id); others.bind(3, now)
        try others.run()
        let message = "user:\(user.id) accepted its invitation (active)"
        var revision = try currentRevision()
        try insertAudit(op: activate, actor: user.id, decision: "allowed", reason: Reason.allowed.name, message: message,
                        partner: partner, revision: revision, batch: nil, now: now, credential: "invitation")
        var details: [String] = []
        if addAlias {
            let st = try cached("INSERT INTO user_aliases(alias, user) VALUES (?1, ?2)")
            st.bind(1, identity); st.bind(2, user.id)
            try st.run()
            revision = try currentRevision()
            let aliasMessage = "added alias \"\(identity)\" to user:\(user.id)"
            try insertAudit(op: .addAlias(user: user.id, alias: identity), actor: user.id, decision: "allowed",
                            reason: Reason.allowed.name, message: aliasMessage, partner: partner, revision: revision, batch: nil,
                            now: now, credential: "invitation")
            details.append(aliasMessage)
        } else {
            details.append("identity \"\(identity)\" already names user:\(user.id)")
        }
        return AdminResult(operation: activate.name, target: activate.target(actor: user.id), actor: user.id, allowed: true,
                           reason: Reason.allowed.name, message: message, changed: true, revision: revision, details: details,
                           requestID: nil)
    }
}

// MARK: Inside administrative operations

extension AdminSession {
    /// Creates an invitation for `user` (in the open transaction) and puts its secret and expiry
    /// in `out`. Expiry: `expires`, else now + ``Store/invitationLifetime``; never after the
    /// user's `validUntil`.
    func createInvitation(user: String, validUntil: Timestamp?, expires: Timestamp?, createdBy: String, out: inout Outcome) throws {
        if let expires, expires <= now {
            throw PIAMError(.invalidInput, "invitation expiry \(RFC3339.format(expires)) is not in the future")
        }
        var at = expires ?? now + Store.invitationLifetime
        if let validUntil { at = min(at, validUntil) }
        let secret = Secrets.make(prefix: Secrets.invitationPrefix)
        try exec("INSERT INTO invitations(user, hash, created_at, created_by, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                 user, Secrets.hash(secret), now, createdBy, at)
        out.invitationToken = secret
        out.invitationExpires = at
    }

    /// Revokes `user`'s open invitations (in the open transaction); returns how many.
    func revokeOpenInvitations(of user: String) throws -> Int {
        try exec("UPDATE invitations SET revoked_at = ?2 WHERE user = ?1 AND used_at IS NULL AND revoked_at IS NULL", user, now)
        return db.changes
    }
}

extension Store {
    /// The engine question of `invitation.resend` and `invitation.revoke`: `invite_user` on the
    /// user's org, read from the database (an unknown user is `PIAMError/Code/notFound`).
    func invitationQuestion(actor: String, user u: String) throws(PIAMError) -> AdminQuestion {
        guard let target = try userRecord(u) else { throw PIAMError(.notFound, "no such user \"\(u)\"") }
        return .check(actor: actor, action: "invite_user", resource: ResourceRef(type: BuiltinType.org, id: target.org))
    }
}

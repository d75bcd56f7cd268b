import Foundation
import PIAMEngine

/// A SCIM bearer token: how a partner's identity provider (Okta, Entra ID, Google)
/// authenticates to its SCIM endpoint (schema v5, table `scim_tokens`).
///
/// A token acts as the partner's *SCIM service user* (``serviceUser``, `scim.PARTNER`): a
/// user at the partner's root holding the roles the business chose, over the partner root.
/// Every SCIM write is one or more administrative operations performed as that user, decided by
/// the engine like a person's: it can never do what the partner's admin could not do by hand.
public struct SCIMTokenInfo: Sendable, Hashable {
    /// The token's id (stable, shown in listings and in the credential).
    public var id: Int64
    /// The partner root whose endpoint it opens.
    public var partner: String
    /// The user it acts as.
    public var serviceUser: String
    /// When it was created.
    public var createdAt: Timestamp
    /// Who created it (a user id, or `os:NAME` for the CLI).
    public var createdBy: String?
    /// When it stops working; `nil` = no end.
    public var expiresAt: Timestamp?
    /// When it was revoked; `nil` = not revoked.
    public var revokedAt: Timestamp?
    /// When it last authenticated (recorded at most once a minute); `nil` = never.
    public var lastUsedAt: Timestamp?

    /// How its requests are recorded in the audit log: `scim:PARTNER#ID`.
    public var credential: String { "scim:\(partner)#\(id)" }

    /// `active`, `expired` or `revoked` at `now`.
    public func status(at now: Timestamp) -> String {
        if revokedAt != nil { return "revoked" }
        if let e = expiresAt, e <= now { return "expired" }
        return "active"
    }
}

/// The answer of ``Store/authenticateSCIMToken(_:now:)``.
public enum SCIMTokenCheck: Sendable, Hashable {
    /// Known, neither revoked nor expired.
    case valid(SCIMTokenInfo)
    /// Known, past its expiry.
    case expired(SCIMTokenInfo)
    /// Known, revoked.
    case revoked(SCIMTokenInfo)
    /// No SCIM token has this secret.
    case unknown
}

extension Store {
    /// The prefix of SCIM token secrets (distinct from API tokens' `piam_`).
    public static let scimTokenPrefix = "piamscim_"
    /// At most this many live (neither revoked nor expired) SCIM tokens per partner: enough to
    /// rotate without a gap (create the new one, switch the IdP, revoke the old one).
    public static let maxLiveSCIMTokens = 2

    /// The SCIM service user of partner root `partner`: `scim.PARTNER`.
    public static func scimServiceUser(partner: String) -> String { "scim.\(partner)" }

    static let scimTokenColumns = "id, partner, service_user, created_at, created_by, expires_at, revoked_at, last_used_at"

    static func scimTokenInfo(_ s: Statement) -> SCIMTokenInfo {
        SCIMTokenInfo(id: s.int64(0), partner: s.text(1), serviceUser: s.text(2), createdAt: s.int64(3), createdBy: s.optionalText(4),
                      expiresAt: s.optionalInt64(5), revokedAt: s.optionalInt64(6), lastUsedAt: s.optionalInt64(7))
    }

    /// Creates a SCIM token for partner root `partner` in one write transaction, audited as
    /// `scim.token.create` (the detail names the token and roles, never the secret).
    ///
    /// The partner's service user (``scimServiceUser(partner:)``) is created at the partner root
    /// when missing (active, journaled like any user) and given exactly `roles` over the
    /// partner root (roles it held beyond them are taken back): the business chooses what its
    /// partner's identity provider may do. Each role must be in the partner's ceiling.
    ///
    /// Like ``createToken(user:name:expires:createdBy:now:credential:)`` this is for whoever
    /// may write the database (the CLI) or for the business's staff (the admin API decides
    /// who may ask).
    ///
    /// - Returns: the token and its secret (`piamscim_…`), shown this once.
    /// - Throws: `not_found` (no such org or role), `invalid_input` (not a partner root, no
    ///   role, an expiry not in the future), `outside_ceiling` (a role the partner is not
    ///   entitled to), `conflict` (already two live tokens; or the service user's id is taken by
    ///   a user that is no service user).
    public func createSCIMToken(partner: String, roles: [String], expires: Timestamp? = nil, createdBy: String?,
                                now: Timestamp? = nil, credential: String? = nil) throws(PIAMError) -> (info: SCIMTokenInfo, secret: String) {
        let now = now ?? Self.clock()
        if let expires, expires <= now {
            throw PIAMError(.invalidInput, "token expiry \(RFC3339.format(expires)) is not in the future")
        }
        guard !roles.isEmpty else { throw PIAMError(.invalidInput, "a SCIM token needs at least one role (--role)") }
        return try db.withTransaction(immediate: true) { () throws(PIAMError) -> (info: SCIMTokenInfo, secret: String) in
            guard let o = try org(id: partner) else { throw PIAMError(.notFound, "no such org \"\(partner)\"") }
            guard o.kind == .partner, let parent = o.parent, try org(id: parent)?.kind == .host else {
                throw PIAMError(.invalidInput, "org \"\(partner)\" is not a partner root (a partner org directly below the business)")
            }
            let chain = Set(try orgChainSQL(partner))
            for r in roles {
                guard try role(id: r) != nil else { throw PIAMError(.notFound, "no such role \"\(r)\"") }
                let e = try db.prepare("SELECT org FROM entitlements WHERE role = ?1")
                e.bind(1, r)
                let entitled = try e.rows { $0.text(0) }
                if !entitled.contains(where: chain.contains) {
                    throw PIAMError(PIAMError.Code(Reason.outsideCeiling.name),
                                    "role \"\(r)\" is not in the ceiling of partner \(partner): entitle it first")
                }
            }
            let live = try db.prepare("SELECT count(*) FROM scim_tokens WHERE partner = ?1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?2)")
            live.bind(1, partner); live.bind(2, now)
            _ = try live.step()
            if live.int64(0) >= Int64(Self.maxLiveSCIMTokens) {
                throw PIAMError(.conflict, "partner \(partner) already has \(Self.maxLiveSCIMTokens) live SCIM tokens: revoke one first (rotation: create, switch, revoke)")
            }
            let svc = Self.scimServiceUser(partner: partner)
            try validateEntityID(svc, what: "SCIM service user id")
            if let existing = try userRecord(svc) {
                let known = try db.prepare("SELECT 1 FROM scim_tokens WHERE service_user = ?1 LIMIT 1")
                known.bind(1, existing.id)
                guard existing.id == svc, existing.org == partner, try known.step() else {
                    throw PIAMError(.conflict, "\"\(svc)\" already names a user that is not partner \(partner)'s SCIM service user")
                }
            } else {
                let ins = try db.prepare("INSERT INTO users(id, org, name, status) VALUES (?1, ?2, ?3, 'active')")
                ins.bind(1, svc); ins.bind(2, partner); ins.bind(3, "SCIM provisioning (\(partner))")
                try ins.run()
            }
            let grantedBy = try createdBy.flatMap { c throws(PIAMError) in try userRecord(c)?.id }
            let drop = try db.prepare("DELETE FROM assignments WHERE user = ?1 AND role NOT IN (SELECT value FROM json_each(?2))")
            drop.bind(1, svc); drop.bind(2, JSONText.array(roles))
            try drop.run()
            for r in roles {
                let a = try db.prepare("""
                    INSERT INTO assignments(user, role, scope, granted_by, granted_at) VALUES (?1, ?2, ?3, ?4, ?5)
                    ON CONFLICT(user, role, scope) DO NOTHING
                    """)
                a.bind(1, svc); a.bind(2, r); a.bind(3, partner); a.bind(4, grantedBy); a.bind(5, now)
                try a.run()
            }
            let secret = Secrets.make(prefix: Self.scimTokenPrefix)
            let t = try db.prepare("""
                INSERT INTO scim_tokens(partner, service_user, hash, created_at, created_by, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                """)
            t.bind(1, partner); t.bind(2, svc); t.bind(3, Secrets.hash(secret)); t.bind(4, now); t.bind(5, createdBy); t.bind(6, expires)
            try t.run()
            let info = SCIMTokenInfo(id: db.lastInsertRowID, partner: partner, serviceUser: svc, createdAt: now, createdBy: createdBy,
                                     expiresAt: expires, revokedAt: nil, lastUsedAt: nil)
            let detail = String(decoding: AuditJSON.encode(["id": info.id, "partner": partner, "roles": roles,
                                                            "expires_at": expires.map(RFC3339.format) ?? NSNull()]), as: UTF8.self)
            try insertAuditRow(operation: "scim.token.create", target: "org:\(partner)", detail: detail,
                               actor: grantedBy ?? createdBy ?? "-", decision: "allowed", reason: Reason.allowed.name,
                               message: "created SCIM token #\(info.id) for partner \(partner) acting as user:\(svc) with \(roles.joined(separator: ", "))",
                               partner: partner, revision: try currentRevision(), batch: nil, now: now, credential: credential)
            return (info, secret)
        }
    }

    /// The SCIM tokens (of one partner when given), by partner and id. Never their secrets.
    public func scimTokens(partner: String? = nil) throws(PIAMError) -> [SCIMTokenInfo] {
        let s = try db.prepare("SELECT \(Self.scimTokenColumns) FROM scim_tokens WHERE ?1 IS NULL OR partner = ?1 ORDER BY partner, id")
        s.bind(1, partner)
        return try s.rows(Self.scimTokenInfo)
    }

    /// One SCIM token by id, or `nil`.
    public func scimToken(id: Int64) throws(PIAMError) -> SCIMTokenInfo? {
        let s = try db.prepare("SELECT \(Self.scimTokenColumns) FROM scim_tokens WHERE id = ?1")
        s.bind(1, id)
        return try s.step() ? Self.scimTokenInfo(s) : nil
    }

    /// Revokes SCIM token `id` (one transaction, audited as `scim.token.revoke`); revoking a
    /// revoked token changes nothing. The service user stays (a newer token may use it).
    /// - Throws: `not_found`.
    @discardableResult
    public func revokeSCIMToken(id: Int64, revokedBy: String? = nil, now: Timestamp? = nil, credential: String? = nil) throws(PIAMError) -> SCIMTokenInfo {
        let now = now ?? Self.clock()
        return try db.withTransaction(immediate: true) { () throws(PIAMError) -> SCIMTokenInfo in
            guard var t = try scimToken(id: id) else { throw PIAMError(.notFound, "no such SCIM token #\(id)") }
            if t.revokedAt != nil { return t }
            let s = try db.prepare("UPDATE scim_tokens SET revoked_at = ?2 WHERE id = ?1")
            s.bind(1, id); s.bind(2, now)
            try s.run()
            t.revokedAt = now
            let actor = try revokedBy.flatMap { c throws(PIAMError) in try userRecord(c)?.id } ?? revokedBy ?? "-"
            try insertAuditRow(operation: "scim.token.revoke", target: "org:\(t.partner)", detail: "{\"id\":\(t.id)}", actor: actor,
                               decision: "allowed", reason: Reason.allowed.name, message: "revoked SCIM token #\(t.id) of partner \(t.partner)",
                               partner: t.partner, revision: try currentRevision(), batch: nil, now: now, credential: credential)
            return t
        }
    }

    /// Checks a SCIM token's secret at `now`; brings `last_used_at` up to date at most once a
    /// minute (a failure to record it does not fail the check).
    public func authenticateSCIMToken(_ secret: String, now: Timestamp? = nil) throws(PIAMError) -> SCIMTokenCheck {
        let now = now ?? Self.clock()
        guard secret.hasPrefix(Self.scimTokenPrefix), secret.utf8.count <= 512 else { return .unknown }
        let s = try cached("SELECT \(Self.scimTokenColumns) FROM scim_tokens WHERE hash = ?1")
        s.bind(1, Secrets.hash(secret))
        guard try s.step() else { s.reset(); return .unknown }
        var info = Self.scimTokenInfo(s)
        s.reset()
        if info.revokedAt != nil { return .revoked(info) }
        if let e = info.expiresAt, e <= now { return .expired(info) }
        if info.lastUsedAt.map({ now - $0 >= Self.minute }) ?? true {
            if let u = try? cached("UPDATE scim_tokens SET last_used_at = ?2 WHERE id = ?1") {
                u.bind(1, info.id); u.bind(2, now)
                if (try? u.run()) != nil { info.lastUsedAt = now }
            }
        }
        return .valid(info)
    }

    /// Appends an audit row for a SCIM request that is no administrative operation (a read, an
    /// authentication refused, a group mapping), in its own transaction.
    public func auditSCIM(operation: String, target: String, actor: String, decision: String, reason: String, message: String,
                          partner: String?, credential: String?, now: Timestamp? = nil) throws(PIAMError) {
        let now = now ?? Self.clock()
        try db.withTransaction(immediate: true) { () throws(PIAMError) in
            try insertAuditRow(operation: operation, target: target, detail: nil, actor: actor, decision: decision, reason: reason,
                               message: message, partner: partner, revision: try currentRevision(), batch: nil, now: now,
                               credential: credential)
        }
    }
}

/// Small JSON encoding for audit details.
enum AuditJSON {
    static func encode(_ o: [String: Any]) -> Data {
        (try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    }
}

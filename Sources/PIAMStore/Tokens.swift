import Foundation
import PIAMEngine

/// An API token: a long-lived secret with which a portal or an automation job authenticates as
/// one PIAM user (schema v4, table `api_tokens`). The secret itself is never stored or shown
/// again after ``Store/createToken(user:name:expires:createdBy:now:credential:)``.
public struct TokenInfo: Sendable, Hashable {
    /// The token's id (stable, shown in listings and in the credential).
    public var id: Int64
    /// The user it authenticates as (its id).
    public var user: String
    /// Its name, unique per user (`billing-portal`, `nightly-sync`).
    public var name: String
    public var createdAt: Timestamp
    /// Who created it, as the creator gave it (a user id, or `os:NAME` for the CLI).
    public var createdBy: String?
    /// When it stops working; `nil` = no end.
    public var expiresAt: Timestamp?
    /// When it was revoked; `nil` = not revoked.
    public var revokedAt: Timestamp?
    /// When it last authenticated (recorded at most once a minute); `nil` = never.
    public var lastUsedAt: Timestamp?

    /// How an actor authenticated with this token is recorded in the audit log:
    /// `token:NAME#ID`.
    public var credential: String { "token:\(name)#\(id)" }

    /// `active`, `expired` or `revoked` at `now`.
    public func status(at now: Timestamp) -> String {
        if revokedAt != nil { return "revoked" }
        if let e = expiresAt, e <= now { return "expired" }
        return "active"
    }
}

/// The answer of ``Store/authenticateToken(_:now:)``.
///
/// Only the token is judged here: a valid token of a user who is suspended, expired or in a
/// suspended org is still `.valid` — the engine refuses that user's operations
/// (`subject_inactive`, `org_inactive`, …) like anyone else's.
public enum TokenCheck: Sendable, Hashable {
    /// The token is known, not revoked and not expired.
    case valid(TokenInfo)
    /// The token is known but past its expiry.
    case expired(TokenInfo)
    /// The token is known but was revoked.
    case revoked(TokenInfo)
    /// No token has this secret.
    case unknown
}

extension Store {
    /// Days and other units for token and invitation lifetimes, in milliseconds.
    static let minute: Timestamp = 60_000
    static let day: Timestamp = 86_400_000

    static let tokenColumns = "id, user, name, created_at, created_by, expires_at, revoked_at, last_used_at"

    static func tokenInfo(_ s: Statement) -> TokenInfo {
        TokenInfo(id: s.int64(0), user: s.text(1), name: s.text(2), createdAt: s.int64(3), createdBy: s.optionalText(4),
                  expiresAt: s.optionalInt64(5), revokedAt: s.optionalInt64(6), lastUsedAt: s.optionalInt64(7))
    }

    /// Creates an API token for `user` (an id or alias; the user must exist) in one write
    /// transaction, audited as `token.create` (target `user:U`; the detail names the token,
    /// never its secret).
    ///
    /// Creating a token is not an engine decision here: whoever may write the database may
    /// create one (as with `import`); the administration service decides who may ask.
    ///
    /// - Parameters:
    ///   - user: the user the token authenticates as.
    ///   - name: unique among the user's tokens (1–255 bytes, no control characters).
    ///   - expires: when it stops working (must be later than `now`); `nil` = no end.
    ///   - createdBy: who creates it, recorded on the token and as the audit row's actor.
    ///   - now: the creation time (default: the clock).
    ///   - credential: how `createdBy` authenticated, for the audit row.
    /// - Returns: the token and its secret — `piam_` and 43 base64url characters — which is
    ///   shown this once: the database keeps only its SHA-256.
    /// - Throws: `PIAMError` `not_found` (no such user), `conflict` (the user already has a
    ///   token of that name), `invalid_input` (a bad name, an expiry not in the future).
    public func createToken(user: String, name: String, expires: Timestamp? = nil, createdBy: String?, now: Timestamp? = nil,
                            credential: String? = nil) throws(PIAMError) -> (info: TokenInfo, secret: String) {
        let now = now ?? Self.clock()
        try Self.validateTokenName(name)
        if let expires, expires <= now {
            throw PIAMError(.invalidInput, "token expiry \(RFC3339.format(expires)) is not in the future")
        }
        return try db.withTransaction(immediate: true) { () throws(PIAMError) -> (info: TokenInfo, secret: String) in
            guard let u = try userRecord(user) else { throw PIAMError(.notFound, "no such user \"\(user)\"") }
            let dup = try db.prepare("SELECT id FROM api_tokens WHERE user = ?1 AND name = ?2")
            dup.bind(1, u.id); dup.bind(2, name)
            if try dup.step() {
                throw PIAMError(.conflict, "user \"\(u.id)\" already has a token named \"\(name)\" (#\(dup.int64(0))); revoke it or pick another name")
            }
            let secret = Secrets.make(prefix: Secrets.tokenPrefix)
            let ins = try db.prepare("""
                INSERT INTO api_tokens(user, name, hash, created_at, created_by, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                """)
            ins.bind(1, u.id); ins.bind(2, name); ins.bind(3, Secrets.hash(secret)); ins.bind(4, now); ins.bind(5, createdBy)
            ins.bind(6, expires)
            try ins.run()
            let info = TokenInfo(id: db.lastInsertRowID, user: u.id, name: name, createdAt: now, createdBy: createdBy,
                                 expiresAt: expires, revokedAt: nil, lastUsedAt: nil)
            try auditToken("token.create", info, actor: createdBy, credential: credential, now: now,
                           message: "created token \"\(name)\" (#\(info.id)) for user:\(u.id)" + (expires.map { " until \(RFC3339.format($0))" } ?? ""))
            return (info, secret)
        }
    }

    /// The API tokens, of one user (id or alias) when given, ordered by user and id. Never
    /// their secrets (the database has none).
    /// - Throws: `PIAMError` `not_found` when `user` names no user.
    public func tokens(user: String? = nil) throws(PIAMError) -> [TokenInfo] {
        var id: String?
        if let user {
            guard let u = try userRecord(user) else { throw PIAMError(.notFound, "no such user \"\(user)\"") }
            id = u.id
        }
        let s = try db.prepare("SELECT \(Self.tokenColumns) FROM api_tokens WHERE ?1 IS NULL OR user = ?1 ORDER BY user, id")
        s.bind(1, id)
        return try s.rows(Self.tokenInfo)
    }

    /// One token by id, or `nil`.
    public func token(id: Int64) throws(PIAMError) -> TokenInfo? {
        let s = try db.prepare("SELECT \(Self.tokenColumns) FROM api_tokens WHERE id = ?1")
        s.bind(1, id)
        return try s.step() ? Self.tokenInfo(s) : nil
    }

    /// Revokes token `id` in one write transaction, audited as `token.revoke`. Revoking a
    /// revoked token changes nothing (and is not audited again): the result keeps the first
    /// revocation's time.
    /// - Throws: `PIAMError` `not_found` when there is no such token.
    @discardableResult
    public func revokeToken(id: Int64, revokedBy: String? = nil, now: Timestamp? = nil, credential: String? = nil) throws(PIAMError) -> TokenInfo {
        let now = now ?? Self.clock()
        return try db.withTransaction(immediate: true) { () throws(PIAMError) -> TokenInfo in
            guard let t = try token(id: id) else { throw PIAMError(.notFound, "no such token #\(id)") }
            return try revoke(t, revokedBy: revokedBy, now: now, credential: credential)
        }
    }

    /// Revokes the token named `name` of `user` (id or alias), as ``revokeToken(id:revokedBy:now:credential:)``.
    /// - Throws: `PIAMError` `not_found` when the user or its token does not exist.
    @discardableResult
    public func revokeToken(user: String, name: String, revokedBy: String? = nil, now: Timestamp? = nil,
                            credential: String? = nil) throws(PIAMError) -> TokenInfo {
        let now = now ?? Self.clock()
        return try db.withTransaction(immediate: true) { () throws(PIAMError) -> TokenInfo in
            guard let u = try userRecord(user) else { throw PIAMError(.notFound, "no such user \"\(user)\"") }
            let s = try db.prepare("SELECT \(Self.tokenColumns) FROM api_tokens WHERE user = ?1 AND name = ?2")
            s.bind(1, u.id); s.bind(2, name)
            guard try s.step() else { throw PIAMError(.notFound, "user \"\(u.id)\" has no token named \"\(name)\"") }
            let t = Self.tokenInfo(s)
            return try revoke(t, revokedBy: revokedBy, now: now, credential: credential)
        }
    }

    private func revoke(_ t: TokenInfo, revokedBy: String?, now: Timestamp, credential: String?) throws(PIAMError) -> TokenInfo {
        if t.revokedAt != nil { return t }
        let s = try db.prepare("UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1")
        s.bind(1, t.id); s.bind(2, now)
        try s.run()
        var out = t
        out.revokedAt = now
        try auditToken("token.revoke", out, actor: revokedBy, credential: credential, now: now,
                       message: "revoked token \"\(t.name)\" (#\(t.id)) of user:\(t.user)")
        return out
    }

    /// Checks an API token's secret at `now` (default: the clock). The secret is hashed and
    /// looked up; nothing else about it is compared.
    ///
    /// A valid token's `last_used_at` is brought up to date when it is older than a minute (one
    /// small write, at most once a minute per token; a failure to record it — a read-only
    /// connection, a busy database — does not fail the authentication).
    public func authenticateToken(_ secret: String, now: Timestamp? = nil) throws(PIAMError) -> TokenCheck {
        let now = now ?? Self.clock()
        guard secret.hasPrefix(Secrets.tokenPrefix), !secret.hasPrefix(Secrets.invitationPrefix), secret.utf8.count <= 512 else {
            return .unknown
        }
        let s = try cached("SELECT \(Self.tokenColumns) FROM api_tokens WHERE hash = ?1")
        s.bind(1, Secrets.hash(secret))
        guard try s.step() else { s.reset(); return .unknown }
        var info = Self.tokenInfo(s)
        s.reset()
        if info.revokedAt != nil { return .revoked(info) }
        if let e = info.expiresAt, e <= now { return .expired(info) }
        if info.lastUsedAt.map({ now - $0 >= Self.minute }) ?? true {
            if let u = try? cached("UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)") {
                u.bind(1, info.id); u.bind(2, now)
                if (try? u.run()) != nil { info.lastUsedAt = now }
            }
        }
        return .valid(info)
    }

    static func validateTokenName(_ name: String) throws(PIAMError) {
        let n = name.utf8.count
        guard n >= 1 && n <= 255 else { throw PIAMError(.invalidInput, "a token name is 1 to 255 bytes, not \(n)") }
        if name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw PIAMError(.invalidInput, "a token name may not contain control characters")
        }
    }

    /// The audit row of a token operation: target `user:U`, detail the token's id, name and
    /// expiry (never the secret), in the open transaction.
    private func auditToken(_ operation: String, _ t: TokenInfo, actor: String?, credential: String?, now: Timestamp,
                            message: String) throws(PIAMError) {
        var detail: [UInt8] = Array(#"{"expires_at":"#.utf8)
        if let e = t.expiresAt { JSONText.appendString(RFC3339.format(e), to: &detail) } else { detail += Array("null".utf8) }
        detail += Array(#","id":\#(t.id),"name":"#.utf8)
        JSONText.appendString(t.name, to: &detail)
        detail += Array(#","user":"#.utf8)
        JSONText.appendString(t.user, to: &detail)
        detail.append(0x7D)
        let actorID = try actor.flatMap { a throws(PIAMError) in try userRecord(a)?.id } ?? actor ?? "-"
        let partner: String? = try userRecord(t.user).flatMap { u throws(PIAMError) in try partnerRootSQL(u.org) }
        try insertAuditRow(operation: operation, target: "user:\(t.user)", detail: String(decoding: detail, as: UTF8.self),
                           actor: actorID, decision: "allowed", reason: Reason.allowed.name, message: message, partner: partner,
                           revision: try currentRevision(), batch: nil, now: now, credential: credential)
    }
}

import Foundation
import PIAMEngine

/// A role a user asked for (``AdminOperation/requestRole(role:scope:note:)``).
public struct AccessRequestInfo: Sendable, Hashable {
    public var id: Int64
    /// The user asking (for itself).
    public var user: String
    public var role: String
    /// The org whose subtree the role would act over.
    public var scope: String
    public var note: String?
    /// `pending`, `approved` or `denied`.
    public var status: String
    public var createdAt: Timestamp
    public var decidedBy: String?
    public var decidedAt: Timestamp?
    public var decisionNote: String?
}

/// One row of the audit log: an administrative attempt, allowed, refused or failed.
public struct AuditEntry: Sendable, Hashable {
    public var id: Int64
    public var at: Timestamp
    /// The actor's user id (as given when it names no user).
    public var actor: String
    /// The operation's name (`user.suspend`).
    public var operation: String
    /// What it acted on (`user:bob`).
    public var target: String
    /// The partner root of the target, if any.
    public var partner: String?
    /// The partner root of the actor's org, if any.
    public var actorPartner: String?
    /// `allowed`, `refused` or `failed`.
    public var decision: String
    /// `allowed`, a refusal reason (`out_of_scope`, `last_admin`, …) or an error code.
    public var reason: String
    public var message: String?
    /// The operation as JSON (its `apply` form).
    public var detail: String?
    /// The revision the operation produced (for a refusal or failure: the revision at the time).
    public var revision: Int64
    /// The `apply` run it belonged to, if any.
    public var batch: String?
    /// How the actor was authenticated: `token:NAME#ID` (an API token), `jwt`, `header` (a
    /// trusted reverse-proxy header), `cli`, `invitation` (an invitee accepting); `nil` when
    /// not recorded (rows written before schema v4, and writers that do not say).
    public var credential: String? = nil
}

/// Which audit rows to read.
public struct AuditFilter: Sendable, Hashable {
    /// Only this actor (a user id).
    public var actor: String?
    /// Only rows whose target or actor belongs to this partner (a partner root's id).
    public var partner: String?
    /// Only rows at or after this instant.
    public var since: Timestamp?
    /// Only refused (and failed) attempts.
    public var refusedOnly = false
    /// At most this many rows, the most recent (default: all).
    public var limit: Int?
    /// Only rows older than this row id (paging backwards from the newest).
    public var beforeID: Int64?

    public init(actor: String? = nil, partner: String? = nil, since: Timestamp? = nil, refusedOnly: Bool = false,
                beforeID: Int64? = nil, limit: Int? = nil) {
        self.actor = actor; self.partner = partner; self.since = since; self.refusedOnly = refusedOnly; self.limit = limit
        self.beforeID = beforeID
    }
}

extension Store {
    static let requestColumns = "id, user, role, scope, note, status, created_at, decided_by, decided_at, decision_note"

    static func requestInfo(_ s: Statement) -> AccessRequestInfo {
        AccessRequestInfo(id: s.int64(0), user: s.text(1), role: s.text(2), scope: s.text(3), note: s.optionalText(4),
                          status: s.text(5), createdAt: s.int64(6), decidedBy: s.optionalText(7), decidedAt: s.optionalInt64(8),
                          decisionNote: s.optionalText(9))
    }

    /// One access request; throws `PIAMError/Code/notFound` when there is none.
    public func accessRequest(id: Int64) throws(PIAMError) -> AccessRequestInfo {
        let s = try db.prepare("SELECT \(Self.requestColumns) FROM access_requests WHERE id = ?1")
        s.bind(1, id)
        guard try s.step() else { throw PIAMError(.notFound, "no such access request #\(id)") }
        return Self.requestInfo(s)
    }

    /// Access requests, oldest first: only those with `status` and of `user` when given.
    public func accessRequests(status: String? = nil, user: String? = nil) throws(PIAMError) -> [AccessRequestInfo] {
        let s = try db.prepare("""
            SELECT \(Self.requestColumns) FROM access_requests
            WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR user = ?2) ORDER BY id
            """)
        s.bind(1, status); s.bind(2, user)
        return try s.rows(Self.requestInfo)
    }

    /// The pending requests `approver` may approve: exactly those for which
    /// `can_assign(approver, requester, role, scope)` is allowed on `graph` at `now`, and that
    /// are not its own.
    public func approvableRequests(approver: String, graph: AccessGraph, now: Timestamp) throws(PIAMError) -> [AccessRequestInfo] {
        let me = graph.userID(for: approver) ?? approver
        return try accessRequests(status: "pending").filter {
            $0.user != me && graph.canAssign(actor: approver, target: $0.user, role: $0.role, scope: $0.scope, now: now).allowed
        }
    }

    /// Reads the audit log, oldest first (the most recent `limit` rows when a limit is given).
    public func auditLog(_ filter: AuditFilter = AuditFilter()) throws(PIAMError) -> [AuditEntry] {
        let s = try db.prepare("""
            SELECT * FROM (
              SELECT id, at, actor, operation, target, partner, actor_partner, decision, reason, message, detail, revision, batch,
                \(try schemaVersion >= Schema.credentialsVersion ? "credential" : "NULL")
              FROM audit
              WHERE (?1 IS NULL OR actor = ?1) AND (?2 IS NULL OR partner = ?2 OR actor_partner = ?2)
                AND (?3 IS NULL OR at >= ?3) AND (?4 = 0 OR decision <> 'allowed') AND (?6 IS NULL OR id < ?6)
              ORDER BY id DESC LIMIT ?5)
            ORDER BY id
            """)
        s.bind(1, filter.actor); s.bind(2, filter.partner); s.bind(3, filter.since); s.bind(4, filter.refusedOnly)
        s.bind(5, filter.limit ?? -1); s.bind(6, filter.beforeID)
        return try s.rows {
            AuditEntry(id: $0.int64(0), at: $0.int64(1), actor: $0.text(2), operation: $0.text(3), target: $0.text(4),
                       partner: $0.optionalText(5), actorPartner: $0.optionalText(6), decision: $0.text(7), reason: $0.text(8),
                       message: $0.optionalText(9), detail: $0.optionalText(10), revision: $0.int64(11), batch: $0.optionalText(12),
                       credential: $0.optionalText(13))
        }
    }
}


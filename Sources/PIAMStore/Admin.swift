import Foundation
import PIAMEngine

/// A question the engine answers before an administrative operation may run: a `check`, a
/// `can_assign`, or an org grant's `canGrantToOrg`.
///
/// ``Store/adminQuestions(_:as:)`` lists an operation's questions so that a caller can ask them
/// elsewhere first (`piamctl` asks the daemon with `--socket`); the store asks them again on
/// the state inside its write transaction, and that answer is the one that counts.
public enum AdminQuestion: Sendable, Hashable, CustomStringConvertible {
    /// `check(actor, action, resource)`.
    case check(actor: String, action: String, resource: ResourceRef)
    /// `can_assign(actor, target, role, scope)`.
    case canAssign(actor: String, target: String, role: String, scope: String?)
    /// `canGrantToOrg(actor, org, role)`: an org grant. A daemon has no such query; ask it
    /// `check(actor, grant_role, org:O)` (``preDecisionCheck``) and leave the rest to the store.
    case grantToOrg(actor: String, org: String, role: String)

    /// The `check` that stands for this question where only `check` and `can_assign` exist.
    public var preDecisionCheck: CheckRequest? {
        switch self {
        case .check(let a, let action, let r): CheckRequest(subject: a, action: action, resource: r)
        case .canAssign: nil
        case .grantToOrg(let a, let o, _): CheckRequest(subject: a, action: "grant_role", resource: ResourceRef(type: BuiltinType.org, id: o))
        }
    }

    public var description: String {
        switch self {
        case .check(_, let action, let r): "\(action) \(r)"
        case .canAssign(_, let t, let role, let scope): "assign role \(role) to user:\(t)\(scope.map { " over org:\($0)" } ?? "")"
        case .grantToOrg(_, let o, let role): "grant role \(role) to org:\(o)"
        }
    }

    /// Answers the question on `graph` at `now`.
    public func decide(on graph: AccessGraph, now: Timestamp) -> Decision {
        switch self {
        case .check(let a, let action, let r): graph.check(subject: a, action: action, resource: r, now: now)
        case .canAssign(let a, let t, let role, let scope): graph.canAssign(actor: a, target: t, role: role, scope: scope, now: now)
        case .grantToOrg(let a, let o, let role): graph.canGrantToOrg(actor: a, org: o, role: role, now: now)
        }
    }
}

/// The reasons an administrative operation is refused: every engine `Reason` name, plus the
/// store's own guards.
public enum AdminReason {
    /// A partner user's operation would leave its partner root without an active user able to
    /// `assign_role` there.
    public static let lastAdmin = "last_admin"
    /// An org or user would move into another partner (or a partner org out of its partner).
    public static let crossPartner = "cross_partner"
    /// The store's extension of the engine's self-action rule: nobody approves or rejects the
    /// registration of the org it stands in, and nobody approves its own access request.
    public static let selfAction = Reason.selfAction.name
    /// An invited user activating itself without its invitation: the invitee accepts through
    /// ``Store/acceptInvitation(secret:identity:now:)`` (the invitation's secret is its only
    /// proof), or an admin with `user:reactivate` on it activates it.
    public static let invitationRequired = "invitation_required"
}

/// The outcome of one administrative operation.
public struct AdminResult: Sendable, Hashable {
    /// The operation's name (`user.suspend`).
    public var operation: String
    /// What it acted on (`user:bob`).
    public var target: String
    /// The actor: its user id when it names a user, else as given.
    public var actor: String
    /// Whether the operation was allowed and written.
    public var allowed: Bool
    /// `allowed`, or why it was refused (an engine reason name or an ``AdminReason``).
    public var reason: String
    /// For people: what was done, or why it was refused.
    public var message: String
    /// Whether the graph (or a request) changed.
    public var changed: Bool
    /// The revision after the operation (for a refusal: the current revision).
    public var revision: Int64
    /// More lines for people: what a `--cascade` or `--force` removed, and the like.
    public var details: [String]
    /// The access request created or decided, if any.
    public var requestID: Int64?
    /// The secret of the invitation the operation created (`user.invite`, `org.register` for
    /// its first admin, `invitation.resend`), shown this once: the database keeps only its
    /// SHA-256. `nil` for every other operation, and for a refusal.
    public var invitationToken: String? = nil
    /// When that invitation expires.
    public var invitationExpires: Timestamp? = nil
}

/// An operation refused by the engine or a guard (thrown inside the session, never public).
struct Refusal: Error {
    var reason: String
    var message: String
}

extension Store {
    /// The engine questions `op` by `actor` needs answered "allow" before it may run, on the
    /// current database (an access request's user, role and scope are read from it).
    ///
    /// Empty for the operation the engine cannot decide: a self-registration (`org.register`
    /// with the new admin as actor). An invitee accepting its own invitation is no
    /// administrative operation (``acceptInvitation(secret:identity:now:)``): `user.activate`
    /// always needs `reactivate` on the user, and ``adminPrecheck(_:as:)`` refuses it by the
    /// invitee itself. The invitation operations need `invite_user` on the user's org (read
    /// from the database; an unknown user is `PIAMError/Code/notFound`).
    public func adminQuestions(_ op: AdminOperation, as actor: String) throws(PIAMError) -> [AdminQuestion] {
        try op.base.questions(as: actor, in: self)
    }

    /// The store's guards that need no engine: the extended self-action rule (nobody approves
    /// or rejects the registration of the org it stands in; nobody approves its own access
    /// request), and no self-activation: an invited user becomes active by accepting its
    /// invitation (``acceptInvitation(secret:identity:now:)``), never by claiming to be itself
    /// (``AdminReason/invitationRequired``). Returns the refusal reason and message, or `nil`.
    public func adminPrecheck(_ op: AdminOperation, as actor: String) throws(PIAMError) -> (reason: String, message: String)? {
        try op.base.precheck(as: actor, in: self)
    }

    /// A compiled statement for `sql`, reset and unbound, kept for reuse: the administration
    /// layer runs the same few statements for every operation of a bulk run. A statement must
    /// be finished (or not used again) before the same SQL is asked for again.
    func cached(_ sql: String) throws(PIAMError) -> Statement {
        if let s = statementCache[sql] {
            s.reset()
            return s
        }
        let s = try db.prepare(sql)
        statementCache[sql] = s
        return s
    }

    /// One user by id or alias (as ``user(idOrAlias:)``, with a reused statement).
    func userRecord(_ idOrAlias: String) throws(PIAMError) -> UserInfo? {
        let s = try cached("""
            SELECT \(Self.userColumns) FROM users u
            WHERE u.id = ?1 OR u.id = (SELECT user FROM user_aliases WHERE alias = ?1) LIMIT 1
            """)
        s.bind(1, idOrAlias)
        defer { s.reset() }
        return try s.step() ? Self.userInfo(s) : nil
    }

    /// The revision (as ``revision()``, with a reused statement).
    func currentRevision() throws(PIAMError) -> Int64 {
        let s = try cached("SELECT seq FROM sqlite_sequence WHERE name = 'journal'")
        defer { s.reset() }
        return try s.step() ? s.int64(0) : 0
    }

    /// Whether two ids or aliases name the same existing user.
    func sameUser(_ a: String, _ b: String) throws(PIAMError) -> Bool {
        if a == b { return true }
        guard let x = try userRecord(a), let y = try userRecord(b) else { return false }
        return x.id == y.id
    }

    /// The org `id` and its ancestors, nearest first, read from the database (`[]` for none).
    func orgChainSQL(_ id: String) throws(PIAMError) -> [String] {
        let s = try cached("""
            WITH RECURSIVE up(id, parent, depth) AS (
              SELECT id, parent, 0 FROM orgs WHERE id = ?1
              UNION ALL SELECT o.id, o.parent, up.depth + 1 FROM orgs o JOIN up ON o.id = up.parent)
            SELECT id FROM up ORDER BY depth
            """)
        s.bind(1, id)
        return try s.rows { $0.text(0) }
    }

    /// The partner root of org `id` (the topmost partner org on its path), from the database.
    func partnerRootSQL(_ id: String) throws(PIAMError) -> String? {
        let s = try cached("""
            WITH RECURSIVE up(id, parent, kind, depth) AS (
              SELECT id, parent, kind, 0 FROM orgs WHERE id = ?1
              UNION ALL SELECT o.id, o.parent, o.kind, up.depth + 1 FROM orgs o JOIN up ON o.id = up.parent)
            SELECT id FROM up WHERE kind = 'partner' ORDER BY depth DESC LIMIT 1
            """)
        s.bind(1, id)
        defer { s.reset() }
        return try s.step() ? s.text(0) : nil
    }

    /// The ids of org `id` and every org below it, deepest first.
    func subtreeSQL(_ id: String) throws(PIAMError) -> [String] {
        let s = try cached("""
            WITH RECURSIVE down(id, depth) AS (
              SELECT id, 0 FROM orgs WHERE id = ?1
              UNION ALL SELECT o.id, down.depth + 1 FROM orgs o JOIN down ON o.parent = down.id)
            SELECT id FROM down ORDER BY depth DESC, id
            """)
        s.bind(1, id)
        return try s.rows { $0.text(0) }
    }

    // MARK: Running operations

    /// Performs one administrative operation by `actor` (a user id or alias) in ONE immediate
    /// write transaction, and records it in the audit log.
    ///
    /// Inside the transaction the store asks the engine the operation's questions
    /// (``adminQuestions(_:as:)``) on the graph as it is at that moment, applies its own
    /// guards (the last-admin rule, the same-partner rule for moves, the extended self-action
    /// rule), writes, and appends an `allowed` audit row with the resulting revision. A refusal
    /// writes nothing but a `refused` audit row (in its own small transaction) and is returned
    /// with `allowed == false`; an error (bad input, a conflict) is audited as `failed` and
    /// thrown.
    ///
    /// - Parameters:
    ///   - op: the operation.
    ///   - actor: the user performing it, by id or alias.
    ///   - graph: a graph the caller already loaded (its pre-decision). It is brought up to
    ///     the database's revision through the journal inside the transaction, saving a whole
    ///     load; without one the graph is loaded inside the transaction.
    ///   - now: the time decisions are made at and the audit row's time (default: the clock).
    public func administer(_ op: AdminOperation, as actor: String, now: Timestamp? = nil, graph: LoadedGraph? = nil) throws(PIAMError) -> AdminResult {
        try administer(op, as: actor, now: now ?? Self.clock(), credential: nil, hint: graph, expectedRevision: nil, finishing: nil).result
    }

    /// ``administer(_:as:now:graph:)`` for a writer that keeps its graph: also returns the graph
    /// at the committed revision (`nil` when nothing was committed), brought there from `hint`
    /// through the journal, and runs `finishing` with the result inside the transaction, before
    /// the commit (an idempotency record that must commit with the write it describes).
    func administer(_ op: AdminOperation, as actor: String, now: Timestamp, credential: String?, hint: LoadedGraph?,
                    expectedRevision: Int64?,
                    finishing: ((AdminResult) throws(PIAMError) -> Void)?) throws(PIAMError) -> (result: AdminResult, graph: LoadedGraph?) {
        do {
            return try writeTransaction {
                try requireRevision(expectedRevision)
                let session = try AdminSession(store: self, now: now, batch: nil, credential: credential, hint: hint)
                let result = try session.perform(op, as: actor)
                try session.catchUp()
                try finishing?(result)
                return (result, session.loaded)
            }
        } catch {
            return (try record(failure: error, op: op, actor: actor, now: now, batch: nil, credential: credential), nil)
        }
    }

    /// The precondition of a conditional write (HTTP `If-Match`): the database is still at
    /// `expected`, checked inside the write transaction.
    func requireRevision(_ expected: Int64?) throws(PIAMError) {
        guard let expected else { return }
        let current = try currentRevision()
        if current != expected {
            throw PIAMError(AdminWriter.preconditionFailed, "the database is at revision \(current), not \(expected) (If-Match): read again and retry")
        }
    }

    /// Runs `body` in an immediate write transaction: commit when it returns, roll back when
    /// it throws (a ``Refusal`` or a `PIAMError`), rethrowing.
    func writeTransaction<T>(_ body: () throws -> T) throws -> T {
        try db.execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try db.execute("COMMIT")
            return result
        } catch {
            try? db.execute("ROLLBACK")
            throw error
        }
    }

    /// Records a refusal decided outside the store (a pre-decision by the daemon) in the audit
    /// log, in its own transaction, and returns it as a result.
    @discardableResult
    public func recordRefusal(_ op: AdminOperation, as actor: String, reason: String, message: String, now: Timestamp? = nil,
                              credential: String? = nil) throws(PIAMError) -> AdminResult {
        try record(failure: Refusal(reason: reason, message: message), op: op, actor: actor, now: now ?? Self.clock(), batch: nil,
                   credential: credential)
    }

    /// Audits a refusal or an error in its own transaction; returns the refusal, rethrows the
    /// error (as a `PIAMError`).
    func record(failure: any Error, op: AdminOperation, actor: String, now: Timestamp, batch: String?,
                credential: String? = nil) throws(PIAMError) -> AdminResult {
        let (decision, reason, message): (String, String, String)
        var error: PIAMError?
        switch failure {
        case let r as Refusal: (decision, reason, message) = ("refused", r.reason, r.message)
        case let e as PIAMError: (decision, reason, message) = ("failed", e.code.rawValue, e.message); error = e
        default:
            let e = PIAMError(.database, "\(failure)")
            (decision, reason, message) = ("failed", e.code.rawValue, e.message); error = e
        }
        let (actorID, revision) = try db.withTransaction(immediate: true) { () throws(PIAMError) -> (String, Int64) in
            let actorID = try userRecord(actor)?.id ?? actor
            let revision = try currentRevision()
            try insertAudit(op: op, actor: actorID, decision: decision, reason: reason, message: message,
                            partner: try auditPartner(op, actor: actorID), revision: revision, batch: batch, now: now,
                            credential: credential)
            return (actorID, revision)
        }
        if let error { throw error }
        return AdminResult(operation: op.name, target: op.target(actor: actorID), actor: actorID, allowed: false, reason: reason,
                           message: message, changed: false, revision: revision, details: [], requestID: nil)
    }

    static func clock() -> Timestamp { Timestamp(Date().timeIntervalSince1970 * 1000) }

    /// The partner the audit row is filed under: the partner root of the target.
    func auditPartner(_ op: AdminOperation, actor: String) throws(PIAMError) -> String? {
        try op.base.auditPartner(actor: actor, in: self)
    }

    /// Appends one audit row for `op` in the open transaction (or its own, outside one).
    /// `credential` says how the actor was authenticated (`token:NAME#ID`, `jwt`, `header`,
    /// `cli`, `invitation`), `nil` when unknown.
    func insertAudit(op: AdminOperation, actor: String, decision: String, reason: String, message: String,
                     partner: String?, revision: Int64, batch: String?, now: Timestamp, credential: String? = nil) throws(PIAMError) {
        try insertAuditRow(operation: op.name, target: op.target(actor: actor), detail: op.jsonText, actor: actor, decision: decision,
                           reason: reason, message: message, partner: partner, revision: revision, batch: batch, now: now,
                           credential: credential)
    }

    /// Appends one audit row (any operation, also those that are no ``AdminOperation``:
    /// `token.create`, `token.revoke`, `import`). The actor's partner is derived from its user
    /// record, when it names one.
    func insertAuditRow(operation: String, target: String, detail: String?, actor: String, decision: String, reason: String,
                        message: String, partner: String?, revision: Int64, batch: String?, now: Timestamp,
                        credential: String?) throws(PIAMError) {
        let s = try cached("""
            INSERT INTO audit(at, actor, operation, target, partner, actor_partner, decision, reason, message, detail, revision, batch, credential)
            VALUES (?1, ?2, ?3, ?4, ?5, (SELECT NULLIF((
              WITH RECURSIVE up(id, parent, kind, depth) AS (
                SELECT o.id, o.parent, o.kind, 0 FROM users u JOIN orgs o ON o.id = u.org WHERE u.id = ?2
                UNION ALL SELECT o.id, o.parent, o.kind, up.depth + 1 FROM orgs o JOIN up ON o.id = up.parent)
              SELECT id FROM up WHERE kind = 'partner' ORDER BY depth DESC LIMIT 1), '')),
              ?6, ?7, ?8, ?9, ?10, ?11, ?12)
            """)
        s.bind(1, now); s.bind(2, actor); s.bind(3, operation); s.bind(4, target); s.bind(5, partner)
        s.bind(6, decision); s.bind(7, reason); s.bind(8, message); s.bind(9, detail); s.bind(10, revision); s.bind(11, batch)
        s.bind(12, credential)
        try s.run()
    }
}


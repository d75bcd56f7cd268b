import Foundation
import PIAMEngine

/// One administrative transaction: the graph the engine decides on, kept current as the
/// operations write, and the operations themselves.
///
/// The graph follows the database through the change journal, in the transaction: before a
/// decision, when the database's revision has moved past the graph's (this session's own
/// writes, or another writer's committed before the transaction began), the journal rows after
/// the graph's revision are applied to it (``Store/changes(after:schemaVersion:maxRows:)`` and
/// `AccessGraph.applying(_:)`, the code piamd follows the journal with). The cost is the
/// change's, not the graph's: a whole load happens only when the session starts without a graph
/// or the journal cannot bring one up to date (compacted, a schema change).
final class AdminSession {
    let store: Store
    let now: Timestamp
    let batch: String?
    /// How the actor was authenticated, for the audit log (`token:ci#3`, `jwt`, `header`, `cli`).
    let credential: String?
    var graph: AccessGraph
    /// The journal revision `graph` reflects.
    var graphRevision: Int64
    /// How many times the whole graph was loaded (for reports).
    var loads = 0
    /// How many times journal changes were applied to the graph.
    var catchUps = 0

    init(store: Store, now: Timestamp, batch: String?, credential: String? = nil, hint: LoadedGraph?) throws {
        self.store = store
        self.now = now
        self.batch = batch
        self.credential = credential
        if let hint {
            graph = hint.graph
            graphRevision = hint.revision
            try catchUp()
        } else {
            let loaded = try store.loadGraph()
            graph = loaded.graph
            graphRevision = loaded.revision
            loads = 1
        }
    }

    var db: Database { store.db }

    /// The graph and its revision, as they stand now in the transaction.
    var loaded: LoadedGraph { LoadedGraph(graph: graph, revision: graphRevision) }

    // MARK: Freshness

    /// Brings the graph to the database's revision as this transaction sees it: the journal's
    /// changes applied, or a whole load when the journal cannot (compacted, schema changed,
    /// changes that do not apply).
    func catchUp() throws {
        let current = try store.currentRevision()
        guard current != graphRevision else { return }
        let set = try store.changes(after: graphRevision, schemaVersion: nil)
        if set.fullReload == nil {
            // In place: after its first change the session's graph is its own, and a bulk run
            // then edits it without copying a chunk per entry.
            do {
                try AccessGraph.apply(set.changes, to: &graph)
                graphRevision = set.revision
                catchUps += 1
                return
            } catch {
                // Left empty: loaded afresh below.
            }
        }
        let loaded = try store.loadGraph()
        graph = loaded.graph
        graphRevision = loaded.revision
        loads += 1
    }

    /// Asks the engine on the current graph.
    func decide(_ q: AdminQuestion) throws -> Decision {
        try catchUp()
        return q.decide(on: graph, now: now)
    }

    /// Asks the engine, on the current graph, rules 2–4 of `can_assign` for `user` (an access
    /// request: whether anyone could approve it).
    func decide(assignable role: String, to user: String, over scope: String?) throws -> Decision {
        try catchUp()
        return graph.assignable(role: role, to: user, over: scope)
    }

    /// Refuses unless every question is answered "allow".
    func require(_ questions: [AdminQuestion], actor: String) throws {
        for q in questions {
            let d = try decide(q)
            if !d.allowed {
                throw Refusal(reason: d.reason.name, message: "\(actor) may not \(q)")
            }
        }
    }

    // MARK: Guards

    /// Whether the actor is a host user (read from the database: always current).
    func isHostActor(_ actor: String) throws -> Bool {
        guard let u = try store.userRecord(actor) else { return false }
        return try org(u.org).kind == .host
    }

    /// The last-admin rule: runs `write`, refusing when a partner user's operation leaves
    /// partner root `root` without an active user able to `assign_role` there (when it had one).
    ///
    /// - Parameters:
    ///   - affected: the users whose holdings the write may change, or `nil` when it may change
    ///     anyone's (an org grant revoked).
    ///   - removesAffected: the write certainly takes the affected users' power away (suspend,
    ///     remove): no reload is needed to know the result.
    func guardLastAdmin(actor: String, root: String?, affected: Set<String>?, removesAffected: Bool, write: () throws -> Void) throws {
        guard let root, try !isHostActor(actor) else { return try write() }
        try catchUp()
        // The partner's SCIM service user is no admin a person can fall back on: it does not
        // count (else a partner could drop its last human admin once SCIM is set up).
        let service = Store.scimServiceUser(partner: root)
        let before = graph.assignmentAdmins(of: root, now: now).filter { $0 != service }
        let refusal = Refusal(reason: AdminReason.lastAdmin,
                              message: "org:\(root) would be left without an active user able to assign roles there")
        if before.isEmpty { return try write() }
        if let affected, before.contains(where: { !affected.contains($0) }) { return try write() }
        if removesAffected { throw refusal }
        try write()
        try catchUp()
        if graph.assignmentAdmins(of: root, now: now).allSatisfy({ $0 == service }) { throw refusal }
    }

    // MARK: Performing

    /// Runs one operation and audits it (allowed) in the open transaction.
    func perform(_ op: AdminOperation, as actorGiven: String) throws -> AdminResult {
        let before = try store.currentRevision()
        if let (reason, message) = try store.adminPrecheck(op, as: actorGiven) {
            throw Refusal(reason: reason, message: message)
        }
        // The actor's id from the database (always current; no graph reload just to name it).
        let actor = try store.userRecord(actorGiven)?.id ?? actorGiven
        let partner = try store.auditPartner(op, actor: actor)
        try require(try store.adminQuestions(op, as: actorGiven), actor: actor)
        var out = Outcome()
        try op.base.perform(in: self, actor: actor, out: &out)
        let revision = try store.currentRevision()
        let changed = out.changed ?? (revision != before)
        try store.insertAudit(op: op, actor: actor, decision: "allowed", reason: Reason.allowed.name, message: out.message,
                              partner: partner, revision: revision, batch: batch, now: now, credential: credential)
        return AdminResult(operation: op.name, target: op.target(actor: actor), actor: actor, allowed: true,
                           reason: Reason.allowed.name, message: out.message, changed: changed, revision: revision,
                           details: out.details, requestID: out.requestID, invitationToken: out.invitationToken,
                           invitationExpires: out.invitationExpires)
    }

    struct Outcome {
        var message = ""
        var details: [String] = []
        var requestID: Int64?
        /// Set when "changed" is not simply "the revision moved" (access requests are not journaled).
        var changed: Bool?
        /// The secret of an invitation created, and when it expires (shown once).
        var invitationToken: String?
        var invitationExpires: Timestamp?
    }
}

// MARK: Small SQL helpers

extension AdminSession {
    func exec(_ sql: String, _ args: Any?...) throws {
        let s = try store.cached(sql)
        for (i, a) in args.enumerated() {
            let k = Int32(i + 1)
            switch a {
            case nil: s.bindNull(k)
            case let v as String: s.bind(k, v)
            case let v as Int64: s.bind(k, v)
            case let v as Int: s.bind(k, v)
            case let v as Bool: s.bind(k, v)
            case let v as String?: s.bind(k, v)
            case let v as Int64?: s.bind(k, v)
            default: s.bindNull(k)
            }
        }
        try s.run()
    }

    func count(_ sql: String, _ args: String?...) throws -> Int {
        let s = try store.cached(sql)
        defer { s.reset() }
        for (i, a) in args.enumerated() { s.bind(Int32(i + 1), a) }
        guard try s.step() else { return 0 }
        return Int(s.int64(0))
    }

    func org(_ id: String) throws -> OrgInfo {
        let s = try store.cached("SELECT id, parent, name, kind, status FROM orgs WHERE id = ?1")
        defer { s.reset() }
        s.bind(1, id)
        guard try s.step() else { throw PIAMError(.notFound, "no such org \"\(id)\"") }
        let o = Store.orgInfo(s)
        return o
    }

    func user(_ idOrAlias: String) throws -> UserInfo {
        guard let u = try store.userRecord(idOrAlias) else { throw PIAMError(.notFound, "no such user \"\(idOrAlias)\"") }
        return u
    }

    func roleExists(_ id: String) throws -> Bool { try store.role(id: id) != nil }

    /// An id (or alias) that must be free in the user namespace.
    func requireFreeUserName(_ id: String, what: String) throws {
        try validateEntityID(id, what: what)
        if try store.userRecord(id) != nil {
            throw PIAMError(.conflict, "\(what) \"\(id)\" is already a user id or alias")
        }
    }

    func parsePermissions(_ texts: [String]) throws -> [String] {
        var out: [String] = []
        for t in texts { out.append(try Permission(parsing: t).description) }
        return out
    }
}

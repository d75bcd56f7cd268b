import Foundation
import PIAMEngine

/// What a session has written since its graph was (re)loaded: which decisions the graph can
/// still answer, and which need a reload first.
struct Touched {
    /// Users (ids and aliases) whose record, aliases or assignments changed, or that are new.
    var users: Set<String> = []
    /// The orgs those users stand in (before and after).
    var userOrgs: Set<String> = []
    /// Orgs created, or whose status, entitlements or org grants changed.
    var orgs: Set<String> = []
    /// Roles changed, or the tree's shape changed (an org moved or was removed): reload for anything.
    var structural = false

    var isEmpty: Bool { users.isEmpty && orgs.isEmpty && !structural }
}

/// What a decision depends on.
enum Dependency {
    /// The actor: its record, holdings, and every org from its org up to the root.
    case actor(String)
    /// A user as a resource: where it stands.
    case user(String)
    /// An org and every org above it (ceilings, org grants, statuses).
    case chain(String)
    /// An org's existence.
    case org(String)
    /// The users able to assign roles at an org (the last-admin rule).
    case admins(String)
}

/// One administrative transaction: the graph the engine decides on, kept current as the
/// operations write, and the operations themselves.
///
/// Reloading the graph costs time in proportion to its size, so a session reloads only when a
/// decision depends on something written since the last load (``Touched``): a bulk file whose
/// operations touch other people than the actors (onboarding: the business's admin creates
/// orgs and invites people) reloads only when it reaches entities created earlier in the file.
final class AdminSession {
    let store: Store
    let now: Timestamp
    let batch: String?
    var graph: AccessGraph
    var touched = Touched()
    /// How many times the graph was loaded (for reports).
    var loads = 0

    init(store: Store, now: Timestamp, batch: String?, hint: LoadedGraph?) throws {
        self.store = store
        self.now = now
        self.batch = batch
        if let hint, try store.currentRevision() == hint.revision {
            graph = hint.graph
        } else {
            graph = try store.loadGraph().graph
            loads = 1
        }
    }

    var db: Database { store.db }

    // MARK: Freshness

    func reload() throws {
        graph = try store.loadGraph().graph
        touched = Touched()
        loads += 1
    }

    func isStale(_ d: Dependency) -> Bool {
        func userTouched(_ u: String) -> Bool {
            touched.users.contains(u) || graph.userID(for: u).map { touched.users.contains($0) } ?? false
        }
        func chainTouched(_ o: String) -> Bool {
            guard let chain = graph.orgChain(o) else { return touched.orgs.contains(o) }
            return chain.contains { touched.orgs.contains($0) }
        }
        switch d {
        case .actor(let a):
            return userTouched(a) || graph.org(ofUser: a).map(chainTouched) ?? false
        case .user(let u):
            return userTouched(u)
        case .chain(let o):
            return chainTouched(o)
        case .org(let o):
            return touched.orgs.contains(o)
        case .admins(let root):
            if chainTouched(root) { return true }
            return touched.userOrgs.contains { graph.orgChain($0)?.contains(root) ?? true }
        }
    }

    /// Reloads the graph when any of `deps` may have changed since it was loaded.
    func ensureFresh(_ deps: [Dependency]) throws {
        guard !touched.isEmpty else { return }
        if touched.structural || deps.contains(where: isStale) { try reload() }
    }

    /// What the answer to `q` depends on, located on the graph as loaded (a user that moved
    /// since is itself touched, so its old location is enough).
    func dependencies(_ q: AdminQuestion) -> [Dependency] {
        switch q {
        case let .check(a, _, r):
            switch r.type {
            case BuiltinType.user: return [.actor(a), .user(r.id)]
            case BuiltinType.org: return [.actor(a), .org(r.id)]
            default: return [.actor(a)]
            }
        case let .canAssign(a, t, _, scope):
            var deps: [Dependency] = [.actor(a), .user(t)]
            if let o = graph.org(ofUser: t) { deps.append(.chain(o)) }
            if let scope { deps.append(.org(scope)) }
            return deps
        case let .grantToOrg(a, o, _):
            return [.actor(a), .chain(o)]
        }
    }

    /// Asks the engine on a current graph.
    func decide(_ q: AdminQuestion) throws -> Decision {
        try ensureFresh(dependencies(q))
        return q.decide(on: graph, now: now)
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

    // MARK: Marking writes

    func touchUser(_ id: String, orgs: [String?] = []) {
        touched.users.insert(id)
        for o in orgs { if let o { touched.userOrgs.insert(o) } }
    }

    func touchOrg(_ id: String) { touched.orgs.insert(id) }

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
        try ensureFresh([.admins(root)])
        let before = graph.assignmentAdmins(of: root, now: now)
        let refusal = Refusal(reason: AdminReason.lastAdmin,
                              message: "org:\(root) would be left without an active user able to assign roles there")
        if before.isEmpty { return try write() }
        if let affected, before.contains(where: { !affected.contains($0) }) { return try write() }
        if removesAffected { throw refusal }
        try write()
        try reload()
        if graph.assignmentAdmins(of: root, now: now).isEmpty { throw refusal }
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
        try run(op, actor: actor, out: &out)
        let revision = try store.currentRevision()
        let changed = out.changed ?? (revision != before)
        try store.insertAudit(op: op, actor: actor, decision: "allowed", reason: Reason.allowed.name, message: out.message,
                              partner: partner, revision: revision, batch: batch, now: now)
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

import Foundation
import PIAMEngine

/// How an import treats rows the file does not mention.
public enum ImportMode: String, Sendable, CaseIterable {
    /// Upsert by key; never delete (the default).
    case merge
    /// Make the database equal to the file: upsert, then delete every row the file lacks.
    case replace
}

/// Per-table outcome of an import.
public struct ImportCounts: Sendable, Hashable {
    public var table: String
    public var inserted = 0
    public var updated = 0
    public var deleted = 0
    public var unchanged = 0

    public init(table: String, inserted: Int = 0, updated: Int = 0, deleted: Int = 0, unchanged: Int = 0) {
        self.table = table; self.inserted = inserted; self.updated = updated; self.deleted = deleted; self.unchanged = unchanged
    }
}

/// The outcome of an import: the revision its transaction produced and per-table counts.
public struct ImportResult: Sendable, Hashable {
    /// The revision after the import (unchanged when nothing changed).
    public var revision: Int64
    /// Counts per graph table, in ``Schema/graphTables`` order.
    public var tables: [ImportCounts]

    /// The counts of one table.
    public subscript(table: String) -> ImportCounts {
        tables.first { $0.table == table } ?? ImportCounts(table: table)
    }

    /// Whether the import changed any row.
    public var changed: Bool { tables.contains { $0.inserted + $0.updated + $0.deleted > 0 } }
}

/// Rows written so far and the total, reported at most every ~1% (and every 50,000 rows).
public typealias ImportProgress = (_ written: Int, _ total: Int) -> Void

/// Who imports, and what: an audited import (``Store/importJSON(_:mode:audit:now:progress:)``)
/// writes one `import` row in the audit log.
public struct ImportAudit: Sendable, Hashable {
    /// The actor recorded (`piamctl import`: the operating-system user running it).
    public var actor: String
    /// The file as the actor named it, or `-` for standard input.
    public var file: String

    public init(actor: String, file: String) {
        self.actor = actor
        self.file = file
    }
}

extension Store {
    /// Imports a JSON file (DESIGN §5) in one transaction; see ``importJSON(_:mode:audit:now:progress:)``.
    ///
    /// - Parameter actor: when given, the import is audited as this actor's, the file named by
    ///   `path` (``ImportAudit``).
    public func importFile(path: String, mode: ImportMode = .merge, actor: String? = nil, now: Timestamp? = nil,
                           progress: ImportProgress? = nil) throws(PIAMError) -> ImportResult {
        let audit = actor.map { ImportAudit(actor: $0, file: path) }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            let e = PIAMError(.io, "\(path): cannot read: \(error.localizedDescription)")
            if let audit { recordFailedImport(e, audit: audit, source: nil, mode: mode, now: now ?? Self.clock()) }
            throw e
        }
        return try importJSON(data, mode: mode, audit: audit, now: now, progress: progress)
    }

    /// Imports JSON bytes in ONE transaction; see ``importDocument(_:mode:now:progress:)``.
    ///
    /// With `audit`, the import writes one row in the audit log, in the import's transaction:
    /// the actor, operation `import`, the mode, the file's name, size and SHA-256 digest, the
    /// revision before and after, and the row counts per table (`detail`). An import that fails
    /// (bad JSON, a validation error, a database error) writes nothing — and then, in a
    /// separate transaction after the rollback, one `failed` row with the error, as the
    /// administration operations audit theirs.
    public func importJSON(_ data: Data, mode: ImportMode = .merge, audit: ImportAudit? = nil, now: Timestamp? = nil,
                           progress: ImportProgress? = nil) throws(PIAMError) -> ImportResult {
        let now = now ?? Self.clock()
        let source = audit.map { _ in ImportedBytes(data) }
        do throws(PIAMError) {
            let doc = try ImportDocument.decode(data)
            return try importDocument(doc, mode: mode, now: now, progress: progress) { (before, result) throws(PIAMError) in
                if let audit, let source {
                    try insertImportAudit(audit: audit, source: source, mode: mode, before: before, result: result, now: now)
                }
            }
        } catch {
            if let audit { recordFailedImport(error, audit: audit, source: source, mode: mode, now: now) }
            throw error
        }
    }

    /// Imports a document in ONE transaction: all or nothing.
    ///
    /// The document is validated against the state the import would produce before anything is
    /// written; the first error is thrown with its JSON path, e.g.
    /// `users[17].org: no such org "acme-eu"` (quoting at most about 100 bytes of the value).
    /// Unchanged rows are not written, so importing the same file twice changes nothing (and
    /// adds no journal rows) the second time.
    ///
    /// - Parameter now: the import's time: the `granted_at` of new grants that give none
    ///   (default: the clock).
    public func importDocument(_ doc: ImportDocument, mode: ImportMode = .merge, now: Timestamp? = nil,
                               progress: ImportProgress? = nil) throws(PIAMError) -> ImportResult {
        try importDocument(doc, mode: mode, now: now ?? Self.clock(), progress: progress) { (_, _) throws(PIAMError) in }
    }

    /// The import itself; `finish` runs in its transaction after the writes, with the revision
    /// before them and the result.
    private func importDocument(_ doc: ImportDocument, mode: ImportMode, now: Timestamp, progress: ImportProgress?,
                                finish: (Int64, ImportResult) throws(PIAMError) -> Void) throws(PIAMError) -> ImportResult {
        // A big page cache keeps a million-row import from thrashing the indexes.
        let cache = try db.scalarInt("PRAGMA cache_size") ?? -2000
        try db.execute("PRAGMA cache_size = -1048576")
        defer { try? db.execute("PRAGMA cache_size = \(cache)") }
        // An import leaves its whole size in the WAL (880 MB for 1M users), and there it stays
        // until a writer checkpoints it and the next write starts the log again. Meanwhile a
        // reader that opens the file while no other connection holds it — piamd's verification,
        // every second — rebuilds SQLite's WAL index by reading all of it: half a core at 1M.
        // So copy it into the database and empty it now. TRUNCATE waits for readers up to the
        // busy timeout; one that holds on longer leaves the WAL to the next write's checkpoints.
        defer { try? db.execute("PRAGMA wal_checkpoint(TRUNCATE)") }
        return try db.withTransaction(immediate: true) { () throws(PIAMError) -> ImportResult in
            let before = try revision()
            let state = try DBState.load(db)
            let plan = try ImportPlan.validate(doc, mode: mode, state: state, recorded: { (table, key, grantedBy) throws(PIAMError) in
                try self.recordsGranter(table, key, grantedBy)
            })
            var writer = try ImportWriter(db: db, mode: mode, plan: plan, state: state, now: now, progress: progress)
            let tables = try writer.write()
            let result = ImportResult(revision: try revision(), tables: tables)
            try finish(before, result)
            return result
        }
    }

    /// Whether the row of `table` with natural `key` already records `grantedBy` as its granter.
    private func recordsGranter(_ table: String, _ key: [String], _ grantedBy: String) throws(PIAMError) -> Bool {
        let s = try db.cached(table == "assignments"
            ? "SELECT 1 FROM assignments WHERE user = ?1 AND role = ?2 AND scope = ?3 AND granted_by = ?4"
            : "SELECT 1 FROM org_grants WHERE org = ?1 AND role = ?2 AND granted_by = ?4")
        for (i, k) in key.enumerated() { s.bind(Int32(i + 1), k) }
        s.bind(4, grantedBy)
        return try s.step()
    }
}

/// The imported bytes as the audit log describes them.
struct ImportedBytes {
    var bytes: Int
    var sha256: String

    init(_ data: Data) {
        bytes = data.count
        sha256 = SHA256.hex(data)
    }
}

extension Store {
    /// The audit row of a successful import (in its transaction).
    fileprivate func insertImportAudit(audit: ImportAudit, source: ImportedBytes, mode: ImportMode, before: Int64,
                                       result: ImportResult, now: Timestamp) throws(PIAMError) {
        var detail = importAuditDetail(audit: audit, source: source, mode: mode, before: before)
        detail["revision_after"] = result.revision
        detail["changed"] = result.changed
        var rows: [String: Any] = [:]
        for t in result.tables {
            rows[t.table] = ["inserted": t.inserted, "updated": t.updated, "deleted": t.deleted, "unchanged": t.unchanged]
        }
        detail["rows"] = rows
        let message = result.changed
            ? "imported \(audit.file) (\(mode.rawValue)): revision \(before) -> \(result.revision)"
            : "imported \(audit.file) (\(mode.rawValue)): no changes (revision \(result.revision))"
        try insertImportAuditRow(audit: audit, decision: "allowed", reason: "allowed", message: message, detail: detail,
                                 revision: result.revision, now: now)
    }

    /// Audits a failed import in a transaction of its own (the import's was rolled back). Never
    /// throws: the import's error is what the caller must see.
    fileprivate func recordFailedImport(_ error: PIAMError, audit: ImportAudit, source: ImportedBytes?, mode: ImportMode, now: Timestamp) {
        try? db.withTransaction(immediate: true) { () throws(PIAMError) in
            let revision = try revision()
            let detail = importAuditDetail(audit: audit, source: source, mode: mode, before: revision)
            try insertImportAuditRow(audit: audit, decision: "failed", reason: error.code.rawValue, message: error.message,
                                     detail: detail, revision: revision, now: now)
        }
    }

    private func importAuditDetail(audit: ImportAudit, source: ImportedBytes?, mode: ImportMode, before: Int64) -> [String: Any] {
        var detail: [String: Any] = ["mode": mode.rawValue, "file": audit.file, "revision_before": before]
        if let source {
            detail["bytes"] = source.bytes
            detail["sha256"] = source.sha256
        }
        return detail
    }

    private func insertImportAuditRow(audit: ImportAudit, decision: String, reason: String, message: String, detail: [String: Any],
                                      revision: Int64, now: Timestamp) throws(PIAMError) {
        let json: String
        do {
            json = String(decoding: try JSONSerialization.data(withJSONObject: detail, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
        } catch {
            throw PIAMError(.database, "audit: cannot encode the import's detail: \(error)")
        }
        let s = try db.prepare("""
            INSERT INTO audit(at, actor, operation, target, partner, actor_partner, decision, reason, message, detail, revision, batch)
            VALUES (?1, ?2, 'import', ?3, NULL, NULL, ?4, ?5, ?6, ?7, ?8, NULL)
            """)
        s.bind(1, now); s.bind(2, audit.actor); s.bind(3, audit.file == "-" ? "stdin" : "file:\(audit.file)")
        s.bind(4, decision); s.bind(5, reason); s.bind(6, message); s.bind(7, json); s.bind(8, revision)
        try s.run()
    }
}

/// The parts of the database an import validates against.
struct DBState {
    var orgs: [String: (parent: String?, kind: OrgKind)] = [:]
    var root: String?
    var users: [String: String] = [:]  // id -> org
    var aliases: [String: String] = [:]  // alias -> user
    var roles: Set<String> = []

    static func load(_ db: Database) throws(PIAMError) -> DBState {
        var s = DBState()
        let o = try db.prepare("SELECT id, parent, kind FROM orgs")
        while try o.step() {
            let id = o.text(0)
            let parent = o.optionalText(1)
            s.orgs[id] = (parent, o.text(2) == "host" ? .host : .partner)
            if parent == nil { s.root = id }
        }
        let count = Int(try db.scalarInt("SELECT count(*) FROM users") ?? 0)
        s.users.reserveCapacity(count)
        let u = try db.prepare("SELECT id, org FROM users")
        while try u.step() { s.users[u.text(0)] = u.text(1) }
        let a = try db.prepare("SELECT alias, user FROM user_aliases")
        while try a.step() { s.aliases[a.text(0)] = a.text(1) }
        let r = try db.prepare("SELECT id FROM roles")
        while try r.step() { s.roles.insert(r.text(0)) }
        return s
    }
}

/// A validated document, with defaults applied and times parsed.
struct ImportPlan {
    struct Org { var id: String; var parent: String?; var name: String; var kind: OrgKind; var status: OrgStatus }
    struct Role { var id: String; var name: String?; var description: String?; var permissions: String }
    struct User {
        var id: String; var org: String; var name: String?; var email: String?; var aliases: [String]?
        var status: UserStatus; var validUntil: Timestamp?
    }
    struct Resource { var type: String; var id: String; var org: String; var owner: String?; var shared: Bool; var name: String? }
    /// `grantedAt` is the file's time, or nil; `grantedAtGiven` whether the file gave the key
    /// (a time or `null`): without it, rows the import writes get the import's time.
    struct Assignment {
        var user: String; var role: String; var scope: String; var validUntil: Timestamp?; var grantedBy: String?
        var grantedAt: Timestamp?; var grantedAtGiven: Bool
    }
    struct OrgGrant {
        var org: String; var role: String; var includeSuborgs: Bool; var validUntil: Timestamp?; var grantedBy: String?
        var grantedAt: Timestamp?; var grantedAtGiven: Bool
    }

    /// File org indices, parents before children.
    var orgOrder: [Int] = []
    var orgs: [Org] = []
    var roles: [Role] = []
    var users: [User] = []
    var resources: [Resource] = []
    var entitlements: [ImportDocument.Entitlement] = []
    var assignments: [Assignment] = []
    var orgGrants: [OrgGrant] = []
    /// Resulting alias map (alias -> user) restricted to what must exist after the import.
    var desiredAliases: [String: String] = [:]
    var fileUsers: Set<String> = []
    var fileRoles: Set<String> = []
    var fileOrgs: Set<String> = []

    static func fail(_ path: String, _ message: String, _ code: PIAMError.Code = .invalidInput) -> PIAMError {
        PIAMError(code, "\(path): \(message)")
    }

    static func checkID(_ id: String, _ path: String) throws(PIAMError) {
        if let problem = entityIDProblem(id) { throw fail(path, problem) }
    }

    static func time(_ text: String?, _ path: String) throws(PIAMError) -> Timestamp? {
        guard let text else { return nil }
        guard let t = RFC3339.parse(text) else {
            throw fail(path, "\(quoted(text)) is not an RFC 3339 time (e.g. 2027-06-30T00:00:00Z)")
        }
        return t
    }

    /// A hash of a composite key, for duplicate detection without keeping millions of strings.
    static func keyHash(_ a: String, _ b: String, _ c: String = "") -> Int {
        var h = Hasher()
        h.combine(a); h.combine(b); h.combine(c)
        return h.finalize()
    }

    /// A file's `granted_at`: the time (parsed) and whether the key was given.
    static func grantedAt(_ g: ImportDocument.GrantedAt, _ path: String) throws(PIAMError) -> (Timestamp?, Bool) {
        switch g {
        case .importTime: (nil, false)
        case .unknown: (nil, true)
        case .at(let text): (try time(text, path), true)
        }
    }

    /// Validates a document against the database state.
    ///
    /// - Parameter recorded: whether the database row of (table, natural key) already records
    ///   a granter: a `granted_by` that names no user is accepted only as that row's recorded
    ///   value (the granter was removed since), so a database's own export imports again.
    static func validate(_ doc: ImportDocument, mode: ImportMode, state: DBState,
                         recorded: (String, [String], String) throws(PIAMError) -> Bool = { _, _, _ in false }) throws(PIAMError) -> ImportPlan {
        var plan = ImportPlan()
        let merge = mode == .merge

        // MARK: orgs
        var fileOrgIndex: [String: Int] = [:]
        for (i, o) in doc.orgs.enumerated() {
            let p = "orgs[\(i)]"
            try checkID(o.id, "\(p).id")
            if let j = fileOrgIndex[o.id] { throw fail("\(p).id", "duplicate org \(quoted(o.id)) (also orgs[\(j)])", .conflict) }
            fileOrgIndex[o.id] = i
            if let parent = o.parent {
                try checkID(parent, "\(p).parent")
                if parent == o.id { throw fail("\(p).parent", "org \(quoted(o.id)) cannot be its own parent", .invalidGraph) }
            }
            let kind: OrgKind
            if let k = o.kind {
                guard let v = OrgKind(name: k) else { throw fail("\(p).kind", "\(quoted(k)) is not host or partner") }
                kind = v
            } else { kind = .partner }
            let status: OrgStatus
            if let s = o.status {
                guard let v = OrgStatus(name: s) else { throw fail("\(p).status", "\(quoted(s)) is not pending, active or suspended") }
                status = v
            } else { status = .active }
            plan.orgs.append(Org(id: o.id, parent: o.parent, name: o.name ?? o.id, kind: kind, status: status))
        }
        plan.fileOrgs = Set(fileOrgIndex.keys)
        var res: [String: (parent: String?, kind: OrgKind)] = merge ? state.orgs : [:]
        for o in plan.orgs { res[o.id] = (o.parent, o.kind) }
        for (i, o) in plan.orgs.enumerated() {
            if let parent = o.parent, res[parent] == nil {
                throw fail("orgs[\(i)].parent", "no such org \(quoted(parent))", .notFound)
            }
        }
        var root = state.root
        for (i, o) in plan.orgs.enumerated() {
            if o.parent == nil {
                if let r = root, r != o.id {
                    throw fail("orgs[\(i)].parent", "org \(quoted(o.id)) would be a second root (the root org is \(quoted(r)) and its id cannot change)", .invalidGraph)
                }
                root = o.id
            } else if o.id == state.root {
                throw fail("orgs[\(i)].parent", "the root org \(quoted(o.id)) cannot be given a parent", .invalidGraph)
            }
        }
        if !merge, let r = state.root, fileOrgIndex[r] == nil {
            throw fail("orgs", "replace would delete the root org \(quoted(r)); the file must contain it", .invalidGraph)
        }
        // Cycles, and depth for the write order.
        var depth: [String: Int] = [:]
        for (i, o) in plan.orgs.enumerated() {
            var chain: [String] = []
            var onChain: Set<String> = []
            var cur = o.id
            var base = -1
            while true {
                if let d = depth[cur] { base = d; break }
                if !onChain.insert(cur).inserted {
                    let start = chain.firstIndex(of: cur)!
                    let loop = (chain[start...] + [cur]).map { "\(quoted($0))" }.joined(separator: " -> ")
                    throw fail("orgs[\(i)].parent", "cycle: \(loop)", .invalidGraph)
                }
                chain.append(cur)
                guard let parent = res[cur]?.parent else { break }
                cur = parent
            }
            for (k, id) in chain.reversed().enumerated() { depth[id] = base + 1 + k }
        }
        if !res.isEmpty && root == nil {
            throw fail("orgs", "no root org (exactly one org, of kind host, must have no parent)", .invalidGraph)
        }
        var hostChild: [String: String] = [:]
        for (id, v) in res where v.kind == .host {
            guard let parent = v.parent else { continue }
            if let existing = hostChild[parent], existing < id { continue }
            hostChild[parent] = id
        }
        for (i, o) in plan.orgs.enumerated() {
            if o.parent == nil && o.kind != .host {
                throw fail("orgs[\(i)].kind", "the root org \(quoted(o.id)) must be of kind host", .invalidGraph)
            }
            if o.kind == .host, let parent = o.parent, res[parent]?.kind == .partner {
                throw fail("orgs[\(i)].parent", "host org \(quoted(o.id)) may not lie below partner org \(quoted(parent))", .invalidGraph)
            }
            if o.kind == .partner, let child = hostChild[o.id] {
                throw fail("orgs[\(i)].kind", "partner org \(quoted(o.id)) may not have host sub-org \(quoted(child))", .invalidGraph)
            }
        }
        plan.orgOrder = plan.orgs.indices.sorted { (depth[plan.orgs[$0].id]!, $0) < (depth[plan.orgs[$1].id]!, $1) }

        // MARK: roles
        var fileRoleIndex: [String: Int] = [:]
        for (i, r) in doc.roles.enumerated() {
            let p = "roles[\(i)]"
            try checkID(r.id, "\(p).id")
            if let j = fileRoleIndex[r.id] { throw fail("\(p).id", "duplicate role \(quoted(r.id)) (also roles[\(j)])", .conflict) }
            fileRoleIndex[r.id] = i
            let perms = r.permissions ?? []
            for (k, text) in perms.enumerated() {
                do { _ = try Permission(parsing: text) } catch {
                    // The engine's message quotes the whole text: past the limit, say it here.
                    throw fail("\(p).permissions[\(k)]", text.utf8.count <= quoteLimit ? error.message
                        : "permission \(quoted(text)) is not TYPE:ACTION or TYPE:ACTION:owner with TYPE and ACTION of 1-64 letters, digits, _ - . (ACTION may be *)")
                }
            }
            plan.roles.append(Role(id: r.id, name: r.name, description: r.description, permissions: JSONText.array(perms)))
        }
        plan.fileRoles = Set(fileRoleIndex.keys)
        let roleExists = { (id: String) -> Bool in fileRoleIndex[id] != nil || (merge && state.roles.contains(id)) }

        // MARK: users
        var fileUserIndex: [String: Int] = [:]
        fileUserIndex.reserveCapacity(doc.users.count)
        plan.users.reserveCapacity(doc.users.count)
        for (i, u) in doc.users.enumerated() {
            let p = "users[\(i)]"
            try checkID(u.id, "\(p).id")
            if let j = fileUserIndex[u.id] { throw fail("\(p).id", "duplicate user \(quoted(u.id)) (also users[\(j)])", .conflict) }
            fileUserIndex[u.id] = i
            guard res[u.org] != nil else { throw fail("\(p).org", "no such org \(quoted(u.org))", .notFound) }
            let status: UserStatus
            if let s = u.status {
                guard let v = UserStatus(name: s) else { throw fail("\(p).status", "\(quoted(s)) is not invited, active or suspended") }
                status = v
            } else { status = .active }
            let validUntil = try time(u.validUntil, "\(p).valid_until")
            if let aliases = u.aliases {
                for (k, a) in aliases.enumerated() {
                    try checkID(a, "\(p).aliases[\(k)]")
                    if let j = aliases[..<k].firstIndex(of: a) {
                        throw fail("\(p).aliases[\(k)]", "duplicate alias \(quoted(a)) (also aliases[\(j)])", .conflict)
                    }
                }
            }
            plan.users.append(User(id: u.id, org: u.org, name: u.name, email: u.email, aliases: u.aliases,
                                   status: status, validUntil: validUntil))
        }
        plan.fileUsers = Set(fileUserIndex.keys)
        // The user namespace after the import.
        func userOrg(_ id: String) -> String? {
            if let i = fileUserIndex[id] { return plan.users[i].org }
            return merge ? state.users[id] : nil
        }
        var aliases: [String: String] = [:]
        if merge {
            aliases.reserveCapacity(state.aliases.count)
            for (a, u) in state.aliases {
                if let i = fileUserIndex[u], plan.users[i].aliases != nil { continue }
                aliases[a] = u
            }
        }
        for (i, u) in plan.users.enumerated() {
            let p = "users[\(i)]"
            if let owner = aliases[u.id] {
                throw fail("\(p).id", "user id \(quoted(u.id)) is already an alias of user \(quoted(owner))", .conflict)
            }
            guard let list = u.aliases else { continue }
            for (k, a) in list.enumerated() {
                if userOrg(a) != nil {
                    throw fail("\(p).aliases[\(k)]", "alias \(quoted(a)) is already the id of user \(quoted(a))", .conflict)
                }
                if let owner = aliases[a], owner != u.id {
                    throw fail("\(p).aliases[\(k)]", "alias \(quoted(a)) is already an alias of user \(quoted(owner))", .conflict)
                }
                aliases[a] = u.id
            }
        }
        // A DB alias (kept) may not equal a new user id: checked above via aliases[u.id].
        plan.desiredAliases = aliases

        /// `granted_by` names a user id of the result, or is what the row already records.
        func checkGranter(_ by: String?, _ path: String, _ table: String, _ key: @autoclosure () -> [String]) throws(PIAMError) {
            guard let by, userOrg(by) == nil else { return }
            if try recorded(table, key(), by) { return }
            if let owner = aliases[by] {
                throw fail(path, "\(quoted(by)) is an alias of user \(quoted(owner)); name the user by its id", .notFound)
            }
            throw fail(path, "no such user \(quoted(by))", .notFound)
        }

        // MARK: resources
        var seen: [Int: Int] = [:]
        seen.reserveCapacity(doc.resources.count)
        for (i, r) in doc.resources.enumerated() {
            let p = "resources[\(i)]"
            if BuiltinType.isBuiltin(r.type) {
                throw fail("\(p).type", "\(quoted(r.type)) is a built-in type (users, orgs and roles are resources implicitly)")
            }
            guard Permission.isValidName(r.type) else { throw fail("\(p).type", "bad type \(quoted(r.type)) (1-64 letters, digits, _ - . only)") }
            try checkID(r.id, "\(p).id")
            let h = keyHash(r.type, r.id)
            if let j = seen[h], doc.resources[j].type == r.type, doc.resources[j].id == r.id {
                throw fail("\(p).id", "duplicate resource \(r.type):\(r.id) (also resources[\(j)])", .conflict)
            }
            seen[h] = i
            guard res[r.org] != nil else { throw fail("\(p).org", "no such org \(quoted(r.org))", .notFound) }
            if let owner = r.owner, userOrg(owner) == nil { throw fail("\(p).owner", "no such user \(quoted(owner))", .notFound) }
            plan.resources.append(Resource(type: r.type, id: r.id, org: r.org, owner: r.owner, shared: r.shared ?? false, name: r.name))
        }

        // MARK: entitlements
        seen = [:]
        for (i, e) in doc.entitlements.enumerated() {
            let p = "entitlements[\(i)]"
            guard res[e.org] != nil else { throw fail("\(p).org", "no such org \(quoted(e.org))", .notFound) }
            guard roleExists(e.role) else { throw fail("\(p).role", "no such role \(quoted(e.role))", .notFound) }
            let h = keyHash(e.org, e.role)
            if let j = seen[h], doc.entitlements[j] == e {
                throw fail(p, "duplicate entitlement (org \(quoted(e.org)), role \(quoted(e.role))) (also entitlements[\(j)])", .conflict)
            }
            seen[h] = i
            plan.entitlements.append(e)
        }

        // MARK: assignments
        seen = [:]
        seen.reserveCapacity(doc.assignments.count)
        plan.assignments.reserveCapacity(doc.assignments.count)
        for (i, a) in doc.assignments.enumerated() {
            let p = "assignments[\(i)]"
            guard let org = userOrg(a.user) else { throw fail("\(p).user", "no such user \(quoted(a.user))", .notFound) }
            guard roleExists(a.role) else { throw fail("\(p).role", "no such role \(quoted(a.role))", .notFound) }
            if let s = a.scope, res[s] == nil { throw fail("\(p).scope", "no such org \(quoted(s))", .notFound) }
            let scope = a.scope ?? org
            let validUntil = try time(a.validUntil, "\(p).valid_until")
            try checkGranter(a.grantedBy, "\(p).granted_by", "assignments", [a.user, a.role, scope])
            let (grantedAt, given) = try grantedAt(a.grantedAt, "\(p).granted_at")
            let h = keyHash(a.user, a.role, scope)
            if let j = seen[h], plan.assignments[j].user == a.user, plan.assignments[j].role == a.role, plan.assignments[j].scope == scope {
                throw fail(p, "duplicate assignment (user \(quoted(a.user)), role \(quoted(a.role)), scope \(quoted(scope))) (also assignments[\(j)])", .conflict)
            }
            seen[h] = i
            plan.assignments.append(Assignment(user: a.user, role: a.role, scope: scope, validUntil: validUntil, grantedBy: a.grantedBy,
                                               grantedAt: grantedAt, grantedAtGiven: given))
        }

        // MARK: org grants
        seen = [:]
        for (i, g) in doc.orgGrants.enumerated() {
            let p = "org_grants[\(i)]"
            guard res[g.org] != nil else { throw fail("\(p).org", "no such org \(quoted(g.org))", .notFound) }
            guard roleExists(g.role) else { throw fail("\(p).role", "no such role \(quoted(g.role))", .notFound) }
            let validUntil = try time(g.validUntil, "\(p).valid_until")
            try checkGranter(g.grantedBy, "\(p).granted_by", "org_grants", [g.org, g.role])
            let (grantedAt, given) = try grantedAt(g.grantedAt, "\(p).granted_at")
            let h = keyHash(g.org, g.role)
            if let j = seen[h], doc.orgGrants[j].org == g.org, doc.orgGrants[j].role == g.role {
                throw fail(p, "duplicate org grant (org \(quoted(g.org)), role \(quoted(g.role))) (also org_grants[\(j)])", .conflict)
            }
            seen[h] = i
            plan.orgGrants.append(OrgGrant(org: g.org, role: g.role, includeSuborgs: g.includeSuborgs ?? false,
                                           validUntil: validUntil, grantedBy: g.grantedBy, grantedAt: grantedAt, grantedAtGiven: given))
        }
        return plan
    }
}

/// Writes a validated plan with reused prepared statements.
struct ImportWriter {
    let db: Database
    let mode: ImportMode
    let plan: ImportPlan
    let state: DBState
    /// The import's time: `granted_at` of the grants it writes without one.
    let now: Timestamp
    let progress: ImportProgress?
    var written = 0
    var lastReported = 0
    let total: Int
    let step: Int

    init(db: Database, mode: ImportMode, plan: ImportPlan, state: DBState, now: Timestamp, progress: ImportProgress?) throws(PIAMError) {
        self.db = db; self.mode = mode; self.plan = plan; self.state = state; self.now = now; self.progress = progress
        total = plan.orgs.count + plan.roles.count + plan.users.count + plan.resources.count
            + plan.entitlements.count + plan.assignments.count + plan.orgGrants.count
        step = max(1, min(total / 100, 50_000))
    }

    mutating func tick() {
        written += 1
        if let progress, written - lastReported >= step || written == total {
            lastReported = written
            progress(written, total)
        }
    }

    func count(_ table: String) throws(PIAMError) -> Int {
        Int(try db.scalarInt("SELECT count(*) FROM \(table)") ?? 0)
    }

    /// Runs `s` and returns whether it changed a row; SQL errors get the row's JSON path.
    func run(_ s: Statement, _ path: @autoclosure () -> String) throws(PIAMError) -> Bool {
        do {
            try s.run()
        } catch {
            throw PIAMError(.database, "\(path()): \(error.message)")
        }
        return db.changes > 0
    }

    mutating func write() throws(PIAMError) -> [ImportCounts] {
        let replace = mode == .replace
        var counts: [String: ImportCounts] = [:]
        for t in Schema.graphTables { counts[t] = ImportCounts(table: t) }
        var before: [String: Int] = [:]
        for t in Schema.graphTables { before[t] = try count(t) }

        if replace {
            for sql in [
                "CREATE TEMP TABLE IF NOT EXISTS keep_resources(type TEXT, id TEXT, PRIMARY KEY(type, id)) WITHOUT ROWID",
                "CREATE TEMP TABLE IF NOT EXISTS keep_entitlements(org TEXT, role TEXT, PRIMARY KEY(org, role)) WITHOUT ROWID",
                "CREATE TEMP TABLE IF NOT EXISTS keep_assignments(user TEXT, role TEXT, scope TEXT, PRIMARY KEY(user, role, scope)) WITHOUT ROWID",
                "CREATE TEMP TABLE IF NOT EXISTS keep_org_grants(org TEXT, role TEXT, PRIMARY KEY(org, role)) WITHOUT ROWID",
                "DELETE FROM temp.keep_resources", "DELETE FROM temp.keep_entitlements",
                "DELETE FROM temp.keep_assignments", "DELETE FROM temp.keep_org_grants",
            ] { try db.execute(sql) }
        }

        // Aliases that must go, first: they may free names the new rows use.
        var aliasDeleted = 0
        let delAlias = try db.prepare("DELETE FROM user_aliases WHERE alias = ?1")
        for (a, u) in state.aliases {
            let keep: Bool
            if replace {
                keep = plan.desiredAliases[a] == u
            } else {
                keep = plan.desiredAliases[a] == u || (plan.desiredAliases[a] == nil && !plan.fileUsers.contains(u))
            }
            if !keep {
                delAlias.bind(1, a)
                if try run(delAlias, "users: alias \(quoted(a))") { aliasDeleted += 1 }
            }
        }

        // Orgs, parents first.
        var changed = 0
        let org = try db.prepare("""
            INSERT INTO orgs(id, parent, name, kind, status) VALUES (?1, ?2, ?3, ?4, ?5)
            ON CONFLICT(id) DO UPDATE SET parent = excluded.parent, name = excluded.name, kind = excluded.kind, status = excluded.status
            WHERE orgs.parent IS NOT excluded.parent OR orgs.name IS NOT excluded.name
               OR orgs.kind IS NOT excluded.kind OR orgs.status IS NOT excluded.status
            """)
        for i in plan.orgOrder {
            let o = plan.orgs[i]
            org.bind(1, o.id); org.bind(2, o.parent); org.bind(3, o.name); org.bind(4, o.kind.name); org.bind(5, o.status.name)
            if try run(org, "orgs[\(i)]") { changed += 1 }
            tick()
        }
        try finish("orgs", changed: changed, fileRows: plan.orgs.count, before: before, into: &counts)

        changed = 0
        let role = try db.prepare("""
            INSERT INTO roles(id, name, description, permissions) VALUES (?1, ?2, ?3, ?4)
            ON CONFLICT(id) DO UPDATE SET name = excluded.name, description = excluded.description, permissions = excluded.permissions
            WHERE roles.name IS NOT excluded.name OR roles.description IS NOT excluded.description
               OR roles.permissions IS NOT excluded.permissions
            """)
        for (i, r) in plan.roles.enumerated() {
            role.bind(1, r.id); role.bind(2, r.name); role.bind(3, r.description); role.bind(4, r.permissions)
            if try run(role, "roles[\(i)]") { changed += 1 }
            tick()
        }
        try finish("roles", changed: changed, fileRows: plan.roles.count, before: before, into: &counts)

        changed = 0
        let user = try db.prepare("""
            INSERT INTO users(id, org, name, email, status, valid_until) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
            ON CONFLICT(id) DO UPDATE SET org = excluded.org, name = excluded.name, email = excluded.email,
              status = excluded.status, valid_until = excluded.valid_until
            WHERE users.org IS NOT excluded.org OR users.name IS NOT excluded.name OR users.email IS NOT excluded.email
               OR users.status IS NOT excluded.status OR users.valid_until IS NOT excluded.valid_until
            """)
        for (i, u) in plan.users.enumerated() {
            user.bind(1, u.id); user.bind(2, u.org); user.bind(3, u.name); user.bind(4, u.email)
            user.bind(5, u.status.name); user.bind(6, u.validUntil)
            if try run(user, "users[\(i)]") { changed += 1 }
            tick()
        }
        try finish("users", changed: changed, fileRows: plan.users.count, before: before, into: &counts)

        var aliasInserted = 0
        var aliasUnchanged = 0
        let insAlias = try db.prepare("INSERT INTO user_aliases(alias, user) VALUES (?1, ?2)")
        for (i, u) in plan.users.enumerated() {
            guard let list = u.aliases else { continue }
            for (k, a) in list.enumerated() {
                if state.aliases[a] == u.id { aliasUnchanged += 1; continue }
                insAlias.bind(1, a); insAlias.bind(2, u.id)
                if try run(insAlias, "users[\(i)].aliases[\(k)]") { aliasInserted += 1 }
            }
        }
        counts["user_aliases"] = ImportCounts(table: "user_aliases", inserted: aliasInserted, updated: 0,
                                              deleted: aliasDeleted, unchanged: aliasUnchanged)

        changed = 0
        let resource = try db.prepare("""
            INSERT INTO resources(type, id, org, owner, shared, name) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
            ON CONFLICT(type, id) DO UPDATE SET org = excluded.org, owner = excluded.owner, shared = excluded.shared, name = excluded.name
            WHERE resources.org IS NOT excluded.org OR resources.owner IS NOT excluded.owner
               OR resources.shared IS NOT excluded.shared OR resources.name IS NOT excluded.name
            """)
        let keepRes = replace ? try db.prepare("INSERT OR IGNORE INTO temp.keep_resources VALUES (?1, ?2)") : nil
        for (i, r) in plan.resources.enumerated() {
            resource.bind(1, r.type); resource.bind(2, r.id); resource.bind(3, r.org); resource.bind(4, r.owner)
            resource.bind(5, r.shared); resource.bind(6, r.name)
            if try run(resource, "resources[\(i)]") { changed += 1 }
            if let keepRes { keepRes.bind(1, r.type); keepRes.bind(2, r.id); try keepRes.run() }
            tick()
        }
        try finish("resources", changed: changed, fileRows: plan.resources.count, before: before, into: &counts)

        changed = 0
        let ent = try db.prepare("INSERT INTO entitlements(org, role) VALUES (?1, ?2) ON CONFLICT(org, role) DO NOTHING")
        let keepEnt = replace ? try db.prepare("INSERT OR IGNORE INTO temp.keep_entitlements VALUES (?1, ?2)") : nil
        for (i, e) in plan.entitlements.enumerated() {
            ent.bind(1, e.org); ent.bind(2, e.role)
            if try run(ent, "entitlements[\(i)]") { changed += 1 }
            if let keepEnt { keepEnt.bind(1, e.org); keepEnt.bind(2, e.role); try keepEnt.run() }
            tick()
        }
        try finish("entitlements", changed: changed, fileRows: plan.entitlements.count, before: before, into: &counts)

        changed = 0
        // granted_at: the file's (?7: given, a time or null in ?6), else the import's time (?8)
        // for a row inserted or whose grant changes; an unchanged row keeps its own.
        let asg = try db.prepare("""
            INSERT INTO assignments(user, role, scope, valid_until, granted_by, granted_at)
            VALUES (?1, ?2, ?3, ?4, ?5, CASE WHEN ?7 THEN ?6 ELSE ?8 END)
            ON CONFLICT(user, role, scope) DO UPDATE SET valid_until = excluded.valid_until, granted_by = excluded.granted_by,
              granted_at = excluded.granted_at
            WHERE assignments.valid_until IS NOT excluded.valid_until OR assignments.granted_by IS NOT excluded.granted_by
               OR (?7 AND assignments.granted_at IS NOT excluded.granted_at)
            """)
        asg.bind(8, now)
        let keepAsg = replace ? try db.prepare("INSERT OR IGNORE INTO temp.keep_assignments VALUES (?1, ?2, ?3)") : nil
        for (i, a) in plan.assignments.enumerated() {
            asg.bind(1, a.user); asg.bind(2, a.role); asg.bind(3, a.scope); asg.bind(4, a.validUntil); asg.bind(5, a.grantedBy)
            asg.bind(6, a.grantedAt); asg.bind(7, a.grantedAtGiven)
            if try run(asg, "assignments[\(i)]") { changed += 1 }
            if let keepAsg { keepAsg.bind(1, a.user); keepAsg.bind(2, a.role); keepAsg.bind(3, a.scope); try keepAsg.run() }
            tick()
        }
        try finish("assignments", changed: changed, fileRows: plan.assignments.count, before: before, into: &counts)

        changed = 0
        let grant = try db.prepare("""
            INSERT INTO org_grants(org, role, include_suborgs, valid_until, granted_by, granted_at)
            VALUES (?1, ?2, ?3, ?4, ?5, CASE WHEN ?7 THEN ?6 ELSE ?8 END)
            ON CONFLICT(org, role) DO UPDATE SET include_suborgs = excluded.include_suborgs,
              valid_until = excluded.valid_until, granted_by = excluded.granted_by, granted_at = excluded.granted_at
            WHERE org_grants.include_suborgs IS NOT excluded.include_suborgs
               OR org_grants.valid_until IS NOT excluded.valid_until OR org_grants.granted_by IS NOT excluded.granted_by
               OR (?7 AND org_grants.granted_at IS NOT excluded.granted_at)
            """)
        grant.bind(8, now)
        let keepGrant = replace ? try db.prepare("INSERT OR IGNORE INTO temp.keep_org_grants VALUES (?1, ?2)") : nil
        for (i, g) in plan.orgGrants.enumerated() {
            grant.bind(1, g.org); grant.bind(2, g.role); grant.bind(3, g.includeSuborgs); grant.bind(4, g.validUntil)
            grant.bind(5, g.grantedBy); grant.bind(6, g.grantedAt); grant.bind(7, g.grantedAtGiven)
            if try run(grant, "org_grants[\(i)]") { changed += 1 }
            if let keepGrant { keepGrant.bind(1, g.org); keepGrant.bind(2, g.role); try keepGrant.run() }
            tick()
        }
        try finish("org_grants", changed: changed, fileRows: plan.orgGrants.count, before: before, into: &counts)

        if replace {
            // Children before parents.
            try deleteMissing("assignments", """
                DELETE FROM assignments WHERE NOT EXISTS (SELECT 1 FROM temp.keep_assignments k
                  WHERE k.user = assignments.user AND k.role = assignments.role AND k.scope = assignments.scope)
                """, &counts)
            try deleteMissing("org_grants", """
                DELETE FROM org_grants WHERE NOT EXISTS (SELECT 1 FROM temp.keep_org_grants k
                  WHERE k.org = org_grants.org AND k.role = org_grants.role)
                """, &counts)
            try deleteMissing("entitlements", """
                DELETE FROM entitlements WHERE NOT EXISTS (SELECT 1 FROM temp.keep_entitlements k
                  WHERE k.org = entitlements.org AND k.role = entitlements.role)
                """, &counts)
            try deleteMissing("resources", """
                DELETE FROM resources WHERE NOT EXISTS (SELECT 1 FROM temp.keep_resources k
                  WHERE k.type = resources.type AND k.id = resources.id)
                """, &counts)
            let delUser = try db.prepare("DELETE FROM users WHERE id = ?1")
            for id in state.users.keys.sorted() where !plan.fileUsers.contains(id) {
                delUser.bind(1, id)
                if try run(delUser, "users: deleting \(quoted(id))") { counts["users"]!.deleted += 1 }
            }
            let delRole = try db.prepare("DELETE FROM roles WHERE id = ?1")
            for id in state.roles.sorted() where !plan.fileRoles.contains(id) {
                delRole.bind(1, id)
                if try run(delRole, "roles: deleting \(quoted(id))") { counts["roles"]!.deleted += 1 }
            }
            // Deepest orgs first (depth in the tree as it is now).
            var depth: [String: Int] = [:]
            func depthOf(_ id: String) -> Int {
                if let d = depth[id] { return d }
                var chain: [String] = []
                var cur: String? = id
                var base = -1
                while let c = cur {
                    if let d = depth[c] { base = d; break }
                    chain.append(c)
                    if chain.count > state.orgs.count + 1 { break }
                    cur = state.orgs[c]?.parent ?? nil
                }
                for (k, c) in chain.reversed().enumerated() { depth[c] = base + 1 + k }
                return depth[id] ?? 0
            }
            let doomed = state.orgs.keys.filter { !plan.fileOrgs.contains($0) }
                .map { ($0, depthOf($0)) }.sorted { ($0.1, $1.0) > ($1.1, $0.0) }
            let delOrg = try db.prepare("DELETE FROM orgs WHERE id = ?1")
            for (id, _) in doomed {
                delOrg.bind(1, id)
                if try run(delOrg, "orgs: deleting \(quoted(id))") { counts["orgs"]!.deleted += 1 }
            }
            for t in ["keep_resources", "keep_entitlements", "keep_assignments", "keep_org_grants"] {
                try db.execute("DROP TABLE temp.\(t)")
            }
        }
        if let progress, lastReported != written { progress(written, total) }
        return Schema.graphTables.map { counts[$0]! }
    }

    func finish(_ table: String, changed: Int, fileRows: Int, before: [String: Int], into counts: inout [String: ImportCounts]) throws(PIAMError) {
        let inserted = try count(table) - before[table]!
        counts[table] = ImportCounts(table: table, inserted: inserted, updated: changed - inserted, deleted: 0,
                                     unchanged: fileRows - changed)
    }

    func deleteMissing(_ table: String, _ sql: String, _ counts: inout [String: ImportCounts]) throws(PIAMError) {
        do { try db.execute(sql) } catch { throw PIAMError(.database, "\(table): deleting rows not in the file: \(error.message)") }
        counts[table]!.deleted += db.changes
    }
}

import PIAMEngine

/// Why a journal follower cannot catch up incrementally and must load the whole graph.
public enum FullReloadReason: Sendable, Hashable, CustomStringConvertible {
    /// Journal rows after the follower's revision were deleted (`piamctl journal compact`):
    /// the journal now starts after `through`.
    case journalCompacted(through: Int64)
    /// `PRAGMA user_version` is not the one the follower's graph was loaded with.
    case schemaChanged(from: Int, to: Int)
    /// The database's revision is older than the follower's: it was replaced or restored from
    /// an older copy.
    case revisionWentBack(from: Int64, to: Int64)
    /// More journal rows than a full load is worth reading one by one (a bulk import).
    case largeChange(rows: Int)

    /// A short token for logs and STATUS (`last_reload.cause`).
    public var cause: String {
        switch self {
        case .journalCompacted: "journal-compacted"
        case .schemaChanged: "schema-changed"
        case .revisionWentBack: "revision-went-back"
        case .largeChange: "large-change"
        }
    }

    public var description: String {
        switch self {
        case .journalCompacted(let through): "journal compacted through revision \(through)"
        case .schemaChanged(let from, let to): "schema version changed from \(from) to \(to)"
        case .revisionWentBack(let from, let to): "database revision went back from \(from) to \(to)"
        case .largeChange(let rows): "\(rows) journal rows to apply (more than a full load costs)"
        }
    }
}

/// What changed after a revision, as ``Store/changes(after:schemaVersion:maxRows:)`` read it in
/// one read transaction.
public struct ChangeSet: Sendable {
    /// The revision the changes start from (the follower's).
    public var base: Int64
    /// The database's revision in that transaction: the graph's revision once `changes` are applied.
    public var revision: Int64
    /// Each distinct key the journal rows touched, with its current record (or `nil` when gone).
    /// Empty when nothing changed or when ``fullReload`` is set.
    public var changes: [GraphChange]
    /// Journal rows read (one per row written; several may touch the same key).
    public var journalRows: Int
    /// Set when the follower must load the whole graph instead; `changes` is then empty.
    public var fullReload: FullReloadReason?
    /// The JIT-enabled namespaces at `revision`, re-read in the same transaction when a JIT
    /// setting or an identity namespace changed (``Schema/jitTables``); `nil` when neither did.
    public var jit: JITNamespaces?

    public init(base: Int64, revision: Int64, changes: [GraphChange], journalRows: Int, fullReload: FullReloadReason?,
                jit: JITNamespaces? = nil) {
        self.base = base
        self.revision = revision
        self.changes = changes
        self.journalRows = journalRows
        self.fullReload = fullReload
        self.jit = jit
    }
}

extension Store {
    /// The `meta` key recording the highest `seq` a journal compaction deleted.
    public static let journalCompactedThroughKey = "journal_compacted_through"

    /// Reads, in ONE read transaction, what changed after `revision`: the journal rows with
    /// `seq > revision`, collapsed to the distinct keys they touch, each re-read in its current
    /// state, and the database's revision in that same transaction.
    ///
    /// Inside an open transaction it reads in that one: a writer sees its own uncommitted rows,
    /// which is how an administrative session keeps its graph current as it writes.
    ///
    /// Because each change carries the key's state at the returned revision, applying them in any
    /// order to a graph at `revision` yields the graph at the returned revision — whole
    /// transactions only, since the read transaction sees only committed ones.
    ///
    /// Instead of changes, ``ChangeSet/fullReload`` is set when the journal cannot bring a graph at
    /// `revision` up to date: rows after it were compacted (the `meta` key
    /// ``journalCompactedThroughKey``, or a gap in the rows), the schema version differs from
    /// `schemaVersion`, the database's revision is below `revision`, or more than `maxRows` rows
    /// are pending.
    ///
    /// - Parameters:
    ///   - revision: the revision the caller's graph reflects.
    ///   - schemaVersion: the schema version the caller's graph was loaded with (nil: not checked).
    ///   - maxRows: beyond this many pending journal rows a full load is cheaper.
    /// - Throws: `PIAMError/Code/database` when the database cannot be read or a row does not
    ///   decode (e.g. a role's permissions).
    public func changes(after revision: Int64, schemaVersion: Int? = nil, maxRows: Int = 100_000) throws(PIAMError) -> ChangeSet {
        if db.inTransaction { return try readChanges(after: revision, schemaVersion: schemaVersion, maxRows: maxRows) }
        return try db.withTransaction { () throws(PIAMError) -> ChangeSet in
            try readChanges(after: revision, schemaVersion: schemaVersion, maxRows: maxRows)
        }
    }

    /// ``changes(after:schemaVersion:maxRows:)`` in the open transaction.
    private func readChanges(after revision: Int64, schemaVersion: Int?, maxRows: Int) throws(PIAMError) -> ChangeSet {
        do {
            let current = try self.revision()
            func full(_ r: FullReloadReason) -> ChangeSet {
                ChangeSet(base: revision, revision: current, changes: [], journalRows: 0, fullReload: r)
            }
            if let expected = schemaVersion {
                let now = try self.schemaVersion
                if now != expected { return full(.schemaChanged(from: expected, to: now)) }
            }
            if current < revision { return full(.revisionWentBack(from: revision, to: current)) }
            if current == revision { return ChangeSet(base: revision, revision: current, changes: [], journalRows: 0, fullReload: nil) }
            if let text = try meta(Self.journalCompactedThroughKey), let through = Int64(text), through > revision {
                return full(.journalCompacted(through: through))
            }
            let pending = current - revision
            if pending > Int64(maxRows) { return full(.largeChange(rows: Int(pending))) }

            let rows = try db.cached(#"SELECT seq, "table", key FROM journal WHERE seq > ?1 AND seq <= ?2 ORDER BY seq"#)
            rows.bind(1, revision); rows.bind(2, current)
            var seen = Set<JournalKey>()
            var keys: [JournalKey] = []
            var count: Int64 = 0
            var first: Int64?
            while try rows.step() {
                count += 1
                if first == nil { first = rows.int64(0) }
                let k = JournalKey(table: rows.text(1), key: rows.text(2))
                if seen.insert(k).inserted { keys.append(k) }
            }
            // seq is dense (AUTOINCREMENT; a rolled-back transaction gives its numbers back), so a
            // missing row means rows were deleted without the meta record: compacted all the same.
            if count != pending {
                return full(.journalCompacted(through: (first ?? current + 1) - 1))
            }
            var reader = CurrentRowReader(db: db, grantedAt: try grantedAtColumn())
            var changes: [GraphChange] = []
            changes.reserveCapacity(keys.count)
            var jitChanged = false
            for k in keys {
                if Schema.jitTables.contains(k.table) { jitChanged = true; continue }
                changes.append(try reader.change(k))
            }
            return ChangeSet(base: revision, revision: current, changes: changes, journalRows: Int(count), fullReload: nil,
                             jit: jitChanged ? try jitNamespaces() : nil)
        }
    }

    /// Deletes every journal row but the newest `keep`, recording the compaction point in `meta`
    /// (``journalCompactedThroughKey``) in the same transaction, so a follower behind it knows to
    /// load the whole graph. The revision is unchanged.
    ///
    /// - Returns: the rows removed and the highest `seq` removed (the previous compaction point
    ///   when nothing was removed).
    @discardableResult
    public func compactJournal(keep: Int) throws(PIAMError) -> (removed: Int, through: Int64) {
        guard keep >= 0 else { throw PIAMError(.invalidInput, "--keep must be 0 or more, not \(keep)") }
        return try db.withTransaction(immediate: true) { () throws(PIAMError) -> (removed: Int, through: Int64) in
            let revision = try self.revision()
            let through = revision - Int64(keep)
            let previous = Int64(try meta(Self.journalCompactedThroughKey) ?? "0") ?? 0
            guard through > 0 else { return (0, previous) }
            let removed = try compactJournal(through: through)
            return (removed, max(previous, through))
        }
    }

    /// Deletes journal rows with `seq <= through` (compaction) and records the compaction point
    /// in `meta`. The revision is unchanged. Inside an open transaction it joins that one.
    @discardableResult
    public func compactJournal(through seq: Int64) throws(PIAMError) -> Int {
        func run() throws(PIAMError) -> Int {
            let s = try db.prepare("DELETE FROM journal WHERE seq <= ?1")
            s.bind(1, seq)
            try s.run()
            let removed = db.changes
            let m = try db.prepare("""
                INSERT INTO meta(key, value) VALUES (?1, ?2)
                ON CONFLICT(key) DO UPDATE SET value = excluded.value
                WHERE CAST(excluded.value AS INTEGER) > CAST(meta.value AS INTEGER)
                """)
            m.bind(1, Self.journalCompactedThroughKey); m.bind(2, String(seq))
            try m.run()
            return removed
        }
        if db.inTransaction { return try run() }
        return try db.withTransaction(immediate: true) { () throws(PIAMError) -> Int in try run() }
    }
}

/// A journal row's (table, natural key).
struct JournalKey: Hashable {
    var table: String
    var key: String
}

/// Re-reads one journaled key's current row (compiled statements reused across keys).
struct CurrentRowReader {
    let db: Database
    /// ``Store/grantedAtColumn()`` in the reading transaction.
    let grantedAt: String
    private var statements: [String: Statement] = [:]

    init(db: Database, grantedAt: String) {
        self.db = db
        self.grantedAt = grantedAt
    }

    private mutating func statement(_ table: String, _ sql: String) throws(PIAMError) -> Statement {
        if let s = statements[table] {
            s.reset()
            return s
        }
        let s = try db.cached(sql)
        statements[table] = s
        return s
    }

    /// The key's composite parts (a JSON array of `n` strings).
    private func parts(_ k: JournalKey, _ n: Int) throws(PIAMError) -> [String] {
        guard let p = JSONText.parseStringArray(k.key), p.count == n else {
            throw PIAMError(.database, "journal: \(k.table) key \(k.key) is not a JSON array of \(n) strings")
        }
        return p
    }

    mutating func change(_ k: JournalKey) throws(PIAMError) -> GraphChange {
        switch k.table {
        case "orgs":
            let s = try statement(k.table, "SELECT \(Rows.orgColumns) FROM orgs WHERE id = ?1")
            s.bind(1, k.key)
            return .org(id: k.key, try s.step() ? Rows.org(id: k.key, s, from: 0) : nil)
        case "roles":
            let s = try statement(k.table, "SELECT permissions FROM roles WHERE id = ?1")
            s.bind(1, k.key)
            return .role(id: k.key, try s.step() ? try Rows.role(id: k.key, permissionsJSON: s.text(0)) : nil)
        case "users":
            let s = try statement(k.table, "SELECT \(Rows.userColumns) FROM users WHERE id = ?1")
            s.bind(1, k.key)
            return .user(id: k.key, try s.step() ? Rows.user(id: k.key, s, from: 0) : nil)
        case "user_aliases":
            let s = try statement(k.table, "SELECT user FROM user_aliases WHERE alias = ?1")
            s.bind(1, k.key)
            return .alias(k.key, user: try s.step() ? s.text(0) : nil)
        case "resources":
            let p = try parts(k, 2)
            let s = try statement(k.table, "SELECT \(Rows.resourceColumns) FROM resources WHERE type = ?1 AND id = ?2")
            s.bind(1, p[0]); s.bind(2, p[1])
            return .resource(type: p[0], id: p[1], try s.step() ? Rows.resource(type: p[0], id: p[1], s, from: 0) : nil)
        case "entitlements":
            let p = try parts(k, 2)
            let s = try statement(k.table, "SELECT 1 FROM entitlements WHERE org = ?1 AND role = ?2")
            s.bind(1, p[0]); s.bind(2, p[1])
            return .entitlement(org: p[0], role: p[1], present: try s.step())
        case "assignments":
            let p = try parts(k, 3)
            let s = try statement(k.table, "SELECT \(Rows.assignmentColumns(grantedAt)) FROM assignments WHERE user = ?1 AND role = ?2 AND scope = ?3")
            s.bind(1, p[0]); s.bind(2, p[1]); s.bind(3, p[2])
            return .assignment(user: p[0], role: p[1], scope: p[2],
                               try s.step() ? Rows.assignment(user: p[0], role: p[1], scope: p[2], s, from: 0) : nil)
        case "org_grants":
            let p = try parts(k, 2)
            let s = try statement(k.table, "SELECT \(Rows.orgGrantColumns(grantedAt)) FROM org_grants WHERE org = ?1 AND role = ?2")
            s.bind(1, p[0]); s.bind(2, p[1])
            return .orgGrant(org: p[0], role: p[1], try s.step() ? Rows.orgGrant(org: p[0], role: p[1], s, from: 0) : nil)
        default:
            throw PIAMError(.database, "journal: unknown table \"\(k.table)\"")
        }
    }
}

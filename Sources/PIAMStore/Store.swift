import Foundation
import PIAMEngine

/// The PIAM graph database: schema, migrations, seeds, import/export, the loader and the
/// queries the CLI needs. One `Store` wraps one SQLite connection and is not thread-safe.
public final class Store {
    /// The connection (for transactions and ad-hoc SQL by the CLI and tests).
    public let db: Database
    /// Compiled statements the administration layer reuses (``cached(_:)``).
    var statementCache: [String: Statement] = [:]

    /// Opens an existing database.
    ///
    /// - A writable store is migrated to ``Schema/latestVersion`` when it is older.
    /// - A read-only store reads a schema from ``Schema/oldestReadableVersion`` on (what a
    ///   newer version added reads as absent: `granted_at` before v3).
    /// - A file that does not exist, or holds no PIAM schema, throws `PIAMError/Code/schema`
    ///   "not a PIAM database (run piamctl init)"; a schema newer than this code throws
    ///   `PIAMError/Code/schema` too, as does (read-only) a schema older than
    ///   ``Schema/oldestReadableVersion``.
    public init(path: String, readOnly: Bool = false) throws(PIAMError) {
        guard FileManager.default.fileExists(atPath: path) else {
            throw PIAMError(.schema, "\(path): not a PIAM database (run piamctl init)")
        }
        db = try Database(path: path, readOnly: readOnly)
        let version = try schemaVersion
        if version > Schema.latestVersion {
            throw PIAMError(.schema, "\(path): schema version \(version) is newer than this program knows (\(Schema.latestVersion)); upgrade PIAM")
        }
        if version == 0 {
            throw PIAMError(.schema, "\(path): not a PIAM database (run piamctl init)")
        }
        if version < Schema.latestVersion {
            if readOnly {
                if version < Schema.oldestReadableVersion {
                    throw PIAMError(.schema, "\(path): schema version \(version) is older than \(Schema.oldestReadableVersion) (run piamctl init to migrate)")
                }
            } else {
                try migrate()
            }
        }
    }

    private init(database: Database) {
        db = database
    }

    /// Creates the database file if needed, migrates it to the latest schema and seeds the
    /// default orgs and roles when they are absent (``Seed``). Idempotent: on an initialized
    /// database it changes nothing (the revision stays the same).
    @discardableResult
    public static func initialize(path: String, now: Timestamp? = nil) throws(PIAMError) -> Store {
        let store = Store(database: try Database(path: path, readOnly: false, create: true))
        let version = try store.schemaVersion
        if version > Schema.latestVersion {
            throw PIAMError(.schema, "\(path): schema version \(version) is newer than this program knows (\(Schema.latestVersion)); upgrade PIAM")
        }
        if version == 0 {
            let tables = try store.db.scalarInt("SELECT count(*) FROM sqlite_schema WHERE type = 'table'") ?? 0
            if tables > 0 {
                throw PIAMError(.schema, "\(path): the file holds tables but no PIAM schema version; refusing to initialize it")
            }
        }
        try store.migrate()
        try store.seed(now: now ?? Timestamp(Date().timeIntervalSince1970 * 1000))
        return store
    }

    // MARK: Schema

    /// The schema version (`PRAGMA user_version`).
    public var schemaVersion: Int {
        get throws(PIAMError) { Int(try scalar("PRAGMA user_version") ?? 0) }
    }

    /// The SQL for the `granted_at` column of `assignments` and `org_grants`: the column from
    /// schema v3 on, `NULL` (unknown) when a read-only store reads an older database. Asked
    /// inside each read transaction: another process may migrate the file meanwhile.
    func grantedAtColumn() throws(PIAMError) -> String {
        try schemaVersion >= Schema.grantedAtVersion ? "granted_at" : "NULL"
    }

    /// Applies every migration newer than the database, in order, in ONE transaction: a
    /// follower (piamd) sees a single schema change — one full reload — and an interrupted
    /// upgrade leaves the database at its old version.
    public func migrate() throws(PIAMError) {
        let version = try schemaVersion
        if version > Schema.latestVersion {
            throw PIAMError(.schema, "schema version \(version) is newer than this program knows (\(Schema.latestVersion))")
        }
        guard version < Schema.latestVersion else { return }
        try db.withTransaction(immediate: true) { () throws(PIAMError) in
            // Re-read under the write lock: another process may have migrated meanwhile.
            let current = try schemaVersion
            if current > Schema.latestVersion {
                throw PIAMError(.schema, "schema version \(current) is newer than this program knows (\(Schema.latestVersion))")
            }
            guard current < Schema.latestVersion else { return }
            for sql in Schema.migrations[current...] { try db.execute(sql) }
            try db.execute("PRAGMA user_version = \(Schema.latestVersion)")
        }
    }

    func seed(now: Timestamp) throws(PIAMError) {
        try db.withTransaction(immediate: true) { () throws(PIAMError) in
            let meta = try db.prepare("INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO NOTHING")
            meta.bind(1, "created_at"); meta.bind(2, RFC3339.format(now)); try meta.run()
            meta.bind(1, "schema_created_by"); meta.bind(2, "piam"); try meta.run()
            let org = try db.prepare("""
                INSERT INTO orgs(id, parent, name, kind, status) SELECT ?1, ?2, ?3, ?4, 'active'
                WHERE NOT EXISTS (SELECT 1 FROM orgs WHERE id = ?1)
                  AND (?2 IS NOT NULL OR NOT EXISTS (SELECT 1 FROM orgs WHERE parent IS NULL))
                  AND (?2 IS NULL OR EXISTS (SELECT 1 FROM orgs WHERE id = ?2))
                """)
            for o in Seed.orgs {
                org.bind(1, o.id); org.bind(2, o.parent); org.bind(3, o.name); org.bind(4, o.kind.name)
                try org.run()
            }
            let role = try db.prepare("""
                INSERT INTO roles(id, name, description, permissions) VALUES (?1, ?2, ?3, ?4)
                ON CONFLICT(id) DO NOTHING
                """)
            for r in Seed.roles {
                role.bind(1, r.id); role.bind(2, r.name); role.bind(3, r.description)
                role.bind(4, JSONText.array(r.permissions)); try role.run()
            }
        }
    }

    // MARK: Revision and counts

    /// The graph's revision: the last journal `seq` ever assigned (0 for none). Read from
    /// `sqlite_sequence`, so it survives journal compaction.
    public func revision() throws(PIAMError) -> Int64 {
        try scalar("SELECT seq FROM sqlite_sequence WHERE name = 'journal'") ?? 0
    }

    /// An integer from a statement this connection keeps compiled (these run on every journal
    /// check of the daemon).
    private func scalar(_ sql: String) throws(PIAMError) -> Int64? {
        let s = try db.cached(sql)
        return try s.step() ? s.optionalInt64(0) : nil
    }

    /// `PRAGMA data_version`: changes whenever another connection commits to the database, so a
    /// long-lived connection can tell "nothing was committed" without reading any table.
    public func dataVersion() throws(PIAMError) -> Int64 {
        try scalar("PRAGMA data_version") ?? 0
    }

    /// Rows in the change journal (fewer than the revision after compaction).
    public func journalCount() throws(PIAMError) -> Int {
        Int(try db.scalarInt("SELECT count(*) FROM journal") ?? 0)
    }

    /// Journal rows after `seq`, oldest first.
    public func journal(after seq: Int64, limit: Int = 10_000) throws(PIAMError) -> [JournalEntry] {
        let s = try db.prepare(#"SELECT seq, "table", key, op FROM journal WHERE seq > ?1 ORDER BY seq LIMIT ?2"#)
        s.bind(1, seq); s.bind(2, limit)
        return try s.rows { JournalEntry(seq: $0.int64(0), table: $0.text(1), key: $0.text(2), op: $0.text(3)) }
    }

    /// Row counts of every graph table, in ``Schema/graphTables`` order.
    public func tableCounts() throws(PIAMError) -> [TableCount] {
        var out: [TableCount] = []
        for t in Schema.graphTables {
            out.append(TableCount(table: t, rows: Int(try db.scalarInt("SELECT count(*) FROM \(t)") ?? 0)))
        }
        return out
    }

    /// A value from the `meta` table (e.g. `created_at`).
    public func meta(_ key: String) throws(PIAMError) -> String? {
        let s = try db.cached("SELECT value FROM meta WHERE key = ?1")
        s.bind(1, key)
        return try s.step() ? s.optionalText(0) : nil
    }

    // MARK: Replica heartbeat

    /// The `meta` key of the primary's heartbeat: milliseconds since the epoch.
    public static let heartbeatKey = "heartbeat_at"

    /// Records that the primary is alive at `now` (ms since the epoch), in its own transaction.
    ///
    /// `meta` is not journaled: a heartbeat moves no revision and changes no graph, but it is a
    /// commit, so a replication engine carries it to every replica, where piamd reads it to know
    /// how old its copy is (`database.replica`). `piamctl heartbeat` writes one every interval.
    public func writeHeartbeat(now: Timestamp) throws(PIAMError) {
        let s = try db.cached("INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
        s.bind(1, Self.heartbeatKey)
        s.bind(2, String(now))
        try s.run()
    }

    /// The primary's last heartbeat as this database holds it (nil: none, or not a number).
    public func heartbeat() throws(PIAMError) -> Timestamp? {
        try meta(Self.heartbeatKey).flatMap { Timestamp($0) }
    }

    // MARK: Listing and lookups

    /// Orgs, sorted by id; only the children of `parent` when given.
    public func listOrgs(parent: String? = nil) throws(PIAMError) -> [OrgInfo] {
        let s = try db.prepare("SELECT id, parent, name, kind, status FROM orgs \(parent == nil ? "" : "WHERE parent = ?1 ") ORDER BY id")
        if let parent { s.bind(1, parent) }
        return try s.rows(Self.orgInfo)
    }

    /// One org by id.
    public func org(id: String) throws(PIAMError) -> OrgInfo? {
        let s = try db.prepare("SELECT id, parent, name, kind, status FROM orgs WHERE id = ?1")
        s.bind(1, id)
        return try s.step() ? Self.orgInfo(s) : nil
    }

    static func orgInfo(_ s: Statement) -> OrgInfo {
        OrgInfo(id: s.text(0), parent: s.optionalText(1), name: s.text(2),
                kind: OrgKind(name: s.text(3)) ?? .partner, status: OrgStatus(name: s.text(4)) ?? .suspended)
    }

    static let userColumns = """
        u.id, u.org, u.name, u.email, u.status, u.valid_until,
        (SELECT json_group_array(alias) FROM (SELECT alias FROM user_aliases a WHERE a.user = u.id ORDER BY alias))
        """

    static func userInfo(_ s: Statement) -> UserInfo {
        UserInfo(id: s.text(0), org: s.text(1), name: s.optionalText(2), email: s.optionalText(3),
                 aliases: JSONText.parseStringArray(s.text(6)) ?? [],
                 status: UserStatus(name: s.text(4)) ?? .suspended, validUntil: s.optionalInt64(5))
    }

    /// Users sorted by id; only the members of `org` when given. `limit`/`after` page by id.
    public func listUsers(org: String? = nil, after: String? = nil, limit: Int = Int(Int32.max)) throws(PIAMError) -> [UserInfo] {
        var conds: [String] = []
        if org != nil { conds.append("u.org = ?1") }
        if after != nil { conds.append("u.id > ?2") }
        let s = try db.prepare("""
            SELECT \(Self.userColumns) FROM users u \(conds.isEmpty ? "" : "WHERE " + conds.joined(separator: " AND "))
            ORDER BY u.id LIMIT ?3
            """)
        s.bind(1, org); s.bind(2, after); s.bind(3, limit)
        return try s.rows(Self.userInfo)
    }

    /// One user by id or alias.
    public func user(idOrAlias: String) throws(PIAMError) -> UserInfo? {
        let s = try db.prepare("""
            SELECT \(Self.userColumns) FROM users u
            WHERE u.id = ?1 OR u.id = (SELECT user FROM user_aliases WHERE alias = ?1) LIMIT 1
            """)
        s.bind(1, idOrAlias)
        return try s.step() ? Self.userInfo(s) : nil
    }

    static func roleInfo(_ s: Statement) -> RoleInfo {
        RoleInfo(id: s.text(0), name: s.optionalText(1), description: s.optionalText(2),
                 permissions: JSONText.parseStringArray(s.text(3)) ?? [])
    }

    /// Roles sorted by id.
    public func listRoles() throws(PIAMError) -> [RoleInfo] {
        try db.prepare("SELECT id, name, description, permissions FROM roles ORDER BY id").rows(Self.roleInfo)
    }

    /// One role by id.
    public func role(id: String) throws(PIAMError) -> RoleInfo? {
        let s = try db.prepare("SELECT id, name, description, permissions FROM roles WHERE id = ?1")
        s.bind(1, id)
        return try s.step() ? Self.roleInfo(s) : nil
    }

    /// Resources sorted by (type, id), filtered by type and/or location org when given.
    public func listResources(type: String? = nil, org: String? = nil) throws(PIAMError) -> [ResourceInfo] {
        var conds: [String] = []
        if type != nil { conds.append("type = ?1") }
        if org != nil { conds.append("org = ?2") }
        let s = try db.prepare("""
            SELECT type, id, org, owner, shared, name FROM resources
            \(conds.isEmpty ? "" : "WHERE " + conds.joined(separator: " AND ")) ORDER BY type, id
            """)
        s.bind(1, type); s.bind(2, org)
        return try s.rows {
            ResourceInfo(type: $0.text(0), id: $0.text(1), org: $0.text(2), owner: $0.optionalText(3),
                         shared: $0.int64(4) != 0, name: $0.optionalText(5))
        }
    }

    /// The assignments of one user (by id), sorted by (role, scope).
    public func assignments(user: String) throws(PIAMError) -> [AssignmentInfo] {
        let s = try db.prepare("""
            SELECT user, role, scope, valid_until, granted_by, \(try grantedAtColumn()) FROM assignments WHERE user = ?1 ORDER BY role, scope
            """)
        s.bind(1, user)
        return try s.rows {
            AssignmentInfo(user: $0.text(0), role: $0.text(1), scope: $0.text(2),
                           validUntil: $0.optionalInt64(3), grantedBy: $0.optionalText(4), grantedAt: $0.optionalInt64(5))
        }
    }

    /// The org grants on one org, sorted by role.
    public func orgGrants(org: String) throws(PIAMError) -> [OrgGrantInfo] {
        let s = try db.prepare("""
            SELECT org, role, include_suborgs, valid_until, granted_by, \(try grantedAtColumn()) FROM org_grants WHERE org = ?1 ORDER BY role
            """)
        s.bind(1, org)
        return try s.rows {
            OrgGrantInfo(org: $0.text(0), role: $0.text(1), includeSuborgs: $0.int64(2) != 0,
                         validUntil: $0.optionalInt64(3), grantedBy: $0.optionalText(4), grantedAt: $0.optionalInt64(5))
        }
    }

    /// The roles entitled directly to one org (not inherited), sorted.
    public func entitlements(org: String) throws(PIAMError) -> [String] {
        let s = try db.prepare("SELECT role FROM entitlements WHERE org = ?1 ORDER BY role")
        s.bind(1, org)
        return try s.rows { $0.text(0) }
    }
}

@available(*, unavailable)
extension Store: Sendable {}

/// One change-journal row.
public struct JournalEntry: Sendable, Hashable {
    public var seq: Int64
    /// The graph table changed.
    public var table: String
    /// The row's natural key: an id, an alias, or a JSON array for composite keys.
    public var key: String
    /// `insert`, `update` or `delete`.
    public var op: String

    public init(seq: Int64, table: String, key: String, op: String) {
        self.seq = seq; self.table = table; self.key = key; self.op = op
    }
}

/// A graph table's row count.
public struct TableCount: Sendable, Hashable {
    public var table: String
    public var rows: Int
}

/// An org with its display fields.
public struct OrgInfo: Sendable, Hashable {
    public var id: String
    public var parent: String?
    public var name: String
    public var kind: OrgKind
    public var status: OrgStatus
}

/// A user with its display fields and aliases (sorted).
public struct UserInfo: Sendable, Hashable {
    public var id: String
    public var org: String
    public var name: String?
    public var email: String?
    public var aliases: [String]
    public var status: UserStatus
    public var validUntil: Timestamp?
}

/// A role with its permissions as stored (strings).
public struct RoleInfo: Sendable, Hashable {
    public var id: String
    public var name: String?
    public var description: String?
    public var permissions: [String]
}

/// A registered resource with its display name.
public struct ResourceInfo: Sendable, Hashable {
    public var type: String
    public var id: String
    public var org: String
    public var owner: String?
    public var shared: Bool
    public var name: String?
}

/// An assignment row.
public struct AssignmentInfo: Sendable, Hashable {
    public var user: String
    public var role: String
    public var scope: String
    public var validUntil: Timestamp?
    /// Who granted it (a user id as recorded), if recorded.
    public var grantedBy: String?
    /// When it was granted, if known (not for rows written before schema v3).
    public var grantedAt: Timestamp?
}

/// An org grant row.
public struct OrgGrantInfo: Sendable, Hashable {
    public var org: String
    public var role: String
    public var includeSuborgs: Bool
    public var validUntil: Timestamp?
    /// Who granted it (a user id as recorded), if recorded.
    public var grantedBy: String?
    /// When it was granted, if known (not for rows written before schema v3).
    public var grantedAt: Timestamp?
}

/// What `piamctl init` seeds (DESIGN §2, §6).
public enum Seed {
    /// A seeded org.
    public struct Org: Sendable, Hashable {
        public var id: String
        public var parent: String?
        public var name: String
        public var kind: OrgKind
    }

    /// A seeded role.
    public struct Role: Sendable, Hashable {
        public var id: String
        public var name: String
        public var description: String
        public var permissions: [String]
    }

    /// The root org: the business itself.
    public static let rootOrgID = "host"
    /// The container (kind host) under which partner roots are created.
    public static let partnersOrgID = "partners"

    /// `host` (the root) and `partners` below it, both kind host.
    public static let orgs: [Org] = [
        Org(id: rootOrgID, parent: nil, name: "Host", kind: .host),
        Org(id: partnersOrgID, parent: rootOrgID, name: "Partners", kind: .host),
    ]

    /// A partner company's delegated administrator. It hands out only what it holds itself
    /// over the scope (rule 5 of `can_assign`): its own role, and the business roles it was given.
    public static let partnerAdmin = Role(
        id: "partner-admin", name: "Partner administrator",
        description: "Manages the people and sub-organizations of its scope",
        permissions: [
            "org:view", "org:invite_user", "org:create_suborg", "org:update", "org:suspend", "org:reactivate",
            "org:grant_role", "user:view", "user:update", "user:suspend", "user:reactivate", "user:remove",
            "user:assign_role", "user:revoke_role",
        ])
    /// Every partner employee's baseline.
    public static let partnerUser = Role(
        id: "partner-user", name: "Partner user",
        description: "Sees its organization and colleagues, may request roles for itself",
        permissions: ["org:view", "user:view", "user:request_role:owner"])
    /// The business's administrator: every action on orgs, users and roles, the host-only
    /// ones included — `org:approve` and `org:entitle`, and on every `role:<id>` (located at the
    /// root) `define`, `update`, `delete` and `grant`. `role:grant` makes it a role
    /// administrator: rule 5 of `can_assign` (and of org grants) lets it hand out any role,
    /// whatever it holds itself; rules 1–4 (ceiling, scope) still apply.
    public static let hostAdmin = Role(
        id: "host-admin", name: "Host administrator",
        description: "Every action on orgs, users and roles, host-only ones included (role:grant: hands out any role)",
        permissions: ["org:*", "user:*", "role:*"])

    /// The default roles (DESIGN §6).
    public static let roles: [Role] = [partnerAdmin, partnerUser, hostAdmin]
}

import PIAMEngine

/// The database schema and its migrations.
///
/// The schema version lives in `PRAGMA user_version`. Migrations are applied in order, all those
/// a database lacks in ONE transaction (a follower sees one schema change, and an interrupted
/// upgrade leaves the old version whole); a database newer than this code is refused.
public enum Schema {
    /// The schema version this code writes and reads.
    public static var latestVersion: Int { migrations.count }

    /// The oldest schema version a read-only store reads (``Store/init(path:readOnly:)``): the
    /// graph of a v2 database loads with every `granted_at` unknown, so a `piamd` upgraded
    /// before its database keeps serving until `piamctl init` migrates it, then reloads.
    public static let oldestReadableVersion = 2

    /// Schema v3 added `granted_at` to `assignments` and `org_grants`.
    static let grantedAtVersion = 3

    /// The graph tables, in dependency order (parents first). Every one is journaled.
    public static let graphTables = [
        "orgs", "roles", "users", "user_aliases", "resources", "entitlements", "assignments", "org_grants",
    ]

    /// Schema v4 added the credential tables (`api_tokens`, `invitations`, `idempotency`) and
    /// `audit.credential`.
    static let credentialsVersion = 4

    /// Migration `i` brings the schema from version `i` to `i + 1`: v1 the graph and its
    /// journal, v2 the administration tables (audit log, access requests; not journaled), v3
    /// `granted_at` on assignments and org grants, v4 API tokens, invitations, idempotency
    /// records and the audit log's `credential` (none journaled), v5 identity namespaces and
    /// SCIM provisioning (``v5``; none journaled), v6 access reviews (``reviewsVersion``, not
    /// journaled), v7 just-in-time creation (``jitVersion``: `partner_jit`, and journal
    /// triggers on it and on `identity_namespaces`). Append only: a migration, once released,
    /// never changes.
    static let migrations: [String] = [v1, v2, v3, v4, v5, reviews, jit]

    /// Schema v3: when each assignment and org grant was made (`granted_at`, milliseconds since
    /// the epoch like `valid_until`), beside who made it (`granted_by`, since v1). Rows written
    /// before keep `NULL`: unknown, shown as absent. Adding a column rewrites no row, so the
    /// migration journals nothing and the revision stays; followers see the schema version
    /// change and load the graph afresh.
    static let v3 = """
    ALTER TABLE assignments ADD COLUMN granted_at INTEGER;
    ALTER TABLE org_grants ADD COLUMN granted_at INTEGER;
    """

    static func idCheck(_ column: String) -> String {
        "CHECK(length(CAST(\(column) AS BLOB)) BETWEEN 1 AND 255)"
    }

    /// The natural key SQL expression of each journaled table, for a row named `r` (NEW or OLD).
    static func journalKey(_ table: String, _ r: String) -> String {
        switch table {
        case "orgs", "users", "roles": "\(r).id"
        case "user_aliases": "\(r).alias"
        case "resources": "json_array(\(r).type, \(r).id)"
        case "entitlements", "org_grants": "json_array(\(r).org, \(r).role)"
        case "assignments": "json_array(\(r).user, \(r).role, \(r).scope)"
        default: fatalError("not a graph table: \(table)")
        }
    }

    static var journalTriggers: String {
        var sql = ""
        for t in graphTables {
            for (op, when, row) in [("insert", "INSERT", "NEW"), ("update", "UPDATE", "NEW"), ("delete", "DELETE", "OLD")] {
                sql += """
                CREATE TRIGGER journal_\(t)_\(op) AFTER \(when) ON \(t) BEGIN
                  INSERT INTO journal("table", key, op) VALUES ('\(t)', \(journalKey(t, row)), '\(op)');
                END;

                """
            }
        }
        return sql
    }

    /// Triggers that abort any update of a key column.
    static var immutableKeyTriggers: String {
        let keys: [(String, [String])] = [
            ("orgs", ["id"]), ("users", ["id"]), ("roles", ["id"]), ("user_aliases", ["alias"]),
            ("resources", ["type", "id"]), ("entitlements", ["org", "role"]),
            ("assignments", ["id", "user", "role", "scope"]), ("org_grants", ["id", "org", "role"]),
        ]
        var sql = ""
        for (t, cols) in keys {
            let changed = cols.map { "NEW.\($0) IS NOT OLD.\($0)" }.joined(separator: " OR ")
            sql += """
            CREATE TRIGGER immutable_\(t)_key BEFORE UPDATE OF \(cols.joined(separator: ", ")) ON \(t)
            WHEN \(changed) BEGIN
              SELECT RAISE(ABORT, '\(t): the key columns (\(cols.joined(separator: ", "))) are immutable; delete and insert instead');
            END;

            """
        }
        return sql
    }

    static let v1 = """
    CREATE TABLE meta(key TEXT PRIMARY KEY NOT NULL, value TEXT) STRICT;

    CREATE TABLE orgs(
      id TEXT PRIMARY KEY NOT NULL \(idCheck("id")),
      parent TEXT REFERENCES orgs(id) ON DELETE RESTRICT,
      name TEXT NOT NULL,
      kind TEXT NOT NULL CHECK(kind IN ('host', 'partner')),
      status TEXT NOT NULL DEFAULT 'active' CHECK(status IN ('pending', 'active', 'suspended')),
      CHECK(parent IS NOT NULL OR kind = 'host'),
      CHECK(parent <> id)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX orgs_parent ON orgs(parent);

    CREATE TABLE roles(
      id TEXT PRIMARY KEY NOT NULL \(idCheck("id")),
      name TEXT,
      description TEXT,
      permissions TEXT NOT NULL DEFAULT '[]' CHECK(json_valid(permissions) AND json_type(permissions) = 'array')
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE users(
      id TEXT PRIMARY KEY NOT NULL \(idCheck("id")),
      org TEXT NOT NULL REFERENCES orgs(id) ON DELETE RESTRICT,
      name TEXT,
      email TEXT,
      status TEXT NOT NULL DEFAULT 'active' CHECK(status IN ('invited', 'active', 'suspended')),
      valid_until INTEGER
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX users_org ON users(org);

    CREATE TABLE user_aliases(
      alias TEXT PRIMARY KEY NOT NULL \(idCheck("alias")),
      user TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX user_aliases_user ON user_aliases(user);

    CREATE TABLE resources(
      type TEXT NOT NULL CHECK(length(CAST(type AS BLOB)) BETWEEN 1 AND 64 AND type NOT IN ('user', 'org', 'role')),
      id TEXT NOT NULL \(idCheck("id")),
      org TEXT NOT NULL REFERENCES orgs(id) ON DELETE RESTRICT,
      owner TEXT REFERENCES users(id) ON DELETE SET NULL,
      shared INTEGER NOT NULL DEFAULT 0 CHECK(shared IN (0, 1)),
      name TEXT,
      PRIMARY KEY(type, id)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX resources_org ON resources(org);
    CREATE INDEX resources_owner ON resources(owner);

    CREATE TABLE entitlements(
      org TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
      role TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
      PRIMARY KEY(org, role)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX entitlements_role ON entitlements(role);

    CREATE TABLE assignments(
      id INTEGER PRIMARY KEY,
      user TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      role TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
      scope TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
      valid_until INTEGER,
      granted_by TEXT,
      UNIQUE(user, role, scope)
    ) STRICT;
    -- assignments(user) is served by the UNIQUE(user, role, scope) index.
    CREATE INDEX assignments_role ON assignments(role);
    CREATE INDEX assignments_scope ON assignments(scope);

    CREATE TABLE org_grants(
      id INTEGER PRIMARY KEY,
      org TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
      role TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
      include_suborgs INTEGER NOT NULL DEFAULT 0 CHECK(include_suborgs IN (0, 1)),
      valid_until INTEGER,
      granted_by TEXT,
      UNIQUE(org, role)
    ) STRICT;
    CREATE INDEX org_grants_role ON org_grants(role);

    CREATE TABLE journal(
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      "table" TEXT NOT NULL,
      key TEXT NOT NULL,
      op TEXT NOT NULL CHECK(op IN ('insert', 'update', 'delete'))
    );

    -- Graph validity. (SQLite 3.40's RAISE takes only a literal message, so the messages name the
    -- rule; writers that validate first, like import, name the ids.)
    CREATE TRIGGER orgs_one_root_insert BEFORE INSERT ON orgs
    WHEN NEW.parent IS NULL AND EXISTS (SELECT 1 FROM orgs WHERE parent IS NULL AND id <> NEW.id) BEGIN
      SELECT RAISE(ABORT, 'org tree: a second root org is not allowed (only the host root has no parent)');
    END;
    CREATE TRIGGER orgs_one_root_update BEFORE UPDATE OF parent ON orgs
    WHEN NEW.parent IS NULL AND OLD.parent IS NOT NULL BEGIN
      SELECT RAISE(ABORT, 'org tree: a second root org is not allowed (only the host root has no parent)');
    END;
    CREATE TRIGGER orgs_no_cycle BEFORE UPDATE OF parent ON orgs
    WHEN NEW.parent IS NOT NULL AND NEW.parent IS NOT OLD.parent AND EXISTS (
      WITH RECURSIVE anc(id) AS (
        SELECT NEW.parent
        UNION
        SELECT o.parent FROM orgs o JOIN anc ON o.id = anc.id WHERE o.parent IS NOT NULL
      ) SELECT 1 FROM anc WHERE anc.id = NEW.id
    ) BEGIN
      SELECT RAISE(ABORT, 'org tree: cycle (an org may not be moved below itself or one of its sub-orgs)');
    END;
    CREATE TRIGGER orgs_host_below_partner_insert BEFORE INSERT ON orgs
    WHEN NEW.kind = 'host' AND (SELECT kind FROM orgs WHERE id = NEW.parent) = 'partner' BEGIN
      SELECT RAISE(ABORT, 'org tree: a host org may not lie below a partner org');
    END;
    CREATE TRIGGER orgs_host_below_partner_update BEFORE UPDATE OF kind, parent ON orgs
    WHEN NEW.kind = 'host' AND (SELECT kind FROM orgs WHERE id = NEW.parent) = 'partner' BEGIN
      SELECT RAISE(ABORT, 'org tree: a host org may not lie below a partner org');
    END;
    CREATE TRIGGER orgs_partner_with_host_children BEFORE UPDATE OF kind ON orgs
    WHEN NEW.kind = 'partner' AND OLD.kind = 'host'
      AND EXISTS (SELECT 1 FROM orgs WHERE parent = NEW.id AND kind = 'host') BEGIN
      SELECT RAISE(ABORT, 'org tree: an org with host sub-orgs may not become a partner org');
    END;
    CREATE TRIGGER user_aliases_not_a_user_id_insert BEFORE INSERT ON user_aliases
    WHEN EXISTS (SELECT 1 FROM users WHERE id = NEW.alias) BEGIN
      SELECT RAISE(ABORT, 'user namespace: an alias may not equal a user id');
    END;
    CREATE TRIGGER user_aliases_not_a_user_id_update BEFORE UPDATE ON user_aliases
    WHEN EXISTS (SELECT 1 FROM users WHERE id = NEW.alias) BEGIN
      SELECT RAISE(ABORT, 'user namespace: an alias may not equal a user id');
    END;
    CREATE TRIGGER users_not_an_alias BEFORE INSERT ON users
    WHEN EXISTS (SELECT 1 FROM user_aliases WHERE alias = NEW.id) BEGIN
      SELECT RAISE(ABORT, 'user namespace: a user id may not equal another user''s alias');
    END;

    \(immutableKeyTriggers)
    \(journalTriggers)
    """
}

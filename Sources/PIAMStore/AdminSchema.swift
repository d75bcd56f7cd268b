extension Schema {
    /// Schema v2: the administration tables. Neither is a graph table: no journal triggers, so
    /// audit rows and access requests never change the graph's revision, and `export` leaves
    /// them out.
    ///
    /// - `audit`: one row per administrative attempt, allowed, refused or failed.
    /// - `access_requests`: roles users asked for, pending until approved or denied. A request
    ///   goes with its user, role and scope (`ON DELETE CASCADE`).
    static let v2 = """
    CREATE TABLE audit(
      id INTEGER PRIMARY KEY,
      at INTEGER NOT NULL,
      actor TEXT NOT NULL,
      operation TEXT NOT NULL,
      target TEXT NOT NULL,
      partner TEXT,
      actor_partner TEXT,
      decision TEXT NOT NULL CHECK(decision IN ('allowed', 'refused', 'failed')),
      reason TEXT NOT NULL,
      message TEXT,
      detail TEXT,
      revision INTEGER NOT NULL,
      batch TEXT
    ) STRICT;
    CREATE INDEX audit_at ON audit(at);
    CREATE INDEX audit_actor ON audit(actor);
    CREATE INDEX audit_partner ON audit(partner);
    CREATE INDEX audit_actor_partner ON audit(actor_partner);

    CREATE TABLE access_requests(
      id INTEGER PRIMARY KEY,
      user TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      role TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
      scope TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
      note TEXT,
      status TEXT NOT NULL DEFAULT 'pending' CHECK(status IN ('pending', 'approved', 'denied')),
      created_at INTEGER NOT NULL,
      decided_by TEXT,
      decided_at INTEGER,
      decision_note TEXT
    ) STRICT;
    CREATE UNIQUE INDEX access_requests_one_pending ON access_requests(user, role, scope) WHERE status = 'pending';
    CREATE INDEX access_requests_status ON access_requests(status);
    """
}

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

extension Schema {
    /// Schema v4: credentials for the administration service. None of these tables is a graph
    /// table (no journal triggers: creating a token or accepting an invitation's bookkeeping
    /// moves no revision; the user activation and alias an acceptance writes are journaled as
    /// usual), and `export` leaves them out.
    ///
    /// - `api_tokens`: API tokens for portals and automation. Only the SHA-256 of the secret
    ///   is kept (`hash`, lowercase hex); a token goes with its user (`ON DELETE CASCADE`).
    ///   `name` is unique per user. Times are milliseconds since the epoch; `expires_at` NULL =
    ///   no end; `revoked_at` set = revoked; `last_used_at` is written at most once a minute.
    /// - `invitations`: single-use, expiring invitation secrets (again only their hash) for
    ///   `invited` users; `used_at` marks the acceptance, `revoked_at` a resend or revocation.
    /// - `idempotency`: the stored response to a request carrying an `Idempotency-Key`, per
    ///   actor and key, with the hash of the request it answered.
    /// - `audit.credential`: how the actor of an audited attempt was authenticated
    ///   (`token:NAME#ID`, `jwt`, `header`, `cli`, `invitation`); NULL for rows written before.
    static let v4 = """
    CREATE TABLE api_tokens(
      id INTEGER PRIMARY KEY,
      user TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      name TEXT NOT NULL CHECK(length(CAST(name AS BLOB)) BETWEEN 1 AND 255),
      hash TEXT NOT NULL UNIQUE,
      created_at INTEGER NOT NULL,
      created_by TEXT,
      expires_at INTEGER,
      revoked_at INTEGER,
      last_used_at INTEGER,
      UNIQUE(user, name)
    ) STRICT;

    CREATE TABLE invitations(
      id INTEGER PRIMARY KEY,
      user TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      hash TEXT NOT NULL UNIQUE,
      created_at INTEGER NOT NULL,
      created_by TEXT,
      expires_at INTEGER NOT NULL,
      used_at INTEGER,
      revoked_at INTEGER
    ) STRICT;
    CREATE INDEX invitations_user ON invitations(user);

    CREATE TABLE idempotency(
      actor TEXT NOT NULL,
      key TEXT NOT NULL,
      request_hash TEXT NOT NULL,
      status INTEGER NOT NULL,
      body TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      PRIMARY KEY(actor, key)
    ) STRICT;
    CREATE INDEX idempotency_created_at ON idempotency(created_at);

    ALTER TABLE audit ADD COLUMN credential TEXT;
    """
}

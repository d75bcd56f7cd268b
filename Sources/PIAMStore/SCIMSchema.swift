extension Schema {
    /// Schema v5 added identity namespaces and SCIM provisioning (none journaled).
    static let scimVersion = 5

    /// Schema v5: identity namespaces and SCIM 2.0 provisioning. None of these tables is a
    /// graph table (no journal triggers: creating a SCIM token or renaming a SCIM group moves
    /// no revision — declaring a namespace does since v7, ``jit``, for piamd's JIT namespaces;
    /// the users, aliases and grants a SCIM request writes are journaled as usual through the
    /// administrative operations), and `export`
    /// leaves them out. Adding tables rewrites no row.
    ///
    /// - `identity_namespaces`: per partner root, the namespaces its people's aliases may use
    ///   (an issuer prefix `okta-acme|`, an e-mail domain `@acme.example`); they go with the
    ///   org (`ON DELETE CASCADE`).
    /// - `scim_tokens`: the bearer tokens of a partner's identity provider (SHA-256 only, as
    ///   `api_tokens`); each acts as `service_user`, the partner's SCIM service user.
    /// - `scim_users`: the SCIM view of a provisioned user — userName, externalId and the rest of
    ///   the SCIM resource as JSON (the attributes PIAM keeps no column for); it goes with the
    ///   user. Status, name and e-mail are the user's own.
    /// - `scim_groups`, `scim_group_members`, `scim_group_roles`: a partner's SCIM groups, their
    ///   members, and the PIAM roles each group maps to (maintained by the partner's admin).
    static let v5 = """
    CREATE TABLE identity_namespaces(
      partner TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
      namespace TEXT NOT NULL CHECK(length(CAST(namespace AS BLOB)) BETWEEN 2 AND 255),
      created_at INTEGER NOT NULL,
      created_by TEXT,
      PRIMARY KEY(partner, namespace)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX identity_namespaces_namespace ON identity_namespaces(namespace);

    CREATE TABLE scim_tokens(
      id INTEGER PRIMARY KEY,
      partner TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
      service_user TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      hash TEXT NOT NULL UNIQUE,
      created_at INTEGER NOT NULL,
      created_by TEXT,
      expires_at INTEGER,
      revoked_at INTEGER,
      last_used_at INTEGER
    ) STRICT;
    CREATE INDEX scim_tokens_partner ON scim_tokens(partner);

    CREATE TABLE scim_users(
      user TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      partner TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
      user_name TEXT NOT NULL,
      external_id TEXT,
      resource TEXT NOT NULL DEFAULT '{}' CHECK(json_valid(resource)),
      created_at INTEGER NOT NULL,
      modified_at INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE UNIQUE INDEX scim_users_user_name ON scim_users(partner, user_name COLLATE NOCASE);
    CREATE INDEX scim_users_external_id ON scim_users(partner, external_id);

    CREATE TABLE scim_groups(
      id TEXT PRIMARY KEY NOT NULL,
      partner TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
      display_name TEXT NOT NULL,
      external_id TEXT,
      created_at INTEGER NOT NULL,
      modified_at INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE UNIQUE INDEX scim_groups_display_name ON scim_groups(partner, display_name);

    CREATE TABLE scim_group_members(
      group_id TEXT NOT NULL REFERENCES scim_groups(id) ON DELETE CASCADE,
      user TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      PRIMARY KEY(group_id, user)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX scim_group_members_user ON scim_group_members(user);

    CREATE TABLE scim_group_roles(
      group_id TEXT NOT NULL REFERENCES scim_groups(id) ON DELETE CASCADE,
      role TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
      PRIMARY KEY(group_id, role)
    ) STRICT, WITHOUT ROWID;
    """
}

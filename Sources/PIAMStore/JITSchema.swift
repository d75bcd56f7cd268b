extension Schema {
    /// The schema version that added just-in-time creation (`partner_jit`) and journaled the
    /// identity namespaces: the migration after the access reviews' one. (When migrations are
    /// renumbered at a merge, this is the one number to change.)
    static let jitVersion = reviewsVersion + 1

    /// The tables whose rows piamd needs beside the graph — JIT settings and the identity
    /// namespaces they apply to — journaled (since v7) so that a follower re-reads them when
    /// they change. They are no graph tables: a follower applies no ``PIAMEngine/GraphChange``
    /// for them; it reloads ``PIAMEngine/JITNamespaces`` (``Store/jitNamespaces()``).
    public static let jitTables = ["identity_namespaces", "partner_jit"]

    /// Schema v7: just-in-time creation.
    ///
    /// - `partner_jit`: per partner root, JIT creation is enabled (a row) with the org where new
    ///   people land and the role they get there. Off by default (no row). It goes with the
    ///   partner root, with its org and with its role (`ON DELETE CASCADE`: a removed org or role
    ///   switches JIT off rather than keeping a setting nobody could apply).
    /// - Journal triggers on `partner_jit` and `identity_namespaces` (key: the partner, or
    ///   `[partner, namespace]`): changing either moves the revision, so piamd sees which
    ///   namespaces are JIT-enabled within a journal poll. Adding tables and triggers rewrites
    ///   no row; the migration journals nothing.
    static let jit = """
    CREATE TABLE partner_jit(
      partner TEXT PRIMARY KEY NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
      org TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
      role TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
      updated_at INTEGER NOT NULL,
      updated_by TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX partner_jit_org ON partner_jit(org);
    CREATE INDEX partner_jit_role ON partner_jit(role);

    CREATE TRIGGER journal_partner_jit_insert AFTER INSERT ON partner_jit BEGIN
      INSERT INTO journal("table", key, op) VALUES ('partner_jit', NEW.partner, 'insert');
    END;
    CREATE TRIGGER journal_partner_jit_update AFTER UPDATE ON partner_jit BEGIN
      INSERT INTO journal("table", key, op) VALUES ('partner_jit', NEW.partner, 'update');
    END;
    CREATE TRIGGER journal_partner_jit_delete AFTER DELETE ON partner_jit BEGIN
      INSERT INTO journal("table", key, op) VALUES ('partner_jit', OLD.partner, 'delete');
    END;
    CREATE TRIGGER journal_identity_namespaces_insert AFTER INSERT ON identity_namespaces BEGIN
      INSERT INTO journal("table", key, op) VALUES ('identity_namespaces', json_array(NEW.partner, NEW.namespace), 'insert');
    END;
    CREATE TRIGGER journal_identity_namespaces_delete AFTER DELETE ON identity_namespaces BEGIN
      INSERT INTO journal("table", key, op) VALUES ('identity_namespaces', json_array(OLD.partner, OLD.namespace), 'delete');
    END;
    """
}

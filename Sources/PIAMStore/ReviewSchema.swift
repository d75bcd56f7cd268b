extension Schema {
    /// The schema version that added access reviews (`review_campaigns`, `review_items`): the
    /// migration after the credentials one. (When migrations are renumbered at a merge, this is
    /// the one number to change.)
    static let reviewsVersion = scimVersion + 1

    /// Access reviews: campaigns and their items, frozen at a revision. Not graph tables (not
    /// journaled): what a review decides reaches the graph through the administrative
    /// operations it performs (`revoke`), which are journaled and audited as ever. One
    /// self-contained step.
    static let reviews = """
    CREATE TABLE review_campaigns(
      id INTEGER PRIMARY KEY,
      name TEXT NOT NULL CHECK(length(name) BETWEEN 1 AND 200),
      scope_kind TEXT NOT NULL CHECK(scope_kind IN ('all_partners', 'partner', 'role')),
      scope_id TEXT,
      due_at INTEGER NOT NULL,
      no_answer TEXT NOT NULL CHECK(no_answer IN ('keep', 'revoke', 'recommendation')),
      days INTEGER NOT NULL CHECK(days >= 0),
      status TEXT NOT NULL DEFAULT 'open' CHECK(status IN ('open', 'closed')),
      revision INTEGER NOT NULL,
      created_by TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      closed_by TEXT,
      closed_at INTEGER
    ) STRICT;

    CREATE TABLE review_items(
      id INTEGER PRIMARY KEY,
      campaign INTEGER NOT NULL REFERENCES review_campaigns(id) ON DELETE CASCADE,
      user TEXT NOT NULL,
      org TEXT NOT NULL,
      partner TEXT,
      role TEXT NOT NULL,
      scope TEXT NOT NULL,
      granted_by TEXT,
      granted_at INTEGER,
      last_use INTEGER,
      recommendation TEXT NOT NULL CHECK(recommendation IN ('keep', 'revoke')),
      reviewers TEXT NOT NULL,
      decision TEXT CHECK(decision IN ('keep', 'revoke')),
      decided_by TEXT,
      decided_at INTEGER,
      comment TEXT,
      outcome TEXT
    ) STRICT;
    CREATE INDEX review_items_campaign ON review_items(campaign, partner);
    """
}

import PIAMEngine

/// One flush interval's usage, in names, merged from every event loop: what
/// ``UsageDatabase/record(_:)`` adds to the file.
public struct UsageBatch: Sendable, Hashable {
    /// One (user, type, action): decisions allowed and denied, and the last allowed one's time.
    public struct Feature: Sendable, Hashable {
        public var user: String
        /// The user's partner root; empty for a host user.
        public var partner: String
        public var type: String
        public var action: String
        public var allowed: Int
        public var denied: Int
        /// Milliseconds since the epoch; nil when none was allowed.
        public var lastAllowed: Timestamp?
        /// The first allowed decision's time in the interval (the day it counts as active on,
        /// with `lastAllowed`'s).
        public var firstAllowed: Timestamp?

        public init(user: String, partner: String, type: String, action: String, allowed: Int, denied: Int,
                    firstAllowed: Timestamp?, lastAllowed: Timestamp?) {
            self.user = user
            self.partner = partner
            self.type = type
            self.action = action
            self.allowed = allowed
            self.denied = denied
            self.firstAllowed = firstAllowed
            self.lastAllowed = lastAllowed
        }
    }

    /// One holding that allowed decisions: how many, and the last one's time.
    public struct Holding: Sendable, Hashable {
        public var holding: HoldingKey
        public var uses: Int
        public var lastUsed: Timestamp

        public init(holding: HoldingKey, uses: Int, lastUsed: Timestamp) {
            self.holding = holding
            self.uses = uses
            self.lastUsed = lastUsed
        }
    }

    public var features: [Feature] = []
    public var holdings: [Holding] = []
    /// Tallies the event loops dropped since the last flush because their table was full.
    public var dropped = 0

    public init(features: [Feature] = [], holdings: [Holding] = [], dropped: Int = 0) {
        self.features = features
        self.holdings = holdings
        self.dropped = dropped
    }

    public var isEmpty: Bool { features.isEmpty && holdings.isEmpty && dropped == 0 }
}

/// A usage database: one SQLite file a piamd owns and writes (`usage.path`), separate from the
/// graph database (which piamd only reads). Several hosts each write their own; the reports
/// (``UsageReader``) merge any number of them.
///
/// Tables (all cumulative since the file was created):
/// - `feature_use(user, partner, type, action, allowed, denied, last_allowed)`: per person and
///   feature (`type:action`), decisions allowed and denied and the last allowed one;
/// - `holding_use(kind, subject, role, scope, uses, last_used)`: per holding (`assignment`:
///   subject = user, scope = the assignment's scope; `org_grant`: subject = the org, scope
///   empty), the decisions it allowed and the last one;
/// - `active_day(day, partner, user)`: the days (UTC, days since the epoch) on which each person
///   was allowed at least one decision;
/// - `usage_meta(key, value)`: `schema`, `dropped` (tallies dropped over the file's life),
///   `flushes`, `last_flush` (ms since the epoch).
///
/// Each flush is one transaction: a crash loses at most the interval not yet flushed, and never
/// leaves half a flush.
public final class UsageDatabase {
    /// The schema version this code writes (`usage_meta.schema`).
    public static let schemaVersion = 1
    public let database: Database

    /// Opens (creating when absent) the usage database at `path`.
    public init(path: String) throws(PIAMError) {
        database = try Database(path: path, create: true)
        // Flushes upsert rows all over the tables' keys: a page cache of 64 MiB keeps a day's
        // B-tree interior in memory (the default 2 MiB made each upsert a read from disk).
        try database.execute("PRAGMA cache_size = -65536")
        try database.withTransaction(immediate: true) { () throws(PIAMError) in
            try database.execute(Self.schema)
            if let v = try database.scalarInt("SELECT CAST(value AS INTEGER) FROM usage_meta WHERE key='schema'") {
                if v > Int64(Self.schemaVersion) {
                    throw PIAMError(.database, "\(path): usage database schema \(v) is newer than this piamd's (\(Self.schemaVersion))")
                }
            } else {
                try database.execute("INSERT INTO usage_meta(key, value) VALUES ('schema', '\(Self.schemaVersion)')")
            }
        }
    }

    static let schema = """
        CREATE TABLE IF NOT EXISTS usage_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS feature_use(
            user TEXT NOT NULL, partner TEXT NOT NULL, type TEXT NOT NULL, action TEXT NOT NULL,
            allowed INTEGER NOT NULL, denied INTEGER NOT NULL, last_allowed INTEGER,
            PRIMARY KEY(user, type, action)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS holding_use(
            kind TEXT NOT NULL, subject TEXT NOT NULL, role TEXT NOT NULL, scope TEXT NOT NULL,
            uses INTEGER NOT NULL, last_used INTEGER NOT NULL,
            PRIMARY KEY(kind, subject, role, scope)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS active_day(
            day INTEGER NOT NULL, partner TEXT NOT NULL, user TEXT NOT NULL,
            PRIMARY KEY(day, partner, user)) WITHOUT ROWID;
        """

    /// One person's row of `active_day` (with the day ``knownDay``).
    struct ActiveKey: Hashable {
        var partner: String
        var user: String
    }

    /// The most (partner, user) pairs ``knownActive`` remembers: about 8 MB of set with ids
    /// under 16 bytes (kept inline), ~30 MB with 40-byte ids. Past it the rest are
    /// written (an `INSERT OR IGNORE`) every flush, as before.
    static let knownActiveLimit = 131_072
    /// The UTC day ``knownActive`` is about.
    private(set) var knownDay = Int64.min
    /// The people this object has committed to `active_day` for ``knownDay``: their rows exist,
    /// so a flush skips them (each flush's people are mostly the last one's, and the insert
    /// that finds its row already there is a B-tree descent for nothing). Nothing else deletes
    /// from the file, and a failed flush adds nothing here.
    private(set) var knownActive: Set<ActiveKey> = []

    /// Adds one interval's usage, in one transaction; `now` is stamped as `last_flush`.
    public func record(_ batch: UsageBatch, now: Timestamp) throws(PIAMError) {
        var marked: [(day: Int64, key: ActiveKey)] = []
        try database.withTransaction(immediate: true) { () throws(PIAMError) in
            let feature = try database.cached("""
                INSERT INTO feature_use(user, partner, type, action, allowed, denied, last_allowed)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                ON CONFLICT(user, type, action) DO UPDATE SET
                  partner = excluded.partner,
                  allowed = allowed + excluded.allowed, denied = denied + excluded.denied,
                  last_allowed = CASE WHEN excluded.last_allowed IS NULL THEN last_allowed
                                      WHEN last_allowed IS NULL THEN excluded.last_allowed
                                      ELSE max(last_allowed, excluded.last_allowed) END
                """)
            let day = try database.cached("INSERT OR IGNORE INTO active_day(day, partner, user) VALUES (?1, ?2, ?3)")
            func markActive(_ d: Int64, _ key: ActiveKey) throws(PIAMError) {
                if d == knownDay && knownActive.contains(key) { return }
                day.bind(1, d)
                day.bind(2, key.partner)
                day.bind(3, key.user)
                try day.run()
                marked.append((d, key))
            }
            // In the batch's order, unsorted: sorting the rows by key cost more than it saved.
            // A flush's keys are a few thousand of a file's millions, so they rarely share a
            // leaf page, and the interior pages stay in the cache either way (`piam-scale
            // usage`'s writer figure: a flush without the sorts took 0.89× the time).
            for f in batch.features {
                feature.bind(1, f.user)
                feature.bind(2, f.partner)
                feature.bind(3, f.type)
                feature.bind(4, f.action)
                feature.bind(5, f.allowed)
                feature.bind(6, f.denied)
                feature.bind(7, f.lastAllowed)
                try feature.run()
                guard let first = f.firstAllowed ?? f.lastAllowed else { continue }
                let key = ActiveKey(partner: f.partner, user: f.user)
                let firstDay = Self.day(first), lastDay = Self.day(f.lastAllowed ?? first)
                try markActive(firstDay, key)
                if lastDay != firstDay { try markActive(lastDay, key) }
            }
            let holding = try database.cached("""
                INSERT INTO holding_use(kind, subject, role, scope, uses, last_used) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                ON CONFLICT(kind, subject, role, scope) DO UPDATE SET
                  uses = uses + excluded.uses, last_used = max(last_used, excluded.last_used)
                """)
            for h in batch.holdings {
                let (kind, subject, role, scope) = Self.columns(h.holding)
                holding.bind(1, kind)
                holding.bind(2, subject)
                holding.bind(3, role)
                holding.bind(4, scope)
                holding.bind(5, h.uses)
                holding.bind(6, h.lastUsed)
                try holding.run()
            }
            let meta = try database.cached("""
                INSERT INTO usage_meta(key, value) VALUES (?1, ?2)
                ON CONFLICT(key) DO UPDATE SET value = CASE ?3 WHEN 1 THEN CAST(value AS INTEGER) + CAST(excluded.value AS INTEGER) ELSE excluded.value END
                """)
            for (key, value, add) in [("dropped", Int64(batch.dropped), true), ("flushes", 1, true), ("last_flush", now, false)] {
                meta.bind(1, key)
                meta.bind(2, String(value))
                meta.bind(3, add)
                try meta.run()
            }
        }
        // Committed: these rows exist now.
        for (d, key) in marked {
            if d > knownDay {
                knownDay = d
                knownActive.removeAll(keepingCapacity: true)
            }
            if d == knownDay && knownActive.count < Self.knownActiveLimit { knownActive.insert(key) }
        }
    }

    /// Days since the epoch (UTC) of a time in milliseconds.
    public static func day(_ t: Timestamp) -> Int64 { t >= 0 ? t / 86_400_000 : (t - 86_399_999) / 86_400_000 }

    static func columns(_ h: HoldingKey) -> (String, String, String, String) {
        switch h {
        case .assignment(let user, let role, let scope): ("assignment", user, role, scope)
        case .orgGrant(let org, let role): ("org_grant", org, role, "")
        }
    }
}

@available(*, unavailable)
extension UsageDatabase: Sendable {}

#if canImport(Glibc)
import Glibc
#endif
import PIAMEngine

/// The usage files of one or more piamd hosts, merged: the reports behind `piamctl usage` and
/// the facts behind dormant-access findings and review recommendations.
///
/// Each file is copied into one in-memory database when the reader opens (counts summed, times
/// the latest of any host), so any number of hosts merge and a host's piamd may go on writing
/// its file meanwhile (each copy reads one committed state of it).
public final class UsageReader {
    let db: Database
    /// The files read, in order.
    public let paths: [String]

    /// Reads `paths` (usage databases written by piamd's `usage.path`).
    ///
    /// - Throws: ``PIAMError`` `not_found` for a missing file, `database` for a file that is not
    ///   a usage database.
    public init(paths: [String]) throws(PIAMError) {
        self.paths = paths
        db = try Database(path: ":memory:")
        try db.execute("""
            CREATE TABLE f(user TEXT, partner TEXT, type TEXT, action TEXT, allowed INTEGER, denied INTEGER, last_allowed INTEGER);
            CREATE TABLE h(kind TEXT, subject TEXT, role TEXT, scope TEXT, uses INTEGER, last_used INTEGER);
            CREATE TABLE d(day INTEGER, partner TEXT, user TEXT, PRIMARY KEY(day, partner, user)) WITHOUT ROWID;
            """)
        for path in paths {
            guard access(path, F_OK) == 0 else { throw PIAMError(.notFound, "usage file \(path) does not exist") }
            let attach = try db.prepare("ATTACH DATABASE ?1 AS u")
            attach.bind(1, path)
            try attach.run()
            do throws(PIAMError) {
                guard try db.scalarText("SELECT value FROM u.usage_meta WHERE key = 'schema'") != nil else {
                    throw PIAMError(.database, "\(path) is not a PIAM usage database")
                }
                try db.withTransaction { () throws(PIAMError) in
                    try db.execute("""
                        INSERT INTO f SELECT user, partner, type, action, allowed, denied, last_allowed FROM u.feature_use;
                        INSERT INTO h SELECT kind, subject, role, scope, uses, last_used FROM u.holding_use;
                        INSERT OR IGNORE INTO d SELECT day, partner, user FROM u.active_day;
                        """)
                }
            } catch {
                try? db.execute("DETACH DATABASE u")
                if error.message.contains("no such table") {
                    throw PIAMError(.database, "\(path) is not a PIAM usage database")
                }
                throw error
            }
            try db.execute("DETACH DATABASE u")
        }
        try db.execute("""
            CREATE TABLE feature AS SELECT user, max(partner) AS partner, type, action, sum(allowed) AS allowed,
              sum(denied) AS denied, max(last_allowed) AS last_allowed FROM f GROUP BY user, type, action;
            CREATE INDEX feature_partner ON feature(partner);
            CREATE TABLE holding AS SELECT kind, subject, role, scope, sum(uses) AS uses, max(last_used) AS last_used
              FROM h GROUP BY kind, subject, role, scope;
            CREATE INDEX holding_key ON holding(kind, subject, role, scope);
            DROP TABLE f; DROP TABLE h;
            """)
    }

    /// The usage files `given` names: each a file, or a directory whose `*.db` files are read
    /// (sorted by name).
    ///
    /// - Parameter allowEmpty: whether directories without any usage file yet (piamd has not
    ///   flushed) are read as no use rather than refused.
    /// - Throws: ``PIAMError`` `not_found` for a path that does not exist, or no file at all
    ///   unless `allowEmpty`.
    public static func files(_ given: [String], allowEmpty: Bool = false) throws(PIAMError) -> [String] {
        var out: [String] = []
        for p in given {
            var st = stat()
            guard stat(p, &st) == 0 else { throw PIAMError(.notFound, "usage path \(p) does not exist") }
            if (st.st_mode & S_IFMT) == S_IFDIR {
                guard let dir = opendir(p) else { throw PIAMError(.io, "usage path \(p): cannot read the directory") }
                var names: [String] = []
                while let e = readdir(dir) {
                    let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                    if name.hasSuffix(".db") { names.append(name) }
                }
                closedir(dir)
                out += names.sorted().map { p.hasSuffix("/") ? p + $0 : p + "/" + $0 }
            } else {
                out.append(p)
            }
        }
        guard !out.isEmpty || allowEmpty else { throw PIAMError(.notFound, "no usage files (*.db) in \(given.joined(separator: ", "))") }
        return out
    }

    // MARK: Facts

    /// The last allowed decision of every person and the last use of every holding, for
    /// findings and reviews.
    public func facts() throws(PIAMError) -> UsageSnapshot {
        var users: [String: Timestamp] = [:]
        let u = try db.prepare("SELECT user, max(last_allowed) FROM feature WHERE last_allowed IS NOT NULL GROUP BY user")
        while try u.step() { users[u.text(0)] = u.int64(1) }
        var holdings: [HoldingKey: Timestamp] = [:]
        let h = try db.prepare("SELECT kind, subject, role, scope, last_used FROM holding")
        while try h.step() {
            let key: HoldingKey = h.text(0) == "org_grant"
                ? .orgGrant(org: h.text(1), role: h.text(2))
                : .assignment(user: h.text(1), role: h.text(2), scope: h.text(3))
            holdings[key] = h.int64(4)
        }
        return UsageSnapshot(lastAllowed: users, lastUse: holdings)
    }

    // MARK: Reports

    /// Days since the epoch (UTC) of `now`.
    static func today(_ now: Timestamp) -> Int64 { UsageDatabase.day(now) }

    /// People of `partner` with an allowed decision on at least one of the last `days` days
    /// (today included).
    public func activePeople(partner: String, days: Int, now: Timestamp) throws(PIAMError) -> Int {
        let s = try db.prepare("SELECT count(DISTINCT user) FROM d WHERE partner = ?1 AND day > ?2")
        s.bind(1, partner)
        s.bind(2, Self.today(now) - Int64(days))
        _ = try s.step()
        return Int(s.int64(0))
    }

    /// The features (`type:action`) of `partner`'s people (every partner's, for nil), most used
    /// first: by people allowed at least once, then by allowed decisions.
    public func features(partner: String?, user: String? = nil, limit: Int = 20) throws(PIAMError) -> [UsageReport.Feature] {
        var conditions: [String] = []
        if partner != nil { conditions.append("partner = ?1") }
        if user != nil { conditions.append("user = ?2") }
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let s = try db.prepare("""
            SELECT type, action, count(DISTINCT CASE WHEN allowed > 0 THEN user END) AS people, sum(allowed), sum(denied), max(last_allowed)
            FROM feature \(filter) GROUP BY type, action
            ORDER BY people DESC, sum(allowed) DESC, sum(denied) DESC, type, action LIMIT ?3
            """)
        s.bind(1, partner)
        s.bind(2, user)
        s.bind(3, limit)
        return try s.rows {
            UsageReport.Feature(feature: "\($0.text(0)):\($0.text(1))", people: Int($0.int64(2)), allowed: Int($0.int64(3)),
                                denied: Int($0.int64(4)), lastAllowed: $0.optionalInt64(5).map(RFC3339.format))
        }
    }

    /// The last allowed decision of `user`, or nil.
    public func lastActivity(user: String) throws(PIAMError) -> Timestamp? {
        let s = try db.prepare("SELECT max(last_allowed) FROM feature WHERE user = ?1")
        s.bind(1, user)
        _ = try s.step()
        return s.optionalInt64(0)
    }

    /// Uses and last use of one holding, or nil if it never allowed a decision.
    public func use(of holding: HoldingKey) throws(PIAMError) -> (uses: Int, lastUsed: Timestamp)? {
        let (kind, subject, role, scope) = UsageDatabase.columns(holding)
        let s = try db.cached("SELECT uses, last_used FROM holding WHERE kind = ?1 AND subject = ?2 AND role = ?3 AND scope = ?4")
        s.bind(1, kind)
        s.bind(2, subject)
        s.bind(3, role)
        s.bind(4, scope)
        guard try s.step() else { return nil }
        return (Int(s.int64(0)), s.int64(1))
    }

    /// Every partner with recorded use, ranked by people active over 30 days, then decisions.
    public func partnerRanking(now: Timestamp) throws(PIAMError) -> [UsageReport.PartnerActivity] {
        let s = try db.prepare("""
            SELECT p.partner,
              (SELECT count(DISTINCT user) FROM d WHERE d.partner = p.partner AND d.day > ?1),
              (SELECT count(DISTINCT user) FROM d WHERE d.partner = p.partner AND d.day > ?2),
              sum(p.allowed), sum(p.denied), max(p.last_allowed)
            FROM feature p WHERE p.partner != '' GROUP BY p.partner
            """)
        s.bind(1, Self.today(now) - 30)
        s.bind(2, Self.today(now) - 7)
        var out = try s.rows {
            UsageReport.PartnerActivity(partner: $0.text(0), active30: Int($0.int64(1)), active7: Int($0.int64(2)),
                                        allowed: Int($0.int64(3)), denied: Int($0.int64(4)),
                                        lastActivity: $0.optionalInt64(5).map(RFC3339.format))
        }
        out.sort { ($0.active30, $0.allowed, $1.partner) > ($1.active30, $1.allowed, $0.partner) }
        return out
    }
}

@available(*, unavailable)
extension UsageReader: Sendable {}

/// Usage facts read once from the files (see ``UsageReader/facts()``).
public struct UsageSnapshot: UsageFacts {
    public let lastAllowed: [String: Timestamp]
    public let lastUse: [HoldingKey: Timestamp]

    public init(lastAllowed: [String: Timestamp], lastUse: [HoldingKey: Timestamp]) {
        self.lastAllowed = lastAllowed
        self.lastUse = lastUse
    }

    public func lastAllowed(user: String) -> Timestamp? { lastAllowed[user] }
    public func lastUse(of holding: HoldingKey) -> Timestamp? { lastUse[holding] }
}

/// The documents of `piamctl usage` (and the admin API's usage reads).
public enum UsageReport {
    /// One feature (`type:action`): people allowed it at least once, decisions allowed and denied.
    public struct Feature: Codable, Sendable, Hashable {
        public var feature: String
        public var people: Int
        public var allowed: Int
        public var denied: Int
        public var lastAllowed: String?
        enum CodingKeys: String, CodingKey {
            case feature, people, allowed, denied
            case lastAllowed = "last_allowed"
        }
        /// Every key, an absent time as `null` (as the admin API's documents have it).
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(feature, forKey: .feature); try c.encode(people, forKey: .people)
            try c.encode(allowed, forKey: .allowed); try c.encode(denied, forKey: .denied)
            try c.encode(lastAllowed, forKey: .lastAllowed)
        }
    }

    /// One partner's activity, for the ranking across the business.
    public struct PartnerActivity: Codable, Sendable, Hashable {
        public var partner: String
        public var active30: Int
        public var active7: Int
        public var allowed: Int
        public var denied: Int
        public var lastActivity: String?
        enum CodingKeys: String, CodingKey {
            case partner, allowed, denied
            case active30 = "active_30d"
            case active7 = "active_7d"
            case lastActivity = "last_activity"
        }
        /// Every key, an absent time as `null`.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(partner, forKey: .partner); try c.encode(active30, forKey: .active30)
            try c.encode(active7, forKey: .active7); try c.encode(allowed, forKey: .allowed)
            try c.encode(denied, forKey: .denied); try c.encode(lastActivity, forKey: .lastActivity)
        }
    }

    /// `piamctl usage partner P`.
    public struct Partner: Codable, Sendable, Hashable {
        public var partner: String
        /// People of the partner (its whole subtree) by status.
        public var usersByStatus: [String: Int]
        /// People allowed at least one decision over the last 1, 7, 30 and 90 days.
        public var active: [String: Int]
        /// Features most used by people, then by decisions.
        public var features: [Feature]
        enum CodingKeys: String, CodingKey {
            case partner, active, features
            case usersByStatus = "users_by_status"
        }
    }

    /// One holding of a person and its last use.
    public struct HoldingUse: Codable, Sendable, Hashable {
        /// `assignment` or `org_grant`.
        public var source: String
        public var role: String
        public var scope: String
        /// For an org grant: the org it is made on.
        public var grantOrg: String?
        /// `effective`, `expired`, `outside_ceiling` or `out_of_bounds` (the engine's word).
        public var state: String
        public var uses: Int
        public var lastUsed: String?
        enum CodingKeys: String, CodingKey {
            case source, role, scope, state, uses
            case grantOrg = "grant_org"
            case lastUsed = "last_used"
        }
        /// Every key, absent values as `null`.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(source, forKey: .source); try c.encode(role, forKey: .role); try c.encode(scope, forKey: .scope)
            try c.encode(grantOrg, forKey: .grantOrg); try c.encode(state, forKey: .state)
            try c.encode(uses, forKey: .uses); try c.encode(lastUsed, forKey: .lastUsed)
        }
    }

    /// `piamctl usage user U`.
    public struct User: Codable, Sendable, Hashable {
        public var user: String
        public var partner: String?
        public var status: String
        public var lastActivity: String?
        public var features: [Feature]
        public var holdings: [HoldingUse]
        enum CodingKeys: String, CodingKey {
            case user, partner, status, features, holdings
            case lastActivity = "last_activity"
        }
        /// Every key, absent values as `null`.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(user, forKey: .user); try c.encode(partner, forKey: .partner); try c.encode(status, forKey: .status)
            try c.encode(lastActivity, forKey: .lastActivity); try c.encode(features, forKey: .features)
            try c.encode(holdings, forKey: .holdings)
        }
    }
}

extension UsageReader {
    /// `piamctl usage partner P`: `partner`'s people by status (from `graph`) and its use.
    public func partnerReport(_ partner: String, graph: AccessGraph, now: Timestamp, limit: Int = 20) throws(PIAMError) -> UsageReport.Partner {
        guard graph.partnerRoot(ofOrg: partner) == partner else {
            throw PIAMError(.notFound, "\(partner) is not a partner (a partner root org)")
        }
        let byStatus = graph.userCountsByStatus(inSubtreeOf: partner)
        var active: [String: Int] = [:]
        for days in [1, 7, 30, 90] { active["\(days)d"] = try activePeople(partner: partner, days: days, now: now) }
        return UsageReport.Partner(partner: partner, usersByStatus: byStatus, active: active,
                                   features: try features(partner: partner, limit: limit))
    }

    /// `piamctl usage user U`: last activity, most used features, every holding with its last use.
    public func userReport(_ user: String, graph: AccessGraph, now: Timestamp, limit: Int = 20) throws(PIAMError) -> UsageReport.User {
        guard let id = graph.userID(for: user), let report = graph.accessReport(user: id, now: now) else {
            throw PIAMError(.notFound, "no user \(user)")
        }
        let holdings = try report.holdings.map { h throws(PIAMError) in
            let key: HoldingKey = h.source == "org_grant"
                ? .orgGrant(org: h.grantOrg ?? h.scope, role: h.role)
                : .assignment(user: id, role: h.role, scope: h.scope)
            let use = try self.use(of: key)
            return UsageReport.HoldingUse(source: h.source, role: h.role, scope: h.scope, grantOrg: h.grantOrg, state: h.state,
                                          uses: use?.uses ?? 0, lastUsed: use.map { RFC3339.format($0.lastUsed) })
        }
        return UsageReport.User(user: id, partner: graph.partnerRoot(ofOrg: report.org), status: report.status,
                                lastActivity: try lastActivity(user: id).map(RFC3339.format),
                                features: try features(partner: nil, user: id, limit: limit), holdings: holdings)
    }
}

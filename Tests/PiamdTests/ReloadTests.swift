import Foundation
import PIAMClient
import PIAMDemo
import PIAMEngine
import PIAMStore
import PIAMWire
import Testing

/// The daemon's STATUS document as JSON.
func statusDocument(_ c: PIAMClient) async throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(try await c.status().json.utf8)) as? [String: Any])
}

/// STATUS `reloads.<key>` (applies, full_reloads, …).
func reloadCounter(_ doc: [String: Any], _ key: String) -> Int {
    (doc["reloads"] as? [String: Any])?[key] as? Int ?? -1
}

/// Polls STATUS until `ok` holds (10 s at most); returns the last document.
@discardableResult
func waitForStatus(_ c: PIAMClient, _ ok: ([String: Any]) -> Bool) async throws -> [String: Any] {
    var doc: [String: Any] = [:]
    for _ in 0..<200 {
        doc = try await statusDocument(c)
        if ok(doc) { return doc }
        try await Task.sleep(for: .milliseconds(50))
    }
    return doc
}

extension Fixture {
    /// Runs `body` in one write transaction on the database and returns the revision it produced.
    @discardableResult
    func write(_ body: (Database) throws -> Void) throws -> Int64 {
        let store = try Store(path: db)
        try store.db.withTransaction(immediate: true) { () throws(PIAMError) in
            do { try body(store.db) } catch let e as PIAMError { throw e } catch { throw PIAMError(.database, "\(error)") }
        }
        return try store.revision()
    }

    /// Overwrites the database's first 100 bytes (its SQLite header) in place with garbage,
    /// after a checkpoint (so that SQLite reads page 1 from the file, not from the WAL).
    ///
    /// Raw file access: this process must hold no SQLite connection to the file meanwhile (a
    /// `close()` would drop its locks); the checkpoint's connection is closed before the write.
    func corruptHeader() throws {
        try Store(path: db).db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        let fd = open(db, O_WRONLY)
        guard fd >= 0 else { throw PIAMError(.io, "cannot open \(db): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let garbage = [UInt8](repeating: 0x5A, count: 100)
        guard pwrite(fd, garbage, garbage.count, 0) == garbage.count else { throw PIAMError(.io, "cannot write \(db)") }
    }

    /// A complete copy of the database at `path` (VACUUM INTO), and the original's WAL
    /// checkpointed and truncated, so renaming the copy over the original later mixes no frames.
    func snapshotCopy(to path: String) throws {
        let store = try Store(path: db)
        try store.db.execute("VACUUM INTO '\(path)'")
        try store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    }
}

/// A random but valid sequence of writes over every graph table, as plain SQL.
struct RandomWriter {
    var rng: SplitMix64
    var serial = 0
    let now = Int64(Date().timeIntervalSince1970 * 1000)
    static let permissions = ["claim:read", "claim:submit", "claim:withdraw:owner", "claim:*", "policy:read", "policy:update",
                              "document:read", "user:view", "user:suspend", "user:*", "org:view", "org:update", "org:*",
                              "user:assign_role", "user:request_role:owner"]
    static let types = ["claim", "policy", "document"]

    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    mutating func pick(_ db: Database, _ sql: String) throws -> String? {
        let s = try db.prepare(sql)
        let all = try s.rows { $0.text(0) }
        return all.randomElement(using: &rng)
    }

    mutating func q(_ s: String?) -> String { s.map { "'\($0.replacingOccurrences(of: "'", with: "''"))'" } ?? "NULL" }

    /// A time far from now (so the daemon's and the test's clocks agree on it), or NULL.
    mutating func time() -> String {
        switch Int.random(in: 0..<3, using: &rng) {
        case 0: "NULL"
        case 1: "\(now - 86_400_000 * Int64.random(in: 2...90, using: &rng))"
        default: "\(now + 86_400_000 * Int64.random(in: 2...90, using: &rng))"
        }
    }

    /// One SQL statement of a random kind, on the database's current rows.
    mutating func statement(_ db: Database) throws -> String {
        serial += 1
        let n = serial
        // A random row's column (ORDER BY: the seed alone decides, not SQLite's row order).
        func any(_ t: String, _ col: String = "id") throws -> String { try pick(db, "SELECT \(col) FROM \(t) ORDER BY 1") ?? "host" }
        // A random row's two key columns as an SQL row value.
        func pair(_ t: String, _ a: String, _ b: String) throws -> String {
            let s = try db.prepare("SELECT \(a), \(b) FROM \(t) ORDER BY 1, 2")
            let row = try s.rows { ($0.text(0), $0.text(1)) }.randomElement(using: &rng) ?? ("", "")
            return "(\(q(row.0)), \(q(row.1)))"
        }
        switch Int.random(in: 0..<30, using: &rng) {
        case 0, 1:
            let org = try any("orgs WHERE kind = 'partner'")
            return "INSERT INTO users(id, org, status, valid_until) VALUES ('u\(n)', \(q(org)), '\(["active", "active", "invited", "suspended"].randomElement(using: &rng)!)', \(time()))"
        case 2: return "UPDATE users SET status = '\(["active", "suspended", "invited"].randomElement(using: &rng)!)' WHERE id = \(q(try any("users")))"
        case 3: return "UPDATE users SET valid_until = \(time()) WHERE id = \(q(try any("users")))"
        case 4: return "UPDATE users SET org = \(q(try any("orgs"))) WHERE id = \(q(try any("users")))"
        case 5: return "DELETE FROM users WHERE id = \(q(try any("users")))"
        case 6: return "INSERT INTO user_aliases(alias, user) VALUES ('a\(n)', \(q(try any("users"))))"
        case 7: return "UPDATE user_aliases SET user = \(q(try any("users"))) WHERE alias = \(q(try any("user_aliases", "alias")))"
        case 8: return "DELETE FROM user_aliases WHERE alias = \(q(try any("user_aliases", "alias")))"
        case 9:
            return "INSERT INTO orgs(id, parent, name, kind, status) VALUES ('o\(n)', \(q(try any("orgs WHERE kind = 'partner'"))), 'O', 'partner', '\(["active", "active", "suspended", "pending"].randomElement(using: &rng)!)')"
        case 10: return "UPDATE orgs SET status = '\(["active", "suspended", "pending"].randomElement(using: &rng)!)' WHERE id = \(q(try any("orgs WHERE kind = 'partner'")))"
        case 11: return "UPDATE orgs SET parent = \(q(try any("orgs"))) WHERE id = \(q(try any("orgs WHERE kind = 'partner'")))"
        case 12: return "DELETE FROM orgs WHERE id = \(q(try any("orgs WHERE kind = 'partner'")))"
        case 13:
            let perms = (0..<Int.random(in: 1...4, using: &rng)).map { _ in Self.permissions.randomElement(using: &rng)! }
            return "INSERT INTO roles(id, permissions) VALUES ('r\(n)', '\(JSONArray(perms))')"
        case 14:
            let perms = (0..<Int.random(in: 0...4, using: &rng)).map { _ in Self.permissions.randomElement(using: &rng)! }
            return "UPDATE roles SET permissions = '\(JSONArray(perms))' WHERE id = \(q(try any("roles WHERE id NOT IN ('host-admin')")))"
        case 15: return "DELETE FROM roles WHERE id = \(q(try any("roles WHERE id NOT IN ('host-admin', 'partner-admin')")))"
        case 16: return "INSERT INTO entitlements(org, role) VALUES (\(q(try any("orgs"))), \(q(try any("roles"))))"
        case 17: return "DELETE FROM entitlements WHERE (org, role) = \(try pair("entitlements", "org", "role"))"
        case 18, 19:
            return "INSERT INTO assignments(user, role, scope, valid_until) VALUES (\(q(try any("users"))), \(q(try any("roles"))), \(q(try any("orgs"))), \(time()))"
        case 20: return "UPDATE assignments SET valid_until = \(time()) WHERE id = \(try any("assignments"))"
        case 21: return "DELETE FROM assignments WHERE id = \(try any("assignments"))"
        case 22:
            return "INSERT INTO org_grants(org, role, include_suborgs, valid_until) VALUES (\(q(try any("orgs"))), \(q(try any("roles"))), \(Int.random(in: 0...1, using: &rng)), \(time()))"
        case 23: return "UPDATE org_grants SET include_suborgs = 1 - include_suborgs, valid_until = \(time()) WHERE id = \(try any("org_grants"))"
        case 24: return "DELETE FROM org_grants WHERE id = \(try any("org_grants"))"
        case 25:
            let owner = Bool.random(using: &rng) ? q(try any("users")) : "NULL"
            return "INSERT INTO resources(type, id, org, owner, shared) VALUES ('\(Self.types.randomElement(using: &rng)!)', 'R\(n)', \(q(try any("orgs"))), \(owner), \(Int.random(in: 0...1, using: &rng)))"
        case 26:
            let owner = Bool.random(using: &rng) ? q(try any("users")) : "NULL"
            return "UPDATE resources SET owner = \(owner), shared = \(Int.random(in: 0...1, using: &rng)) WHERE (type, id) = \(try pair("resources", "type", "id"))"
        case 27: return "UPDATE resources SET org = \(q(try any("orgs"))) WHERE (type, id) = \(try pair("resources", "type", "id"))"
        case 28: return "DELETE FROM resources WHERE (type, id) = \(try pair("resources", "type", "id"))"
        default: return "UPDATE orgs SET status = 'active' WHERE id = \(q(try any("orgs WHERE status <> 'active'")))"
        }
    }

    func JSONArray(_ items: [String]) -> String { "[" + items.map { "\"\($0)\"" }.joined(separator: ",") + "]" }

    /// One transaction of 1–3 statements; a statement the graph's constraints refuse is undone
    /// alone (a savepoint), the rest commits. Returns the statements that took effect.
    mutating func step(_ store: Store) throws -> [String] {
        var done: [String] = []
        try store.db.withTransaction(immediate: true) { () throws(PIAMError) in
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let sql: String
                do { sql = try statement(store.db) } catch let e as PIAMError { throw e } catch { throw PIAMError(.database, "\(error)") }
                try store.db.execute("SAVEPOINT op")
                do throws(PIAMError) {
                    try store.db.execute(sql)
                    done.append(sql)
                } catch {
                    try store.db.execute("ROLLBACK TO op")
                }
                try store.db.execute("RELEASE op")
            }
        }
        return done
    }
}

extension DaemonProcess {
    /// Waits until the kernel reports the daemon stopped (state T after SIGSTOP): kill(2) returns
    /// before every thread has stopped.
    func waitUntilStopped() async throws {
        for _ in 0..<200 {
            let stat = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8)) ?? ""
            if let close = stat.lastIndex(of: ")"), stat[stat.index(close, offsetBy: 2)] == "T" { return }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw PIAMError(.server, "piamd did not stop after SIGSTOP")
    }
}

@Suite("piamd follows the journal (the real binary)", .serialized)
struct ReloadTests {
    @Test("randomized differential: after every random write the daemon answers as a graph loaded from scratch, without full reloads")
    func differential() async throws {
        let env = ProcessInfo.processInfo.environment
        let seed = env["PIAM_DIFF_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 0..<UInt64.max)
        let steps = env["PIAM_DIFF_STEPS"].flatMap(Int.init) ?? 500
        let f = try Fixture()
        let d = try await DaemonProcess(f, env: ["PIAMD_CONSISTENCY_TIMEOUT_MS": "5000", "PIAMD_RELOAD_POLL_MS": "0"])
        let c = try await d.client()
        let before = try await statusDocument(c)
        var writer = RandomWriter(seed: seed)
        let store = try Store(path: f.db)
        var rng = SplitMix64(seed: seed ^ 0x5eed)
        var compared = 0, written = 0
        var tablesTouched = Set<String>()
        stepLoop: for step in 0..<steps {
            let sqls = try writer.step(store)
            written += sqls.count
            for s in sqls { tablesTouched.insert(s) }
            let local = try Store(path: f.db, readOnly: true).loadGraph()
            let rev = local.revision
            let g = local.graph
            let now = QueryEvaluatorClock.now()
            let context: Comment = "seed \(seed) (PIAM_DIFF_SEED), step \(step), revision \(rev), writes: \(sqls)"
            // Checks: random ones, plus the users the step's statements named as subjects.
            var checks = randomChecks(g, count: 24, seed: rng.next())
            for u in g.allUserIDs where sqls.contains(where: { $0.contains("'\(u)'") }) {
                checks += randomChecks(g, count: 4, seed: rng.next()).map { CheckRequest(subject: u, action: $0.action, resource: $0.resource) }
            }
            let batch = try await c.checkBatch(checks, semantic: .executeAll, minRevision: rev)
            #expect(batch.revision == rev, context)
            let expected = g.checkBatch(checks, semantic: .executeAll, now: now)
            if batch.value != expected {
                let diff = zip(checks, zip(batch.value, expected)).filter { $0.1.0 != $0.1.1 }.prefix(3).map { "\($0.0): daemon \($0.1.0), scratch \($0.1.1)" }
                Issue.record("CHECK differs: \(diff)", sourceLocation: #_sourceLocation)
                Issue.record(context)
                break stepLoop
            }
            for r in g.allResources.shuffled(using: &rng).prefix(2) {
                let ref = ResourceRef(type: r.type, id: r.id)
                let action = ["read", "view", "submit", "update"].randomElement(using: &rng)!
                let daemon = try await c.allSubjects(action: action, resource: ref, minRevision: rev)
                let scratch = try g.listSubjects(action: action, resource: ref, cursor: nil, limit: 1_000_000, now: now).items
                #expect(daemon.value == scratch, "listSubjects \(action) \(ref): \(context)")
                if daemon.value != scratch { break stepLoop }
            }
            for u in g.allUserIDs.shuffled(using: &rng).prefix(2) {
                let type = ["claim", "policy", "document", "user", "org"].randomElement(using: &rng)!
                let action = ["read", "view", "suspend", "update"].randomElement(using: &rng)!
                let daemon = try await c.allResources(subject: u, action: action, type: type, minRevision: rev)
                let scratch = try g.listResources(subject: u, action: action, type: type, cursor: nil, limit: 1_000_000, now: now).items
                #expect(daemon.value == scratch, "listResources \(u) \(action) \(type): \(context)")
                if daemon.value != scratch { break stepLoop }
            }
            compared += 1
        }
        #expect(compared == steps, "seed \(seed)")
        #expect(written >= steps, "most random statements should be valid writes (seed \(seed))")
        for kind in ["INSERT INTO users", "UPDATE users SET", "DELETE FROM users", "INSERT INTO user_aliases", "INSERT INTO orgs",
                     "UPDATE orgs SET", "INSERT INTO roles", "UPDATE roles SET", "DELETE FROM roles", "INSERT INTO entitlements",
                     "INSERT INTO assignments", "DELETE FROM assignments", "INSERT INTO org_grants", "INSERT INTO resources",
                     "UPDATE resources SET", "DELETE FROM resources", "DELETE FROM entitlements", "UPDATE orgs SET parent"] where steps >= 200 {
            #expect(tablesTouched.contains { $0.hasPrefix(kind) }, "\(kind) never committed (seed \(seed))")
        }
        let after = try await statusDocument(c)
        #expect(reloadCounter(after, "full_reloads") == reloadCounter(before, "full_reloads"), "the daemon fell back to a full reload (seed \(seed)): \(d.log.suffix(2000))")
        #expect(reloadCounter(after, "applies") - reloadCounter(before, "applies") >= 1)
        #expect(reloadCounter(after, "applies") <= steps)
        await c.close()
        #expect(await d.stop() == 0)
    }

    @Test("read-your-writes: a query with a write's revision always sees that write (inotify and catch-up, no polling)")
    func readYourWrites() async throws {
        let f = try Fixture()
        let d = try await DaemonProcess(f, env: ["PIAMD_RELOAD_POLL_MS": "0", "PIAMD_CONSISTENCY_TIMEOUT_MS": "3000"])
        let c = try await d.client()
        let user = "acme-brokers-north-b1-agent1"
        let probe = CheckRequest(subject: user, action: "view", resource: ResourceRef(type: "org", id: "acme-brokers-north"))
        for i in 0..<200 {
            let suspended = i % 2 == 0
            let rev = try f.write { db in try db.execute("UPDATE users SET status = '\(suspended ? "suspended" : "active")' WHERE id = '\(user)'") }
            let a = try await c.check(probe, minRevision: rev)
            #expect(a.revision >= rev)
            #expect((a.value.reason == .subjectInactive) == suspended, "iteration \(i): \(a.value)")
        }
        let doc = try await statusDocument(c)
        #expect(reloadCounter(doc, "full_reloads") == 1, "only the startup load")
        #expect(reloadCounter(doc, "applies") >= 1 && reloadCounter(doc, "last_apply_us") > 0)
        await c.close()
        await d.stop()
    }

    @Test("journal compacted past the daemon's revision (daemon stopped meanwhile): a full reload catches up")
    func compactionFallback() async throws {
        let f = try Fixture()
        let d = try await DaemonProcess(f, env: ["PIAMD_CONSISTENCY_TIMEOUT_MS": "5000"])
        let c = try await d.client()
        let full0 = reloadCounter(try await statusDocument(c), "full_reloads")
        d.signal(SIGSTOP)
        try await d.waitUntilStopped()
        let rev = try f.write { db in try db.execute("UPDATE users SET status = 'suspended' WHERE id = 'carl.claims'") }
        let (removed, through) = try Store(path: f.db).compactJournal(keep: 0)
        #expect(removed > 0 && through == rev)
        #expect(try Store(path: f.db).meta(Store.journalCompactedThroughKey) == String(rev))
        d.signal(SIGCONT)
        let a = try await c.check(subject: "carl.claims", action: "read", resource: ResourceRef(type: "claim", id: "CLM-00001"), minRevision: rev)
        #expect(a.revision == rev && a.value.reason == .subjectInactive)
        let doc = try await statusDocument(c)
        #expect(reloadCounter(doc, "full_reloads") == full0 + 1)
        #expect((doc["last_reload"] as? [String: Any])?["cause"] as? String == "journal-compacted")
        #expect(doc["state"] as? String == "serving")
        // After the compaction, journal applies resume.
        let rev2 = try f.touch(1)
        #expect(try await c.ping(minRevision: rev2) == rev2)
        #expect(reloadCounter(try await statusDocument(c), "full_reloads") == full0 + 1)
        await c.close()
        await d.stop()
    }

    @Test("schema version changed: full reload; a schema newer than piamd degrades, the old one restored recovers")
    func schemaVersionFallback() async throws {
        let f = try Fixture()
        let d = try await DaemonProcess(f, env: ["PIAMD_RELOAD_POLL_MS": "100"])
        let c = try await d.client()
        let rev = try await c.ping()
        let full0 = reloadCounter(try await statusDocument(c), "full_reloads")
        let store = try Store(path: f.db)
        let version = try store.schemaVersion
        try store.db.execute("PRAGMA user_version = \(version + 1)")
        var doc = try await waitForStatus(c) { $0["state"] as? String == "degraded" }
        #expect((doc["degraded_reason"] as? String)?.contains("schema version") == true, "\(doc)")
        #expect(try await c.ping() == rev, "still serving the last good graph")
        try store.db.execute("PRAGMA user_version = \(version)")
        doc = try await waitForStatus(c) { $0["state"] as? String == "serving" }
        #expect(doc["state"] as? String == "serving")
        #expect(reloadCounter(doc, "full_reloads") == full0 + 1, "one full reload on recovery")
        #expect(d.log.contains("schema-changed"))
        await c.close()
        await d.stop()
    }

    @Test("database file replaced by a rename: full reload of the new file; SIGHUP: full reload")
    func fileReplacedAndSighup() async throws {
        let f = try Fixture()
        let d = try await DaemonProcess(f, env: ["PIAMD_RELOAD_POLL_MS": "0", "PIAMD_CONSISTENCY_TIMEOUT_MS": "5000"])
        let c = try await d.client()
        let full0 = reloadCounter(try await statusDocument(c), "full_reloads")
        let copy = f.path("new.db")
        try f.snapshotCopy(to: copy)
        // The new file: same content plus one change the old file never had.
        // (Closed before the rename: SQLite shares one WAL index per inode within a process, so a
        // connection still open under the old name would make later writes invisible to others.)
        let rev = try {
            let newStore = try Store(path: copy)
            try newStore.db.execute("UPDATE users SET status = 'suspended' WHERE id = 'carl.claims'")
            try newStore.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return try newStore.revision()
        }()
        #expect(rename(copy, f.db) == 0)
        let a = try await c.check(subject: "carl.claims", action: "read", resource: ResourceRef(type: "claim", id: "CLM-00001"), minRevision: rev)
        #expect(a.revision == rev && a.value.reason == .subjectInactive)
        var doc = try await statusDocument(c)
        #expect(reloadCounter(doc, "full_reloads") == full0 + 1)
        #expect((doc["last_reload"] as? [String: Any])?["cause"] as? String == "file-replaced")
        // Writes to the new file are followed through the journal again.
        let rev2 = try f.touch(2)
        #expect(try await c.ping(minRevision: rev2) == rev2)
        d.signal(SIGHUP)
        doc = try await waitForStatus(c) { reloadCounter($0, "full_reloads") == full0 + 2 }
        #expect((doc["last_reload"] as? [String: Any])?["cause"] as? String == "sighup")
        await c.close()
        await d.stop()
    }

    @Test("piamctl reload: SIGHUP, waits until piamd has reloaded (exit 0); a failed reload exits 1 with the reason; no daemon exits 2")
    func piamctlReload() async throws {
        let f = try Fixture()
        let d = try await DaemonProcess(f, env: ["PIAMD_RELOAD_POLL_MS": "0"])
        let c = try await d.client()
        var doc = try await statusDocument(c)
        #expect(doc["pid"] as? Int == Int(d.process.processIdentifier))
        let full0 = reloadCounter(doc, "full_reloads"), hups0 = reloadCounter(doc, "sighups")
        // No --pid: piamctl signals the pid STATUS reports. When it returns, the reload is over.
        var r = try await piamctl(["reload", "--socket", f.socket, "--json"], in: f)
        #expect(r.code == 0, "\(r.err)")
        let result = (try? JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any]) ?? [:]
        #expect(result["reloaded"] as? Bool == true && result["state"] as? String == "serving", "\(r.out)")
        doc = try await statusDocument(c)
        #expect(reloadCounter(doc, "sighups") == hups0 + 1 && reloadCounter(doc, "full_reloads") == full0 + 1, "\(doc)")
        #expect((doc["last_reload"] as? [String: Any])?["cause"] as? String == "sighup")

        // The file corrupted in place: the reload fails, piamd keeps serving, piamctl says why.
        let rev = try await c.ping()
        try f.corruptHeader()
        r = try await piamctl(["reload", "--socket", f.socket, "--pid", String(d.process.processIdentifier)], in: f)
        #expect(r.code == 1, "\(r.out) \(r.err)")
        #expect(r.err.hasPrefix("piamctl: reload failed: ") && r.err.contains("still serving revision \(rev)"), "\(r.err)")
        #expect(r.err.split(separator: "\n").count == 1, "one line: \(r.err)")
        #expect(try await c.ping() == rev)
        await c.close()
        await d.stop()

        // No daemon: one line, exit 2.
        r = try await piamctl(["reload", "--socket", f.socket], in: f)
        #expect(r.code == 2 && r.err.hasPrefix("piamctl: ") && r.err.split(separator: "\n").count == 1, "\(r.err)")
    }

    @Test("abandoned slots reach reload.reclaim_slots: one full reload (cause reclaim) gives them back; answers unchanged")
    func reclaim() async throws {
        let f = try Fixture()
        let d = try await DaemonProcess(f, env: ["PIAMD_RELOAD_RECLAIM_SLOTS": "40", "PIAMD_RELOAD_POLL_MS": "0"])
        let c = try await d.client()
        var doc = try await statusDocument(c)
        let full0 = reloadCounter(doc, "full_reloads")
        #expect(reloadCounter(doc, "reclaimable") == 0, "\(doc)")
        // carl.claims gains a role and loses it again, commit by commit: every apply gives him a
        // new assignment list and abandons the old one.
        var rev: Int64 = 0
        var most = 0
        for i in 0..<40 {
            rev = try f.write { db throws(PIAMError) in
                if i % 2 == 0 {
                    try db.execute("INSERT INTO assignments(user, role, scope) VALUES ('carl.claims', 'policy-viewer', 'hq-claims')")
                } else {
                    try db.execute("DELETE FROM assignments WHERE user = 'carl.claims' AND role = 'policy-viewer'")
                }
            }
            do { _ = try await c.ping(minRevision: rev) } catch { Issue.record("write \(i): \(error)\n\(d.log)"); break }
            most = max(most, reloadCounter(try await statusDocument(c), "reclaimable"))
        }
        doc = try await waitForStatus(c) { reloadCounter($0, "full_reloads") > full0 && ($0["revision"] as? Int) == Int(rev) }
        #expect((doc["last_reload"] as? [String: Any])?["cause"] as? String == "reclaim", "\(doc)")
        #expect(most > 0, "abandoned slots grew with the applies")
        #expect(reloadCounter(doc, "reclaimable") < 40)
        #expect(d.log.contains("cause=reclaim"))
        // The daemon answers as a graph loaded from scratch.
        let fresh = try f.loaded().graph
        let now = Timestamp(Date().timeIntervalSince1970 * 1000)
        for (subject, action, resource) in [("carl.claims", "read", "CLM-00001"), ("carl.claims", "read", "POL-00001"), ("carl.claims", "submit", "CLM-00002")] {
            let type = resource.hasPrefix("CLM") ? "claim" : "policy"
            let a = try await c.check(subject: subject, action: action, resource: ResourceRef(type: type, id: resource))
            #expect(a.value == fresh.check(subject: subject, action: action, resource: ResourceRef(type: type, id: resource), now: now))
        }
        await c.close()
        await d.stop()
    }

    @Test("a writer holding the database for seconds: queries keep being answered at once; its commit is then seen")
    func lockedWriter() async throws {
        let f = try Fixture()
        let d = try await DaemonProcess(f, env: ["PIAMD_RELOAD_POLL_MS": "50", "PIAMD_CONSISTENCY_TIMEOUT_MS": "5000"])
        let c = try await d.client()
        let rev0 = try await c.ping()
        let writer = try Store(path: f.db)
        try writer.db.execute("BEGIN EXCLUSIVE")
        try writer.db.execute("UPDATE users SET status = 'suspended' WHERE id = 'carl.claims'")
        let holdUntil = ContinuousClock.now + .seconds(2)
        var worst = Duration.zero
        var answered = 0
        while ContinuousClock.now < holdUntil {
            let t = ContinuousClock.now
            let a = try await c.check(subject: "carl.claims", action: "read", resource: ResourceRef(type: "claim", id: "CLM-00001"), minRevision: rev0)
            worst = max(worst, ContinuousClock.now - t)
            #expect(a.revision == rev0)
            answered += 1
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(worst < .milliseconds(500), "a query waited \(worst) while the writer held the lock")
        #expect(answered > 20)
        try writer.db.execute("COMMIT")
        let rev = try writer.revision()
        let a = try await c.check(subject: "carl.claims", action: "read", resource: ResourceRef(type: "claim", id: "CLM-00001"), minRevision: rev)
        #expect(a.value.reason == .subjectInactive)
        #expect(try await statusDocument(c)["state"] as? String == "serving")
        await c.close()
        await d.stop()
    }

    @Test("file deleted → degraded, last good graph served; restored → recovers by itself")
    func deletedThenRestored() async throws {
        let f = try Fixture()
        let d = try await DaemonProcess(f, env: ["PIAMD_RELOAD_POLL_MS": "100"])
        let c = try await d.client()
        let backup = f.path("backup.db")
        try f.snapshotCopy(to: backup)
        let rev = try await c.ping()
        #expect(unlink(f.db) == 0)
        var doc = try await waitForStatus(c) { $0["state"] as? String == "degraded" }
        #expect((doc["degraded_reason"] as? String)?.contains("missing") == true, "\(doc)")
        let a = try await c.check(subject: "carl.claims", action: "read", resource: ResourceRef(type: "claim", id: "CLM-00001"))
        #expect(a.revision == rev)
        #expect(rename(backup, f.db) == 0)
        doc = try await waitForStatus(c) { $0["state"] as? String == "serving" }
        #expect(doc["state"] as? String == "serving")
        #expect(d.log.components(separatedBy: "degraded: serving the last good graph").count == 2, "logged once")
        #expect(d.log.contains("recovered"))
        // Following the journal again.
        let rev2 = try f.touch(3)
        #expect(try await c.ping(minRevision: rev2) == rev2)
        await c.close()
        await d.stop()
    }

    @Test("file corrupted in place → degraded, last good graph served; a good file renamed in → recovers")
    func corruptedThenReplaced() async throws {
        let f = try Fixture()
        let d = try await DaemonProcess(f, env: ["PIAMD_RELOAD_POLL_MS": "100"])
        let c = try await d.client()
        let good = f.path("good.db")
        try f.snapshotCopy(to: good)
        let rev = try await c.ping()
        try f.corruptHeader()
        var doc = try await waitForStatus(c) { $0["state"] as? String == "degraded" }
        #expect((doc["degraded_reason"] as? String)?.contains("corrupt") == true, "\(doc)")
        let a = try await c.check(subject: "carl.claims", action: "read", resource: ResourceRef(type: "claim", id: "CLM-00001"))
        #expect(a.revision == rev)
        #expect(rename(good, f.db) == 0)
        doc = try await waitForStatus(c) { $0["state"] as? String == "serving" }
        #expect(doc["state"] as? String == "serving")
        #expect(doc["revision"] as? Int == Int(rev))
        let rev2 = try f.touch(4)
        #expect(try await c.ping(minRevision: rev2) == rev2)
        await c.close()
        await d.stop()
    }
}

import Foundation
import PIAMClient
import PIAMDemo
import PIAMEngine
import PIAMStore
import Testing

/// A program on PATH (python3, sqlite3), or nil.
func onPath(_ name: String) -> String? {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let p = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    return nil
}

/// A long-lived Python process that opens, uses and closes its own `sqlite3` connections on
/// command — a foreign SQLite client no one here wrote. One command a line on its standard
/// input, one answer a line on its standard output:
/// - `read`: connect, read, close (a reader that, with piamd's locks lost, would close last);
/// - `write SQL`: connect with foreign keys on, `BEGIN IMMEDIATE`, the statement, `COMMIT`, read
///   the revision, close; answers `rev N`, or `err MESSAGE` (rolled back).
final class PythonSQLite: @unchecked Sendable {
    static let script = #"""
import sqlite3, sys
db = sys.argv[1]
for line in sys.stdin:
    cmd, _, arg = line.rstrip("\n").partition(" ")
    try:
        c = sqlite3.connect(db, timeout=10, isolation_level=None)
        if cmd == "read":
            n = c.execute("SELECT count(*) FROM users").fetchone()[0]
            out = "ok %d" % n
        else:
            c.execute("PRAGMA foreign_keys=ON")
            c.execute("BEGIN IMMEDIATE")
            try:
                c.execute(arg)
                c.execute("COMMIT")
            except sqlite3.Error as e:
                c.execute("ROLLBACK")
                raise
            out = "rev %d" % c.execute("SELECT coalesce(max(seq), 0) FROM journal").fetchone()[0]
        c.close()
    except sqlite3.Error as e:
        out = "err " + str(e).replace("\n", " ")
    print(out, flush=True)
"""#
    let process = Process()
    let input = Pipe()
    let output = Pipe()
    private var buffer: [UInt8] = []

    init(db: String) throws {
        let python = try #require(onPath("python3"), "python3 is not on PATH")
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", Self.script, db]
        process.standardInput = input
        process.standardOutput = output
        try process.run()
    }

    /// Sends one command and returns its answer line (blocking this thread for its few ms).
    func ask(_ line: String) throws -> String {
        input.fileHandleForWriting.write(Data((line.replacingOccurrences(of: "\n", with: " ") + "\n").utf8))
        while true {
            if let nl = buffer.firstIndex(of: 10) {
                let answer = String(decoding: buffer[..<nl], as: UTF8.self)
                buffer.removeSubrange(...nl)
                return answer
            }
            let more = output.fileHandleForReading.availableData
            guard !more.isEmpty else { throw PIAMError(.server, "python3 exited (\(process.terminationStatus))") }
            buffer += more
        }
    }

    func read() throws { _ = try ask("read") }

    /// Commits `sql`; the revision it produced, or nil when SQLite refused it (`err`).
    func write(_ sql: String) throws -> Int64? {
        let a = try ask("write " + sql)
        if a.hasPrefix("rev ") { return Int64(a.dropFirst(4)) }
        if a.hasPrefix("err ") { return nil }
        throw PIAMError(.server, "python3 answered \(a)")
    }

    deinit {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}

/// The verification interval the freshness tests run piamd with.
let freshnessPollMS = 300

extension DaemonProcess {
    /// piamd with a short `reload.poll_ms` (its verification interval).
    static func verifying(_ f: Fixture, pollMS: Int = freshnessPollMS, extraEnv: [String: String] = [:]) async throws -> DaemonProcess {
        try await DaemonProcess(f, env: ["PIAMD_RELOAD_POLL_MS": "\(pollMS)"].merging(extraEnv) { $1 })
    }
}

/// Waits — without `min_revision`, which would itself wake the follower — until STATUS shows
/// `revision` served, within one verification interval plus `slack` (a loaded CI machine);
/// the time it took, or a recorded issue.
@discardableResult
func reachesWithinOneInterval(_ c: PIAMClient, _ revision: Int64, pollMS: Int = freshnessPollMS, slack: Duration = .milliseconds(1500),
                              _ what: Comment) async throws -> Duration? {
    let start = ContinuousClock.now
    let deadline = start + .milliseconds(pollMS) + slack
    var doc: [String: Any] = [:]
    while ContinuousClock.now < deadline {
        doc = try await statusDocument(c)
        if let r = doc["revision"] as? Int, Int64(r) >= revision { return ContinuousClock.now - start }
        try await Task.sleep(for: .milliseconds(10))
    }
    Issue.record("\(what): piamd did not reach revision \(revision) within \(pollMS) ms + slack; STATUS \(doc)")
    return nil
}

/// Every user × a few questions whose answers a commit of the tests changes (org status, user
/// status, names): the daemon, asked without `min_revision`, answers exactly as a graph loaded
/// from the database now.
func expectSameAsFreshLoad(_ c: PIAMClient, _ f: Fixture, _ what: Comment) async throws {
    let fresh = try f.loaded()
    let g = fresh.graph
    var checks: [CheckRequest] = []
    for u in g.allUserIDs {
        checks.append(CheckRequest(subject: u, action: "view", resource: ResourceRef(type: "org", id: "acme-brokers-north-b1")))
        checks.append(CheckRequest(subject: u, action: "view", resource: ResourceRef(type: "user", id: "carl.claims")))
    }
    checks += randomChecks(g, count: 200, seed: 7)
    let daemon = try await c.checkBatch(checks, semantic: .executeAll)
    #expect(daemon.revision == fresh.revision, what)
    let expected = g.checkBatch(checks, semantic: .executeAll, now: QueryEvaluatorClock.now())
    let diff = zip(checks, zip(daemon.value, expected)).filter { $0.1.0 != $0.1.1 }
    #expect(diff.count == 0, "\(what): \(diff.count) answers differ from a fresh load, e.g. \(diff.prefix(3).map { "\($0.0): daemon \($0.1.0), fresh \($0.1.1)" })")
}

/// The issue's commit: the business suspends the partner `acme-brokers` (piamctl, as pete.pm),
/// cutting off every one of its people. Returns the revision.
func suspendAcme(_ f: Fixture) async throws -> Int64 {
    let r = try await piamctl(["org", "suspend", "acme-brokers", "--as", "pete.pm", "--db", f.db, "--json"], in: f)
    try #require(r.code == 0, "piamctl org suspend: \(r.err)")
    return try Store(path: f.db, readOnly: true).revision()
}

/// The sqlite3 shell (Debian's `sqlite3`) on the fixture's database.
func sqliteShell(_ f: Fixture, _ sql: String) async throws -> (code: Int32, out: String, err: String) {
    let shell = try #require(onPath("sqlite3"), "the sqlite3 shell is not installed (Debian package sqlite3)")
    // As any well-behaved client: wait for a lock rather than fail at once (piamd's verification
    // reopens its connection every poll interval, and a loaded machine stretches that moment).
    return try await runProcess(shell, ["-cmd", ".timeout 5000", f.db], input: sql + "\n", in: f)
}

@Suite("piamd stays current whatever other SQLite clients do (real clients, the real binary)", .serialized)
struct FreshnessTests {
    /// Runs `action` (another program using the database) on a running piamd, then commits the
    /// issue's suspension; piamd must reach it within one interval and answer as a fresh load.
    func afterForeignClient(_ name: Comment, pollMS: Int = freshnessPollMS,
                            _ action: (Fixture) async throws -> Void) async throws {
        let f = try Fixture()
        let d = try await DaemonProcess.verifying(f, pollMS: pollMS)
        let c = try await d.client()
        let agent = CheckRequest(subject: "acme-brokers-north-b1-agent1", action: "view", resource: ResourceRef(type: "org", id: "acme-brokers-north-b1"))
        #expect(try await c.check(agent).value == .allow, name)
        try await action(f)
        let rev = try await suspendAcme(f)
        try await reachesWithinOneInterval(c, rev, pollMS: pollMS, name)
        #expect(try await c.check(agent).value == .deny(.orgInactive), name)
        try await expectSameAsFreshLoad(c, f, name)
        let doc = try await statusDocument(c)
        #expect(doc["state"] as? String == "serving", "\(name): \(doc)")
        // And it keeps following: one more commit, found as fast.
        let rev2 = try f.touch(1)
        try await reachesWithinOneInterval(c, rev2, pollMS: pollMS, name)
        await c.close()
        #expect(await d.stop() == 0)
    }

    @Test("a Python sqlite3 reader that closes last: piamd still follows the next commit")
    func pythonReaderClosesLast() async throws {
        try await afterForeignClient("python reader") { f in
            let py = try PythonSQLite(db: f.db)
            try py.read()
        }
    }

    @Test("the sqlite3 shell's .backup: piamd still follows")
    func shellBackup() async throws {
        try await afterForeignClient(".backup") { f in
            let r = try await sqliteShell(f, ".backup '\(f.path("backup.db"))'")
            #expect(r.code == 0, "\(r.err)")
            #expect(FileManager.default.fileExists(atPath: f.path("backup.db")))
        }
    }

    @Test("the sqlite3 shell's VACUUM: piamd still follows")
    func shellVacuum() async throws {
        try await afterForeignClient("VACUUM") { f in
            let r = try await sqliteShell(f, "VACUUM;")
            #expect(r.code == 0, "\(r.err)")
        }
    }

    @Test("the sqlite3 shell's PRAGMA wal_checkpoint(TRUNCATE): piamd still follows")
    func shellCheckpointTruncate() async throws {
        try await afterForeignClient("wal_checkpoint(TRUNCATE)") { f in
            let r = try await sqliteShell(f, "PRAGMA wal_checkpoint(TRUNCATE);")
            #expect(r.code == 0, "\(r.err)")
        }
    }

    @Test("the sqlite3 shell switching journal_mode to DELETE and back to WAL: piamd still follows")
    func shellJournalModeRoundTrip() async throws {
        try await afterForeignClient("journal_mode DELETE then WAL") { f in
            // While piamd holds its read lock, SQLite refuses to leave WAL ("database is
            // locked"), or succeeds in a moment piamd holds none: either way piamd must follow.
            let r = try await sqliteShell(f, ".timeout 2000\nPRAGMA journal_mode=DELETE;\nPRAGMA journal_mode=WAL;")
            #expect(r.out.contains("wal") || r.err.contains("locked"), "out: \(r.out) err: \(r.err)")
        }
    }

    @Test("a Python writer committing through the triggers: piamd follows it and the next commit")
    func pythonWriter() async throws {
        try await afterForeignClient("python writer") { f in
            let py = try PythonSQLite(db: f.db)
            let rev = try #require(try py.write("UPDATE users SET name = 'Written by Python' WHERE id = 'carl.claims'"))
            #expect(rev > 0)
        }
    }

    @Test("the database replaced by an atomic rename: piamd loads the new file and follows it")
    func atomicRename() async throws {
        try await afterForeignClient("atomic rename") { f in
            let copy = f.path("copy.db")
            try f.snapshotCopy(to: copy)
            try Store(path: copy).db.execute("UPDATE users SET name = 'In the copy' WHERE id = 'carl.claims'")
            #expect(rename(copy, f.db) == 0)
        }
    }

    @Test("a writer holding BEGIN EXCLUSIVE for 10 s: piamd keeps answering and follows its commit and the next")
    func exclusiveWriterTenSeconds() async throws {
        let f = try Fixture()
        let d = try await DaemonProcess.verifying(f)
        let c = try await d.client()
        let rev0 = try await c.ping()
        // The writer: another process, BEGIN EXCLUSIVE held for 10 s, then a commit (announced
        // by a marker file just before it).
        let committing = f.path("committing")
        let holder = try startPython(f, """
            import sqlite3, time
            c = sqlite3.connect('\(f.db)', isolation_level=None)
            c.execute('BEGIN EXCLUSIVE')
            c.execute("UPDATE users SET status = 'suspended' WHERE id = 'carl.claims'")
            time.sleep(10)
            open('\(committing)', 'w').close()
            c.execute('COMMIT')
            c.close()
            """)
        var answered = 0
        var worst = Duration.zero
        let deadline = ContinuousClock.now + .seconds(40)
        while holder.isRunning && ContinuousClock.now < deadline {
            let t = ContinuousClock.now
            let a = try await c.check(subject: "carl.claims", action: "read", resource: ResourceRef(type: "claim", id: "CLM-00001"))
            worst = max(worst, ContinuousClock.now - t)
            answered += 1
            #expect(a.revision == rev0 || FileManager.default.fileExists(atPath: committing), "a revision no one committed")
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(!holder.isRunning)
        holder.waitUntilExit()
        #expect(holder.terminationStatus == 0)
        #expect(worst < .milliseconds(500), "a query waited \(worst) while the writer held the lock")
        #expect(answered > 100)
        let rev = try Store(path: f.db, readOnly: true).revision()
        #expect(rev > rev0)
        try await reachesWithinOneInterval(c, rev, "after the exclusive writer")
        #expect(try await c.check(subject: "carl.claims", action: "read", resource: ResourceRef(type: "claim", id: "CLM-00001")).value == .deny(.subjectInactive))
        try await expectSameAsFreshLoad(c, f, "after the exclusive writer")
        let rev2 = try await suspendAcme(f)
        try await reachesWithinOneInterval(c, rev2, "the next commit")
        #expect(try await statusDocument(c)["state"] as? String == "serving")
        await c.close()
        #expect(await d.stop() == 0)
    }

    @Test("another process holding the database with locking_mode=EXCLUSIVE: degraded (503), never serving stale; let go → current again")
    func exclusiveLockingMode() async throws {
        let f = try Fixture()
        // A rollback-journal database (as `PRAGMA journal_mode=DELETE` leaves it): readers hold
        // no lock between reads, so the holder below gets the file whatever piamd does. (In WAL
        // mode piamd's read lock keeps such a holder out; it then waits in its busy handler.)
        let mode = try await sqliteShell(f, "PRAGMA journal_mode=DELETE;")
        #expect(mode.out.contains("delete"), "\(mode)")
        let d = try await DaemonProcess.verifying(f, extraEnv: ["PIAMD_HTTP_LISTEN": "unix:" + f.path("h.sock")])
        let c = try await d.client()
        let rev0 = try await c.ping()
        // Exclusive locking mode keeps every lock it takes: after its commit nobody else reads.
        let gate = f.path("release")
        let holder = try startPython(f, """
            import os, sqlite3, time
            c = sqlite3.connect('\(f.db)', timeout=30, isolation_level=None)
            c.execute('PRAGMA locking_mode=EXCLUSIVE')
            c.execute("UPDATE users SET status = 'suspended' WHERE id = 'carl.claims'")
            while not os.path.exists('\(gate)'):
                time.sleep(0.02)
            c.close()
            """)
        // Within the interval, the busy timeout and the grace, piamd says it cannot prove it is
        // current — on STATUS and on /healthz — and keeps answering from its last graph.
        let doc = try await waitForStatus(c) { $0["state"] as? String == "degraded" }
        #expect(doc["state"] as? String == "degraded", "never degraded while another process held the file: \(doc) \(d.log.suffix(1500))")
        #expect(Int64(doc["revision"] as? Int ?? -1) == rev0)
        let health = try httpRequest(.unix(f.path("h.sock")), "GET", "/healthz")
        #expect(health.status == 503, "\(health)")
        #expect(try await c.check(subject: "carl.claims", action: "read", resource: ResourceRef(type: "claim", id: "CLM-00001")).revision == rev0)
        _ = FileManager.default.createFile(atPath: gate, contents: nil)
        holder.waitUntilExit()
        #expect(holder.terminationStatus == 0)
        let rev = try Store(path: f.db, readOnly: true).revision()
        #expect(rev > rev0)
        try await reachesWithinOneInterval(c, rev, slack: .seconds(6), "after the holder let go")
        let back = try await waitForStatus(c) { $0["state"] as? String == "serving" }
        #expect(back["state"] as? String == "serving", "\(back)")
        #expect(try await c.check(subject: "carl.claims", action: "read", resource: ResourceRef(type: "claim", id: "CLM-00001")).value == .deny(.subjectInactive))
        try await expectSameAsFreshLoad(c, f, "after the holder let go")
        await c.close()
        #expect(await d.stop() == 0)
    }

    @Test("STATUS, /healthz and /metrics show the lag and the last verification, renewed every interval")
    func freshnessIsShown() async throws {
        let f = try Fixture()
        let (d, http) = try await startHTTPDaemon(f, env: ["PIAMD_RELOAD_POLL_MS": "\(freshnessPollMS)"])
        let c = try await d.client()
        let rev = try await c.ping()
        let first = try #require(try await statusDocument(c)["freshness"] as? [String: Any])
        #expect(first["lag"] as? Int == 0, "\(first)")
        #expect(first["database_revision"] as? Int == Int(rev))
        #expect(first["last_verified"] is String, "\(first)")
        // Renewed by itself (no commit, no request waiting): the age stays under an interval.
        let renewed = try await waitForStatus(c) {
            (($0["freshness"] as? [String: Any])?["last_verified"] as? String) != first["last_verified"] as? String
        }
        let f2 = try #require(renewed["freshness"] as? [String: Any])
        #expect(f2["last_verified"] as? String != first["last_verified"] as? String, "never verified again: \(f2)")
        #expect((f2["verified_ms_ago"] as? Int ?? .max) <= freshnessPollMS + 1000, "\(f2)")
        let health = try httpRequest(http, "GET", "/healthz")
        #expect(health.status == 200)
        #expect(health.json?["lag"] as? Int == 0, "\(health)")
        #expect(health.json?["last_verified"] is String, "\(health)")
        let metrics = try httpRequest(http, "GET", "/metrics").text
        #expect(metrics.contains("piam_graph_lag_revisions 0"), "\(metrics.prefix(400))")
        #expect(metrics.contains("piam_graph_last_verified_timestamp_seconds "))
        await c.close()
        #expect(await d.stop() == 0)
    }

    @Test("a commit piamd cannot apply (a Python writer without foreign keys): degraded with the lag shown, last graph served; mended → current")
    func unappliableCommit() async throws {
        let f = try Fixture()
        let (d, http) = try await startHTTPDaemon(f, env: ["PIAMD_RELOAD_POLL_MS": "\(freshnessPollMS)"])
        let c = try await d.client()
        let rev0 = try await c.ping()
        // Python's sqlite3 leaves foreign keys off: a user in no org gets in.
        let py = try PythonSQLite(db: f.db)
        _ = try py.ask("read")
        let bad = try await runProcess(try #require(onPath("python3")), ["-c", """
            import sqlite3
            c = sqlite3.connect('\(f.db)')
            c.execute("INSERT INTO users(id, org, status) VALUES ('ghost', 'no-such-org', 'active')")
            c.commit()
            c.close()
            """], in: f)
        #expect(bad.code == 0, "\(bad.err)")
        let doc = try await waitForStatus(c) { $0["state"] as? String == "degraded" }
        #expect(doc["state"] as? String == "degraded", "\(doc)")
        #expect(Int64(doc["revision"] as? Int ?? -1) == rev0)
        #expect(((doc["freshness"] as? [String: Any])?["lag"] as? Int ?? 0) >= 1, "\(doc)")
        let health = try httpRequest(http, "GET", "/healthz")
        #expect(health.status == 503, "\(health)")
        #expect((health.json?["lag"] as? Int ?? 0) >= 1, "\(health)")
        #expect(try await c.check(subject: "carl.claims", action: "read", resource: ResourceRef(type: "claim", id: "CLM-00001")).revision == rev0)
        // Mended by another foreign writer: piamd catches up by itself.
        let rev = try #require(try py.write("DELETE FROM users WHERE id = 'ghost'"))
        try await reachesWithinOneInterval(c, rev, slack: .seconds(6), "after the mend")
        let back = try await waitForStatus(c) { $0["state"] as? String == "serving" }
        #expect(back["state"] as? String == "serving", "\(back)")
        try await expectSameAsFreshLoad(c, f, "after the mend")
        #expect(d.log.components(separatedBy: "degraded: serving the last good graph").count == 2, "logged once: \(d.log.suffix(2000))")
        await c.close()
        #expect(await d.stop() == 0)
    }

    @Test("a corrupt file under a flood of catch-up requests: piamd backs off and logs a handful of lines, not one per attempt")
    func failuresBackOff() async throws {
        let f = try Fixture()
        let d = try await DaemonProcess.verifying(f, extraEnv: ["PIAMD_CONSISTENCY_TIMEOUT_MS": "10"])
        let c = try await d.client()
        let good = f.path("good.db")
        try f.snapshotCopy(to: good)
        let rev = try await c.ping()
        let linesBefore = d.log.split(separator: "\n").count
        try f.corruptHeader()
        _ = try await waitForStatus(c) { $0["state"] as? String == "degraded" }
        // Every request for a newer revision wakes the loader; none may cost a log line.
        let until = ContinuousClock.now + .seconds(3)
        var stale = 0
        while ContinuousClock.now < until {
            do { _ = try await c.ping(minRevision: rev + 1) } catch { stale += 1 }
        }
        #expect(stale > 50)
        let lines = d.log.split(separator: "\n").count - linesBefore
        #expect(lines <= 6, "\(lines) log lines in 3 s of failures: \(d.log.suffix(3000))")
        let doc = try await statusDocument(c)
        #expect(doc["state"] as? String == "degraded")
        #expect((doc["degraded_reason"] as? String)?.contains("corrupt") == true, "\(doc)")
        #expect(rename(good, f.db) == 0)
        _ = try await waitForStatus(c) { $0["state"] as? String == "serving" }
        let rev2 = try f.touch(9)
        #expect(try await c.ping(minRevision: rev2) == rev2)
        await c.close()
        #expect(await d.stop() == 0)
    }

    /// Starts `python3 -c code` (output to the fixture's directory) and returns the process.
    func startPython(_ f: Fixture, _ code: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try #require(onPath("python3")))
        p.arguments = ["-c", code]
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        return p
    }
}

@Suite("piamd under interleaved foreign writers and readers (the real binary)", .serialized)
struct InterleavedWritersTests {
    @Test("≥1,000 writes by piamctl, a Python writer and a Python reader that closes last: after each, the daemon (min_revision) answers as a fresh load")
    func interleaved() async throws {
        let env = ProcessInfo.processInfo.environment
        let seed = env["PIAM_DIFF_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 0..<UInt64.max)
        let target = env["PIAM_INTERLEAVED_WRITES"].flatMap(Int.init) ?? 1000
        let f = try Fixture()
        let d = try await DaemonProcess.verifying(f, pollMS: 1000, extraEnv: ["PIAMD_CONSISTENCY_TIMEOUT_MS": "5000"])
        let c = try await d.client()
        let py = try PythonSQLite(db: f.db)
        var writer = RandomWriter(seed: seed)
        var rng = SplitMix64(seed: seed ^ 0xf4e5)
        var writes = (piamctl: 0, python: 0), reads = 0, disagreements = 0, step = 0
        while writes.piamctl + writes.python < target && disagreements == 0 && step < target * 3 {
            step += 1
            let context: Comment = "seed \(seed) (PIAM_DIFF_SEED), step \(step)"
            if Int.random(in: 0..<2, using: &rng) == 0 {
                try py.read()
                reads += 1
            }
            let revision: Int64
            if Int.random(in: 0..<5, using: &rng) == 0 {
                // piamctl: an import that renames a user and flips its status.
                let picked = try Store(path: f.db, readOnly: true).db.prepare("SELECT id, org FROM users ORDER BY id")
                    .rows { ($0.text(0), $0.text(1)) }.randomElement(using: &rng)
                guard let (user, org) = picked else { continue }
                let status = ["active", "suspended"].randomElement(using: &rng)!
                let file = f.path("step.json")
                try #"{"users": [{"id": "\#(user)", "org": "\#(org)", "name": "step \#(step)", "status": "\#(status)"}]}"#
                    .write(toFile: file, atomically: true, encoding: .utf8)
                let r = try await piamctl(["import", file, "--db", f.db], in: f)
                try #require(r.code == 0, "piamctl import: \(r.err) \(context)")
                revision = try Store(path: f.db, readOnly: true).revision()
                writes.piamctl += 1
            } else {
                // Python: a random statement over every graph table, through the triggers.
                let sql = try writer.statement(try Store(path: f.db, readOnly: true).db)
                guard let rev = try py.write(sql) else { continue }  // refused by a constraint
                revision = rev
                writes.python += 1
            }
            if Int.random(in: 0..<2, using: &rng) == 0 {
                try py.read()  // a reader that closes after the write, before piamd is asked
                reads += 1
            }
            let fresh = try f.loaded()
            #expect(fresh.revision == revision, context)
            let checks = randomChecks(fresh.graph, count: 32, seed: rng.next())
            let daemon = try await c.checkBatch(checks, semantic: .executeAll, minRevision: revision)
            let expected = fresh.graph.checkBatch(checks, semantic: .executeAll, now: QueryEvaluatorClock.now())
            if daemon.revision != revision || daemon.value != expected {
                disagreements += 1
                let diff = zip(checks, zip(daemon.value, expected)).filter { $0.1.0 != $0.1.1 }.prefix(3)
                Issue.record("daemon at revision \(daemon.revision) (wanted \(revision)) disagrees with a fresh load: \(diff.map { "\($0.0): daemon \($0.1.0), fresh \($0.1.1)" }) — \(context)")
            }
        }
        #expect(disagreements == 0)
        #expect(writes.piamctl + writes.python >= target, "seed \(seed): only \(writes) writes in \(step) steps")
        #expect(writes.piamctl > target / 10 && writes.python > target / 2 && reads > target / 2, "\(writes), \(reads) reads")
        let doc = try await statusDocument(c)
        #expect(doc["state"] as? String == "serving", "\(doc)")
        await c.close()
        #expect(await d.stop() == 0)
    }
}

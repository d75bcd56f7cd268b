import Foundation
import PIAMAdmin
import PIAMClient
import PIAMDemo
import PIAMEngine
import PIAMStore
import Synchronization
import Testing

/// piam-admind under load and under SIGKILL (issue 15's "Must show"): many real actors writing
/// at once through their own connections, with piamd following the same database; and a bulk
/// run killed with SIGKILL while its transaction is open.
@Suite("piam-admind: concurrency and SIGKILL", .serialized)
struct AdmindConcurrencyTests {
    // MARK: Concurrency

    /// 8 clients × 500 seeded random operations, each client a different real actor (the host
    /// admin, the partner manager and partner admins — one of a suspended partner), half through
    /// the proxy's header on the Unix socket and half with an API token on the loopback port,
    /// each on its own keep-alive connection and its own thread, while piamd follows the
    /// database. Every answer is a 2xx or a 4xx problem+json; afterwards the audit log holds
    /// exactly one row per request, by actor, operation, outcome and credential; piamd at the
    /// final revision decides as a fresh load of the database does; piam-admind's revision is
    /// the database's and its reads (people, their status, visibility and effective
    /// permissions) agree with the fresh load.
    @Test func eightActorsAtOnceAreAllAuditedAndEveryReaderAgrees() async throws {
        let f = try Fixture()
        let initial = try f.loaded().graph
        let actors: [(user: String, partner: String?, token: Bool)] = [
            ("nina.hq", nil, false),
            ("pete.pm", nil, true),
            ("acme-brokers-admin", "acme-brokers", false),
            ("acme-brokers-north-admin", "acme-brokers-north", true),
            ("bluesky-agency-admin", "bluesky-agency", true),
            ("harbor-adjusters-admin", "harbor-adjusters", false),
            ("summit-brokerage-admin", "summit-brokerage", true),
            ("granite-brokers-admin", "granite-brokers", false), // its partner is suspended: refused throughout
        ]
        for a in actors { try #require(initial.userID(for: a.user) == a.user, "the demo has no \(a.user)") }
        // API tokens (piamctl, as an operator would), before the daemons start.
        var secrets: [String: String] = [:]
        for (k, a) in actors.enumerated() where a.token {
            let r = try await piamctl(["token", "create", "--db", f.db, "--user", a.user, "--name", "conc-\(k)", "--json"], in: f)
            try #require(r.code == 0, "piamctl token create: \(r.err)")
            secrets[a.user] = try #require((try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])?["secret"] as? String)
        }
        let tokens = secrets
        let auditBaseline = try f.lastAudit()?.id ?? 0
        let piamd = try await DaemonProcess(f)
        defer { Task { await piamd.stop() } }
        let admind = try await AdmindProcess(f)
        defer { Task { await admind.stop() } }

        let actorIDs = Set(actors.map(\.user))
        let world = RandomAdmin.World(
            users: initial.allUserIDs.filter { !actorIDs.contains($0) }.sorted(),
            orgOf: Dictionary(uniqueKeysWithValues: initial.allOrgIDs.flatMap { o in initial.users(ofOrg: o).map { ($0, o) } }),
            orgs: initial.allOrgIDs.sorted(),
            roles: ["partner-admin", "partner-user", "quote-creator", "quote-manager", "policy-viewer", "policy-servicer",
                    "commission-viewer", "commission-manager", "claims-viewer", "claims-handler", "claims-adjuster",
                    "catalog-reader", "underwriter", "host-admin", "no-such-role"],
            clients: actors.count)
        let perClient = 500
        // PIAM_TEST_SEED replays another mix (the default is the committed one).
        let seed = ProcessInfo.processInfo.environment["PIAM_TEST_SEED"].flatMap { UInt64($0) } ?? 15_000
        let clients = actors.enumerated().map { k, a in
            RandomAdmin(index: k, actor: a.user, partner: a.partner, world: world, seed: seed &+ UInt64(k) &* 7919)
        }
        // piamd follows while the clients write: the revisions it serves never go back. The
        // watcher is a thread of its own with a blocking connection: a task on the cooperative
        // pool can be starved by the other suites running at once, which is not what is tested.
        // (The pause between pings only paces the watcher; nothing waits on it.)
        let watching = Mutex<(stop: Bool, seen: [Int64], failed: Int)>((false, [], 0))
        let socket = piamd.socket
        Thread {
            guard let pinger = try? RawConnection(path: socket) else { return watching.withLock { $0.failed += 1 } }
            while !watching.withLock({ $0.stop }) {
                let r = pinger.ping()
                watching.withLock { if let r { $0.seen.append(r) } else { $0.failed += 1 } }
                usleep(20_000)
            }
        }.start()
        let started = ContinuousClock.now
        let outcomes = try await onThreads(clients.count, timeout: .seconds(120)) { k -> [RandomAdmin.Attempt] in
            let a = actors[k]
            let connection = try KeepAliveHTTP(a.token ? admind.tcp : admind.unix)
            var client = clients[k]
            var out: [RandomAdmin.Attempt] = []
            out.reserveCapacity(perClient)
            for _ in 0..<perClient {
                let op = client.next()
                let r = AdmindProcess.request(for: op)
                var headers: [String: String] = [:]
                if let secret = tokens[a.user] { headers["Authorization"] = "Bearer \(secret)" } else { headers["X-Forwarded-User"] = a.user }
                let reply = try connection.send(r.method, r.path, headers: headers, json: r.body)
                client.learn(op, status: reply.status)
                out.append(RandomAdmin.Attempt(actor: a.user, operation: op.name, target: op.target(actor: a.user), status: reply.status,
                                               contentType: reply.header("Content-Type") ?? "",
                                               revision: reply.status < 300 ? reply.json?["revision"] as? Int : nil,
                                               summary: reply.status >= 500 || reply.status < 200 ? "\(r.method) \(r.path): \(reply)" : ""))
            }
            return out
        }
        let elapsed = ContinuousClock.now - started
        let (followed, failedPings) = watching.withLock { w in
            w.stop = true
            return (w.seen, w.failed)
        }
        #expect(failedPings == 0, "PINGs unanswered during the run")
        #expect(zip(followed, followed.dropFirst()).allSatisfy { $0 <= $1 }, "piamd's revision went back while following")
        #expect(Set(followed).count > 2, "piamd did not follow during the run: \(Set(followed).sorted()) in \(followed.count) PINGs")
        let attempts = outcomes.flatMap { $0 }
        #expect(attempts.count == actors.count * perClient)

        // Every answer: 2xx, or a 4xx problem+json; never a 5xx.
        let bad = attempts.filter { !(200..<300).contains($0.status) && !((400..<500).contains($0.status) && $0.contentType == "application/problem+json") }
        #expect(bad.isEmpty, "\(bad.count) answers neither 2xx nor a 4xx problem, e.g. \(bad.prefix(5).map { "\($0.actor) \($0.operation) → \($0.status) \($0.summary)" })")
        let byStatus = Dictionary(grouping: attempts, by: \.status).mapValues(\.count)
        let allowed = attempts.filter { (200..<300).contains($0.status) }.count
        // The mix is a mix: many writes succeed and a good share are refused or fail.
        #expect(allowed > attempts.count / 5 && attempts.count - allowed > attempts.count / 5, "\(byStatus)")
        #expect(byStatus[403, default: 0] > 0 && byStatus[404, default: 0] > 0 && byStatus[409, default: 0] > 0, "\(byStatus)")

        // (a) One audit row per request: by actor and operation, allowed (2xx) or not, and with
        // the credential the client used.
        let audit = try Store(path: f.db, readOnly: true).auditLog().filter { $0.id > auditBaseline }
        struct Key: Hashable, CustomStringConvertible {
            var actor: String, operation: String, allowed: Bool
            var description: String { "\(actor) \(operation) \(allowed ? "allowed" : "not allowed")" }
        }
        let sent = Dictionary(grouping: attempts) { Key(actor: $0.actor, operation: $0.operation, allowed: (200..<300).contains($0.status)) }.mapValues(\.count)
        let audited = Dictionary(grouping: audit) { Key(actor: $0.actor, operation: $0.operation, allowed: $0.decision == "allowed") }.mapValues(\.count)
        #expect(audit.count == attempts.count, "\(audit.count) audit rows for \(attempts.count) requests")
        let differing = Set(sent.keys).union(audited.keys).filter { sent[$0] != audited[$0] }
        #expect(differing.isEmpty, "sent vs audited differ: \(differing.sorted { "\($0)" < "\($1)" }.prefix(10).map { "\($0): \(sent[$0] ?? 0) sent, \(audited[$0] ?? 0) audited" })")
        for a in actors {
            let credentials = Set(audit.filter { $0.actor == a.user }.map { $0.credential ?? "nil" })
            if a.token {
                let k = actors.firstIndex { $0.user == a.user }!
                #expect(credentials.count == 1 && credentials.first?.hasPrefix("token:conc-\(k)#") == true, "\(a.user): \(credentials)")
            } else {
                #expect(credentials == ["header"], "\(a.user): \(credentials)")
            }
        }
        #expect(audit.allSatisfy { $0.batch == nil })
        // The writes are serialised: in audit order the revisions never go back, and every
        // allowed answer's revision is that of its audit row (as a multiset).
        let revisions = audit.sorted { $0.id < $1.id }.map(\.revision)
        #expect(zip(revisions, revisions.dropFirst()).allSatisfy { $0 <= $1 }, "audit revisions go back")
        let answered = attempts.compactMap { $0.revision.map(Int64.init) }.sorted()
        let auditedAllowed = audit.filter { $0.decision == "allowed" }.map(\.revision).sorted()
        #expect(answered == auditedAllowed, "the allowed answers' revisions are not those of the allowed audit rows")

        // (b) Readers agree with a fresh load of the database.
        let store = try Store(path: f.db, readOnly: true)
        let fresh = try store.loadGraph()
        let g = fresh.graph
        #expect(fresh.revision == (answered.last ?? -1), "the last write's revision is not the database's")
        // piam-admind: its revision is the database's, …
        let me = try admind.call("GET", "/admin/v1/me", as: "nina.hq")
        #expect(me.status == 200 && (me.json?["revision"] as? Int).map(Int64.init) == fresh.revision, "\(me)")
        // … the people the host admin may view are the fresh graph's, …
        var listed: [String] = []
        var cursor: String? = nil
        repeat {
            let page = try admind.call("GET", "/admin/v1/users?limit=1000" + (cursor.map { "&cursor=" + $0.addingPercentEncoding(withAllowedCharacters: .alphanumerics)! } ?? ""), as: "nina.hq")
            try #require(page.status == 200, "\(page)")
            listed += ((page.json?["items"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String }
            cursor = page.json?["next_cursor"] as? String
        } while cursor != nil
        var expectedListed: [String] = []
        var c: String? = nil
        repeat {
            let p = try g.listResources(subject: "nina.hq", action: "view", type: BuiltinType.user, cursor: c, limit: 1000, now: AdminAPI.now())
            expectedListed += p.items
            c = p.nextCursor
        } while c != nil
        #expect(listed == expectedListed, "piam-admind lists \(listed.count) people, the fresh load \(expectedListed.count)")
        // … and so are each person's status, visibility and effective permissions.
        var readMismatches: [String] = []
        // Every id a client tried to invite, whether it exists or not.
        let invited = Set(attempts.filter { $0.operation == "user.invite" }.map { String($0.target.dropFirst("user:".count)) })
        for u in Set(g.allUserIDs).union(invited).sorted() {
            let path = "/admin/v1/users/\(u.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)"
            let visible = g.check(subject: "nina.hq", action: "view", resource: ResourceRef(type: BuiltinType.user, id: u), now: AdminAPI.now()).allowed
            let detail = try admind.call("GET", path, as: "nina.hq")
            if visible, let info = try store.user(idOrAlias: u) {
                if detail.status != 200 || detail.json?["status"] as? String != info.status.name || detail.json?["org"] as? String != info.org {
                    readMismatches.append("\(u): \(detail) vs \(info)")
                }
                let grants = try admind.call("GET", path + "/grants", as: "nina.hq")
                let served = Set(((grants.json?["effective"] as? [[String: Any]]) ?? []).map { "\($0["permission"] ?? "")@\($0["scope"] ?? "")" })
                let expected = Set((g.accessReport(user: u, now: AdminAPI.now())?.effective ?? []).map { "\($0.permission)@\($0.scope)" })
                if grants.status != 200 || served != expected { readMismatches.append("\(u) grants: \(grants.status) \(served.sorted()) vs \(expected.sorted())") }
            } else if detail.status != 404 {
                readMismatches.append("\(u): \(detail.status), but the fresh load says it is not visible (or does not exist)")
            }
        }
        #expect(readMismatches.isEmpty, "\(readMismatches.count) of piam-admind's reads differ from a fresh load: \(readMismatches.prefix(5))")

        // piamd: at the final revision (waited for with min_revision), CHECK_BATCH answers as the
        // fresh load does: every user and every id a client tried to invite × fixed questions
        // whose answers the operations change, plus random questions.
        let pc = try await piamd.client()
        defer { Task { await pc.close() } }
        let deadline = ContinuousClock.now + .seconds(30)
        var reached: Int64 = -1
        while reached < fresh.revision, ContinuousClock.now < deadline {
            reached = (try? await pc.ping(minRevision: fresh.revision)) ?? reached
        }
        #expect(reached == fresh.revision, "piamd did not reach revision \(fresh.revision)")
        var checks: [CheckRequest] = []
        let questions: [(String, ResourceRef)] = [
            ("view", ResourceRef(type: "org", id: "acme-brokers-north-b1")), ("view", ResourceRef(type: "user", id: "carl.claims")),
            ("invite_user", ResourceRef(type: "org", id: "acme-brokers")), ("assign_role", ResourceRef(type: "org", id: "bluesky-agency")),
            ("suspend", ResourceRef(type: "user", id: "acme-brokers-north-b1-agent1")),
            ("read", ResourceRef(type: "document", id: "product-guide-2027")), ("read", ResourceRef(type: "claim", id: "CLM-00001")),
            ("read", ResourceRef(type: "quote", id: "Q-acme-brokers-north-b1-agent1-1")),
        ]
        for u in Set(g.allUserIDs).union(invited).sorted() {
            for (action, resource) in questions { checks.append(CheckRequest(subject: u, action: action, resource: resource)) }
        }
        checks += randomChecks(g, count: 500, seed: 15)
        let daemon = try await pc.checkBatch(checks, semantic: .executeAll, minRevision: fresh.revision)
        #expect(daemon.revision == fresh.revision)
        let local = g.checkBatch(checks, semantic: .executeAll, now: QueryEvaluatorClock.now())
        let diff = zip(checks, zip(daemon.value, local)).filter { $0.1.0 != $0.1.1 }
        #expect(diff.isEmpty, "\(diff.count) of \(checks.count) piamd answers differ from a fresh load, e.g. \(diff.prefix(3).map { "\($0.0): piamd \($0.1.0), fresh \($0.1.1)" })")
        let byOperation = Dictionary(grouping: attempts, by: \.operation).map { op, xs in
            "\(op) \(xs.filter { (200..<300).contains($0.status) }.count)/\(xs.count)"
        }.sorted()
        print("AdmindConcurrency: allowed/sent by operation: \(byOperation.joined(separator: ", "))")
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print("AdmindConcurrency: seed \(seed), \(attempts.count) requests in \(elapsed) (\(Int(Double(attempts.count) / seconds))/s), by status \(byStatus.sorted { $0.key < $1.key }), revision \(fresh.revision) (piamd seen at \(Set(followed).count) revisions in \(followed.count) PINGs during the run), \(checks.count) piamd checks")
    }

    // MARK: SIGKILL in a bulk run

    /// A bulk run of 4,000 operations (2,000 invitations, then a grant for each) as a partner
    /// admin, and `kill -9` of piam-admind while it runs: at several moments, one of them the
    /// middle of the transaction measured on an identical run, one the moment its write lock
    /// is seen taken. After each kill the database passes `PRAGMA integrity_check` and is
    /// exactly as before the run (its export, and no audit row of the run) or exactly as after
    /// it (the identical run's export, and an audit row for every entry); a restarted
    /// piam-admind serves at the database's revision, and finally applies the same batch.
    @Test func sigkillInTheMiddleOfABulkApply() async throws {
        let pristine = try Fixture()
        let n = 2000
        let orgs = ["acme-brokers-north-b1", "acme-brokers-north-b2", "acme-brokers-south-b1", "acme-brokers-east-b2-t1"]
        var operations: [[String: Any]] = []
        for i in 0..<n { operations.append(["op": "user.invite", "user": "bulk-\(i)", "org": orgs[i % orgs.count], "name": "Bulk \(i)"]) }
        for i in 0..<n { operations.append(["op": "grant", "user": "bulk-\(i)", "role": i % 2 == 0 ? "quote-creator" : "commission-viewer"]) }
        let body = try JSONSerialization.data(withJSONObject: ["operations": operations])
        let actor = "acme-brokers-admin"
        // With an Idempotency-Key, as a client that may have to retry would send it.
        let runHeaders = ["X-Forwarded-User": actor, "Idempotency-Key": "bulk-run-1"]
        let before = try Store(path: pristine.db, readOnly: true).exportData()
        let auditBaseline = try pristine.lastAudit()?.id ?? 0

        // The identical run to completion on a copy: how long it takes, when its transaction
        // holds the write lock, and the database it leaves (grant times masked).
        let reference = try Fixture(demo: false)
        try copyDatabase(pristine.db, to: reference.db)
        let after: String
        let lockSeenAt: Duration, answeredAt: Duration
        do {
            let admind = try await AdmindProcess(reference)
            let probe = try WriteLockProbe(reference.db)
            let run = BackgroundRequest(admind.unix, "POST", "/admin/v1/apply", headers: runHeaders, body: body)
            var seen: Duration?
            let deadline = ContinuousClock.now + .seconds(60)
            while run.reply == nil, run.failure == nil, ContinuousClock.now < deadline {
                if seen == nil, let sent = run.sentAt, try probe.isHeld() { seen = ContinuousClock.now - sent }
                try await Task.sleep(for: .milliseconds(2))
            }
            let reply = try #require(run.reply, "the reference run: \(run.failure ?? "no answer in 60 s")")
            try #require(reply.status == 200 && reply.json?["committed"] as? Bool == true, "\(reply.status) \(reply.text.prefix(500))")
            answeredAt = try #require(run.answeredAt) - (try #require(run.sentAt))
            lockSeenAt = try #require(seen, "the reference run's write lock was never seen")
            after = masked(try Store(path: reference.db, readOnly: true).exportData())
            await admind.stop()
        }
        print("AdmindConcurrency: a bulk run of \(operations.count) operations: answered after \(answeredAt), write lock seen after \(lockSeenAt)")

        // The experiments, on one database, each on a freshly started piam-admind. The delay
        // between sending the run and the kill is the experiment's variable, chosen on purpose
        // (not synchronisation): right after the last byte is sent (likely before the
        // transaction), when the write lock is first seen taken (an observed event), the
        // middle and 90% of the reference run's locked span, and right after the answer.
        enum Kill: CustomStringConvertible {
            case after(Duration), whenLockSeen, afterAnswer
            var description: String {
                switch self {
                case .after(let d): "\(d) after sending"
                case .whenLockSeen: "when the write lock is seen"
                case .afterAnswer: "right after the answer"
                }
            }
        }
        let span = answeredAt - lockSeenAt
        let kills: [Kill] = [.after(.zero), .whenLockSeen, .after(lockSeenAt + span / 2), .after(lockSeenAt + span * 9 / 10),
                             .after(lockSeenAt + span / 4), .afterAnswer]
        let f = try Fixture(demo: false)
        try copyDatabase(pristine.db, to: f.db)
        var insideTransaction = 0
        var outcomes: [String] = []
        /// One experiment; returns the state the database is in, whether the write lock was
        /// held at the kill, and the answer if one came. Its connections are closed on return.
        func experiment(_ kill: Kill) async throws -> (state: String, held: Bool, reply: HTTPReply?) {
            let admind = try await AdmindProcess(f)
            // The restarted piam-admind serves, at the database's revision.
            let me = try admind.call("GET", "/admin/v1/me", as: actor)
            let revision = try Store(path: f.db, readOnly: true).revision()
            #expect(me.status == 200 && (me.json?["revision"] as? Int).map(Int64.init) == revision, "\(kill): \(me)")
            let probe = try WriteLockProbe(f.db)
            let run = BackgroundRequest(admind.unix, "POST", "/admin/v1/apply", headers: runHeaders, body: body)
            let deadline = ContinuousClock.now + .seconds(60)
            while run.sentAt == nil, run.failure == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
            let sent = try #require(run.sentAt, "\(kill): the run was not sent: \(run.failure ?? "")")
            switch kill {
            case .after(let d):
                // The experiment's chosen delay (see above), not a wait for anything.
                try await Task.sleep(until: sent + d, clock: .continuous)
            case .whenLockSeen:
                while !(try probe.isHeld()), run.reply == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .microseconds(500)) }
            case .afterAnswer:
                while run.reply == nil, run.failure == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(2)) }
            }
            let held = try probe.isHeld()
            admind.daemon.signal(SIGKILL)
            let status = await admind.daemon.waitForExit()
            #expect(!admind.daemon.process.isRunning, "\(kill): piam-admind still runs (\(status))")
            // The client sees an answer or the connection end, never nothing.
            while run.reply == nil, run.failure == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(2)) }
            #expect(run.reply != nil || run.failure != nil, "\(kill): the client neither got an answer nor saw the connection end")

            let check = try Database(path: f.db)
            #expect(try check.scalarText("PRAGMA integrity_check") == "ok", "\(kill): integrity_check")
            #expect(try check.prepare("PRAGMA foreign_key_check").rows { _ in 0 }.isEmpty, "\(kill): foreign_key_check")
            let store = try Store(path: f.db)
            let now = try store.exportData()
            let rows = try store.auditLog().filter { $0.id > auditBaseline }
            if now == before {
                #expect(rows.isEmpty, "\(kill): the database is as before but \(rows.count) audit rows of the run remain")
                return ("before", held, run.reply)
            }
            #expect(masked(now) == after, "\(kill): the database is neither as before nor as after the run")
            #expect(rows.count == operations.count && Set(rows.compactMap(\.batch)).count == 1 && rows.allSatisfy { $0.decision == "allowed" },
                    "\(kill): \(rows.count) audit rows for \(operations.count) committed operations")
            return ("after", held, run.reply)
        }
        for kill in kills {
            let (state, held, reply) = try await experiment(kill)
            if state == "before", held { insideTransaction += 1 }
            if state == "after" {
                // Committed, answered or not: the client's retry with the same key is answered
                // from the run's own record and applies nothing again.
                let admind = try await AdmindProcess(f)
                let retry = try KeepAliveHTTP(admind.unix, timeoutSeconds: 60).send("POST", "/admin/v1/apply", headers: runHeaders, body: Array(body))
                #expect(retry.status == 200 && retry.header("Idempotent-Replayed") == "true" && retry.json?["committed"] as? Bool == true,
                        "\(kill): the retry: \(retry.status) \(retry.text.prefix(300))")
                #expect(masked(try Store(path: f.db, readOnly: true).exportData()) == after, "\(kill): the retry changed the database")
                #expect(try Store(path: f.db, readOnly: true).auditLog().filter { $0.id > auditBaseline }.count == operations.count)
                await admind.stop()
                // Start the next experiment from the state before the run.
                try copyDatabase(pristine.db, to: f.db)
            }
            outcomes.append("\(kill) [\(reply.map { "answer \($0.status)" } ?? "no answer"), lock \(held ? "held" : "free")]: \(state)")
            #expect(reply == nil || state == "after", "\(kill): answered \(reply?.status ?? 0) but nothing was kept")
        }
        print("AdmindConcurrency: kills: \(outcomes.joined(separator: "; "))")
        #expect(insideTransaction >= 1, "no kill landed inside the transaction: \(outcomes)")
        #expect(outcomes.last?.hasSuffix("after") == true, "a kill after the answer lost the committed run: \(outcomes)")

        // A restarted piam-admind applies the same batch.
        let admind = try await AdmindProcess(f)
        defer { Task { await admind.stop() } }
        let reply = try KeepAliveHTTP(admind.unix, timeoutSeconds: 60).send("POST", "/admin/v1/apply", headers: runHeaders, body: Array(body))
        #expect(reply.status == 200 && reply.json?["committed"] as? Bool == true, "\(reply.status) \(reply.text.prefix(300))")
        #expect(masked(try Store(path: f.db, readOnly: true).exportData()) == after)
        #expect(try Store(path: f.db, readOnly: true).auditLog().filter { $0.id > auditBaseline }.count == operations.count)
    }
}

// MARK: Random administration

/// One client's seeded random administration: a mix of operations over the demo's people and
/// orgs and its own creations, with a good share out of scope, on unknown ids or conflicting.
struct RandomAdmin: Sendable {
    struct World: Sendable {
        var users: [String]
        /// Each demo user's org.
        var orgOf: [String: String]
        var orgs: [String]
        var roles: [String]
        var clients: Int
    }
    struct Attempt: Sendable {
        var actor: String
        var operation: String
        /// `TYPE:ID`.
        var target: String
        var status: Int
        var contentType: String
        var revision: Int?
        var summary: String
    }

    let index: Int
    let actor: String
    let world: World
    /// The orgs of the actor's partner (all orgs for the business's actors).
    let home: [String]
    /// The demo people of those orgs.
    let homeUsers: [String]
    var rng: SplitMix64
    var invited: [String] = []
    var created: [String] = []
    var serial = 0

    init(index: Int, actor: String, partner: String?, world: World, seed: UInt64) {
        self.index = index
        self.actor = actor
        self.world = world
        let home = partner.map { p in world.orgs.filter { $0 == p || $0.hasPrefix(p + "-") } } ?? world.orgs
        self.home = home
        homeUsers = world.users.filter { world.orgOf[$0].map(Set(home).contains) ?? false }
        rng = SplitMix64(seed: seed)
    }

    mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &rng) < percent }
    mutating func pick<T>(_ xs: [T]) -> T { xs[Int.random(in: 0..<xs.count, using: &rng)] }

    mutating func fresh(_ kind: String) -> String {
        serial += 1
        return "c\(index)-\(kind)\(serial - 1)"
    }

    /// A user: often one it invited or a demo person of its partner, else anyone's, another
    /// client's (maybe not yet) invitee, or nobody.
    mutating func user() -> String {
        switch Int.random(in: 0..<100, using: &rng) {
        case ..<35 where !invited.isEmpty: pick(invited)
        case ..<65 where !homeUsers.isEmpty: pick(homeUsers)
        case ..<85: pick(world.users)
        case ..<93: "c\(Int.random(in: 0..<world.clients, using: &rng))-u\(Int.random(in: 0..<40, using: &rng))"
        default: "ghost-\(Int.random(in: 0..<1000, using: &rng))"
        }
    }

    /// An org: mostly of its own partner, sometimes anyone's, one it created, or none.
    mutating func org() -> String {
        switch Int.random(in: 0..<100, using: &rng) {
        case ..<55: pick(home)
        case ..<80: pick(world.orgs)
        case ..<92 where !created.isEmpty: pick(created)
        default: "no-such-org-\(Int.random(in: 0..<100, using: &rng))"
        }
    }

    /// A leaf-ish org to suspend: a branch, a team or one a client created (never one an actor
    /// sits in, so that every client keeps acting).
    mutating func leafOrg() -> String {
        let leaves = home.filter { $0.hasSuffix("-b1") || $0.hasSuffix("-b2") || $0.hasSuffix("-t1") }
        if !created.isEmpty, chance(40) { return pick(created) }
        return leaves.isEmpty ? org() : pick(leaves)
    }

    mutating func next() -> AdminOperation {
        let roll = Int.random(in: 0..<100, using: &rng)
        switch roll {
        case ..<18:
            // A conflict now and then: an id already taken.
            let id = chance(10) ? pick(world.users) : fresh("u")
            return .inviteUser(user: id, org: org(), name: "Person \(id)", email: nil, aliases: [], validUntil: nil)
        case ..<27: return .suspendUser(user: user())
        case ..<35: return .reactivateUser(user: user())
        case ..<46: return .grant(user: user(), role: pick(world.roles), scope: chance(20) ? org() : nil, validUntil: nil)
        case ..<53: return .revoke(user: user(), role: pick(world.roles), scope: nil)
        case ..<59: return .grantToOrg(org: org(), role: pick(world.roles), includeSuborgs: chance(50), validUntil: nil)
        case ..<64: return .revokeFromOrg(org: org(), role: pick(world.roles))
        case ..<72:
            // An alias someone already has is a conflict.
            let alias = chance(15) ? "okta|\(pick(world.users))" : "c\(index)-alias-\(Int.random(in: 0..<400, using: &rng))"
            return .addAlias(user: user(), alias: alias)
        case ..<77:
            let id = "c\(index)-o\(Int.random(in: 0..<60, using: &rng))"
            return .createOrg(org: id, parent: chance(70) ? pick(home) : org(), name: "Org \(id)", kind: nil)
        case ..<86: return .updateUser(user: user(), name: .some("Renamed \(Int.random(in: 0..<1000, using: &rng))"), email: nil, validUntil: nil)
        case ..<89: return .moveUser(user: invited.isEmpty ? user() : pick(invited), org: org())
        case ..<92: return .removeUser(user: !invited.isEmpty && chance(70) ? pick(invited) : user())
        case ..<94: return .resendInvitation(user: invited.isEmpty ? user() : pick(invited))
        case ..<96: return .activateUser(user: invited.isEmpty ? user() : pick(invited))
        case ..<98: return .suspendOrg(org: leafOrg())
        default: return .reactivateOrg(org: leafOrg())
        }
    }

    /// What the answer teaches: the people it invited and the orgs it created.
    mutating func learn(_ op: AdminOperation, status: Int) {
        guard (200..<300).contains(status) else { return }
        let form = op.json
        switch op.name {
        case "user.invite": if let u = form["user"] as? String { invited.append(u) }
        case "org.create": if let o = form["org"] as? String { created.append(o) }
        case "user.remove": if let u = form["user"] as? String { invited.removeAll { $0 == u } }
        default: break
        }
    }
}

// MARK: Helpers

/// Runs `body(k)` for k in 0..<count, each on a thread of its own (blocking I/O must not sit
/// in the cooperative pool: two cores give it two threads), and returns their results in
/// order; waits for all of them (at most `timeout`).
func onThreads<T: Sendable>(_ count: Int, timeout: Duration, _ body: @escaping @Sendable (Int) throws -> T) async throws -> [T] {
    let results = Mutex<[Int: Result<T, any Error>]>([:])
    for k in 0..<count {
        let t = Thread {
            let r = Result { try body(k) }
            results.withLock { $0[k] = r }
        }
        t.stackSize = 1 << 22
        t.start()
    }
    let deadline = ContinuousClock.now + timeout
    while results.withLock({ $0.count }) < count {
        if ContinuousClock.now > deadline { throw PIAMError(.server, "\(count - results.withLock { $0.count }) client threads did not finish in \(timeout)") }
        try await Task.sleep(for: .milliseconds(10))
    }
    return try results.withLock { r in try (0..<count).map { try r[$0]!.get() } }
}

/// One HTTP/1.1 connection kept open for many requests (keep-alive), blocking: one client of
/// the concurrency test, on its own thread. Bodies with Content-Length or chunked.
final class KeepAliveHTTP {
    let fd: Int32
    let target: HTTPTarget
    private var buffer: [UInt8] = []

    init(_ target: HTTPTarget, timeoutSeconds: Int = 30) throws {
        self.target = target
        fd = try connectSocket(target)
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ method: String, _ path: String, headers: [String: String] = [:], json: [String: Any]?) throws -> HTTPReply {
        var h = headers
        var body: [UInt8] = []
        if let json {
            body = Array(try JSONSerialization.data(withJSONObject: json))
            h["Content-Type"] = "application/json"
        }
        return try send(method, path, headers: h, body: body)
    }

    /// Sends one request and reads its response; `sent` runs once the last byte is written.
    func send(_ method: String, _ path: String, headers: [String: String] = [:], body: [UInt8], sent: () -> Void = {}) throws -> HTTPReply {
        var h = headers
        if !body.isEmpty, h["Content-Type"] == nil { h["Content-Type"] = "application/json" }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\n"
        for (k, v) in h { head += "\(k): \(v)\r\n" }
        if !body.isEmpty || method == "POST" || method == "PUT" || method == "PATCH" { head += "Content-Length: \(body.count)\r\n" }
        let bytes = Array((head + "\r\n").utf8) + body
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
            guard n > 0 else { throw PIAMError(.connection, "write: errno \(errno)") }
            written += n
        }
        sent()
        // The head.
        var end: Int?
        while true {
            if let e = headEnd() { end = e; break }
            guard try fill() else { throw PIAMError(.connection, "the connection ended before a response (\(buffer.count) bytes)") }
        }
        let headEndIndex = end!
        let reply = try parseHTTPResponse(Array(buffer[..<(headEndIndex + 4)]))
        buffer.removeFirst(headEndIndex + 4)
        var payload: [UInt8] = []
        if reply.header("Transfer-Encoding")?.lowercased() == "chunked" {
            while true {
                let line = try readLine()
                guard let size = Int(line.split(separator: ";").first ?? "", radix: 16) else { throw PIAMError(.connection, "bad chunk size \(line)") }
                if size == 0 { _ = try readLine(); break }
                payload += try readExactly(size)
                _ = try readExactly(2)
            }
        } else if let len = reply.header("Content-Length").flatMap(Int.init) {
            payload = try readExactly(len)
        } else {
            while try fill() {}
            payload = buffer
            buffer = []
        }
        return HTTPReply(status: reply.status, headers: reply.headers, body: payload)
    }

    private func headEnd() -> Int? {
        guard buffer.count >= 4 else { return nil }
        for i in 0...(buffer.count - 4) where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 { return i }
        return nil
    }

    /// Reads what is there; false at EOF.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 { throw PIAMError(.connection, "read: errno \(errno)") }
        if n == 0 { return false }
        buffer += chunk[0..<n]
        return true
    }

    private func readExactly(_ n: Int) throws -> [UInt8] {
        while buffer.count < n {
            guard try fill() else { throw PIAMError(.connection, "the connection ended in a body") }
        }
        let out = Array(buffer[..<n])
        buffer.removeFirst(n)
        return out
    }

    private func readLine() throws -> String {
        while true {
            if let i = (0..<max(0, buffer.count - 1)).first(where: { buffer[$0] == 13 && buffer[$0 + 1] == 10 }) {
                let line = String(decoding: buffer[..<i], as: UTF8.self)
                buffer.removeFirst(i + 2)
                return line
            }
            guard try fill() else { throw PIAMError(.connection, "the connection ended in a chunk") }
        }
    }
}

/// A request sent from a thread of its own, observed from async code: when its last byte was
/// written, its answer (and when), or why there is none (the connection ended: the server was
/// killed).
final class BackgroundRequest: Sendable {
    private struct State {
        var sentAt: ContinuousClock.Instant?
        var reply: HTTPReply?
        var answeredAt: ContinuousClock.Instant?
        var failure: String?
    }
    private let state = Mutex(State())

    init(_ target: HTTPTarget, _ method: String, _ path: String, headers: [String: String], body: Data) {
        let bytes = Array(body)
        let t = Thread { [self] in
            do {
                let c = try KeepAliveHTTP(target, timeoutSeconds: 90)
                let r = try c.send(method, path, headers: headers, body: bytes) { state.withLock { $0.sentAt = .now } }
                state.withLock { $0.reply = r; $0.answeredAt = .now }
            } catch {
                state.withLock { $0.failure = "\(error)" }
            }
        }
        t.start()
    }

    var sentAt: ContinuousClock.Instant? { state.withLock { $0.sentAt } }
    var reply: HTTPReply? { state.withLock { $0.reply } }
    var answeredAt: ContinuousClock.Instant? { state.withLock { $0.answeredAt } }
    var failure: String? { state.withLock { $0.failure } }
}

/// Whether a write transaction is open on a database: `BEGIN IMMEDIATE` without waiting fails
/// while another connection holds the write lock (and is rolled back at once when it does not).
final class WriteLockProbe {
    let db: Database

    init(_ path: String) throws {
        db = try Database(path: path)
        try db.execute("PRAGMA busy_timeout=0")
    }

    func isHeld() throws -> Bool {
        do {
            try db.execute("BEGIN IMMEDIATE")
        } catch {
            if "\(error)".lowercased().contains("lock") || "\(error)".lowercased().contains("busy") { return true }
            throw error
        }
        try db.execute("ROLLBACK")
        return false
    }
}

/// Copies a closed database (its WAL and shared-memory files too, when present) over another,
/// which must be closed.
func copyDatabase(_ from: String, to: String) throws {
    let fm = FileManager.default
    for suffix in ["", "-wal", "-shm"] {
        if fm.fileExists(atPath: to + suffix) { try fm.removeItem(atPath: to + suffix) }
        if fm.fileExists(atPath: from + suffix) { try fm.copyItem(atPath: from + suffix, toPath: to + suffix) }
    }
}

/// An export with the grant times of the bulk run's people masked: the only field two
/// identical runs at different times write differently.
func masked(_ export: Data) -> String {
    String(decoding: export, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
        guard line.contains("\"user\": \"bulk-"), let r = line.range(of: "\"granted_at\": \"") else { return String(line) }
        guard let close = line[r.upperBound...].firstIndex(of: "\"") else { return String(line) }
        return String(line[..<r.upperBound]) + "T" + String(line[close...])
    }.joined(separator: "\n")
}

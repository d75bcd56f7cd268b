import Foundation
import PIAMClient
import PIAMDemo
import PIAMEngine
@testable import PIAMStore
import Testing

extension Fixture {
    /// Rewrites the fixture's database as schema v2 (before `granted_at`) held it: a new file
    /// made by the v1 and v2 migrations, the graph's rows copied in (the journal triggers
    /// number them afresh), renamed over the database.
    func rewriteAsSchemaV2() throws { try rewrite(asSchema: 2) }

    /// Rewrites the fixture's database as schema `version` (2 to 6) held it, the same way
    /// (the graph's rows; the tables of v4 and later start empty).
    func rewrite(asSchema version: Int) throws {
        precondition((2...6).contains(version))
        let grantedAt = version >= 3 ? ", granted_at" : ""
        let old = path("v\(version).db")
        do {
            let db = try Database(path: old, create: true)
            for (i, sql) in Schema.migrations.prefix(version).enumerated() {
                try db.execute(sql)
                try db.execute("PRAGMA user_version = \(i + 1)")
            }
            try db.execute("PRAGMA foreign_keys = OFF")
            try db.execute("ATTACH DATABASE '\(self.db)' AS src")
            try db.execute("""
                BEGIN;
                INSERT INTO meta SELECT key, value FROM src.meta;
                INSERT INTO orgs SELECT id, parent, name, kind, status FROM src.orgs;
                INSERT INTO roles SELECT id, name, description, permissions FROM src.roles;
                INSERT INTO users SELECT id, org, name, email, status, valid_until FROM src.users;
                INSERT INTO user_aliases SELECT alias, user FROM src.user_aliases;
                INSERT INTO resources SELECT type, id, org, owner, shared, name FROM src.resources;
                INSERT INTO entitlements SELECT org, role FROM src.entitlements;
                INSERT INTO assignments(id, user, role, scope, valid_until, granted_by\(grantedAt))
                  SELECT id, user, role, scope, valid_until, granted_by\(grantedAt) FROM src.assignments;
                INSERT INTO org_grants(id, org, role, include_suborgs, valid_until, granted_by\(grantedAt))
                  SELECT id, org, role, include_suborgs, valid_until, granted_by\(grantedAt) FROM src.org_grants;
                COMMIT;
                """)
            try db.execute("DETACH DATABASE src")
            try db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        }
        let fm = FileManager.default
        for suffix in ["", "-wal", "-shm"] { try? fm.removeItem(atPath: self.db + suffix) }
        try fm.moveItem(atPath: old, toPath: self.db)
        for suffix in ["-wal", "-shm"] { try? fm.removeItem(atPath: old + suffix) }
    }
}

/// `piamctl init` migrates the database under the running piamd reached by `c`: the daemon
/// reloads for the schema change (cause `schema-changed`), keeps serving `baseline`'s revision,
/// and answers 200 random checks as `baseline` does (a migration adds no graph row). Returns the
/// migrated graph and the daemon's full reloads before the migration's.
func migrateUnderDaemon(_ f: Fixture, _ c: PIAMClient, baseline: LoadedGraph,
                        seed: UInt64) async throws -> (migrated: LoadedGraph, full0: Int) {
    var doc = try await statusDocument(c)
    #expect(doc["revision"] as? Int == Int(baseline.revision) && doc["state"] as? String == "serving", "\(doc)")
    let full0 = reloadCounter(doc, "full_reloads")
    let migrate = try await piamctl(["init", "--db", f.db], in: f)
    #expect(migrate.code == 0 && migrate.out.contains("schema v\(Schema.latestVersion)"), "\(migrate)")
    doc = try await waitForStatus(c) { reloadCounter($0, "full_reloads") > full0 }
    #expect((doc["last_reload"] as? [String: Any])?["cause"] as? String == "schema-changed", "\(doc)")
    #expect(doc["state"] as? String == "serving" && doc["revision"] as? Int == Int(baseline.revision), "\(doc)")
    let migrated = try f.loaded()
    #expect(migrated.revision == baseline.revision)
    let checks = randomChecks(migrated.graph, count: 200, seed: seed)
    #expect(try await c.checkBatch(checks, minRevision: migrated.revision).value
            == baseline.graph.checkBatch(checks, semantic: .executeAll, now: QueryEvaluatorClock.now()))
    return (migrated, full0)
}

@Suite("piamd across the schema v3 migration (the real binary)", .serialized)
struct MigrationTests {
    @Test("piamd serving a v2 database keeps answering while piamctl init migrates it, reloads, follows the next commit and decides as a fresh load")
    func followsTheMigration() async throws {
        let f = try Fixture()
        try f.rewriteAsSchemaV2()
        let v2 = try Store(path: f.db, readOnly: true)
        #expect(try v2.schemaVersion == 2)
        let baseline = try v2.loadGraph()
        let d = try await DaemonProcess(f, env: ["PIAMD_RELOAD_POLL_MS": "100", "PIAMD_CONSISTENCY_TIMEOUT_MS": "5000"])
        let c = try await d.client()
        var doc = try await statusDocument(c)
        #expect(doc["revision"] as? Int == Int(baseline.revision) && doc["state"] as? String == "serving", "\(doc)")
        let full0 = reloadCounter(doc, "full_reloads")
        let checks = randomChecks(baseline.graph, count: 200, seed: 13)
        #expect(try await c.checkBatch(checks).value == baseline.graph.checkBatch(checks, semantic: .executeAll, now: QueryEvaluatorClock.now()))

        // Queries from another connection the whole time: every one is answered.
        let stop = ManagedFlag()
        let probe = CheckRequest(subject: "acme-brokers-north-b1-agent1", action: "view", resource: ResourceRef(type: "org", id: "acme-brokers-north"))
        let expected = baseline.graph.check(probe, now: QueryEvaluatorClock.now())
        let background = Task { () -> (answered: Int, wrong: [String]) in
            var answered = 0
            var wrong: [String] = []
            guard let bc = try? await d.client() else { return (0, ["cannot connect"]) }
            while !stop.isSet {
                do {
                    let a = try await bc.check(probe)
                    if a.value != expected { wrong.append("\(a.value) at revision \(a.revision)") }
                    answered += 1
                } catch {
                    wrong.append("\(error)")
                }
            }
            await bc.close()
            return (answered, wrong)
        }

        // The operator migrates (the upgraded piamctl): the revision stays, the schema changes.
        let migrate = try await piamctl(["init", "--db", f.db], in: f)
        #expect(migrate.code == 0 && migrate.out.contains("schema v\(Schema.latestVersion)"), "\(migrate)")
        doc = try await waitForStatus(c) { reloadCounter($0, "full_reloads") > full0 }
        #expect((doc["last_reload"] as? [String: Any])?["cause"] as? String == "schema-changed", "\(doc)")
        #expect(doc["state"] as? String == "serving" && doc["revision"] as? Int == Int(baseline.revision), "\(doc)")

        // A commit after the migration: a grant with its granter and time.
        let file = f.path("grant.json")
        try #"{"assignments": [{"user": "carl.claims", "role": "policy-viewer", "scope": "hq-claims", "granted_by": "pete.pm"}]}"#
            .write(toFile: file, atomically: true, encoding: .utf8)
        let imported = try await piamctl(["import", "--db", f.db, file, "--json"], in: f)
        #expect(imported.code == 0, "\(imported)")
        let fresh = try f.loaded()
        #expect(fresh.revision > baseline.revision)
        #expect(try await c.ping(minRevision: fresh.revision) == fresh.revision)
        stop.set()
        let (answered, wrong) = await background.value
        #expect(answered > 0 && wrong.isEmpty, "\(answered) answered; \(wrong.prefix(5))")

        // The daemon decides as a fresh load of the migrated database, and explains the same.
        let now = QueryEvaluatorClock.now()
        let after = randomChecks(fresh.graph, count: 300, seed: 14)
        let batch = try await c.checkBatch(after, minRevision: fresh.revision)
        #expect(batch.revision == fresh.revision && batch.value == fresh.graph.checkBatch(after, semantic: .executeAll, now: now))
        let request = CheckRequest(subject: "carl.claims", action: "read", resource: ResourceRef(type: "policy", id: "POL-X", org: "hq-claims"))
        let trace = try await c.explain(request, minRevision: fresh.revision).value.trace
        let daemonExplanation = try JSONDecoder().decode(Explanation.self, from: Data(trace.utf8))
        #expect(daemonExplanation == fresh.graph.explain(request, now: now))
        let granted = daemonExplanation.holdings.first { $0.role == "policy-viewer" && $0.source == "assignment" }
        #expect(granted?.grantedBy == "pete.pm" && granted?.grantedAt != nil, "\(daemonExplanation)")
        let older = daemonExplanation.holdings.filter { $0.source == "assignment" && $0.role != "policy-viewer" }
        #expect(older.allSatisfy { $0.grantedAt == nil }, "grants from before the migration: time unknown")
        let final = try await statusDocument(c)
        #expect(reloadCounter(final, "full_reloads") == full0 + 1, "the commit was applied, not reloaded")
        await c.close()
        #expect(await d.stop() == 0)
    }
}

@Suite("piamd across the schema v4 migration (the real binary)", .serialized)
struct CredentialsMigrationTests {
    @Test("piamd serving a v3 database keeps answering while piamctl init adds the credential tables, reloads, then follows an invitation's acceptance")
    func followsTheMigration() async throws {
        let f = try Fixture()
        try f.rewrite(asSchema: 3)
        let v3 = try Store(path: f.db, readOnly: true)
        #expect(try v3.schemaVersion == 3)
        let baseline = try v3.loadGraph()
        let d = try await DaemonProcess(f, env: ["PIAMD_RELOAD_POLL_MS": "100", "PIAMD_CONSISTENCY_TIMEOUT_MS": "5000"])
        let c = try await d.client()
        // The operator migrates: the revision stays, the schema changes, the daemon reloads.
        let (_, full0) = try await migrateUnderDaemon(f, c, baseline: baseline, seed: 21)

        // After: an invitation (not journaled) and its acceptance (journaled), followed in place.
        let invite = try await piamctl(["user", "invite", "--db", f.db, "dana", "--org", "acme-brokers-north-b1",
                                        "--as", "acme-brokers-north-admin", "--json"], in: f)
        #expect(invite.code == 0, "\(invite)")
        let object = (try? JSONSerialization.jsonObject(with: Data(invite.out.utf8))) as? [String: Any] ?? [:]
        let secret = try #require(object["invitation_token"] as? String)
        let accept = try await piamctl(["invitation", "accept", "--db", f.db, secret, "--identity", "okta|dana", "--json"], in: f)
        #expect(accept.code == 0, "\(accept)")
        let fresh = try f.loaded()
        #expect(fresh.revision > baseline.revision)
        let probe = CheckRequest(subject: "okta|dana", action: "view", resource: ResourceRef(type: "org", id: "acme-brokers-north-b1"))
        let answer = try await c.check(probe, minRevision: fresh.revision)
        #expect(answer.revision == fresh.revision && answer.value == fresh.graph.check(probe, now: QueryEvaluatorClock.now()))
        #expect(answer.value.allowed)
        // A token on the migrated database, and the audit log's credential.
        #expect(try await piamctl(["token", "create", "--db", f.db, "--user", "dana", "--name", "t"], in: f).code == 0)
        let audit = try Store(path: f.db, readOnly: true).auditLog()
        #expect(audit.suffix(3).map { "\($0.operation) \($0.credential ?? "-")" } == ["user.activate invitation", "user.alias.add invitation", "token.create cli"])
        let final = try await statusDocument(c)
        #expect(reloadCounter(final, "full_reloads") == full0 + 1, "the commits were applied, not reloaded")
        await c.close()
        #expect(await d.stop() == 0)
    }
}

@Suite("piamd across the schema v5 migration (the real binary)", .serialized)
struct SCIMMigrationTests {
    @Test("piamd serving a v4 database with credentials keeps answering while piamctl init adds identity namespaces and SCIM, reloads, then follows a SCIM write in place")
    func followsTheMigration() async throws {
        let f = try Fixture()
        try f.rewrite(asSchema: 4)
        // v4 data beyond the graph: an API token and an audit row.
        let secret = "piam_" + String(repeating: "A", count: 43)
        do {
            let raw = try Database(path: f.db)
            try raw.execute("""
                INSERT INTO api_tokens(user, name, hash, created_at) VALUES ('nina.hq', 'portal', '\(SHA256.hex(Array(secret.utf8)))', 1);
                INSERT INTO audit(at, actor, operation, target, decision, reason, revision, credential)
                  VALUES (1, 'nina.hq', 'user.invite', 'user:x', 'allowed', 'allowed', 1, 'cli');
                """)
        }
        let v4 = try Store(path: f.db, readOnly: true)
        #expect(try v4.schemaVersion == 4)
        let baseline = try v4.loadGraph()
        let d = try await DaemonProcess(f, env: ["PIAMD_RELOAD_POLL_MS": "100", "PIAMD_CONSISTENCY_TIMEOUT_MS": "5000"])
        let c = try await d.client()
        let (_, full0) = try await migrateUnderDaemon(f, c, baseline: baseline, seed: 31)
        // The data stayed: the graph, the v4 token (it still authenticates), the audit log.
        let store = try Store(path: f.db)
        guard case .valid(let t) = try store.authenticateToken(secret) else { Issue.record("the v4 token no longer authenticates"); return }
        #expect(t.user == "nina.hq")
        #expect(try store.auditLog().first.map { "\($0.operation) \($0.credential ?? "-")" } == "user.invite cli")

        // After: the business declares a namespace and a SCIM token; a SCIM create through the
        // real piam-admind is followed by piamd in place, at the revision it answered.
        #expect(try await piamctl(["namespace", "add", "--db", f.db, "acme-brokers", "@acme-brokers.example", "--as", "pete.pm"], in: f).code == 0)
        let (_, scim) = try store.createSCIMToken(partner: "acme-brokers", roles: ["partner-admin"], createdBy: "pete.pm")
        let admind = try await AdmindProcess(f)
        defer { Task { await admind.stop() } }
        let made = try admind.scim("POST", "acme-brokers", "/Users", token: scim, body: ["userName": "mia@acme-brokers.example"])
        #expect(made.status == 201, "\(made)")
        let revision = try #require(made.header("X-PIAM-Revision").flatMap { Int64($0) })
        let probe = CheckRequest(subject: "mia@acme-brokers.example", action: "view", resource: ResourceRef(type: "org", id: "acme-brokers"))
        let answer = try await c.check(probe, minRevision: revision)
        #expect(answer.revision >= revision && answer.value.allowed, "\(answer)")
        let final = try await statusDocument(c)
        #expect(reloadCounter(final, "full_reloads") == full0 + 1, "the SCIM write was applied, not reloaded")
        await c.close()
        #expect(await d.stop() == 0)
    }
}

@Suite("piamd across the schema v7 migration (the real binary)", .serialized)
struct JITMigrationTests {
    @Test("piamd serving a v6 database keeps answering while piamctl init adds just-in-time creation, reloads, then follows a JIT setting through the journal and creates a new person on forward-auth")
    func followsTheMigration() async throws {
        let f = try Fixture()
        try f.rewrite(asSchema: Schema.jitVersion - 1)
        let v6 = try Store(path: f.db, readOnly: true)
        #expect(try v6.schemaVersion == Schema.jitVersion - 1)
        let baseline = try v6.loadGraph()
        let admindPort = freeLoopbackPort()
        let tokenFile = f.path("jit.token")
        // commission-manager: a role acme-brokers' admin holds, so one it could assign.
        let routes = #"[{"method": "GET", "path": "/p/{org}/statements/{id}", "action": "read", "type": "statement", "id": "{id}", "org": "{org}"}]"#
        // piamd configured for JIT from the start (the token is read at startup: a placeholder).
        try "piam_placeholder".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let (d, _) = try await startHTTPDaemon(f, env: [
            "PIAMD_RELOAD_POLL_MS": "100", "PIAMD_CONSISTENCY_TIMEOUT_MS": "5000", "PIAMD_FORWARD_AUTH_ROUTES": routes,
            "PIAMD_JIT_ADMIND": "http://127.0.0.1:\(admindPort)", "PIAMD_JIT_TOKEN_FILE": tokenFile, "PIAMD_JIT_TIMEOUT_MS": "5000",
        ])
        let c = try await d.client()
        let (migrated, _) = try await migrateUnderDaemon(f, c, baseline: baseline, seed: 37)
        #expect(migrated.jit.isEmpty)

        // After: the business declares a namespace and enables JIT; piamd's service user gets
        // its token; piam-admind starts on the port piamd was configured with.
        #expect(try await piamctl(["namespace", "add", "--db", f.db, "acme-brokers", "okta-acme|", "--as", "pete.pm"], in: f).code == 0)
        let set = try await piamctl(["jit", "set", "--db", f.db, "acme-brokers", "--in", "acme-brokers", "--role", "commission-manager", "--as", "pete.pm"], in: f)
        #expect(set.code == 0, "\(set)")
        let show = try await piamctl(["jit", "show", "--db", f.db, "--json"], in: f)
        #expect(show.code == 0 && show.out.contains("\"commission-manager\"") && show.out.contains("okta-acme|"), "\(show)")
        let store = try Store(path: f.db)
        _ = try store.importJSON(Data("""
            {"roles": [{"id": "jit-provisioner", "permissions": ["org:invite_user"]}],
             "users": [{"id": "svc.piamd", "org": "host"}],
             "assignments": [{"user": "svc.piamd", "role": "jit-provisioner", "scope": "host"}]}
            """.utf8))
        try store.createToken(user: "svc.piamd", name: "jit", createdBy: "pete.pm").secret.write(toFile: tokenFile, atomically: true, encoding: .utf8)
        #expect(await d.stop() == 0)
        let (d2, http2) = try await startHTTPDaemon(f, env: [
            "PIAMD_FORWARD_AUTH_ROUTES": routes, "PIAMD_JIT_ADMIND": "http://127.0.0.1:\(admindPort)",
            "PIAMD_JIT_TOKEN_FILE": tokenFile, "PIAMD_JIT_TIMEOUT_MS": "5000", "PIAMD_RELOAD_POLL_MS": "100",
        ])
        let admind = try await AdmindProcess(f, tcpPort: admindPort)
        defer { Task { await admind.stop() } }
        let r = try httpRequest(http2, "GET", "/forward-auth", headers: ["X-Forwarded-User": "okta-acme|00u5", "X-Original-URI": "/p/acme-brokers/statements/ST-1"])
        #expect(r.status == 200 && r.header("X-PIAM-Subject") == Store.jitUserID(subject: "okta-acme|00u5"), "\(r) \(d2.log)")
        // The business switches JIT off: piamd learns it from the journal, in place.
        let c2 = try await d2.client()
        let full1 = reloadCounter(try await statusDocument(c2), "full_reloads")
        let clear = try await piamctl(["jit", "clear", "--db", f.db, "acme-brokers", "--as", "pete.pm", "--json"], in: f)
        #expect(clear.code == 0, "\(clear)")
        let revision = try Store(path: f.db, readOnly: true).revision()
        let off = try httpRequest(http2, "GET", "/forward-auth", headers: [
            "X-Forwarded-User": "okta-acme|00u6", "X-Original-URI": "/p/acme-brokers/statements/ST-1", "X-PIAM-Min-Revision": String(revision),
        ])
        #expect(off.status == 403 && off.header("X-PIAM-Reason") == "unknown_subject", "\(off)")
        #expect(reloadCounter(try await statusDocument(c2), "full_reloads") == full1, "the setting was applied from the journal, not reloaded")
        #expect(try Store(path: f.db, readOnly: true).user(idOrAlias: "okta-acme|00u6") == nil)
        await c.close()
        await c2.close()
        #expect(await d2.stop() == 0)
    }
}

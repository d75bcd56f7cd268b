import Foundation
import JWTKit
import PIAMAdmin
import PIAMDemo
import PIAMEngine
import PIAMStore
import Testing

/// piam-admind, the real process, over HTTP with real authentication.
@Suite("piam-admind over HTTP", .serialized)
struct AdmindTests {
    /// Every escalation attempt of the administration tests, over HTTP as the real actor (the
    /// proxy's header): refused with the engine's reason (403) — or, when the actor may not
    /// even see the target, 404 like an id that does not exist — nothing written, and a refused
    /// audit row with the reason and how the actor was authenticated.
    @Test func escalationsAreRefusedWithTheirReasonAndAudited() async throws {
        let f = try Fixture.delegation()
        let admind = try await AdmindProcess(f)
        defer { Task { await admind.stop() } }
        let before = try Store(path: f.db, readOnly: true).revision()
        for e in DelegationScenario.escalations(now: AdminAPI.now()) {
            let r = try admind.perform(e.operation, as: e.actor)
            let what = "\(e.operation.name) as \(e.actor)"
            let problem = try #require(r.json, "\(what): \(r)")
            #expect(r.header("Content-Type") == "application/problem+json", "\(what)")
            if r.status == 404 {
                // Hidden: the actor may not view the target, and a lookup says the same.
                let target = e.operation.target(actor: e.actor).split(separator: ":", maxSplits: 1)
                let lookup = try admind.call("GET", "/admin/v1/\(target[0] == "user" ? "users" : "orgs")/\(target[1].addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)", as: e.actor)
                #expect(lookup.status == 404, "\(what): the target is hidden but \(lookup)")
            } else {
                #expect(r.status == 403, "\(what): \(r)")
                #expect(problem["code"] as? String == e.reason, "\(what): \(r)")
            }
            let audit = try #require(try f.lastAudit())
            #expect(audit.decision == "refused" && audit.reason == e.reason && audit.operation == e.operation.name, "\(what): \(audit)")
            #expect(audit.credential == "header" && audit.actor == (e.actor == "okta|ann" ? "ann" : e.actor))
        }
        #expect(try Store(path: f.db, readOnly: true).revision() == before, "a refusal wrote something")
    }

    /// The delegation of the scenario works over HTTP: a partner's admin manages its sub-orgs'
    /// people, a sub-org admin its subtree, each answer carrying the revision piamd can be asked
    /// to reach (min_revision).
    @Test func delegatedAdministration() async throws {
        let f = try Fixture.delegation()
        let admind = try await AdmindProcess(f)
        defer { Task { await admind.stop() } }
        let invite = try admind.call("POST", "/admin/v1/users", as: "nora", body: ["user": "nell", "org": "acme-north-b1", "name": "Nell"])
        #expect(invite.status == 201, "\(invite)")
        let revision = try #require(invite.json?["revision"] as? Int)
        #expect(invite.header("ETag") == "\"\(revision)\"")
        #expect((invite.json?["invitation_token"] as? String)?.isEmpty == false)
        let grant = try admind.perform(.grant(user: "nell", role: "claims-viewer", scope: nil, validUntil: nil), as: "ann")
        #expect(grant.status == 201, "\(grant.text)")
        #expect(try admind.perform(.suspendUser(user: "nick"), as: "ann").status == 200, "the partner admin reaches the sub-org")
        #expect(try admind.perform(.suspendUser(user: "nick"), as: "nora").status == 200, "and so does the sub-org admin")
        #expect(try admind.perform(.createOrg(org: "acme-north-b2", parent: "acme-north", name: nil, kind: nil), as: "nora").status == 201)
        // Reads are scoped: nora sees its subtree, not its parent's people.
        let users = try admind.call("GET", "/admin/v1/users", as: "nora")
        let ids = Set(((users.json?["items"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String })
        #expect(ids.isSuperset(of: ["nora", "nick", "nell"]) && !ids.contains("ann") && !ids.contains("gus"), "\(ids)")
        let me = try admind.call("GET", "/admin/v1/me", as: "okta|ann")
        #expect(me.json?["user"] as? String == "ann" && me.json?["partner"] as? String == "acme")
        let orgActions = (me.json?["org_actions"] as? [String]) ?? []
        #expect(orgActions.contains("invite_user"))
        let userActions = Set((me.json?["user_actions"] as? [String]) ?? [])
        #expect(userActions.isSuperset(of: ["suspend", "assign_role", "view"]), "\(me)")
        // A partner admin reads its partner's audit, not another's.
        let audit = try admind.call("GET", "/admin/v1/audit?limit=2", as: "ann")
        #expect(audit.status == 200 && (audit.json?["items"] as? [Any])?.count == 2 && audit.json?["next_cursor"] is String)
        let gusAudit = try admind.call("GET", "/admin/v1/audit", as: "gus")
        #expect(((gusAudit.json?["items"] as? [[String: Any]]) ?? []).allSatisfy { $0["partner"] as? String == "globex" || $0["actor_partner"] as? String == "globex" })
    }

    /// A partner's admin probing another partner's ids gets 404 on every route, exactly as for
    /// ids that do not exist.
    @Test func anotherPartnersIdsAre404Everywhere() async throws {
        let f = try Fixture.delegation()
        let admind = try await AdmindProcess(f)
        defer { Task { await admind.stop() } }
        let before = try Store(path: f.db, readOnly: true).revision()
        for (user, org) in [("gus", "globex"), ("nobody-here", "no-such-org")] {
            let probes: [(String, String, Any?)] = [
                ("GET", "/admin/v1/users/\(user)", nil), ("GET", "/admin/v1/users/\(user)/grants", nil),
                ("GET", "/admin/v1/orgs/\(org)", nil), ("GET", "/admin/v1/orgs/\(org)/grants", nil),
                ("GET", "/admin/v1/users?org=\(org)", nil),
                ("POST", "/admin/v1/users/\(user)/suspend", nil), ("POST", "/admin/v1/users/\(user)/reactivate", nil),
                ("PATCH", "/admin/v1/users/\(user)", ["name": "x"]), ("DELETE", "/admin/v1/users/\(user)", nil),
                ("POST", "/admin/v1/users/\(user)/move", ["org": "acme"]), ("PUT", "/admin/v1/users/\(user)/aliases/zz-\(user)", nil),
                ("POST", "/admin/v1/users/\(user)/grants", ["role": "claims-viewer"]),
                ("DELETE", "/admin/v1/users/\(user)/grants/partner-admin", nil),
                ("POST", "/admin/v1/users/\(user)/invitation", nil),
                ("POST", "/admin/v1/orgs/\(org)/suspend", nil), ("PATCH", "/admin/v1/orgs/\(org)", ["name": "x"]),
                ("DELETE", "/admin/v1/orgs/\(org)", nil), ("POST", "/admin/v1/orgs/\(org)/grants", ["role": "claims-viewer"]),
                ("DELETE", "/admin/v1/orgs/\(org)/grants/partner-admin", nil),
                ("POST", "/admin/v1/users", ["user": "spy-\(user)", "org": org]),
            ]
            for (method, path, body) in probes {
                let r = try admind.call(method, path, as: "ann", body: body)
                #expect(r.status == 404, "\(method) \(path): \(r)")
                #expect(r.json?["code"] as? String == "not_found", "\(method) \(path): \(r)")
            }
        }
        #expect(try Store(path: f.db, readOnly: true).revision() == before)
    }

    /// Missing, wrong, expired and revoked credentials are 401; the proxy's header counts only
    /// on the listener that trusts it; tokens and JWTs name their user, whose writes are
    /// audited with the credential.
    @Test func everyAuthenticationPath() async throws {
        let f = try Fixture.delegation()
        // A JWKS with one ES256 key, and an issuer's signer.
        let key = ES256PrivateKey()
        let params = try #require(key.publicKey.parameters)
        let jwks = JWKS(keys: [.ecdsa(.es256, identifier: "k1", x: params.x, y: params.y, curve: .p256)])
        try JSONEncoder().encode(jwks).write(to: URL(fileURLWithPath: f.path("jwks.json")))
        let signer = JWTKeyCollection()
        await signer.add(ecdsa: key, kid: "k1")
        let rogue = JWTKeyCollection()
        await rogue.add(ecdsa: ES256PrivateKey(), kid: "k1")
        func jwt(_ sub: String, aud: String = "piam-admin", exp: TimeInterval = 300, with keys: JWTKeyCollection? = nil) async throws -> String {
            try await (keys ?? signer).sign(TestJWT(sub: .init(value: sub), iss: .init(value: "https://idp.test/"),
                                                    aud: .init(value: [aud]), exp: .init(value: Date().addingTimeInterval(exp))),
                                            kid: "k1")
        }
        let admind = try await AdmindProcess(f, env: [
            "PIAM_ADMIND_AUTH_JWT_JWKS": f.path("jwks.json"), "PIAM_ADMIND_AUTH_JWT_ISSUER": "https://idp.test/",
            "PIAM_ADMIND_AUTH_JWT_AUDIENCE": "piam-admin",
        ])
        defer { Task { await admind.stop() } }
        func me(_ r: HTTPReply) -> String? { r.status == 200 ? r.json?["user"] as? String : nil }
        func expect401(_ r: HTTPReply, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(r.status == 401 && r.json?["code"] as? String == "unauthenticated", "\(what): \(r)", sourceLocation: sourceLocation)
            #expect(r.header("WWW-Authenticate")?.hasPrefix("Bearer") == true, sourceLocation: sourceLocation)
        }
        // Missing.
        expect401(try httpRequest(admind.unix, "GET", "/admin/v1/me"), "no credential (unix)")
        expect401(try httpRequest(admind.tcp, "GET", "/admin/v1/me"), "no credential (tcp)")
        // The header: believed on the Unix socket, ignored on the loopback port.
        #expect(me(try admind.call("GET", "/admin/v1/me", as: "okta|ann")) == "ann")
        expect401(try httpRequest(admind.tcp, "GET", "/admin/v1/me", headers: ["X-Forwarded-User": "nina"]), "header on an untrusted listener")
        expect401(try admind.call("GET", "/admin/v1/me", as: "no-such-person"), "a header naming nobody")
        // API tokens: valid, wrong, revoked, expired.
        let created = try await piamctl(["token", "create", "--db", f.db, "--user", "ann", "--name", "portal", "--json"], in: f)
        #expect(created.code == 0, "\(created.err)")
        let token = try #require((try JSONSerialization.jsonObject(with: Data(created.out.utf8)) as? [String: Any])?["secret"] as? String)
        #expect(me(try admind.call("GET", "/admin/v1/me", bearer: token)) == "ann")
        expect401(try admind.call("GET", "/admin/v1/me", bearer: "piam_" + String(repeating: "A", count: 43)), "an unknown token")
        expect401(try admind.call("GET", "/admin/v1/me", bearer: "not-a-token"), "garbage")
        let suspended = try admind.call("POST", "/admin/v1/users/nick/suspend", bearer: token)
        #expect(suspended.status == 200, "\(suspended)")
        let audit = try #require(try f.lastAudit())
        #expect(audit.actor == "ann" && audit.credential?.hasPrefix("token:portal#") == true, "\(audit)")
        let store = try Store(path: f.db)
        let old = try store.createToken(user: "ann", name: "old", expires: AdminAPI.now() - 60_000, createdBy: "test",
                                        now: AdminAPI.now() - 3_600_000)
        expect401(try admind.call("GET", "/admin/v1/me", bearer: old.secret), "an expired token")
        let revoke = try await piamctl(["token", "revoke", "--db", f.db, "--user", "ann", "--name", "portal"], in: f)
        #expect(revoke.code == 0, "\(revoke.err)")
        expect401(try admind.call("GET", "/admin/v1/me", bearer: token), "a revoked token")
        // JWTs: valid (by alias), expired, another audience, another key; a bearer credential
        // that fails never falls back to the header.
        #expect(me(try admind.call("GET", "/admin/v1/me", bearer: try await jwt("okta|ann"))) == "ann")
        expect401(try admind.call("GET", "/admin/v1/me", bearer: try await jwt("ann", exp: -600)), "an expired JWT")
        expect401(try admind.call("GET", "/admin/v1/me", bearer: try await jwt("ann", aud: "other")), "a JWT for another audience")
        expect401(try admind.call("GET", "/admin/v1/me", bearer: try await jwt("ann", with: rogue)), "a JWT signed by another key")
        expect401(try httpRequest(admind.unix, "GET", "/admin/v1/me",
                                  headers: ["X-Forwarded-User": "nina", "Authorization": "Bearer \(try await jwt("ann", exp: -600))"]),
                  "a failing bearer with a trusted header")
        let viaJWT = try admind.call("POST", "/admin/v1/users/nick/reactivate", bearer: try await jwt("ann"))
        #expect(viaJWT.status == 200, "\(viaJWT)")
        #expect(try f.lastAudit()?.credential == "jwt")
    }

    /// Invitations for real: the invite answers a secret once; accepting it binds the person's
    /// identity and activates the user; it cannot be used twice; a resend revokes the old one.
    @Test func invitationsAreAcceptedOnce() async throws {
        let f = try Fixture.delegation()
        let admind = try await AdmindProcess(f)
        defer { Task { await admind.stop() } }
        let invite = try admind.call("POST", "/admin/v1/users", as: "ann", body: ["user": "ivy", "org": "acme"])
        let first = try #require(invite.json?["invitation_token"] as? String)
        let resend = try admind.call("POST", "/admin/v1/users/ivy/invitation", as: "ann")
        #expect(resend.status == 200, "\(resend)")
        let second = try #require(resend.json?["invitation_token"] as? String)
        let stale = try httpRequest(admind.tcp, "POST", "/admin/v1/invitations/accept", headers: ["Content-Type": "application/json"],
                                    body: Array(#"{"token": "\#(first)", "identity": "okta|ivy"}"#.utf8))
        #expect(stale.status == 404 || stale.status == 410, "\(stale)")
        let accept = try httpRequest(admind.tcp, "POST", "/admin/v1/invitations/accept", headers: ["Content-Type": "application/json"],
                                     body: Array(#"{"token": "\#(second)", "identity": "okta|ivy"}"#.utf8))
        #expect(accept.status == 200, "\(accept)")
        let again = try httpRequest(admind.tcp, "POST", "/admin/v1/invitations/accept", headers: ["Content-Type": "application/json"],
                                    body: Array(#"{"token": "\#(second)", "identity": "okta|ivy2"}"#.utf8))
        #expect(again.status == 410 || again.status == 404, "\(again)")
        let ivy = try admind.call("GET", "/admin/v1/me", as: "okta|ivy")
        #expect(ivy.json?["user"] as? String == "ivy" && ivy.json?["status"] as? String == "active", "\(ivy)")
        #expect(try f.lastAudit()?.credential == "invitation")
    }

    /// A retried POST with the same Idempotency-Key acts once; the same key for another request
    /// is refused; If-Match with a stale revision is 412 and writes nothing.
    @Test func idempotencyAndConditionalWrites() async throws {
        let f = try Fixture.delegation()
        let admind = try await AdmindProcess(f)
        defer { Task { await admind.stop() } }
        let key = ["Idempotency-Key": "retry-1"]
        let a = try admind.call("POST", "/admin/v1/users/nick/suspend", as: "ann", headers: key)
        let b = try admind.call("POST", "/admin/v1/users/nick/suspend", as: "ann", headers: key)
        #expect(a.status == 200 && b.status == 200 && a.text == b.text, "\(a) / \(b)")
        #expect(b.header("Idempotent-Replayed") == "true")
        let audits = try Store(path: f.db, readOnly: true).auditLog().filter { $0.operation == "user.suspend" }
        #expect(audits.count == 1, "the retry acted again")
        let other = try admind.call("POST", "/admin/v1/users/bob/suspend", as: "ann", headers: key)
        #expect(other.status == 422 && other.json?["code"] as? String == "idempotency_conflict", "\(other)")
        let revision = try #require(a.json?["revision"] as? Int)
        let ok = try admind.call("PATCH", "/admin/v1/users/bob", as: "ann", body: ["name": "Bob"], headers: ["If-Match": "\"\(revision)\""])
        #expect(ok.status == 200, "\(ok)")
        let stale = try admind.call("PATCH", "/admin/v1/users/bob", as: "ann", body: ["name": "Robert"], headers: ["If-Match": "\"\(revision)\""])
        #expect(stale.status == 412 && stale.json?["code"] as? String == "precondition_failed", "\(stale)")
        #expect(try Store(path: f.db, readOnly: true).user(idOrAlias: "bob")?.name == "Bob")
    }

    /// Bulk runs are all or nothing: a refusal in the middle leaves the database exactly as it
    /// was, and a committed run answers every entry.
    @Test func bulkRunsAreAllOrNothing() async throws {
        let f = try Fixture.delegation()
        let admind = try await AdmindProcess(f)
        defer { Task { await admind.stop() } }
        let before = try Store(path: f.db, readOnly: true).exportData()
        let refused = try admind.call("POST", "/admin/v1/apply", as: "ann", body: ["operations": [
            ["op": "user.invite", "user": "b1", "org": "acme"],
            ["op": "user.suspend", "user": "gus"],
        ]])
        #expect(refused.status == 404 || refused.status == 422, "\(refused)")
        #expect(try Store(path: f.db, readOnly: true).exportData() == before)
        let ok = try admind.call("POST", "/admin/v1/apply", as: "ann", body: ["operations": [
            ["op": "user.invite", "user": "b1", "org": "acme"],
            ["op": "grant", "user": "b1", "role": "claims-viewer"],
        ]])
        #expect(ok.status == 200 && ok.json?["committed"] as? Bool == true, "\(ok)")
        #expect((ok.json?["results"] as? [Any])?.count == 2)
    }
}

extension AdmindTests {
    /// Clients that open connections and send half a request, or hold connections past the
    /// limit, are closed after the idle timeout and never keep others from being served.
    @Test func misbehavingClientsAreClosedAndOthersServed() async throws {
        let f = try Fixture.delegation()
        let admind = try await AdmindProcess(f, env: ["PIAM_ADMIND_API_IDLE_TIMEOUT_MS": "300", "PIAM_ADMIND_API_MAX_CONNECTIONS": "8"])
        defer { Task { await admind.stop() } }
        guard case .unix(let path) = admind.unix else { return }
        // Eight connections: one sends half a request head, the others nothing.
        var stuck: [RawConnection] = []
        for i in 0..<8 {
            let c = try RawConnection(path: path)
            if i == 0 { c.send(Array("GET /admin/v1/me HTTP/1.1\r\nHost: x\r\n".utf8)) }
            stuck.append(c)
        }
        // With every slot taken, a well-behaved client is still served: its connection is
        // accepted once the idle timeout frees one.
        let me = try admind.call("GET", "/admin/v1/me", as: "ann")
        #expect(me.status == 200, "\(me)")
        // Each stalled one is closed by the server (EOF within RawConnection's 5 s read timeout).
        for c in stuck { #expect(c.readsEOF(), "a stalled connection was not closed") }
    }

    /// `POST /admin/v1/what-if`: the body of apply, decided as apply decides it for the
    /// authenticated user, nothing written or audited; the answer says who gains and loses what.
    @Test func whatIfAnswersTheDiffAndWritesNothing() async throws {
        let f = try Fixture.delegation()
        let admind = try await AdmindProcess(f)
        defer { Task { await admind.stop() } }
        let store = try Store(path: f.db, readOnly: true)
        let revision = try store.revision(), audits = try store.auditLog(AuditFilter(limit: 1000)).count
        // Suspending a sub-org: its two people lose everything they had.
        let r = try admind.call("POST", "/admin/v1/what-if", as: "ann", body: [["op": "org.suspend", "org": "acme-north"]])
        #expect(r.status == 200, "\(r)")
        #expect(r.json?["would_commit"] as? Bool == true && r.json?["revision"] as? Int == Int(revision))
        let people = (r.json?["people"] as? [[String: Any]]) ?? []
        #expect(people.compactMap { $0["user"] as? String } == ["nick", "nora"], "\(r)")
        for p in people {
            #expect((p["gained"] as? [Any])?.isEmpty == true)
            let lost = (p["lost"] as? [[String: Any]]) ?? []
            #expect(lost.contains { $0["permission"] as? String == "user:view" && $0["scope"] as? String == p["org"] as? String }, "\(p)")
        }
        let nora = people.first { $0["user"] as? String == "nora" }
        #expect(((nora?["lost"] as? [[String: Any]]) ?? []).contains { $0["permission"] as? String == "user:suspend" && $0["scope"] as? String == "acme-north" })
        // A refusal is reported as refused, and nobody gains or loses anything.
        let refused = try admind.call("POST", "/admin/v1/what-if", as: "ann",
                                      body: ["operations": [["op": "org.suspend", "org": "acme-north"],
                                                            ["op": "grant", "user": "bob", "role": "approver"]]])
        #expect(refused.status == 422 && refused.json?["code"] as? String == "escalation", "\(refused)")
        #expect(refused.json?["would_commit"] as? Bool == false && refused.json?["people"] == nil)
        let results = (refused.json?["results"] as? [[String: Any]]) ?? []
        #expect(results.map { $0["status"] as? String } == ["ok", "refused"] && results.last?["reason"] as? String == "escalation", "\(refused)")
        // An entry that fails (nick holds no claims-viewer): 422 with the results, as for apply.
        let failed = try admind.call("POST", "/admin/v1/what-if", as: "ann", body: [["op": "revoke", "user": "nick", "role": "claims-viewer"]])
        #expect(failed.status == 422 && failed.json?["code"] as? String == "not_found", "\(failed)")
        // Another partner's ids: 404, as for apply.
        let hidden = try admind.call("POST", "/admin/v1/what-if", as: "ann", body: [["op": "user.suspend", "user": "gus"]])
        #expect(hidden.status == 404, "\(hidden)")
        // Nothing was written, not even an audit row.
        #expect(try store.revision() == revision)
        #expect(try store.auditLog(AuditFilter(limit: 1000)).count == audits)
        // Findings over HTTP: each partner admin gets its own partner's, the business everyone's.
        let annFindings = try admind.call("GET", "/admin/v1/findings?days=0", as: "ann")
        let annItems = (annFindings.json?["items"] as? [[String: Any]]) ?? []
        #expect(annFindings.status == 200 && !annItems.isEmpty && annItems.allSatisfy { $0["partner"] as? String == "acme" }, "\(annFindings)")
        let gusItems = (try admind.call("GET", "/admin/v1/findings?days=0", as: "gus").json?["items"] as? [[String: Any]]) ?? []
        #expect(!gusItems.isEmpty && gusItems.allSatisfy { $0["partner"] as? String == "globex" }, "\(gusItems)")
        let all = try admind.call("GET", "/admin/v1/findings?days=0&limit=2", as: "nina")
        #expect((all.json?["items"] as? [Any])?.count == 2 && all.json?["next_cursor"] is String, "\(all)")
        let nick = try admind.call("GET", "/admin/v1/findings?days=0", as: "nick")
        #expect(nick.status == 200 && (nick.json?["items"] as? [Any])?.isEmpty == true, "a user without administrative rights sees none: \(nick)")
        // And the real apply does what the what-if said.
        let real = try admind.call("POST", "/admin/v1/apply", as: "ann", body: [["op": "org.suspend", "org": "acme-north"]])
        #expect(real.status == 200 && real.json?["committed"] as? Bool == true, "\(real)")
    }

    @Test("findings over HTTP read piamd's usage files (usage.paths): a person with a recent allowed decision is not dormant")
    func findingsReadTheUsageFiles() async throws {
        let f = try Fixture.delegation()
        let now = QueryEvaluatorClock.now()
        func dormant(_ admind: AdmindProcess) throws -> Set<String> {
            let r = try admind.call("GET", "/admin/v1/findings?days=30&limit=1000", as: "nina")
            #expect(r.status == 200, "\(r)")
            let items = (r.json?["items"] as? [[String: Any]]) ?? []
            return Set(items.filter { $0["kind"] as? String == "dormant_person" }.compactMap { $0["user"] as? String })
        }
        // Without usage files every active person with holdings is dormant.
        let plain = try await AdmindProcess(f)
        let before = try dormant(plain)
        await plain.stop()
        #expect(before.contains("nora") && before.contains("bob"), "\(before)")
        // A usage file (as piamd writes it) in which nora was allowed a decision just now.
        try FileManager.default.createDirectory(atPath: f.path("usage"), withIntermediateDirectories: true)
        let usage = try UsageDatabase(path: f.path("usage/host1.db"))
        try usage.record(UsageBatch(features: [.init(user: "nora", partner: "acme", type: "claim", action: "read", allowed: 3, denied: 0,
                                                   firstAllowed: now, lastAllowed: now)]), now: now)
        let admind = try await AdmindProcess(f, env: ["PIAM_ADMIND_USAGE_PATHS": f.path("usage")])
        defer { Task { await admind.stop() } }
        let after = try dormant(admind)
        #expect(!after.contains("nora") && after.contains("bob"), "\(after)")
        #expect(after == before.subtracting(["nora"]))
    }
}

extension AdmindTests {
    /// `GET /admin/v1/usage/…`: `piamctl usage`'s reports over HTTP, exact against a usage file
    /// written as piamd writes it, each filtered to what the caller may view (another partner's
    /// partner or person is a 404); without usage files the reports say so.
    @Test("usage reports over HTTP: exact against a usage file, each filtered to what the caller may view")
    func usageReportsOverHTTP() async throws {
        let f = try Fixture.delegation()
        let now = QueryEvaluatorClock.now()
        let plain = try await AdmindProcess(f)
        let unconfigured = try plain.call("GET", "/admin/v1/usage/partners", as: "nina")
        await plain.stop()
        #expect(unconfigured.status == 404 && unconfigured.json?["code"] as? String == "not_configured", "\(unconfigured)")

        try FileManager.default.createDirectory(atPath: f.path("usage"), withIntermediateDirectories: true)
        let usage = try UsageDatabase(path: f.path("usage/host1.db"))
        try usage.record(UsageBatch(
            features: [
                .init(user: "nora", partner: "acme", type: "claim", action: "read", allowed: 3, denied: 1, firstAllowed: now, lastAllowed: now),
                .init(user: "ann", partner: "acme", type: "claim", action: "read", allowed: 2, denied: 0, firstAllowed: now, lastAllowed: now),
                .init(user: "ann", partner: "acme", type: "claim", action: "approve", allowed: 0, denied: 4, firstAllowed: nil, lastAllowed: nil),
                .init(user: "gus", partner: "globex", type: "claim", action: "read", allowed: 1, denied: 0, firstAllowed: now, lastAllowed: now),
            ],
            holdings: [.init(holding: .assignment(user: "ann", role: "claims-viewer", scope: "acme"), uses: 2, lastUsed: now),
                       .init(holding: .orgGrant(org: "partners", role: "partner-user"), uses: 4, lastUsed: now)]), now: now)
        let admind = try await AdmindProcess(f, env: ["PIAM_ADMIND_USAGE_PATHS": f.path("usage")])
        defer { Task { await admind.stop() } }

        // The business ranks every partner; acme (2 active people) before globex (1).
        let all = try admind.call("GET", "/admin/v1/usage/partners", as: "nina")
        #expect(all.status == 200, "\(all)")
        let ranking = (all.json?["items"] as? [[String: Any]]) ?? []
        #expect(ranking.map { $0["partner"] as? String } == ["acme", "globex"], "\(ranking)")
        #expect(ranking.first?["active_30d"] as? Int == 2 && ranking.first?["allowed"] as? Int == 5
                && ranking.first?["denied"] as? Int == 5, "\(ranking)")
        // Paged by position.
        let first = try admind.call("GET", "/admin/v1/usage/partners?limit=1", as: "nina")
        let next = first.json?["next_cursor"] as? String
        #expect((first.json?["items"] as? [[String: Any]])?.count == 1 && next != nil, "\(first)")
        let second = try admind.call("GET", "/admin/v1/usage/partners?limit=1&cursor=\(next ?? "")", as: "nina")
        #expect((second.json?["items"] as? [[String: Any]])?.first?["partner"] as? String == "globex", "\(second)")
        // A partner admin sees its own partner only.
        let own = try admind.call("GET", "/admin/v1/usage/partners", as: "ann")
        #expect(((own.json?["items"] as? [[String: Any]]) ?? []).map { $0["partner"] as? String } == ["acme"], "\(own)")

        // One partner: people by status from the graph, active people and features from the file.
        let acme = try admind.call("GET", "/admin/v1/usage/partners/acme", as: "ann")
        #expect(acme.status == 200, "\(acme)")
        #expect(acme.json?["users_by_status"] as? [String: Int] == ["active": 4], "\(acme)")
        #expect(acme.json?["active"] as? [String: Int] == ["1d": 2, "7d": 2, "30d": 2, "90d": 2], "\(acme)")
        let features = (acme.json?["features"] as? [[String: Any]]) ?? []
        #expect(features.count == 2 && features.first?["feature"] as? String == "claim:read"
                && features.first?["people"] as? Int == 2 && features.first?["allowed"] as? Int == 5
                && features.first?["denied"] as? Int == 1, "\(features)")
        #expect(features.last?["feature"] as? String == "claim:approve" && features.last?["people"] as? Int == 0
                && features.last?["last_allowed"] is NSNull, "\(features)")
        #expect(try admind.call("GET", "/admin/v1/usage/partners/globex", as: "ann").status == 404)
        #expect(try admind.call("GET", "/admin/v1/usage/partners/acme-north", as: "nina").status == 404, "not a partner root")

        // One person: last activity, features, each holding with its last use.
        let ann = try admind.call("GET", "/admin/v1/usage/users/okta%7Cann", as: "ann")
        #expect(ann.status == 200, "\(ann)")
        #expect(ann.json?["user"] as? String == "ann" && ann.json?["partner"] as? String == "acme"
                && ann.json?["last_activity"] as? String == RFC3339.format(now), "\(ann)")
        let holdings = (ann.json?["holdings"] as? [[String: Any]]) ?? []
        let viewer = holdings.first { $0["role"] as? String == "claims-viewer" }
        #expect(viewer?["uses"] as? Int == 2 && viewer?["last_used"] as? String == RFC3339.format(now), "\(holdings)")
        let admin = holdings.first { $0["role"] as? String == "partner-admin" }
        #expect(admin?["uses"] as? Int == 0 && admin?["last_used"] is NSNull, "\(holdings)")
        #expect(try admind.call("GET", "/admin/v1/usage/users/gus", as: "ann").status == 404)
        #expect(try admind.call("GET", "/admin/v1/usage/users/ann?features=0", as: "ann").status == 400)

        // Findings by kind: the dormant people only.
        let dormant = try admind.call("GET", "/admin/v1/findings?days=30&kind=dormant_person&limit=1000", as: "nina")
        let kinds = Set(((dormant.json?["items"] as? [[String: Any]]) ?? []).compactMap { $0["kind"] as? String })
        #expect(dormant.status == 200 && kinds == ["dormant_person"], "\(dormant)")
        #expect(try admind.call("GET", "/admin/v1/findings?kind=nonsense", as: "nina").status == 400)
    }
}

/// A JWT payload for the tests.
struct TestJWT: JWTPayload {
    var sub: SubjectClaim
    var iss: IssuerClaim
    var aud: AudienceClaim
    var exp: ExpirationClaim
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

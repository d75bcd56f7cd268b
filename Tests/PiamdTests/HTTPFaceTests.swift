import Foundation
import PIAMClient
import PIAMEngine
import PIAMStore
import Testing

/// The routes the forward-auth tests configure (through PIAMD_FORWARD_AUTH_ROUTES).
let testRoutes = #"""
[{"method": "GET,HEAD", "path": "/claims/{id}", "action": "read", "type": "claim", "id": "{id}"},
 {"method": "POST", "path": "/claims/{id}/withdraw", "action": "withdraw", "type": "claim", "id": "{id}"},
 {"path": "/partners/{org}/users/{user}", "action": "view", "type": "user", "id": "{user}"},
 {"method": "GET", "path": "/partners/{org}/reports/{rid}", "action": "read", "type": "report", "id": "{rid}", "org": "{org}"}]
"""#

@Suite("piamd's HTTP face (the real binary)", .serialized)
struct HTTPFaceTests {
    static let evaluation = "/access/v1/evaluation"
    static let evaluations = "/access/v1/evaluations"

    static func subject(_ id: String, type: String = "user") -> [String: Any] { ["type": type, "id": id] }
    static func resource(_ r: ResourceRef) -> [String: Any] {
        var o: [String: Any] = ["type": r.type, "id": r.id]
        var p: [String: Any] = [:]
        if let org = r.org { p["org"] = org }
        if let owner = r.owner { p["owner"] = owner }
        if !p.isEmpty { o["properties"] = p }
        return o
    }
    static func body(_ c: CheckRequest, type: String = "user") -> [String: Any] {
        ["subject": subject(c.subject, type: type), "action": ["name": c.action], "resource": resource(c.resource)]
    }

    @Test("evaluation answers exactly what the engine decides, with details only when asked")
    func evaluationMatchesEngine() async throws {
        let f = try Fixture()
        let (d, http) = try await startHTTPDaemon(f)
        let local = try f.loaded()
        let g = local.graph
        let now = QueryEvaluatorClock.now()
        var checks = randomChecks(g, count: 120, seed: 11)
        // Unregistered resources located by properties, and a subject named by an alias.
        checks.append(CheckRequest(subject: "okta|carl", action: "read", resource: ResourceRef(type: "claim", id: "EXT-1", org: "hq-claims")))
        checks.append(CheckRequest(subject: "acme-brokers-north-admin", action: "read", resource: ResourceRef(type: "claim", id: "EXT-2", org: "acme-brokers-north")))
        // Claims users may read (from the engine's own lists): a good share of allows.
        for user in g.allUserIDs.prefix(60) {
            for id in try g.listResources(subject: user, action: "read", type: "claim", limit: 2, now: now).items {
                checks.append(CheckRequest(subject: user, action: "read", resource: ResourceRef(type: "claim", id: id)))
            }
        }
        var allowed = 0
        for (i, c) in checks.enumerated() {
            let expected = g.check(c, now: now)
            allowed += expected.allowed ? 1 : 0
            let type = i % 2 == 0 ? "user" : "identity"
            let r = try postJSON(http, Self.evaluation, Self.body(c, type: type))
            #expect(r.status == 200)
            #expect(r.json?["decision"] as? Bool == expected.allowed, "\(c)")
            #expect(r.json?.keys.sorted() == ["decision"], "nothing beyond the spec's fields unless asked")
            #expect(r.header("X-PIAM-Revision") == String(local.revision))
        }
        #expect(allowed > 5 && allowed < checks.count - 5, "the sample has both answers: \(allowed) of \(checks.count)")
        // Details on request: reason, code and revision in the response's context.
        let deny = CheckRequest(subject: "acme-brokers-north-admin", action: "view", resource: ResourceRef(type: "user", id: "bluesky-agency-admin"))
        var b = Self.body(deny)
        b["context"] = ["piam_details": true, "anything": "else"]
        b["unknown_top_level_field"] = 1
        let r = try postJSON(http, Self.evaluation, b)
        let ctx = try #require(r.json?["context"] as? [String: Any])
        #expect(r.json?["decision"] as? Bool == false)
        #expect(ctx["reason"] as? String == "out_of_scope" && ctx["reason_code"] as? Int == 7)
        #expect(ctx["revision"] as? Int == Int(local.revision))
        // A subject type that names no PIAM user is a deny, not an error.
        let other = try postJSON(http, Self.evaluation, Self.body(CheckRequest(subject: "carl.claims", action: "read",
            resource: ResourceRef(type: "claim", id: "CLM-HQ-0001")), type: "service"))
        #expect(other.status == 200 && other.json?["decision"] as? Bool == false)
        let same = try postJSON(http, Self.evaluation, Self.body(CheckRequest(subject: "carl.claims", action: "read",
            resource: ResourceRef(type: "claim", id: "CLM-HQ-0001"))))
        #expect(same.json?["decision"] as? Bool == true)
        await d.stop()
    }

    @Test("bad input: 400 with a message naming the field; 404, 405, 413; X-Request-ID echoed")
    func badInput() async throws {
        let f = try Fixture()
        let (d, http) = try await startHTTPDaemon(f, env: ["PIAMD_HTTP_MAX_BODY_BYTES": "4096"])
        let ok = Self.body(CheckRequest(subject: "carl.claims", action: "read", resource: ResourceRef(type: "claim", id: "CLM-HQ-0001")))
        func with(_ key: String, _ value: Any?) -> [String: Any] {
            var b = ok
            b[key] = value
            return b
        }
        let cases: [(String, [UInt8], String)] = try [
            (Self.evaluation, [], "empty"),
            (Self.evaluation, Array("{\"subject\": ".utf8), "not valid JSON"),
            (Self.evaluation, Array("[1, 2]".utf8), "must be a JSON object"),
            (Self.evaluation, json(with("subject", nil)), "subject is required"),
            (Self.evaluation, json(with("subject", "carl")), "subject must be an object"),
            (Self.evaluation, json(with("subject", ["id": "carl.claims"])), "subject.type is required"),
            (Self.evaluation, json(with("subject", ["type": "user"])), "subject.id is required"),
            (Self.evaluation, json(with("subject", ["type": "user", "id": 7])), "subject.id must be a string"),
            (Self.evaluation, json(with("subject", ["type": "user", "id": ""])), "subject.id must not be empty"),
            (Self.evaluation, json(with("action", nil)), "action is required"),
            (Self.evaluation, json(with("action", ["verb": "read"])), "action.name is required"),
            (Self.evaluation, json(with("resource", ["type": "claim"])), "resource.id is required"),
            (Self.evaluation, json(with("resource", ["type": "claim", "id": "X", "properties": [1]])), "resource.properties must be an object"),
            (Self.evaluation, json(with("resource", ["type": "claim", "id": "X", "properties": ["org": 5]])), "resource.properties.org must be a non-empty string"),
            (Self.evaluation, json(with("context", "yes")), "context must be an object"),
            (Self.evaluations, json(with("evaluations", ["a": 1])), "evaluations must be a list"),
            (Self.evaluations, json(with("options", ["evaluations_semantic": "first"])), "evaluations_semantic must be"),
            (Self.evaluations, json(with("options", "fast")), "options must be an object"),
            (Self.evaluations, json(with("subject", nil)), "subject is required"),
            ("/access/v1/search/subject", json(["subject": ["type": "user"], "action": ["name": "read"], "resource": ["type": "claim"]]), "resource.id is required"),
            ("/access/v1/search/resource", json(["subject": ["type": "user", "id": "carl.claims"], "action": ["name": "read"], "resource": ["id": "x"]]), "resource.type is required"),
            ("/access/v1/search/resource", json(["subject": ["type": "user", "id": "carl.claims"], "action": ["name": "read"], "resource": ["type": "claim"], "page": 3]), "page must be an object"),
            ("/access/v1/search/resource", json(["subject": ["type": "user", "id": "carl.claims"], "action": ["name": "read"], "resource": ["type": "claim"], "page": ["limit": -1]]), "page.limit must be a non-negative integer"),
            ("/access/v1/search/resource", json(["subject": ["type": "user", "id": "carl.claims"], "action": ["name": "read"], "resource": ["type": "claim"], "page": ["token": "zz"]]), "page.token"),
            ("/access/v1/search/action", json(["subject": ["type": "user", "id": "carl.claims"], "resource": ["type": "claim", "id": "C"], "page": ["token": "zz"]]), "page.token"),
            ("/access/v1/search/action", json(["subject": ["type": "user"], "resource": ["type": "claim", "id": "C"]]), "subject.id is required"),
        ]
        for (i, (path, body, message)) in cases.enumerated() {
            let r = try httpRequest(http, "POST", path, headers: ["X-Request-ID": "req-\(i)", "Content-Type": "application/json"], body: body)
            #expect(r.status == 400, "\(path) \(String(decoding: body, as: UTF8.self)): \(r)")
            let error = r.json?["error"] as? [String: Any]
            #expect(error?["code"] as? String == "invalid_input")
            #expect((error?["message"] as? String)?.contains(message) == true, "\(message) in \(r)")
            #expect(r.header("X-Request-ID") == "req-\(i)")
        }
        // Unknown fields are ignored.
        var extra = ok
        extra["subject"] = ["type": "user", "id": "carl.claims", "properties": ["department": "claims"], "x": 1]
        extra["resource"] = ["type": "claim", "id": "CLM-HQ-0001", "properties": ["ownerID": "nobody"]]
        #expect(try postJSON(http, Self.evaluation, extra).json?["decision"] as? Bool == true)

        let notFound = try httpRequest(http, "GET", "/access/v2/evaluation")
        #expect(notFound.status == 404 && notFound.text.contains("no such endpoint"))
        let wrongMethod = try httpRequest(http, "GET", Self.evaluation, headers: ["X-Request-ID": "m1"])
        #expect(wrongMethod.status == 405 && wrongMethod.header("Allow") == "POST" && wrongMethod.header("X-Request-ID") == "m1")
        let tooLarge = try httpRequest(http, "POST", Self.evaluation, body: Array(repeating: UInt8(ascii: " "), count: 5000))
        #expect(tooLarge.status == 413 && tooLarge.text.contains("http.max_body_bytes"))
        let badRevision = try httpRequest(http, "POST", Self.evaluation, headers: ["X-PIAM-Min-Revision": "soon"], body: try json(ok))
        #expect(badRevision.status == 400 && badRevision.text.contains("X-PIAM-Min-Revision"))
        // Still serving after all of that.
        #expect(try postJSON(http, Self.evaluation, ok).json?["decision"] as? Bool == true)
        await d.stop()
    }

    @Test("evaluations: defaults and per-item overrides, the three semantics, undecidable items")
    func batchSemantics() async throws {
        let f = try Fixture()
        let (d, http) = try await startHTTPDaemon(f)
        let g = try f.loaded().graph
        let now = QueryEvaluatorClock.now()
        let claims = g.allResources.filter { $0.type == "claim" }.prefix(12).map { ResourceRef(type: "claim", id: $0.id) }
        let subject = "carl.claims"
        let partner = "acme-brokers-north-admin"
        // Mixed: some items replace the subject with a partner admin (denied on HQ claims).
        var items: [[String: Any]] = []
        var expected: [Bool] = []
        for (i, c) in claims.enumerated() {
            var item: [String: Any] = ["resource": Self.resource(c)]
            let s = i % 3 == 2 ? partner : subject
            if s != subject { item["subject"] = Self.subject(s) }
            items.append(item)
            expected.append(g.check(CheckRequest(subject: s, action: "read", resource: c), now: now).allowed)
        }
        #expect(expected.contains(true) && expected.contains(false))
        let base: [String: Any] = ["subject": Self.subject(subject), "action": ["name": "read"], "evaluations": items]
        func run(_ semantic: String?) throws -> [Bool] {
            var b = base
            if let semantic { b["options"] = ["evaluations_semantic": semantic] }
            let r = try postJSON(http, Self.evaluations, b)
            #expect(r.status == 200)
            return try #require(r.json?["evaluations"] as? [[String: Any]]).map { $0["decision"] as? Bool ?? true }
        }
        #expect(try run(nil) == expected)
        #expect(try run("execute_all") == expected)
        let firstDeny = expected.firstIndex(of: false)!
        #expect(try run("deny_on_first_deny") == Array(expected[...firstDeny]))
        let firstPermit = expected.firstIndex(of: true)!
        #expect(try run("permit_on_first_permit") == Array(expected[...firstPermit]))

        // An item that cannot be evaluated is {"decision": false}; the rest are answered.
        var broken = base
        broken["evaluations"] = [items[0], ["resource": ["type": "claim"]], 42, items[0]]
        let r = try postJSON(http, Self.evaluations, broken)
        #expect(r.status == 200)
        #expect((r.json?["evaluations"] as? [[String: Any]])?.map { $0["decision"] as? Bool } == [expected[0], false, false, expected[0]])
        // Per-item context asks for details for that item only.
        var detailed = base
        detailed["evaluations"] = [items[0], ["resource": Self.resource(claims[0]), "context": ["piam_details": true]]]
        let dr = try #require(try postJSON(http, Self.evaluations, detailed).json?["evaluations"] as? [[String: Any]])
        #expect(dr[0]["context"] == nil && (dr[1]["context"] as? [String: Any])?["reason"] as? String == (expected[0] ? "allowed" : nil))
        // No items (missing or empty): one evaluation, answered as such.
        for evaluations: Any? in [nil, [Any]()] {
            var single = base
            single["evaluations"] = evaluations
            single["resource"] = Self.resource(claims[0])
            let s = try postJSON(http, Self.evaluations, single)
            #expect(s.status == 200 && s.json?["decision"] as? Bool == expected[0] && s.json?["evaluations"] == nil)
        }
        await d.stop()
    }

    @Test("search: subject, resource and action searches page through next_token and equal the engine")
    func searchPaging() async throws {
        let f = try Fixture()
        let (d, http) = try await startHTTPDaemon(f)
        let g = try f.loaded().graph
        let now = QueryEvaluatorClock.now()
        func all(_ path: String, _ body: [String: Any], limit: Int, key: String) throws -> (items: [String], pages: Int) {
            var token = ""
            var out: [String] = []
            var pages = 0
            repeat {
                var b = body
                b["page"] = ["limit": limit, "token": token]
                let r = try postJSON(http, path, b)
                try #require(r.status == 200, "\(r)")
                let results = try #require(r.json?["results"] as? [[String: Any]])
                #expect(results.count <= limit)
                out += results.map { $0[key] as? String ?? "?" }
                token = try #require((r.json?["page"] as? [String: Any])?["next_token"] as? String)
                pages += 1
            } while !token.isEmpty && pages < 1000
            return (out, pages)
        }
        // Resources: the head-office supervisor reads every claim.
        let expectedClaims = try g.listResources(subject: "carl.claims", action: "read", type: "claim", limit: 100_000, now: now).items
        #expect(expectedClaims.count > 50)
        let claims = try all("/access/v1/search/resource", ["subject": Self.subject("carl.claims"), "action": ["name": "read"],
                                                             "resource": ["type": "claim"]], limit: 7, key: "id")
        #expect(claims.items == expectedClaims && claims.pages > 5)
        // Subjects of one claim, a page of 2 at a time.
        let claim = try #require(try expectedClaims.lazy.map { ResourceRef(type: "claim", id: $0) }.first {
            try g.listSubjects(action: "read", resource: $0, limit: 100_000, now: now).items.count > 2
        })
        let expectedUsers = try g.listSubjects(action: "read", resource: claim, limit: 100_000, now: now).items
        #expect(expectedUsers.count > 2)
        let users = try all("/access/v1/search/subject", ["subject": ["type": "user"], "action": ["name": "read"],
                                                           "resource": Self.resource(claim)], limit: 2, key: "id")
        #expect(users.items == expectedUsers && users.pages >= 2)
        // Actions.
        let expectedActions = g.listActions(subject: "carl.claims", resource: claim, now: now)
        let actions = try all("/access/v1/search/action", ["subject": Self.subject("carl.claims"), "resource": Self.resource(claim)],
                              limit: 2, key: "name")
        #expect(actions.items == expectedActions && expectedActions.count > 2)
        // Unknown ids and types: empty results, not errors.
        for (path, body) in [
            ("/access/v1/search/resource", ["subject": Self.subject("nobody"), "action": ["name": "read"], "resource": ["type": "claim"]]),
            ("/access/v1/search/resource", ["subject": Self.subject("carl.claims"), "action": ["name": "read"], "resource": ["type": "spaceship"]]),
            ("/access/v1/search/subject", ["subject": ["type": "user"], "action": ["name": "read"], "resource": ["type": "claim", "id": "NO-SUCH"]]),
            ("/access/v1/search/subject", ["subject": ["type": "robot"], "action": ["name": "read"], "resource": Self.resource(claim)]),
            ("/access/v1/search/action", ["subject": Self.subject("nobody"), "resource": Self.resource(claim)]),
        ] as [(String, [String: Any])] {
            let r = try postJSON(http, path, body)
            #expect(r.status == 200 && (r.json?["results"] as? [Any])?.isEmpty == true, "\(path) \(body)")
            #expect((r.json?["page"] as? [String: Any])?["next_token"] as? String == "")
        }
        await d.stop()
    }

    @Test("discovery, health (200 serving, 503 degraded) and a loopback TCP listener")
    func discoveryAndHealth() async throws {
        let f = try Fixture()
        let port = freeLoopbackPort()
        let (d, http) = try await startHTTPDaemon(f, env: ["PIAMD_HTTP_PUBLIC_URL": "https://pdp.example.com/", "PIAMD_RELOAD_POLL_MS": "100"],
                                                  listen: "127.0.0.1:\(port)")
        let r = try httpRequest(http, "GET", "/.well-known/authzen-configuration")
        #expect(r.status == 200)
        let doc = try #require(r.json as? [String: String])
        #expect(doc == [
            "policy_decision_point": "https://pdp.example.com",
            "access_evaluation_endpoint": "https://pdp.example.com/access/v1/evaluation",
            "access_evaluations_endpoint": "https://pdp.example.com/access/v1/evaluations",
            "search_subject_endpoint": "https://pdp.example.com/access/v1/search/subject",
            "search_resource_endpoint": "https://pdp.example.com/access/v1/search/resource",
            "search_action_endpoint": "https://pdp.example.com/access/v1/search/action",
        ])
        let health = try httpRequest(http, "GET", "/healthz")
        #expect(health.status == 200 && health.json?["status"] as? String == "serving")
        // The database disappears: piamd keeps serving its last graph, degraded; /healthz says 503.
        try FileManager.default.moveItem(atPath: f.db, toPath: f.db + ".away")
        var degraded: HTTPReply?
        for _ in 0..<100 {
            let h = try httpRequest(http, "GET", "/healthz")
            if h.status == 503 { degraded = h; break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(degraded?.json?["status"] as? String == "degraded", "\(String(describing: degraded))")
        let still = try postJSON(http, Self.evaluation, Self.body(CheckRequest(subject: "carl.claims", action: "read",
                                                                                 resource: ResourceRef(type: "claim", id: "CLM-HQ-0001"))))
        #expect(still.json?["decision"] as? Bool == true, "decisions go on from the last good graph")
        try FileManager.default.moveItem(atPath: f.db + ".away", toPath: f.db)
        try await waitForHTTP(http, "/healthz")
        await d.stop()
    }

    @Test("X-PIAM-Min-Revision: read-your-writes over HTTP, 503 when the revision never comes")
    func minRevision() async throws {
        let f = try Fixture()
        let (d, http) = try await startHTTPDaemon(f, env: ["PIAMD_RELOAD_POLL_MS": "0", "PIAMD_CONSISTENCY_TIMEOUT_MS": "300"])
        let rev = try f.touch(1)
        let ok = Self.body(CheckRequest(subject: "carl.claims", action: "read", resource: ResourceRef(type: "claim", id: "CLM-HQ-0001")))
        let r = try postJSON(http, Self.evaluation, ok, headers: ["X-PIAM-Min-Revision": String(rev)])
        #expect(r.status == 200 && Int64(r.header("X-PIAM-Revision") ?? "") == rev)
        let start = ContinuousClock.now
        let stale = try postJSON(http, Self.evaluation, ok, headers: ["X-PIAM-Min-Revision": String(rev + 1000), "X-Request-ID": "s"])
        #expect(stale.status == 503 && stale.text.contains("not reached") && stale.header("X-Request-ID") == "s")
        #expect(ContinuousClock.now - start >= .milliseconds(250))
        await d.stop()
    }

    @Test("forward-auth: 401 without identity, 200 with the upstream headers, 403 with the reason")
    func forwardAuthDirect() async throws {
        let f = try Fixture()
        let (d, http) = try await startHTTPDaemon(f, env: ["PIAMD_FORWARD_AUTH_ROUTES": testRoutes])
        let local = try f.loaded()
        let g = local.graph
        let now = QueryEvaluatorClock.now()
        let claim = g.allResources.first { $0.type == "claim" && $0.id.hasPrefix("CLM-0") }!
        let owner = g.location(of: ResourceRef(type: "claim", id: claim.id))!.owner!
        #expect(g.check(CheckRequest(subject: owner, action: "read", resource: ResourceRef(type: "claim", id: claim.id)), now: now).allowed)
        func fa(_ headers: [String: String], method: String = "GET") throws -> HTTPReply {
            try httpRequest(http, method, "/forward-auth", headers: headers)
        }
        let none = try fa(["X-Original-URI": "/claims/\(claim.id)", "X-Original-Method": "GET"])
        #expect(none.status == 401)
        let ok = try fa(["X-Forwarded-User": owner, "X-Original-URI": "/claims/\(claim.id)?tab=1", "X-Original-Method": "GET"])
        #expect(ok.status == 200, "\(ok)")
        #expect(ok.header("X-PIAM-Subject") == owner)
        #expect(ok.header("X-PIAM-Org") == g.location(of: ResourceRef(type: "user", id: owner))?.org)
        #expect(ok.header("X-PIAM-Revision") == String(local.revision))
        // Caddy/Traefik's headers; the method decides the route (POST withdraw is owner-only).
        let claimRef = ResourceRef(type: "claim", id: claim.id)
        let withdraw = g.check(CheckRequest(subject: owner, action: "withdraw", resource: claimRef), now: now)
        let caddy = try fa(["X-Forwarded-User": owner, "X-Forwarded-Uri": "/claims/\(claim.id)/withdraw", "X-Forwarded-Method": "POST"])
        #expect(caddy.status == (withdraw.allowed ? 200 : 403), "\(caddy)")
        #expect(caddy.header("X-PIAM-Reason") == (withdraw.allowed ? nil : withdraw.reason.name))
        let other = g.check(CheckRequest(subject: "bluesky-agency-admin", action: "read", resource: claimRef), now: now)
        #expect(!other.allowed)
        let deny = try fa(["X-Forwarded-User": "bluesky-agency-admin", "X-Forwarded-Uri": "/claims/\(claim.id)", "X-Forwarded-Method": "GET"])
        #expect(deny.status == 403 && deny.header("X-PIAM-Reason") == other.reason.name)
        let noRoute = try fa(["X-Forwarded-User": owner, "X-Original-URI": "/admin", "X-Original-Method": "GET"])
        #expect(noRoute.status == 403 && noRoute.header("X-PIAM-Reason") == "no_route")
        let wrongMethod = try fa(["X-Forwarded-User": owner, "X-Original-URI": "/claims/\(claim.id)", "X-Original-Method": "DELETE"])
        #expect(wrongMethod.status == 403 && wrongMethod.header("X-PIAM-Reason") == "no_route")
        let traversal = try fa(["X-Forwarded-User": owner, "X-Original-URI": "/claims/../admin", "X-Original-Method": "GET"])
        #expect(traversal.status == 403 && traversal.header("X-PIAM-Reason") == "invalid_uri")
        let noURI = try fa(["X-Forwarded-User": owner])
        #expect(noURI.status == 400)
        // Path parameters fill org (an unregistered report located at the partner's org).
        let admin = "acme-brokers-north-admin"
        let report = try fa(["X-Forwarded-User": admin, "X-Original-URI": "/partners/acme-brokers-north/reports/R-1", "X-Original-Method": "GET"])
        let expected = g.check(CheckRequest(subject: admin, action: "read", resource: ResourceRef(type: "report", id: "R-1", org: "acme-brokers-north")), now: now)
        #expect((report.status == 200) == expected.allowed)
        let view = try fa(["X-Forwarded-User": admin, "X-Original-URI": "/partners/acme-brokers-north/users/acme-brokers-north-b1-agent1", "X-Original-Method": "GET"])
        #expect(view.status == 200, "\(view)")
        await d.stop()

        // forward_auth.no_route = allow, and another subject header.
        let (d2, http2) = try await startHTTPDaemon(f, env: ["PIAMD_FORWARD_AUTH_ROUTES": testRoutes, "PIAMD_FORWARD_AUTH_NO_ROUTE": "allow",
                                                             "PIAMD_FORWARD_AUTH_SUBJECT_HEADER": "X-Auth-Request-User"])
        let open = try httpRequest(http2, "GET", "/forward-auth", headers: ["X-Auth-Request-User": owner, "X-Original-URI": "/public"])
        #expect(open.status == 200 && open.header("X-PIAM-Subject") == owner)
        let stillChecked = try httpRequest(http2, "GET", "/forward-auth", headers: ["X-Auth-Request-User": "bluesky-agency-admin",
                                                                                    "X-Original-URI": "/claims/\(claim.id)"])
        #expect(stillChecked.status == 403)
        await d2.stop()
    }

    @Test("/metrics parses as Prometheus text and its counters move with socket and HTTP traffic")
    func metrics() async throws {
        let f = try Fixture()
        let (d, http) = try await startHTTPDaemon(f, env: ["PIAMD_RELOAD_POLL_MS": "100"])
        func scrape() throws -> PrometheusText {
            let r = try httpRequest(http, "GET", "/metrics")
            #expect(r.status == 200 && r.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
            return try PrometheusText(r.text)
        }
        let g = try f.loaded().graph
        let before = try scrape()
        #expect(before.types["piam_decisions_total"] == "counter")
        #expect(before.types["piam_request_duration_seconds"] == "histogram")
        #expect(before.value("piam_graph_reloads_total") == 1)
        #expect(before.value("piam_graph_revision") == Double(try f.loaded().revision))
        // Socket traffic: 25 checks (allowed) and a batch of 4 (denied) over the binary protocol.
        let c = try await d.client()
        let allow = CheckRequest(subject: "carl.claims", action: "read", resource: ResourceRef(type: "claim", id: "CLM-HQ-0001"))
        let deny = CheckRequest(subject: "acme-brokers-north-admin", action: "read", resource: ResourceRef(type: "claim", id: "CLM-HQ-0001"))
        let denyReason = g.check(deny, now: QueryEvaluatorClock.now()).reason
        #expect(denyReason != .allowed)
        for _ in 0..<25 { _ = try await c.check(allow) }
        _ = try await c.checkBatch(Array(repeating: deny, count: 4), semantic: .executeAll)
        let connectionsDuring = try scrape().value("piam_connections", ["interface": "socket"])
        await c.close()
        // HTTP traffic: 3 evaluations.
        for _ in 0..<3 { _ = try postJSON(http, Self.evaluation, Self.body(allow)) }
        // A commit: the poll (or inotify) applies it; wait for the scrape to show it.
        let written = try f.touch(2)
        try await waitFor("the commit to show in /metrics") { try scrape().value("piam_graph_revision") >= Double(written) }
        let after = try scrape()
        func delta(_ name: String, _ labels: [String: String] = [:]) -> Double { after.value(name, labels) - before.value(name, labels) }
        #expect(delta("piam_requests_total", ["interface": "socket", "op": "check"]) == 25)
        #expect(delta("piam_requests_total", ["interface": "socket", "op": "check_batch"]) == 1)
        #expect(delta("piam_requests_total", ["interface": "http", "op": "check"]) == 3)
        #expect(delta("piam_decisions_total", ["result": "allow", "reason": "allowed"]) == 28)
        #expect(delta("piam_decisions_total", ["result": "deny"]) == 4)
        #expect(delta("piam_decisions_total", ["result": "deny", "reason": denyReason.name]) == 4)
        #expect(delta("piam_request_duration_seconds_count", ["interface": "socket"]) == 26)
        #expect(delta("piam_request_duration_seconds_count", ["interface": "http"]) == 3)
        #expect(after.value("piam_request_duration_seconds_bucket", ["interface": "socket", "le": "0.001"]) > 0,
                "microsecond buckets see decisions")
        #expect(delta("piam_http_responses_total", ["endpoint": "evaluation", "code": "200"]) == 3)
        #expect(delta("piam_graph_reloads_total") >= 1)
        #expect(after.value("piam_graph_revision") == Double(try f.loaded().revision))
        #expect(connectionsDuring >= 1)
        #expect(after.value("piam_connections", ["interface": "http"]) >= 1, "the scrape's own connection")
        #expect(after.value("piam_degraded") == 0)
        // The parser is strict: it refuses what is not exposition text.
        #expect(throws: PIAMError.self) { try PrometheusText("piam_x 1\n") }
        #expect(throws: PIAMError.self) { try PrometheusText("# TYPE piam_x counter\npiam_x{a=\"1} 1\n") }
        #expect(throws: PIAMError.self) { try PrometheusText("# TYPE piam_x counter\npiam_x one\n") }
        await d.stop()
    }
}

func json(_ object: Any) throws -> [UInt8] { Array(try JSONSerialization.data(withJSONObject: object)) }

import Foundation
import PIAMClient
import PIAMEngine
import PIAMStore
import Testing

/// What a mix of decisions must leave in the usage files: computed with the engine in-process.
struct ExpectedUsage {
    struct Feature: Hashable {
        var partner: String
        var allowed = 0
        var denied = 0
    }
    var features: [[String]: Feature] = [:]
    var holdings: [[String]: Int] = [:]

    mutating func add(_ c: CheckRequest, _ g: AccessGraph, now: Timestamp) {
        var f = DecisionFacts()
        let d = g.check(c, now: now, facts: &f)
        guard let n = g.usageNames(f) else { return }
        let key = [n.user, n.type, n.action]
        var x = features[key] ?? Feature(partner: n.partner ?? "")
        if d.allowed { x.allowed += 1 } else { x.denied += 1 }
        features[key] = x
        switch n.holding {
        case .assignment(let user, let role, let scope)?: holdings[["assignment", user, role, scope], default: 0] += 1
        case .orgGrant(let org, let role)?: holdings[["org_grant", org, role, ""], default: 0] += 1
        case nil: break
        }
    }

    /// The people of `partner` with an allowed decision.
    func activePeople(_ partner: String) -> Int {
        Set(features.filter { $0.value.partner == partner && $0.value.allowed > 0 }.map { $0.key[0] }).count
    }
}

/// The rows of a usage database, as `ExpectedUsage` counts them.
func usageRows(_ path: String) throws -> ExpectedUsage {
    let db = try Database(path: path, readOnly: true)
    var out = ExpectedUsage()
    let f = try db.prepare("SELECT user, partner, type, action, allowed, denied FROM feature_use")
    while try f.step() {
        out.features[[f.text(0), f.text(2), f.text(3)]] = .init(partner: f.text(1), allowed: Int(f.int64(4)), denied: Int(f.int64(5)))
    }
    let h = try db.prepare("SELECT kind, subject, role, scope, uses FROM holding_use")
    while try h.step() { out.holdings[[h.text(0), h.text(1), h.text(2), h.text(3)]] = Int(h.int64(4)) }
    return out
}

@Suite("usage recording (the real piamd and piamctl)", .serialized)
struct UsageTests {
    @Test("the engine's attribution: the same decision, and the allowing holding is the first explain allows")
    func attributionMatchesExplain() throws {
        let f = try Fixture()
        let g = try f.loaded().graph
        let now = QueryEvaluatorClock.now()
        var allowed = 0
        // Random requests (mostly denied) and every claim read by its owner (allowed through an
        // assignment or an org grant).
        let owned = g.allResources.filter { $0.type == "claim" }.compactMap { r in
            g.location(of: ResourceRef(type: r.type, id: r.id))?.owner.map {
                CheckRequest(subject: $0, action: "read", resource: ResourceRef(type: r.type, id: r.id))
            }
        }
        for c in randomChecks(g, count: 20000, seed: 41) + owned {
            var facts = DecisionFacts()
            let d = g.check(c, now: now, facts: &facts)
            #expect(d == g.check(c, now: now))
            // Every decision about a known subject names its type and action (an id, or -2 for
            // one the graph never names), whichever step decided it.
            if d.reason != .unknownSubject {
                #expect(facts.subject >= 0 && facts.type != -1 && facts.action != -1, "\(c): \(d.reason) \(facts)")
                let n = try #require(g.usageNames(facts))
                #expect((facts.type == -2 ? "?" : c.resource.type) == n.type && (facts.action == -2 ? "?" : c.action) == n.action)
            }
            guard d.allowed else {
                #expect(facts.holding == -1)
                continue
            }
            allowed += 1
            let e = g.explain(c, now: now)
            let first = try #require(e.holdings.first { $0.rule == "allowed" })
            let named = try #require(g.usageHolding(facts.holding))
            switch named {
            case .assignment(let user, let role, let scope):
                #expect(first.source == "assignment" && first.role == role && first.scope == scope && user == e.subject?.id)
            case .orgGrant(let org, let role):
                #expect(first.source == "org_grant" && first.role == role && first.grantOrg == org)
            }
        }
        #expect(allowed > 100)
    }

    @Test("a known mix over the socket, AuthZEN and forward-auth: every row and report figure exact")
    func knownMixIsReportedExactly() async throws {
        let f = try Fixture()
        try FileManager.default.createDirectory(atPath: f.path("usage"), withIntermediateDirectories: true)
        let usage = f.path("usage/host1.db")
        let decisionLog = f.path("usage/decisions.ndjson")
        let (d, http) = try await startHTTPDaemon(f, env: [
            "PIAMD_FORWARD_AUTH_ROUTES": testRoutes, "PIAMD_USAGE_PATH": usage, "PIAMD_USAGE_FLUSH_MS": "200",
            "PIAMD_DECISION_LOG_PATH": decisionLog, "PIAMD_DECISION_LOG_MODE": "all",
        ])
        let loaded = try f.loaded()
        let g = loaded.graph
        let now = QueryEvaluatorClock.now()
        var expected = ExpectedUsage()
        var decided: [CheckRequest] = []

        // The socket: single checks (the fast path), batches (one with a short circuit).
        let client = try await d.client()
        // Random requests, with some allowed through an org grant among the first 200.
        let viaGrant = randomChecks(g, count: 20000, seed: 44).filter { c in
            var facts = DecisionFacts()
            return g.check(c, now: now, facts: &facts).allowed && facts.orgGrant != nil
        }.prefix(30)
        let checks = Array(viaGrant) + randomChecks(g, count: 600 - viaGrant.count, seed: 42)
        for c in checks[0..<200] {
            _ = try await client.check(c)
            expected.add(c, g, now: now)
            decided.append(c)
        }
        let batch = Array(checks[200..<260])
        _ = try await client.checkBatch(batch)
        for c in batch { expected.add(c, g, now: now) }
        decided += batch
        let shortBatch = Array(checks[260..<300])
        let decidedCount = g.checkBatch(shortBatch, semantic: .denyOnFirstDeny, now: now).count
        _ = try await client.checkBatch(shortBatch, semantic: .denyOnFirstDeny)
        for c in shortBatch.prefix(decidedCount) { expected.add(c, g, now: now) }
        decided += shortBatch.prefix(decidedCount)
        await client.close()

        // AuthZEN: single evaluations and a batch.
        for c in checks[300..<450] {
            let r = try postJSON(http, HTTPFaceTests.evaluation, HTTPFaceTests.body(c))
            #expect(r.status == 200)
            expected.add(c, g, now: now)
            decided.append(c)
        }
        let items = Array(checks[450..<500])
        let r = try postJSON(http, HTTPFaceTests.evaluations, ["evaluations": items.map { HTTPFaceTests.body($0) }])
        #expect(r.status == 200)
        for c in items { expected.add(c, g, now: now) }
        decided += items

        // Forward-auth: claims read by their owners and by others.
        let claims = g.allResources.filter { $0.type == "claim" }.prefix(40)
        let users = g.allUserIDs
        for (i, claim) in claims.enumerated() {
            let owner = g.location(of: ResourceRef(type: "claim", id: claim.id))?.owner
            let who = i % 3 == 0 ? users[(i * 7) % users.count] : (owner ?? users[i % users.count])
            let reply = try httpRequest(http, "GET", "/forward-auth", headers: [
                "X-Forwarded-User": who, "X-Original-URI": "/claims/\(claim.id)", "X-Original-Method": "GET",
            ])
            #expect(reply.status == 200 || reply.status == 403)
            let c = CheckRequest(subject: who, action: "read", resource: ResourceRef(type: "claim", id: claim.id))
            expected.add(c, g, now: now)
            decided.append(c)
        }
        #expect(expected.features.values.contains { $0.allowed > 0 } && expected.holdings.count > 5)
        #expect(expected.holdings.keys.contains { $0[0] == "org_grant" } && expected.holdings.keys.contains { $0[0] == "assignment" })

        // SIGTERM: the last flush writes what is left.
        #expect(await d.stop() == 0)
        let rows = try usageRows(usage)
        #expect(rows.features == expected.features)
        #expect(rows.holdings == expected.holdings)

        // The decision log (mode all): one line per decision, every field as the engine decided.
        let lines = try String(contentsOfFile: decisionLog, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == decided.count)
        var logged: [String: Int] = [:], want: [String: Int] = [:]
        var ids = Set<String>()
        for line in lines {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let r = o["resource"] as! [String: Any]
            ids.insert(o["decision_id"] as! String)
            #expect(o["revision"] as? Int == Int(loaded.revision) && o["timestamp"] is String)
            let holding = (o["holding"] as? [String: Any]).map { "\($0["source"]!):\($0["role"]!)" } ?? "-"
            logged["\(o["subject"]!)|\(o["action"]!)|\(r["type"]!)|\(r["id"]!)|\(o["result"]!)|\(o["reason"]!)|\(holding)", default: 0] += 1
        }
        #expect(ids.count == lines.count, "decision ids are unique")
        for c in decided {
            var facts = DecisionFacts()
            let dd = g.check(c, now: now, facts: &facts)
            let holding: String = switch g.usageHolding(facts.holding) {
            case .assignment(_, let role, _)?: "assignment:\(role)"
            case .orgGrant(_, let role)?: "org_grant:\(role)"
            case nil: "-"
            }
            want["\(c.subject)|\(c.action)|\(c.resource.type)|\(c.resource.id)|\(dd.allowed ? "allow" : "deny")|\(dd.reason.name)|\(holding)", default: 0] += 1
        }
        #expect(logged == want)

        // The reports, through piamctl, against the same mix.
        let partner = "acme-brokers"
        let p = try await piamctl(["usage", "partner", partner, "--db", f.db, "--usage", usage, "--json", "--limit", "1000"], in: f)
        #expect(p.code == 0, "\(p.err)")
        let report = try JSONSerialization.jsonObject(with: Data(p.out.utf8)) as! [String: Any]
        let active = report["active"] as! [String: Int]
        #expect(active["1d"] == expected.activePeople(partner) && active["90d"] == expected.activePeople(partner))
        let mine = expected.features.filter { $0.value.partner == partner }
        var byFeature: [String: (people: Int, allowed: Int, denied: Int)] = [:]
        for (k, v) in mine {
            var x = byFeature["\(k[1]):\(k[2])"] ?? (0, 0, 0)
            x.people += v.allowed > 0 ? 1 : 0
            x.allowed += v.allowed
            x.denied += v.denied
            byFeature["\(k[1]):\(k[2])"] = x
        }
        let listed = report["features"] as! [[String: Any]]
        #expect(listed.count == byFeature.count)
        for item in listed {
            let want = try #require(byFeature[item["feature"] as! String])
            #expect(item["people"] as? Int == want.people && item["allowed"] as? Int == want.allowed && item["denied"] as? Int == want.denied)
        }
        let counts = listed.map { [$0["people"] as! Int, $0["allowed"] as! Int] }
        #expect(counts == counts.sorted { ($0[0], $0[1]) > ($1[0], $1[1]) }, "most used first")

        // One person: every holding with its uses.
        let person = try #require(expected.holdings.keys.first { $0[0] == "assignment" }?[1])
        let u = try await piamctl(["usage", "user", person, "--db", f.db, "--usage", usage, "--json"], in: f)
        #expect(u.code == 0, "\(u.err)")
        let userReport = try JSONSerialization.jsonObject(with: Data(u.out.utf8)) as! [String: Any]
        #expect(userReport["last_activity"] is String)
        for h in userReport["holdings"] as! [[String: Any]] where h["source"] as? String == "assignment" {
            let uses = expected.holdings[["assignment", person, h["role"] as! String, h["scope"] as! String]] ?? 0
            #expect(h["uses"] as? Int == uses)
        }

        // Two hosts: the reports merge them (counts added).
        try FileManager.default.copyItem(atPath: usage, toPath: f.path("usage/host2.db"))
        let both = try UsageReader(paths: [usage, f.path("usage/host2.db")])
        let all = try both.features(partner: partner, limit: 1000)
        for item in all {
            let want = try #require(byFeature[item.feature])
            #expect(item.allowed == 2 * want.allowed && item.denied == 2 * want.denied && item.people == want.people)
        }
        let ranking = try await piamctl(["usage", "partners", "--db", f.db, "--usage", f.path("usage"), "--csv"], in: f)
        #expect(ranking.code == 0 && ranking.out.hasPrefix("partner,active_30d,active_7d,allowed,denied,last_activity\n"), "\(ranking)")
        #expect(ranking.out.contains("\n\(partner),\(expected.activePeople(partner)),"))
    }

    @Test("decision log: deny-only, rotated at max_bytes keeping decision_log.keep files, every line a denial")
    func decisionLogDenyOnlyRotates() async throws {
        let f = try Fixture()
        let log = f.path("decisions.ndjson")
        let d = try await DaemonProcess(f, env: [
            "PIAMD_DECISION_LOG_PATH": log, "PIAMD_DECISION_LOG_MAX_BYTES": "4096", "PIAMD_DECISION_LOG_KEEP": "2",
            "PIAMD_USAGE_FLUSH_MS": "50",
        ])
        let g = try f.loaded().graph
        let now = QueryEvaluatorClock.now()
        let client = try await d.client()
        var denials = 0
        // In rounds, so that flushes (and rotations) happen between them.
        for round in 0..<8 {
            for c in randomChecks(g, count: 100, seed: 50 + UInt64(round)) {
                _ = try await client.check(c)
                if !g.check(c, now: now).allowed { denials += 1 }
            }
            let deadline = ContinuousClock.now + .seconds(10)
            let before = (try? FileManager.default.attributesOfItem(atPath: log)[.size] as? Int) ?? 0
            while ContinuousClock.now < deadline {
                let size = (try? FileManager.default.attributesOfItem(atPath: log)[.size] as? Int) ?? 0
                if size != before { break }  // this round's denials were flushed
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        await client.close()
        #expect(await d.stop() == 0)
        #expect(denials > 300)
        let fm = FileManager.default
        #expect(fm.fileExists(atPath: log) && fm.fileExists(atPath: log + ".1") && fm.fileExists(atPath: log + ".2"))
        #expect(!fm.fileExists(atPath: log + ".3"), "keep = 2")
        var kept = 0
        for path in [log, log + ".1", log + ".2"] {
            for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") {
                let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                #expect(o["result"] as? String == "deny" && o["reason"] as? String != "allowed")
                kept += 1
            }
        }
        #expect(kept > 0 && kept < denials, "older files were rotated away")
        #expect(!fm.fileExists(atPath: f.path("usage.db")), "no usage database without usage.path")
    }

    @Test("SIGKILL loses at most the interval not yet flushed and never corrupts the usage database")
    func killLosesAtMostOneInterval() async throws {
        let f = try Fixture()
        let usage = f.path("usage.db")
        let d = try await DaemonProcess(f, env: ["PIAMD_USAGE_PATH": usage, "PIAMD_USAGE_FLUSH_MS": "100"])
        let g = try f.loaded().graph
        let now = QueryEvaluatorClock.now()
        let client = try await d.client()
        let checks = randomChecks(g, count: 800, seed: 43)
        var first = ExpectedUsage()
        for c in checks[0..<400] {
            _ = try await client.check(c)
            first.add(c, g, now: now)
        }
        func total(_ e: ExpectedUsage) -> Int { e.features.values.reduce(0) { $0 + $1.allowed + $1.denied } }
        // The event: a flush that holds all of the first half.
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if FileManager.default.fileExists(atPath: usage), let rows = try? usageRows(usage), total(rows) == total(first) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(try usageRows(usage).features == first.features)
        var both = first
        for c in checks[400..<800] {
            _ = try await client.check(c)
            both.add(c, g, now: now)
        }
        d.signal(SIGKILL)
        _ = await d.waitForExit()
        await client.close()
        let db = try Database(path: usage, readOnly: true)
        #expect(try db.scalarText("PRAGMA integrity_check") == "ok")
        let rows = try usageRows(usage)
        // Whatever the last flush caught of the second half, nothing of the first is lost and
        // nothing is counted twice.
        for (k, v) in first.features {
            let r = try #require(rows.features[k])
            let b = both.features[k]!
            #expect(r.allowed >= v.allowed && r.allowed <= b.allowed && r.denied >= v.denied && r.denied <= b.denied)
        }
        #expect(total(rows) >= total(first) && total(rows) <= total(both))
    }
}

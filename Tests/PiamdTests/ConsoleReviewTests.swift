import Foundation
import PIAMAdmin
import PIAMEngine
import PIAMStore
import Testing

/// The consoles' access reviews, usage and dormant-access pages against the real piam-admind
/// (`--demo`, its loopback listener) on the delegation scenario, with a usage file written in
/// the test as piamd writes it (`UsageDatabase`).
@Suite("piam-admind consoles: reviews, usage, dormant access", .serialized)
struct ConsoleReviewTests {
    static let day: Timestamp = 86_400_000

    /// The scenario with every grant made 200 days ago (so an unused one is dormant over 90
    /// days) and a usage file: nora allowed 3 claim reads today (through her partner-admin over
    /// acme-north), nick 2 reads 10 days ago (through the org grant on partners) and 1 denied,
    /// bob an org view 40 days ago.
    static func fixtureWithUsage(now: Timestamp) throws -> Fixture {
        let f = try Fixture.delegation()
        let db = try Database(path: f.db)
        try db.execute("UPDATE assignments SET granted_at = \(now - 200 * day); UPDATE org_grants SET granted_at = \(now - 200 * day)")
        try FileManager.default.createDirectory(atPath: f.path("usage"), withIntermediateDirectories: true)
        let usage = try UsageDatabase(path: f.path("usage/host1.db"))
        let tenDays = now - 10 * day, fortyDays = now - 40 * day
        try usage.record(UsageBatch(features: [
            .init(user: "nora", partner: "acme", type: "claim", action: "read", allowed: 3, denied: 0, firstAllowed: now, lastAllowed: now),
            .init(user: "nick", partner: "acme", type: "claim", action: "read", allowed: 2, denied: 1, firstAllowed: tenDays, lastAllowed: tenDays),
            .init(user: "bob", partner: "acme", type: "org", action: "view", allowed: 1, denied: 0, firstAllowed: fortyDays, lastAllowed: fortyDays),
        ], holdings: [
            .init(holding: .assignment(user: "nora", role: "partner-admin", scope: "acme-north"), uses: 3, lastUsed: now),
            .init(holding: .orgGrant(org: "partners", role: "partner-user"), uses: 2, lastUsed: tenDays),
            .init(holding: .assignment(user: "bob", role: "approver", scope: "acme"), uses: 1, lastUsed: fortyDays),
        ]), now: now)
        return f
    }

    /// The number in `<… id="ID">N<` of a page.
    static func figure(_ page: HTTPReply, _ id: String) -> Int? {
        guard let r = page.text.range(of: "id=\"\(id)\">") else { return nil }
        return Int(page.text[r.upperBound...].prefix { $0.isNumber })
    }

    @Test("usage: dashboard tiles, a partner's usage section, a person's last use and the dormant page show exact figures")
    func usageFigures() async throws {
        let now = AdminAPI.now()
        let f = try Self.fixtureWithUsage(now: now)
        let admind = try await AdmindProcess(f, env: ["PIAM_ADMIND_USAGE_PATHS": f.path("usage")], extraArgs: ["--demo"])
        defer { Task { await admind.stop() } }
        let b = ConsoleBrowser(admind)
        // The business: active over 30 days are nora and nick; dormant people (whom nina may
        // suspend) are ann and gus (no decision at all), bob's last one being 40 days old.
        try b.signIn(as: "nina")
        let dash = try b.get("/console/dashboard")
        #expect(dash.status == 200, "\(dash)")
        #expect(Self.figure(dash, "active-30") == 2, "\(dash.text)")
        #expect(Self.figure(dash, "dormant-people") == 2, "\(dash.text)")
        // The same figures as the store's findings over the same files.
        let facts = try UsageReader(paths: [f.path("usage/host1.db")]).facts()
        let store = try Store(path: f.db, readOnly: true)
        let ninas = try store.findings(usage: facts, days: 90, now: AdminAPI.now(), viewer: "nina")
        #expect(Set(ninas.filter { $0.kind == .dormantPerson }.compactMap(\.user)) == ["ann", "gus"])
        let dormantHoldings = ninas.filter { $0.kind == .dormantHolding }
        #expect(Self.figure(dash, "dormant-holdings") == dormantHoldings.count, "\(dash.text)")
        #expect(!dormantHoldings.contains { $0.holding == .assignment(user: "nora", role: "partner-admin", scope: "acme-north") })
        #expect(dormantHoldings.contains { $0.holding == .assignment(user: "gus", role: "partner-admin", scope: "globex") })

        // The partners list: people, and people active over 30 days.
        let partners = try b.get("/console/partners")
        #expect(partners.text.contains("<code>acme</code></td><td><span class=\"status active\">active</span></td><td>4</td><td>2</td>"), "\(partners.text)")
        #expect(partners.text.contains("<code>globex</code></td><td><span class=\"status active\">active</span></td><td>1</td><td>0</td>"))

        // acme's page: `piamctl usage partner acme`'s figures.
        let acme = try b.get("/console/orgs/acme")
        #expect(acme.status == 200, "\(acme)")
        for (key, n) in [("1d", 1), ("7d", 1), ("30d", 2), ("90d", 3)] {
            #expect(Self.figure(acme, "active-\(key)") == n, "active over \(key): \(acme.text)")
        }
        #expect(acme.text.contains("4 active"), "people by status")
        let features = try #require(acme.text.range(of: "id=\"features\"")).upperBound
        let rows = acme.text[features...]
        #expect(rows.contains("<td><code>claim:read</code></td><td>2</td><td>5</td><td>1</td>"), "\(rows.prefix(600))")
        #expect(rows.contains("<td><code>org:view</code></td><td>1</td><td>1</td><td>0</td>"))
        #expect(rows.range(of: "claim:read")!.lowerBound < rows.range(of: "org:view")!.lowerBound, "most people first")
        // Its admin sees the same section on its home page, with its partner's dormant access.
        try b.signIn(as: "ann")
        let home = try b.get("/console/orgs/acme")
        #expect(Self.figure(home, "active-30") == 2 && Self.figure(home, "active-90d") == 3, "\(home.text)")
        let anns = try store.findings(usage: facts, days: 90, now: AdminAPI.now(), viewer: "ann").filter { $0.partner == "acme" }
        #expect(Self.figure(home, "dormant-holdings") == anns.filter { $0.kind == .dormantHolding }.count)
        #expect(anns.contains { $0.holding == .assignment(user: "ann", role: "claims-viewer", scope: "acme") })
        #expect(!anns.contains { $0.partner == "globex" })

        // A person's page: the last activity and each holding's last use.
        let nick = try b.get("/console/people/nick")
        #expect(nick.text.contains("id=\"last-activity\">\(RFC3339.format(now - 10 * Self.day)) (10 days ago)"), "\(nick.text)")
        #expect(nick.text.contains("<td>2</td><td>\(RFC3339.format(now - 10 * Self.day)) (10 days ago)</td>"), "the org grant's use")

        // The dormant page: ann's findings only, each with the button that removes it.
        let dormant = try b.get("/console/dormant?kind=dormant_holding")
        #expect(dormant.status == 200, "\(dormant)")
        #expect(Self.figure(dormant, "finding-count") == anns.filter { $0.kind == .dormantHolding }.count, "\(dormant.text)")
        #expect(dormant.text.contains("claims-viewer over acme") && !dormant.text.contains("globex"), "\(dormant.text)")
        #expect(!dormant.text.contains("partner-admin over acme-north"), "nora's holding is in use")
        // Its button is the ordinary action path: it revokes, decided and audited.
        let before = try Store(path: f.db, readOnly: true).revision()
        let revoke = try b.post("/console/act", [("op", "revoke"), ("user", "ann"), ("role", "claims-viewer"), ("scope", "acme"),
                                                 ("back", "/console/dormant?kind=dormant_holding")])
        #expect(revoke.status == 303 && revoke.header("Location") == "/console/dormant?kind=dormant_holding", "\(revoke)")
        #expect(try Store(path: f.db, readOnly: true).revision() > before)
        #expect(try f.lastAudit()?.operation == "revoke" && (try f.lastAudit()?.actor) == "ann")
        #expect(!(try b.get("/console/dormant?kind=dormant_holding").text.contains("claims-viewer over acme")))
        // gus's remedy is another partner's: refused as the API refuses it (404), nothing written.
        let forged = try b.post("/console/act", [("op", "user.suspend"), ("user", "gus")])
        #expect(forged.status == 404, "\(forged)")
    }

    @Test("past console.dormant_tiles_max_people the dashboard and a partner's page link to the dormant page instead of counting")
    func dormantTilesOnALargeGraph() async throws {
        let now = AdminAPI.now()
        let f = try Self.fixtureWithUsage(now: now)
        let admind = try await AdmindProcess(f, env: ["PIAM_ADMIND_USAGE_PATHS": f.path("usage"),
                                                      "PIAM_ADMIND_CONSOLE_DORMANT_TILES_MAX_PEOPLE": "5"], extraArgs: ["--demo"])
        defer { Task { await admind.stop() } }
        let b = ConsoleBrowser(admind)
        try b.signIn(as: "nina")
        let dash = try b.get("/console/dashboard")
        #expect(Self.figure(dash, "active-30") == 2, "still counted: \(dash.text)")
        #expect(Self.figure(dash, "dormant-people") == nil && dash.text.contains("id=\"dormant-link\""), "\(dash.text)")
        #expect(dash.text.contains("a graph of 6 people"), "\(dash.text)")
        let acme = try b.get("/console/orgs/acme")
        #expect(acme.text.contains("href=\"/console/dormant?partner=acme\" id=\"dormant-link\""), "\(acme.text)")
        #expect(try b.get("/console/dormant").text.contains("Dormant access"), "the page itself still lists them")
    }

    @Test("without usage files the pages say so instead of showing zeros")
    func noUsageFiles() async throws {
        let f = try Fixture.delegation()
        let admind = try await AdmindProcess(f, extraArgs: ["--demo"])
        defer { Task { await admind.stop() } }
        let b = ConsoleBrowser(admind)
        try b.signIn(as: "nina")
        #expect(try b.get("/console/partners").text.contains("<td>4</td><td>–</td>"), "no zero for an unknown activity")
        for path in ["/console/dashboard", "/console/orgs/acme", "/console/people/nick", "/console/dormant"] {
            let page = try b.get(path)
            #expect(page.status == 200, "\(path): \(page)")
            #expect(page.text.contains("id=\"usage-off\"") && page.text.contains("usage.paths"), "\(path): \(page.text)")
            #expect(!page.text.contains("id=\"active-30\""), "\(path) shows a zero it does not know")
        }
        // Dormant people are not judged (everyone would look dormant); expired and invited people are.
        let dormant = try b.get("/console/dormant")
        #expect(!dormant.text.contains("id=\"count-dormant_person\"") && dormant.text.contains("id=\"count-invitation_not_accepted\""))
    }

    @Test("a review: created by the business, each partner's admin sees only its items, keep/revoke, forged 404, refusal, CSRF, close with confirmation")
    func reviewFlow() async throws {
        let now = AdminAPI.now()
        let f = try Self.fixtureWithUsage(now: now)
        let admind = try await AdmindProcess(f, env: ["PIAM_ADMIND_USAGE_PATHS": f.path("usage")], extraArgs: ["--demo"])
        defer { Task { await admind.stop() } }
        let b = ConsoleBrowser(admind)
        let due = String(RFC3339.format(now + 30 * Self.day).prefix(10))
        // A partner admin may not start a campaign: refused with the reason, audited.
        try b.signIn(as: "ann")
        #expect(try b.get("/console/reviews").text.contains("id=\"review-form\"") == false)
        let byAnn = try b.post("/console/reviews", [("name", "mine"), ("scope", "partner"), ("partner", "acme"), ("due", due), ("no_answer", "keep")])
        #expect(byAnn.status == 403 && byAnn.text.contains("<code id=\"code\">no_permission</code>"), "\(byAnn)")
        #expect(try f.lastAudit()?.operation == "review.create" && (try f.lastAudit()?.decision) == "refused")

        try b.signIn(as: "nina")
        #expect(try b.get("/console/reviews").text.contains("id=\"review-form\""))
        let name = "Q1 <script>alert(1)</script>"
        let created = try b.post("/console/reviews", [("name", name), ("scope", "all_partners"), ("due", due), ("no_answer", "revoke"),
                                                      ("days", "30")])
        #expect(created.status == 303, "\(created)")
        let campaign = try #require(try Store(path: f.db, readOnly: true).reviews().first)
        #expect(created.header("Location") == "/console/reviews/\(campaign.id)" && campaign.noAnswer == .revoke && campaign.days == 30)
        let list = try b.get("/console/reviews")
        #expect(list.text.contains("Q1 &lt;script&gt;") && !list.text.contains("<script>"), "escaped: \(list.text)")

        let items = try Store(path: f.db, readOnly: true).reviewItems(campaign: campaign.id)
        func item(_ user: String, _ role: String) -> ReviewItem { items.first { $0.user == user && $0.role == role }! }
        let bobItem = item("bob", "approver"), noraItem = item("nora", "partner-admin"), gusItem = item("gus", "partner-admin")
        let annItem = item("ann", "claims-viewer")
        #expect(items.count == 5, "every partner assignment: \(items.map { "\($0.user) \($0.role)" })")
        #expect(noraItem.recommendation == "keep" && noraItem.lastUse == now && bobItem.recommendation == "revoke", "from the usage file")

        // Each partner's admin sees only its own partner's items.
        func ids(_ page: HTTPReply) -> Set<Int64> {
            Set(page.text.matches(of: /id="item-(\d+)"/).compactMap { Int64($0.1) })
        }
        try b.signIn(as: "ann")
        let asked = try b.get("/console/reviews/\(campaign.id)/items")
        #expect(asked.status == 200, "\(asked)")
        #expect(ids(asked) == [bobItem.id, noraItem.id], "asked of ann: \(asked.text)")
        let annAll = try b.get("/console/reviews/\(campaign.id)/items?all=1")
        #expect(ids(annAll) == Set(items.filter { $0.partner == "acme" }.map(\.id)), "\(annAll.text)")
        #expect(asked.text.contains(RFC3339.format(now) + " (today)"), "nora's last use")
        try b.signIn(as: "gus")
        #expect(ids(try b.get("/console/reviews/\(campaign.id)/items?all=1")) == [gusItem.id])
        // gus forges a revocation of an acme item: 404, as the API answers, nothing written.
        let revision = try Store(path: f.db, readOnly: true).revision()
        let forged = try b.post("/console/reviews/\(campaign.id)/items/\(bobItem.id)", [("decision", "revoke"), ("comment", "x")])
        #expect(forged.status == 404, "\(forged)")
        // An item of another campaign's path: 404 too.
        #expect(try b.post("/console/reviews/\(campaign.id + 1)/items/\(gusItem.id)", [("decision", "keep")]).status == 404)
        #expect(try b.post("/console/reviews/\(campaign.id)/items/\(gusItem.id)", [("decision", "keep"), ("comment", "still the admin")]).status == 303)
        #expect(try Store(path: f.db, readOnly: true).revision() == revision)

        // bob may view nora but not revoke her roles: refused with the engine's reason, audited.
        try b.signIn(as: "bob")
        _ = try b.get("/console/me")
        let byBob = try b.post("/console/reviews/\(campaign.id)/items/\(noraItem.id)", [("decision", "revoke")])
        #expect(byBob.status == 403 && byBob.text.contains("<code id=\"code\">no_permission</code>"), "\(byBob)")
        #expect(try f.lastAudit()?.operation == "review.revoke" && (try f.lastAudit()?.decision) == "refused")

        // ann answers: keep nora (with a comment), revoke bob's approver; a post without the
        // CSRF token is refused first.
        try b.signIn(as: "ann")
        _ = try b.get("/console/reviews/\(campaign.id)/items")
        let noToken = try b.post("/console/reviews/\(campaign.id)/items/\(bobItem.id)", [("decision", "revoke")], csrf: false)
        #expect(noToken.status == 403 && noToken.text.contains("csrf"), "\(noToken)")
        #expect(try Store(path: f.db, readOnly: true).reviewItem(bobItem.id).decision == nil)
        let back = "/console/reviews/\(campaign.id)/items"
        let kept = try b.post("/console/reviews/\(campaign.id)/items/\(noraItem.id)",
                              [("decision", "keep"), ("comment", "runs <b>north</b>"), ("back", back)])
        #expect(kept.status == 303 && kept.header("Location") == back, "\(kept)")
        let revoked = try b.post("/console/reviews/\(campaign.id)/items/\(bobItem.id)", [("decision", "revoke"), ("comment", "left"), ("back", back)])
        #expect(revoked.status == 303, "\(revoked)")
        #expect(try Store(path: f.db, readOnly: true).loadGraph().graph.accessReport(user: "bob", now: AdminAPI.now())!
            .holdings.allSatisfy { $0.role != "approver" }, "the revocation reached the graph")
        let answered = try b.get(back)
        #expect(answered.text.contains("runs &lt;b&gt;north&lt;/b&gt;"), "the comment, escaped")
        #expect(!answered.text.contains("id=\"revoke-\(bobItem.id)\""), "no buttons on an answered item")
        // A partner admin may not close the business's campaign.
        let annCloses = try b.post("/console/reviews/\(campaign.id)/close", [("confirm_revocations", "2")])
        #expect(annCloses.status == 403 && annCloses.text.contains("<code id=\"code\">"), "\(annCloses)")

        // The business: completion per partner, then close — the policy revokes ann's two
        // unanswered items, which must be confirmed with that number.
        try b.signIn(as: "nina")
        let page = try b.get("/console/reviews/\(campaign.id)")
        #expect(Self.figure(page, "completion") == 60, "3 of 5 answered: \(page.text)")
        #expect(page.text.contains("Closing now revokes <strong>2</strong>"), "\(page.text)")
        let confirm = try b.get("/console/reviews/\(campaign.id)/close")
        #expect(confirm.text.contains("name=\"confirm_revocations\" value=\"2\""), "\(confirm.text)")
        let unconfirmed = try b.post("/console/reviews/\(campaign.id)/close", [])
        #expect(unconfirmed.status == 409 && unconfirmed.text.contains("Closing revokes <strong>2</strong>"), "\(unconfirmed)")
        let wrong = try b.post("/console/reviews/\(campaign.id)/close", [("confirm_revocations", "1")])
        #expect(wrong.status == 409, "\(wrong)")
        #expect(try Store(path: f.db, readOnly: true).review(campaign.id).status == "open")
        let closed = try b.post("/console/reviews/\(campaign.id)/close", [("confirm_revocations", "2")])
        #expect(closed.status == 303, "\(closed)")
        let after = try Store(path: f.db, readOnly: true)
        #expect(try after.review(campaign.id).status == "closed")
        #expect(try after.reviewItem(annItem.id).outcome == "revoked")
        #expect(try after.loadGraph().graph.accessReport(user: "ann", now: AdminAPI.now())!.holdings.allSatisfy { $0.source != "assignment" })
        let trail = try after.auditLog().filter { $0.operation.hasPrefix("review.") }.map { "\($0.operation) \($0.actor) \($0.decision)" }
        #expect(trail == ["review.create ann refused", "review.create nina allowed", "review.keep gus allowed", "review.revoke bob refused",
                          "review.keep ann allowed", "review.revoke ann allowed", "review.close ann refused", "review.close nina allowed"], "\(trail)")
        #expect(try b.get("/console/reviews/\(campaign.id)").text.contains("id=\"review-status\">closed"))
    }
}

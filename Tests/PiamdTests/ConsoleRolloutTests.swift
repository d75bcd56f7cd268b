import Foundation
import PIAMAdmin
import PIAMEngine
import PIAMStore
import Testing

/// The console's roll-out flow (what-if preview, then one transaction), identity namespaces on
/// a partner's page and the business's "register a partner" form, against the real piam-admind.
@Suite("piam-admind console: roll-out, namespaces, registration", .serialized)
struct ConsoleRolloutTests {
    /// The roll-out form's fields (all active partners, org-granted with sub-orgs).
    static func rollout(_ role: String, name: String = "", permissions: String = "signature:create",
                        partners: String = "all", chosen: String = "") -> [(String, String)] {
        [("role", role), ("name", name), ("permissions", permissions), ("partners", partners), ("chosen", chosen),
         ("org_grant", "false"), ("org_grant", "true"), ("include_suborgs", "false"), ("include_suborgs", "true")]
    }

    /// The hidden fields of the preview's Commit form, as the browser would post them back.
    static func commitFields(_ page: String) throws -> [(String, String)] {
        let form = try #require(page.firstMatch(of: /<form method="post" action="\/console\/rollout\/commit">(.*?)<\/form>/.dotMatchesNewlines()))
        return form.1.matches(of: /<input type="hidden" name="([a-z_]+)" value="([^"]*)">/).compactMap { m in
            m.1 == "csrf" ? nil : (String(m.1), unescape(String(m.2)))
        }
    }

    static func unescape(_ s: String) -> String {
        s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
    }

    /// The business previews a roll-out to every active partner: the preview lists its
    /// operations and who would gain what (5 people: acme's 4 and globex's 1), escapes the
    /// role's name and writes nothing; a commit after the graph moved shows the preview again,
    /// decided afresh, and writes nothing; the commit then applies every operation in ONE
    /// transaction, audited with the console's credential, and piam-admind's decisions follow.
    @Test func previewThenCommitInOneTransaction() async throws {
        let f = try Fixture.delegation()
        let admind = try await AdmindProcess(f, extraArgs: ["--demo"])
        defer { Task { await admind.stop() } }
        let b = ConsoleBrowser(admind)
        try b.signIn(as: "nina")
        #expect(try b.get("/console/roles").text.contains("href=\"/console/rollout\""))
        #expect(try b.get("/console/rollout").status == 200)
        let before = try Store(path: f.db, readOnly: true).revision()
        let evil = "<script>alert(1)</script>"
        // A textarea's lines end with CRLF (one Character in Swift).
        let preview = try b.post("/console/rollout/preview", Self.rollout("e-sign", name: evil, permissions: "signature:create\r\nsignature:view"))
        #expect(preview.status == 200, "\(preview)")
        let text = preview.text
        #expect(text.contains("<b id=\"gain-count\">5</b>"), "\(text)")
        #expect(text.contains("<code>signature:create</code>: 5 people") && text.contains("<code>signature:view</code>: 5 people"), "\(text)")
        // Per partner: each permission's people, over which orgs (each member's own, with the sub-orgs).
        #expect(text.contains("<code>signature:create</code> 4 · <small>over <span class=\"scope\">acme (2)</span> <span class=\"scope\">acme-north (1)</span> <span class=\"scope\">acme-north-b1 (1)</span>"), "\(text)")
        #expect(text.contains("<code>signature:view</code> 1 · <small>over <span class=\"scope\">globex (1)</span>"), "\(text)")
        for op in ["role.define</code> <code>role:e-sign", "entitle</code> <code>org:acme", "org-grant</code> <code>org:acme",
                   "entitle</code> <code>org:globex", "org-grant</code> <code>org:globex"] {
            #expect(text.contains(op), "missing \(op)")
        }
        #expect(!text.contains("<script") && text.contains("&lt;script&gt;"), "the role's name is not escaped")
        #expect(try Store(path: f.db, readOnly: true).revision() == before, "the preview wrote something")
        let fields = try Self.commitFields(text)
        #expect(fields.contains { $0 == ("name", evil) } && fields.contains { $0.0 == "revision" && $0.1 == String(before) }, "\(fields)")

        // The graph moves between the preview and the commit: the preview is shown again.
        #expect(try b.post("/console/act", [("op", "user.suspend"), ("user", "bob")]).status == 303)
        let moved = try Store(path: f.db, readOnly: true).revision()
        let stale = try b.post("/console/rollout/commit", fields)
        #expect(stale.status == 200 && stale.text.contains("id=\"notice\"") && stale.text.contains("<b id=\"gain-count\">4</b>"), "\(stale)")
        #expect(try Store(path: f.db, readOnly: true).revision() == moved, "a stale commit wrote something")
        #expect(try Store(path: f.db, readOnly: true).role(id: "e-sign") == nil)

        let committed = try b.post("/console/rollout/commit", try Self.commitFields(stale.text))
        #expect(committed.status == 303 && committed.header("Location") == "/console/roles", "\(committed)")
        let store = try Store(path: f.db, readOnly: true)
        #expect(try store.role(id: "e-sign")?.permissions.sorted() == ["signature:create", "signature:view"])
        #expect(try store.role(id: "e-sign")?.name == evil)
        for p in ["acme", "globex"] {
            #expect(try store.entitlements(org: p).contains("e-sign"), "\(p)")
            #expect(try store.orgGrants(org: p).contains { $0.role == "e-sign" && $0.includeSuborgs }, "\(p)")
        }
        // One run, five operations, one batch, each audited for nina with the console's credential.
        let rows = try store.auditLog(AuditFilter(limit: 5))
        #expect(rows.map(\.operation) == ["role.define", "entitle", "org-grant", "entitle", "org-grant"], "\(rows)")
        #expect(Set(rows.compactMap(\.batch)).count == 1 && rows.allSatisfy { $0.batch != nil })
        #expect(rows.allSatisfy { $0.actor == "nina" && $0.decision == "allowed" && $0.credential == "console-demo" }, "\(rows)")
        #expect(try store.revision() > moved)
        let roles = try b.get("/console/roles")
        #expect(roles.text.contains("Rolled out e-sign to 2 partners: 5 operations in one transaction"), "\(roles.text)")
        // The roles page's own define form splits a textarea's CRLF lines too.
        let defined = try b.post("/console/act", [("op", "role.define"), ("role", "two-lines"), ("permissions", "claim:read\r\nclaim:list"),
                                                  ("back", "/console/roles")])
        #expect(defined.status == 303, "\(defined)")
        #expect(try store.role(id: "two-lines")?.permissions.sorted() == ["claim:list", "claim:read"])
        // The decisions follow: nick (acme-north-b1) may now create a signature; bob is suspended.
        let g = try store.loadGraph().graph
        let now = AdminAPI.now()
        #expect(g.check(subject: "nick", action: "create", resource: ResourceRef(type: "signature", id: "S-1", org: "acme-north-b1"),
                        now: now).allowed)
    }

    /// A post without the session's CSRF token is refused before anything runs, on every new form.
    @Test func newFormsRefuseAPostWithoutTheToken() async throws {
        let f = try Fixture.delegation()
        let admind = try await AdmindProcess(f, extraArgs: ["--demo"])
        defer { Task { await admind.stop() } }
        let b = ConsoleBrowser(admind)
        try b.signIn(as: "nina")
        _ = try b.get("/console/roles")
        let before = try Store(path: f.db, readOnly: true).revision()
        let posts: [(String, [(String, String)])] = [
            ("/console/rollout/preview", Self.rollout("e-sign")),
            ("/console/rollout/commit", Self.rollout("e-sign") + [("revision", String(before))]),
            ("/console/orgs/acme/namespaces", [("action", "add"), ("namespace", "okta-acme|")]),
            ("/console/partners/register", [("org", "initech"), ("admin", "bill")]),
        ]
        for (path, fields) in posts {
            let r = try b.post(path, fields, csrf: false)
            #expect(r.status == 403 && r.text.contains("<code id=\"code\">csrf</code>"), "\(path): \(r)")
            let cross = try b.post(path, fields, headers: ["Sec-Fetch-Site": "cross-site"])
            #expect(cross.status == 403, "\(path) cross-site: \(cross)")
        }
        #expect(try Store(path: f.db, readOnly: true).revision() == before, "a refused post wrote something")
    }

    /// A partner admin may not roll out a service: the form is the business's, its "all
    /// partners" names only its own partner (no other partner's id in the preview), and a
    /// forged commit is refused by the engine (role.define is host-only) and audited, writing
    /// nothing. The same for a forged registration and a forged namespace.
    @Test func aPartnerAdminsForgedRolloutIsRefusedAndAudited() async throws {
        let f = try Fixture.delegation()
        let admind = try await AdmindProcess(f, extraArgs: ["--demo"])
        defer { Task { await admind.stop() } }
        let b = ConsoleBrowser(admind)
        try b.signIn(as: "ann")
        #expect(try b.get("/console/rollout").status == 403)
        #expect(try b.get("/console/partners/register").status == 403)
        let before = try Store(path: f.db, readOnly: true).revision()
        let preview = try b.post("/console/rollout/preview", Self.rollout("mine"))
        #expect(!preview.text.contains("globex"), "a partner admin's preview names another partner")
        #expect(!preview.text.contains("rollout-commit"), "a refused preview offers a commit")
        let forged = try b.post("/console/rollout/commit", Self.rollout("mine") + [("revision", String(before))])
        #expect(forged.status == 403 || forged.status == 404, "\(forged)")
        let audit = try #require(try f.lastAudit())
        #expect(audit.operation == "role.define" && audit.actor == "ann" && audit.decision == "refused"
                    && audit.reason == "no_permission" && audit.credential == "console-demo", "\(audit)")
        // Chosen partners, another's among them: refused the same way, nothing written.
        _ = try b.post("/console/rollout/commit", Self.rollout("mine", partners: "chosen", chosen: "acme, globex"))
        #expect(try f.lastAudit()?.reason == "no_permission")
        // A registration (create_suborg on partners) and a namespace (entitle on the root).
        _ = try b.post("/console/partners/register", [("org", "initech"), ("admin", "bill")])
        let reg = try #require(try f.lastAudit())
        #expect(reg.operation == "org.register" && reg.actor == "ann" && reg.decision == "refused", "\(reg)")
        let ns = try b.post("/console/orgs/acme/namespaces", [("action", "add"), ("namespace", "okta-acme|")])
        #expect(ns.status == 303)
        let page = try b.get("/console/orgs/acme")
        #expect(page.text.contains("class=\"flash error\"") && page.text.contains("no_permission"), "\(page.text)")
        #expect(try f.lastAudit()?.operation == "namespace.add" && f.lastAudit()?.decision == "refused")
        #expect(try b.post("/console/orgs/globex/namespaces", [("action", "add"), ("namespace", "okta-globex|")]).status == 404)
        #expect(try Store(path: f.db, readOnly: true).revision() == before, "a refusal wrote something")
        #expect(try Store(path: f.db, readOnly: true).identityNamespaces(partner: "acme").isEmpty)
    }

    /// The business lists, declares and withdraws a partner's identity namespaces on its page;
    /// a namespace that does not parse and one overlapping another partner's are messages on the
    /// page; the partner's admin sees them read-only, a sub-org's admin not at all; a namespace
    /// is shown as text.
    @Test func namespacesOnThePartnersPage() async throws {
        let f = try Fixture.delegation()
        let admind = try await AdmindProcess(f, extraArgs: ["--demo"])
        defer { Task { await admind.stop() } }
        let b = ConsoleBrowser(admind)
        try b.signIn(as: "nina")
        #expect(try b.get("/console/orgs/acme").text.contains("id=\"no-namespaces\""))
        #expect(!(try b.get("/console/orgs/acme-north").text.contains("id=\"namespaces\"")), "a sub-org has no namespaces")
        var r = try b.post("/console/orgs/acme/namespaces", [("action", "add"), ("namespace", "okta-acme|")])
        #expect(r.status == 303 && r.header("Location") == "/console/orgs/acme", "\(r)")
        var page = try b.get("/console/orgs/acme")
        #expect(page.text.contains("declared identity namespace") && page.text.contains("<li><code>okta-acme|</code>"), "\(page.text)")
        let evil = "<b>x|"
        _ = try b.post("/console/orgs/acme/namespaces", [("action", "add"), ("namespace", evil)])
        page = try b.get("/console/orgs/acme")
        #expect(page.text.contains("<code>&lt;b&gt;x|</code>") && !page.text.contains("<b>x|"), "\(page.text)")
        _ = try b.post("/console/orgs/acme/namespaces", [("action", "add"), ("namespace", "okta-acme")])
        page = try b.get("/console/orgs/acme")
        #expect(page.text.contains("class=\"flash error\"") && page.text.contains("invalid_input") && page.text.contains("separator"), "\(page.text)")
        _ = try b.post("/console/orgs/globex/namespaces", [("action", "add"), ("namespace", "okta-acme|")])
        page = try b.get("/console/orgs/globex")
        #expect(page.text.contains("class=\"flash error\"") && page.text.contains("conflict") && page.text.contains("overlaps"), "\(page.text)")
        #expect(try Store(path: f.db, readOnly: true).identityNamespaces(partner: "globex").isEmpty)
        // Withdrawing: a confirmation, then the post.
        let confirm = try b.get("/console/orgs/acme/namespaces/remove?namespace=okta-acme%7C")
        #expect(confirm.status == 200 && confirm.text.contains("confirm-namespace-remove"), "\(confirm)")
        r = try b.post("/console/orgs/acme/namespaces", [("action", "remove"), ("namespace", "okta-acme|")])
        #expect(r.status == 303)
        #expect(try Store(path: f.db, readOnly: true).identityNamespaces(partner: "acme").map(\.text) == [evil])
        #expect(try f.lastAudit()?.operation == "namespace.remove" && f.lastAudit()?.credential == "console-demo")
        // The partner's admin: read-only; the sub-org's admin: nothing.
        try b.signIn(as: "ann")
        page = try b.get("/console/orgs/acme")
        #expect(page.text.contains("id=\"namespaces\"") && page.text.contains("&lt;b&gt;x|") && !page.text.contains("namespace-add")
                    && !page.text.contains("withdraw…"), "\(page.text)")
        try b.signIn(as: "nora")
        #expect(!(try b.get("/console/orgs/acme-north").text.contains("id=\"namespaces\"")))
    }

    /// The business registers a partner from the partners page: a pending org and its invited
    /// first admin, the invitation link shown once, the name shown as text; approving it is the
    /// partner page's existing form.
    @Test func theBusinessRegistersAPartner() async throws {
        let f = try Fixture.delegation()
        let admind = try await AdmindProcess(f, extraArgs: ["--demo"])
        defer { Task { await admind.stop() } }
        let b = ConsoleBrowser(admind)
        try b.signIn(as: "nina")
        #expect(try b.get("/console/partners").text.contains("/console/partners/register"))
        #expect(try b.get("/console/partners/register").status == 200)
        let r = try b.post("/console/partners/register", [("org", "initech"), ("name", "<i>Initech</i>"), ("admin", "bill"),
                                                          ("admin_email", "bill@initech.example")])
        #expect(r.status == 303 && r.header("Location") == "/console/orgs/initech", "\(r)")
        let page = try b.get("/console/orgs/initech")
        #expect(page.text.contains("id=\"invitation-link\"") && page.text.contains("approve-form"), "\(page.text)")
        #expect(page.text.contains("&lt;i&gt;Initech&lt;/i&gt;") && !page.text.contains("<i>Initech"))
        let store = try Store(path: f.db, readOnly: true)
        #expect(try store.org(id: "initech")?.status == .pending)
        #expect(try store.user(idOrAlias: "bill")?.status == .invited)
        #expect(try f.lastAudit()?.operation == "org.register" && f.lastAudit()?.actor == "nina" && f.lastAudit()?.credential == "console-demo")
        // Again: the id is taken, a refusal with its reason.
        let again = try b.post("/console/partners/register", [("org", "initech"), ("admin", "bill2")])
        #expect(again.status == 409 && again.text.contains("conflict"), "\(again)")
    }
}

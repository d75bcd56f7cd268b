import Foundation
import PIAMAdmin
import PIAMEngine
import PIAMStore
import Testing

/// A browser's view of the consoles over the real piam-admind's loopback listener: a cookie jar,
/// the CSRF token of the last page, form posts.
final class ConsoleBrowser {
    let admind: AdmindProcess
    var cookie: String?
    var csrf: String?

    init(_ admind: AdmindProcess) { self.admind = admind }

    @discardableResult
    func get(_ path: String) throws -> HTTPReply {
        let r = try httpRequest(admind.tcp, "GET", path, headers: cookie.map { ["Cookie": $0] } ?? [:])
        remember(r)
        if let m = r.text.firstMatch(of: /name="csrf" value="([0-9a-f]+)"/) { csrf = String(m.1) }
        return r
    }

    /// A form post; `csrf: false` leaves the token out (a forged cross-site post).
    @discardableResult
    func post(_ path: String, _ fields: [(String, String)], csrf withToken: Bool = true, headers extra: [String: String] = [:]) throws -> HTTPReply {
        var all = fields
        if withToken, let csrf { all.append(("csrf", csrf)) }
        let body = all.map { "\(Self.escape($0.0))=\(Self.escape($0.1))" }.joined(separator: "&")
        var h = ["Content-Type": "application/x-www-form-urlencoded"].merging(extra) { _, b in b }
        if let cookie { h["Cookie"] = cookie }
        let r = try httpRequest(admind.tcp, "POST", path, headers: h, body: Array(body.utf8))
        remember(r)
        return r
    }

    func signIn(as user: String) throws {
        cookie = nil
        let page = try get("/console/demo-sign-in")
        #expect(page.status == 200, "\(page)")
        let r = try post("/console/demo-sign-in", [("user", user)])
        #expect(r.status == 303, "\(r)")
    }

    private func remember(_ r: HTTPReply) {
        if let c = r.header("Set-Cookie"), let first = c.split(separator: ";").first { cookie = String(first) }
    }

    static func escape(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? s
    }
}

/// The consoles against the real piam-admind: the same operations, decided and audited the same
/// way, CSRF and escaping, the demo sign-in's limits.
@Suite("piam-admind consoles", .serialized)
struct ConsoleTests {
    /// Every page answers with the strict CSP and a SameSite=Strict, HttpOnly session cookie;
    /// a post without the session's CSRF token, or marked cross-site by the browser, is refused
    /// and writes nothing.
    @Test func csrfAndSecurityHeaders() async throws {
        let f = try Fixture.delegation()
        let admind = try await AdmindProcess(f, extraArgs: ["--demo"])
        defer { Task { await admind.stop() } }
        let b = ConsoleBrowser(admind)
        let first = try b.get("/console/demo-sign-in")
        #expect(first.header("Content-Security-Policy") == "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
        let cookie = try #require(first.header("Set-Cookie"))
        #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/console"), "\(cookie)")
        #expect(try b.get("/console/static/console.css").header("Content-Type")?.hasPrefix("text/css") == true)
        try b.signIn(as: "ann")
        #expect(try b.get("/console/people/nick").status == 200)
        let before = try Store(path: f.db, readOnly: true).revision()
        let forged = try b.post("/console/act", [("op", "user.suspend"), ("user", "nick")], csrf: false)
        #expect(forged.status == 403 && forged.text.contains("csrf"), "\(forged)")
        let wrong = try b.post("/console/act", [("op", "user.suspend"), ("user", "nick"), ("csrf", String(repeating: "0", count: 64))], csrf: false)
        #expect(wrong.status == 403, "\(wrong)")
        let crossSite = try b.post("/console/act", [("op", "user.suspend"), ("user", "nick")], headers: ["Sec-Fetch-Site": "cross-site"])
        #expect(crossSite.status == 403, "\(crossSite)")
        // Without the cookie (another site's post), the token does not help either.
        let saved = b.cookie
        b.cookie = nil
        #expect(try b.post("/console/act", [("op", "user.suspend"), ("user", "nick")]).status == 403)
        b.cookie = saved
        #expect(try Store(path: f.db, readOnly: true).revision() == before, "a refused post wrote something")
        // With the token, the same form runs the operation.
        let ok = try b.post("/console/act", [("op", "user.suspend"), ("user", "nick"), ("back", "/console/people/nick")])
        #expect(ok.status == 303 && ok.header("Location") == "/console/people/nick", "\(ok)")
        #expect(try Store(path: f.db, readOnly: true).user(idOrAlias: "nick")?.status == .suspended)
        let audit = try #require(try f.lastAudit())
        #expect(audit.operation == "user.suspend" && audit.actor == "ann" && audit.decision == "allowed" && audit.credential == "console-demo")
    }

    /// Forged form posts (another partner's ids, a role outside the ceiling, partner-admin at
    /// the parent org, a host-only operation) are refused with the API's status and the
    /// engine's reason, written nowhere, and audited as refusals.
    @Test func forgedPostsAreRefusedWithTheirReasonAndAudited() async throws {
        let f = try Fixture.delegation()
        let admind = try await AdmindProcess(f, extraArgs: ["--demo"])
        defer { Task { await admind.stop() } }
        let b = ConsoleBrowser(admind)
        let before = try Store(path: f.db, readOnly: true).revision()
        let cases: [(actor: String, fields: [(String, String)], status: Int, shown: String, audited: String)] = [
            ("ann", [("op", "user.suspend"), ("user", "gus")], 404, "not_found", "out_of_scope"),
            ("ann", [("op", "grant"), ("user", "gus"), ("role", "claims-viewer")], 404, "not_found", "out_of_scope"),
            ("ann", [("op", "grant"), ("user", "bob"), ("role", "claims-adjuster")], 403, "outside_ceiling", "outside_ceiling"),
            ("ann", [("op", "grant"), ("role_scope", "claims-adjuster|acme"), ("user", "bob")], 403, "outside_ceiling", "outside_ceiling"),
            ("nora", [("op", "grant"), ("user", "nick"), ("role", "partner-admin"), ("scope", "acme")], 403, "out_of_scope", "out_of_scope"),
            ("ann", [("op", "entitle"), ("org", "acme"), ("role", "claims-adjuster")], 403, "no_permission", "no_permission"),
            ("ann", [("op", "org.suspend"), ("org", "acme")], 403, "self_action", "self_action"),
        ]
        for c in cases {
            try b.signIn(as: c.actor)
            _ = try b.get("/console/me")
            let r = try b.post("/console/act", c.fields)
            let what = "\(c.actor) \(c.fields)"
            #expect(r.status == c.status, "\(what): \(r)")
            #expect(r.text.contains("<code id=\"code\">\(c.shown)</code>"), "\(what): \(r.text)")
            let audit = try #require(try f.lastAudit())
            #expect(audit.decision == "refused" && audit.reason == c.audited && audit.actor == c.actor && audit.credential == "console-demo",
                    "\(what): \(audit)")
        }
        #expect(try Store(path: f.db, readOnly: true).revision() == before, "a refusal wrote something")
        // The person page offers only what can_assign allows: ann may not hand out claims-adjuster.
        try b.signIn(as: "ann")
        let page = try b.get("/console/people/bob")
        #expect(page.text.contains("claims-viewer|acme") && !page.text.contains("claims-adjuster|"), "\(page.text)")
        // Another partner's person is a 404 page, as in the API.
        #expect(try b.get("/console/people/gus").status == 404)
    }

    /// Names, ids and e-mails are attacker-controlled: a person named <script>alert(1)</script>
    /// is shown as text everywhere.
    @Test func namesAreEscaped() async throws {
        let f = try Fixture.delegation()
        let admind = try await AdmindProcess(f, extraArgs: ["--demo"])
        defer { Task { await admind.stop() } }
        let b = ConsoleBrowser(admind)
        try b.signIn(as: "ann")
        _ = try b.get("/console/orgs/acme")
        let evil = "<script>alert(1)</script>"
        let r = try b.post("/console/act", [("op", "user.invite"), ("org", "acme"), ("user", "x\"><script>alert(2)</script>"),
                                            ("name", evil), ("email", "\(evil)@acme.example"), ("back", "/console/orgs/acme")])
        #expect(r.status == 303, "\(r)")
        for path in ["/console/people?org=acme", "/console/people/\(ConsoleBrowser.escape("x\"><script>alert(2)</script>"))",
                     "/console/people?q=%3Cscript", "/console/audit"] {
            let page = try b.get(path)
            #expect(page.status == 200, "\(path): \(page.status)")
            #expect(!page.text.contains("<script"), "\(path) carries a raw script tag")
            #expect(page.text.contains("&lt;script&gt;"), "\(path) does not show the name as text")
        }
    }

    /// With `console.public_url` an invitation link is on that address, not the request's
    /// `Host`, and an `https` address makes the session cookie `Secure`; without it, links use
    /// `http://` and the `Host` (a loopback demo) and the cookie is not `Secure`.
    @Test func invitationLinksOnThePublicAddress() async throws {
        let f = try Fixture.delegation()
        func link(_ admind: AdmindProcess) throws -> (link: String, cookie: String) {
            let b = ConsoleBrowser(admind)
            let cookie = try #require(try b.get("/console/demo-sign-in").header("Set-Cookie"))
            try b.signIn(as: "ann")
            _ = try b.get("/console/orgs/acme")
            let r = try b.post("/console/act", [("op", "user.invite"), ("org", "acme"), ("user", "new-\(UUID().uuidString.prefix(8))"),
                                                ("back", "/console/orgs/acme")])
            #expect(r.status == 303, "\(r)")
            let page = try b.get("/console/orgs/acme").text
            let found = try #require(page.range(of: #"https?://[^"<\s]*/console/accept\?token=[A-Za-z0-9_-]+"#, options: .regularExpression))
            return (String(page[found]), cookie)
        }
        let proxied = try await AdmindProcess(f, env: ["PIAM_ADMIND_CONSOLE_PUBLIC_URL": "https://partners.example.com/"], extraArgs: ["--demo"])
        let (publicLink, secureCookie) = try link(proxied)
        await proxied.stop()
        #expect(publicLink.hasPrefix("https://partners.example.com/console/accept?token=piam_inv_"), "\(publicLink)")
        #expect(secureCookie.contains("; Secure"), "\(secureCookie)")
        let local = try await AdmindProcess(f, extraArgs: ["--demo"])
        defer { Task { await local.stop() } }
        let (localLink, plainCookie) = try link(local)
        #expect(localLink.hasPrefix("http://localhost/console/accept?token="), "the test client's Host: \(localLink)")
        #expect(!plainCookie.contains("Secure"), "\(plainCookie)")
    }

    /// The demo sign-in exists only with --demo and only on a loopback TCP listener: without
    /// the flag it is refused, on the Unix socket (which a proxy may expose) too, and
    /// piam-admind refuses --demo with no loopback listener at all.
    @Test func demoSignInOnlyWithTheFlagOnLoopback() async throws {
        let f = try Fixture.delegation()
        let plain = try await AdmindProcess(f)
        let off = try httpRequest(plain.tcp, "GET", "/console/demo-sign-in")
        #expect(off.status == 403 && off.text.contains("demo_sign_in_off") && off.text.contains("--demo"), "\(off)")
        let offPost = try httpRequest(plain.tcp, "POST", "/console/demo-sign-in", headers: ["Content-Type": "application/x-www-form-urlencoded"],
                                      body: Array("user=nina".utf8))
        #expect(offPost.status == 403, "\(offPost)")
        await plain.stop()
        let demo = try await AdmindProcess(f, extraArgs: ["--demo"])
        let unix = try httpRequest(demo.unix, "GET", "/console/demo-sign-in")
        #expect(unix.status == 403 && unix.text.contains("loopback"), "\(unix)")
        #expect(try httpRequest(demo.tcp, "GET", "/console/demo-sign-in").status == 200)
        await demo.stop()
        // --demo with only a Unix socket: refused at start.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: builtBinary("piam-admind"))
        p.arguments = ["--db", f.db, "--listen", "unix:" + f.path("only.sock"), "--demo"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationStatus == 1 && text.contains("loopback"), "\(text)")
    }

    /// The proxy's header signs people in too (the production path), and its pages decide as
    /// the header's user: the partner admin's console and a person's own page.
    @Test func pagesThroughTheProxyHeader() async throws {
        let f = try Fixture.delegation()
        let admind = try await AdmindProcess(f)
        defer { Task { await admind.stop() } }
        func page(_ path: String, as user: String) throws -> HTTPReply {
            try httpRequest(admind.unix, "GET", path, headers: ["X-Forwarded-User": user])
        }
        #expect(try page("/console", as: "ann").header("Location") == "/console/orgs/acme")
        #expect(try page("/console", as: "nina").header("Location") == "/console/dashboard")
        #expect(try page("/console", as: "nick").header("Location") == "/console/me")
        for (path, user) in [("/console/dashboard", "nina"), ("/console/partners", "nina"), ("/console/roles", "nina"),
                             ("/console/audit", "nina"), ("/console/orgs/acme", "ann"), ("/console/people", "ann"),
                             ("/console/people/nick", "nora"), ("/console/requests", "ann"), ("/console/audit", "ann"),
                             ("/console/me", "nick"), ("/console/orgs/acme/suspend", "nina")] {
            let r = try page(path, as: user)
            #expect(r.status == 200, "\(path) as \(user): \(r)")
        }
        #expect(try page("/console/dashboard", as: "ann").status == 403)
        #expect(try page("/console/orgs/globex", as: "ann").status == 404)
        #expect(try page("/console/orgs/acme/suspend", as: "nina").text.contains("cuts off <strong>4</strong> people"))
        // Through the header, a form post needs the session's cookie and token like any other.
        let roles = try page("/console/roles", as: "nina")
        let cookie = try #require(roles.header("Set-Cookie")?.split(separator: ";").first.map(String.init))
        let csrf = try #require(roles.text.firstMatch(of: /name="csrf" value="([0-9a-f]+)"/).map { String($0.1) })
        let form = "op=role.update&role=claims-viewer&name=Claims+reader&permissions=claim%3Aread&back=%2Fconsole%2Froles"
        func post(_ body: String, cookie: String?) throws -> HTTPReply {
            var h = ["X-Forwarded-User": "nina", "Content-Type": "application/x-www-form-urlencoded"]
            if let cookie { h["Cookie"] = cookie }
            return try httpRequest(admind.unix, "POST", "/console/act", headers: h, body: Array(body.utf8))
        }
        #expect(try post(form, cookie: cookie).status == 403, "no token")
        #expect(try post(form + "&csrf=\(csrf)", cookie: nil).status == 403, "no session")
        let updated = try post(form + "&csrf=\(csrf)", cookie: cookie)
        #expect(updated.status == 303 && updated.header("Location") == "/console/roles", "\(updated)")
        #expect(try Store(path: f.db, readOnly: true).role(id: "claims-viewer")?.name == "Claims reader")
        #expect(try f.lastAudit()?.credential == "header")
        // Without any credential, a page sends to the sign-in.
        #expect(try httpRequest(admind.tcp, "GET", "/console/people").header("Location") == "/console/sign-in")
    }
}

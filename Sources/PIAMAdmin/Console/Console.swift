import Foundation
import HTTPTypes
import Hummingbird
import Mustache
import NIOCore
import PIAMEngine
import PIAMStore

/// How one listener serves the consoles.
public struct ConsoleOptions: Sendable {
    /// piam-admind was started with `--demo`.
    public var demo: Bool
    /// This listener is a loopback TCP address (the only kind the demo sign-in is offered on).
    public var loopback: Bool
    /// The consoles' address as people reach them (``AdminConfig/consolePublicURL``): the base
    /// of invitation links; `nil`: `http://` and the request's `Host`.
    public var publicURL: String?
    /// Served over TLS (the cookie is then `Secure`): a `https` public address.
    public var secure: Bool
    /// Dormant access is counted on the dashboard and partner pages only on a graph of at most
    /// this many people (``AdminConfig/dormantTilesMaxPeople``).
    public var dormantTilesMaxPeople: Int

    public init(demo: Bool = false, loopback: Bool = false, publicURL: String? = nil, dormantTilesMaxPeople: Int = 100_000) {
        self.demo = demo
        self.loopback = loopback
        self.publicURL = publicURL
        self.secure = publicURL?.hasPrefix("https://") ?? false
        self.dormantTilesMaxPeople = dormantTilesMaxPeople
    }

    /// The demo sign-in is on only with the flag and only on a loopback TCP listener: a Unix
    /// socket may sit behind a public proxy.
    var demoSignIn: Bool { demo && loopback }
}

/// The web consoles, `/console/...`: server-rendered HTML (swift-mustache, escaping by default)
/// on the API's own authentication and operations. Every form posts one administrative
/// operation that runs through ``AdminAPI/administer(_:_:expectedRevision:finishing:)`` — the
/// engine decides it again, the store writes and audits it — so what a page hides is
/// convenience, never enforcement.
struct Console: Sendable {
    let api: AdminAPI
    let sessions: ConsoleSessions
    let options: ConsoleOptions
    let templates: MustacheLibrary

    static let contentSecurityPolicy =
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    init(api: AdminAPI, sessions: ConsoleSessions, options: ConsoleOptions) {
        self.api = api
        self.sessions = sessions
        self.options = options
        templates = ConsoleTemplates.library
    }

    var service: AdminService { api.service }

    func addRoutes(to router: Router<AdminRequestContext>) {
        let group = router.group("console").add(middleware: ConsoleMiddleware(console: self))
        group.get("static/console.css") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/css; charset=utf-8", .cacheControl: "public, max-age=3600"],
                     body: .init(byteBuffer: ByteBuffer(string: ConsoleTemplates.stylesheet + "\n" + ConsoleTemplates.reviewStylesheet)))
        }
        group.get { request, context in try await home(request, context) }
        group.get("sign-in") { request, context in try signIn(request, context) }
        group.get("demo-sign-in") { request, context in try demoSignInPage(request, context) }
        group.post("demo-sign-in") { request, context in try await demoSignIn(request, context) }
        group.post("sign-out") { request, context in try await signOut(request, context) }
        group.get("dashboard") { request, context in try await dashboard(request, context) }
        group.get("partners") { request, context in try await partners(request, context) }
        group.get("orgs/:org") { request, context in try await orgPage(request, context) }
        group.get("orgs/:org/suspend") { request, context in try await confirmSuspend(request, context) }
        group.get("people") { request, context in try await people(request, context) }
        group.get("people/:user") { request, context in try await person(request, context) }
        group.get("roles") { request, context in try await roles(request, context) }
        group.get("audit") { request, context in try await audit(request, context) }
        group.get("requests") { request, context in try await requests(request, context) }
        group.get("me") { request, context in try await me(request, context) }
        group.get("accept") { request, context in try acceptPage(request, context) }
        group.post("accept") { request, context in try await accept(request, context) }
        group.post("act") { request, context in try await act(request, context) }
        addReviewRoutes(to: group)
        addUsageRoutes(to: group)
        addRolloutRoutes(to: group)
    }

    /// The link a new person accepts an invitation with: on the configured public address,
    /// else on `http://` and the request's `Host` (a loopback demo).
    func invitationLink(_ request: Request, token: String) -> String {
        let base = options.publicURL ?? "http://\(request.head.authority ?? "127.0.0.1")"
        return "\(base)/console/accept?token=\(token)"
    }

    // MARK: Rendering

    /// Who is looking, and what the navigation offers them (the server decides every action
    /// again; this only chooses what to show).
    struct Viewer {
        var user: String
        var business: Bool
        /// The highest org the viewer administers (may invite people into), if any.
        var home: String?
        var label: String {
            business ? "the business's administrator" : home != nil ? "administrator of \(home!)" : "member"
        }
    }

    func viewer(_ user: String) -> Viewer {
        let g = service.graph.graph, now = AdminAPI.now()
        let root = g.allOrgIDs.first ?? ""
        let business = g.check(subject: user, action: "update", resource: ResourceRef(type: BuiltinType.org, id: root), now: now).allowed
        var home: String?
        if let path = g.accessReport(user: user, now: now)?.orgPath {
            home = path.reversed().first { o in
                g.check(subject: user, action: "invite_user", resource: ResourceRef(type: BuiltinType.org, id: o), now: now).allowed
            }
        }
        if business { home = nil }
        return Viewer(user: user, business: business, home: home)
    }

    func nav(_ v: Viewer?, current: String) -> [[String: Any]] {
        guard let v else { return [] }
        var items: [(String, String)] = []
        if v.business {
            items = [("Dashboard", "/console/dashboard"), ("Partners", "/console/partners"), ("People", "/console/people"),
                     ("Roles", "/console/roles"), ("Requests", "/console/requests"), ("Reviews", "/console/reviews"),
                     ("Dormant access", "/console/dormant"), ("Audit", "/console/audit")]
        } else if let home = v.home {
            items = [("Organization", "/console/orgs/\(pathEscape(home))"), ("People", "/console/people"),
                     ("Requests", "/console/requests"), ("Reviews", "/console/reviews"), ("Dormant access", "/console/dormant"),
                     ("Audit", "/console/audit")]
        }
        items.append(("My access", "/console/me"))
        return items.map { ["label": $0.0, "href": $0.1, "current": $0.1 == current] as [String: Any] }
    }

    /// A page: `template` rendered with `data`, inside the layout.
    func page(_ template: String, _ data: [String: Any], title: String, context: AdminRequestContext,
              current: String = "", status: HTTPResponse.Status = .ok) -> Response {
        var data = data
        let session = context.consoleSession
        data["csrf"] = session?.csrf ?? ""
        let content = templates.render(data, withTemplate: template) ?? ""
        var layout: [String: Any] = ["title": title, "content": content, "csrf": session?.csrf ?? ""]
        if let p = context.principal {
            let v = viewer(p.user)
            layout["user"] = p.user
            layout["role"] = v.label
            layout["nav"] = nav(v, current: current)
        }
        if let id = session?.id, let f = sessions.takeFlash(id) {
            var flash: [String: Any] = ["kind": f.kind, "text": f.text]
            if let l = f.link { flash["link"] = l }
            layout["flash"] = flash
        }
        let html = templates.render(layout, withTemplate: "layout") ?? ""
        return Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    func errorPage(status: HTTPResponse.Status, code: String, message: String, context: AdminRequestContext) -> Response {
        page("error", ["status": status.code, "phrase": status.reasonPhrase, "code": code, "message": message],
             title: "\(status.code) \(status.reasonPhrase)", context: context, status: status)
    }

    func redirect(_ to: String) -> Response {
        Response(status: .seeOther, headers: [.location: to])
    }

    func flash(_ context: AdminRequestContext, _ kind: String, _ text: String, link: String? = nil) {
        if let id = context.consoleSession?.id { sessions.update(id) { $0.flash = .init(kind: kind, text: text, link: link) } }
    }

    /// The signed-in user, or a redirect to the sign-in page.
    func signedIn(_ context: AdminRequestContext) throws -> Principal {
        if let p = context.principal { return p }
        throw ConsoleError(status: .unauthorized, code: "unauthenticated",
                           message: "Sign in first: through the business's sign-in (the proxy), or the demo sign-in when piam-admind runs with --demo.")
    }

    /// The form of a state-changing request, after its CSRF token is checked against the session's.
    func form(_ request: Request, _ context: AdminRequestContext) async throws -> FormBody {
        var req = request
        let buffer: ByteBuffer
        do { buffer = try await req.collectBody(upTo: 64 * 1024) } catch {
            throw ConsoleError(status: .contentTooLarge, code: "too_large", message: "the form exceeds 64 KiB")
        }
        let form = FormBody(String(buffer: buffer))
        // Fetch metadata: a browser says when a request comes from another site.
        if request.headers[HTTPField.Name("Sec-Fetch-Site")!] == "cross-site" {
            throw ConsoleError(status: .forbidden, code: "csrf", message: "a cross-site form post is refused")
        }
        guard let session = context.consoleSession, let token = form["csrf"], constantTimeEqual(token, session.csrf) else {
            throw ConsoleError(status: .forbidden, code: "csrf",
                               message: "the form's CSRF token is missing or is not this session's: reload the page and try again")
        }
        return form
    }

    /// A local path to go back to after a form (never another site).
    func back(_ form: FormBody, default d: String = "/console") -> String {
        guard let b = form.all("back").last, b.hasPrefix("/console"), !b.hasPrefix("//"), !b.contains("\\"),
              !b.contains("\r"), !b.contains("\n") else { return d }
        return b
    }

    // MARK: Sign-in

    func home(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        guard let p = context.principal else { return redirect("/console/sign-in") }
        let v = viewer(p.user)
        if v.business { return redirect("/console/dashboard") }
        if let home = v.home { return redirect("/console/orgs/\(pathEscape(home))") }
        return redirect("/console/me")
    }

    func signIn(_ request: Request, _ context: AdminRequestContext) throws -> Response {
        if context.principal != nil { return redirect("/console") }
        return page("sign-in", ["demo": options.demoSignIn], title: "Sign in", context: context)
    }

    /// The demo identities offered first: the demo database's, then the delegation scenario's.
    static let demoIdentities: [(user: String, what: String)] = [
        ("nina.hq", "the business's administrator"),
        ("acme-brokers-admin", "a partner's administrator (Acme Brokers)"),
        ("acme-brokers-north-admin", "a sub-org's administrator (Acme Brokers, north region)"),
        ("acme-brokers-north-b1-agent1", "an agent (Acme Brokers, north branch 1)"),
        ("newleaf-agency-admin", "the first admin of a pending registration (Newleaf Agency)"),
        ("nina", "the business's administrator"), ("ann", "a partner's administrator (acme)"),
        ("nora", "a sub-org's administrator (acme-north)"), ("nick", "a person (acme-north-b1)"),
    ]

    func demoRefusal() -> ConsoleError {
        ConsoleError(status: .forbidden, code: "demo_sign_in_off",
                     message: options.demo
                        ? "The demo sign-in is offered only on a loopback TCP listener (127.0.0.1, ::1), not on this one."
                        : "The demo sign-in is off: start piam-admind with --demo (and listen on 127.0.0.1) to pick a demo identity.")
    }

    func demoSignInPage(_ request: Request, _ context: AdminRequestContext) throws -> Response {
        guard options.demoSignIn else { throw demoRefusal() }
        let g = service.graph.graph
        let ids = Self.demoIdentities.filter { g.userID(for: $0.user) != nil }.map { ["user": $0.user, "what": $0.what] }
        return page("demo-sign-in", ["identities": ids], title: "Demo sign-in", context: context)
    }

    func demoSignIn(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        guard options.demoSignIn else { throw demoRefusal() }
        let form = try await form(request, context)
        guard let asked = form["user"], let user = service.graph.graph.userID(for: asked) else {
            throw ConsoleError(status: .unprocessableContent, code: "unknown_subject", message: "no such user: \(form["user"] ?? "")")
        }
        if let old = context.consoleSession?.id { sessions.remove(old) }
        let s = sessions.create(user: user, credential: "console-demo")
        var r = redirect("/console")
        r.headers[.setCookie] = ConsoleSessions.cookie(s.id, secure: options.secure)
        return r
    }

    func signOut(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        _ = try await form(request, context)
        if let id = context.consoleSession?.id { sessions.remove(id) }
        return redirect("/console/sign-in")
    }

    // MARK: Actions

    /// `POST /console/act`: one administrative operation from a form — `op` names it, the other
    /// fields are its apply form's (typed by the API's route table) — run through the API's one
    /// path. Success goes back with a message (and an invitation's link); a refusal is a page
    /// with the engine's reason, exactly the API's status and code.
    func act(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        var form = try await form(request, context)
        // The grant form offers (role, scope) pairs as one choice.
        if let rs = form["role_scope"], let bar = rs.firstIndex(of: "|") {
            form.fields.append(("role", String(rs[..<bar])))
            form.fields.append(("scope", String(rs[rs.index(after: bar)...])))
        }
        let principal = try signedIn(context)
        guard let name = form["op"], let route = OperationRoute.all.first(where: { $0.operation == name }) else {
            throw ConsoleError(status: .badRequest, code: "invalid_input", message: "no such operation: \(form["op"] ?? "")")
        }
        var apply: [String: Any] = ["op": name]
        for f in route.pathFields + route.queryFields + route.bodyFields {
            let values = form.all(f.name)
            guard let first = values.first else { continue }
            switch f.kind {
            case .strings:
                apply[f.name] = values.flatMap { $0.split(whereSeparator: { $0 == "," || $0.isWhitespace }).map(String.init) }
            case .bool:
                apply[f.name] = ["true", "on", "1", "yes"].contains(first.lowercased())
            case .int:
                guard let n = Int64(first) else { throw ConsoleError(status: .badRequest, code: "invalid_input", message: "\(f.name): a number") }
                apply[f.name] = n
            default:
                if first.isEmpty && !f.required { continue }
                apply[f.name] = first
            }
        }
        let op: AdminOperation
        do { op = try AdminOperation(json: apply, path: "form") } catch {
            throw ConsoleError(status: .unprocessableContent, code: error.code.rawValue, message: error.message)
        }
        let to = back(form)
        switch try await api.administer(op, principal) {
        case .success(let r) where r.allowed:
            var link: String?
            if let token = r.invitationToken { link = invitationLink(request, token: token) }
            flash(context, "ok", "\(r.message) (revision \(r.revision))", link: link)
            return redirect(to)
        case .success(let r):
            let p = try await api.refusal(r, principal)
            return page("refused", ["status": p.status.code, "code": p.code, "message": p.detail, "operation": r.operation,
                                    "back": to], title: "Refused", context: context, status: p.status)
        case .failure(let e):
            let p = e.code == .invalidInput ? Problem(.unprocessableContent, e.code.rawValue, e.message) : Problem.from(e)
            return page("refused", ["status": p.status.code, "code": p.code, "message": p.detail, "operation": op.name, "back": to],
                        title: "Refused", context: context, status: p.status)
        }
    }

    // MARK: The business's console

    func requireBusiness(_ context: AdminRequestContext) throws -> Principal {
        let p = try signedIn(context)
        guard viewer(p.user).business else {
            throw ConsoleError(status: .forbidden, code: "no_permission", message: "this page is the business's administrators'")
        }
        return p
    }

    func dashboard(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let principal = try requireBusiness(context)
        let g = service.graph.graph
        let tiles = try await usageTiles(for: principal.user, partner: nil)
        let (partners, refusals) = try await service.read { store, _ in
            (try store.listOrgs(parent: "partners"), Array(try store.auditLog(AuditFilter(refusedOnly: true, limit: 10)).reversed()))
        }
        var counts: [String: Int] = ["active": 0, "pending": 0, "suspended": 0]
        for p in partners { counts[p.status.name, default: 0] += 1 }
        let pending = partners.filter { $0.status == .pending }.map { ["id": $0.id, "name": $0.name] }
        let data: [String: Any] = [
            "active": counts["active"] ?? 0, "pending_count": counts["pending"] ?? 0, "suspended": counts["suspended"] ?? 0,
            "people": g.allOrgIDs.isEmpty ? 0 : g.userCount(inSubtreeOf: "partners"),
            "pending": pending, "refusals": refusals.map(auditRow),
            "tiles": tiles,
        ]
        return page("dashboard", data, title: "Dashboard", context: context, current: "/console/dashboard")
    }

    func partners(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        _ = try requireBusiness(context)
        let q = request.uri.queryParameters.get("q") ?? ""
        let status = request.uri.queryParameters.get("status") ?? ""
        let offset = max(0, Int(request.uri.queryParameters.get("offset") ?? "0") ?? 0)
        let g = service.graph.graph
        var all = try await service.read { store, _ in try store.listOrgs(parent: "partners") }
        if !q.isEmpty { all = all.filter { $0.id.hasPrefix(q) || $0.name.lowercased().hasPrefix(q.lowercased()) } }
        if !status.isEmpty { all = all.filter { $0.status.name == status } }
        let pageSize = 50
        let slice = all.dropFirst(offset).prefix(pageSize)
        let active = try activeByPartner()
        let rows = slice.map { o -> [String: Any] in
            ["id": o.id, "href": "/console/orgs/\(pathEscape(o.id))", "name": o.name, "status": o.status.name,
             "people": g.userCount(inSubtreeOf: o.id), "active30": active.map { String($0[o.id] ?? 0) } ?? "–"]
        }
        var data: [String: Any] = ["rows": rows, "q": q, "status": status, "total": all.count, "usage_known": active != nil]
        if offset + pageSize < all.count {
            data["next"] = "/console/partners?" + query(["q": q, "status": status, "offset": String(offset + pageSize)])
        }
        return page("partners", data, title: "Partners", context: context, current: "/console/partners")
    }

    // MARK: Organizations

    func orgPage(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let p = try signedIn(context)
        let id = parameter(context, "org")
        let loaded = service.graph
        let g = loaded.graph, now = AdminAPI.now()
        guard api.visible(g, p.user, BuiltinType.org, id) else { throw Problem.notFound("org:\(id)") }
        let actions = Set(g.listActions(subject: p.user, resource: ResourceRef(type: BuiltinType.org, id: id), now: now))
        let (info, path, children, grants, direct, roles) = try await service.read { store, _ in
            guard let info = try store.org(id: id) else { throw Problem.notFound("org:\(id)") }
            var path: [OrgInfo] = []
            var cur = info.parent
            while let c = cur, let o = try store.org(id: c) { path.insert(o, at: 0); cur = o.parent }
            return (info, path, try store.listOrgs(parent: id), try store.orgGrants(org: id), try store.entitlements(org: id), try store.listRoles())
        }
        var ceiling: [[String: Any]] = direct.map { ["role": $0, "from": id, "direct": true] }
        for o in path {
            for r in try await service.read({ store, _ in try store.entitlements(org: o.id) }) { ceiling.append(["role": r, "from": o.id, "direct": false]) }
        }
        let ceilingRoles = Set(ceiling.compactMap { $0["role"] as? String })
        let subtreePeople = g.userCount(inSubtreeOf: id)
        let members = g.users(ofOrg: id).prefix(10).filter { api.visible(g, p.user, BuiltinType.user, $0) }
        var data: [String: Any] = [
            "id": id, "name": info.name, "kind": info.kind.name, "status": info.status.name,
            "pending": info.status == .pending, "suspended": info.status == .suspended,
            "path": path.filter { api.visible(g, p.user, BuiltinType.org, $0.id) }.map { ["id": $0.id, "name": $0.name, "href": "/console/orgs/\(pathEscape($0.id))"] },
            "children": children.filter { api.visible(g, p.user, BuiltinType.org, $0.id) }
                .map { ["id": $0.id, "name": $0.name, "status": $0.status.name, "href": "/console/orgs/\(pathEscape($0.id))",
                        "people": g.userCount(inSubtreeOf: $0.id)] as [String: Any] },
            "ceiling": ceiling, "people": subtreePeople, "members": members.map { ["id": $0, "href": "/console/people/\(pathEscape($0))"] },
            "people_href": "/console/people?org=\(queryEscape(id))",
            "grants": grants.map { ["role": $0.role, "include_suborgs": $0.includeSuborgs, "valid_until": $0.validUntil.map(RFC3339.format) ?? "",
                                    "can_revoke": actions.contains("grant_role")] as [String: Any] },
            "back": "/console/orgs/\(pathEscape(id))",
            "can_approve": info.status == .pending && actions.contains("approve"),
            "can_suspend": info.status == .active && actions.contains("suspend"),
            "can_reactivate": info.status == .suspended && actions.contains("reactivate"),
            "can_update": actions.contains("update"), "can_create": actions.contains("create_suborg"),
            "can_invite": actions.contains("invite_user") && info.status != .pending,
            "can_grant": actions.contains("grant_role"), "can_entitle": actions.contains("entitle"),
            "suspend_href": "/console/orgs/\(pathEscape(id))/suspend",
            "all_roles": roles.map { ["id": $0.id] },
            "grantable": roles.filter { info.kind == .host || ceilingRoles.contains($0.id) }.map { ["id": $0.id] },
        ]
        data["ceiling_empty"] = ceiling.isEmpty
        if info.kind == .partner, g.partnerRoot(ofOrg: id) == id { data["partner_usage"] = try await partnerUsage(id, for: p.user) }
        data.merge(try await namespaceData(viewer: p.user, org: info, actions: actions)) { _, new in new }
        return page("org", data, title: info.name, context: context,
                    current: viewer(p.user).home == id ? "/console/orgs/\(pathEscape(id))" : "")
    }

    /// The confirmation before suspending an org: how many people it cuts off.
    func confirmSuspend(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let p = try signedIn(context)
        let id = parameter(context, "org")
        let g = service.graph.graph
        guard api.visible(g, p.user, BuiltinType.org, id),
              let info = try await service.read({ store, _ in try store.org(id: id) }) else { throw Problem.notFound("org:\(id)") }
        let data: [String: Any] = ["id": id, "name": info.name, "people": g.userCount(inSubtreeOf: id),
                                   "back": "/console/orgs/\(pathEscape(id))"]
        return page("confirm-suspend", data, title: "Suspend \(info.name)?", context: context)
    }

    // MARK: People

    func people(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let p = try signedIn(context)
        let v = viewer(p.user)
        let loaded = service.graph
        let g = loaded.graph
        let q = (request.uri.queryParameters.get("q") ?? "").trimmingCharacters(in: .whitespaces)
        let cursor = request.uri.queryParameters.get("cursor").flatMap { $0.isEmpty ? nil : $0 }
        let pageSize = 50
        var data: [String: Any] = ["q": q]
        var ids: [String] = []
        var next: String?
        if !q.isEmpty {
            // Prefix search on ids (the primary key's range), names and e-mails, filtered by view.
            let user = p.user
            let after = cursor ?? ""
            let found = try await service.read { store, graph -> [String] in
                // Ids first, on the primary key's range (a page of them ends the search); then
                // names and e-mails, which have no index: a scan, merged in id order.
                func visibleIDs(_ sql: String, _ bind: (Statement) -> Void) throws -> [String] {
                    var out: [String] = []
                    let s = try store.db.prepare(sql)
                    bind(s)
                    while try s.step() {
                        let id = s.text(0)
                        if api.visible(graph.graph, user, BuiltinType.user, id) { out.append(id) }
                        if out.count > pageSize { break }
                    }
                    return out
                }
                let byID = try visibleIDs("SELECT id FROM users WHERE id >= ?1 AND id < ?2 AND id > ?3 ORDER BY id") { s in
                    s.bind(1, q); s.bind(2, q + "\u{10FFFF}"); s.bind(3, after)
                }
                if byID.count > pageSize { return byID }
                let byName = try visibleIDs("""
                    SELECT id FROM users WHERE id > ?2 AND (name LIKE ?1 ESCAPE '\\' OR email LIKE ?1 ESCAPE '\\') ORDER BY id
                    """) { s in s.bind(1, likePrefix(q)); s.bind(2, after) }
                return Array(Set(byID + byName)).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            }
            ids = Array(found.prefix(pageSize))
            if found.count > pageSize, let last = ids.last { next = "/console/people?" + query(["q": q, "cursor": last]) }
            data["searching"] = true
        } else {
            let org = request.uri.queryParameters.get("org") ?? v.home ?? (g.accessReport(user: p.user, now: AdminAPI.now())?.org ?? "")
            guard api.visible(g, p.user, BuiltinType.org, org) else { throw Problem.notFound("org:\(org)") }
            let after = try Cursor.decode(cursor)
            for u in g.users(ofOrg: org) {
                if let after, !after.utf8.lexicographicallyPrecedes(u.utf8) { continue }
                guard api.visible(g, p.user, BuiltinType.user, u) else { continue }
                if ids.count == pageSize { next = "/console/people?" + query(["org": org, "cursor": Cursor.encode(ids.last!)]); break }
                ids.append(u)
            }
            let children = try await service.read { store, _ in try store.listOrgs(parent: org) }
            data["org"] = org
            data["org_href"] = "/console/orgs/\(pathEscape(org))"
            let suborgs = children.filter { api.visible(g, p.user, BuiltinType.org, $0.id) }
                .map { ["id": $0.id, "href": "/console/people?org=\(queryEscape($0.id))"] }
            data["suborgs"] = suborgs
            data["has_suborgs"] = !suborgs.isEmpty
        }
        let shownIDs = ids
        let infos = try await service.read { store, _ in try shownIDs.compactMap { try store.user(idOrAlias: $0) } }
        data["rows"] = infos.map { u -> [String: Any] in
            ["id": u.id, "href": "/console/people/\(pathEscape(u.id))", "name": u.name ?? "", "email": u.email ?? "",
             "org": u.org, "status": u.status.name]
        }
        data["empty"] = infos.isEmpty
        if let next { data["next"] = next }
        return page("people", data, title: "People", context: context, current: "/console/people")
    }

    func person(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let p = try signedIn(context)
        let id = parameter(context, "user")
        let g = service.graph.graph, now = AdminAPI.now()
        guard api.visible(g, p.user, BuiltinType.user, id), let report = g.accessReport(user: id, now: now),
              let info = try await service.read({ store, _ in try store.user(idOrAlias: id) }) else { throw Problem.notFound("user:\(id)") }
        let actions = Set(g.listActions(subject: p.user, resource: ResourceRef(type: BuiltinType.user, id: info.id), now: now))
        // The roles and scopes can_assign allows this actor to hand out to this person.
        let (roles, scopes) = try await service.read { store, _ -> ([RoleInfo], [String]) in
            var scopes = [info.org]
            var frontier = [info.org]
            while !frontier.isEmpty, scopes.count < 40 {
                let o = frontier.removeFirst()
                for c in try store.listOrgs(parent: o) where scopes.count < 40 { scopes.append(c.id); frontier.append(c.id) }
            }
            return (try store.listRoles(), scopes)
        }
        var offers: [[String: Any]] = []
        if actions.contains("assign_role") {
            for r in roles {
                for s in scopes where g.canAssign(actor: p.user, target: info.id, role: r.id, scope: s, now: now).allowed {
                    offers.append(["value": "\(r.id)|\(s)", "role": r.id, "scope": s])
                }
            }
        }
        let back = "/console/people/\(pathEscape(info.id))"
        var data: [String: Any] = [
            "id": info.id, "name": info.name ?? "", "email": info.email ?? "", "org": info.org,
            "org_href": "/console/orgs/\(pathEscape(info.org))", "status": info.status.name,
"aliases": info.aliases.map { ["alias": $0, "user": info.id] },
            "state": report.subjectState.name, "back": back,
            "holdings": report.holdings.map { h -> [String: Any] in
                var o: [String: Any] = [
                    "source": h.source == "org_grant" ? "org grant on \(h.grantOrg ?? "")" : "assignment", "role": h.role, "scope": h.scope,
                    "state": h.state, "permissions": h.permissions.joined(separator: ", "),
                    "can_revoke": h.source == "assignment" && actions.contains("revoke_role")]
                // Absent, not nil: a missing key is false in a section (nil would print "nil").
                if let v = h.validUntil { o["holding_until"] = RFC3339.format(v) }
                return o
            },
            "effective": report.effective.map { ["permission": $0.permission, "scope": $0.scope, "via": $0.via.joined(separator: "; ")] },
            "offers": offers, "can_grant": !offers.isEmpty, "cannot_grant": actions.contains("assign_role") && offers.isEmpty,
            "can_suspend": info.status == .active && actions.contains("suspend"),
            "can_reactivate": info.status == .suspended && actions.contains("reactivate"),
            "can_remove": actions.contains("remove"), "can_update": actions.contains("update"),
            "invited": info.status == .invited && actions.contains("update"),
        ]
        if let v = info.validUntil { data["until"] = RFC3339.format(v) }
        data["person_usage"] = try personUsage(info.id)
        return page("person", data, title: info.name ?? info.id, context: context)
    }

    // MARK: Roles, requests, audit

    func roles(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let p = try signedIn(context)
        let g = service.graph.graph, now = AdminAPI.now()
        let visible = try g.listResources(subject: p.user, action: "view", type: BuiltinType.role, limit: 10_000, now: now).items
        let roles = try await service.read { store, _ in try visible.compactMap { try store.role(id: $0) } }
        let canDefine = g.check(subject: p.user, action: "define", resource: ResourceRef(type: BuiltinType.role, id: "a-new-role"), now: now).allowed
        let data: [String: Any] = [
            "roles": roles.map { ["id": $0.id, "name": $0.name ?? "", "description": $0.description ?? "",
                                  "permissions": $0.permissions.joined(separator: " ")] },
            "can_define": canDefine,
        ]
        return page("roles", data, title: "Roles", context: context, current: "/console/roles")
    }

    func requests(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let p = try signedIn(context)
        let user = p.user
        let pending = try await service.read { store, loaded in
            try store.approvableRequests(approver: user, graph: loaded.graph, now: AdminAPI.now())
        }
        let data: [String: Any] = [
            "requests": pending.map { r -> [String: Any] in
                ["id": r.id, "user": r.user, "href": "/console/people/\(pathEscape(r.user))", "role": r.role, "scope": r.scope,
                 "note": r.note ?? "", "created": RFC3339.format(r.createdAt)]
            },
            "empty": pending.isEmpty,
        ]
        return page("requests", data, title: "Access requests", context: context, current: "/console/requests")
    }

    /// The audit log, newest first: every row for the business's administrators, else the rows
    /// of the viewer's partner (the API's rule); filters on actor, partner and refusals.
    func audit(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let p = try signedIn(context)
        let g = service.graph.graph, now = AdminAPI.now()
        let v = viewer(p.user)
        var partner = request.uri.queryParameters.get("partner").flatMap { $0.isEmpty ? nil : $0 }
        if !v.business {
            guard let org = g.accessReport(user: p.user, now: now)?.org, let root = g.partnerRoot(ofOrg: org),
                  g.check(subject: p.user, action: "update", resource: ResourceRef(type: BuiltinType.org, id: root), now: now).allowed else {
                throw ConsoleError(status: .forbidden, code: Reason.outOfScope.name,
                                   message: "reading the audit log takes update on your partner's organization")
            }
            partner = root
        }
        let actor = request.uri.queryParameters.get("actor").flatMap { $0.isEmpty ? nil : $0 }
        let refused = request.uri.queryParameters.get("refused") == "1"
        let before = request.uri.queryParameters.get("before").flatMap { Int64($0) }
        let pageSize = 50
        let filter = AuditFilter(actor: actor, partner: partner, refusedOnly: refused, beforeID: before, limit: pageSize + 1)
        let rows = try await service.read { store, _ in Array(try store.auditLog(filter).reversed()) }
        let shown = Array(rows.prefix(pageSize))
        var data: [String: Any] = ["rows": shown.map(auditRow), "actor": actor ?? "", "partner": partner ?? "", "refused": refused,
                                   "business": v.business, "empty": shown.isEmpty]
        if rows.count > pageSize, let last = shown.last {
            data["next"] = "/console/audit?" + query(["actor": actor ?? "", "partner": v.business ? partner ?? "" : "",
                                                      "refused": refused ? "1" : "", "before": String(last.id)])
        }
        return page("audit", data, title: "Audit log", context: context, current: "/console/audit")
    }

    func auditRow(_ a: AuditEntry) -> [String: Any] {
        ["id": a.id, "at": RFC3339.format(a.at), "actor": a.actor, "operation": a.operation, "target": a.target,
         "decision": a.decision, "refused": a.decision != "allowed", "reason": a.reason, "message": a.message ?? "",
         "credential": a.credential ?? "", "partner": a.partner ?? ""]
    }

    // MARK: A person's own page

    func me(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let p = try signedIn(context)
        let g = service.graph.graph, now = AdminAPI.now()
        guard let report = g.accessReport(user: p.user, now: now) else { throw Problem.notFound("user:\(p.user)") }
        let user = p.user
        let (info, mine, roles) = try await service.read { store, _ in
            (try store.user(idOrAlias: user), try store.accessRequests(user: user), try store.listRoles())
        }
        let requestable = report.host ? roles.map(\.id) : (report.ceiling ?? [])
        let data: [String: Any] = [
            "id": report.user, "name": info?.name ?? "", "email": info?.email ?? "", "org": report.org,
            "org_path": report.orgPath.joined(separator: " ← "), "status": report.status, "state": report.subjectState.name,
            "effective": report.effective.map { ["permission": $0.permission, "scope": $0.scope, "via": $0.via.joined(separator: "; ")] },
            "holdings": report.holdings.map { h -> [String: Any] in
                ["source": h.source == "org_grant" ? "org grant on \(h.grantOrg ?? "")" : "assignment", "role": h.role,
                 "scope": h.scope, "state": h.state]
            },
            "requestable": requestable.map { ["id": $0] }, "can_request": !requestable.isEmpty,
            "requests": mine.reversed().map { ["id": $0.id, "role": $0.role, "scope": $0.scope, "status": $0.status, "note": $0.note ?? ""] as [String: Any] },
            "back": "/console/me",
        ]
        return page("me", data, title: "My access", context: context, current: "/console/me")
    }

    func acceptPage(_ request: Request, _ context: AdminRequestContext) throws -> Response {
        let token = request.uri.queryParameters.get("token") ?? ""
        let identity = context.unmappedIdentity ?? ""
        return page("accept", ["token": token, "identity": identity, "fixed": !identity.isEmpty, "demo": options.demoSignIn],
                    title: "Accept an invitation", context: context)
    }

    /// Accepts an invitation: binds the identity the request is authenticated as (the proxy's
    /// header naming no user yet), or the one typed (the invitation's secret is the credential,
    /// as for the API). With the demo sign-in, the session then acts as the new person.
    func accept(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let form = try await form(request, context)
        guard let token = form["token"], !token.isEmpty else {
            throw ConsoleError(status: .badRequest, code: "invalid_input", message: "the invitation's token is required")
        }
        let identity = context.unmappedIdentity ?? form["identity"] ?? ""
        guard !identity.isEmpty else {
            throw ConsoleError(status: .unprocessableContent, code: "identity_required", message: "the identity to sign in with is required")
        }
        switch try await api.accept(secret: token, identity: identity) {
        case .success(let r):
            if options.demoSignIn, context.principal == nil, let id = context.consoleSession?.id {
                let user = String(r.target.split(separator: ":", maxSplits: 1).last ?? "")
                sessions.update(id) { $0.user = user; $0.credential = "console-demo" }
            }
            flash(context, "ok", "\(r.message) (revision \(r.revision))")
            return redirect(options.demoSignIn || context.principal != nil ? "/console/me" : "/console/sign-in")
        case .failure(let e):
            throw ConsoleError(status: e.code.rawValue == "invitation_invalid" ? .notFound : e.code.rawValue.hasPrefix("invitation_") ? .gone : .unprocessableContent,
                               code: e.code.rawValue, message: e.message)
        }
    }

    // MARK: Helpers

    func parameter(_ context: AdminRequestContext, _ name: String) -> String {
        let v = context.parameters.get(name) ?? ""
        return v.removingPercentEncoding ?? v
    }
}

/// An id in a path segment.
func pathEscape(_ s: String) -> String {
    s.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/?#%;"))) ?? s
}

/// A value in a query string.
func queryEscape(_ s: String) -> String {
    s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? s
}

func query(_ items: [String: String]) -> String {
    items.keys.sorted().compactMap { k in items[k].flatMap { $0.isEmpty ? nil : "\(k)=\(queryEscape($0))" } }.joined(separator: "&")
}

/// A LIKE pattern matching strings that start with `s` (its `%`, `_` and `\` escaped).
func likePrefix(_ s: String) -> String {
    var out = ""
    for c in s {
        if c == "%" || c == "_" || c == "\\" { out.append("\\") }
        out.append(c)
    }
    return out + "%"
}

/// Sessions, CSRF, security headers and HTML errors for every console route.
struct ConsoleMiddleware: RouterMiddleware {
    typealias Context = AdminRequestContext
    let console: Console

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let sessions = console.sessions
        var session = ConsoleSessions.id(in: request).flatMap(sessions.get)
        var newCookie: String?
        let safe = request.method == .get || request.method == .head
        if let p = context.principal {
            // The listener authenticated the request (the proxy's header, a bearer credential):
            // the session follows that user; a session of someone else is not used.
            if session?.user != p.user {
                session = nil
                if safe {
                    session = sessions.create(user: p.user, credential: p.credential)
                    newCookie = session?.id
                }
            }
        } else if let s = session, let u = s.user {
            if let id = console.service.graph.graph.userID(for: u) {
                context.principal = Principal(user: id, credential: s.credential)
                context.logger[metadataKey: "piam.actor"] = .string(id)
            } else {
                sessions.remove(s.id)
                session = nil
            }
        }
        if session == nil, safe {
            session = sessions.create(user: nil, credential: "anonymous")
            newCookie = session?.id
        }
        context.consoleSession = session
        let started = ContinuousClock.now
        var response: Response
        do {
            response = try await next(request, context)
        } catch let e as ConsoleError {
            if e.status == .unauthorized, safe {
                response = console.redirect("/console/sign-in")
            } else {
                response = console.errorPage(status: e.status, code: e.code, message: e.message, context: context)
            }
        } catch let p as Problem {
            response = console.errorPage(status: p.status, code: p.code, message: p.detail, context: context)
        } catch let e as PIAMError {
            let p = Problem.from(e)
            response = console.errorPage(status: p.status, code: p.code, message: p.detail, context: context)
        } catch let e as HTTPError {
            response = console.errorPage(status: e.status, code: e.status == .notFound ? "not_found" : "http_\(e.status.code)",
                                         message: e.status == .notFound ? "no such page" : (e.body ?? e.status.reasonPhrase), context: context)
        }
        if let id = newCookie, response.headers[.setCookie] == nil {
            response.headers[.setCookie] = ConsoleSessions.cookie(id, secure: console.options.secure)
        }
        // The page's server time (the benchmark reads it; browsers show it in their tools).
        let elapsed = ContinuousClock.now - started
        let ms = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        response.headers[HTTPField.Name("Server-Timing")!] = "app;dur=\(String(format: "%.2f", ms))"
        response.headers[.contentSecurityPolicy] = Console.contentSecurityPolicy
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        response.headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        return response
    }
}

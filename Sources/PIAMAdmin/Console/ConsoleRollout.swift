import Foundation
import HTTPTypes
import Hummingbird
import PIAMEngine
import PIAMStore

/// The business's multi-step pages: rolling out a service (a role defined, entitled to partners
/// and org-granted at their roots, previewed with what-if before it is committed), a partner
/// root's identity namespaces, and registering a partner.
///
/// As for every console form, nothing here decides: the roll-out's operations are rebuilt on
/// the server from the posted fields at preview and again at commit, previewed through the API's
/// what-if path (``AdminAPI/whatIfOutcome(_:_:)``) and committed through its apply path
/// (``AdminAPI/applyItems(_:_:expectedRevision:finishing:)``): one transaction, each operation
/// decided by the engine for the signed-in user and audited with the console's credential.
extension Console {
    func addRolloutRoutes(to group: RouterGroup<AdminRequestContext>) {
        group.get("rollout") { request, context in try await rolloutForm(request, context) }
        group.post("rollout/preview") { request, context in try await rolloutPreview(request, context) }
        group.post("rollout/commit") { request, context in try await rolloutCommit(request, context) }
        group.post("orgs/:org/namespaces") { request, context in try await changeNamespace(request, context) }
        group.get("orgs/:org/namespaces/remove") { request, context in try await confirmNamespaceRemoval(request, context) }
        group.get("partners/register") { request, context in try registerForm(request, context) }
        group.post("partners/register") { request, context in try await register(request, context) }
    }

    // MARK: Rolling out a service

    /// What the roll-out form asks for. Read from a form (the first page's, or the fields the
    /// preview carries to its commit button); the operations are always built from it here.
    struct Rollout {
        var role = ""
        var name = ""
        var description = ""
        var permissions: [String] = []
        /// Every active partner root (else `partners`).
        var allPartners = true
        /// The chosen partner roots (when not `allPartners`), in the order given, without repeats.
        var partners: [String] = []
        /// Org-grant the role at each partner root.
        var orgGrant = true
        /// The org grants reach the partners' sub-orgs too.
        var includeSuborgs = true

        /// Items separated by commas or white space. (A textarea's line break is `\r\n`, which
        /// Swift reads as ONE character: it is white space, but none of `\r` and `\n`.)
        static func split(_ s: String) -> [String] {
            s.split(whereSeparator: { $0 == "," || $0.isWhitespace }).map(String.init)
        }

        static func flag(_ v: String?) -> Bool { ["true", "on", "1", "yes"].contains((v ?? "").lowercased()) }

        init() {}

        /// Reads the form's fields. A checkbox left unchecked is absent, so the form and the
        /// preview both send `org_grant` and `include_suborgs` explicitly (`true`/`false`, the
        /// checkbox after a hidden `false`: the last value wins).
        init(_ form: FormBody) {
            role = (form["role"] ?? "").trimmingCharacters(in: .whitespaces)
            name = (form["name"] ?? "").trimmingCharacters(in: .whitespaces)
            description = (form["description"] ?? "").trimmingCharacters(in: .whitespaces)
            permissions = form.all("permissions").flatMap(Self.split)
            allPartners = form["partners"] != "chosen"
            var seen = Set<String>()
            partners = form.all("chosen").flatMap(Self.split).filter { seen.insert($0).inserted }
            orgGrant = Self.flag(form.all("org_grant").last ?? "true")
            includeSuborgs = Self.flag(form.all("include_suborgs").last ?? "true")
        }

        /// What is missing, for the form (the store checks the rest: ids, permissions, targets).
        var problem: String? {
            if role.isEmpty { return "the role's id is required" }
            if permissions.isEmpty { return "the role needs at least one permission (TYPE:ACTION, one per line or comma separated)" }
            if !allPartners && partners.isEmpty { return "choose the partners: their ids, one per line or comma separated" }
            return nil
        }

        /// The fields that carry this roll-out from the preview to its commit (and back to the form).
        var carried: [[String: String]] {
            [["name": "role", "value": role], ["name": "name", "value": name], ["name": "description", "value": description],
             ["name": "permissions", "value": permissions.joined(separator: ", ")],
             ["name": "partners", "value": allPartners ? "all" : "chosen"], ["name": "chosen", "value": partners.joined(separator: ", ")],
             ["name": "org_grant", "value": orgGrant ? "true" : "false"],
             ["name": "include_suborgs", "value": includeSuborgs ? "true" : "false"]]
        }

        /// The operations, in order: `role.define`, then per partner `entitle` and (if asked)
        /// `org-grant` at its root.
        func operations(partners roots: [String]) -> [AdminOperation] {
            var ops: [AdminOperation] = [.defineRole(role: role, name: name.isEmpty ? nil : name,
                                                     description: description.isEmpty ? nil : description, permissions: permissions)]
            for p in roots {
                ops.append(.entitle(org: p, role: role))
                if orgGrant { ops.append(.grantToOrg(org: p, role: role, includeSuborgs: includeSuborgs, validUntil: nil)) }
            }
            return ops
        }
    }

    /// The partner roots a roll-out targets for `user`: the chosen ones as given, or every active
    /// partner root the user may view (all of them for the business's administrators; a partner
    /// admin's "all" names no other partner, whose ids it may not learn).
    func rolloutPartners(_ r: Rollout, for user: String) async throws -> [String] {
        if !r.allPartners { return r.partners }
        let g = service.graph.graph
        let orgs = try await service.read { store, _ in try store.listOrgs(parent: Seed.partnersOrgID) }
        return orgs.filter { $0.kind == .partner && $0.status == .active && api.visible(g, user, BuiltinType.org, $0.id) }.map(\.id)
    }

    func activePartnerCount() async throws -> Int {
        try await service.read { store, _ in try store.listOrgs(parent: Seed.partnersOrgID) }
            .filter { $0.kind == .partner && $0.status == .active }.count
    }

    /// `GET /console/rollout`: the form (the business's administrators; the fields of a preview's
    /// "Change" button fill it again).
    func rolloutForm(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        _ = try requireBusiness(context)
        let q = request.uri.queryParameters
        var r = Rollout()
        if q.get("role") != nil {
            var form = FormBody("")
            for (k, v) in q { form.fields.append((String(k), String(v))) }
            r = Rollout(form)
        }
        return try await rolloutFormPage(r, message: nil, context: context)
    }

    func rolloutFormPage(_ r: Rollout, message: String?, context: AdminRequestContext,
                         status: HTTPResponse.Status = .ok) async throws -> Response {
        var data: [String: Any] = [
            "role": r.role, "name": r.name, "description": r.description, "permissions": r.permissions.joined(separator: "\n"),
            "all": r.allPartners, "chosen": r.partners.joined(separator: "\n"), "org_grant": r.orgGrant,
            "include_suborgs": r.includeSuborgs, "active": try await activePartnerCount(), "back": "/console/roles",
        ]
        if let message { data["message"] = message }
        return page("rollout", data, title: "Roll out a service", context: context, current: "/console/roles", status: status)
    }

    /// `POST /console/rollout/preview`: the operations the form stands for and what they would
    /// do, by the API's what-if path; a Commit button carries the form's fields (not the
    /// operations) on.
    func rolloutPreview(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let form = try await form(request, context)
        let p = try signedIn(context)
        let r = Rollout(form)
        if let problem = r.problem {
            return try await rolloutFormPage(r, message: problem, context: context, status: .unprocessableContent)
        }
        return try await previewPage(r, p, notice: nil, context: context)
    }

    func previewPage(_ r: Rollout, _ p: Principal, notice: String?, context: AdminRequestContext) async throws -> Response {
        let roots = try await rolloutPartners(r, for: p.user)
        if roots.isEmpty {
            return try await rolloutFormPage(r, message: "there is no active partner to roll it out to", context: context,
                                             status: .unprocessableContent)
        }
        let batch = r.operations(partners: roots).map { AdminBatchItem(actor: p.user, operation: $0) }
        let outcome = try await api.whatIfOutcome(batch, p)
        let result = outcome.result
        let g = service.graph.graph
        // Who gains, by partner root: per permission, how many people and over which scopes
        // (an org grant with sub-orgs gives each member the permission over its own org).
        struct Gain { var people = 0; var scopes: [String: Int] = [:] }
        struct Tally { var people: [String] = []; var permissions: [String: Gain] = [:] }
        var byPartner: [String: Tally] = [:]
        var totals: [String: Int] = [:]
        var lost = 0
        for person in outcome.people {
            if !person.lost.isEmpty { lost += 1 }
            guard !person.gained.isEmpty else { continue }
            let root = g.partnerRoot(ofOrg: person.org) ?? person.org
            var t = byPartner[root] ?? Tally()
            t.people.append(person.user)
            for (permission, effective) in Dictionary(grouping: person.gained, by: \.permission) {
                totals[permission, default: 0] += 1
                t.permissions[permission, default: Gain()].people += 1
                for e in effective { t.permissions[permission]!.scopes[e.scope, default: 0] += 1 }
            }
            byPartner[root] = t
        }
        let partnerIDs = Array(byPartner.keys)
        let names = try await service.read { store, _ in
            try Dictionary(partnerIDs.compactMap { try store.org(id: $0) }.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
        }
        let shown = 5, shownScopes = 3
        let gainers = byPartner.values.reduce(0) { $0 + $1.people.count }
        let rows: [[String: Any]] = byPartner.keys.sorted().map { id in
            let t = byPartner[id]!
            let people = t.people.sorted()
            return [
                "partner": id, "partner_name": names[id] ?? id, "href": "/console/orgs/\(pathEscape(id))", "count": people.count,
                "permissions": t.permissions.keys.sorted().map { permission -> [String: Any] in
                    let gain = t.permissions[permission]!
                    // The scopes most held first; a partner with many sub-orgs lists the first few.
                    let scopes = gain.scopes.keys.sorted { (gain.scopes[$0]!, $1) > (gain.scopes[$1]!, $0) }
                    return ["permission": permission, "count": gain.people,
                            "scopes": scopes.prefix(shownScopes).map { ["scope": $0, "count": gain.scopes[$0]!] as [String: Any] },
                            "more_scopes": max(0, scopes.count - shownScopes), "has_more_scopes": scopes.count > shownScopes]
                },
                "first": people.prefix(shown).map { ["id": $0, "href": "/console/people/\(pathEscape($0))"] },
                "more": max(0, people.count - shown), "has_more": people.count > shown,
            ]
        }
        let failed = result.results.first { $0.status == "refused" || $0.status == "failed" }
        var data: [String: Any] = [
            "role": r.role, "name": r.name, "permissions_text": r.permissions.joined(separator: " "),
            "partner_count": roots.count, "all": r.allPartners, "org_grant": r.orgGrant, "include_suborgs": r.includeSuborgs,
            "operations": result.results.map { i -> [String: Any] in
                ["index": i.index + 1, "operation": i.operation, "target": i.target, "status": i.status,
                 "bad": i.status == "refused" || i.status == "failed", "reason": i.status == "ok" ? "" : i.reason, "message": i.message]
            },
            "operation_count": result.results.count,
            "would_commit": result.wouldCommit, "revision": result.revision,
            "gain_count": gainers, "partners_gaining": rows.count, "lost_count": lost, "has_lost": lost > 0, "hidden": outcome.hidden,
            "has_hidden": outcome.hidden > 0, "rows": rows, "nobody": gainers == 0,
            "totals": totals.keys.sorted().map { ["permission": $0, "count": totals[$0]!] },
            "seconds": String(format: "%.3f", outcome.seconds),
            "carried": r.carried, "change_href": "/console/rollout?" + query(Dictionary(r.carried.map { ($0["name"]!, $0["value"]!) },
                                                                                   uniquingKeysWith: { a, _ in a })),
            "back": "/console/roles",
        ]
        if let failed {
            data["failed"] = ["operation": failed.operation, "target": failed.target, "reason": failed.reason, "message": failed.message]
        }
        if let notice { data["notice"] = notice }
        return page("rollout-preview", data, title: "Preview: roll out \(r.role)", context: context, current: "/console/roles",
                    status: result.wouldCommit ? .ok : .unprocessableContent)
    }

    /// `POST /console/rollout/commit`: rebuilds the operations from the carried fields and
    /// applies them as ONE transaction through the API's apply path, at the revision the preview
    /// was decided on (if the graph moved since, the preview is shown again, decided afresh).
    func rolloutCommit(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let form = try await form(request, context)
        let p = try signedIn(context)
        let r = Rollout(form)
        if let problem = r.problem {
            return try await rolloutFormPage(r, message: problem, context: context, status: .unprocessableContent)
        }
        let expected = form["revision"].flatMap { Int64($0) }
        let roots = try await rolloutPartners(r, for: p.user)
        let batch = r.operations(partners: roots).map { AdminBatchItem(actor: p.user, operation: $0) }
        let result: ApplyResult
        do {
            result = try await api.applyItems(batch, p, expectedRevision: expected)
        } catch let e as PIAMError where e.code == AdminWriter.preconditionFailed {
            return try await previewPage(r, p, notice: "The graph changed since that preview (it was decided at revision \(expected ?? 0)): "
                                            + "here it is again, decided on the current state. Commit again to apply it.", context: context)
        }
        if result.committed {
            flash(context, "ok", "Rolled out \(r.role) to \(roots.count) partner\(roots.count == 1 ? "" : "s"): "
                    + "\(result.results.count) operations in one transaction (revision \(result.revision))")
            return redirect("/console/roles")
        }
        let problem = try await api.applyProblem(result, p)
        if problem.status == .notFound { throw problem }
        let failed = result.results.first { $0.status == "refused" || $0.status == "failed" }
        return page("refused", ["status": problem.status.code, "code": problem.code, "message": problem.detail,
                                "operation": failed?.operation ?? "rollout", "back": "/console/roles"],
                    title: "Refused", context: context, status: problem.status)
    }

    // MARK: Identity namespaces

    /// The namespaces section of an org page (a partner root's only): editable by whoever may
    /// `entitle` the org (the business: the operations' own rule), read-only for the partner's
    /// administrators (`update` on the root), absent for anyone else.
    func namespaceData(viewer user: String, org: OrgInfo, actions: Set<String>) async throws -> [String: Any] {
        guard org.kind == .partner, let parent = org.parent else { return [:] }
        let id = org.id
        let (isRoot, namespaces) = try await service.read { store, _ in
            (try store.org(id: parent)?.kind == .host, try store.identityNamespaces(partner: id))
        }
        guard isRoot else { return [:] }
        let canEdit = actions.contains("entitle")
        guard canEdit || actions.contains("update") else { return [:] }
        return [
            "namespaces_shown": true, "can_edit_namespaces": canEdit, "namespaces_empty": namespaces.isEmpty,
            "namespaces": namespaces.map {
                ["namespace": $0.text, "remove_href": "/console/orgs/\(pathEscape(id))/namespaces/remove?namespace=\(queryEscape($0.text))"]
            },
            "namespaces_action": "/console/orgs/\(pathEscape(id))/namespaces",
        ]
    }

    /// `GET /console/orgs/{org}/namespaces/remove?namespace=`: the confirmation before withdrawing one.
    func confirmNamespaceRemoval(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let p = try signedIn(context)
        let id = parameter(context, "org")
        let ns = request.uri.queryParameters.get("namespace").map { String($0) } ?? ""
        let g = service.graph.graph
        guard api.visible(g, p.user, BuiltinType.org, id),
              let info = try await service.read({ store, _ in try store.org(id: id) }) else { throw Problem.notFound("org:\(id)") }
        let data: [String: Any] = ["id": id, "name": info.name, "namespace": ns, "action": "/console/orgs/\(pathEscape(id))/namespaces",
                                   "back": "/console/orgs/\(pathEscape(id))"]
        return page("namespace-remove", data, title: "Withdraw \(ns)?", context: context)
    }

    /// `POST /console/orgs/{org}/namespaces` (`action` add or remove, `namespace`): one
    /// operation through the API's path; the outcome (or the refusal's reason: a namespace that
    /// does not parse, an overlap with another partner's) is a message on the org's page.
    func changeNamespace(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let form = try await form(request, context)
        let p = try signedIn(context)
        let id = parameter(context, "org")
        let ns = (form["namespace"] ?? "").trimmingCharacters(in: .whitespaces)
        let to = "/console/orgs/\(pathEscape(id))"
        guard !ns.isEmpty else {
            flash(context, "error", "invalid_input: the namespace is required (an issuer prefix such as okta-acme| or a domain such as @acme.example)")
            return redirect(to)
        }
        let op: AdminOperation = form["action"] == "remove" ? .removeNamespace(org: id, namespace: ns) : .addNamespace(org: id, namespace: ns)
        switch try await api.administer(op, p) {
        case .success(let r) where r.allowed:
            flash(context, "ok", "\(r.message) (revision \(r.revision))")
        case .success(let r):
            let problem = try await api.refusal(r, p)
            if problem.status == .notFound { throw problem }
            flash(context, "error", "Refused: \(problem.code): \(problem.detail)")
        case .failure(let e):
            if e.code == .notFound, try await !api.isVisible("org:\(id)", to: p.user) { throw Problem.notFound("org:\(id)") }
            flash(context, "error", "\(e.code.rawValue): \(e.message)")
        }
        return redirect(to)
    }

    // MARK: Registering a partner

    /// `GET /console/partners/register`: the business registers a partner (a pending org and its
    /// first admin, invited), approved afterwards from the partner's page.
    func registerForm(_ request: Request, _ context: AdminRequestContext) throws -> Response {
        _ = try requireBusiness(context)
        return page("register", ["back": "/console/partners"], title: "Register a partner", context: context, current: "/console/partners")
    }

    /// `POST /console/partners/register`: `org.register` through the API's path, for the
    /// signed-in user (the engine asks for `create_suborg` on `partners`); the answer shows the
    /// first admin's invitation link once, on the new partner's page.
    func register(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let form = try await form(request, context)
        let p = try signedIn(context)
        func field(_ n: String) -> String? { form[n].map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 } }
        guard let org = field("org"), let admin = field("admin") else {
            throw ConsoleError(status: .unprocessableContent, code: "invalid_input", message: "the partner's id and its first admin's user id are required")
        }
        let op = AdminOperation.registerOrg(org: org, name: field("name"), parent: nil, admin: admin, adminName: field("admin_name"),
                                            adminEmail: field("admin_email"))
        switch try await api.administer(op, p) {
        case .success(let r) where r.allowed:
            var link: String?
            if let token = r.invitationToken {
                link = invitationLink(request, token: token)
            }
            flash(context, "ok", "\(r.message) (revision \(r.revision))", link: link)
            return redirect("/console/orgs/\(pathEscape(org))")
        case .success(let r):
            let problem = try await api.refusal(r, p)
            return page("refused", ["status": problem.status.code, "code": problem.code, "message": problem.detail, "operation": r.operation,
                                    "back": "/console/partners/register"], title: "Refused", context: context, status: problem.status)
        case .failure(let e):
            let problem = e.code == .invalidInput ? Problem(.unprocessableContent, e.code.rawValue, e.message) : Problem.from(e)
            return page("refused", ["status": problem.status.code, "code": problem.code, "message": problem.detail, "operation": op.name,
                                    "back": "/console/partners/register"], title: "Refused", context: context, status: problem.status)
        }
    }
}

import Foundation
import HTTPTypes
import Hummingbird
import PIAMEngine
import PIAMStore

// Access reviews in the consoles: the business creates a campaign, follows its completion per
// partner and closes it (confirming what the no-answer policy revokes); each reviewer — a
// partner's admin, the business as the fallback — answers its items, keep or revoke with a
// comment. Every step is the API's own (``AdminAPI/startReview(name:scope:due:noAnswer:days:principal:)``,
// ``AdminAPI/decide(reviewItem:of:decision:comment:principal:)``, ``AdminAPI/finishReview(_:confirmRevocations:principal:)``):
// the store decides with the engine, writes and audits; the pages only translate.
extension Console {
    func addReviewRoutes(to group: RouterGroup<AdminRequestContext>) {
        group.get("reviews") { request, context in try await reviews(request, context) }
        group.post("reviews") { request, context in try await createReview(request, context) }
        group.get("reviews/:review") { request, context in try await campaign(request, context) }
        group.get("reviews/:review/close") { request, context in try await confirmClose(request, context) }
        group.post("reviews/:review/close") { request, context in try await closeReview(request, context) }
        group.get("reviews/:review/items") { request, context in try await reviewTasks(request, context) }
        group.post("reviews/:review/items/:item") { request, context in try await decideItem(request, context) }
    }

    static let reviewPageSize = 50

    /// A campaign's id in the path (a 404 for anything else, as the API answers).
    func campaignID(_ context: AdminRequestContext) throws -> Int64 {
        guard let n = Int64(parameter(context, "review")), n > 0 else { throw Problem.notFound("review \(parameter(context, "review").prefix(64))") }
        return n
    }

    /// Campaign `id` if `user` may see it (a partner-scoped campaign only to who may view the
    /// partner), else a 404.
    func visibleCampaign(_ id: Int64, _ user: String) async throws -> ReviewCampaign {
        guard let c = try await api.reviewsVisible(to: user).first(where: { $0.id == id }) else { throw Problem.notFound("review \(id)") }
        return c
    }

    func offset(_ request: Request) -> Int { max(0, Int(request.uri.queryParameters.get("offset") ?? "0") ?? 0) }

    /// A time for a page: RFC 3339 and how many days ago.
    static func when(_ t: Timestamp?, now: Timestamp, never: String = "never") -> String {
        guard let t else { return never }
        let days = (now - t) / 86_400_000
        return RFC3339.format(t) + (days <= 0 ? " (today)" : days == 1 ? " (yesterday)" : " (\(days) days ago)")
    }

    /// A due date: the day alone when it is midnight UTC (as the create form sets it).
    static func due(_ t: Timestamp) -> String {
        let text = RFC3339.format(t)
        return t % 86_400_000 == 0 ? String(text.prefix(10)) : text
    }

    static func describe(_ s: ReviewCampaign.Scope) -> String {
        switch s {
        case .allPartners: "all partners"
        case .partner(let p): "partner \(p)"
        case .role(let r): "role \(r)"
        }
    }

    static func policyText(_ p: ReviewCampaign.NoAnswer) -> String {
        switch p {
        case .keep: "keep"
        case .revoke: "revoke"
        case .recommendation: "follow the recommendation"
        }
    }

    // MARK: The campaigns

    /// `GET /console/reviews`: the campaigns the viewer may see, each with its completion (over
    /// the partners it may view) and the items asked of the viewer still open; the business
    /// also gets the create form.
    func reviews(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let p = try signedIn(context)
        let v = viewer(p.user)
        let all = try await api.reviewsVisible(to: p.user)
        let start = offset(request), size = Self.reviewPageSize
        let shown = Array(all.dropFirst(start).prefix(size))
        let user = p.user, now = AdminAPI.now()
        var rows: [[String: Any]] = []
        for c in shown {
            let (_, progress) = try await api.reviewProgress(c.id, for: user)
            let items = progress.reduce(0) { $0 + $1.items }, decided = progress.reduce(0) { $0 + $1.decided }
            let asked = try await service.read { store, g in
                try store.reviewItems(campaign: c.id, viewer: user, now: now, graph: g).filter { $0.decision == nil && $0.reviewers.contains(user) }.count
            }
            rows.append(["id": c.id, "name": c.name, "href": "/console/reviews/\(c.id)", "tasks_href": "/console/reviews/\(c.id)/items",
                         "scope": Self.describe(c.scope), "status": c.status, "open": c.status == "open", "due": Self.due(c.dueAt),
                         "overdue": c.status == "open" && c.dueAt < now, "no_answer": Self.policyText(c.noAnswer),
                         "items": items, "decided": decided, "percent": items == 0 ? 100 : decided * 100 / items,
                         "asked": asked, "has_asked": asked > 0])
        }
        var partners: [OrgInfo] = [], roles: [RoleInfo] = []
        if v.business { (partners, roles) = try await service.read { store, _ in (try store.listOrgs(parent: "partners"), try store.listRoles()) } }
        let defaultDue = RFC3339.format(now + 30 * 86_400_000).prefix(10)
        var data: [String: Any] = [
            "rows": rows, "empty": rows.isEmpty, "business": v.business, "total": all.count,
            "partners": partners.map { ["id": $0.id, "name": $0.name] }, "roles": roles.map { ["id": $0.id] },
            "default_due": String(defaultDue), "back": "/console/reviews",
        ]
        if start + size < all.count { data["next"] = "/console/reviews?offset=\(start + size)" }
        return page("reviews", data, title: "Access reviews", context: context, current: "/console/reviews")
    }

    /// `POST /console/reviews`: a campaign, from the create form (the store decides that the
    /// viewer is the business).
    func createReview(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let form = try await form(request, context)
        let p = try signedIn(context)
        func bad(_ message: String) -> ConsoleError { ConsoleError(status: .unprocessableContent, code: "invalid_input", message: message) }
        let name = (form["name"] ?? "").trimmingCharacters(in: .whitespaces)
        let scope: ReviewCampaign.Scope
        switch form["scope"] ?? "" {
        case "all_partners": scope = .allPartners
        case "partner":
            guard let id = form["partner"], !id.isEmpty else { throw bad("scope partner: choose the partner") }
            scope = .partner(id)
        case "role":
            guard let id = form["role"], !id.isEmpty else { throw bad("scope role: choose the role") }
            scope = .role(id)
        default: throw bad("scope: all_partners, partner or role")
        }
        let dueText = form["due"] ?? ""
        guard let due = RFC3339.parse(dueText.count == 10 ? dueText + "T00:00:00Z" : dueText) else {
            throw bad("due: a date (2027-06-30) or an RFC 3339 time")
        }
        guard let policy = ReviewCampaign.NoAnswer(rawValue: form["no_answer"] ?? "") else { throw bad("no_answer: keep, revoke or recommendation") }
        var days = 90
        if let d = form["days"], !d.isEmpty {
            guard let n = Int(d), n >= 0, n <= 36_500 else { throw bad("days: 0 to 36500") }
            days = n
        }
        let r: ReviewResult
        do {
            r = try await api.startReview(name: name, scope: scope, due: due, noAnswer: policy, days: days, principal: p)
        } catch let e as PIAMError where e.code == .invalidInput {
            throw bad(e.message)
        }
        guard r.allowed else { return refusal(r, "review.create", back: "/console/reviews", context: context) }
        flash(context, "ok", "\(r.message) (revision \(r.revision))")
        return redirect("/console/reviews/\(r.campaign)")
    }

    /// A review write the store refused: its reason, with the API's status (403).
    func refusal(_ r: ReviewResult, _ operation: String, back: String, context: AdminRequestContext) -> Response {
        page("refused", ["status": 403, "code": r.reason, "message": r.message, "operation": operation, "back": back],
             title: "Refused", context: context, status: .forbidden)
    }

    // MARK: One campaign

    /// `GET /console/reviews/{id}`: completion per partner; the business closes it from here.
    func campaign(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let p = try signedIn(context)
        let id = try campaignID(context)
        let c = try await visibleCampaign(id, p.user)
        let (_, progress) = try await api.reviewProgress(id, for: p.user)
        let revocations = try await service.read { store, _ in try store.reviewRevocationsAtClose(id).count }
        let v = viewer(p.user)
        let items = progress.reduce(0) { $0 + $1.items }, decided = progress.reduce(0) { $0 + $1.decided }
        var data: [String: Any] = [
            "id": id, "name": c.name, "scope": Self.describe(c.scope), "status": c.status, "open": c.status == "open",
            "due": Self.due(c.dueAt), "no_answer": Self.policyText(c.noAnswer), "days": c.days, "revision": c.revision,
            "created_by": c.createdBy, "created_at": RFC3339.format(c.createdAt),
            "items": items, "decided": decided, "percent": items == 0 ? 100 : decided * 100 / items,
            "partners": progress.map { r -> [String: Any] in
                ["partner": r.partner ?? "(the business's own people)", "href": r.partner.map { "/console/orgs/\(pathEscape($0))" } ?? "",
                 "linked": r.partner != nil, "items": r.items, "decided": r.decided, "kept": r.kept, "revoked": r.revoked,
                 "recommended": r.recommendedRevoke, "percent": r.percentDecided]
            },
            "empty": progress.isEmpty, "tasks_href": "/console/reviews/\(id)/items",
            "can_close": v.business && c.status == "open", "revocations": revocations, "close_revokes": revocations > 0,
            "close_href": "/console/reviews/\(id)/close", "back": "/console/reviews/\(id)",
        ]
        if let at = c.closedAt { data["closed"] = "\(RFC3339.format(at)) by \(c.closedBy ?? "")" }
        return page("review", data, title: c.name, context: context, current: "/console/reviews")
    }

    /// `GET /console/reviews/{id}/close`: what closing revokes, before the explicit confirmation.
    func confirmClose(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let p = try signedIn(context)
        let id = try campaignID(context)
        let c = try await visibleCampaign(id, p.user)
        return try await closeConfirmation(c, context: context, status: .ok)
    }

    func closeConfirmation(_ c: ReviewCampaign, context: AdminRequestContext, status: HTTPResponse.Status) async throws -> Response {
        let id = c.id
        let revoke = try await service.read { store, _ in try store.reviewRevocationsAtClose(id) }
        let now = AdminAPI.now()
        let shown = revoke.prefix(Self.reviewPageSize)
        let data: [String: Any] = [
            "id": id, "name": c.name, "no_answer": Self.policyText(c.noAnswer), "count": revoke.count, "revokes": !revoke.isEmpty,
            "rows": shown.map { i -> [String: Any] in
                ["user": i.user, "href": "/console/people/\(pathEscape(i.user))", "role": i.role, "scope": i.scope,
                 "partner": i.partner ?? "", "last_use": Self.when(i.lastUse, now: now), "recommendation": i.recommendation]
            },
            "more": max(0, revoke.count - shown.count), "has_more": revoke.count > shown.count,
            "back": "/console/reviews/\(id)",
        ]
        return page("review-close", data, title: "Close \(c.name)?", context: context, current: "/console/reviews", status: status)
    }

    /// `POST /console/reviews/{id}/close`: applies the no-answer policy. When it revokes
    /// anything the form must carry that count (`confirm_revocations`); else — or when the
    /// count changed meanwhile — the confirmation comes again with the current count (409).
    func closeReview(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let form = try await form(request, context)
        let p = try signedIn(context)
        let id = try campaignID(context)
        let c = try await visibleCampaign(id, p.user)
        var confirm: Int?
        if let t = form["confirm_revocations"], !t.isEmpty {
            guard let n = Int(t), n >= 0 else {
                throw ConsoleError(status: .badRequest, code: "invalid_input", message: "confirm_revocations: a count")
            }
            confirm = n
        }
        let r: ReviewResult
        do {
            r = try await api.finishReview(id, confirmRevocations: confirm, principal: p)
        } catch let e as Problem where e.code == Store.confirmationRequired.rawValue {
            return try await closeConfirmation(c, context: context, status: .conflict)
        }
        guard r.allowed else { return refusal(r, "review.close", back: "/console/reviews/\(id)", context: context) }
        flash(context, "ok", "\(r.message): \(r.details.joined(separator: ", ")) (revision \(r.revision))")
        return redirect("/console/reviews/\(id)")
    }

    // MARK: A reviewer's tasks

    /// `GET /console/reviews/{id}/items`: the items the viewer may decide (the engine decides:
    /// a partner admin gets its partner's), by default those asked of it (the business: those no
    /// partner admin may decide), each with its person, holding, last use and recommendation.
    func reviewTasks(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let p = try signedIn(context)
        let id = try campaignID(context)
        let c = try await visibleCampaign(id, p.user)
        let all = request.uri.queryParameters.get("all") == "1"
        let pendingOnly = request.uri.queryParameters.get("pending") == "1"
        let user = p.user, now = AdminAPI.now()
        var items = try await service.read { store, g in try store.reviewItems(campaign: id, viewer: user, now: now, graph: g) }
        if !all { items = items.filter { $0.reviewers.contains(user) } }
        if pendingOnly { items = items.filter { $0.decision == nil } }
        let start = offset(request), size = Self.reviewPageSize
        let shown = items.dropFirst(start).prefix(size)
        let here = "/console/reviews/\(id)/items?" + query(["all": all ? "1" : "", "pending": pendingOnly ? "1" : "", "offset": start > 0 ? String(start) : ""])
        let usageKnown = api.usageCache.configured
        var data: [String: Any] = [
            "id": id, "name": c.name, "open": c.status == "open", "status": c.status, "due": Self.due(c.dueAt),
            "all": all, "pending": pendingOnly, "count": items.count, "empty": items.isEmpty, "usage_known": usageKnown,
            "campaign_href": "/console/reviews/\(id)", "days": c.days,
            "asked_href": "/console/reviews/\(id)/items", "all_href": "/console/reviews/\(id)/items?all=1",
            "pending_href": "/console/reviews/\(id)/items?" + query(["all": all ? "1" : "", "pending": "1"]),
            "rows": shown.map { i -> [String: Any] in
                var o: [String: Any] = [
                    "item": i.id, "user": i.user, "href": "/console/people/\(pathEscape(i.user))", "org": i.org, "role": i.role,
                    "scope": i.scope, "granted": i.grantedBy.map { "by \($0)" } ?? "", "granted_at": i.grantedAt.map(RFC3339.format) ?? "",
                    "last_use": Self.when(i.lastUse, now: now, never: usageKnown ? "never" : "not recorded"),
                    "recommendation": i.recommendation, "revoke_recommended": i.recommendation == "revoke",
                    "decided": i.decision != nil, "undecided": i.decision == nil && c.status == "open",
                    "decision": i.decision ?? "", "decided_by": i.decidedBy ?? "", "outcome": i.outcome ?? "",
                    "action": "/console/reviews/\(id)/items/\(i.id)", "back": here,
                ]
                if let comment = i.comment { o["comment"] = comment }
                if i.decision == nil, c.status != "open" { o["closed_outcome"] = i.outcome ?? "" }
                return o
            },
        ]
        if start + size < items.count {
            data["next"] = "/console/reviews/\(id)/items?" + query(["all": all ? "1" : "", "pending": pendingOnly ? "1" : "", "offset": String(start + size)])
        }
        return page("review-items", data, title: "Review tasks: \(c.name)", context: context, current: "/console/reviews")
    }

    /// `POST /console/reviews/{id}/items/{item}`: keep or revoke, with a comment — the API's
    /// path: another partner's item (or another campaign's) is a 404, a refusal shows the
    /// engine's reason (audited), a revocation is the `revoke` operation.
    func decideItem(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let form = try await form(request, context)
        let p = try signedIn(context)
        let id = try campaignID(context)
        guard let item = Int64(parameter(context, "item")), item > 0 else { throw Problem.notFound("review item \(parameter(context, "item").prefix(64))") }
        guard let decision = form["decision"], decision == "keep" || decision == "revoke" else {
            throw ConsoleError(status: .badRequest, code: "invalid_input", message: "decision: keep or revoke")
        }
        let comment = form["comment"].flatMap { $0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? nil : $0 }
        let to = back(form, default: "/console/reviews/\(id)/items")
        let r = try await api.decide(reviewItem: item, of: id, decision: decision, comment: comment, principal: p)
        guard r.allowed else { return refusal(r, "review.\(decision)", back: to, context: context) }
        flash(context, "ok", "\(r.message) (revision \(r.revision))")
        return redirect(to)
    }
}

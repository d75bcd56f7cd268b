import Foundation
import HTTPTypes
import Hummingbird
import PIAMEngine
import PIAMStore

// Access reviews over HTTP: the business creates and closes campaigns; each reviewer sees and
// decides the items the engine lets it revoke. Every write is the store's (one transaction,
// audited); a revocation is the `revoke` operation.

/// The review routes, for the router, the 405 table and the OpenAPI document.
enum ReviewRoutes {
    static let prefix = "\(OperationRoute.prefix)/reviews"
    static let all: [(method: String, path: String)] = [
        ("POST", prefix), ("GET", prefix), ("GET", "\(prefix)/{review}/items"),
        ("POST", "\(prefix)/{review}/items/{item}/decision"), ("POST", "\(prefix)/{review}/close"),
        ("GET", "\(prefix)/{review}/report"),
    ]
}

extension AdminAPI {
    func addReviews(to router: Router<AdminRequestContext>) {
        let p = ReviewRoutes.prefix
        router.post(RouterPath(p)) { request, context in try await createReview(request, context) }
        router.get(RouterPath(p)) { request, context in try await listReviews(request, context) }
        router.get(RouterPath("\(p)/{review}/items")) { request, context in try await reviewItems(request, context) }
        router.post(RouterPath("\(p)/{review}/items/{item}/decision")) { request, context in try await decideReview(request, context) }
        router.post(RouterPath("\(p)/{review}/close")) { request, context in try await closeReview(request, context) }
        router.get(RouterPath("\(p)/{review}/report")) { request, context in try await reviewReport(request, context) }
    }

    /// A JSON integer of a body (never `true`/`false`, whose objCType is "c", nor a fraction).
    static func integer(_ v: Any) -> Int? {
        guard let n = v as? NSNumber, String(cString: n.objCType) != "c" else { return nil }
        return Int(exactly: n.doubleValue)
    }

    func number(_ context: AdminRequestContext, _ name: String) throws -> Int64 {
        guard let n = Int64(parameter(context, name)), n > 0 else { throw Problem.notFound("\(name) \(parameter(context, name).prefix(64))") }
        return n
    }

    /// A review write's answer: 200/201 with the result, 403 with the reason for a refusal.
    func reviewResponse(_ r: ReviewResult, status: HTTPResponse.Status = .ok) throws -> Response {
        guard r.allowed else {
            throw Problem(.forbidden, r.reason, r.message, extra: ["revision": r.revision, "campaign": r.campaign])
        }
        return JSONBody.response(["campaign": r.campaign, "message": r.message, "details": r.details, "revision": r.revision],
                                 status: status, headers: Self.revisionHeaders(r.revision))
    }

    /// Runs a store review write on the writer's connection, then follows the journal (a
    /// revocation changed the graph).
    func reviewWrite(_ body: @escaping @Sendable (Store, LoadedGraph) throws -> ReviewResult) async throws -> ReviewResult {
        try await service.write { w in
            defer { _ = try? w.catchUp() }
            return try body(w.store, w.current)
        }
    }

    /// `POST /admin/v1/reviews`: a campaign.
    func createReview(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let body = try await JSONBody.object(request, limit: settings.maxBodyBytes)
        let known: Set<String> = ["name", "scope", "scope_id", "due", "no_answer", "days"]
        if let k = body.keys.sorted().first(where: { !known.contains($0) }) {
            throw Problem(.badRequest, "invalid_input", "unknown field \"\(k)\" (takes: \(known.sorted().joined(separator: ", ")))")
        }
        guard let name = body["name"] as? String, let scopeKind = body["scope"] as? String, let dueText = body["due"] as? String,
              let policyText = body["no_answer"] as? String else {
            throw Problem(.badRequest, "invalid_input", "name, scope, due and no_answer are required strings")
        }
        if let v = body["scope_id"], !(v is String) { throw Problem(.badRequest, "invalid_input", "scope_id: a string") }
        let scopeID = body["scope_id"] as? String
        let scope: ReviewCampaign.Scope
        switch scopeKind {
        case "all_partners": scope = .allPartners
        case "partner" where scopeID != nil: scope = .partner(scopeID!)
        case "role" where scopeID != nil: scope = .role(scopeID!)
        default: throw Problem(.unprocessableContent, "invalid_input", "scope: all_partners, or partner/role with scope_id")
        }
        guard let due = RFC3339.parse(dueText) else { throw Problem(.unprocessableContent, "invalid_input", "due: an RFC 3339 time (2027-06-30T00:00:00Z)") }
        guard let policy = ReviewCampaign.NoAnswer(rawValue: policyText) else {
            throw Problem(.badRequest, "invalid_input", "no_answer: keep, revoke or recommendation")
        }
        var days = 90
        if let d = body["days"] {
            guard let n = Self.integer(d), n >= 0, n <= 36_500 else { throw Problem(.badRequest, "invalid_input", "days: 0 to 36500") }
            days = n
        }
        do {
            return try reviewResponse(try await startReview(name: name, scope: scope, due: due, noAnswer: policy, days: days,
                                                            principal: principal), status: .created)
        } catch let e as PIAMError where e.code == .invalidInput {
            // Well-formed, against a rule the schema cannot state (a due date in the past).
            throw Problem(.unprocessableContent, e.code.rawValue, e.message)
        }
    }

    /// `GET /admin/v1/reviews`: the campaigns (a partner-scoped one only to who may view that
    /// partner).
    func listReviews(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let loaded = service.graph
        let shown = try await reviewsVisible(to: principal.user)
        return Self.list(shown.map(\.json), next: nil, revision: loaded.revision)
    }

    /// `GET /admin/v1/reviews/{review}/items`: the items the caller may decide.
    func reviewItems(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let id = try number(context, "review")
        let (limit, cursor) = try page(request)
        let start = try cursor.map { c -> Int in
            guard let n = Int(c), n >= 0 else { throw Problem(.badRequest, PIAMError.Code.badCursor.rawValue, "not a cursor this API gave") }
            return n
        } ?? 0
        let user = principal.user
        let (items, revision) = try await service.read { store, g in
            (try store.reviewItems(campaign: id, viewer: user, now: Self.now(), graph: g), g.revision)
        }
        let page = items.dropFirst(start).prefix(limit)
        return Self.list(page.map(\.json), next: start + page.count < items.count ? String(start + page.count) : nil, revision: revision)
    }

    /// `POST /admin/v1/reviews/{review}/items/{item}/decision`: keep or revoke, with a comment.
    /// An item of a person the caller may not view is a 404; one it may view but not revoke, a
    /// 403 with the engine's reason (audited).
    func decideReview(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let id = try number(context, "review"), itemID = try number(context, "item")
        let body = try await JSONBody.object(request, limit: settings.maxBodyBytes)
        if let k = body.keys.sorted().first(where: { $0 != "decision" && $0 != "comment" }) {
            throw Problem(.badRequest, "invalid_input", "unknown field \"\(k)\" (takes: comment, decision)")
        }
        guard let decision = body["decision"] as? String, decision == "keep" || decision == "revoke" else {
            throw Problem(.badRequest, "invalid_input", "decision: keep or revoke")
        }
        if let c = body["comment"], !(c is String) { throw Problem(.badRequest, "invalid_input", "comment: a string") }
        let comment = body["comment"] as? String
        return try reviewResponse(try await decide(reviewItem: itemID, of: id, decision: decision, comment: comment, principal: principal))
    }

    /// `POST /admin/v1/reviews/{review}/close`: applies the no-answer policy. When it revokes
    /// anything, the body must say how many (`confirm_revocations`), else 409 with the count.
    func closeReview(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let id = try number(context, "review")
        let body = try await JSONBody.object(request, limit: settings.maxBodyBytes)
        if let k = body.keys.sorted().first(where: { $0 != "confirm_revocations" }) {
            throw Problem(.badRequest, "invalid_input", "unknown field \"\(k)\" (takes: confirm_revocations)")
        }
        var confirm: Int?
        if let c = body["confirm_revocations"] {
            guard let n = Self.integer(c), n >= 0, n <= 1_000_000_000 else { throw Problem(.badRequest, "invalid_input", "confirm_revocations: a count (0 to 1000000000)") }
            confirm = n
        }
        return try reviewResponse(try await finishReview(id, confirmRevocations: confirm, principal: principal))
    }

    /// `GET /admin/v1/reviews/{review}/report`: completion per partner (the partners the caller
    /// may view).
    func reviewReport(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let id = try number(context, "review")
        let loaded = service.graph
        let (campaign, shown) = try await reviewProgress(id, for: principal.user)
        return JSONBody.response(["campaign": campaign.json, "partners": shown.map(\.json), "revision": loaded.revision],
                                 headers: Self.revisionHeaders(loaded.revision))
    }
}

// The review steps the API and the consoles share: one path each, so a rule (who sees a
// campaign, which item is a 404, when a close needs its confirmation) is written once.
extension AdminAPI {
    /// Starts a campaign as `principal`: the items' last use comes from the usage files.
    func startReview(name: String, scope: ReviewCampaign.Scope, due: Timestamp, noAnswer: ReviewCampaign.NoAnswer, days: Int,
                     principal: Principal) async throws -> ReviewResult {
        let usage = try self.usage()
        let (actor, credential) = (principal.user, principal.credential)
        return try await reviewWrite { store, g in
            try store.createReview(name: name, scope: scope, dueAt: due, noAnswer: noAnswer, days: days, usage: usage, as: actor,
                                   now: Self.now(), credential: credential, graph: g)
        }
    }

    /// The campaigns `user` may see, newest first: a partner-scoped one only to who may view
    /// that partner.
    func reviewsVisible(to user: String) async throws -> [ReviewCampaign] {
        let loaded = service.graph
        let all = try await service.read { store, _ in try store.reviews() }
        return all.filter { c in
            if case .partner(let p) = c.scope { return visible(loaded.graph, user, BuiltinType.org, p) }
            return true
        }
    }

    /// A reviewer's answer on item `itemID` of campaign `campaign`. An item of another campaign,
    /// or of a person the caller may not view, is a 404 (another partner's ids are not
    /// confirmed); the store decides the rest (a refusal is a result, audited).
    func decide(reviewItem itemID: Int64, of campaign: Int64, decision: String, comment: String?,
                principal: Principal) async throws -> ReviewResult {
        let item = try await service.read { store, _ in try? store.reviewItem(itemID) }
        guard let item, item.campaign == campaign, visible(service.graph.graph, principal.user, BuiltinType.user, item.user) else {
            throw Problem.notFound("review item \(itemID)")
        }
        let (actor, credential) = (principal.user, principal.credential)
        return try await reviewWrite { store, g in
            try store.decideReview(item: itemID, decision: decision, comment: comment, as: actor, now: Self.now(), credential: credential, graph: g)
        }
    }

    /// Closes campaign `id`, applying its no-answer policy. When it revokes anything and
    /// `confirmRevocations` is not that count: 409 `confirmation_required` with the count
    /// (`revocations`), nothing done.
    func finishReview(_ id: Int64, confirmRevocations: Int?, principal: Principal) async throws -> ReviewResult {
        let (actor, credential) = (principal.user, principal.credential)
        do {
            return try await reviewWrite { store, g in
                try store.closeReview(id, confirmRevocations: confirmRevocations, as: actor, now: Self.now(), credential: credential, graph: g)
            }
        } catch let e as PIAMError where e.code == Store.confirmationRequired {
            let n = try await service.read { store, _ in try store.reviewRevocationsAtClose(id).count }
            throw Problem(.conflict, e.code.rawValue, e.message, extra: ["revocations": n])
        }
    }

    /// Campaign `id` and its completion per partner, the partners `user` may view (host users'
    /// items under the root org).
    func reviewProgress(_ id: Int64, for user: String) async throws -> (ReviewCampaign, [ReviewProgress]) {
        let loaded = service.graph
        let (campaign, rows) = try await service.read { store, _ in (try store.review(id), try store.reviewReport(id)) }
        let shown = rows.filter { r in
            r.partner.map { visible(loaded.graph, user, BuiltinType.org, $0) }
                ?? visible(loaded.graph, user, BuiltinType.org, loaded.graph.allOrgIDs.first ?? "")
        }
        return (campaign, shown)
    }
}

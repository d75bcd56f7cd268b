import Foundation
import Hummingbird
import PIAMEngine
import PIAMStore

// Usage in the consoles: who is active, what is used, and the access nobody uses. Every figure
// is the store's or the usage reader's own (the reports of `piamctl usage` and the findings of
// `piamctl findings`, `GET /admin/v1/findings`); a finding's button posts its remedy through
// `POST /console/act` like any form, so the server decides it again. Without usage files
// (`usage.paths`) the pages say so instead of showing zeros.
extension Console {
    func addUsageRoutes(to group: RouterGroup<AdminRequestContext>) {
        group.get("dormant") { request, context in try await dormant(request, context) }
    }

    /// The dormancy window of the tiles and the default of the dormant-access page (the API's
    /// default too).
    static let dormancyDays = 90
    static let usageOff = "No usage files are configured (usage.paths): activity, last use and dormant access are not known."

    /// The findings `user` may act on, judged on the usage files (`nil` when none are configured).
    func findings(for user: String, days: Int, facts: (any UsageFacts)?) async throws -> [Finding] {
        let usage: any UsageFacts = facts ?? NoUsage()
        let now = AdminAPI.now()
        return try await service.read { store, g in try store.findings(usage: usage, days: days, now: now, viewer: user, graph: g) }
    }

    /// The dashboard's usage tiles: people active over 30 days, dormant people and dormant
    /// holdings — the business's over every partner, a partner's (`partner`) over its own.
    func usageTiles(for user: String, partner: String?) async throws -> [String: Any] {
        let now = AdminAPI.now()
        guard let active = try api.usageCache.read({ reader in
            try partner.map { try reader.activePeople(partner: $0, days: 30, now: now) }
                ?? reader.partnerRanking(now: now).reduce(0) { $0 + $1.active30 }
        }) else { return ["usage_known": false, "usage_off": Self.usageOff] }
        let filter = partner.map { "&partner=\(queryEscape($0))" } ?? ""
        let people = service.graph.graph.counts.users
        guard people <= options.dormantTilesMaxPeople else {
            // Counting is the findings' scan over every person: seconds on a large graph.
            return ["usage_known": true, "active30": active, "days": Self.dormancyDays, "counted": false,
                    "people": people, "dormant_href": partner.map { "/console/dormant?partner=\(queryEscape($0))" } ?? "/console/dormant"]
        }
        let facts = try api.usage()
        let found = try await findings(for: user, days: Self.dormancyDays, facts: facts).filter { partner == nil || $0.partner == partner }
        return [
            "usage_known": true, "counted": true, "active30": active, "days": Self.dormancyDays,
            "dormant_people": found.filter { $0.kind == .dormantPerson }.count,
            "dormant_holdings": found.filter { $0.kind == .dormantHolding }.count,
            "dormant_people_href": "/console/dormant?kind=dormant_person" + filter,
            "dormant_holdings_href": "/console/dormant?kind=dormant_holding" + filter,
        ]
    }

    /// Each partner's people active over 30 days (the ranking of `piamctl usage partners`), or
    /// `nil` without usage files.
    func activeByPartner() throws -> [String: Int]? {
        let now = AdminAPI.now()
        return try api.usageCache.read { reader in
            Dictionary(try reader.partnerRanking(now: now).map { ($0.partner, $0.active30) }) { a, _ in a }
        }
    }

    /// A partner page's usage section (`partner` a partner root): its people by status, active
    /// over 1/7/30/90 days and the most used features — `piamctl usage partner P`'s report — and
    /// the tiles of its dormant access.
    func partnerUsage(_ partner: String, for user: String) async throws -> [String: Any] {
        let g = service.graph.graph, now = AdminAPI.now()
        guard let r = try api.usageCache.read({ try $0.partnerReport(partner, graph: g, now: now, limit: 10) }) else {
            return ["usage_known": false, "usage_off": Self.usageOff]
        }
        var o = try await usageTiles(for: user, partner: partner)
        o["by_status"] = r.usersByStatus.sorted { $0.key < $1.key }.map { ["status": $0.key, "count": $0.value] as [String: Any] }
        o["active"] = [("1d", "1 day"), ("7d", "7 days"), ("30d", "30 days"), ("90d", "90 days")].map {
            ["window": $0.1, "key": $0.0, "count": r.active[$0.0] ?? 0] as [String: Any]
        }
        o["features"] = r.features.map { f -> [String: Any] in
            ["feature": f.feature, "people": f.people, "allowed": f.allowed, "denied": f.denied, "last": f.lastAllowed ?? "never"]
        }
        o["no_features"] = r.features.isEmpty
        return o
    }

    /// A person page's usage: the last allowed decision and each holding's uses and last use
    /// (`piamctl usage user U`'s report).
    func personUsage(_ user: String) throws -> [String: Any] {
        let now = AdminAPI.now(), g = service.graph.graph
        guard let r = try api.usageCache.read({ try $0.userReport(user, graph: g, now: now) }) else {
            return ["usage_known": false, "usage_off": Self.usageOff]
        }
        return [
            "usage_known": true, "last_activity": Self.when(r.lastActivity.flatMap { RFC3339.parse($0) }, now: now),
            "holding_use": r.holdings.map { h -> [String: Any] in
                ["what": h.source == "org_grant" ? "org grant on \(h.grantOrg ?? h.scope)" : "assignment", "role": h.role, "scope": h.scope,
                 "state": h.state, "uses": h.uses, "last_used": Self.when(h.lastUsed.flatMap { RFC3339.parse($0) }, now: now)]
            },
            "no_holdings": r.holdings.isEmpty,
        ]
    }

    // MARK: Dormant access

    static let findingLabels: [Finding.Kind: (title: String, button: String)] = [
        .dormantPerson: ("Dormant people", "Suspend"),
        .dormantHolding: ("Dormant holdings", "Revoke"),
        .invitationNotAccepted: ("Invitations never accepted", "Remove"),
        .expiredStillActive: ("Past valid_until, still active", "Suspend"),
    ]

    /// `GET /console/dormant`: the findings the viewer may act on — dormant people, dormant
    /// holdings, invitations never accepted, people past `valid_until` — by kind and partner,
    /// paged, each with the button that performs its remedy. Without usage files the two dormant
    /// kinds are not judged (everyone would look dormant): the page says so.
    func dormant(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let p = try signedIn(context)
        let q = request.uri.queryParameters
        var days = Self.dormancyDays
        if let d = q.get("days"), !d.isEmpty {
            guard let n = Int(d), n >= 0, n <= 36_500 else {
                throw ConsoleError(status: .badRequest, code: "invalid_input", message: "days: 0 to 36500, not \(d.prefix(20))")
            }
            days = n
        }
        let kind = q.get("kind").flatMap { Finding.Kind(rawValue: $0) }
        let partner = q.get("partner").flatMap { $0.isEmpty ? nil : $0 }
        let usageKnown = api.usageCache.configured
        let facts: (any UsageFacts)? = usageKnown ? try api.usage() : nil
        var found = try await findings(for: p.user, days: days, facts: facts)
        if !usageKnown { found.removeAll { $0.kind == .dormantPerson || $0.kind == .dormantHolding } }
        if let partner { found = found.filter { $0.partner == partner } }
        let counts = Finding.Kind.allCases.map { k -> [String: Any] in
            let judged = usageKnown || (k != .dormantPerson && k != .dormantHolding)
            return ["kind": k.rawValue, "title": Self.findingLabels[k]!.title, "count": found.filter { $0.kind == k }.count,
                    "judged": judged, "current": k == kind,
                    "href": "/console/dormant?" + query(["kind": k.rawValue, "partner": partner ?? "", "days": days == Self.dormancyDays ? "" : String(days)])]
        }
        if let kind { found = found.filter { $0.kind == kind } }
        let start = offset(request), size = 50
        let shown = found.dropFirst(start).prefix(size)
        let base = ["kind": kind?.rawValue ?? "", "partner": partner ?? "", "days": days == Self.dormancyDays ? "" : String(days)]
        let hereQuery = query(base.merging(["offset": start > 0 ? String(start) : ""]) { _, b in b })
        let here = "/console/dormant" + (hereQuery.isEmpty ? "" : "?" + hereQuery)
        let now = AdminAPI.now()
        var data: [String: Any] = [
            "days": days, "usage_known": usageKnown, "usage_off": Self.usageOff, "counts": counts, "partner": partner ?? "",
            "kind": kind?.rawValue ?? "", "total": found.count, "empty": found.isEmpty, "all_href": "/console/dormant",
            "rows": shown.map { f -> [String: Any] in
                var o: [String: Any] = [
                    "kind": Self.findingLabels[f.kind]!.title, "org": f.org, "org_href": "/console/orgs/\(pathEscape(f.org))",
                    "partner": f.partner ?? "", "message": f.message, "back": here,
                    "last_use": Self.when(f.lastUse, now: now), "button": Self.findingLabels[f.kind]!.button,
                    "danger": f.kind != .dormantHolding, "op": f.remedy.name,
                    "fields": f.remedy.json.compactMap { k, v -> [String: Any]? in
                        guard k != "op", let s = v as? String else { return nil }
                        return ["name": k, "value": s]
                    }.sorted { ($0["name"] as! String) < ($1["name"] as! String) },
                ]
                if let u = f.user { o["user"] = u; o["user_href"] = "/console/people/\(pathEscape(u))" }
                switch f.holding {
                case .assignment(_, let role, let scope)?: o["holding"] = "\(role) over \(scope)"
                case .orgGrant(_, let role)?: o["holding"] = "\(role), org grant"
                case nil: break
                }
                if let by = f.grantedBy { o["granted"] = "granted by \(by)" + (f.grantedAt.map { " " + RFC3339.format($0) } ?? "") }
                if let s = f.since { o["since"] = RFC3339.format(s) }
                return o
            },
        ]
        if start + size < found.count {
            data["next"] = "/console/dormant?" + query(base.merging(["offset": String(start + size)]) { _, b in b })
        }
        return page("dormant", data, title: "Dormant access", context: context, current: "/console/dormant")
    }
}

import Foundation
import PIAMEngine

/// Access that should no longer exist, and the operation that removes it.
///
/// Four kinds (``Kind``): people who are active and hold effective access but were not allowed
/// anything for N days; holdings (assignments, org grants) that allowed nothing for N days;
/// invitations never accepted after N days; people past their `valid_until` whose status is
/// still `active`. Each finding carries ``remedy``: an operation in `piamctl apply`'s form, so
/// a list of findings (or a chosen part of it) can be fed to `piamctl apply` as it is — decided
/// by the engine for whoever applies it, like any other operation.
public struct Finding: Sendable, Hashable {
    /// What is wrong.
    public enum Kind: String, Sendable, Hashable, CaseIterable, Codable {
        /// Active, with effective holdings, and no allowed decision in N days (or none recorded).
        /// Remedy: suspend the person.
        case dormantPerson = "dormant_person"
        /// A holding that was not the allowing one of any decision in N days (or never), and
        /// was granted more than N days ago. Remedy: revoke it (`revoke` or `org-revoke`).
        case dormantHolding = "dormant_holding"
        /// An invited person whose latest invitation is N days old or older and was never
        /// accepted. Remedy: remove the person.
        case invitationNotAccepted = "invitation_not_accepted"
        /// `valid_until` has passed but the status is still `active` (the engine already denies
        /// everything; the record says otherwise). Remedy: suspend the person.
        case expiredStillActive = "expired_still_active"
    }

    public var kind: Kind
    /// The person concerned (`nil` for an org grant).
    public var user: String?
    /// The person's org, or the org grant's org.
    public var org: String
    /// The partner root of ``org`` (`nil` for host orgs).
    public var partner: String?
    /// The holding concerned (dormant holdings only).
    public var holding: HoldingKey?
    /// The last allowed decision of the person, or the last use of the holding (`nil`: never,
    /// in the usage read).
    public var lastUse: Timestamp?
    /// When the invitation was sent, or when access ended (`valid_until`).
    public var since: Timestamp?
    /// Who granted the holding and when: from the audit log (the latest allowed `grant` or
    /// `org-grant` of that holding), else from the grant's own record (`granted_by`,
    /// `granted_at`, schema v3); `nil` when neither recorded it.
    public var grantedBy: String?
    public var grantedAt: Timestamp?
    /// For people: what is wrong, in a sentence.
    public var message: String
    /// The operation that removes it.
    public var remedy: AdminOperation
}

extension Store {
    /// Every finding on the current graph (or `graph`), as `viewer` may see them: a viewer sees
    /// the findings whose remedy it may perform — the engine answers the remedy's questions
    /// (``adminQuestions(_:as:)``) for it — so a partner admin sees its partner's (a region
    /// admin its region's), a host admin everyone's, a user without administrative rights none.
    /// `viewer == nil`: all of them (the database's owner, `piamctl` without `--as`).
    ///
    /// - Parameters:
    ///   - usage: what the usage files say (``NoUsage``: every person and holding unused).
    ///   - days: N, the dormancy window.
    ///   - now: the time to judge at.
    /// - Returns: findings sorted by kind, partner, org, user, role.
    public func findings(usage: any UsageFacts, days: Int, now: Timestamp, viewer: String? = nil,
                         graph: LoadedGraph? = nil) throws(PIAMError) -> [Finding] {
        guard days >= 0 else { throw PIAMError(.invalidInput, "days: must be 0 or more, not \(days)") }
        let g: LoadedGraph
        if let graph { g = graph } else { g = try loadGraph() }
        let engine = g.graph
        let data = engine.graphData()
        let cutoff = now - Timestamp(days) * 86_400_000
        let provenance = try grantAudit()
        func unused(_ t: Timestamp?) -> Bool { t.map { $0 < cutoff } ?? true }
        var out: [Finding] = []
        var records: [String: [String: AssignmentRecord]] = [:]
        for a in data.assignments { records[a.user, default: [:]]["\(a.role)\u{0}\(a.scope ?? "")"] = a }
        // Each person's holdings with their states (the access report's, without building one).
        var holdings: [(role: String, scope: String, state: String)] = []
        var effective = false
        for u in data.users {
            holdings.removeAll(keepingCapacity: true)
            effective = false
            guard engine.forEachHoldingState(user: u.id, now: now, { grantOrg, role, scope, state in
                if state == "effective" { effective = true }
                if grantOrg == nil { holdings.append((role, scope, state)) }
            }) else { continue }
            let partner = engine.partnerRoot(ofOrg: u.org)
            if u.status == .active, let end = u.validUntil, end <= now {
                out.append(Finding(kind: .expiredStillActive, user: u.id, org: u.org, partner: partner, holding: nil,
                                   lastUse: usage.lastAllowed(user: u.id), since: end, grantedBy: nil, grantedAt: nil,
                                   message: "access ended \(RFC3339.format(end)) but the status is still active",
                                   remedy: .suspendUser(user: u.id)))
            } else if u.status == .active, effective, unused(usage.lastAllowed(user: u.id)) {
                let last = usage.lastAllowed(user: u.id)
                out.append(Finding(kind: .dormantPerson, user: u.id, org: u.org, partner: partner, holding: nil, lastUse: last,
                                   since: nil, grantedBy: nil, grantedAt: nil,
                                   message: last.map { "last allowed \(RFC3339.format($0)), more than \(days) days ago" }
                                       ?? "no allowed decision recorded",
                                   remedy: .suspendUser(user: u.id)))
            }
            // Its assignments that are not expired (the engine's state), each a holding.
            for h in holdings where h.state != "expired" {
                let key = HoldingKey.assignment(user: u.id, role: h.role, scope: h.scope)
                let last = usage.lastUse(of: key)
                let rec = records[u.id]?["\(h.role)\u{0}\(h.scope)"] ?? records[u.id]?["\(h.role)\u{0}"]
                let (by, at) = provenance[key] ?? (rec?.grantedBy, rec?.grantedAt)
                guard unused(last), at.map({ $0 < cutoff }) ?? true else { continue }
                out.append(Finding(kind: .dormantHolding, user: u.id, org: u.org, partner: partner, holding: key, lastUse: last,
                                   since: nil, grantedBy: by, grantedAt: at,
                                   message: "role \(h.role) over org:\(h.scope) " + (last.map { "last used \(RFC3339.format($0))" } ?? "never used"),
                                   remedy: .revoke(user: u.id, role: h.role, scope: h.scope)))
            }
        }
        for og in data.orgGrants where og.validUntil.map({ $0 > now }) ?? true {
            let key = HoldingKey.orgGrant(org: og.org, role: og.role)
            let last = usage.lastUse(of: key)
            let (by, at) = provenance[key] ?? (og.grantedBy, og.grantedAt)
            guard unused(last), at.map({ $0 < cutoff }) ?? true else { continue }
            out.append(Finding(kind: .dormantHolding, user: nil, org: og.org, partner: engine.partnerRoot(ofOrg: og.org), holding: key,
                               lastUse: last, since: nil, grantedBy: by, grantedAt: at,
                               message: "role \(og.role) granted to org:\(og.org)\(og.includeSuborgs ? " and its sub-orgs" : "") "
                                   + (last.map { "last used \(RFC3339.format($0))" } ?? "never used"),
                               remedy: .revokeFromOrg(org: og.org, role: og.role)))
        }
        let invited = try db.prepare("""
            SELECT u.id, u.org, max(i.created_at) FROM users u JOIN invitations i ON i.user = u.id
            WHERE u.status = 'invited' AND i.used_at IS NULL GROUP BY u.id HAVING max(i.created_at) <= ?1 ORDER BY u.id
            """)
        invited.bind(1, cutoff)
        while try invited.step() {
            let id = invited.text(0), org = invited.text(1), sent = invited.int64(2)
            out.append(Finding(kind: .invitationNotAccepted, user: id, org: org, partner: engine.partnerRoot(ofOrg: org), holding: nil,
                               lastUse: nil, since: sent, grantedBy: nil, grantedAt: nil,
                               message: "invited \(RFC3339.format(sent)), never accepted", remedy: .removeUser(user: id)))
        }
        if let viewer {
            out = out.filter { f in
                guard let questions = try? adminQuestions(f.remedy, as: viewer) else { return false }
                return questions.allSatisfy { $0.decide(on: engine, now: now).allowed }
            }
        }
        let order = Dictionary(uniqueKeysWithValues: Finding.Kind.allCases.enumerated().map { ($1, $0) })
        func role(_ f: Finding) -> String {
            switch f.holding {
            case .assignment(_, let r, let s): "\(r)\u{0}\(s)"
            case .orgGrant(_, let r): r
            case nil: ""
            }
        }
        out.sort {
            (order[$0.kind]!, $0.partner ?? "", $0.org, $0.user ?? "", role($0)) < (order[$1.kind]!, $1.partner ?? "", $1.org, $1.user ?? "", role($1))
        }
        return out
    }

    /// The latest allowed `grant` and `org-grant` of each holding in the audit log: who and when.
    func grantAudit() throws(PIAMError) -> [HoldingKey: (String?, Timestamp?)] {
        var out: [HoldingKey: (String?, Timestamp?)] = [:]
        let s = try db.prepare("""
            SELECT a.operation, a.actor, a.at, json_extract(a.detail, '$.user'), json_extract(a.detail, '$.role'),
                   json_extract(a.detail, '$.scope'), json_extract(a.detail, '$.org'),
                   (SELECT u.org FROM users u WHERE u.id = json_extract(a.detail, '$.user')
                      OR u.id = (SELECT user FROM user_aliases WHERE alias = json_extract(a.detail, '$.user')))
            FROM audit a WHERE a.decision = 'allowed' AND a.operation IN ('grant', 'org-grant') AND json_valid(a.detail)
            ORDER BY a.id
            """)
        while try s.step() {
            let by = s.text(1), at = s.int64(2)
            if s.text(0) == "grant" {
                guard let user = s.optionalText(3), let role = s.optionalText(4) else { continue }
                guard let scope = s.optionalText(5) ?? s.optionalText(7) else { continue }
                let id = ((try? userRecord(user)) ?? nil)?.id ?? user
                out[.assignment(user: id, role: role, scope: scope)] = (by, at)
            } else {
                guard let org = s.optionalText(6), let role = s.optionalText(4) else { continue }
                out[.orgGrant(org: org, role: role)] = (by, at)
            }
        }
        return out
    }
}

extension Finding {
    /// The finding as JSON: `kind`, `user`, `org`, `partner`, the holding (`role`, `scope` or
    /// `grant_org`), `last_use`, `since`, `granted_by`, `granted_at`, `message`, and `remedy` in
    /// apply form.
    public var json: [String: Any] {
        var o: [String: Any] = ["kind": kind.rawValue, "org": org, "message": message, "remedy": remedy.json]
        o["user"] = user ?? NSNull()
        o["partner"] = partner ?? NSNull()
        switch holding {
        case .assignment(_, let role, let scope)?:
            o["source"] = "assignment"; o["role"] = role; o["scope"] = scope
        case .orgGrant(_, let role)?:
            o["source"] = "org_grant"; o["role"] = role; o["grant_org"] = org
        case nil: break
        }
        o["last_use"] = lastUse.map(RFC3339.format) ?? NSNull()
        if let since { o["since"] = RFC3339.format(since) }
        if holding != nil {
            o["granted_by"] = grantedBy ?? NSNull()
            o["granted_at"] = grantedAt.map(RFC3339.format) ?? NSNull()
        }
        return o
    }
}

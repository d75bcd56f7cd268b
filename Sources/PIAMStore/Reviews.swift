import Foundation
import PIAMEngine

/// An access review campaign: the business asks the admins of each partner to confirm or revoke
/// who holds what.
public struct ReviewCampaign: Sendable, Hashable {
    /// Which holdings it reviews.
    public enum Scope: Sendable, Hashable {
        /// Every assignment of every partner user.
        case allPartners
        /// Every assignment of the users of one partner (a partner root's id).
        case partner(String)
        /// Every assignment of one role, whoever holds it.
        case role(String)

        var kind: String {
            switch self {
            case .allPartners: "all_partners"
            case .partner: "partner"
            case .role: "role"
            }
        }

        var id: String? {
            switch self {
            case .allPartners: nil
            case .partner(let p): p
            case .role(let r): r
            }
        }

        init(kind: String, id: String?) throws(PIAMError) {
            switch (kind, id) {
            case ("all_partners", _): self = .allPartners
            case ("partner", let p?): self = .partner(p)
            case ("role", let r?): self = .role(r)
            default: throw PIAMError(.invalidInput, "scope: all_partners, partner with an org or role with a role")
            }
        }

        public var description: String {
            switch self {
            case .allPartners: "all partners"
            case .partner(let p): "partner org:\(p)"
            case .role(let r): "role \(r)"
            }
        }
    }

    /// What closing does to the items nobody answered.
    public enum NoAnswer: String, Sendable, Hashable, CaseIterable {
        /// They are kept.
        case keep
        /// They are revoked (closing must then be confirmed with the number it revokes).
        case revoke
        /// Each follows its recommendation (revoke when unused for the campaign's days); the
        /// revocations must be confirmed the same way.
        case recommendation
    }

    public var id: Int64
    public var name: String
    public var scope: Scope
    public var dueAt: Timestamp
    public var noAnswer: NoAnswer
    /// The recommendation's window: an item unused for this many days is recommended for
    /// revocation.
    public var days: Int
    /// `open` or `closed`.
    public var status: String
    /// The revision the items were frozen at.
    public var revision: Int64
    public var createdBy: String
    public var createdAt: Timestamp
    public var closedBy: String?
    public var closedAt: Timestamp?
}

/// One item of a campaign: a person's holding (an assignment), frozen when the campaign began.
public struct ReviewItem: Sendable, Hashable {
    public var id: Int64
    public var campaign: Int64
    public var user: String
    public var org: String
    /// The partner root of ``org`` (`nil` for host users).
    public var partner: String?
    public var role: String
    public var scope: String
    public var grantedBy: String?
    public var grantedAt: Timestamp?
    /// The last time the holding allowed a decision (`nil`: never, in the usage read).
    public var lastUse: Timestamp?
    /// `revoke` when unused for the campaign's days, else `keep`.
    public var recommendation: String
    /// Who was asked when the campaign began: the users the engine allowed to revoke the
    /// holding (`revoke_role` on the person), the partner's admins before the business's; the
    /// business's when no partner admin may. Who may decide is asked of the engine again at
    /// decision time.
    public var reviewers: [String]
    /// `keep` or `revoke`, once a reviewer answered.
    public var decision: String?
    public var decidedBy: String?
    public var decidedAt: Timestamp?
    public var comment: String?
    /// What became of it: `kept`, `revoked`, `gone` (the holding no longer existed at close),
    /// or `refused REASON` (a revocation at close the rules refused).
    public var outcome: String?
}

/// A campaign's completion for one partner (`nil`: host users, in a role campaign).
public struct ReviewProgress: Sendable, Hashable {
    public var partner: String?
    public var items: Int
    public var decided: Int
    public var kept: Int
    public var revoked: Int
    /// Items whose recommendation is `revoke`.
    public var recommendedRevoke: Int
    /// 0–100.
    public var percentDecided: Int { items == 0 ? 100 : decided * 100 / items }
}

/// The outcome of a review write (create, decide, close): allowed and written, or refused.
public struct ReviewResult: Sendable, Hashable {
    public var allowed: Bool
    /// `allowed`, or the refusal reason (the engine's, or the store's guards').
    public var reason: String
    public var message: String
    /// The campaign concerned.
    public var campaign: Int64
    /// The revision after the write (the current one for a refusal).
    public var revision: Int64
    /// For close: how many items were kept, revoked, gone, refused.
    public var details: [String]
}

extension Store {
    static let reviewColumns = """
        id, name, scope_kind, scope_id, due_at, no_answer, days, status, revision, created_by, created_at, closed_by, closed_at
        """
    static let itemColumns = """
        id, campaign, user, org, partner, role, scope, granted_by, granted_at, last_use, recommendation, reviewers,
        decision, decided_by, decided_at, comment, outcome
        """

    /// The question that makes `actor` the business for a campaign: `entitle` on the
    /// campaign's partner, or on the root org for the others — a host-only action, so only the
    /// business's administrators (and partner managers for their partners) pass.
    func businessQuestion(_ scope: ReviewCampaign.Scope, actor: String, graph: AccessGraph) -> AdminQuestion {
        let org: String
        if case .partner(let p) = scope { org = p } else { org = graph.allOrgIDs.first ?? "host" }
        return .check(actor: actor, action: "entitle", resource: ResourceRef(type: BuiltinType.org, id: org))
    }

    /// Creates a campaign: its items are every assignment in `scope` as the graph is now (the
    /// revision is recorded), each with its last use (from `usage`), a recommendation (revoke
    /// when unused for `days`) and its reviewers (decided by the engine). One transaction, one
    /// audit row (`review.create`); a refusal writes only its audit row.
    ///
    /// - Throws: ``PIAMError`` for bad input (an unknown partner or role, a due date in the past).
    public func createReview(name: String, scope: ReviewCampaign.Scope, dueAt: Timestamp, noAnswer: ReviewCampaign.NoAnswer,
                             days: Int, usage: any UsageFacts, as actorGiven: String, now: Timestamp? = nil,
                             credential: String? = nil, graph: LoadedGraph? = nil) throws(PIAMError) -> ReviewResult {
        let now = now ?? Self.clock()
        return try reviewWrite(operation: "review.create", target: "review:new", actor: actorGiven, now: now, credential: credential,
                               detail: ["name": name, "scope": scope.kind, "scope_id": scope.id ?? NSNull(), "due": RFC3339.format(dueAt),
                                        "no_answer": noAnswer.rawValue, "days": days], hint: graph) { session, actor in
            guard !name.isEmpty, name.count <= 200 else { throw PIAMError(.invalidInput, "name: 1 to 200 characters") }
            guard days >= 0 else { throw PIAMError(.invalidInput, "days: 0 or more") }
            guard dueAt > now else { throw PIAMError(.invalidInput, "due: \(RFC3339.format(dueAt)) is not in the future") }
            let g = session.graph
            switch scope {
            case .partner(let p):
                guard g.partnerRoot(ofOrg: p) == p else { throw PIAMError(.notFound, "no such partner \"\(p)\" (a partner root org)") }
            case .role(let r):
                guard try session.roleExists(r) else { throw PIAMError(.notFound, "no such role \"\(r)\"") }
            case .allPartners: break
            }
            try session.require([self.businessQuestion(scope, actor: actor, graph: g)], actor: actor)
            let cutoff = now - Timestamp(days) * 86_400_000
            try session.exec("""
                INSERT INTO review_campaigns(name, scope_kind, scope_id, due_at, no_answer, days, revision, created_by, created_at)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                """, name, scope.kind, scope.id, dueAt, noAnswer.rawValue, Int64(days), session.graphRevision, actor, now)
            let id = self.db.lastInsertRowID
            let provenance = try self.assignmentProvenance()
            let insert = try self.cached("""
                INSERT INTO review_items(campaign, user, org, partner, role, scope, granted_by, granted_at, last_use, recommendation, reviewers)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                """)
            var count = 0
            for u in g.allUserIDs {
                guard let report = g.accessReport(user: u, now: now) else { continue }
                let partner = g.partnerRoot(ofOrg: report.org)
                switch scope {
                case .allPartners: if partner == nil { continue }
                case .partner(let p): if partner != p { continue }
                case .role: break
                }
                var reviewers: [String]?
                for h in report.holdings where h.source == "assignment" {
                    if case .role(let r) = scope, h.role != r { continue }
                    let last = usage.lastUse(of: .assignment(user: u, role: h.role, scope: h.scope))
                    let (by, at) = provenance["\(u)\u{0}\(h.role)\u{0}\(h.scope)"] ?? (nil, nil)
                    if reviewers == nil { reviewers = try Self.reviewers(of: u, on: g, now: now) }
                    insert.reset()
                    insert.bind(1, id); insert.bind(2, u); insert.bind(3, report.org); insert.bind(4, partner)
                    insert.bind(5, h.role); insert.bind(6, h.scope); insert.bind(7, by); insert.bind(8, at); insert.bind(9, last)
                    insert.bind(10, (last.map { $0 < cutoff } ?? true) ? "revoke" : "keep")
                    insert.bind(11, JSONText.array(reviewers ?? []))
                    try insert.run()
                    count += 1
                }
            }
            return (id, "campaign \(id) \"\(name)\" over \(scope.description): \(count) items frozen at revision \(session.graphRevision), due \(RFC3339.format(dueAt))", [])
        }
    }

    /// Who may revoke `user`'s roles, by the engine: the partner's admins (and the business's
    /// when none of the partner may), never the person itself.
    static func reviewers(of user: String, on g: AccessGraph, now: Timestamp) throws(PIAMError) -> [String] {
        var all: [String] = []
        var cursor: String?
        repeat {
            let page = try g.listSubjects(action: "revoke_role", resource: ResourceRef(type: BuiltinType.user, id: user), cursor: cursor,
                                          limit: 1000, now: now)
            all += page.items
            cursor = page.nextCursor
        } while cursor != nil
        all.removeAll { $0 == user }
        let partnerAdmins = all.filter { g.accessReport(user: $0, now: now)?.host == false }
        return partnerAdmins.isEmpty ? all : partnerAdmins
    }

    /// `granted_by`, `granted_at` of every assignment, by "user\0role\0scope".
    func assignmentProvenance() throws(PIAMError) -> [String: (String?, Timestamp?)] {
        var out: [String: (String?, Timestamp?)] = [:]
        let s = try db.prepare("SELECT user, role, scope, granted_by, \(try schemaVersion >= Schema.grantedAtVersion ? "granted_at" : "NULL") FROM assignments")
        while try s.step() { out["\(s.text(0))\u{0}\(s.text(1))\u{0}\(s.text(2))"] = (s.optionalText(3), s.optionalInt64(4)) }
        return out
    }

    /// Every campaign, newest first.
    public func reviews() throws(PIAMError) -> [ReviewCampaign] {
        let s = try db.prepare("SELECT \(Self.reviewColumns) FROM review_campaigns ORDER BY id DESC")
        var out: [ReviewCampaign] = []
        while try s.step() { out.append(try Self.campaign(s)) }
        return out
    }

    /// One campaign.
    public func review(_ id: Int64) throws(PIAMError) -> ReviewCampaign {
        let s = try db.prepare("SELECT \(Self.reviewColumns) FROM review_campaigns WHERE id = ?1")
        s.bind(1, id)
        guard try s.step() else { throw PIAMError(.notFound, "no such review campaign \(id)") }
        return try Self.campaign(s)
    }

    /// A campaign's items as `viewer` may see them: those whose holding it may revoke (the
    /// engine decides, on `graph` or the current graph), all of them for `viewer == nil`.
    public func reviewItems(campaign: Int64, viewer: String? = nil, now: Timestamp? = nil,
                            graph: LoadedGraph? = nil) throws(PIAMError) -> [ReviewItem] {
        _ = try review(campaign)
        let s = try db.prepare("SELECT \(Self.itemColumns) FROM review_items WHERE campaign = ?1 ORDER BY partner, org, user, role, scope")
        s.bind(1, campaign)
        var out: [ReviewItem] = []
        while try s.step() { out.append(Self.item(s)) }
        guard let viewer else { return out }
        let g: LoadedGraph
        if let graph { g = graph } else { g = try loadGraph() }
        let now = now ?? Self.clock()
        return out.filter { Self.mayReview($0, viewer, g.graph, now) }
    }

    /// Whether `viewer` may decide `item`: the engine allows it `revoke_role` on the person
    /// (revoking is what a reviewer may do; keeping asks the same right).
    static func mayReview(_ item: ReviewItem, _ viewer: String, _ g: AccessGraph, _ now: Timestamp) -> Bool {
        g.check(subject: viewer, action: "revoke_role", resource: ResourceRef(type: BuiltinType.user, id: item.user), now: now).allowed
    }

    /// One item.
    public func reviewItem(_ id: Int64) throws(PIAMError) -> ReviewItem {
        let s = try db.prepare("SELECT \(Self.itemColumns) FROM review_items WHERE id = ?1")
        s.bind(1, id)
        guard try s.step() else { throw PIAMError(.notFound, "no such review item \(id)") }
        return Self.item(s)
    }

    /// A reviewer's answer on one item, with a comment. `keep` records it (audited
    /// `review.keep`); `revoke` performs the `revoke` operation as the reviewer — decided by the
    /// engine and the store's guards like any revocation, audited as one — and records the
    /// answer in the same transaction (audited `review.revoke`). Either needs `revoke_role` on
    /// the person (the engine's answer, in the transaction); a refusal is audited and changes
    /// nothing.
    public func decideReview(item id: Int64, decision: String, comment: String?, as actorGiven: String, now: Timestamp? = nil,
                             credential: String? = nil, graph: LoadedGraph? = nil) throws(PIAMError) -> ReviewResult {
        let now = now ?? Self.clock()
        guard decision == "keep" || decision == "revoke" else { throw PIAMError(.invalidInput, "decision: keep or revoke, not \"\(decision)\"") }
        let item = try reviewItem(id)
        return try reviewWrite(operation: "review.\(decision)", target: "review:\(item.campaign)", actor: actorGiven, now: now,
                               credential: credential,
                               detail: ["item": id, "user": item.user, "role": item.role, "scope": item.scope, "comment": comment ?? NSNull()],
                               hint: graph, partner: item.partner) { session, actor in
            let campaign = try self.review(item.campaign)
            guard campaign.status == "open" else { throw PIAMError(.conflict, "review campaign \(campaign.id) is closed") }
            guard try self.reviewItem(id).decision == nil else { throw PIAMError(.conflict, "review item \(id) was already decided") }
            try session.require([.check(actor: actor, action: "revoke_role", resource: ResourceRef(type: BuiltinType.user, id: item.user))],
                                actor: actor)
            var outcome = "kept"
            if decision == "revoke" {
                _ = try session.perform(.revoke(user: item.user, role: item.role, scope: item.scope), as: actor)
                outcome = "revoked"
            }
            try session.exec("""
                UPDATE review_items SET decision = ?1, decided_by = ?2, decided_at = ?3, comment = ?4, outcome = ?5 WHERE id = ?6
                """, decision, actor, now, comment, outcome, id)
            return (item.campaign, "\(decision == "keep" ? "kept" : "revoked") role \(item.role) over org:\(item.scope) of user:\(item.user) (item \(id))", [])
        }
    }

    /// What closing campaign `id` would revoke: the unanswered items its no-answer policy
    /// revokes (all of them for `revoke`, those recommended for revocation for
    /// `recommendation`, none for `keep`).
    public func reviewRevocationsAtClose(_ id: Int64) throws(PIAMError) -> [ReviewItem] {
        let c = try review(id)
        let pending = try reviewItems(campaign: id).filter { $0.decision == nil }
        switch c.noAnswer {
        case .keep: return []
        case .revoke: return pending
        case .recommendation: return pending.filter { $0.recommendation == "revoke" }
        }
    }

    /// Closes a campaign, applying its no-answer policy in ONE transaction: each unanswered item
    /// the policy revokes is revoked by the closer through the `revoke` operation (decided and
    /// audited as any, in a savepoint: one the rules refuse is audited as refused and recorded
    /// as its outcome, the others go on); the rest are kept. When the policy revokes anything,
    /// `confirmRevocations` must equal how many it revokes (``reviewRevocationsAtClose(_:)``):
    /// else nothing is done (``PIAMError/Code/conflict``, `confirmation_required`). Needs the
    /// business's right over the campaign, as for creating it.
    public func closeReview(_ id: Int64, confirmRevocations: Int? = nil, as actorGiven: String, now: Timestamp? = nil,
                            credential: String? = nil, graph: LoadedGraph? = nil) throws(PIAMError) -> ReviewResult {
        let now = now ?? Self.clock()
        let c = try review(id)
        let toRevoke = try reviewRevocationsAtClose(id)
        if !toRevoke.isEmpty && confirmRevocations != toRevoke.count {
            throw PIAMError(Self.confirmationRequired,
                            "closing review campaign \(id) revokes \(toRevoke.count) unanswered items (no-answer policy \(c.noAnswer.rawValue)): confirm with \(toRevoke.count)")
        }
        return try reviewWrite(operation: "review.close", target: "review:\(id)", actor: actorGiven, now: now, credential: credential,
                               detail: ["campaign": id, "revocations": toRevoke.count], hint: graph, batch: "review-\(id)") { session, actor in
            guard try self.review(id).status == "open" else { throw PIAMError(.conflict, "review campaign \(id) is already closed") }
            try session.require([self.businessQuestion(c.scope, actor: actor, graph: session.graph)], actor: actor)
            let revoke = Set(toRevoke.map(\.id))
            var kept = 0, revoked = 0, gone = 0, refused = 0
            for item in try self.reviewItems(campaign: id) where item.decision == nil {
                var outcome = "kept"
                if revoke.contains(item.id) {
                    let op = AdminOperation.revoke(user: item.user, role: item.role, scope: item.scope)
                    try self.db.execute("SAVEPOINT review_item")
                    do {
                        _ = try session.perform(op, as: actor)
                        try self.db.execute("RELEASE review_item")
                        outcome = "revoked"
                        revoked += 1
                    } catch {
                        try self.db.execute("ROLLBACK TO review_item")
                        try self.db.execute("RELEASE review_item")
                        try session.catchUp()
                        switch error {
                        case let r as Refusal:
                            outcome = "refused \(r.reason)"
                            refused += 1
                            try self.insertAudit(op: op, actor: actor, decision: "refused", reason: r.reason, message: r.message,
                                                 partner: try self.auditPartner(op, actor: actor), revision: try self.currentRevision(),
                                                 batch: "review-\(id)", now: now, credential: credential)
                        case let e as PIAMError where e.code == .notFound:
                            outcome = "gone"
                            gone += 1
                        default:
                            throw error
                        }
                    }
                } else {
                    kept += 1
                }
                try session.exec("UPDATE review_items SET outcome = ?1 WHERE id = ?2", outcome, item.id)
            }
            try session.exec("UPDATE review_campaigns SET status = 'closed', closed_by = ?1, closed_at = ?2 WHERE id = ?3", actor, now, id)
            return (id, "closed review campaign \(id): no-answer policy \(c.noAnswer.rawValue)",
                    ["\(kept) unanswered kept", "\(revoked) unanswered revoked", "\(gone) already gone", "\(refused) refused"])
        }
    }

    /// The error code of a close whose revocations were not confirmed.
    public static let confirmationRequired = PIAMError.Code("confirmation_required")

    /// Completion per partner: items, answered, kept, revoked (by reviewers and at close).
    public func reviewReport(_ id: Int64) throws(PIAMError) -> [ReviewProgress] {
        var by: [String: ReviewProgress] = [:]
        for i in try reviewItems(campaign: id) {
            let k = i.partner ?? ""
            var p = by[k] ?? ReviewProgress(partner: i.partner, items: 0, decided: 0, kept: 0, revoked: 0, recommendedRevoke: 0)
            p.items += 1
            if i.decision != nil { p.decided += 1 }
            if i.outcome == "kept" { p.kept += 1 }
            if i.outcome == "revoked" { p.revoked += 1 }
            if i.recommendation == "revoke" { p.recommendedRevoke += 1 }
            by[k] = p
        }
        return by.keys.sorted().map { by[$0]! }
    }

    /// Runs one review write in ONE immediate transaction with its audit row; a refusal
    /// (``Refusal``) or error rolls it back and is audited alone (`refused` / `failed`).
    func reviewWrite(operation: String, target: String, actor actorGiven: String, now: Timestamp, credential: String?,
                     detail: [String: Any], hint: LoadedGraph?, batch: String? = nil, partner: String? = nil,
                     _ body: (AdminSession, String) throws -> (campaign: Int64, message: String, details: [String])) throws(PIAMError) -> ReviewResult {
        let detailText = String(decoding: (try? JSONSerialization.data(withJSONObject: detail, options: [.sortedKeys])) ?? Data(), as: UTF8.self)
        do {
            return try writeTransaction {
                let session = try AdminSession(store: self, now: now, batch: batch, credential: credential, hint: hint)
                let actor = try userRecord(actorGiven)?.id ?? actorGiven
                let (campaign, message, details) = try body(session, actor)
                let revision = try currentRevision()
                try insertAuditRow(operation: operation, target: target == "review:new" ? "review:\(campaign)" : target, detail: detailText,
                                   actor: actor, decision: "allowed", reason: Reason.allowed.name, message: message, partner: partner,
                                   revision: revision, batch: batch, now: now, credential: credential)
                return ReviewResult(allowed: true, reason: Reason.allowed.name, message: message, campaign: campaign, revision: revision,
                                    details: details)
            }
        } catch {
            let (decision, reason, message): (String, String, String)
            var thrown: PIAMError?
            switch error {
            case let r as Refusal: (decision, reason, message) = ("refused", r.reason, r.message)
            case let e as PIAMError: (decision, reason, message) = ("failed", e.code.rawValue, e.message); thrown = e
            default:
                let e = PIAMError(.database, "\(error)")
                (decision, reason, message) = ("failed", e.code.rawValue, e.message); thrown = e
            }
            let revision = try db.withTransaction(immediate: true) { () throws(PIAMError) -> Int64 in
                let actor = try userRecord(actorGiven)?.id ?? actorGiven
                let revision = try currentRevision()
                try insertAuditRow(operation: operation, target: target, detail: detailText, actor: actor, decision: decision, reason: reason,
                                   message: message, partner: partner, revision: revision, batch: batch, now: now, credential: credential)
                return revision
            }
            if let thrown { throw thrown }
            let campaign = Int64(target.split(separator: ":").last ?? "") ?? 0
            return ReviewResult(allowed: false, reason: reason, message: message, campaign: campaign, revision: revision, details: [])
        }
    }

    static func campaign(_ s: Statement) throws(PIAMError) -> ReviewCampaign {
        ReviewCampaign(id: s.int64(0), name: s.text(1), scope: try .init(kind: s.text(2), id: s.optionalText(3)), dueAt: s.int64(4),
                       noAnswer: ReviewCampaign.NoAnswer(rawValue: s.text(5)) ?? .keep, days: Int(s.int64(6)), status: s.text(7),
                       revision: s.int64(8), createdBy: s.text(9), createdAt: s.int64(10), closedBy: s.optionalText(11),
                       closedAt: s.optionalInt64(12))
    }

    static func item(_ s: Statement) -> ReviewItem {
        let reviewers = (try? JSONSerialization.jsonObject(with: Data(s.text(11).utf8))) as? [String] ?? []
        return ReviewItem(id: s.int64(0), campaign: s.int64(1), user: s.text(2), org: s.text(3), partner: s.optionalText(4), role: s.text(5),
                          scope: s.text(6), grantedBy: s.optionalText(7), grantedAt: s.optionalInt64(8), lastUse: s.optionalInt64(9),
                          recommendation: s.text(10), reviewers: reviewers, decision: s.optionalText(12), decidedBy: s.optionalText(13),
                          decidedAt: s.optionalInt64(14), comment: s.optionalText(15), outcome: s.optionalText(16))
    }
}

extension ReviewCampaign {
    /// The campaign as JSON (times RFC 3339).
    public var json: [String: Any] {
        ["id": id, "name": name, "scope": scope.kind, "scope_id": scope.id ?? NSNull(), "due": RFC3339.format(dueAt),
         "no_answer": noAnswer.rawValue, "days": days, "status": status, "revision": revision, "created_by": createdBy,
         "created_at": RFC3339.format(createdAt), "closed_by": closedBy ?? NSNull(), "closed_at": closedAt.map(RFC3339.format) ?? NSNull()]
    }
}

extension ReviewItem {
    /// The item as JSON (times RFC 3339).
    public var json: [String: Any] {
        ["id": id, "campaign": campaign, "user": user, "org": org, "partner": partner ?? NSNull(), "role": role, "scope": scope,
         "granted_by": grantedBy ?? NSNull(), "granted_at": grantedAt.map(RFC3339.format) ?? NSNull(),
         "last_use": lastUse.map(RFC3339.format) ?? NSNull(), "recommendation": recommendation, "reviewers": reviewers,
         "decision": decision ?? NSNull(), "decided_by": decidedBy ?? NSNull(), "decided_at": decidedAt.map(RFC3339.format) ?? NSNull(),
         "comment": comment ?? NSNull(), "outcome": outcome ?? NSNull()]
    }
}

extension ReviewProgress {
    /// The progress as JSON.
    public var json: [String: Any] {
        ["partner": partner ?? NSNull(), "items": items, "decided": decided, "kept": kept, "revoked": revoked,
         "recommended_revoke": recommendedRevoke, "percent_decided": percentDecided]
    }
}

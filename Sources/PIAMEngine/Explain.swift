/// The answer to `explain`: the decision, its reason, and every holding considered with the rule
/// it passed or failed (DESIGN §3). Encodes to the JSON trace of the wire protocol's EXPLAIN.
public struct Explanation: Sendable, Hashable, Codable {
    /// A subject-level or resource-level rule (steps 1–6) and whether it passed.
    public struct Step: Sendable, Hashable, Codable {
        /// 1–7, the rule's number in DESIGN §3.
        public var step: Int
        /// The rule, e.g. `subject_exists`.
        public var rule: String
        public var passed: Bool
    }

    /// The subject as resolved.
    public struct Subject: Sendable, Hashable, Codable {
        public var id: String
        public var org: String
        public var host: Bool
        public var status: String
        public var validUntil: Timestamp?

        enum CodingKeys: String, CodingKey {
            case id, org, host, status
            case validUntil = "valid_until"
        }
    }

    /// The resource as resolved.
    public struct Resource: Sendable, Hashable, Codable {
        public var type: String
        public var id: String
        /// Its location.
        public var org: String
        public var owner: String?
        public var shared: Bool
        /// `false` for a resource located only by the `org` property.
        public var registered: Bool
    }

    /// An org on the subject's path to the root that is not `active` (why step 4 failed).
    public struct InactiveOrg: Sendable, Hashable, Codable {
        public var id: String
        /// `pending` or `suspended`.
        public var status: String

        public init(id: String, status: String) {
            self.id = id
            self.status = status
        }
    }

    /// One holding (and, when one matched, the permission) and what rule 7 made of it.
    public struct Holding: Sendable, Hashable, Codable {
        /// `assignment` or `org_grant`.
        public var source: String
        public var role: String
        /// The holding's scope org.
        public var scope: String
        /// For org grants: the org the grant is made on.
        public var grantOrg: String?
        /// For org grants: whether it reaches sub-orgs.
        public var includeSuborgs: Bool?
        public var validUntil: Timestamp?
        /// Who granted the assignment or org grant (a user id as recorded); absent when not recorded.
        public var grantedBy: String?
        /// When it was granted (milliseconds since the epoch, like `valid_until`); absent when
        /// unknown (grants written before schema v3).
        public var grantedAt: Timestamp?
        /// The matching permission, if any.
        public var permission: String?
        /// `allowed`, `no_matching_permission`, `expired`, `outside_ceiling`, `out_of_bounds`,
        /// `out_of_reach`, `not_owner` or `host_only`.
        public var rule: String

        enum CodingKeys: String, CodingKey {
            case source, role, scope, permission, rule
            case grantOrg = "grant_org"
            case includeSuborgs = "include_suborgs"
            case validUntil = "valid_until"
            case grantedBy = "granted_by"
            case grantedAt = "granted_at"
        }
    }

    public var allowed: Bool
    public var reason: Reason
    public var subject: Subject?
    public var resource: Resource?
    public var action: String
    public var steps: [Step]
    /// For `org_inactive`: every org from the subject's org up to the root that is not
    /// `active`, nearest first. Absent for every other decision.
    public var inactiveOrgs: [InactiveOrg]? = nil
    public var holdings: [Holding]

    enum CodingKeys: String, CodingKey {
        case allowed, reason, subject, resource, action, steps, holdings
        case inactiveOrgs = "inactive_orgs"
    }

    /// The decision this explanation justifies.
    public var decision: Decision { Decision(allowed: allowed, reason: reason) }
}

struct RecordingTracer: EvalTracer {
    static var visitsAll: Bool { true }
    let graph: AccessGraph
    var holdings: [Explanation.Holding] = []

    mutating func holding(_ source: HoldingSource, role: Int32, scope: Int32, validUntil: Timestamp, permission: Int32, rule: HoldingRule) {
        var h = Explanation.Holding(
            source: "assignment", role: graph.roleIDs[Int(role)], scope: graph.orgIDs[Int(scope)],
            validUntil: validUntil == noExpiry ? nil : validUntil,
            permission: permission >= 0 ? graph.permissionString(Int(permission)) : nil, rule: rule.rawValue)
        let provenance: Int32
        switch source {
        case .assignment(let i):
            provenance = graph.assignProvenance[Int(i)]
        case .orgGrant(let g):
            h.source = "org_grant"
            h.grantOrg = graph.orgIDs[Int(graph.grantOrgOf(g))]
            h.includeSuborgs = graph.grantIncludeSub[Int(g)]
            provenance = graph.grantProvenance[Int(g)]
        }
        (h.grantedBy, h.grantedAt) = graph.provenanceFields(provenance)
        holdings.append(h)
    }
}

extension AccessGraph {
    /// Decides one request and says why, holding by holding.
    public func explain(_ request: CheckRequest, now: Timestamp) -> Explanation {
        var steps: [Explanation.Step] = []
        var e = Explanation(allowed: false, reason: .unknownSubject, subject: nil, resource: nil,
                            action: request.action, steps: [], holdings: [])
        func finish(_ d: Decision) -> Explanation {
            e.allowed = d.allowed
            e.reason = d.reason
            e.steps = steps
            return e
        }
        guard let s = userIndex[request.subject] else {
            steps.append(.init(step: 1, rule: "subject_exists", passed: false))
            return finish(.deny(.unknownSubject))
        }
        let si = Int(s)
        e.subject = .init(id: userIDs[si], org: orgIDs[Int(users[si].org)], host: isHostUser(s),
                          status: users[si].status.name,
                          validUntil: users[si].validUntil == noExpiry ? nil : users[si].validUntil)
        steps.append(.init(step: 1, rule: "subject_exists", passed: true))
        let state = subjectState(s, now: now)
        steps.append(.init(step: 2, rule: "subject_active", passed: state != .subjectInactive))
        if state == .subjectInactive { return finish(.deny(state)) }
        steps.append(.init(step: 3, rule: "subject_not_expired", passed: state != .subjectExpired))
        if state == .subjectExpired { return finish(.deny(state)) }
        steps.append(.init(step: 4, rule: "orgs_active", passed: state != .orgInactive))
        if state == .orgInactive {
            e.inactiveOrgs = inactiveOrgs(above: users[si].org)
            return finish(.deny(state))
        }
        guard let res = resolve(request.resource) else {
            steps.append(.init(step: 5, rule: "resource_resolves", passed: false))
            return finish(.deny(.unknownResource))
        }
        steps.append(.init(step: 5, rule: "resource_resolves", passed: true))
        e.resource = .init(
            type: request.resource.type,
            id: request.resource.type == BuiltinType.user ? userIDs[Int(res.owner)] : request.resource.id,
            org: orgIDs[Int(res.org)],
            owner: res.owner >= 0 ? userIDs[Int(res.owner)] : nil, shared: res.shared, registered: res.registered)
        var tracer = RecordingTracer(graph: self)
        let d = decide(subject: s, action: actionID(request.action), resource: res, now: now, tracer: &tracer)
        if d.reason == .selfAction {
            steps.append(.init(step: 6, rule: "not_self_action", passed: false))
            return finish(d)
        }
        steps.append(.init(step: 6, rule: "not_self_action", passed: true))
        steps.append(.init(step: 7, rule: "permitted_by_holding", passed: d.allowed))
        e.holdings = tracer.holdings
        return finish(d)
    }

    /// The orgs from `o` up to the root that are not `active`, nearest first.
    func inactiveOrgs(above o: Int32) -> [Explanation.InactiveOrg] {
        var out: [Explanation.InactiveOrg] = []
        var cur = o
        while cur >= 0 {
            let rec = orgs[Int(cur)]
            if rec.status != .active { out.append(.init(id: orgIDs[Int(cur)], status: rec.status.name)) }
            cur = rec.parent
        }
        return out
    }

    func permissionString(_ p: Int) -> String {
        let t = typeNames[Int(perms[p].type)]
        let a = perms[p].action < 0 ? Permission.anyAction : actionNames[Int(perms[p].action)]
        return perms[p].owner ? "\(t):\(a):owner" : "\(t):\(a)"
    }

    /// The org an org grant is made on.
    func grantOrgOf(_ g: Int32) -> Int32 { grantOrg[Int(g)] }
}

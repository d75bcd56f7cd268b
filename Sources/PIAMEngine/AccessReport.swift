/// What one user may do and where each power comes from: the report behind `piamctl access`.
public struct AccessReport: Sendable, Hashable, Codable {
    /// One holding of the user and whether it is in effect.
    public struct Holding: Sendable, Hashable, Codable {
        /// `assignment` or `org_grant`.
        public var source: String
        public var role: String
        /// The org whose subtree the holding acts over.
        public var scope: String
        /// For org grants: the org the grant is made on.
        public var grantOrg: String?
        public var includeSuborgs: Bool?
        public var validUntil: Timestamp?
        /// `effective`, `expired`, `outside_ceiling` or `out_of_bounds`.
        public var state: String
        public var permissions: [String]

        enum CodingKeys: String, CodingKey {
            case source, role, scope, state, permissions
            case grantOrg = "grant_org"
            case includeSuborgs = "include_suborgs"
            case validUntil = "valid_until"
        }
    }

    /// One permission in effect over one scope, and the holdings it comes from.
    public struct Effective: Sendable, Hashable, Codable {
        public var permission: String
        public var scope: String
        /// Human-readable origins, e.g. `assignment partner-admin` or `org_grant claims-agent on acme`.
        public var via: [String]
    }

    public var user: String
    public var org: String
    /// The chain of orgs from the user's org up to the root.
    public var orgPath: [String]
    public var host: Bool
    public var status: String
    public var validUntil: Timestamp?
    /// `allowed` when the user may act at all, else the subject-level reason that stops them.
    public var subjectState: Reason
    /// The roles in the ceiling of the user's org (partner users only; host users have none).
    public var ceiling: [String]?
    public var holdings: [Holding]
    /// Permissions in effect, sorted by scope then permission. Host-only permissions held by a
    /// partner user are left out: they never take effect.
    public var effective: [Effective]

    enum CodingKeys: String, CodingKey {
        case user, org, host, status, ceiling, holdings, effective
        case orgPath = "org_path"
        case validUntil = "valid_until"
        case subjectState = "subject_state"
    }
}

extension AccessGraph {
    /// The access report of a user (by id or alias) at time `now`, or `nil` for an unknown user.
    public func accessReport(user: String, now: Timestamp) -> AccessReport? {
        guard let s = userIndex[user] else { return nil }
        let si = Int(s)
        let sOrg = users[si].org
        let host = orgs[Int(sOrg)].kind == .host
        var path: [String] = []
        var o = sOrg
        while o >= 0 { path.append(orgIDs[Int(o)]); o = orgs[Int(o)].parent }
        var holdings: [AccessReport.Holding] = []
        var effective: [String: (scope: Int32, perm: String, via: [String])] = [:]
        forEachHolding(of: s) { source, role, scope, validUntil in
            let state = holdingState(role: role, scope: scope, validUntil: validUntil, userOrg: sOrg, host: host, now: now)
            var h = AccessReport.Holding(
                source: "assignment", role: roleIDs[Int(role)], scope: orgIDs[Int(scope)],
                validUntil: validUntil == noExpiry ? nil : validUntil, state: state,
                permissions: rolePermissions[Int(role)].map(\.description))
            var via = "assignment \(roleIDs[Int(role)])"
            if case .orgGrant(let g) = source {
                let go = orgIDs[Int(grantOrgOf(g))]
                h.source = "org_grant"
                h.grantOrg = go
                h.includeSuborgs = grantIncludeSub[Int(g)]
                via = "org_grant \(roleIDs[Int(role)]) on \(go)"
            }
            holdings.append(h)
            if state == "effective" {
                for p in rolePermissions[Int(role)] where host || !p.isHostOnly {
                    let key = "\(orgIDs[Int(scope)])\u{0}\(p)"
                    effective[key, default: (scope, p.description, [])].via.append(via)
                }
            }
            return true
        }
        let eff = effective.values
            .sorted { ($0.scope, $0.perm) < ($1.scope, $1.perm) }
            .map { AccessReport.Effective(permission: $0.perm, scope: orgIDs[Int($0.scope)], via: $0.via) }
        var ceiling: [String]? = nil
        if !host {
            ceiling = (0..<roleIDs.count).filter { inCeiling(org: sOrg, role: Int32($0)) }.map { roleIDs[$0] }
        }
        return AccessReport(
            user: userIDs[si], org: orgIDs[Int(sOrg)], orgPath: path, host: host,
            status: users[si].status.name, validUntil: users[si].validUntil == noExpiry ? nil : users[si].validUntil,
            subjectState: subjectState(s, now: now), ceiling: ceiling, holdings: holdings, effective: eff)
    }

    /// A holding's state for a user of org `sOrg` (`host`: a host org) at `now`: `expired`,
    /// `outside_ceiling`, `out_of_bounds` or `effective` — the access report's and
    /// ``forEachHoldingState(user:now:_:)``'s one rule.
    private func holdingState(role: Int32, scope: Int32, validUntil: Timestamp, userOrg sOrg: Int32, host: Bool,
                              now: Timestamp) -> String {
        if validUntil <= now { return "expired" }
        if !host && !inCeiling(org: sOrg, role: role) { return "outside_ceiling" }
        if !host && !isWithin(scope, sOrg) { return "out_of_bounds" }
        return "effective"
    }

    /// Each holding of `user` (by id or alias) with its state at `now`, as the access report
    /// lists them, without building one (no path, no permissions, no ceiling): for scans over
    /// every person, such as the findings. `grantOrg` is the org of an org grant, `nil` for an
    /// assignment; `state` is the access report's (`expired`, `outside_ceiling`,
    /// `out_of_bounds`, `effective`). Returns `false` for an unknown user.
    @discardableResult
    public func forEachHoldingState(user: String, now: Timestamp,
                                    _ body: (_ grantOrg: String?, _ role: String, _ scope: String, _ state: String) -> Void) -> Bool {
        guard let s = userIndex[user] else { return false }
        let sOrg = users[Int(s)].org
        let host = orgs[Int(sOrg)].kind == .host
        forEachHolding(of: s) { source, role, scope, validUntil in
            var grantOrg: String?
            if case .orgGrant(let g) = source { grantOrg = orgIDs[Int(grantOrgOf(g))] }
            body(grantOrg, roleIDs[Int(role)], orgIDs[Int(scope)],
                 holdingState(role: role, scope: scope, validUntil: validUntil, userOrg: sOrg, host: host, now: now))
            return true
        }
        return true
    }

    /// Whether a user id or alias names a user; returns the user's id.
    public func userID(for idOrAlias: String) -> String? {
        userIndex[idOrAlias].map { userIDs[Int($0)] }
    }

    /// The user a subject given as UTF-8 bytes (an id or an alias) names: its canonical id and
    /// its org's id, both the graph's own strings (nothing is allocated), or `nil` when no user
    /// has that id or alias. The forward-auth fast path answers `X-PIAM-Subject` and
    /// `X-PIAM-Org` from it.
    public func userIdentity(utf8 subject: UnsafeRawBufferPointer) -> (id: String, org: String)? {
        guard let u = userIndex[utf8: subject] else { return nil }
        return (userIDs[Int(u)], orgIDs[Int(users[Int(u)].org)])
    }

    /// Where a resource is located and who owns it (registered resources, users and orgs), or
    /// `nil` when it does not resolve.
    public func location(of resource: ResourceRef) -> (org: String, owner: String?)? {
        guard let r = resolve(resource) else { return nil }
        return (orgIDs[Int(r.org)], r.owner >= 0 ? userIDs[Int(r.owner)] : nil)
    }

    /// The users of an org (not of its sub-orgs), by id, sorted by bytes.
    public func users(ofOrg id: String) -> [String] {
        guard let o = orgIndex[id] else { return [] }
        return usersByOrg[Int(o)].map { userIDs[Int($0)] }.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// How many users the org `id` and every org below it have (no list is built: a page can
    /// show it on a million-user graph).
    public func userCount(inSubtreeOf id: String) -> Int {
        guard let o = orgIndex[id] else { return 0 }
        var n = 0
        for pre in Int(orgs[Int(o)].pre)..<Int(orgs[Int(o)].end) { n += usersByOrg[Int(orgByPre[pre])].count }
        return n
    }

    /// How many users of the org `id` and every org below it have each status (`active`,
    /// `suspended`, `invited`; the status as recorded, not whether the user may act), without
    /// building an access report per person.
    public func userCountsByStatus(inSubtreeOf id: String) -> [String: Int] {
        guard let o = orgIndex[id] else { return [:] }
        var counts: [UserStatus: Int] = [:]
        for pre in Int(orgs[Int(o)].pre)..<Int(orgs[Int(o)].end) {
            for u in usersByOrg[Int(orgByPre[pre])] { counts[users[Int(u)].status, default: 0] += 1 }
        }
        var out: [String: Int] = [:]
        for (status, n) in counts { out[status.name] = n }
        return out
    }

    /// The partner root of the org `id` (the topmost partner org on its path), or `nil` for a host
    /// org or an unknown id.
    public func partnerRoot(ofOrg id: String) -> String? {
        guard let o = orgIndex[id], orgs[Int(o)].partnerRoot >= 0 else { return nil }
        return orgIDs[Int(orgs[Int(o)].partnerRoot)]
    }

    /// All user ids (in load order, then in the order later changes added them).
    public var allUserIDs: [String] { userIDs.filter { !$0.isEmpty } }
    /// All org ids, in pre-order.
    public var allOrgIDs: [String] { orgByPre.map { orgIDs[Int($0)] } }
    /// All registered resources as `(type, id)`.
    public var allResources: [(type: String, id: String)] {
        resIDs.indices.filter { !resIDs[$0].isEmpty }.map { (typeNames[Int(res[$0].type)], resIDs[$0]) }
    }
}

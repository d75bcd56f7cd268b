// Applying changed keys to a graph without rebuilding it (DESIGN §4: work in proportion to the
// change). The new graph starts as a copy of the old one's parts — which shares every buffer —
// and is edited in place: Swift's copy-on-write then copies only the chunks an edit touches.
//
// Costs, for a graph of U users, A assignments, R resources, O orgs, G org grants:
// - a user, alias, resource or assignment row: a few chunk copies (4,096 elements each), the
//   chunk directories (U / 4,096 references) and, for an assignment, a scan of the role's
//   holder list (A / roles entries, read only);
// - an org's status or kind, an entitlement, an org grant or a role's permissions: the derived
//   org data is recomputed, linear in O + G (+ role permissions);
// - a new, moved or removed org: the same plus renumbering the tree, O log O. Users,
//   assignments and resources point at org slots, which never change, so they are untouched.

extension AccessGraph {
    /// The graph after `changes` (the keys' current states, see ``GraphChange``), sharing every
    /// part the changes do not touch with this graph, which stays valid and unchanged.
    ///
    /// - Throws: ``PIAMError`` when the changes do not leave a valid graph (a reference to a
    ///   missing entity, a broken tree, a removed role or org still in use): the caller should
    ///   load the graph afresh; this graph is unaffected.
    public func applying(_ changes: [GraphChange]) throws(PIAMError) -> AccessGraph {
        if changes.isEmpty { return self }
        var p = parts
        try p.apply(changes)
        return AccessGraph(p)
    }

    /// Applies `changes` to `graph` in place: the graph ``applying(_:)`` would return, but the
    /// buffers only `graph` holds are edited without being copied — for a writer whose graph
    /// follows its own writes one by one, where copying each touched chunk per write would cost
    /// more than the write. Buffers shared with other copies are copied on first write, as ever.
    ///
    /// - Throws: as ``applying(_:)``; `graph` is then left empty: load it afresh.
    public static func apply(_ changes: [GraphChange], to graph: inout AccessGraph) throws(PIAMError) {
        if changes.isEmpty { return }
        var p = graph.parts
        graph = AccessGraph(Parts())  // let go of the old graph, so that `p` alone holds its buffers
        try p.apply(changes)
        graph = AccessGraph(p)
    }

    /// Slots abandoned by applied changes (old assignment slices, removed users and resources):
    /// memory a full reload would reclaim.
    public var reclaimable: Int {
        (assigns.count - liveAssigns) + (userIDs.count - liveUsers) + (resIDs.count - liveResources)
    }
}

extension AccessGraph.Parts {
    mutating func apply(_ changes: [GraphChange]) throws(PIAMError) {
        var orgUps: [OrgRecord] = [], orgDels: [String] = []
        var roleUps: [RoleRecord] = [], roleDels: [String] = []
        var entUps: [(String, String)] = [], entDels: [(String, String)] = []
        var userUps: [UserRecord] = [], userDels: [String] = []
        var aliasUps: [(String, String)] = [], aliasDels: [String] = []
        var resUps: [ResourceRecord] = [], resDels: [(String, String)] = []
        var grantUps: [OrgGrantRecord] = [], grantDels: [(String, String)] = []
        var assignByUser: [String: [(role: String, scope: String, record: AssignmentRecord?)]] = [:]
        // Several changes to one key (from several transactions): the last is its current state.
        var last: [[String]: Int] = [:]
        for (i, c) in changes.enumerated() { last[c.key] = i }
        for (i, c) in changes.enumerated() where last[c.key] == i {
            switch c {
            case .org(let id, let r): if let r { orgUps.append(r) } else { orgDels.append(id) }
            case .role(let id, let r): if let r { roleUps.append(r) } else { roleDels.append(id) }
            case .entitlement(let o, let r, let present): if present { entUps.append((o, r)) } else { entDels.append((o, r)) }
            case .user(let id, let r): if let r { userUps.append(r) } else { userDels.append(id) }
            case .alias(let a, let u): if let u { aliasUps.append((a, u)) } else { aliasDels.append(a) }
            case .resource(let t, let id, let r): if let r { resUps.append(r) } else { resDels.append((t, id)) }
            case .orgGrant(let o, let r, let rec): if let rec { grantUps.append(rec) } else { grantDels.append((o, r)) }
            case .assignment(let u, let r, let s, let rec): assignByUser[u, default: []].append((r, s, rec))
            }
        }
        var tree = false, orgState = false, grants = false, roles = false
        var kindChanged: [Int32] = []
        /// Provenance pairs appended by this apply (several rows of one transaction share one).
        var known: [Provenance: Int32] = [:]

        // A. Orgs and roles that others may refer to.
        for o in orgUps {
            if let s = orgIndex[o.id] {
                if orgs[Int(s)].kind != o.kind { kindChanged.append(s); tree = true }
                if orgs[Int(s)].status != o.status { orgState = true }
                orgs[Int(s)].kind = o.kind
                orgs[Int(s)].status = o.status
            } else {
                try validateEntityID(o.id, what: "org")
                addOrgSlot(o)
                tree = true
            }
        }
        for o in orgUps {
            let s = Int(orgIndex[o.id]!)
            let parent = try o.parent.map { id throws(PIAMError) in try org(id, "org \"\(o.id)\": parent") } ?? -1
            if orgs[s].parent != parent {
                orgs[s].parent = parent
                tree = true
            }
        }
        for r in roleUps {
            let perms = GraphBuilder.normalized(r.permissions)
            if let s = roleIndex[r.id] {
                rolePermissions[Int(s)] = perms
            } else {
                try validateEntityID(r.id, what: "role")
                roleIndex.insert(r.id, Int32(roleIDs.count))
                roleIDs.append(r.id)
                rolePermissions.append(perms)
                assignByRole.addKey()
            }
            roles = true
        }

        // B. Removals of things that refer to others (and of users, so their ids may be reused
        // as aliases, and of aliases, so theirs may be reused as user ids).
        for (o, r) in grantDels {
            guard let os = orgIndex[o], let rs = roleIndex[r], let g = grantIndex(os, rs) else { continue }
            removeGrant(g)
            grants = true
        }
        for (t, id) in resDels { removeResource(type: t, id: id) }
        for a in aliasDels {
            if let u = userIndex[a], userIDs[Int(u)] != a {
                userIndex.remove(a)
                aliasCount -= 1
            }
        }
        for (o, r) in entDels {
            guard let os = orgIndex[o], let rs = roleIndex[r] else { continue }
            orgEntitlements[Int(os)].removeAll { $0 == rs }
            orgState = true
        }
        for id in userDels { removeUser(id) }

        // C. Upserts of users and what refers to them.
        for u in userUps { try upsertUser(u) }
        for (a, user) in aliasUps {
            try validateEntityID(a, what: "alias")
            guard let u = userIndex[user], userIDs[Int(u)] == user else {
                throw PIAMError(.notFound, "alias \"\(a)\": no such user \"\(user)\"")
            }
            if let other = userIndex[a] {
                guard userIDs[Int(other)] != a else { throw PIAMError(.conflict, "alias \"\(a)\" is a user id") }
                userIndex.insert(a, u)
            } else {
                userIndex.insert(a, u)
                aliasCount += 1
            }
        }
        for r in resUps { try upsertResource(r) }
        for (o, r) in entUps {
            let os = try org(o, "entitlement"), rs = try role(r, "entitlement")
            if !orgEntitlements[Int(os)].contains(rs) {
                orgEntitlements[Int(os)].append(rs)
                orgEntitlements[Int(os)].sort()
            }
            orgState = true
        }
        for g in grantUps {
            let os = try org(g.org, "org grant"), rs = try role(g.role, "org grant on \"\(g.org)\"")
            if let i = grantIndex(os, rs) {
                grantIncludeSub[i] = g.includeSuborgs
                grantValidUntil[i] = g.validUntil ?? noExpiry
                if !provenance(grantProvenance[i], is: g.grantedBy, g.grantedAt) {
                    grantProvenance[i] = internProvenance(by: g.grantedBy, at: g.grantedAt, known: &known)
                }
            } else {
                grantOrg.append(os)
                grantRole.append(rs)
                grantIncludeSub.append(g.includeSuborgs)
                grantValidUntil.append(g.validUntil ?? noExpiry)
                grantProvenance.append(internProvenance(by: g.grantedBy, at: g.grantedAt, known: &known))
            }
            grants = true
        }
        for (user, list) in assignByUser { try changeAssignments(of: user, list, known: &known) }

        // D. Roles and orgs that are gone: nothing may still refer to them.
        for id in roleDels {
            guard let s = roleIndex[id] else { continue }
            let assigned = assignByRole[Int(s)].count, granted = grantRole.count { $0 == s }
            let entitled = orgEntitlements.count { $0.contains(s) }
            if assigned + granted + entitled > 0 {
                throw PIAMError(.invalidGraph, "role \"\(id)\" was removed but is still in \(assigned) assignments, \(granted) org grants, \(entitled) entitlements")
            }
            roleIndex.remove(id)
            roleIDs[Int(s)] = ""
            rolePermissions[Int(s)] = []
            roles = true
        }
        for id in orgDels {
            guard let s = orgIndex[id] else { continue }
            let i = Int(s)
            if usersByOrg[i].count > 0 || assignByScope[i].count > 0 || grantOrg.contains(s)
                || !orgEntitlements[i].isEmpty || resByOrg.contains(where: { $0[i].count > 0 }) {
                throw PIAMError(.invalidGraph, "org \"\(id)\" was removed but still has users, resources, grants or entitlements")
            }
            orgIndex.remove(id)
            orgIDs[i] = ""
            orgs[i] = OrgRec(parent: -1, pre: -1, end: -1, partnerRoot: -1, kind: .partner, status: .suspended, chainActive: false)
            tree = true
        }
        // A kind change moves the org's shared resources in or out of the shared-host lists.
        for o in kindChanged where !orgIDs[Int(o)].isEmpty {
            for t in resByOrg.indices {
                for r in resByOrg[t][Int(o)] where res[Int(r)].shared {
                    sharedHostResources[t].swapRemove(r)
                    if orgs[Int(o)].kind == .host { sharedHostResources[t].append(r) }
                }
            }
        }

        // E. Derived org- and role-sized data.
        if roles { deriveRoles() }
        if tree { try numberTree() }
        if tree || orgState || roles { deriveOrgState() }
        if tree || grants || roles { deriveMemberGrants() }
    }

    // MARK: Orgs, roles and grants

    private mutating func addOrgSlot(_ o: OrgRecord) {
        let s = Int32(orgIDs.count)
        orgIDs.append(o.id)
        orgIndex.insert(o.id, s)
        orgs.append(OrgRec(parent: -1, pre: -1, end: -1, partnerRoot: -1, kind: o.kind, status: o.status, chainActive: false))
        orgEntitlements.append([])
        usersByOrg.append(ChunkedArray())
        assignByScope.addKey()
        for t in resByOrg.indices { resByOrg[t].append(ChunkedArray()) }
        // memberGrantStart gains the slot when the member grants are derived again.
    }

    private func grantIndex(_ o: Int32, _ r: Int32) -> Int? {
        grantOrg.indices.first { grantOrg[$0] == o && grantRole[$0] == r }
    }

    /// Removes org grant `g` by moving the last grant into its place (member grants are derived
    /// again afterwards, so grant numbers may change).
    private mutating func removeGrant(_ g: Int) {
        grantOrg.swapAt(g, grantOrg.count - 1); grantOrg.removeLast()
        grantRole.swapAt(g, grantRole.count - 1); grantRole.removeLast()
        grantIncludeSub.swapAt(g, grantIncludeSub.count - 1); grantIncludeSub.removeLast()
        grantValidUntil.swapAt(g, grantValidUntil.count - 1); grantValidUntil.removeLast()
        grantProvenance.swapAt(g, grantProvenance.count - 1); grantProvenance.removeLast()
    }

    // MARK: Users and assignments

    private func userSlot(_ id: String) -> Int32? {
        guard let u = userIndex[id], userIDs[Int(u)] == id else { return nil }
        return u
    }

    private mutating func upsertUser(_ r: UserRecord) throws(PIAMError) {
        let o = try org(r.org, "user \"\(r.id)\"")
        if let u = userSlot(r.id) {
            let old = users[Int(u)].org
            if old != o {
                usersByOrg[Int(old)].swapRemove(u)
                usersByOrg[Int(o)].append(u)
                users[Int(u)].org = o
            }
            users[Int(u)].status = r.status
            users[Int(u)].validUntil = r.validUntil ?? noExpiry
            return
        }
        try validateEntityID(r.id, what: "user")
        guard userIndex[r.id] == nil else { throw PIAMError(.conflict, "user id \"\(r.id)\" is already an alias") }
        let u = Int32(userIDs.count)
        userIDs.append(r.id)
        users.append(UserRec(validUntil: r.validUntil ?? noExpiry, org: o, assignStart: 0, assignEnd: 0, status: r.status))
        userIndex.insert(r.id, u)
        usersByOrg[Int(o)].append(u)
        liveUsers += 1
    }

    private mutating func removeUser(_ id: String) {
        guard let u = userSlot(id) else { return }
        abandonAssignments(of: u)
        users[Int(u)].assignStart = 0
        users[Int(u)].assignEnd = 0
        usersByOrg[Int(users[Int(u)].org)].swapRemove(u)
        userIndex.remove(id)
        userIDs[Int(u)] = ""
        liveUsers -= 1
    }

    /// Takes user `u`'s assignment slice out of the indexes; the slots stay, abandoned.
    private mutating func abandonAssignments(of u: Int32) {
        let rec = users[Int(u)]
        for i in Int(rec.assignStart)..<Int(rec.assignEnd) {
            let h = assigns[i]
            assignUser[i] = -1
            assignByScope.remove(Int32(i), key: h.scope)
            assignByRole.remove(Int32(i), key: h.role)
            liveAssigns -= 1
        }
    }

    /// Applies a user's changed assignments: an expiry or provenance change in place; an added
    /// or removed assignment writes the user's new slice at the end and abandons the old one.
    private mutating func changeAssignments(of user: String, _ list: [(role: String, scope: String, record: AssignmentRecord?)],
                                            known: inout [Provenance: Int32]) throws(PIAMError) {
        guard let u = userSlot(user) else {
            if list.allSatisfy({ $0.record == nil }) { return }  // the user is gone, and so are they
            throw PIAMError(.notFound, "assignment: no such user \"\(user)\"")
        }
        let rec = users[Int(u)]
        var holds: [HoldRec] = (Int(rec.assignStart)..<Int(rec.assignEnd)).map { assigns[$0] }
        var provs: [Int32] = (Int(rec.assignStart)..<Int(rec.assignEnd)).map { assignProvenance[$0] }
        var reshaped = false
        for c in list {
            let r: Int32, s: Int32
            if c.record == nil {
                guard let rr = roleIndex[c.role], let ss = orgIndex[c.scope] else { continue }
                r = rr; s = ss
            } else {
                r = try role(c.role, "assignment of \"\(user)\"")
                s = try org(c.scope, "assignment of \"\(user)\"")
            }
            let existing = holds.firstIndex { $0.role == r && $0.scope == s }
            switch (existing, c.record) {
            case (let i?, let a?):
                let validUntil = a.validUntil ?? noExpiry
                if holds[i].validUntil != validUntil {
                    holds[i].validUntil = validUntil
                    if !reshaped { assigns[Int(rec.assignStart) + i].validUntil = validUntil }
                }
                if !provenance(provs[i], is: a.grantedBy, a.grantedAt) {
                    provs[i] = internProvenance(by: a.grantedBy, at: a.grantedAt, known: &known)
                    if !reshaped { assignProvenance[Int(rec.assignStart) + i] = provs[i] }
                }
            case (let i?, nil):
                holds.remove(at: i)
                provs.remove(at: i)
                reshaped = true
            case (nil, let a?):
                holds.append(HoldRec(validUntil: a.validUntil ?? noExpiry, role: r, scope: s))
                provs.append(internProvenance(by: a.grantedBy, at: a.grantedAt, known: &known))
                reshaped = true
            case (nil, nil):
                break
            }
        }
        guard reshaped else { return }
        abandonAssignments(of: u)
        let start = assigns.count
        for (h, prov) in zip(holds, provs) {
            let i = Int32(assigns.count)
            assigns.append(h)
            assignProvenance.append(prov)
            assignUser.append(u)
            assignByScope.add(i, key: h.scope)
            assignByRole.add(i, key: h.role)
        }
        liveAssigns += holds.count
        users[Int(u)].assignStart = Int32(start)
        users[Int(u)].assignEnd = Int32(assigns.count)
    }

    // MARK: Resources

    private mutating func removeResource(type: String, id: String) {
        guard let t = typeIndex[type], let r = resourceIndex[Int(t)][id] else { return }
        resourceIndex[Int(t)].remove(id)
        resByOrg[Int(t)][Int(res[Int(r)].org)].swapRemove(r)
        if res[Int(r)].shared { sharedHostResources[Int(t)].swapRemove(r) }
        resIDs[Int(r)] = ""
        liveResources -= 1
    }

    private mutating func upsertResource(_ rec: ResourceRecord) throws(PIAMError) {
        let o = try org(rec.org, "resource \(rec.type):\(rec.id)")
        var owner: Int32 = -1
        if let ow = rec.owner {
            guard let u = userIndex[ow] else { throw PIAMError(.notFound, "resource \(rec.type):\(rec.id): no such owner \"\(ow)\"") }
            owner = u
        }
        let t = internType(rec.type)
        let r: Int32
        if let existing = resourceIndex[Int(t)][rec.id] {
            r = existing
            if res[Int(r)].org != o {
                resByOrg[Int(t)][Int(res[Int(r)].org)].swapRemove(r)
                resByOrg[Int(t)][Int(o)].append(r)
            }
            if res[Int(r)].shared { sharedHostResources[Int(t)].swapRemove(r) }
            res[Int(r)] = ResRec(type: t, org: o, owner: owner, shared: rec.shared)
        } else {
            try validateEntityID(rec.id, what: "resource")
            guard !BuiltinType.isBuiltin(rec.type), Permission.isValidName(rec.type) else {
                throw PIAMError(.invalidInput, "resource \(rec.type):\(rec.id): bad type")
            }
            r = Int32(resIDs.count)
            resIDs.append(rec.id)
            res.append(ResRec(type: t, org: o, owner: owner, shared: rec.shared))
            resourceIndex[Int(t)].insert(rec.id, r)
            resByOrg[Int(t)][Int(o)].append(r)
            liveResources += 1
        }
        if rec.shared && orgs[Int(o)].kind == .host { sharedHostResources[Int(t)].append(r) }
    }
}

// The org- and role-sized derived data of a graph, computed from its source fields. Both the
// builder and `applying(_:)` use these: a full build computes them once; an applied change
// recomputes only what it invalidated. Each is linear in orgs, org grants or role
// permissions — never in users, assignments or resources.

extension AccessGraph.Parts {
    // The context is an autoclosure: building an error message per row would cost more than
    // the lookup itself on a million-row load. (Used by the builder and by `apply`.)
    func org(_ id: String, _ context: @autoclosure () -> String) throws(PIAMError) -> Int32 {
        guard let o = orgIndex[id] else { throw PIAMError(.notFound, "\(context()): no such org \"\(id)\"") }
        return o
    }

    func role(_ id: String, _ context: @autoclosure () -> String) throws(PIAMError) -> Int32 {
        guard let r = roleIndex[id] else { throw PIAMError(.notFound, "\(context()): no such role \"\(id)\"") }
        return r
    }

    /// Interns a resource type, growing every per-type table.
    mutating func internType(_ t: String) -> Int32 {
        if let i = typeIndex[t] { return i }
        let i = Int32(typeNames.count)
        typeIndex.insert(t, i)
        typeNames.append(t)
        typeVocabulary.append([])
        resourceIndex.append(IDTable())
        resByOrg.append([ChunkedArray<Int32>](repeating: ChunkedArray(), count: orgIDs.count))
        sharedHostResources.append(ChunkedArray())
        return i
    }

    mutating func internAction(_ a: String) -> Int32 {
        if let i = actionIndex[a] { return i }
        let i = Int32(actionNames.count)
        actionIndex.insert(a, i)
        actionNames.append(a)
        return i
    }

    /// Numbers the live orgs in pre-order (children by id) from their parents and checks the
    /// tree: one root, of kind host; every org connected to it; no host org below a partner org.
    mutating func numberTree() throws(PIAMError) {
        let n = orgIDs.count
        var children = [[Int32]](repeating: [], count: n)
        var roots: [Int32] = []
        var live = 0
        for o in 0..<n where !orgIDs[o].isEmpty {
            live += 1
            let p = orgs[o].parent
            if p < 0 {
                roots.append(Int32(o))
            } else {
                guard Int(p) < n, !orgIDs[Int(p)].isEmpty else {
                    throw PIAMError(.notFound, "org \"\(orgIDs[o])\": its parent org does not exist")
                }
                if orgs[o].kind == .host && orgs[Int(p)].kind == .partner {
                    throw PIAMError(.invalidGraph, "host org \"\(orgIDs[o])\" may not lie below partner org \"\(orgIDs[Int(p)])\"")
                }
                children[Int(p)].append(Int32(o))
            }
        }
        guard live > 0 else { throw PIAMError(.invalidGraph, "the graph has no orgs: it needs a root host org") }
        guard roots.count == 1 else {
            throw PIAMError(.invalidGraph, roots.isEmpty
                ? "the graph has no root org (every org has a parent: a cycle)"
                : "the graph has \(roots.count) root orgs (\(roots.prefix(3).map { orgIDs[Int($0)] }.joined(separator: ", "))); exactly one is allowed")
        }
        guard orgs[Int(roots[0])].kind == .host else {
            throw PIAMError(.invalidGraph, "the root org \"\(orgIDs[Int(roots[0])])\" must be of kind host")
        }
        for i in children.indices where children[i].count > 1 { children[i].sort { orgIDs[Int($0)] < orgIDs[Int($1)] } }
        for o in 0..<n { orgs[o].pre = -1 }
        var order: [Int32] = []
        order.reserveCapacity(live)
        var stack: [(org: Int32, next: Int)] = [(roots[0], 0)]
        orgs[Int(roots[0])].pre = 0
        order.append(roots[0])
        while let top = stack.last {
            let kids = children[Int(top.org)]
            if top.next < kids.count {
                stack[stack.count - 1].next += 1
                let c = kids[top.next]
                orgs[Int(c)].pre = Int32(order.count)
                order.append(c)
                stack.append((c, 0))
            } else {
                orgs[Int(top.org)].end = Int32(order.count)
                stack.removeLast()
            }
        }
        guard order.count == live else {
            let slot: Int? = (0..<n).first { !orgIDs[$0].isEmpty && orgs[$0].pre < 0 }
            let lost: String = slot.map { orgIDs[$0] } ?? "?"
            throw PIAMError(.invalidGraph, "org \"\(lost)\" is not connected to the root (a cycle in parents)")
        }
        orgByPre = order
    }

    /// Status chains, partner roots and ceilings, parents before children (pre-order).
    mutating func deriveOrgState() {
        let rw = max(1, (roleIDs.count + 63) / 64)
        roleWords = rw
        var ceiling = [UInt64](repeating: 0, count: orgIDs.count * rw)
        for o in orgByPre {
            let i = Int(o)
            let p = Int(orgs[i].parent)
            for r in orgEntitlements[i] { ceiling[i * rw + Int(r >> 6)] |= 1 << UInt64(r & 63) }
            let active = orgs[i].status == .active
            if p < 0 {
                orgs[i].chainActive = active
            } else {
                orgs[i].chainActive = active && orgs[p].chainActive
                for w in 0..<rw { ceiling[i * rw + w] |= ceiling[p * rw + w] }
            }
            orgs[i].partnerRoot = orgs[i].kind != .partner ? -1
                : (p >= 0 && orgs[p].kind == .partner) ? orgs[p].partnerRoot : o
        }
        orgCeiling = ceiling
    }

    /// Per org, the grants its members hold: its own, then every ancestor's that includes
    /// sub-orgs from the nearest up. Each org's own grants are ordered by role id.
    mutating func deriveMemberGrants() {
        let n = orgIDs.count
        var own = [[Int32]](repeating: [], count: n)
        for g in grantOrg.indices { own[Int(grantOrg[g])].append(Int32(g)) }
        for o in own.indices where own[o].count > 1 { own[o].sort { roleIDs[Int(grantRole[Int($0)])] < roleIDs[Int(grantRole[Int($1)])] } }
        func member(_ g: Int32) -> MemberGrant { MemberGrant(validUntil: grantValidUntil[Int(g)], grant: g, role: grantRole[Int(g)]) }
        var inherited = [[MemberGrant]](repeating: [], count: n)  // from strict ancestors
        for o in orgByPre {
            let p = Int(orgs[Int(o)].parent)
            if p >= 0 { inherited[Int(o)] = own[p].filter { grantIncludeSub[Int($0)] }.map(member) + inherited[p] }
        }
        var start: [Int32] = [0]
        start.reserveCapacity(n + 1)
        var list: [MemberGrant] = []
        for o in 0..<n {
            list += own[o].map(member)
            list += inherited[o]
            start.append(Int32(list.count))
        }
        memberGrantStart = start
        memberGrants = list
    }

    /// Interned permissions, type masks and every type's vocabulary, from the roles'
    /// permissions (plus the built-in actions of `user`, `org` and `role`).
    mutating func deriveRoles() {
        var start: [Int32] = [0]
        var list: [PermRec] = []
        var masks: [UInt64] = []
        var vocab = [Set<Int32>](repeating: [], count: typeNames.count)
        for a in BuiltinType.userActions { vocab[0].insert(internAction(a)) }
        for a in BuiltinType.orgActions { vocab[1].insert(internAction(a)) }
        for a in BuiltinType.roleActions { vocab[2].insert(internAction(a)) }
        for r in rolePermissions.indices {
            var mask: UInt64 = 0
            for p in rolePermissions[r] {
                let t = internType(p.type)
                while vocab.count < typeNames.count { vocab.append([]) }
                var a: Int32 = -1
                if p.action != Permission.anyAction {
                    a = internAction(p.action)
                    vocab[Int(t)].insert(a)
                }
                list.append(PermRec(type: t, action: a, owner: p.ownerOnly))
                mask |= 1 &<< UInt64(truncatingIfNeeded: t & 63)
            }
            start.append(Int32(list.count))
            masks.append(mask)
        }
        rolePermStart = start
        perms = list
        roleTypeMask = masks
        typeVocabulary = vocab.map { $0.sorted { actionNames[Int($0)] < actionNames[Int($1)] } }
    }
}

// MARK: Provenance

extension AccessGraph.Parts {
    /// The provenance index of (`grantedBy`, `grantedAt`): 0 when neither is recorded, else the
    /// pair `known` already holds, else a new pair (interning a new granter id).
    mutating func internProvenance(by grantedBy: String?, at grantedAt: Timestamp?, known: inout [Provenance: Int32]) -> Int32 {
        if grantedBy == nil && grantedAt == nil { return 0 }
        var granter: Int32 = -1
        if let grantedBy {
            if let g = granterIndex[grantedBy] {
                granter = g
            } else {
                granter = Int32(granterIDs.count)
                granterIDs.append(grantedBy)
                granterIndex[grantedBy] = granter
            }
        }
        let pair = Provenance(grantedAt: grantedAt ?? Provenance.unknownTime, granter: granter)
        if let i = known[pair] { return i }
        let i = Int32(provenance.count)
        provenance.append(pair)
        known[pair] = i
        return i
    }

    /// Whether provenance `i` is (`grantedBy`, `grantedAt`).
    func provenance(_ i: Int32, is grantedBy: String?, _ grantedAt: Timestamp?) -> Bool {
        let p = provenance[Int(i)]
        return p.grantedAt == (grantedAt ?? Provenance.unknownTime)
            && (p.granter < 0 ? grantedBy == nil : granterIDs[Int(p.granter)] == grantedBy)
    }
}

extension AccessGraph {
    /// Provenance `i` as (`granted_by`, `granted_at`), each `nil` when not recorded.
    func provenanceFields(_ i: Int32) -> (grantedBy: String?, grantedAt: Timestamp?) {
        let p = provenance[Int(i)]
        return (p.granter < 0 ? nil : granterIDs[Int(p.granter)], p.grantedAt == Provenance.unknownTime ? nil : p.grantedAt)
    }
}

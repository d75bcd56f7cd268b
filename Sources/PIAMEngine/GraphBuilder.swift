/// Builds an ``AccessGraph`` from records, streaming: a loader hands over rows as it reads them
/// and the builder keeps only compact interned arrays, never a second copy of the strings.
///
/// Add records in this order (each step may be empty):
/// 1. orgs (any order among themselves) and roles,
/// 2. entitlements, users and their aliases,
/// 3. resources, assignments and org grants.
///
/// A reference to an entity that has not been added throws ``PIAMError`` with code
/// ``PIAMError/Code/notFound``; an invalid tree (no root, two roots, a cycle, a host org below a
/// partner org) throws ``PIAMError/Code/invalidGraph`` when the orgs are sealed, which happens
/// on the first call that needs org numbers.
public struct GraphBuilder: ~Copyable {
    // Orgs are buffered until sealed, because they may arrive in any order.
    private var pendingOrgs: [OrgRecord] = []
    private var sealedOrgs = false

    private var typeIndex = IDTable()
    private var typeNames: [String] = [BuiltinType.user, BuiltinType.org, BuiltinType.role]
    private var actionIndex = IDTable(capacity: 32)
    private var actionNames: [String] = []
    private var vocab: [Set<Int32>] = [[], [], []]

    private var orgIDs: [String] = []
    private var orgIndex = IDTable()
    private var orgParent: [Int32] = []
    private var orgEnd: [Int32] = []
    private var orgKind: [OrgKind] = []
    private var orgStatus: [OrgStatus] = []

    private var roleIDs: [String] = []
    private var roleIndex = IDTable()
    private var rolePermStart: [Int32] = [0]
    private var permType: [Int32] = []
    private var permAction: [Int32] = []
    private var permOwner: [Bool] = []
    private var rolePermissions: [[Permission]] = []

    private var entitlements: [(org: Int32, role: Int32)] = []

    private var userIDs: [String] = []
    private var userIndex = IDTable()
    private var userOrg: [Int32] = []
    private var userStatus: [UserStatus] = []
    private var userValidUntil: [Timestamp] = []
    private var aliasCount = 0

    private var aUser: [Int32] = []
    private var aRole: [Int32] = []
    private var aScope: [Int32] = []
    private var aValid: [Timestamp] = []

    private var gOrg: [Int32] = []
    private var gRole: [Int32] = []
    private var gSub: [Bool] = []
    private var gValid: [Timestamp] = []

    private var resourceIndex: [IDTable] = [IDTable(), IDTable(), IDTable()]
    private var resType: [Int32] = []
    private var resIDs: [String] = []
    private var resOrg: [Int32] = []
    private var resOwner: [Int32] = []
    private var resShared: [Bool] = []

    public init() {
        typeIndex.insert(BuiltinType.user, 0)
        typeIndex.insert(BuiltinType.org, 1)
        typeIndex.insert(BuiltinType.role, 2)
        for a in BuiltinType.userActions { vocab[0].insert(internAction(a)) }
        for a in BuiltinType.orgActions { vocab[1].insert(internAction(a)) }
    }

    /// Reserves space for large graphs (optional; a loader that knows its counts calls it).
    public mutating func reserve(users: Int, aliases: Int = 0, assignments: Int, resources: Int) {
        userIDs.reserveCapacity(users)
        userIndex.reserve(users + aliases)
        userOrg.reserveCapacity(users)
        userStatus.reserveCapacity(users)
        userValidUntil.reserveCapacity(users)
        aUser.reserveCapacity(assignments)
        aRole.reserveCapacity(assignments)
        aScope.reserveCapacity(assignments)
        aValid.reserveCapacity(assignments)
        resType.reserveCapacity(resources)
        resIDs.reserveCapacity(resources)
        resOrg.reserveCapacity(resources)
        resOwner.reserveCapacity(resources)
        resShared.reserveCapacity(resources)
    }

    // MARK: Adding records

    public mutating func addOrg(_ org: OrgRecord) throws(PIAMError) {
        guard !sealedOrgs else {
            throw PIAMError(.invalidInput, "org \"\(org.id)\" added after users, entitlements or grants")
        }
        try validateEntityID(org.id, what: "org")
        pendingOrgs.append(org)
    }

    public mutating func addRole(_ role: RoleRecord) throws(PIAMError) {
        try validateEntityID(role.id, what: "role")
        guard roleIndex[role.id] == nil else { throw PIAMError(.conflict, "duplicate role \"\(role.id)\"") }
        roleIndex.insert(role.id, Int32(roleIDs.count))
        roleIDs.append(role.id)
        var seen = Set<Permission>()
        var perms: [Permission] = []
        for p in role.permissions where seen.insert(p).inserted { perms.append(p) }
        perms.sort()
        for p in perms {
            let t = internType(p.type)
            permType.append(t)
            if p.action == Permission.anyAction {
                permAction.append(-1)
            } else {
                let a = internAction(p.action)
                permAction.append(a)
                vocab[Int(t)].insert(a)
            }
            permOwner.append(p.ownerOnly)
        }
        rolePermissions.append(perms)
        rolePermStart.append(Int32(permType.count))
    }

    public mutating func addEntitlement(_ e: EntitlementRecord) throws(PIAMError) {
        try sealOrgs()
        entitlements.append((try org(e.org, "entitlement"), try role(e.role, "entitlement")))
    }

    public mutating func addUser(_ user: UserRecord) throws(PIAMError) {
        try sealOrgs()
        try validateEntityID(user.id, what: "user")
        let o = try org(user.org, "user \"\(user.id)\"")
        let u = Int32(userIDs.count)
        if let other = userIndex.insert(user.id, u) {
            userIndex.insert(user.id, other)
            throw PIAMError(.conflict, "user id \"\(user.id)\" is already a user id or alias")
        }
        userIDs.append(user.id)
        userOrg.append(o)
        userStatus.append(user.status)
        userValidUntil.append(user.validUntil ?? noExpiry)
        for alias in user.aliases { try addAlias(user: user.id, alias: alias) }
    }

    public mutating func addAlias(user: String, alias: String) throws(PIAMError) {
        try validateEntityID(alias, what: "alias")
        guard let u = userIndex[user], userIDs[Int(u)] == user else {
            throw PIAMError(.notFound, "alias \"\(alias)\": no such user \"\(user)\"")
        }
        if let other = userIndex[alias] {
            if other == u && userIDs[Int(u)] != alias { return }  // the same alias twice
            throw PIAMError(.conflict, "alias \"\(alias)\" is already a user id or alias")
        }
        userIndex.insert(alias, u)
        aliasCount += 1
    }

    public mutating func addResource(_ r: ResourceRecord) throws(PIAMError) {
        try sealOrgs()
        try validateEntityID(r.id, what: "resource")
        guard !BuiltinType.isBuiltin(r.type) else {
            throw PIAMError(.invalidInput, "resource \(r.type):\(r.id): users, orgs and roles are resources implicitly")
        }
        guard Permission.isValidName(r.type) else {
            throw PIAMError(.invalidInput, "resource \(r.type):\(r.id): bad type (letters, digits, _ - . only)")
        }
        let t = internType(r.type)
        let o = try org(r.org, "resource \(r.type):\(r.id)")
        var owner: Int32 = -1
        if let ow = r.owner {
            guard let u = userIndex[ow] else {
                throw PIAMError(.notFound, "resource \(r.type):\(r.id): no such owner \"\(ow)\"")
            }
            owner = u
        }
        let idx = Int32(resIDs.count)
        if resourceIndex[Int(t)].insert(r.id, idx) != nil {
            throw PIAMError(.conflict, "duplicate resource \(r.type):\(r.id)")
        }
        resType.append(t)
        resIDs.append(r.id)
        resOrg.append(o)
        resOwner.append(owner)
        resShared.append(r.shared)
    }

    public mutating func addAssignment(_ a: AssignmentRecord) throws(PIAMError) {
        try sealOrgs()
        guard let u = userIndex[a.user], userIDs[Int(u)] == a.user else {
            throw PIAMError(.notFound, "assignment: no such user \"\(a.user)\"")
        }
        aUser.append(u)
        aRole.append(try role(a.role, "assignment of \"\(a.user)\""))
        aScope.append(try a.scope.map { s throws(PIAMError) in try org(s, "assignment of \"\(a.user)\"") } ?? userOrg[Int(u)])
        aValid.append(a.validUntil ?? noExpiry)
    }

    public mutating func addOrgGrant(_ g: OrgGrantRecord) throws(PIAMError) {
        try sealOrgs()
        gOrg.append(try org(g.org, "org grant"))
        gRole.append(try role(g.role, "org grant on \"\(g.org)\""))
        gSub.append(g.includeSuborgs)
        gValid.append(g.validUntil ?? noExpiry)
    }

    /// Builds a graph from plain records.
    public static func build(_ data: GraphData) throws(PIAMError) -> AccessGraph {
        var b = GraphBuilder()
        for o in data.orgs { try b.addOrg(o) }
        for r in data.roles { try b.addRole(r) }
        for e in data.entitlements { try b.addEntitlement(e) }
        b.reserve(users: data.users.count, assignments: data.assignments.count, resources: data.resources.count)
        for u in data.users { try b.addUser(u) }
        for r in data.resources { try b.addResource(r) }
        for a in data.assignments { try b.addAssignment(a) }
        for g in data.orgGrants { try b.addOrgGrant(g) }
        return try b.build()
    }

    // MARK: Building

    /// Finishes the graph.
    public consuming func build() throws(PIAMError) -> AccessGraph {
        try sealOrgs()
        let orgCount = orgIDs.count
        let roleCount = roleIDs.count
        let roleWords = max(1, (roleCount + 63) / 64)

        // Status chain, partner roots, ceilings: parents come before children in pre-order.
        var chainActive = [Bool](repeating: false, count: orgCount)
        var partnerRoot = [Int32](repeating: -1, count: orgCount)
        var ceiling = [UInt64](repeating: 0, count: orgCount * roleWords)
        var orgEnt = [[Int32]](repeating: [], count: orgCount)
        for (o, r) in entitlements {
            ceiling[Int(o) * roleWords + Int(r >> 6)] |= 1 << UInt64(r & 63)
            if !orgEnt[Int(o)].contains(r) { orgEnt[Int(o)].append(r) }
        }
        for i in 0..<orgCount {
            let p = Int(orgParent[i])
            let active = orgStatus[i] == .active
            if p < 0 {
                chainActive[i] = active
            } else {
                chainActive[i] = active && chainActive[p]
                for w in 0..<roleWords { ceiling[i * roleWords + w] |= ceiling[p * roleWords + w] }
            }
            if orgKind[i] == .partner {
                partnerRoot[i] = (p >= 0 && orgKind[p] == .partner) ? partnerRoot[p] : Int32(i)
            }
        }
        for i in 0..<orgCount { orgEnt[i].sort() }

        // Org grants grouped by org; then, per org, the grants its members hold: its own, plus
        // every ancestor's grant that includes sub-orgs (parents come first in pre-order).
        let gPerm = Self.groupPermutation(keys: gOrg, buckets: orgCount)
        let grantRole = gPerm.order.map { gRole[Int($0)] }
        let grantSub = gPerm.order.map { gSub[Int($0)] }
        let grantValid = gPerm.order.map { gValid[Int($0)] }
        var inherited = [[MemberGrant]](repeating: [], count: orgCount)  // from strict ancestors
        var memberGrantStart: [Int32] = [0]
        var memberGrants: [MemberGrant] = []
        memberGrantStart.reserveCapacity(orgCount + 1)
        for i in 0..<orgCount {
            let own = (Int(gPerm.start[i])..<Int(gPerm.start[i + 1])).map {
                MemberGrant(validUntil: grantValid[$0], grant: Int32($0), role: grantRole[$0])
            }
            let p = Int(orgParent[i])
            if p >= 0 {
                inherited[i] = inherited[p] + (Int(gPerm.start[p])..<Int(gPerm.start[p + 1])).filter { grantSub[$0] }.map {
                    MemberGrant(validUntil: grantValid[$0], grant: Int32($0), role: grantRole[$0])
                }
            }
            memberGrants += own
            memberGrants += inherited[i]
            memberGrantStart.append(Int32(memberGrants.count))
        }
        inherited = []

        // Assignments grouped by user, then indexes by scope and by role.
        let aPerm = Self.groupPermutation(keys: aUser, buckets: userIDs.count)
        let assignUser = aPerm.order.map { aUser[Int($0)] }
        let assignRole = aPerm.order.map { aRole[Int($0)] }
        let assignScope = aPerm.order.map { aScope[Int($0)] }
        let assigns = aPerm.order.map { HoldRec(validUntil: aValid[Int($0)], role: aRole[Int($0)], scope: aScope[Int($0)]) }
        aUser = []; aRole = []; aScope = []; aValid = []
        let byScope = Self.groupPermutation(keys: assignScope, buckets: orgCount)
        let byRole = Self.groupPermutation(keys: assignRole, buckets: roleCount)
        let byOrg = Self.groupPermutation(keys: userOrg, buckets: orgCount)
        var users: [UserRec] = []
        users.reserveCapacity(userIDs.count)
        for u in 0..<userIDs.count {
            users.append(UserRec(validUntil: userValidUntil[u], org: userOrg[u], assignStart: aPerm.start[u],
                                 assignEnd: aPerm.start[u + 1], status: userStatus[u]))
        }
        userOrg = []; userValidUntil = []; userStatus = []
        var orgs: [OrgRec] = []
        orgs.reserveCapacity(orgCount)
        for i in 0..<orgCount {
            orgs.append(OrgRec(parent: orgParent[i], end: orgEnd[i], partnerRoot: partnerRoot[i], kind: orgKind[i],
                               status: orgStatus[i], chainActive: chainActive[i]))
        }

        // Resources per type sorted by location; shared host resources per type.
        let typeCount = typeNames.count
        var resByType = [[Int32]](repeating: [], count: typeCount)
        var shared = [[Int32]](repeating: [], count: typeCount)
        let resPerm = Self.groupPermutation(keys: resOrg, buckets: orgCount)
        for r in resPerm.order {
            resByType[Int(resType[Int(r)])].append(r)
            if resShared[Int(r)] && orgKind[Int(resOrg[Int(r)])] == .host { shared[Int(resType[Int(r)])].append(r) }
        }
        while resourceIndex.count < typeCount { resourceIndex.append(IDTable()) }
        while vocab.count < typeCount { vocab.append([]) }
        let res = (0..<resIDs.count).map { ResRec(type: resType[$0], org: resOrg[$0], owner: resOwner[$0], shared: resShared[$0]) }

        var perms: [PermRec] = []
        for p in 0..<permType.count { perms.append(PermRec(type: permType[p], action: permAction[p], owner: permOwner[p])) }
        var roleTypeMask = [UInt64](repeating: 0, count: roleCount)
        for r in 0..<roleCount {
            for p in Int(rolePermStart[r])..<Int(rolePermStart[r + 1]) {
                roleTypeMask[r] |= 1 &<< UInt64(truncatingIfNeeded: permType[p] & 63)
            }
        }

        let compiled = Compiled(
            typeIndex: typeIndex, typeNames: typeNames, actionIndex: actionIndex, actionNames: actionNames,
            typeVocabulary: vocab.map { $0.sorted { actionNames[Int($0)] < actionNames[Int($1)] } },
            orgIDs: orgIDs, orgIndex: orgIndex, orgs: orgs,
            orgCeiling: ceiling, roleWords: roleWords,
            orgGrantStart: gPerm.start,
            grantRole: grantRole, grantIncludeSub: grantSub, grantValidUntil: grantValid,
            memberGrantStart: memberGrantStart, memberGrants: memberGrants,
            usersByOrgStart: byOrg.start, usersByOrg: byOrg.order, orgEntitlements: orgEnt,
            roleIDs: roleIDs, roleIndex: roleIndex, rolePermStart: rolePermStart,
            perms: perms, roleTypeMask: roleTypeMask,
            rolePermissions: rolePermissions,
            userIDs: userIDs, userIndex: userIndex, users: users, assigns: assigns,
            assignUser: assignUser,
            assignByScopeStart: byScope.start, assignByScope: byScope.order,
            assignByRoleStart: byRole.start, assignByRole: byRole.order, aliasCount: aliasCount,
            resourceIndex: resourceIndex, resIDs: resIDs, res: res,
            resByTypeAndOrg: resByType, sharedHostResources: shared)
        return AccessGraph(compiled)
    }

    // MARK: Internals

    struct Compiled {
        var typeIndex: IDTable
        var typeNames: [String]
        var actionIndex: IDTable
        var actionNames: [String]
        var typeVocabulary: [[Int32]]
        var orgIDs: [String]
        var orgIndex: IDTable
        var orgs: [OrgRec]
        var orgCeiling: [UInt64]
        var roleWords: Int
        var orgGrantStart: [Int32]
        var grantRole: [Int32]
        var grantIncludeSub: [Bool]
        var grantValidUntil: [Timestamp]
        var memberGrantStart: [Int32]
        var memberGrants: [MemberGrant]
        var usersByOrgStart: [Int32]
        var usersByOrg: [Int32]
        var orgEntitlements: [[Int32]]
        var roleIDs: [String]
        var roleIndex: IDTable
        var rolePermStart: [Int32]
        var perms: [PermRec]
        var roleTypeMask: [UInt64]
        var rolePermissions: [[Permission]]
        var userIDs: [String]
        var userIndex: IDTable
        var users: [UserRec]
        var assigns: [HoldRec]
        var assignUser: [Int32]
        var assignByScopeStart: [Int32]
        var assignByScope: [Int32]
        var assignByRoleStart: [Int32]
        var assignByRole: [Int32]
        var aliasCount: Int
        var resourceIndex: [IDTable]
        var resIDs: [String]
        var res: [ResRec]
        var resByTypeAndOrg: [[Int32]]
        var sharedHostResources: [[Int32]]
    }

    /// A stable counting sort: `order` lists item indices grouped by key, `start[k] ..< start[k+1]`
    /// is bucket `k`'s slice of `order`.
    static func groupPermutation(keys: [Int32], buckets: Int) -> (start: [Int32], order: [Int32]) {
        var start = [Int32](repeating: 0, count: buckets + 1)
        for k in keys { start[Int(k) + 1] += 1 }
        for i in 0..<buckets { start[i + 1] += start[i] }
        var next = start
        var order = [Int32](repeating: 0, count: keys.count)
        for (i, k) in keys.enumerated() {
            order[Int(next[Int(k)])] = Int32(i)
            next[Int(k)] += 1
        }
        return (start, order)
    }

    private mutating func internType(_ t: String) -> Int32 {
        if let i = typeIndex[t] { return i }
        let i = Int32(typeNames.count)
        typeIndex.insert(t, i)
        typeNames.append(t)
        vocab.append([])
        resourceIndex.append(IDTable())
        return i
    }

    private mutating func internAction(_ a: String) -> Int32 {
        if let i = actionIndex[a] { return i }
        let i = Int32(actionNames.count)
        actionIndex.insert(a, i)
        actionNames.append(a)
        return i
    }

    // The context is an autoclosure: building an error message per row would cost more than
    // the lookup itself on a million-row load.
    private func org(_ id: String, _ context: @autoclosure () -> String) throws(PIAMError) -> Int32 {
        guard let o = orgIndex[id] else { throw PIAMError(.notFound, "\(context()): no such org \"\(id)\"") }
        return o
    }

    private func role(_ id: String, _ context: @autoclosure () -> String) throws(PIAMError) -> Int32 {
        guard let r = roleIndex[id] else { throw PIAMError(.notFound, "\(context()): no such role \"\(id)\"") }
        return r
    }

    /// Numbers the buffered orgs in pre-order (children by id) and checks the tree.
    private mutating func sealOrgs() throws(PIAMError) {
        if sealedOrgs { return }
        sealedOrgs = true
        let orgs = pendingOrgs
        pendingOrgs = []
        var byID: [String: Int] = [:]
        byID.reserveCapacity(orgs.count)
        for (i, o) in orgs.enumerated() where byID.updateValue(i, forKey: o.id) != nil {
            throw PIAMError(.conflict, "duplicate org \"\(o.id)\"")
        }
        var children = [[Int]](repeating: [], count: orgs.count)
        var roots: [Int] = []
        for (i, o) in orgs.enumerated() {
            if let p = o.parent {
                guard let pi = byID[p] else { throw PIAMError(.notFound, "org \"\(o.id)\": no such parent org \"\(p)\"") }
                children[pi].append(i)
            } else {
                roots.append(i)
            }
        }
        guard !orgs.isEmpty else { throw PIAMError(.invalidGraph, "the graph has no orgs: it needs a root host org") }
        guard roots.count == 1 else {
            throw PIAMError(.invalidGraph, roots.isEmpty
                ? "the graph has no root org (every org has a parent: a cycle)"
                : "the graph has \(roots.count) root orgs (\(roots.prefix(3).map { orgs[$0].id }.joined(separator: ", "))); exactly one is allowed")
        }
        guard orgs[roots[0]].kind == .host else {
            throw PIAMError(.invalidGraph, "the root org \"\(orgs[roots[0]].id)\" must be of kind host")
        }
        for i in children.indices { children[i].sort { orgs[$0].id < orgs[$1].id } }

        let n = orgs.count
        orgIDs.reserveCapacity(n)
        orgIndex.reserve(n)
        orgParent = [Int32](repeating: -1, count: n)
        orgEnd = [Int32](repeating: 0, count: n)
        // Iterative DFS assigning pre-order numbers.
        var stack: [(rec: Int, parentPre: Int32, childPos: Int)] = [(roots[0], -1, 0)]
        var preOf = [Int32](repeating: -1, count: n)
        preOf[roots[0]] = 0
        orgIDs.append(orgs[roots[0]].id)
        orgKind.append(orgs[roots[0]].kind)
        orgStatus.append(orgs[roots[0]].status)
        while !stack.isEmpty {
            let top = stack.count - 1
            let rec = stack[top].rec
            if stack[top].childPos < children[rec].count {
                let c = children[rec][stack[top].childPos]
                stack[top].childPos += 1
                let pre = Int32(orgIDs.count)
                preOf[c] = pre
                orgParent[Int(pre)] = preOf[rec]
                if orgs[c].kind == .host && orgs[rec].kind == .partner {
                    throw PIAMError(.invalidGraph, "host org \"\(orgs[c].id)\" may not lie below partner org \"\(orgs[rec].id)\"")
                }
                orgIDs.append(orgs[c].id)
                orgKind.append(orgs[c].kind)
                orgStatus.append(orgs[c].status)
                stack.append((c, preOf[rec], 0))
            } else {
                orgEnd[Int(preOf[rec])] = Int32(orgIDs.count)
                stack.removeLast()
            }
        }
        if orgIDs.count != n {
            let lost = orgs.indices.first { preOf[$0] < 0 }.map { orgs[$0].id } ?? "?"
            throw PIAMError(.invalidGraph, "org \"\(lost)\" is not connected to the root (a cycle in parents)")
        }
        for (i, id) in orgIDs.enumerated() { orgIndex.insert(id, Int32(i)) }
    }
}

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

    /// The graph being built: interning, orgs, roles, org grants and the id tables are filled
    /// in place; the user- and resource-sized parts are gathered below and grouped at the end.
    private var p = AccessGraph.Parts()

    private var entitlements: [(org: Int32, role: Int32)] = []

    private var userIDs: [String] = []
    private var userOrg: [Int32] = []
    private var userStatus: [UserStatus] = []
    private var userValidUntil: [Timestamp] = []

    private var aUser: [Int32] = []
    private var aRole: [Int32] = []
    private var aScope: [Int32] = []
    private var aValid: [Timestamp] = []
    private var aProv: [Int32] = []
    /// Provenance pairs interned so far, and the last one asked for (a bulk import's rows
    /// arrive together and share one: the lookup is then a comparison).
    private var knownProvenance: [Provenance: Int32] = [:]
    private var lastProvenance: (by: String?, at: Timestamp?, index: Int32) = (nil, nil, 0)

    private var resType: [Int32] = []
    private var resIDs: [String] = []
    private var resOrg: [Int32] = []
    private var resOwner: [Int32] = []
    private var resShared: [Bool] = []

    public init() {
        p.actionIndex = IDTable(capacity: 32)
        for t in [BuiltinType.user, BuiltinType.org, BuiltinType.role] { _ = p.internType(t) }
        for a in BuiltinType.userActions { _ = p.internAction(a) }
        for a in BuiltinType.orgActions { _ = p.internAction(a) }
        for a in BuiltinType.roleActions { _ = p.internAction(a) }
    }

    /// Reserves space for large graphs (optional; a loader that knows its counts calls it).
    public mutating func reserve(users: Int, aliases: Int = 0, assignments: Int, resources: Int) {
        userIDs.reserveCapacity(users)
        p.userIndex.reserve(users + aliases)
        userOrg.reserveCapacity(users)
        userStatus.reserveCapacity(users)
        userValidUntil.reserveCapacity(users)
        aUser.reserveCapacity(assignments)
        aRole.reserveCapacity(assignments)
        aScope.reserveCapacity(assignments)
        aValid.reserveCapacity(assignments)
        aProv.reserveCapacity(assignments)
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
        guard p.roleIndex[role.id] == nil else { throw PIAMError(.conflict, "duplicate role \"\(role.id)\"") }
        p.roleIndex.insert(role.id, Int32(p.roleIDs.count))
        p.roleIDs.append(role.id)
        p.rolePermissions.append(Self.normalized(role.permissions))
    }

    /// A role's permissions without repeats, sorted (the order every graph keeps them in).
    static func normalized(_ permissions: [Permission]) -> [Permission] {
        var seen = Set<Permission>()
        return permissions.filter { seen.insert($0).inserted }.sorted()
    }

    public mutating func addEntitlement(_ e: EntitlementRecord) throws(PIAMError) {
        try sealOrgs()
        entitlements.append((try p.org(e.org, "entitlement"), try p.role(e.role, "entitlement")))
    }

    public mutating func addUser(_ user: UserRecord) throws(PIAMError) {
        try sealOrgs()
        try validateEntityID(user.id, what: "user")
        let o = try p.org(user.org, "user \"\(user.id)\"")
        let u = Int32(userIDs.count)
        if let other = p.userIndex.insert(user.id, u) {
            p.userIndex.insert(user.id, other)
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
        guard let u = p.userIndex[user], userIDs[Int(u)] == user else {
            throw PIAMError(.notFound, "alias \"\(alias)\": no such user \"\(user)\"")
        }
        if let other = p.userIndex[alias] {
            if other == u && userIDs[Int(u)] != alias { return }  // the same alias twice
            throw PIAMError(.conflict, "alias \"\(alias)\" is already a user id or alias")
        }
        p.userIndex.insert(alias, u)
        p.aliasCount += 1
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
        let t = p.internType(r.type)
        let o = try p.org(r.org, "resource \(r.type):\(r.id)")
        var owner: Int32 = -1
        if let ow = r.owner {
            guard let u = p.userIndex[ow] else {
                throw PIAMError(.notFound, "resource \(r.type):\(r.id): no such owner \"\(ow)\"")
            }
            owner = u
        }
        let idx = Int32(resIDs.count)
        if p.resourceIndex[Int(t)].insert(r.id, idx) != nil {
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
        guard let u = p.userIndex[a.user], userIDs[Int(u)] == a.user else {
            throw PIAMError(.notFound, "assignment: no such user \"\(a.user)\"")
        }
        aUser.append(u)
        aRole.append(try p.role(a.role, "assignment of \"\(a.user)\""))
        aScope.append(try a.scope.map { s throws(PIAMError) in try p.org(s, "assignment of \"\(a.user)\"") } ?? userOrg[Int(u)])
        aValid.append(a.validUntil ?? noExpiry)
        aProv.append(provenance(by: a.grantedBy, at: a.grantedAt))
    }

    private mutating func provenance(by: String?, at: Timestamp?) -> Int32 {
        if by == nil && at == nil { return 0 }
        if by == lastProvenance.by && at == lastProvenance.at { return lastProvenance.index }
        let i = p.internProvenance(by: by, at: at, known: &knownProvenance)
        lastProvenance = (by, at, i)
        return i
    }

    public mutating func addOrgGrant(_ g: OrgGrantRecord) throws(PIAMError) {
        try sealOrgs()
        p.grantOrg.append(try p.org(g.org, "org grant"))
        p.grantRole.append(try p.role(g.role, "org grant on \"\(g.org)\""))
        p.grantIncludeSub.append(g.includeSuborgs)
        p.grantValidUntil.append(g.validUntil ?? noExpiry)
        p.grantProvenance.append(provenance(by: g.grantedBy, at: g.grantedAt))
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
        let orgCount = p.orgIDs.count
        let roleCount = p.roleIDs.count
        try p.numberTree()
        p.deriveRoles()
        p.orgEntitlements = [[Int32]](repeating: [], count: orgCount)
        for (o, r) in entitlements where !p.orgEntitlements[Int(o)].contains(r) { p.orgEntitlements[Int(o)].append(r) }
        for o in 0..<orgCount { p.orgEntitlements[o].sort() }
        p.deriveOrgState()
        p.deriveMemberGrants()

        // Assignments grouped by user, then indexes by scope and by role.
        let aPerm = Self.groupPermutation(keys: aUser, buckets: userIDs.count)
        p.assignUser = ChunkedArray(aPerm.order.lazy.map { self.aUser[Int($0)] })
        p.assigns = ChunkedArray(aPerm.order.lazy.map {
            HoldRec(validUntil: self.aValid[Int($0)], role: self.aRole[Int($0)], scope: self.aScope[Int($0)])
        })
        p.liveAssigns = p.assigns.count
        p.assignProvenance = ChunkedArray(aPerm.order.lazy.map { self.aProv[Int($0)] })
        aProv = []
        knownProvenance = [:]
        let assignScope = aPerm.order.map { aScope[Int($0)] }
        let assignRole = aPerm.order.map { aRole[Int($0)] }
        aUser = []; aRole = []; aScope = []; aValid = []
        p.assignByScope = KeyedLists(keys: assignScope, count: orgCount)
        p.assignByRole = KeyedLists(keys: assignRole, count: roleCount)
        p.usersByOrg = Self.grouped(keys: userOrg, buckets: orgCount)
        var users: [UserRec] = []
        users.reserveCapacity(userIDs.count)
        for u in 0..<userIDs.count {
            users.append(UserRec(validUntil: userValidUntil[u], org: userOrg[u], assignStart: aPerm.start[u],
                                 assignEnd: aPerm.start[u + 1], status: userStatus[u]))
        }
        p.users = ChunkedArray(users)
        users = []
        p.userIDs = ChunkedArray(userIDs)
        p.liveUsers = userIDs.count
        userIDs = []; userOrg = []; userValidUntil = []; userStatus = []

        // Resources per type and location; shared host resources per type.
        let typeCount = p.typeNames.count
        var byOrg = [[[Int32]]](repeating: [], count: typeCount)
        var shared = [[Int32]](repeating: [], count: typeCount)
        for r in resIDs.indices {
            let t = Int(resType[r])
            if byOrg[t].isEmpty { byOrg[t] = [[Int32]](repeating: [], count: orgCount) }
            byOrg[t][Int(resOrg[r])].append(Int32(r))
            if resShared[r] && p.orgs[Int(resOrg[r])].kind == .host { shared[t].append(Int32(r)) }
        }
        p.resByOrg = byOrg.map { lists in
            lists.isEmpty ? [ChunkedArray<Int32>](repeating: ChunkedArray(), count: orgCount) : lists.map { ChunkedArray($0) }
        }
        p.sharedHostResources = shared.map { ChunkedArray($0) }
        p.res = ChunkedArray(resIDs.indices.lazy.map {
            ResRec(type: self.resType[$0], org: self.resOrg[$0], owner: self.resOwner[$0], shared: self.resShared[$0])
        })
        p.resIDs = ChunkedArray(resIDs)
        p.liveResources = resIDs.count
        return AccessGraph(p)
    }

    // MARK: Internals

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

    /// Item indices grouped by key, one list per bucket.
    static func grouped(keys: [Int32], buckets: Int) -> [ChunkedArray<Int32>] {
        let g = groupPermutation(keys: keys, buckets: buckets)
        return (0..<buckets).map { ChunkedArray(g.order[Int(g.start[$0])..<Int(g.start[$0 + 1])]) }
    }

    /// Gives the buffered orgs their slots (in arrival order) and resolves their parents; the
    /// tree itself is numbered and checked by `build()`.
    private mutating func sealOrgs() throws(PIAMError) {
        if sealedOrgs { return }
        sealedOrgs = true
        let orgs = pendingOrgs
        pendingOrgs = []
        p.orgIndex.reserve(orgs.count)
        for (i, o) in orgs.enumerated() where p.orgIndex.insert(o.id, Int32(i)) != nil {
            throw PIAMError(.conflict, "duplicate org \"\(o.id)\"")
        }
        p.orgIDs = orgs.map(\.id)
        p.orgs = []
        p.orgs.reserveCapacity(orgs.count)
        for o in orgs {
            var parent: Int32 = -1
            if let id = o.parent {
                guard let pi = p.orgIndex[id] else { throw PIAMError(.notFound, "org \"\(o.id)\": no such parent org \"\(id)\"") }
                parent = pi
            }
            p.orgs.append(OrgRec(parent: parent, pre: -1, end: -1, partnerRoot: -1, kind: o.kind, status: o.status, chainActive: false))
        }
    }
}

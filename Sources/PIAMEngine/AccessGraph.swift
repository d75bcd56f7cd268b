/// "No end": the value stored for an absent `valid_until`.
@usableFromInline let noExpiry: Timestamp = .max

// Packed records: what the check path reads about one entity sits in one cache line.

/// An org: its place in the tree. Orgs keep their slot (index) for the graph's life; the tree
/// is numbered in pre-order separately, so the subtree of org `o` is the pre-order range
/// `pre ..< end` and a moved or new org renumbers orgs only, never the users, assignments and
/// resources that point at them.
struct OrgRec: Sendable {
    /// The parent's slot, -1 for the root.
    var parent: Int32
    /// Pre-order number (-1 for a removed org).
    var pre: Int32
    /// One past the last pre-order number of the subtree.
    var end: Int32
    /// The partner root above (or at) this org, or -1 for host orgs.
    var partnerRoot: Int32
    var kind: OrgKind
    var status: OrgStatus
    /// Every org from this one up to the root is `active`.
    var chainActive: Bool
}

/// An org grant as a member of an org holds it: the grant's index, role and expiry.
struct MemberGrant: Sendable {
    var validUntil: Timestamp
    var grant: Int32
    var role: Int32
}

/// A user: org, status, expiry and the slice of its assignments.
struct UserRec: Sendable {
    var validUntil: Timestamp
    var org: Int32
    var assignStart: Int32
    var assignEnd: Int32
    var status: UserStatus
}

/// One assignment as a check reads it.
struct HoldRec: Sendable {
    var validUntil: Timestamp
    var role: Int32
    var scope: Int32
}

/// Who granted an assignment or org grant, and when: an interned pair. Explanations read it;
/// checks never do, so it lives beside the records the check path reads, not in them.
struct Provenance: Sendable, Hashable {
    /// `granted_at`, or ``Provenance/unknownTime``.
    var grantedAt: Timestamp
    /// The granter's index in `granterIDs`, or -1 when not recorded.
    var granter: Int32

    /// The stored value of an unknown `granted_at`.
    static let unknownTime: Timestamp = .min
    /// Neither granter nor time recorded: provenance 0 of every graph.
    static let none = Provenance(grantedAt: unknownTime, granter: -1)
}

/// An interned permission.
struct PermRec: Sendable {
    var type: Int32
    /// -1 for `*`.
    var action: Int32
    var owner: Bool
}

/// A registered resource as a check reads it.
struct ResRec: Sendable {
    var type: Int32
    var org: Int32
    /// -1 for no owner.
    var owner: Int32
    var shared: Bool
}

/// The compiled partner graph that answers every query: immutable, shared freely between threads.
///
/// Built by ``GraphBuilder`` (from a loader or from ``GraphData``), and derived from an older
/// graph by ``applying(_:)``, which shares every part a change does not touch. Its layout is
/// chosen for the check path:
///
/// - Organizations have stable slots and a separate **pre-order** numbering of the tree, so
///   every "is X at or below Y" test (bounds, reach, self-action) is two integer comparisons,
///   with no tree walk.
/// - Resource types, actions and roles are **interned** to small integers; a query hashes only
///   its own strings (subject, type, action, resource id).
/// - A user's assignments are one contiguous slice, so a check costs in proportion to the
///   subject's holdings. Each org also keeps the org grants its members hold (its own and its
///   ancestors' `include_suborgs` grants) as one slice: no walk up the tree.
/// - Each org's **ceiling** (the union of its and its ancestors' entitlements) is precomputed
///   as a bitset over roles; "R is in the ceiling of O" is one bit test.
/// - Whether the whole chain from an org up to the root is `active` is precomputed per org.
/// - The user- and resource-sized parts are `ChunkedArray`s and chunked hash tables: a new
///   graph that changes a few rows copies a few 4,096-element chunks.
public final class AccessGraph: Sendable {

    // MARK: Interning
    let typeIndex: IDTable
    let typeNames: [String]
    let actionIndex: IDTable
    let actionNames: [String]
    /// Per type id: the sorted action ids of its vocabulary (DESIGN §3, `list_actions`).
    let typeVocabulary: [[Int32]]

    // MARK: Orgs (by slot; a removed org's slot stays, with an empty id)
    let orgIDs: [String]
    let orgIndex: IDTable
    let orgs: [OrgRec]
    /// Pre-order number → slot, live orgs only.
    let orgByPre: [Int32]
    /// The root org's slot (`orgByPre[0]`): where every `role:<id>` is located. Slots are
    /// given in load order, so slot 0 is whichever org arrived first — never assume it is the root.
    let rootOrg: Int32
    /// Ceiling bitsets, `roleWords` words per org slot.
    let orgCeiling: [UInt64]
    let roleWords: Int
    /// Entitlements located at each org (sorted role slots): the source of the ceilings.
    let orgEntitlements: [[Int32]]
    /// Org grants, by grant number (no order): org, role, sub-orgs, expiry.
    let grantOrg: [Int32]
    let grantRole: [Int32]
    let grantIncludeSub: [Bool]
    let grantValidUntil: [Timestamp]
    /// Per org grant: its provenance (an index into `provenance`).
    let grantProvenance: [Int32]
    /// Per org slot (CSR): the org grants its members hold — the org's own grants and its
    /// ancestors' grants that include sub-orgs — so a check reads one slice instead of walking up the tree.
    let memberGrantStart: [Int32]
    let memberGrants: [MemberGrant]

    // MARK: Roles (by slot; a removed role's slot stays, with an empty id and no permissions)
    let roleIDs: [String]
    let roleIndex: IDTable
    let rolePermStart: [Int32]
    /// Every role's permissions, interned (CSR by `rolePermStart`).
    let perms: [PermRec]
    /// Per role: bit `type & 63` set for each type its permissions name. A check skips a
    /// holding whose role cannot match the requested type with one test.
    let roleTypeMask: [UInt64]
    let rolePermissions: [[Permission]]

    // MARK: Users (by slot; a removed user's slot stays, with an empty id)
    let userIDs: ChunkedArray<String>
    /// Ids and aliases.
    let userIndex: IDTable
    let users: ChunkedArray<UserRec>
    /// Per org slot: its users (unordered).
    let usersByOrg: [ChunkedArray<Int32>]
    let liveUsers: Int
    let aliasCount: Int
    /// Assignments; a user's are one slice, `users[u].assignStart ..< users[u].assignEnd`. A
    /// change to a user's assignments appends a new slice and abandons the old one.
    let assigns: ChunkedArray<HoldRec>
    /// The user of each assignment; -1 for an abandoned one.
    let assignUser: ChunkedArray<Int32>
    let liveAssigns: Int
    /// Per org slot: live assignment indices scoped there, for `list_subjects`.
    let assignByScope: KeyedLists
    /// Per role slot: live assignment indices of the role, for `list_subjects` on shared resources.
    let assignByRole: KeyedLists

    // MARK: Provenance (who granted, and when: for explanations)
    /// Per assignment slot: its provenance (an index into `provenance`), 4 bytes each.
    let assignProvenance: ChunkedArray<Int32>
    /// Interned (granter, time) pairs; 0 is ``Provenance/none``. A graph built from records
    /// holds each distinct pair once (a bulk import's rows share one); an applied change
    /// appends the pairs it needs, which a full load compacts again.
    let provenance: ChunkedArray<Provenance>
    /// Interned `granted_by` values.
    let granterIDs: [String]
    let granterIndex: [String: Int32]

    // MARK: Resources (by slot; a removed resource's slot stays, with an empty id)
    /// Per type id: resource id → resource slot.
    let resourceIndex: [IDTable]
    /// `resourceIndex`'s elements in place, for the check path: indexing the array copies the
    /// table (retaining its two arrays, atomically, on lines every query thread shares).
    let resourceTables: ResourceTables
    let resIDs: ChunkedArray<String>
    let res: ChunkedArray<ResRec>
    let liveResources: Int
    /// Per type id, per org slot: the resources located there, for `list_resources`.
    let resByOrg: [[ChunkedArray<Int32>]]
    /// Per type id: shared resources located at host orgs.
    let sharedHostResources: [ChunkedArray<Int32>]

    let builtinUser: Int32 = 0
    let builtinOrg: Int32 = 1
    let builtinRole: Int32 = 2
    let approveAction: Int32
    let entitleAction: Int32
    /// `grant` (on `role:<R>`: hand out R whatever the actor holds).
    let grantAction: Int32
    let suspendAction: Int32
    let removeAction: Int32

    /// Every part of a graph, as one value: what the builder fills and ``applying(_:)`` edits.
    /// (The graph copies the fields into its own `let`s so the check path reads them directly.)
    struct Parts: Sendable {
        // MARK: Interning
        var typeIndex: IDTable = IDTable()
        var typeNames: [String] = []
        var actionIndex: IDTable = IDTable()
        var actionNames: [String] = []
        /// Per type id: the sorted action ids of its vocabulary (DESIGN §3, `list_actions`).
        var typeVocabulary: [[Int32]] = []

        // MARK: Orgs (by slot; a removed org's slot stays, with an empty id)
        var orgIDs: [String] = []
        var orgIndex: IDTable = IDTable()
        var orgs: [OrgRec] = []
        /// Pre-order number → slot, live orgs only.
        var orgByPre: [Int32] = []
        /// Ceiling bitsets, `roleWords` words per org slot.
        var orgCeiling: [UInt64] = []
        var roleWords: Int = 0
        /// Entitlements located at each org (sorted role slots): the source of the ceilings.
        var orgEntitlements: [[Int32]] = []
        /// Org grants, by grant number (no order): org, role, sub-orgs, expiry.
        var grantOrg: [Int32] = []
        var grantRole: [Int32] = []
        var grantIncludeSub: [Bool] = []
        var grantValidUntil: [Timestamp] = []
        /// Per org grant: its provenance (an index into `provenance`).
        var grantProvenance: [Int32] = []
        /// Per org slot (CSR): the org grants its members hold — the org's own grants and its
        /// ancestors' grants that include sub-orgs — so a check reads one slice instead of walking up the tree.
        var memberGrantStart: [Int32] = []
        var memberGrants: [MemberGrant] = []

        // MARK: Roles (by slot; a removed role's slot stays, with an empty id and no permissions)
        var roleIDs: [String] = []
        var roleIndex: IDTable = IDTable()
        var rolePermStart: [Int32] = []
        /// Every role's permissions, interned (CSR by `rolePermStart`).
        var perms: [PermRec] = []
        /// Per role: bit `type & 63` set for each type its permissions name. A check skips a
        /// holding whose role cannot match the requested type with one test.
        var roleTypeMask: [UInt64] = []
        var rolePermissions: [[Permission]] = []

        // MARK: Users (by slot; a removed user's slot stays, with an empty id)
        var userIDs: ChunkedArray<String> = ChunkedArray()
        /// Ids and aliases.
        var userIndex: IDTable = IDTable()
        var users: ChunkedArray<UserRec> = ChunkedArray()
        /// Per org slot: its users (unordered).
        var usersByOrg: [ChunkedArray<Int32>] = []
        var liveUsers: Int = 0
        var aliasCount: Int = 0
        /// Assignments; a user's are one slice, `users[u].assignStart ..< users[u].assignEnd`. A
        /// change to a user's assignments appends a new slice and abandons the old one.
        var assigns: ChunkedArray<HoldRec> = ChunkedArray()
        /// The user of each assignment; -1 for an abandoned one.
        var assignUser: ChunkedArray<Int32> = ChunkedArray()
        var liveAssigns: Int = 0
        /// Per org slot: live assignment indices scoped there, for `list_subjects`.
        var assignByScope: KeyedLists = KeyedLists()
        /// Per role slot: live assignment indices of the role, for `list_subjects` on shared resources.
        var assignByRole: KeyedLists = KeyedLists()

        // MARK: Provenance (who granted, and when: for explanations)
        /// Per assignment slot: its provenance (an index into `provenance`), 4 bytes each.
        var assignProvenance: ChunkedArray<Int32> = ChunkedArray()
        /// Interned (granter, time) pairs; 0 is ``Provenance/none``.
        var provenance: ChunkedArray<Provenance> = ChunkedArray([Provenance.none])
        /// Interned `granted_by` values.
        var granterIDs: [String] = []
        var granterIndex: [String: Int32] = [:]

        // MARK: Resources (by slot; a removed resource's slot stays, with an empty id)
        /// Per type id: resource id → resource slot.
        var resourceIndex: [IDTable] = []
        var resIDs: ChunkedArray<String> = ChunkedArray()
        var res: ChunkedArray<ResRec> = ChunkedArray()
        var liveResources: Int = 0
        /// Per type id, per org slot: the resources located there, for `list_resources`.
        var resByOrg: [[ChunkedArray<Int32>]] = []
        /// Per type id: shared resources located at host orgs.
        var sharedHostResources: [ChunkedArray<Int32>] = []
    }

    init(_ p: Parts) {
        typeIndex = p.typeIndex
        typeNames = p.typeNames
        actionIndex = p.actionIndex
        actionNames = p.actionNames
        typeVocabulary = p.typeVocabulary
        orgIDs = p.orgIDs
        orgIndex = p.orgIndex
        orgs = p.orgs
        orgByPre = p.orgByPre
        // A built graph always has a root (the builder and `applying(_:)` renumber the tree and
        // refuse one without); pre-order number 0 is it.
        rootOrg = p.orgByPre.first ?? -1
        orgCeiling = p.orgCeiling
        roleWords = p.roleWords
        orgEntitlements = p.orgEntitlements
        grantOrg = p.grantOrg
        grantRole = p.grantRole
        grantIncludeSub = p.grantIncludeSub
        grantValidUntil = p.grantValidUntil
        grantProvenance = p.grantProvenance
        memberGrantStart = p.memberGrantStart
        memberGrants = p.memberGrants
        roleIDs = p.roleIDs
        roleIndex = p.roleIndex
        rolePermStart = p.rolePermStart
        perms = p.perms
        roleTypeMask = p.roleTypeMask
        rolePermissions = p.rolePermissions
        userIDs = p.userIDs
        userIndex = p.userIndex
        users = p.users
        usersByOrg = p.usersByOrg
        liveUsers = p.liveUsers
        aliasCount = p.aliasCount
        assigns = p.assigns
        assignUser = p.assignUser
        liveAssigns = p.liveAssigns
        assignByScope = p.assignByScope
        assignByRole = p.assignByRole
        assignProvenance = p.assignProvenance
        provenance = p.provenance
        granterIDs = p.granterIDs
        granterIndex = p.granterIndex
        resourceIndex = p.resourceIndex
        resourceTables = ResourceTables(resourceIndex)
        resIDs = p.resIDs
        res = p.res
        liveResources = p.liveResources
        resByOrg = p.resByOrg
        sharedHostResources = p.sharedHostResources
        approveAction = p.actionIndex["approve"] ?? -2
        entitleAction = p.actionIndex["entitle"] ?? -2
        grantAction = p.actionIndex["grant"] ?? -2
        suspendAction = p.actionIndex["suspend"] ?? -2
        removeAction = p.actionIndex["remove"] ?? -2
    }

    /// This graph's parts, sharing every buffer with it.
    var parts: Parts {
        Parts(typeIndex: typeIndex, typeNames: typeNames, actionIndex: actionIndex, actionNames: actionNames, typeVocabulary: typeVocabulary, orgIDs: orgIDs, orgIndex: orgIndex, orgs: orgs, orgByPre: orgByPre, orgCeiling: orgCeiling, roleWords: roleWords, orgEntitlements: orgEntitlements, grantOrg: grantOrg, grantRole: grantRole, grantIncludeSub: grantIncludeSub, grantValidUntil: grantValidUntil, grantProvenance: grantProvenance, memberGrantStart: memberGrantStart, memberGrants: memberGrants, roleIDs: roleIDs, roleIndex: roleIndex, rolePermStart: rolePermStart, perms: perms, roleTypeMask: roleTypeMask, rolePermissions: rolePermissions, userIDs: userIDs, userIndex: userIndex, users: users, usersByOrg: usersByOrg, liveUsers: liveUsers, aliasCount: aliasCount, assigns: assigns, assignUser: assignUser, liveAssigns: liveAssigns, assignByScope: assignByScope, assignByRole: assignByRole, assignProvenance: assignProvenance, provenance: provenance, granterIDs: granterIDs, granterIndex: granterIndex, resourceIndex: resourceIndex, resIDs: resIDs, res: res, liveResources: liveResources, resByOrg: resByOrg, sharedHostResources: sharedHostResources)
    }

    /// Counts of the graph's entities.
    public struct Counts: Sendable, Hashable, Codable {
        public var orgs: Int
        public var users: Int
        public var aliases: Int
        public var roles: Int
        public var resources: Int
        public var entitlements: Int
        public var assignments: Int
        public var orgGrants: Int

        /// Assignments plus org grants.
        public var grants: Int { assignments + orgGrants }
    }

    /// Counts of the graph's entities.
    public var counts: Counts {
        Counts(
            orgs: orgByPre.count, users: liveUsers, aliases: aliasCount, roles: roleIndex.count,
            resources: liveResources, entitlements: orgEntitlements.reduce(0) { $0 + $1.count },
            assignments: liveAssigns, orgGrants: grantRole.count)
    }

    // MARK: Small shared predicates

    /// `o` is `l` or below it.
    @inline(__always) func isWithin(_ o: Int32, _ l: Int32) -> Bool {
        let p = orgs[Int(o)].pre
        return orgs[Int(l)].pre <= p && p < orgs[Int(l)].end
    }

    /// The subtree of `l` as a pre-order range (slots through ``orgByPre``).
    @inline(__always) func subtree(_ l: Int32) -> Range<Int> {
        Int(orgs[Int(l)].pre)..<Int(orgs[Int(l)].end)
    }

    @inline(__always) func inCeiling(org: Int32, role: Int32) -> Bool {
        let word = orgCeiling[Int(org) &* roleWords &+ Int(role >> 6)]
        return word & (1 &<< UInt64(role & 63)) != 0
    }

    /// Whether role `r` may have a permission on type `t` (a filter: false means certainly not).
    @inline(__always) func roleMayMatch(_ r: Int32, type t: Int32) -> Bool {
        roleTypeMask[Int(r)] & (1 &<< UInt64(truncatingIfNeeded: t & 63)) != 0
    }

    @inline(__always) func isHostUser(_ u: Int32) -> Bool {
        orgs[Int(users[Int(u)].org)].kind == .host
    }

    /// Whether `action` on `type` is host-only (DESIGN §2): any action on `role`, `approve` and
    /// `entitle` on `org`. For a permission's action, `*` (-1) on `org` is not host-only: held by
    /// a partner user, `org:*` grants every org action except those two.
    @inline(__always) func isHostOnly(type: Int32, action: Int32) -> Bool {
        type == builtinRole || (type == builtinOrg && action >= 0 && (action == approveAction || action == entitleAction))
    }
}

/// Views (``IDTable/View``) of the per-type resource tables, for the check path: indexing
/// `[IDTable]` copies the table, retaining its two arrays — atomic operations on lines every
/// query thread shares. The graph keeps the tables themselves (immutable) alive.
struct ResourceTables: Sendable {
    let views: [IDTable.View]

    init(_ tables: [IDTable]) { views = tables.map(\.view) }

    /// The value of `key` in table `t`, if `t` is a table and the key is in it.
    @inline(__always)
    func find<K: IDKey>(_ key: K, inTable t: Int32) -> Int32? {
        guard t >= 0 && Int(t) < views.count else { return nil }
        return views[Int(t)].find(key)
    }
}

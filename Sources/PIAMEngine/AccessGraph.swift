/// "No end": the value stored for an absent `valid_until`.
@usableFromInline let noExpiry: Timestamp = .max

// Packed records: what the check path reads about one entity sits in one cache line.

/// An org: its place in the tree (pre-order number = index; subtree = `index ..< end`).
struct OrgRec: Sendable {
    var parent: Int32
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

/// The compiled, immutable partner graph that answers every query.
///
/// Built once by ``GraphBuilder`` (from a loader or from ``GraphData``) and then only read, so
/// it is shared freely between threads. Its layout is chosen for the check path:
///
/// - Organizations are numbered in **pre-order** of the tree, so the subtree of org `i` is the
///   index range `i ..< orgs[i].end`: every "is X at or below Y" test (bounds, reach, self-action)
///   is two integer comparisons, with no tree walk.
/// - Resource types, actions and roles are **interned** to small integers when the graph is
///   built; a query hashes only its own strings (subject, type, action, resource id).
/// - A user's assignments are one contiguous slice (CSR layout), so a check costs in proportion
///   to the subject's holdings. Each org also keeps the org grants its members hold (its own
///   and its ancestors' `include_suborgs` grants) as one slice: no walk up the tree.
/// - Each org's **ceiling** (the union of its and its ancestors' entitlements) is precomputed
///   as a bitset over roles; "R is in the ceiling of O" is one bit test.
/// - Whether the whole chain from an org up to the root is `active` is precomputed per org.
public final class AccessGraph: Sendable {
    // MARK: Interning
    let typeIndex: IDTable
    let typeNames: [String]
    let actionIndex: IDTable
    let actionNames: [String]
    /// Per type id: the sorted action ids of its vocabulary (DESIGN §3, `list_actions`).
    let typeVocabulary: [[Int32]]
    let approveAction: Int32
    let entitleAction: Int32
    let suspendAction: Int32
    let removeAction: Int32

    // MARK: Orgs (index = pre-order number)
    let orgIDs: [String]
    let orgIndex: IDTable
    let orgs: [OrgRec]
    /// Ceiling bitsets, `roleWords` words per org.
    let orgCeiling: [UInt64]
    let roleWords: Int
    /// Org grants located at each org (CSR).
    let orgGrantStart: [Int32]
    let grantRole: [Int32]
    let grantIncludeSub: [Bool]
    let grantValidUntil: [Timestamp]
    /// Per org (CSR): the org grants its members hold — the org's own grants and its ancestors'
    /// grants that include sub-orgs — so a check reads one slice instead of walking up the tree.
    let memberGrantStart: [Int32]
    let memberGrants: [MemberGrant]
    /// Users grouped by org in pre-order (CSR): the users of a subtree are one slice.
    let usersByOrgStart: [Int32]
    let usersByOrg: [Int32]
    /// Entitlements located at each org, for reports.
    let orgEntitlements: [[Int32]]

    // MARK: Roles
    let roleIDs: [String]
    let roleIndex: IDTable
    let rolePermStart: [Int32]
    /// Every role's permissions, interned (CSR by `rolePermStart`).
    let perms: [PermRec]
    /// Per role: bit `type & 63` set for each type its permissions name. A check skips a
    /// holding whose role cannot match the requested type with one test.
    let roleTypeMask: [UInt64]
    let rolePermissions: [[Permission]]

    // MARK: Users
    let userIDs: [String]
    /// Ids and aliases.
    let userIndex: IDTable
    let users: [UserRec]
    /// Assignments grouped by user: `users[u].assignStart ..< users[u].assignEnd`.
    let assigns: [HoldRec]
    let assignUser: [Int32]
    /// Assignment indices grouped by scope org (CSR), for `list_subjects`.
    let assignByScopeStart: [Int32]
    let assignByScope: [Int32]
    /// Assignment indices grouped by role (CSR), for `list_subjects` on shared resources.
    let assignByRoleStart: [Int32]
    let assignByRole: [Int32]
    let aliasCount: Int

    // MARK: Resources
    /// Per type id: resource id → resource index.
    let resourceIndex: [IDTable]
    let resIDs: [String]
    let res: [ResRec]
    /// Per type id: resource indices sorted by location (pre-order), for `list_resources`.
    let resByTypeAndOrg: [[Int32]]
    /// Per type id: shared resources located at host orgs.
    let sharedHostResources: [[Int32]]

    let builtinUser: Int32 = 0
    let builtinOrg: Int32 = 1
    let builtinRole: Int32 = 2

    init(_ b: borrowing GraphBuilder.Compiled) {
        typeIndex = b.typeIndex
        typeNames = b.typeNames
        actionIndex = b.actionIndex
        actionNames = b.actionNames
        typeVocabulary = b.typeVocabulary
        approveAction = b.actionIndex["approve"] ?? -2
        entitleAction = b.actionIndex["entitle"] ?? -2
        suspendAction = b.actionIndex["suspend"] ?? -2
        removeAction = b.actionIndex["remove"] ?? -2
        orgIDs = b.orgIDs
        orgIndex = b.orgIndex
        orgs = b.orgs
        orgCeiling = b.orgCeiling
        roleWords = b.roleWords
        orgGrantStart = b.orgGrantStart
        grantRole = b.grantRole
        grantIncludeSub = b.grantIncludeSub
        grantValidUntil = b.grantValidUntil
        memberGrantStart = b.memberGrantStart
        memberGrants = b.memberGrants
        usersByOrgStart = b.usersByOrgStart
        usersByOrg = b.usersByOrg
        orgEntitlements = b.orgEntitlements
        roleIDs = b.roleIDs
        roleIndex = b.roleIndex
        rolePermStart = b.rolePermStart
        perms = b.perms
        roleTypeMask = b.roleTypeMask
        rolePermissions = b.rolePermissions
        userIDs = b.userIDs
        userIndex = b.userIndex
        users = b.users
        assigns = b.assigns
        assignUser = b.assignUser
        assignByScopeStart = b.assignByScopeStart
        assignByScope = b.assignByScope
        assignByRoleStart = b.assignByRoleStart
        assignByRole = b.assignByRole
        aliasCount = b.aliasCount
        resourceIndex = b.resourceIndex
        resIDs = b.resIDs
        res = b.res
        resByTypeAndOrg = b.resByTypeAndOrg
        sharedHostResources = b.sharedHostResources
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
            orgs: orgIDs.count, users: userIDs.count, aliases: aliasCount, roles: roleIDs.count,
            resources: resIDs.count, entitlements: orgEntitlements.reduce(0) { $0 + $1.count },
            assignments: assigns.count, orgGrants: grantRole.count)
    }

    // MARK: Small shared predicates

    /// `o` is `l` or below it.
    @inline(__always) func isWithin(_ o: Int32, _ l: Int32) -> Bool {
        l <= o && o < orgs[Int(l)].end
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

    @inline(__always) func isHostOnly(type: Int32, action: Int32) -> Bool {
        type == builtinRole || (type == builtinOrg && (action == approveAction || action == entitleAction))
    }
}

import PIAMEngine

/// A fixed "now" for the tests: 2027-01-15T08:00:00Z.
let now: Timestamp = 1_799_913_600_000
let day: Timestamp = 86_400_000

func perms(_ list: String...) -> [Permission] {
    list.map { try! Permission(parsing: $0) }
}

/// A small partner graph exercising every rule:
///
/// ```
/// host (host)
/// ├── claims-dept (host)
/// └── partners (host)
///     ├── acme (partner)            acme-admin: partner-admin@acme, acme-user, alice (alias idp|alice)
///     │   ├── acme-north            north-admin: partner-admin@acme-north
///     │   │   └── acme-north-x      nx-user
///     │   └── acme-south            south-user
///     ├── globex (partner)          globex-admin, globex-user
///     │   └── globex-east           east-user
///     ├── pendco (pending)          pend-user
///     └── suspco (suspended)        susp-user
/// ```
func fixtureData() -> GraphData {
    var d = GraphData()
    d.orgs = [
        OrgRecord(id: "host", parent: nil, kind: .host, status: .active),
        OrgRecord(id: "claims-dept", parent: "host", kind: .host, status: .active),
        OrgRecord(id: "partners", parent: "host", kind: .host, status: .active),
        // Deliberately out of order: the builder must not care.
        OrgRecord(id: "acme-north-x", parent: "acme-north", kind: .partner, status: .active),
        OrgRecord(id: "acme", parent: "partners", kind: .partner, status: .active),
        OrgRecord(id: "acme-north", parent: "acme", kind: .partner, status: .active),
        OrgRecord(id: "acme-south", parent: "acme", kind: .partner, status: .active),
        OrgRecord(id: "globex", parent: "partners", kind: .partner, status: .active),
        OrgRecord(id: "globex-east", parent: "globex", kind: .partner, status: .active),
        OrgRecord(id: "pendco", parent: "partners", kind: .partner, status: .pending),
        OrgRecord(id: "suspco", parent: "partners", kind: .partner, status: .suspended),
    ]
    d.roles = [
        RoleRecord(id: "partner-admin", permissions: perms(
            "org:view", "org:invite_user", "org:create_suborg", "org:update", "org:suspend", "org:reactivate",
            "org:grant_role", "user:view", "user:update", "user:suspend", "user:reactivate", "user:remove",
            "user:assign_role", "user:revoke_role")),
        RoleRecord(id: "partner-user", permissions: perms("org:view", "user:view", "user:request_role:owner")),
        RoleRecord(id: "host-admin", permissions: perms("org:*", "user:*", "role:*")),
        RoleRecord(id: "claims-agent", permissions: perms("claim:read", "claim:submit", "claim:withdraw:owner")),
        RoleRecord(id: "adjuster", permissions: perms("claim:*")),
        RoleRecord(id: "catalog-reader", permissions: perms("document:read")),
        RoleRecord(id: "statements", permissions: perms("statement:read:owner")),
        RoleRecord(id: "role-viewer", permissions: perms("role:read")),
        RoleRecord(id: "approver", permissions: perms("org:approve", "org:view")),
        RoleRecord(id: "quote-maker", permissions: perms("quote:create")),
    ]
    d.entitlements = [
        EntitlementRecord(org: "partners", role: "partner-user"),
        EntitlementRecord(org: "acme", role: "partner-admin"),
        EntitlementRecord(org: "acme", role: "claims-agent"),
        EntitlementRecord(org: "acme", role: "catalog-reader"),
        EntitlementRecord(org: "acme", role: "statements"),
        EntitlementRecord(org: "acme", role: "role-viewer"),
        EntitlementRecord(org: "acme", role: "approver"),
        EntitlementRecord(org: "acme-north", role: "adjuster"),
        EntitlementRecord(org: "globex", role: "partner-admin"),
        EntitlementRecord(org: "globex", role: "claims-agent"),
        EntitlementRecord(org: "suspco", role: "partner-admin"),
        EntitlementRecord(org: "pendco", role: "partner-admin"),
    ]
    d.users = [
        UserRecord(id: "hal", org: "host", status: .active),
        UserRecord(id: "clara", org: "claims-dept", status: .active),
        UserRecord(id: "acme-admin", org: "acme", status: .active),
        UserRecord(id: "acme-user", org: "acme", status: .active),
        UserRecord(id: "alice", org: "acme", aliases: ["idp|alice", "alice@acme.example"], status: .active),
        UserRecord(id: "north-admin", org: "acme-north", status: .active),
        UserRecord(id: "nx-user", org: "acme-north-x", status: .active),
        UserRecord(id: "south-user", org: "acme-south", status: .active),
        UserRecord(id: "globex-admin", org: "globex", status: .active),
        UserRecord(id: "globex-user", org: "globex", status: .active),
        UserRecord(id: "east-user", org: "globex-east", status: .active),
        UserRecord(id: "pend-user", org: "pendco", status: .active),
        UserRecord(id: "susp-user", org: "suspco", status: .active),
        UserRecord(id: "invited-user", org: "acme", status: .invited),
        UserRecord(id: "suspended-user", org: "acme", status: .suspended),
        UserRecord(id: "expired-user", org: "acme", status: .active, validUntil: now - day),
        UserRecord(id: "leaving-user", org: "acme", status: .active, validUntil: now + day),
    ]
    d.resources = [
        ResourceRecord(type: "claim", id: "CLM-acme-1", org: "acme", owner: "alice"),
        ResourceRecord(type: "claim", id: "CLM-north-1", org: "acme-north", owner: "nx-user"),
        ResourceRecord(type: "claim", id: "CLM-nx-1", org: "acme-north-x", owner: "nx-user"),
        ResourceRecord(type: "claim", id: "CLM-globex-1", org: "globex", owner: "globex-user"),
        ResourceRecord(type: "claim", id: "CLM-host-1", org: "claims-dept"),
        ResourceRecord(type: "document", id: "price-list", org: "host", shared: true),
        ResourceRecord(type: "document", id: "internal-memo", org: "host", shared: false),
        ResourceRecord(type: "document", id: "acme-handbook", org: "acme"),
        ResourceRecord(type: "statement", id: "ST-alice", org: "acme", owner: "alice"),
        ResourceRecord(type: "statement", id: "ST-acme-user", org: "acme", owner: "acme-user"),
    ]
    d.assignments = [
        AssignmentRecord(user: "hal", role: "host-admin", scope: "host"),
        AssignmentRecord(user: "hal", role: "adjuster", scope: "host"),
        AssignmentRecord(user: "clara", role: "adjuster", scope: "claims-dept"),
        AssignmentRecord(user: "acme-admin", role: "partner-admin", scope: "acme"),
        AssignmentRecord(user: "acme-admin", role: "claims-agent"),
        AssignmentRecord(user: "alice", role: "claims-agent", scope: "acme"),
        AssignmentRecord(user: "alice", role: "statements"),
        AssignmentRecord(user: "north-admin", role: "partner-admin", scope: "acme-north"),
        // An assignment above the user's own org: out of bounds for a partner user.
        AssignmentRecord(user: "north-admin", role: "claims-agent", scope: "acme"),
        AssignmentRecord(user: "nx-user", role: "adjuster"),
        // Outside the ceiling of acme-south (adjuster is entitled only at acme-north).
        AssignmentRecord(user: "south-user", role: "adjuster"),
        // Expired grant.
        AssignmentRecord(user: "acme-user", role: "claims-agent", validUntil: now - 1),
        AssignmentRecord(user: "acme-user", role: "statements"),
        AssignmentRecord(user: "acme-user", role: "role-viewer"),
        AssignmentRecord(user: "acme-user", role: "approver"),
        AssignmentRecord(user: "globex-admin", role: "partner-admin", scope: "globex"),
        AssignmentRecord(user: "globex-user", role: "claims-agent"),
        AssignmentRecord(user: "susp-user", role: "partner-admin"),
        AssignmentRecord(user: "pend-user", role: "partner-admin"),
        AssignmentRecord(user: "leaving-user", role: "claims-agent"),
    ]
    d.orgGrants = [
        OrgGrantRecord(org: "partners", role: "partner-user", includeSuborgs: true),
        OrgGrantRecord(org: "acme", role: "catalog-reader", includeSuborgs: true),
        OrgGrantRecord(org: "globex", role: "claims-agent", includeSuborgs: false, validUntil: now + 30 * day),
    ]
    return d
}

func fixture() -> AccessGraph { try! GraphBuilder.build(fixtureData()) }

extension AccessGraph {
    func decide(_ subject: String, _ action: String, _ resource: String, org: String? = nil, owner: String? = nil, at t: Timestamp = now) -> Decision {
        var r = ResourceRef(parsing: resource)!
        r.org = org
        r.owner = owner
        return check(subject: subject, action: action, resource: r, now: t)
    }
}

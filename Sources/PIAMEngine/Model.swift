/// Time in PIAM: milliseconds since the Unix epoch, UTC.
///
/// The engine never reads a clock; every query takes "now" as a `Timestamp`.
public typealias Timestamp = Int64

/// The kind of an organization (DESIGN §2).
public enum OrgKind: UInt8, Sendable, Hashable, CaseIterable, Codable {
    /// The business itself, its departments, and the `partners` container.
    case host = 0
    /// A partner company or one of its sub-organizations.
    case partner = 1

    /// The spelling used in the database, the import format and on the command line.
    public var name: String { self == .host ? "host" : "partner" }

    /// Parses `host` or `partner`.
    public init?(name: String) {
        switch name {
        case "host": self = .host
        case "partner": self = .partner
        default: return nil
        }
    }
}

/// The lifecycle status of an organization.
public enum OrgStatus: UInt8, Sendable, Hashable, CaseIterable, Codable {
    /// Registration requested, not yet approved: its users are denied (`org_inactive`).
    case pending = 0
    /// Approved and in business.
    case active = 1
    /// Cut off: every user at or below it is denied (`org_inactive`) until reactivated.
    case suspended = 2

    /// The spelling used in the database and the import format.
    public var name: String {
        switch self {
        case .pending: "pending"
        case .active: "active"
        case .suspended: "suspended"
        }
    }

    /// Parses `pending`, `active` or `suspended`.
    public init?(name: String) {
        switch name {
        case "pending": self = .pending
        case "active": self = .active
        case "suspended": self = .suspended
        default: return nil
        }
    }
}

/// The lifecycle status of a user.
public enum UserStatus: UInt8, Sendable, Hashable, CaseIterable, Codable {
    /// Invited by an admin, invitation not yet accepted: denied (`subject_inactive`).
    case invited = 0
    /// May act.
    case active = 1
    /// Denied (`subject_inactive`) until reactivated.
    case suspended = 2

    /// The spelling used in the database and the import format.
    public var name: String {
        switch self {
        case .invited: "invited"
        case .active: "active"
        case .suspended: "suspended"
        }
    }

    /// Parses `invited`, `active` or `suspended`.
    public init?(name: String) {
        switch name {
        case "invited": self = .invited
        case "active": self = .active
        case "suspended": self = .suspended
        default: return nil
        }
    }
}

/// An organization as the engine needs it. Names and other display fields live in the store.
public struct OrgRecord: Sendable, Hashable {
    public var id: String
    /// The parent org's id; `nil` only for the root (the host).
    public var parent: String?
    public var kind: OrgKind
    public var status: OrgStatus

    public init(id: String, parent: String?, kind: OrgKind, status: OrgStatus) {
        self.id = id
        self.parent = parent
        self.kind = kind
        self.status = status
    }
}

/// A user as the engine needs it.
public struct UserRecord: Sendable, Hashable {
    public var id: String
    public var org: String
    /// Other identifiers naming the same user; they share one namespace with user ids.
    public var aliases: [String]
    public var status: UserStatus
    /// The instant the user's access ends, or `nil` for no end.
    public var validUntil: Timestamp?

    public init(id: String, org: String, aliases: [String] = [], status: UserStatus, validUntil: Timestamp? = nil) {
        self.id = id
        self.org = org
        self.aliases = aliases
        self.status = status
        self.validUntil = validUntil
    }
}

/// A role: a named set of permissions defined by the business.
public struct RoleRecord: Sendable, Hashable {
    public var id: String
    public var permissions: [Permission]

    public init(id: String, permissions: [Permission]) {
        self.id = id
        self.permissions = permissions
    }
}

/// A resource registered in the graph (a claim, an invoice, a document, …).
///
/// Users, orgs and roles are resources implicitly and are never registered as such.
public struct ResourceRecord: Sendable, Hashable {
    public var type: String
    public var id: String
    /// The org the resource is located at.
    public var org: String
    /// The owning user's id, if any.
    public var owner: String?
    /// A host-located resource that partner users may reach.
    public var shared: Bool

    public init(type: String, id: String, org: String, owner: String? = nil, shared: Bool = false) {
        self.type = type
        self.id = id
        self.org = org
        self.owner = owner
        self.shared = shared
    }
}

/// The business makes `role` available to `org` and its whole subtree (the org's ceiling).
public struct EntitlementRecord: Sendable, Hashable {
    public var org: String
    public var role: String

    public init(org: String, role: String) {
        self.org = org
        self.role = role
    }
}

/// A role given to one user, acting over the subtree of `scope`.
public struct AssignmentRecord: Sendable, Hashable {
    public var user: String
    public var role: String
    /// The org whose subtree the role acts over; `nil` means the user's own org.
    public var scope: String?
    public var validUntil: Timestamp?
    /// Who granted it: a user id as recorded, or `nil` when not recorded.
    public var grantedBy: String?
    /// When it was granted, or `nil` when unknown (rows written before schema v3).
    public var grantedAt: Timestamp?

    public init(user: String, role: String, scope: String? = nil, validUntil: Timestamp? = nil,
                grantedBy: String? = nil, grantedAt: Timestamp? = nil) {
        self.user = user
        self.role = role
        self.scope = scope
        self.validUntil = validUntil
        self.grantedBy = grantedBy
        self.grantedAt = grantedAt
    }
}

/// A role given to every member of `org` (and, with `includeSuborgs`, of every org below it).
public struct OrgGrantRecord: Sendable, Hashable {
    public var org: String
    public var role: String
    public var includeSuborgs: Bool
    public var validUntil: Timestamp?
    /// Who granted it: a user id as recorded, or `nil` when not recorded.
    public var grantedBy: String?
    /// When it was granted, or `nil` when unknown (rows written before schema v3).
    public var grantedAt: Timestamp?

    public init(org: String, role: String, includeSuborgs: Bool = false, validUntil: Timestamp? = nil,
                grantedBy: String? = nil, grantedAt: Timestamp? = nil) {
        self.org = org
        self.role = role
        self.includeSuborgs = includeSuborgs
        self.validUntil = validUntil
        self.grantedBy = grantedBy
        self.grantedAt = grantedAt
    }
}

/// A whole partner graph as plain records: what a loader reads and what tests write by hand.
public struct GraphData: Sendable, Hashable {
    public var orgs: [OrgRecord] = []
    public var roles: [RoleRecord] = []
    public var users: [UserRecord] = []
    public var resources: [ResourceRecord] = []
    public var entitlements: [EntitlementRecord] = []
    public var assignments: [AssignmentRecord] = []
    public var orgGrants: [OrgGrantRecord] = []

    public init(
        orgs: [OrgRecord] = [], roles: [RoleRecord] = [], users: [UserRecord] = [],
        resources: [ResourceRecord] = [], entitlements: [EntitlementRecord] = [],
        assignments: [AssignmentRecord] = [], orgGrants: [OrgGrantRecord] = []
    ) {
        self.orgs = orgs
        self.roles = roles
        self.users = users
        self.resources = resources
        self.entitlements = entitlements
        self.assignments = assignments
        self.orgGrants = orgGrants
    }
}

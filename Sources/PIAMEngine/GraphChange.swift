/// One changed key of the partner graph, with the key's state after the change: the record as
/// it now is, or `nil` when the key no longer exists.
///
/// A loader that follows the change journal (DESIGN §4) reads the journal rows after its
/// revision, collapses them to the distinct keys they touch, re-reads each key's current row and
/// hands the result to ``AccessGraph/applying(_:)``. Because every change carries the key's
/// *current* state, the order of the journal rows does not matter and several transactions can
/// be applied as one batch.
public enum GraphChange: Sendable, Hashable {
    /// An org (key: id).
    case org(id: String, OrgRecord?)
    /// A role and its permissions (key: id).
    case role(id: String, RoleRecord?)
    /// An entitlement (key: org, role); `present` is whether it exists now.
    case entitlement(org: String, role: String, present: Bool)
    /// A user (key: id). The record's `aliases` are ignored: aliases change as ``alias(_:user:)``.
    case user(id: String, UserRecord?)
    /// An alias (key: alias) and the user it now names, or `nil` when it was removed.
    case alias(String, user: String?)
    /// A registered resource (key: type, id).
    case resource(type: String, id: String, ResourceRecord?)
    /// An assignment (key: user, role, scope); the record's scope is always set.
    case assignment(user: String, role: String, scope: String, AssignmentRecord?)
    /// An org grant (key: org, role).
    case orgGrant(org: String, role: String, OrgGrantRecord?)
}

extension GraphChange {
    /// The changed key (table and natural key): of several changes to one key, the last is its
    /// current state.
    var key: [String] {
        switch self {
        case .org(let id, _): ["org", id]
        case .role(let id, _): ["role", id]
        case .entitlement(let o, let r, _): ["entitlement", o, r]
        case .user(let id, _): ["user", id]
        case .alias(let a, _): ["alias", a]
        case .resource(let t, let id, _): ["resource", t, id]
        case .assignment(let u, let r, let s, _): ["assignment", u, r, s]
        case .orgGrant(let o, let r, _): ["org_grant", o, r]
        }
    }
}

extension GraphData {
    /// Applies changes to plain records: each change replaces or removes the record with its key.
    /// Slow (linear in the graph) but obviously right: the reference that
    /// ``AccessGraph/applying(_:)`` is tested against.
    public mutating func apply(_ changes: [GraphChange]) {
        for c in changes {
            switch c {
            case .org(let id, let r):
                orgs.removeAll { $0.id == id }
                if let r { orgs.append(r) }
            case .role(let id, let r):
                roles.removeAll { $0.id == id }
                if let r { roles.append(r) }
            case .entitlement(let org, let role, let present):
                entitlements.removeAll { $0.org == org && $0.role == role }
                if present { entitlements.append(EntitlementRecord(org: org, role: role)) }
            case .user(let id, let r):
                let aliases = users.first { $0.id == id }?.aliases ?? []
                users.removeAll { $0.id == id }
                if var r {
                    r.aliases = aliases
                    users.append(r)
                }
            case .alias(let alias, let user):
                for i in users.indices { users[i].aliases.removeAll { $0 == alias } }
                if let user, let i = users.firstIndex(where: { $0.id == user }) { users[i].aliases.append(alias) }
            case .resource(let type, let id, let r):
                resources.removeAll { $0.type == type && $0.id == id }
                if let r { resources.append(r) }
            case .assignment(let user, let role, let scope, let r):
                assignments.removeAll { $0.user == user && $0.role == role && $0.scope == scope }
                if let r { assignments.append(r) }
            case .orgGrant(let org, let role, let r):
                orgGrants.removeAll { $0.org == org && $0.role == role }
                if let r { orgGrants.append(r) }
            }
        }
    }
}

import CSQLite
import PIAMEngine

/// A graph loaded from the database, with the revision it reflects.
public struct LoadedGraph: Sendable {
    public var graph: AccessGraph
    /// The journal revision the graph was read at.
    public var revision: Int64

    /// A graph and the revision it was read at (e.g. a caller's pre-decision graph, to pass to
    /// ``Store/administer(_:as:now:graph:)``).
    public init(graph: AccessGraph, revision: Int64) {
        self.graph = graph
        self.revision = revision
    }
}

extension Store {
    /// Reads the whole graph in ONE read transaction, in the `GraphBuilder`'s order, and
    /// builds an `AccessGraph`. Inside a transaction already open on this connection (an
    /// administrative write), it reads within that one and so sees its uncommitted writes.
    public func loadGraph() throws(PIAMError) -> LoadedGraph {
        if db.inTransaction { return try readGraph() }
        return try db.withTransaction { () throws(PIAMError) -> LoadedGraph in try readGraph() }
    }

    private func readGraph() throws(PIAMError) -> LoadedGraph {
        let revision = try revision()
        func count(_ t: String) throws(PIAMError) -> Int { Int(try db.scalarInt("SELECT count(*) FROM \(t)") ?? 0) }
        var b = GraphBuilder()
        b.reserve(users: try count("users"), aliases: try count("user_aliases"),
                  assignments: try count("assignments"), resources: try count("resources"))

        let orgs = try db.prepare("""
            SELECT id, parent, CASE kind WHEN 'host' THEN 0 ELSE 1 END,
              CASE status WHEN 'pending' THEN 0 WHEN 'active' THEN 1 ELSE 2 END FROM orgs
            """)
        while try orgs.step() {
            try b.addOrg(OrgRecord(id: orgs.text(0), parent: orgs.optionalText(1),
                                   kind: OrgKind(rawValue: UInt8(orgs.int64(2)))!,
                                   status: OrgStatus(rawValue: UInt8(orgs.int64(3)))!))
        }
        let roles = try db.prepare("SELECT id, permissions FROM roles")
        while try roles.step() {
            let id = roles.text(0)
            guard let texts = JSONText.parseStringArray(roles.text(1)) else {
                throw PIAMError(.database, "role \"\(id)\": permissions is not a JSON array of strings")
            }
            var perms: [Permission] = []
            for t in texts {
                do throws(PIAMError) { perms.append(try Permission(parsing: t)) } catch { throw PIAMError(.database, "role \"\(id)\": \(error.message)") }
            }
            try b.addRole(RoleRecord(id: id, permissions: perms))
        }
        let ents = try db.prepare("SELECT org, role FROM entitlements")
        while try ents.step() { try b.addEntitlement(EntitlementRecord(org: ents.text(0), role: ents.text(1))) }

        let users = try db.prepare("""
            SELECT id, org, CASE status WHEN 'invited' THEN 0 WHEN 'active' THEN 1 ELSE 2 END, valid_until FROM users
            """)
        while try users.step() {
            try b.addUser(UserRecord(id: users.text(0), org: users.text(1),
                                     status: UserStatus(rawValue: UInt8(users.int64(2)))!,
                                     validUntil: users.optionalInt64(3)))
        }
        let aliases = try db.prepare("SELECT user, alias FROM user_aliases")
        while try aliases.step() { try b.addAlias(user: aliases.text(0), alias: aliases.text(1)) }

        let res = try db.prepare("SELECT type, id, org, owner, shared FROM resources")
        while try res.step() {
            try b.addResource(ResourceRecord(type: res.text(0), id: res.text(1), org: res.text(2),
                                             owner: res.optionalText(3), shared: res.int64(4) != 0))
        }
        let asg = try db.prepare("SELECT user, role, scope, valid_until FROM assignments")
        while try asg.step() {
            try b.addAssignment(AssignmentRecord(user: asg.text(0), role: asg.text(1), scope: asg.text(2),
                                                 validUntil: asg.optionalInt64(3)))
        }
        let grants = try db.prepare("SELECT org, role, include_suborgs, valid_until FROM org_grants")
        while try grants.step() {
            try b.addOrgGrant(OrgGrantRecord(org: grants.text(0), role: grants.text(1),
                                             includeSuborgs: grants.int64(2) != 0, validUntil: grants.optionalInt64(3)))
        }
        return LoadedGraph(graph: try b.build(), revision: revision)
    }
}

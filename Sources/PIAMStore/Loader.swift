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

        let orgs = try db.prepare("SELECT id, \(Rows.orgColumns) FROM orgs")
        while try orgs.step() { try b.addOrg(Rows.org(id: orgs.text(0), orgs, from: 1)) }
        let roles = try db.prepare("SELECT id, permissions FROM roles")
        while try roles.step() { try b.addRole(try Rows.role(id: roles.text(0), permissionsJSON: roles.text(1))) }
        let ents = try db.prepare("SELECT org, role FROM entitlements")
        while try ents.step() { try b.addEntitlement(EntitlementRecord(org: ents.text(0), role: ents.text(1))) }
        let users = try db.prepare("SELECT id, \(Rows.userColumns) FROM users")
        while try users.step() { try b.addUser(Rows.user(id: users.text(0), users, from: 1)) }
        let aliases = try db.prepare("SELECT user, alias FROM user_aliases")
        while try aliases.step() { try b.addAlias(user: aliases.text(0), alias: aliases.text(1)) }
        let res = try db.prepare("SELECT type, id, \(Rows.resourceColumns) FROM resources")
        while try res.step() { try b.addResource(Rows.resource(type: res.text(0), id: res.text(1), res, from: 2)) }
        let asg = try db.prepare("SELECT user, role, scope, \(Rows.assignmentColumns) FROM assignments")
        while try asg.step() {
            try b.addAssignment(Rows.assignment(user: asg.text(0), role: asg.text(1), scope: asg.text(2), asg, from: 3))
        }
        let grants = try db.prepare("SELECT org, role, \(Rows.orgGrantColumns) FROM org_grants")
        while try grants.step() { try b.addOrgGrant(Rows.orgGrant(org: grants.text(0), role: grants.text(1), grants, from: 2)) }
        return LoadedGraph(graph: try b.build(), revision: revision)
    }
}

/// The graph tables' non-key columns as the engine's records want them, shared by the full
/// loader and the journal follower (``Store/changes(after:schemaVersion:maxRows:)``) so both
/// decode a row the same way.
enum Rows {
    static let orgColumns = """
        parent, CASE kind WHEN 'host' THEN 0 ELSE 1 END, CASE status WHEN 'pending' THEN 0 WHEN 'active' THEN 1 ELSE 2 END
        """
    static func org(id: String, _ s: Statement, from i: Int32) -> OrgRecord {
        OrgRecord(id: id, parent: s.optionalText(i), kind: OrgKind(rawValue: UInt8(s.int64(i + 1)))!,
                  status: OrgStatus(rawValue: UInt8(s.int64(i + 2)))!)
    }

    static func role(id: String, permissionsJSON: String) throws(PIAMError) -> RoleRecord {
        guard let texts = JSONText.parseStringArray(permissionsJSON) else {
            throw PIAMError(.database, "role \"\(id)\": permissions is not a JSON array of strings")
        }
        var perms: [Permission] = []
        for t in texts {
            do throws(PIAMError) { perms.append(try Permission(parsing: t)) } catch { throw PIAMError(.database, "role \"\(id)\": \(error.message)") }
        }
        return RoleRecord(id: id, permissions: perms)
    }

    static let userColumns = "org, CASE status WHEN 'invited' THEN 0 WHEN 'active' THEN 1 ELSE 2 END, valid_until"
    static func user(id: String, _ s: Statement, from i: Int32) -> UserRecord {
        UserRecord(id: id, org: s.text(i), status: UserStatus(rawValue: UInt8(s.int64(i + 1)))!, validUntil: s.optionalInt64(i + 2))
    }

    static let resourceColumns = "org, owner, shared"
    static func resource(type: String, id: String, _ s: Statement, from i: Int32) -> ResourceRecord {
        ResourceRecord(type: type, id: id, org: s.text(i), owner: s.optionalText(i + 1), shared: s.int64(i + 2) != 0)
    }

    static let assignmentColumns = "valid_until"
    static func assignment(user: String, role: String, scope: String, _ s: Statement, from i: Int32) -> AssignmentRecord {
        AssignmentRecord(user: user, role: role, scope: scope, validUntil: s.optionalInt64(i))
    }

    static let orgGrantColumns = "include_suborgs, valid_until"
    static func orgGrant(org: String, role: String, _ s: Statement, from i: Int32) -> OrgGrantRecord {
        OrgGrantRecord(org: org, role: role, includeSuborgs: s.int64(i) != 0, validUntil: s.optionalInt64(i + 1))
    }
}

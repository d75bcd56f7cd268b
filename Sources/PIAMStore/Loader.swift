import CSQLite
import Foundation
import PIAMEngine

/// A graph loaded from the database, with the revision it reflects.
public struct LoadedGraph: Sendable {
    public var graph: AccessGraph
    /// The journal revision the graph was read at.
    public var revision: Int64
    /// The identity namespaces of the partners whose just-in-time creation is enabled, read in
    /// the same transaction (empty before schema v7).
    public var jit: JITNamespaces

    /// A graph and the revision it was read at (e.g. a caller's pre-decision graph, to pass to
    /// ``Store/administer(_:as:now:graph:)``).
    public init(graph: AccessGraph, revision: Int64, jit: JITNamespaces = .empty) {
        self.graph = graph
        self.revision = revision
        self.jit = jit
    }
}

extension Store {
    /// Reads the whole graph in ONE read transaction, in the `GraphBuilder`'s order, and
    /// builds an `AccessGraph`. Inside a transaction already open on this connection (an
    /// administrative write), it reads within that one and so sees its uncommitted writes.
    ///
    /// The rows are read and decoded on a thread of their own while the calling thread builds
    /// (the two halves cost about the same, so a load takes about the time of the slower one on
    /// two cores). The caller blocks until both are done; the connection is used by one thread
    /// at a time (the reader, while the caller waits for its rows), and never after this returns.
    public func loadGraph() throws(PIAMError) -> LoadedGraph {
        if db.inTransaction { return try readGraph() }
        return try db.withTransaction { () throws(PIAMError) -> LoadedGraph in try readGraph() }
    }

    private func readGraph() throws(PIAMError) -> LoadedGraph {
        let revision = try revision()
        let grantedAt = try grantedAtColumn()
        func count(_ t: String) throws(PIAMError) -> Int { Int(try db.scalarInt("SELECT count(*) FROM \(t)") ?? 0) }
        var b = GraphBuilder()
        b.reserve(users: try count("users"), aliases: try count("user_aliases"),
                  assignments: try count("assignments"), resources: try count("resources"))

        let handoff = RowHandoff()
        let reader = Thread { [box = ExclusiveUse(self)] in box.store.readRows(into: handoff, grantedAt: grantedAt) }
        reader.name = "piam-graph-reader"
        reader.start()
        do throws(PIAMError) {
            while let chunk = try handoff.take().get() { try b.add(chunk) }
        } catch {
            handoff.cancel()
            handoff.waitUntilFinished()
            throw error
        }
        handoff.waitUntilFinished()
        return LoadedGraph(graph: try b.build(), revision: revision, jit: try jitNamespaces())
    }

    /// The reader thread: every graph table in the builder's order, in chunks, then the end
    /// (`nil`) or the first error. Stops early when the builder has given up. `grantedAt` is
    /// ``grantedAtColumn()`` as the caller read it in the same transaction.
    fileprivate func readRows(into out: RowHandoff, grantedAt: String) {
        defer { out.finish() }
        do throws(PIAMError) {
            func stream<R: Sendable>(_ sql: String, _ wrap: ([R]) -> RowChunk,
                                     _ row: (Statement) throws(PIAMError) -> R) throws(PIAMError) -> Bool {
                let st = try db.prepare(sql)
                var rows: [R] = []
                rows.reserveCapacity(RowHandoff.chunkRows)
                while try st.step() {
                    rows.append(try row(st))
                    if rows.count == RowHandoff.chunkRows {
                        guard out.put(.success(wrap(rows))) else { return false }
                        rows = []
                        rows.reserveCapacity(RowHandoff.chunkRows)
                    }
                }
                return rows.isEmpty || out.put(.success(wrap(rows)))
            }
            guard try stream("SELECT id, \(Rows.orgColumns) FROM orgs", RowChunk.orgs, { s in Rows.org(id: s.text(0), s, from: 1) }),
                  try stream("SELECT id, permissions FROM roles", RowChunk.roles, { s throws(PIAMError) in try Rows.role(id: s.text(0), permissionsJSON: s.text(1)) }),
                  try stream("SELECT org, role FROM entitlements", RowChunk.entitlements, { s in EntitlementRecord(org: s.text(0), role: s.text(1)) }),
                  try stream("SELECT id, \(Rows.userColumns) FROM users", RowChunk.users, { s in Rows.user(id: s.text(0), s, from: 1) }),
                  try stream("SELECT user, alias FROM user_aliases", RowChunk.aliases, { s in AliasRow(user: s.text(0), alias: s.text(1)) }),
                  try stream("SELECT type, id, \(Rows.resourceColumns) FROM resources", RowChunk.resources,
                             { s in Rows.resource(type: s.text(0), id: s.text(1), s, from: 2) }),
                  try stream("SELECT user, role, scope, \(Rows.assignmentColumns(grantedAt)) FROM assignments", RowChunk.assignments,
                             { s in Rows.assignment(user: s.text(0), role: s.text(1), scope: s.text(2), s, from: 3) }),
                  try stream("SELECT org, role, \(Rows.orgGrantColumns(grantedAt)) FROM org_grants", RowChunk.orgGrants,
                             { s in Rows.orgGrant(org: s.text(0), role: s.text(1), s, from: 2) })
            else { return }
            _ = out.put(.success(nil))
        } catch {
            _ = out.put(.failure(error))
        }
    }
}

/// The store, handed to the reader thread for the length of one load, during which the calling
/// thread does not touch it (it waits for the reader's rows and for its end).
private final class ExclusiveUse: @unchecked Sendable {
    let store: Store
    init(_ store: Store) { self.store = store }
}

/// One user alias row.
struct AliasRow: Sendable {
    var user: String
    var alias: String
}

/// Decoded rows of one graph table, in the builder's order.
enum RowChunk: Sendable {
    case orgs([OrgRecord]), roles([RoleRecord]), entitlements([EntitlementRecord]), users([UserRecord])
    case aliases([AliasRow]), resources([ResourceRecord]), assignments([AssignmentRecord]), orgGrants([OrgGrantRecord])
}

extension GraphBuilder {
    /// Adds a chunk of rows.
    mutating func add(_ chunk: RowChunk) throws(PIAMError) {
        switch chunk {
        case .orgs(let rows): for r in rows { try addOrg(r) }
        case .roles(let rows): for r in rows { try addRole(r) }
        case .entitlements(let rows): for r in rows { try addEntitlement(r) }
        case .users(let rows): for r in rows { try addUser(r) }
        case .aliases(let rows): for r in rows { try addAlias(user: r.user, alias: r.alias) }
        case .resources(let rows): for r in rows { try addResource(r) }
        case .assignments(let rows): for r in rows { try addAssignment(r) }
        case .orgGrants(let rows): for r in rows { try addOrgGrant(r) }
        }
    }
}

/// A bounded queue of row chunks from the reader thread (one producer) to the builder (one
/// consumer). `nil` ends the rows; the builder cancels when it gives up, which makes the
/// reader's next `put` return false.
final class RowHandoff: @unchecked Sendable {  // all state is guarded by `condition`
    /// Rows per chunk, and chunks in flight: enough to keep both threads busy, little memory.
    static let chunkRows = 4096
    static let capacity = 8

    private let condition = NSCondition()
    private var queue: [Result<RowChunk?, PIAMError>] = []
    private var head = 0
    private var cancelled = false
    private var finished = false

    /// Queues an item; false once the builder has cancelled.
    func put(_ item: Result<RowChunk?, PIAMError>) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while queue.count - head >= Self.capacity && !cancelled { condition.wait() }
        if cancelled { return false }
        queue.append(item)
        condition.broadcast()
        return true
    }

    /// The next item, waiting for it.
    func take() -> Result<RowChunk?, PIAMError> {
        condition.lock()
        defer { condition.unlock() }
        while queue.count == head { condition.wait() }
        let item = queue[head]
        head += 1
        if head == queue.count {
            queue.removeAll(keepingCapacity: true)
            head = 0
        }
        condition.broadcast()
        return item
    }

    /// The builder gives up: the reader stops at its next `put`.
    func cancel() {
        condition.lock()
        cancelled = true
        queue.removeAll()
        head = 0
        condition.broadcast()
        condition.unlock()
    }

    /// The reader is done with the connection.
    func finish() {
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    func waitUntilFinished() {
        condition.lock()
        while !finished { condition.wait() }
        condition.unlock()
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

    /// `grantedAt`: ``Store/grantedAtColumn()`` (the column, or `NULL` before schema v3).
    static func assignmentColumns(_ grantedAt: String) -> String { "valid_until, granted_by, \(grantedAt)" }
    static func assignment(user: String, role: String, scope: String, _ s: Statement, from i: Int32) -> AssignmentRecord {
        AssignmentRecord(user: user, role: role, scope: scope, validUntil: s.optionalInt64(i),
                         grantedBy: s.optionalText(i + 1), grantedAt: s.optionalInt64(i + 2))
    }

    static func orgGrantColumns(_ grantedAt: String) -> String { "include_suborgs, valid_until, granted_by, \(grantedAt)" }
    static func orgGrant(org: String, role: String, _ s: Statement, from i: Int32) -> OrgGrantRecord {
        OrgGrantRecord(org: org, role: role, includeSuborgs: s.int64(i) != 0, validUntil: s.optionalInt64(i + 1),
                       grantedBy: s.optionalText(i + 2), grantedAt: s.optionalInt64(i + 3))
    }
}

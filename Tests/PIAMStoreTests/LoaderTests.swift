import Foundation
import PIAMDemo
import PIAMEngine
@testable import PIAMStore
import Testing

/// `loadGraph` reads rows on a thread of its own while the caller builds; these tests hold it to
/// a plain sequential read of the same tables, and make it fail on either side of the handoff.
@Suite("graph load with a reader thread", .serialized, .timeLimit(.minutes(2)))
struct ThreadedLoaderTests {
    /// A generated graph big enough that the reader runs many chunks ahead of the builder and
    /// waits for room (20,000 users, ~60,000 assignments: > 15 chunks against 8 in flight).
    static func generated(_ dir: TempDir) throws -> Store {
        let store = try freshStore(dir)
        let doc = DemoGenerator(scale: .init(orgs: 200, users: 20_000, resources: 2_000), seed: 3, now: 1_800_000_000_000).document()
        _ = try store.importDocument(doc, mode: .merge)
        return store
    }

    /// The tables read one after the other on this thread, with the loader's own row decoding.
    static func sequential(_ store: Store) throws -> AccessGraph {
        var d = GraphData()
        let db = store.db
        var aliases: [String: [String]] = [:]
        let a = try db.prepare("SELECT user, alias FROM user_aliases")
        while try a.step() { aliases[a.text(0), default: []].append(a.text(1)) }
        let o = try db.prepare("SELECT id, \(Rows.orgColumns) FROM orgs")
        while try o.step() { d.orgs.append(Rows.org(id: o.text(0), o, from: 1)) }
        let r = try db.prepare("SELECT id, permissions FROM roles")
        while try r.step() { d.roles.append(try Rows.role(id: r.text(0), permissionsJSON: r.text(1))) }
        let e = try db.prepare("SELECT org, role FROM entitlements")
        while try e.step() { d.entitlements.append(EntitlementRecord(org: e.text(0), role: e.text(1))) }
        let u = try db.prepare("SELECT id, \(Rows.userColumns) FROM users")
        while try u.step() {
            var user = Rows.user(id: u.text(0), u, from: 1)
            user.aliases = aliases[user.id] ?? []
            d.users.append(user)
        }
        let res = try db.prepare("SELECT type, id, \(Rows.resourceColumns) FROM resources")
        while try res.step() { d.resources.append(Rows.resource(type: res.text(0), id: res.text(1), res, from: 2)) }
        let asg = try db.prepare("SELECT user, role, scope, \(Rows.assignmentColumns("granted_at")) FROM assignments")
        while try asg.step() { d.assignments.append(Rows.assignment(user: asg.text(0), role: asg.text(1), scope: asg.text(2), asg, from: 3)) }
        let g = try db.prepare("SELECT org, role, \(Rows.orgGrantColumns("granted_at")) FROM org_grants")
        while try g.step() { d.orgGrants.append(Rows.orgGrant(org: g.text(0), role: g.text(1), g, from: 2)) }
        return try GraphBuilder.build(d)
    }

    static func records(_ g: AccessGraph) -> [String: Set<AnyHashable>] {
        let d = g.graphData()
        return ["orgs": Set(d.orgs), "roles": Set(d.roles), "users": Set(d.users), "resources": Set(d.resources),
                "entitlements": Set(d.entitlements), "assignments": Set(d.assignments), "orgGrants": Set(d.orgGrants)]
    }

    @Test("the loaded graph has exactly the records of a sequential read, and decides the same")
    func sameAsSequential() throws {
        let dir = TempDir()
        let store = try Self.generated(dir)
        let loaded = try store.loadGraph()
        let reference = try Self.sequential(store)
        #expect(loaded.revision == (try store.revision()))
        let got = Self.records(loaded.graph), want = Self.records(reference)
        for (table, rows) in want {
            #expect(got[table] == rows, "\(table): \(got[table]?.count ?? 0) records loaded, \(rows.count) in the tables")
        }
        #expect(loaded.graph.counts.assignments > 8 * RowHandoff.chunkRows, "the reader had to wait for room")
        let mix = CheckMix.draw(from: reference, count: 2_000, allowRatio: 0.5, seed: 5, now: 1_800_000_000_000)
        for c in mix.checks { #expect(loaded.graph.check(c, now: 1_800_000_000_000) == reference.check(c, now: 1_800_000_000_000)) }
        // Inside an open write transaction the load sees its uncommitted rows (same connection).
        try store.db.execute("BEGIN IMMEDIATE")
        try store.db.execute("UPDATE users SET status = 'suspended' WHERE id = (SELECT id FROM users LIMIT 1)")
        let inside = try store.loadGraph().graph
        try store.db.execute("ROLLBACK")
        #expect(inside.graphData().users.filter { $0.status == .suspended }.count
                == loaded.graph.graphData().users.filter { $0.status == .suspended }.count + 1)
    }

    @Test("an error on the reader's side (a role's permissions unreadable) is thrown, and the store stays usable")
    func readerError() throws {
        let dir = TempDir()
        let store = try Self.generated(dir)
        let role = try #require(try store.db.scalarText("SELECT id FROM roles ORDER BY id LIMIT 1"))
        let saved = try #require(try store.db.scalarText("SELECT permissions FROM roles WHERE id = '\(role)'"))
        try store.db.execute("UPDATE roles SET permissions = '[1]' WHERE id = '\(role)'")
        let message = errorMessage { _ = try store.loadGraph() }
        #expect(message == "role \"\(role)\": permissions is not a JSON array of strings", "\(message ?? "no error")")
        #expect(!store.db.inTransaction, "the load's transaction is closed")
        try store.db.execute("UPDATE roles SET permissions = '\(saved)' WHERE id = '\(role)'")
        #expect(try store.loadGraph().graph.counts.users == 20_000)
    }

    @Test("an error on the builder's side while the reader is chunks ahead stops the reader; the store stays usable")
    func builderError() throws {
        let dir = TempDir()
        let store = try Self.generated(dir)
        // The first user row in table order names an org that does not exist: the builder fails
        // on the first users chunk while ~15 assignment chunks are still to be read.
        try store.db.execute("PRAGMA foreign_keys = OFF")
        let user = try #require(try store.db.scalarText("SELECT id FROM users LIMIT 1"))
        let org = try #require(try store.db.scalarText("SELECT org FROM users WHERE id = '\(user)'"))
        try store.db.execute("UPDATE users SET org = 'no-such-org' WHERE id = '\(user)'")
        for _ in 0..<3 {
            let message = errorMessage { _ = try store.loadGraph() }
            #expect(message?.contains("no-such-org") == true, "\(message ?? "no error")")
            #expect(!store.db.inTransaction)
        }
        try store.db.execute("UPDATE users SET org = '\(org)' WHERE id = '\(user)'")
        try store.db.execute("PRAGMA foreign_keys = ON")
        #expect(try store.loadGraph().graph.counts.users == 20_000)
    }
}

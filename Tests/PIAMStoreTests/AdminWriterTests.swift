import Foundation
import PIAMDemo
import PIAMEngine
@testable import PIAMStore
import Testing

/// The writer that keeps its graph (piam-admind's): after every operation its graph equals a
/// whole load of the database, although it never loads one after the first; other writers'
/// commits between its operations are seen inside its transaction.
@Suite("an administrative writer keeps its graph current through the journal")
struct AdminWriterTests {
    static let now: Timestamp = DemoGenerator(now: 1_800_000_000_000).now
    static let hostAdmin = "nina.hq"

    static func demoStore(_ dir: TempDir, _ name: String = "piam.db") throws -> Store {
        let store = try freshStore(dir, name)
        _ = try store.importDocument(DemoGenerator(now: now).document())
        return store
    }

    /// A random operation the host administrator may usually perform on the demo graph (some
    /// are refused or fail — a user already removed, an alias taken — which must leave the
    /// writer's graph as it was).
    static func randomOperation(_ data: GraphData, _ rng: inout SplitMix64, serial: Int) -> AdminOperation {
        let users = data.users.map(\.id), orgs = data.orgs.map(\.id)
        let roles = ["claims-viewer", "claims-handler", "policy-viewer", "quote-creator", "catalog-reader"]
        let partnerOrgs = data.orgs.filter { $0.kind == .partner }.map(\.id)
        func pick(_ xs: [String]) -> String { xs[Int(rng.next() % UInt64(xs.count))] }
        switch rng.next() % 11 {
        case 0: return .inviteUser(user: "w\(serial)", org: pick(partnerOrgs), name: "W \(serial)", email: nil, aliases: ["w\(serial)@idp"], validUntil: nil)
        case 1: return .suspendUser(user: pick(users))
        case 2: return .reactivateUser(user: pick(users))
        case 3: return .grant(user: pick(users), role: pick(roles), scope: nil, validUntil: now + 86_400_000)
        case 4: return .revoke(user: pick(users), role: pick(roles), scope: nil)
        case 5: return .createOrg(org: "wo\(serial)", parent: pick(partnerOrgs), name: nil, kind: nil)
        case 6: return .suspendOrg(org: pick(partnerOrgs))
        case 7: return .reactivateOrg(org: pick(orgs))
        case 8: return .addAlias(user: pick(users), alias: "a\(serial)")
        case 9: return .grantToOrg(org: pick(partnerOrgs), role: pick(roles), includeSuborgs: rng.next() % 2 == 0, validUntil: nil)
        default: return .updateUser(user: pick(users), name: .some("Renamed \(serial)"), email: nil, validUntil: nil)
        }
    }

    @Test func afterEveryOperationTheGraphEqualsAWholeLoad() throws {
        let dir = TempDir()
        let store = try Self.demoStore(dir)
        let other = try Store(path: dir.path("piam.db"))
        let writer = try AdminWriter(store: store)
        var rng = SplitMix64(seed: 42)
        var allowed = 0, refusedOrFailed = 0, otherWrites = 0
        for i in 0..<150 {
            let data = writer.current.graph.graphData()
            if i % 7 == 3 {
                // Another writer (piamctl, a second service) commits between the writer's operations.
                _ = try? other.administer(Self.randomOperation(data, &rng, serial: 10_000 + i), as: Self.hostAdmin, now: Self.now)
                otherWrites += 1
            }
            let before = writer.current
            do {
                let r = try writer.administer(Self.randomOperation(data, &rng, serial: i), as: Self.hostAdmin, now: Self.now)
                if r.allowed { allowed += 1 } else { refusedOrFailed += 1 }
            } catch {
                refusedOrFailed += 1
                #expect(writer.current.revision == before.revision, "a failed operation keeps the graph it had")
            }
            if i % 7 != 3 || writer.current.revision != before.revision {
                let fresh = try store.loadGraph()
                #expect(writer.current.revision == fresh.revision)
                expectSame(writer.current.graph.graphData(), fresh.graph.graphData(), "operation \(i)")
            }
        }
        #expect(allowed > 60 && refusedOrFailed > 5 && otherWrites > 10)
        #expect(writer.fullLoads == 1, "the journal brought the graph up to date every time")
        // Outside a write, catching up follows the other writer too.
        let late = try other.administer(.inviteUser(user: "late", org: "acme-brokers", name: nil, email: nil, aliases: [], validUntil: nil),
                                        as: Self.hostAdmin, now: Self.now)
        #expect(late.allowed)
        #expect(try writer.catchUp())
        expectSame(writer.current.graph.graphData(), try store.loadGraph().graph.graphData())
    }

    @Test func aDecisionSeesAnotherWritersCommitInsideTheTransaction() throws {
        let dir = TempDir()
        let store = try Self.demoStore(dir)
        let other = try Store(path: dir.path("piam.db"))
        let writer = try AdminWriter(store: store)
        // A partner admin of the demo, and a colleague it may suspend.
        let data = writer.current.graph.graphData()
        let acmeAdmin = try #require(data.assignments.first { $0.role == "partner-admin" && $0.scope == "acme-brokers" }?.user)
        let colleague = try #require(data.users.first { $0.org.hasPrefix("acme") && $0.id != acmeAdmin && $0.status == .active }?.id)
        // The business suspends the admin through another connection; the writer's graph still
        // shows it active, yet its next decision is made on the database's state.
        _ = try other.administer(.suspendUser(user: acmeAdmin), as: Self.hostAdmin, now: Self.now)
        let r = try writer.administer(.suspendUser(user: colleague), as: acmeAdmin, now: Self.now)
        #expect(!r.allowed)
        #expect(r.reason == Reason.subjectInactive.name)
        let fresh = try store.loadGraph()
        #expect(try writer.catchUp())
        expectSame(writer.current.graph.graphData(), fresh.graph.graphData())
    }

    @Test func aBulkRunKeepsTheGraphOnlyWhenItCommits() throws {
        let dir = TempDir()
        let store = try Self.demoStore(dir)
        let writer = try AdminWriter(store: store)
        let start = writer.current
        let refused = try writer.apply([
            AdminBatchItem(actor: Self.hostAdmin, operation: .createOrg(org: "bulk-a", parent: "acme-brokers", name: nil, kind: nil)),
            AdminBatchItem(actor: Self.hostAdmin, operation: .inviteUser(user: "bulk-u", org: "bulk-a", name: nil, email: nil, aliases: [], validUntil: nil)),
            AdminBatchItem(actor: "bulk-u", operation: .createOrg(org: "bulk-b", parent: "bulk-a", name: nil, kind: nil)),
        ], now: Self.now)
        #expect(!refused.committed)
        #expect(writer.current.revision == start.revision)
        expectSame(writer.current.graph.graphData(), start.graph.graphData())
        let committed = try writer.apply([
            AdminBatchItem(actor: Self.hostAdmin, operation: .createOrg(org: "bulk-a", parent: "acme-brokers", name: nil, kind: nil)),
            AdminBatchItem(actor: Self.hostAdmin, operation: .inviteUser(user: "bulk-u", org: "bulk-a", name: nil, email: nil, aliases: [], validUntil: nil)),
            AdminBatchItem(actor: Self.hostAdmin, operation: .grant(user: "bulk-u", role: "claims-viewer", scope: "bulk-a", validUntil: nil)),
        ], now: Self.now)
        #expect(committed.committed)
        #expect(committed.graphLoads == 0, "the kept graph was caught up, not reloaded")
        let fresh = try store.loadGraph()
        #expect(writer.current.revision == fresh.revision)
        expectSame(writer.current.graph.graphData(), fresh.graph.graphData())
    }
}

/// Compares two graphs part by part, naming the first records that differ (a whole graph in a
/// failure message is unreadable).
func expectSame(_ a: GraphData, _ b: GraphData, _ what: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
    func part<T: Hashable>(_ name: String, _ x: [T], _ y: [T]) {
        let onlyA = Set(x).subtracting(y), onlyB = Set(y).subtracting(x)
        #expect(onlyA.isEmpty && onlyB.isEmpty && x.count == y.count,
                "\(what) \(name): only in the first \(onlyA.prefix(3)), only in the second \(onlyB.prefix(3))", sourceLocation: sourceLocation)
    }
    part("orgs", a.orgs, b.orgs); part("roles", a.roles, b.roles); part("users", a.users, b.users)
    part("resources", a.resources, b.resources); part("entitlements", a.entitlements, b.entitlements)
    part("assignments", a.assignments, b.assignments); part("org grants", a.orgGrants, b.orgGrants)
}

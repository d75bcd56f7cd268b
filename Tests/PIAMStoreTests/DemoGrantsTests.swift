import Foundation
import PIAMDemo
import PIAMEngine
@testable import PIAMStore
import Testing

/// The demo databases tell the truth about who granted what: every assignment and org grant
/// was made by its `granted_by`, by the administration rules (DESIGN §3).
///
/// What "could have made it" means here, precisely. A grant's granter needs the rules to allow
/// it on the graph *as it was when the grant was made* — not on the final graph, where the
/// grant itself may be the very power it needs (an admin "granting" itself its own role, or an
/// org grant whose members include its granter). So the test replays the database: it starts
/// from the final orgs, users, roles and entitlements with no grants but the bootstrap, and
/// repeatedly makes every grant whose `granted_by` the engine now allows
/// (`canAssign(granted_by, user, role, scope)` for an assignment, `canGrantToOrg(granted_by, org,
/// role)` for an org grant), until nothing more can be made. Holdings only ever add power, so
/// this finds an order in which every grant could have been made, each on the grants before
/// it, exactly when one exists; a grant left over could not have been made by its granter in
/// any order.
///
/// The replay keeps the final statuses and expiries (a suspended partner, a pending one, invited
/// and suspended users), evaluated at the generator's `now`: stricter than history, where a
/// partner's admins may have granted before it was suspended. The demo records such grants as
/// the business's, whose host administrator may make them now as then.
///
/// The one grant without a granter is the bootstrap — the first host administrator's
/// `host-admin` over the root, written by whoever installed PIAM (no user could have made it
/// before anyone held `host-admin`); the test requires it to be the only one.
@Suite("demo grants are made by people who could have made them")
struct DemoGrantsTests {
    static let now: Timestamp = 1_800_000_000_000

    /// The generator's document written to a fresh database, read back: the export (with
    /// `granted_by`) and the graph's records.
    static func written(_ generator: DemoGenerator, _ dir: TempDir) throws -> (ImportDocument, GraphData) {
        let store = try freshStore(dir)
        _ = try store.importDocument(generator.document())
        let exported = try JSONDecoder().decode(ImportDocument.self, from: store.exportData())
        return (exported, try store.loadGraph().graph.graphData())
    }

    static func record(_ a: ImportDocument.Assignment) -> AssignmentRecord {
        AssignmentRecord(user: a.user, role: a.role, scope: a.scope, validUntil: a.validUntil.flatMap(RFC3339.parse))
    }

    static func record(_ g: ImportDocument.OrgGrant) -> OrgGrantRecord {
        OrgGrantRecord(org: g.org, role: g.role, includeSuborgs: g.includeSuborgs ?? false, validUntil: g.validUntil.flatMap(RFC3339.parse))
    }

    /// The grants no replay explains (see the suite's documentation), described; and the number
    /// of rounds the replay took.
    static func unexplained(_ doc: ImportDocument, _ final: GraphData, now: Timestamp) throws -> (grants: [String], rounds: Int) {
        var state = final
        state.assignments = doc.assignments.filter { $0.grantedBy == nil }.map(record)
        state.orgGrants = []
        var assignments = doc.assignments.filter { $0.grantedBy != nil }
        var orgGrants = doc.orgGrants
        var rounds = 0
        while true {
            let g = try GraphBuilder.build(state)
            let madeA = assignments.map { g.canAssign(actor: $0.grantedBy!, target: $0.user, role: $0.role, scope: $0.scope, now: now).allowed }
            let madeG = orgGrants.map { o in o.grantedBy.map { g.canGrantToOrg(actor: $0, org: o.org, role: o.role, now: now).allowed } ?? false }
            if !madeA.contains(true) && !madeG.contains(true) { break }
            rounds += 1
            state.assignments += zip(assignments, madeA).filter(\.1).map { record($0.0) }
            state.orgGrants += zip(orgGrants, madeG).filter(\.1).map { record($0.0) }
            assignments = zip(assignments, madeA).filter { !$0.1 }.map(\.0)
            orgGrants = zip(orgGrants, madeG).filter { !$0.1 }.map(\.0)
        }
        let last = try GraphBuilder.build(state)
        let left = assignments.map { a in
            "assignment \(a.role) to \(a.user) over \(a.scope ?? "-") by \(a.grantedBy!): "
                + last.canAssign(actor: a.grantedBy!, target: a.user, role: a.role, scope: a.scope, now: now).reason.name
        } + orgGrants.map { "org grant \($0.role) on \($0.org) by \($0.grantedBy ?? "nobody")" }
        return (left, rounds)
    }

    func expectEveryGrantExplained(_ generator: DemoGenerator, bootstrap: String) throws {
        let dir = TempDir()
        let (doc, final) = try Self.written(generator, dir)
        #expect(doc.assignments.count > 10 && doc.orgGrants.count > 2)
        #expect(doc.assignments.filter { $0.grantedBy == nil }.map { "\($0.user) \($0.role) \($0.scope ?? "-")" } == ["\(bootstrap) host-admin host"])
        #expect(final.users.first { $0.id == bootstrap }?.org == "host")
        let (left, rounds) = try Self.unexplained(doc, final, now: Self.now)
        #expect(left.isEmpty, "\(left.count) grants their granter could not have made, e.g. \(left.prefix(8))")
        #expect(rounds >= 2)  // the business first, then the partners' own admins
    }

    @Test func theCuratedDemo() throws {
        try expectEveryGrantExplained(DemoGenerator(now: Self.now), bootstrap: "nina.hq")
        // And the partners' admins do hand out roles where the rules let them.
        let doc = DemoGenerator(now: Self.now).document()
        let byPartnerAdmins = doc.assignments.filter { $0.grantedBy?.hasSuffix("-admin") == true }
        #expect(byPartnerAdmins.contains { $0.grantedBy == "acme-brokers-admin" && $0.role == "partner-admin" && $0.user == "acme-brokers-north-admin" })
        #expect(byPartnerAdmins.contains { $0.grantedBy == "acme-brokers-admin" && $0.role == "quote-creator" })
        #expect(doc.orgGrants.contains { $0.org == "acme-brokers-south" && $0.grantedBy == "acme-brokers-admin" })
        // A suspended partner's admins can do nothing: the business made its grants.
        #expect(doc.assignments.filter { $0.user.hasPrefix("granite-brokers-") }.allSatisfy { $0.grantedBy == "nina.hq" })
    }

    @Test func aGeneratedGraph() throws {
        // 20 partners, so that one is suspended (p00013) and one pending (p00017).
        let generator = DemoGenerator(scale: .init(orgs: 20 * 16 + 3, users: 1_500, resources: 100), seed: 5, now: Self.now)
        try expectEveryGrantExplained(generator, bootstrap: "hq.admin")
        let doc = generator.document()
        #expect(doc.users.count == 1_500)
        #expect(doc.assignments.contains { $0.grantedBy?.hasPrefix("u") == true })
    }
}

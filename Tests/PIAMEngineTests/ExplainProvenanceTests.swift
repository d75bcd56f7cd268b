import Foundation
import PIAMEngine
import Testing

/// What an explanation shows must be true: who granted each holding and when, and which
/// organizations made an `org_inactive` decision.
@Suite("Explain: provenance and inactive orgs")
struct ExplainProvenanceTests {
    /// The fixture with a granter and a time on some grants, and `acme` suspended below an
    /// active `partners` (a pending `acme-north` between it and `acme-north-x`).
    func graph() throws -> AccessGraph {
        var d = fixtureData()
        for i in d.assignments.indices where d.assignments[i].user == "alice" {
            d.assignments[i].grantedBy = "acme-admin"
            d.assignments[i].grantedAt = now - 3 * day
        }
        for i in d.orgGrants.indices { d.orgGrants[i].grantedBy = "hal"; d.orgGrants[i].grantedAt = now - 10 * day }
        for i in d.orgs.indices {
            if d.orgs[i].id == "acme" { d.orgs[i].status = .suspended }
            if d.orgs[i].id == "acme-north" { d.orgs[i].status = .pending }
        }
        return try GraphBuilder.build(d)
    }

    @Test func everyHoldingShowsWhoGrantedItAndWhen() throws {
        var d = fixtureData()
        for i in d.assignments.indices where d.assignments[i].user == "alice" {
            d.assignments[i].grantedBy = "acme-admin"
            d.assignments[i].grantedAt = now - 3 * day
        }
        for i in d.orgGrants.indices { d.orgGrants[i].grantedBy = "hal"; d.orgGrants[i].grantedAt = now - 10 * day }
        let g = try GraphBuilder.build(d)
        let e = g.explain(CheckRequest(subject: "alice", action: "read", resource: ResourceRef(type: "claim", id: "CLM-acme-1")), now: now)
        let assignments = e.holdings.filter { $0.source == "assignment" }
        let grants = e.holdings.filter { $0.source == "org_grant" }
        #expect(!assignments.isEmpty && !grants.isEmpty)
        for h in assignments {
            #expect(h.grantedBy == "acme-admin" && h.grantedAt == now - 3 * day, "\(h)")
        }
        for h in grants {
            #expect(h.grantedBy == "hal" && h.grantedAt == now - 10 * day, "\(h)")
        }
        // Not recorded: absent, in the record and in the JSON.
        let other = g.explain(CheckRequest(subject: "acme-admin", action: "read", resource: ResourceRef(type: "claim", id: "CLM-acme-1")), now: now)
        let unknown = try #require(other.holdings.first { $0.source == "assignment" })
        #expect(unknown.grantedBy == nil && unknown.grantedAt == nil)
        let json = try JSONEncoder().encode(e)
        let object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        let first = try #require((object["holdings"] as? [[String: Any]])?.first { $0["source"] as? String == "assignment" })
        #expect(first["granted_by"] as? String == "acme-admin" && (first["granted_at"] as? NSNumber)?.int64Value == now - 3 * day, "\(first)")
        let back = try JSONDecoder().decode(Explanation.self, from: json)
        #expect(back == e)
    }

    @Test func orgInactiveNamesEveryInactiveOrgOnThePath() throws {
        let g = try graph()
        let e = g.explain(CheckRequest(subject: "nx-user", action: "view", resource: ResourceRef(type: "org", id: "acme-north-x")), now: now)
        #expect(e.reason == .orgInactive)
        #expect(e.inactiveOrgs == [.init(id: "acme-north", status: "pending"), .init(id: "acme", status: "suspended")])
        let object = try #require(try JSONSerialization.jsonObject(with: try JSONEncoder().encode(e)) as? [String: Any])
        let listed = (object["inactive_orgs"] as? [[String: String]]) ?? []
        #expect(listed == [["id": "acme-north", "status": "pending"], ["id": "acme", "status": "suspended"]], "\(object)")
        // Only for org_inactive.
        let active = g.explain(CheckRequest(subject: "globex-user", action: "view", resource: ResourceRef(type: "org", id: "globex")), now: now)
        #expect(active.inactiveOrgs == nil)
        #expect(!String(decoding: try JSONEncoder().encode(active), as: UTF8.self).contains("inactive_orgs"))
    }

    @Test func provenanceSurvivesIncrementalApply() throws {
        let g = try graph()
        let changed = try g.applying([
            .assignment(user: "alice", role: "statements", scope: "acme",
                        AssignmentRecord(user: "alice", role: "statements", scope: "acme", grantedBy: "hal", grantedAt: now - day)),
            .assignment(user: "alice", role: "catalog-reader", scope: "acme",
                        AssignmentRecord(user: "alice", role: "catalog-reader", scope: "acme", grantedBy: "new-granter", grantedAt: now)),
            .orgGrant(org: "partners", role: "partner-user",
                      OrgGrantRecord(org: "partners", role: "partner-user", includeSuborgs: true, grantedBy: nil, grantedAt: now - 2 * day)),
        ])
        let records = changed.graphData()
        let statements = try #require(records.assignments.first { $0.user == "alice" && $0.role == "statements" })
        #expect(statements.grantedBy == "hal" && statements.grantedAt == now - day)
        let catalog = try #require(records.assignments.first { $0.user == "alice" && $0.role == "catalog-reader" })
        #expect(catalog.grantedBy == "new-granter" && catalog.grantedAt == now)
        let claims = try #require(records.assignments.first { $0.user == "alice" && $0.role == "claims-agent" })
        #expect(claims.grantedBy == "acme-admin" && claims.grantedAt == now - 3 * day)
        let grant = try #require(records.orgGrants.first { $0.org == "partners" && $0.role == "partner-user" })
        #expect(grant.grantedBy == nil && grant.grantedAt == now - 2 * day)
        // The old graph is unchanged.
        #expect(g.graphData().assignments.first { $0.user == "alice" && $0.role == "statements" }?.grantedBy == "acme-admin")
    }
}

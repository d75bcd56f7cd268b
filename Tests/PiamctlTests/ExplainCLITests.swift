import Foundation
import Testing

/// `piamctl explain` shows who granted each holding and when, and which organizations made an
/// `org_inactive` decision, in text and JSON.
@Suite("piamctl explain: provenance", .serialized)
struct ExplainCLITests {
    static let graph = """
        {
          "orgs": [
            {"id": "acme", "parent": "partners", "kind": "partner", "status": "suspended"},
            {"id": "acme-north", "parent": "acme", "kind": "partner", "status": "pending"},
            {"id": "globex", "parent": "partners", "kind": "partner"}
          ],
          "roles": [{"id": "claims-agent", "permissions": ["claim:read"]}],
          "users": [{"id": "nina", "org": "host"}, {"id": "nick", "org": "acme-north"}, {"id": "gina", "org": "globex"}],
          "entitlements": [{"org": "partners", "role": "partner-user"}, {"org": "globex", "role": "claims-agent"}],
          "assignments": [{"user": "gina", "role": "claims-agent", "granted_by": "nina", "granted_at": "2026-02-03T04:05:06Z"}],
          "org_grants": [{"org": "partners", "role": "partner-user", "include_suborgs": true, "granted_by": "nina", "granted_at": null}]
        }
        """

    @Test func holdingsShowWhoGrantedThemAndWhen() async throws {
        let cli = try CLI()
        try await cli.dbAsync("init")
        #expect(try await cli.dbAsync("import", try cli.write("g.json", Self.graph)).code == 0)
        let json = try await cli.dbAsync("explain", "gina", "read", "claim:X", "--prop", "org=globex", "--json")
        #expect(json.code == 0, "\(json.err)")
        let holdings = json.object["holdings"] as? [[String: Any]] ?? []
        let assignment = try #require(holdings.first { $0["source"] as? String == "assignment" })
        #expect(assignment["granted_by"] as? String == "nina")
        #expect(assignment["granted_at"] as? Int == 1_770_091_506_000)
        let grant = try #require(holdings.first { $0["source"] as? String == "org_grant" })
        #expect(grant["granted_by"] as? String == "nina" && grant["granted_at"] == nil, "unknown: absent")
        let text = try await cli.dbAsync("explain", "gina", "read", "claim:X", "--prop", "org=globex")
        #expect(text.out.contains("granted by nina at 2026-02-03T04:05:06Z"), "\(text.out)")
        #expect(text.out.contains("granted by nina at -"), "\(text.out)")
    }

    @Test func orgInactiveNamesTheInactiveOrgs() async throws {
        let cli = try CLI()
        try await cli.dbAsync("init")
        #expect(try await cli.dbAsync("import", try cli.write("g.json", Self.graph)).code == 0)
        let json = try await cli.dbAsync("explain", "nick", "view", "org:acme-north", "--json")
        #expect(json.code == 1 && json.object["reason"] as? String == "org_inactive")
        let inactive = json.object["inactive_orgs"] as? [[String: String]]
        #expect(inactive == [["id": "acme-north", "status": "pending"], ["id": "acme", "status": "suspended"]], "\(json.out)")
        let text = try await cli.dbAsync("explain", "nick", "view", "org:acme-north")
        #expect(text.out.contains("inactive  org:acme-north pending, org:acme suspended"), "\(text.out)")
    }
}

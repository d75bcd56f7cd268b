import Foundation
import PIAMEngine
import Testing
@testable import PIAMStore

/// A database as schema v2 wrote it (the v1 and v2 migrations, run by hand), with a little of
/// everything: grants with and without a granter, an audit row, an access request.
func schemaV2Database(_ path: String) throws {
    let db = try Database(path: path, create: true)
    for (i, sql) in Schema.migrations.prefix(2).enumerated() {
        try db.execute(sql)
        try db.execute("PRAGMA user_version = \(i + 1)")
    }
    try db.execute("""
        INSERT INTO meta(key, value) VALUES ('created_at', '2025-01-01T00:00:00Z');
        INSERT INTO orgs(id, parent, name, kind, status) VALUES
          ('host', NULL, 'Host', 'host', 'active'), ('partners', 'host', 'Partners', 'host', 'active'),
          ('acme', 'partners', 'Acme', 'partner', 'active'), ('acme-north', 'acme', 'Acme North', 'partner', 'suspended');
        INSERT INTO roles(id, name, permissions) VALUES
          ('host-admin', 'Host administrator', '["org:*","user:*","role:*"]'),
          ('partner-admin', 'Partner administrator', '["org:view","user:view","user:assign_role","org:grant_role"]'),
          ('partner-user', 'Partner user', '["org:view","user:view","user:request_role:owner"]'),
          ('claims-viewer', NULL, '["claim:read"]');
        INSERT INTO users(id, org, name, email, status, valid_until) VALUES
          ('nina', 'host', 'Nina', NULL, 'active', NULL), ('ann', 'acme', 'Ann', 'ann@acme.example', 'active', NULL),
          ('nick', 'acme-north', 'Nick', NULL, 'active', 4102444800000);
        INSERT INTO user_aliases(alias, user) VALUES ('okta|ann', 'ann');
        INSERT INTO resources(type, id, org, owner, shared, name) VALUES ('claim', 'CLM-1', 'acme', 'ann', 0, 'First');
        INSERT INTO entitlements(org, role) VALUES ('partners', 'partner-user'), ('acme', 'partner-admin'), ('acme', 'claims-viewer');
        INSERT INTO assignments(user, role, scope, valid_until, granted_by) VALUES
          ('nina', 'host-admin', 'host', NULL, NULL), ('nina', 'claims-viewer', 'host', NULL, NULL),
          ('ann', 'partner-admin', 'acme', NULL, 'nina'),
          ('nick', 'claims-viewer', 'acme-north', 4102444800000, 'ann');
        INSERT INTO org_grants(org, role, include_suborgs, valid_until, granted_by) VALUES ('partners', 'partner-user', 1, NULL, 'nina');
        INSERT INTO audit(at, actor, operation, target, decision, reason, revision) VALUES (1, 'nina', 'user.invite', 'user:ann', 'allowed', 'allowed', 3);
        INSERT INTO access_requests(user, role, scope, created_at) VALUES ('ann', 'claims-viewer', 'acme', 2);
        """)
}

@Suite struct GrantProvenanceTests {
    static let doc = """
        {
          "orgs": [{"id": "acme", "parent": "partners", "kind": "partner"}],
          "roles": [{"id": "agent", "permissions": ["claim:read"]}],
          "users": [{"id": "nina", "org": "host"}, {"id": "ann", "org": "acme"}],
          "entitlements": [{"org": "acme", "role": "agent"}],
          "assignments": [
            {"user": "ann", "role": "agent", "granted_by": "nina"},
            {"user": "nina", "role": "host-admin", "scope": "host", "valid_until": null}
          ],
          "org_grants": [{"org": "acme", "role": "agent", "include_suborgs": true, "granted_by": "nina"}]
        }
        """
    static let t1: Timestamp = 1_790_000_000_000

    func grantedAt(_ store: Store, user: String, role: String) throws -> Timestamp? {
        try store.assignments(user: user).first { $0.role == role }?.grantedAt
    }

    @Test func importRecordsWhenEachGrantWasMade() throws {
        let dir = TempDir()
        let store = try freshStore(dir)
        // Left out: the import's time.
        _ = try store.importJSON(Data(Self.doc.utf8), now: Self.t1)
        #expect(try grantedAt(store, user: "ann", role: "agent") == Self.t1)
        #expect(try store.orgGrants(org: "acme").first?.grantedAt == Self.t1)
        #expect(try store.orgGrants(org: "acme").first?.grantedBy == "nina")
        // The same file again changes nothing, the times included.
        let again = try store.importJSON(Data(Self.doc.utf8), now: Self.t1 + 1000)
        #expect(!again.changed)
        #expect(try grantedAt(store, user: "ann", role: "agent") == Self.t1)
        // A grant that changes (a validity) is granted again, now; the others keep their time.
        let renewed = Self.doc.replacingOccurrences(of: #"{"user": "ann", "role": "agent", "granted_by": "nina"}"#,
                                                    with: #"{"user": "ann", "role": "agent", "granted_by": "nina", "valid_until": "2030-01-01T00:00:00Z"}"#)
        #expect(try store.importJSON(Data(renewed.utf8), now: Self.t1 + 2000)["assignments"].updated == 1)
        #expect(try grantedAt(store, user: "ann", role: "agent") == Self.t1 + 2000)
        #expect(try grantedAt(store, user: "nina", role: "host-admin") == Self.t1)
        // Given: kept as given; null: unknown.
        let given = #"{"assignments": [{"user": "ann", "role": "agent", "granted_by": "nina", "valid_until": "2030-01-01T00:00:00Z", "granted_at": "2026-01-02T03:04:05.006Z"}], "org_grants": [{"org": "acme", "role": "agent", "include_suborgs": true, "granted_by": "nina", "granted_at": null}]}"#
        let r = try store.importJSON(Data(given.utf8), now: Self.t1 + 3000)
        #expect(r["assignments"].updated == 1 && r["org_grants"].updated == 1)
        #expect(try grantedAt(store, user: "ann", role: "agent") == RFC3339.parse("2026-01-02T03:04:05.006Z"))
        #expect(try store.orgGrants(org: "acme").first?.grantedAt == nil)
        #expect(!(try store.importJSON(Data(given.utf8), now: Self.t1 + 4000)).changed)
        // A bad time names its path.
        let bad = #"{"assignments": [{"user": "ann", "role": "agent", "granted_at": "yesterday"}]}"#
        #expect(throws: PIAMError(.invalidInput, #"assignments[0].granted_at: "yesterday" is not an RFC 3339 time (e.g. 2027-06-30T00:00:00Z)"#)) {
            try store.importJSON(Data(bad.utf8))
        }

        // Export writes both; importing the export elsewhere keeps them, unknown included.
        let exported = String(decoding: try store.exportData(), as: UTF8.self)
        #expect(exported.contains(#""granted_by": "nina", "granted_at": "2026-01-02T03:04:05.006Z""#), "\(exported)")
        #expect(exported.contains(#""granted_by": "nina", "granted_at": null"#), "\(exported)")
        let other = try freshStore(dir, "other.db")
        _ = try other.importJSON(Data(exported.utf8), mode: .replace, now: Self.t1 + 5000)
        #expect(try other.exportData() == (try store.exportData()))
        let decoded = try ImportDocument.decode(Data(exported.utf8))
        #expect(decoded.orgGrants.first { $0.org == "acme" }?.grantedAt == .unknown)
        #expect(decoded.assignments.first { $0.user == "ann" }?.grantedAt == .at("2026-01-02T03:04:05.006Z"))

        // The graph carries them to explain.
        let g = try store.loadGraph().graph
        let e = g.explain(CheckRequest(subject: "ann", action: "read", resource: ResourceRef(type: "claim", id: "X", org: "acme")), now: Self.t1)
        let viaAssignment = try #require(e.holdings.first { $0.source == "assignment" })
        #expect(viaAssignment.grantedBy == "nina" && viaAssignment.grantedAt == RFC3339.parse("2026-01-02T03:04:05.006Z"))
        let viaGrant = try #require(e.holdings.first { $0.source == "org_grant" && $0.role == "agent" })
        #expect(viaGrant.grantedBy == "nina" && viaGrant.grantedAt == nil)
    }

    @Test func administrationRecordsWhoGrantedAndWhen() throws {
        let dir = TempDir()
        let store = try adminStore(dir)
        let r = try store.administer(.grant(user: "nick", role: "claims-viewer", scope: nil, validUntil: nil), as: "okta|ann", now: t0)
        #expect(r.allowed, "\(r.message)")
        let a = try #require(try store.assignments(user: "nick").first { $0.role == "claims-viewer" })
        #expect(a.grantedBy == "ann" && a.grantedAt == t0)
        // The same grant again changes nothing: who and when stay.
        _ = try store.administer(.grant(user: "nick", role: "claims-viewer", scope: nil, validUntil: nil), as: "nina", now: t0 + 5)
        #expect(try store.assignments(user: "nick").first { $0.role == "claims-viewer" }?.grantedAt == t0)
        #expect(try store.administer(.grantToOrg(org: "acme-north", role: "claims-viewer", includeSuborgs: true, validUntil: nil),
                                     as: "ann", now: t0 + 10).allowed)
        let g = try #require(try store.orgGrants(org: "acme-north").first)
        #expect(g.grantedBy == "ann" && g.grantedAt == t0 + 10)
        // A request approved: granted by the approver, when approved.
        let req = try store.administer(.requestRole(role: "partner-admin", scope: nil, note: nil), as: "nick", now: t0 + 20)
        let id = try #require(req.requestID)
        #expect(try store.administer(.approveRequest(id: id, note: nil), as: "ann", now: t0 + 30).allowed)
        let approved = try #require(try store.assignments(user: "nick").first { $0.role == "partner-admin" })
        #expect(approved.grantedBy == "ann" && approved.grantedAt == t0 + 30)
        // The journal follower hands the engine the same as a fresh load.
        let base = try store.loadGraph()
        _ = try store.administer(.grant(user: "nora", role: "claims-viewer", scope: nil, validUntil: t0 + 99), as: "ann", now: t0 + 40)
        let set = try store.changes(after: base.revision)
        let applied = try base.graph.applying(set.changes)
        #expect(Set(applied.graphData().assignments) == Set(try store.loadGraph().graph.graphData().assignments))
        #expect(applied.graphData().assignments.contains { $0.user == "nora" && $0.grantedBy == "ann" && $0.grantedAt == t0 + 40 })
    }

    @Test func aVersion2DatabaseMigratesKeepingItsData() throws {
        let dir = TempDir()
        let path = dir.path("v2.db")
        try schemaV2Database(path)
        // A read-only store (piamd) reads it as it is: every granted_at unknown.
        let old = try Store(path: path, readOnly: true)
        #expect(try old.schemaVersion == 2)
        let before = try old.loadGraph()
        let exportBefore = try old.exportData()
        #expect(before.graph.graphData().assignments.contains { $0.user == "ann" && $0.grantedBy == "nina" && $0.grantedAt == nil })
        let tablesBefore = try old.tableCounts()
        let journalBefore = try old.journalCount()

        // Migrated by a writer: the data kept, no row rewritten, the revision unchanged.
        let store = try Store(path: path)
        #expect(try store.schemaVersion == Schema.latestVersion)
        #expect(try store.revision() == before.revision)
        #expect(try store.journalCount() == journalBefore)
        #expect(try store.tableCounts() == tablesBefore)
        #expect(try store.exportData() == exportBefore)
        #expect(String(decoding: exportBefore, as: UTF8.self).contains(#""granted_by": "ann", "granted_at": null"#))
        let after = try store.loadGraph()
        #expect(Set(after.graph.graphData().assignments) == Set(before.graph.graphData().assignments))
        #expect(Set(after.graph.graphData().orgGrants) == Set(before.graph.graphData().orgGrants))
        #expect(try store.auditLog().count == 1 && store.auditLog()[0].operation == "user.invite")
        #expect(try store.accessRequests().count == 1)
        #expect(try store.meta("created_at") == "2025-01-01T00:00:00Z")
        #expect(try store.db.scalarInt("SELECT count(*) FROM assignments WHERE granted_at IS NULL") == 4)
        // What is written afterwards has its time.
        #expect(try store.administer(.grant(user: "ann", role: "claims-viewer", scope: nil, validUntil: nil), as: "nina", now: t0).allowed)
        #expect(try store.assignments(user: "ann").first { $0.role == "claims-viewer" }?.grantedAt == t0)
        // A database older than the oldest readable version is still refused read-only.
        try store.db.execute("PRAGMA user_version = 1")
        #expect(throws: PIAMError.self) { try Store(path: path, readOnly: true) }
    }
}

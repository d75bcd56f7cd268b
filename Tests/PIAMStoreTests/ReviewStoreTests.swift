import Foundation
import PIAMDemo
import PIAMEngine
@testable import PIAMStore
import Testing

@Suite("access reviews in the store")
struct ReviewStoreTests {
    static let now: Timestamp = 1_800_000_000_000
    static let day: Timestamp = 86_400_000

    /// The review tables are one migration step: a database of the version before it, holding
    /// data, migrates and keeps its data.
    @Test func theVersionBeforeReviewsMigratesKeepingData() throws {
        let previous = Schema.reviewsVersion - 1
        let dir = TempDir()
        let path = dir.path("previous.db")
        do {
            let raw = try Database(path: path, create: true)
            for (i, sql) in Schema.migrations.prefix(previous).enumerated() {
                try raw.execute(sql)
                try raw.execute("PRAGMA user_version = \(i + 1)")
            }
            try raw.execute("""
                INSERT INTO orgs(id, parent, name, kind) VALUES ('host', NULL, 'Host', 'host'), ('partners', 'host', 'Partners', 'host'),
                  ('acme', 'partners', 'Acme', 'partner');
                INSERT INTO roles(id, permissions) VALUES ('claims-viewer', '["claim:read"]');
                INSERT INTO users(id, org, status) VALUES ('nina', 'host', 'active'), ('ann', 'acme', 'active');
                INSERT INTO entitlements(org, role) VALUES ('acme', 'claims-viewer');
                INSERT INTO assignments(user, role, scope, granted_by, granted_at) VALUES ('ann', 'claims-viewer', 'acme', 'nina', 7);
                INSERT INTO audit(at, actor, operation, target, decision, reason, revision) VALUES (1, 'nina', 'grant', 'user:ann', 'allowed', 'allowed', 6);
                """)
            #expect(try raw.scalarInt("PRAGMA user_version") == Int64(previous))
        }
        let before = try Store(path: path, readOnly: true).revision()
        let store = try Store.initialize(path: path, now: Self.now)
        #expect(try store.schemaVersion == Schema.latestVersion && Schema.latestVersion >= Schema.reviewsVersion)
        #expect(try store.db.scalarInt("SELECT count(*) FROM assignments WHERE user = 'ann' AND granted_by = 'nina' AND granted_at = 7") == 1)
        #expect(try store.auditLog().map(\.operation) == ["grant"])
        #expect(try store.reviews().isEmpty)
        #expect(try store.revision() >= before, "the migration itself journals nothing; init's seed may add the default roles")
        // And the new tables work: a campaign over the migrated data.
        try store.db.execute("INSERT INTO assignments(user, role, scope) VALUES ('nina', 'host-admin', 'host')")
        let r = try store.createReview(name: "first", scope: .allPartners, dueAt: Self.now + Self.day, noAnswer: .keep, days: 30,
                                       usage: NoUsage(), as: "nina", now: Self.now)
        #expect(r.allowed, "\(r)")
        #expect(try store.reviewItems(campaign: r.campaign).map { "\($0.user) \($0.role) \($0.grantedBy ?? "-")" } == ["ann claims-viewer nina"])
    }

    /// Items carry their last use and the recommendation: unused for the campaign's days means
    /// revoke. The recommendation policy revokes exactly those at close, once confirmed.
    @Test func recommendationsFollowUsageAndClosingAppliesThem() throws {
        let dir = TempDir()
        let store = try freshStore(dir)
        _ = try store.importJSON(Data(DelegationScenario.document.utf8))
        let usage = KnownUsage(used: [.assignment(user: "ann", role: "claims-viewer", scope: "acme"): Self.now - 2 * Self.day,
                                      .assignment(user: "bob", role: "approver", scope: "acme"): Self.now - 40 * Self.day])
        let r = try store.createReview(name: "acme", scope: .partner("acme"), dueAt: Self.now + Self.day, noAnswer: .recommendation,
                                       days: 30, usage: usage, as: "nina", now: Self.now)
        #expect(r.allowed)
        let items = try store.reviewItems(campaign: r.campaign)
        #expect(items.map { "\($0.user) \($0.role) \($0.recommendation)" }.sorted()
                == ["ann claims-viewer keep", "ann partner-admin revoke", "bob approver revoke", "nora partner-admin revoke"])
        #expect(items.first { $0.role == "claims-viewer" }?.lastUse == Self.now - 2 * Self.day)
        // A role campaign of one role only; a partner campaign of another partner's holdings none.
        let role = try store.createReview(name: "approvers", scope: .role("approver"), dueAt: Self.now + Self.day, noAnswer: .keep,
                                          days: 30, usage: usage, as: "nina", now: Self.now)
        #expect(try store.reviewItems(campaign: role.campaign).map(\.user) == ["bob"])
        // ann keeps her admin role; nora's and bob's are unanswered and recommended for revocation.
        #expect(try store.decideReview(item: items.first { $0.user == "ann" && $0.role == "partner-admin" }!.id, decision: "keep",
                                       comment: nil, as: "ann", now: Self.now).allowed)
        #expect(throws: PIAMError.self) { try store.closeReview(r.campaign, as: "nina", now: Self.now) }
        #expect(try store.reviewRevocationsAtClose(r.campaign).map(\.user).sorted() == ["bob", "nora"])
        let before = try store.revision()
        let refused = try store.closeReview(r.campaign, confirmRevocations: 2, as: "ann", now: Self.now)
        let afterRefusal = try store.revision()
        #expect(!refused.allowed && refused.reason == "no_permission" && afterRefusal == before, "closing is the business's")
        let closed = try store.closeReview(r.campaign, confirmRevocations: 2, as: "nina", now: Self.now)
        #expect(closed.allowed && closed.details.contains("2 unanswered revoked"), "\(closed)")
        let after = try store.reviewItems(campaign: r.campaign)
        #expect(after.map { "\($0.user) \($0.role) \($0.outcome ?? "-")" }.sorted()
                == ["ann claims-viewer kept", "ann partner-admin kept", "bob approver revoked", "nora partner-admin revoked"])
        #expect(try store.review(r.campaign).status == "closed")
        #expect(throws: PIAMError.self) { try store.decideReview(item: after[0].id, decision: "keep", comment: nil, as: "ann", now: Self.now) }
    }
}

import Foundation
import PIAMDemo
import PIAMEngine
import Testing
@testable import PIAMStore

/// Just-in-time creation in the store: the per-partner setting (`jit.set`, `jit.clear`), decided
/// by the engine, and the creation (`jit.create`) in one audited transaction.
@Suite struct JITStoreTests {
    let t = AdminStoreTests()

    @Test func theSettingIsTheBusinessesAndTheEngineDecidesItsOrgAndRole() throws {
        let dir = TempDir()
        let store = try adminStore(dir)
        #expect(try store.jitSettings().isEmpty, "off by default")
        // A partner admin may not switch it on for its own partner.
        try t.expectRefused(store, .setJIT(org: "acme", jitOrg: "acme-north", role: "claims-viewer"), as: "ann", "no_permission")
        // The org must lie in the partner's subtree.
        try t.expectRefused(store, .setJIT(org: "acme", jitOrg: "globex", role: "claims-viewer"), as: "nina", "out_of_scope")
        try t.expectRefused(store, .setJIT(org: "acme", jitOrg: "nowhere", role: "claims-viewer"), as: "nina", "unknown_org")
        // The role must be in the org's ceiling ...
        try t.expectRefused(store, .setJIT(org: "acme", jitOrg: "acme-north", role: "claims-adjuster"), as: "nina", "outside_ceiling")
        try t.expectRefused(store, .setJIT(org: "acme", jitOrg: "acme-north", role: "no-such-role"), as: "nina", "unknown_role")
        // ... and one the partner's admins could assign (approver carries the host-only org:approve).
        try t.expectRefused(store, .setJIT(org: "acme", jitOrg: "acme-north", role: "approver"), as: "nina", "escalation")
        // Only partner roots have a setting.
        for org in ["acme-north", "partners", "host"] {
            #expect(throws: PIAMError.self, "\(org)") {
                try store.administer(.setJIT(org: org, jitOrg: "acme-north", role: "claims-viewer"), as: "nina", now: t0)
            }
        }
        #expect(try store.auditLog().last?.decision == "failed")
        let before = try store.revision()
        _ = try t.expectAllowed(store, .setJIT(org: "acme", jitOrg: "acme-north", role: "claims-viewer"), as: "nina")
        #expect(try store.jitSettings() == [JITSetting(partner: "acme", org: "acme-north", role: "claims-viewer")])
        #expect(try store.revision() > before, "the setting is journaled: piamd sees it")
        let again = try t.expectAllowed(store, .setJIT(org: "acme", jitOrg: "acme-north", role: "claims-viewer"), as: "nina")
        #expect(!again.changed)
        // Without a namespace, the setting reaches no subject.
        #expect(try store.jitNamespaces().isEmpty)
        _ = try t.expectAllowed(store, .addNamespace(org: "acme", namespace: "okta-acme|"), as: "nina")
        _ = try t.expectAllowed(store, .addNamespace(org: "globex", namespace: "okta-globex|"), as: "nina")
        let jit = try store.jitNamespaces()
        #expect(jit.setting(for: "okta-acme|00u1")?.org == "acme-north" && jit.setting(for: "okta-globex|00u1") == nil)
        #expect(try store.loadGraph().jit == jit, "loaded beside the graph")
        _ = try t.expectAllowed(store, .clearJIT(org: "acme"), as: "nina")
        #expect(try store.jitNamespaces().isEmpty && store.jitSettings().isEmpty)
        try t.expectRefused(store, .clearJIT(org: "acme"), as: "ann", "no_permission")
    }

    /// A follower learns of a setting or a namespace through the journal, in the same read
    /// transaction as the graph changes.
    @Test func theJournalCarriesTheJITNamespacesToFollowers() throws {
        let dir = TempDir()
        let store = try adminStore(dir)
        let r0 = try store.revision()
        _ = try store.administer(.addNamespace(org: "acme", namespace: "okta-acme|"), as: "nina", now: t0)
        let set1 = try store.changes(after: r0)
        #expect(set1.jit == .empty && set1.changes.isEmpty && set1.revision > r0)
        _ = try store.administer(.setJIT(org: "acme", jitOrg: "acme", role: "claims-viewer"), as: "nina", now: t0)
        let set2 = try store.changes(after: set1.revision)
        #expect(set2.jit?.setting(for: "okta-acme|x")?.role == "claims-viewer")
        _ = try store.administer(.suspendUser(user: "bob"), as: "nina", now: t0)
        #expect(try store.changes(after: set2.revision).jit == nil, "graph changes alone leave the namespaces as they were")
    }

    @Test func creationIsOneAuditedTransactionAndIdempotent() throws {
        let dir = TempDir()
        let store = try adminStore(dir)
        let subject = "okta-acme|00u1new"
        // Outside every JIT-enabled namespace (none declared, JIT off): refused with a code.
        try t.expectRefused(store, .createJIT(subject: subject), as: "nina", "jit_not_eligible")
        _ = try store.administer(.addNamespace(org: "acme", namespace: "okta-acme|"), as: "nina", now: t0)
        try t.expectRefused(store, .createJIT(subject: subject), as: "nina", "jit_not_eligible")
        _ = try store.administer(.setJIT(org: "acme", jitOrg: "acme-north", role: "claims-viewer"), as: "nina", now: t0)
        // Only the business's users create people this way.
        try t.expectRefused(store, .createJIT(subject: subject), as: "ann", "host_only")
        // Outside the namespaces still refused.
        try t.expectRefused(store, .createJIT(subject: "okta-globex|00u1"), as: "nina", "jit_not_eligible")

        let before = try store.revision()
        let r = try t.expectAllowed(store, .createJIT(subject: subject), as: "nina")
        #expect(r.changed && r.revision > before)
        let id = Store.jitUserID(subject: subject)
        #expect(id.hasPrefix("jit-") && id.utf8.count == 36 && id == Store.jitUserID(subject: subject))
        #expect(Store.jitUserID(subject: "okta-acme|00u1neW") != id)
        let user = try #require(try store.user(idOrAlias: subject))
        #expect(user.id == id && user.org == "acme-north" && user.status == .active)
        let loaded = try store.loadGraph()
        #expect(loaded.graph.userID(for: subject) == id)
        // The default role, held over the org: the engine allows its permission there.
        let d = loaded.graph.check(subject: subject, action: "read", resource: ResourceRef(type: "claim", id: "c-1", org: "acme-north"), now: t0)
        #expect(d.allowed, "\(d)")
        let audit = try #require(try store.auditLog().last)
        #expect(audit.operation == "jit.create" && audit.actor == "nina" && audit.decision == "allowed" && audit.partner == "acme")
        #expect(audit.message?.contains("just in time") == true && audit.message?.contains(id) == true)

        // Idempotent: the subject names a user now; nothing is written, the revision stands.
        let again = try t.expectAllowed(store, .createJIT(subject: subject), as: "nina")
        #expect(!again.changed && again.revision == r.revision)
        #expect(try store.loadGraph().graph.counts.users == loaded.graph.counts.users)

        // One transaction: a setting whose role left the org's ceiling is refused after the
        // user row was written — and that row is rolled back with the rest.
        _ = try store.administer(.unentitle(org: "acme", role: "claims-viewer"), as: "nina", now: t0)
        try t.expectRefused(store, .createJIT(subject: "okta-acme|00u2"), as: "nina", "outside_ceiling")
        #expect(try store.user(idOrAlias: Store.jitUserID(subject: "okta-acme|00u2")) == nil)

        // JIT switched off: refused again.
        _ = try store.administer(.clearJIT(org: "acme"), as: "nina", now: t0)
        try t.expectRefused(store, .createJIT(subject: "okta-acme|00u3"), as: "nina", "jit_not_eligible")
    }

    /// A database written by schema v6, with data, migrates to v7 keeping it; the revision does
    /// not move, JIT is off, and the new table and triggers work on the migrated file.
    @Test func aVersion6DatabaseMigratesToVersion7() throws {
        let dir = TempDir()
        let path = dir.path("v6.db")
        do {
            let raw = try Database(path: path, create: true)
            for (i, sql) in Schema.migrations.prefix(Schema.jitVersion - 1).enumerated() {
                try raw.execute(sql)
                try raw.execute("PRAGMA user_version = \(i + 1)")
            }
            try raw.execute("""
                INSERT INTO orgs(id, parent, name, kind) VALUES ('host', NULL, 'Host', 'host'), ('partners', 'host', 'P', 'host'), ('acme', 'partners', 'Acme', 'partner');
                INSERT INTO roles(id, permissions) VALUES ('host-admin', '["org:*","user:*","role:*"]'), ('viewer', '["claim:read"]'),
                  ('padmin', '["user:assign_role","claim:read"]');
                INSERT INTO entitlements(org, role) VALUES ('acme', 'viewer'), ('acme', 'padmin');
                INSERT INTO users(id, org, status) VALUES ('nina', 'host', 'active'), ('ann', 'acme', 'active');
                INSERT INTO assignments(user, role, scope) VALUES ('nina', 'host-admin', 'host'), ('ann', 'padmin', 'acme');
                INSERT INTO identity_namespaces(partner, namespace, created_at, created_by) VALUES ('acme', 'okta-acme|', 1, 'nina');
                """)
        }
        let ro = try Store(path: path, readOnly: true)
        #expect(try ro.schemaVersion == Schema.jitVersion - 1)
        #expect(try ro.loadGraph().jit.isEmpty && ro.jitSettings().isEmpty, "a v6 file reads as JIT off")
        let revision = try ro.revision()
        let store = try Store(path: path)
        #expect(try store.schemaVersion == Schema.latestVersion && Schema.latestVersion >= Schema.jitVersion)
        #expect(try store.revision() == revision, "the migration journals nothing")
        #expect(try store.identityNamespaces(partner: "acme").map(\.text) == ["okta-acme|"])
        #expect(try store.jitSettings().isEmpty)
        let set = try store.administer(.setJIT(org: "acme", jitOrg: "acme", role: "viewer"), as: "nina")
        #expect(set.allowed, "\(set)")
        #expect(try store.revision() > revision)
        #expect(try store.jitNamespaces().setting(for: "okta-acme|x")?.org == "acme")
    }
}

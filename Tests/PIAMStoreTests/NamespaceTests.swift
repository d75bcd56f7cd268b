import Foundation
import PIAMDemo
import PIAMEngine
import Testing
@testable import PIAMStore

/// Identity namespaces: the alias rule, decided by the engine inside the write transaction.
@Suite struct NamespaceTests {
    @Test func namespacesParseAndContainWhatTheyShould() throws {
        let okta = try IdentityNamespace(parsing: "okta-acme|")
        let mail = try IdentityNamespace(parsing: "@Acme-Brokers.Example")
        #expect(okta.kind == .prefix && mail.kind == .domain && mail.text == "@acme-brokers.example")
        #expect(okta.contains("okta-acme|00u1") && !okta.contains("okta-acme|") && !okta.contains("okta-acme-evil|x") && !okta.contains("okta|x"))
        #expect(mail.contains("jane@acme-brokers.example") && mail.contains("JANE@ACME-BROKERS.EXAMPLE"))
        #expect(!mail.contains("@acme-brokers.example") && !mail.contains("jane@evil-acme-brokers.example")
                && !mail.contains("jane@acme-brokers.example.evil"))
        for bad in ["okta-acme", "|", "@", "@nodot", "@bad_domain.example", "okta acme|", "@-a.example"] {
            #expect(throws: PIAMError.self, "\(bad)") { try IdentityNamespace(parsing: bad) }
        }
        #expect(okta.overlaps(try IdentityNamespace(parsing: "okta-acme|eu|")))
        #expect(!okta.overlaps(try IdentityNamespace(parsing: "okta-globex|")))
        #expect(mail.overlaps(try IdentityNamespace(parsing: "@acme-brokers.example")))
    }

    /// The issue's hijack: a partner admin attaching to its own people an identifier of the
    /// business (nina@northwind.example) or of another partner (okta|bluesky-…-newhire).
    @Test func aPartnerAdminMayAliasOnlyInsideItsNamespacesAndTheBusinessDeclaresThem() throws {
        let dir = TempDir()
        let store = try adminStore(dir)
        let t = AdminStoreTests()
        // No namespace declared yet: a partner admin gives no alias at all.
        try t.expectRefused(store, .addAlias(user: "bob", alias: "okta-acme|bob"), as: "ann", "outside_namespace")
        try t.expectRefused(store, .addNamespace(org: "acme", namespace: "okta-acme|"), as: "ann", "no_permission")
        _ = try t.expectAllowed(store, .addNamespace(org: "acme", namespace: "okta-acme|"), as: "nina")
        _ = try t.expectAllowed(store, .addNamespace(org: "acme", namespace: "@acme.example"), as: "nina")
        _ = try t.expectAllowed(store, .addNamespace(org: "globex", namespace: "okta-globex|"), as: "nina")
        // Only partner roots; never overlapping another partner's.
        #expect(throws: PIAMError.self) { try store.administer(.addNamespace(org: "acme-north", namespace: "okta-n|"), as: "nina", now: t0) }
        #expect(throws: PIAMError.self) { try store.administer(.addNamespace(org: "globex", namespace: "okta-acme|eu|"), as: "nina", now: t0) }
        #expect(throws: PIAMError.self) { try store.administer(.addNamespace(org: "globex", namespace: "@ACME.example"), as: "nina", now: t0) }
        #expect(throws: PIAMError.self) { try store.administer(.addNamespace(org: "acme", namespace: "no-separator"), as: "nina", now: t0) }

        // The hijack, refused with its reason and audited (expectRefused checks the audit row).
        try t.expectRefused(store, .addAlias(user: "bob", alias: "nina@northwind.example"), as: "ann", "outside_namespace")
        try t.expectRefused(store, .addAlias(user: "bob", alias: "okta-globex|newhire"), as: "ann", "outside_namespace")
        try t.expectRefused(store, .addAlias(user: "nick", alias: "okta|bluesky-agency-newhire"), as: "nora", "outside_namespace")
        try t.expectRefused(store, .inviteUser(user: "eve", org: "acme", name: nil, email: nil, aliases: ["okta-globex|eve"], validUntil: nil),
                            as: "ann", "outside_namespace")
        let refusal = try #require(try store.auditLog().last)
        #expect(refusal.message?.contains("okta-acme|") == true && refusal.message?.contains("@acme.example") == true, "\(refusal)")
        // Inside: allowed, for the partner's admin and its sub-org admin alike.
        _ = try t.expectAllowed(store, .addAlias(user: "bob", alias: "okta-acme|bob"), as: "ann")
        _ = try t.expectAllowed(store, .addAlias(user: "nick", alias: "nick@ACME.example"), as: "nora")
        _ = try t.expectAllowed(store, .inviteUser(user: "eve", org: "acme", name: nil, email: nil, aliases: ["okta-acme|eve"], validUntil: nil), as: "ann")
        // The business assigns any alias.
        _ = try t.expectAllowed(store, .addAlias(user: "bob", alias: "bob@partner-portal.example"), as: "nina")
        // Withdrawing a namespace: existing aliases stay, new ones inside it are refused.
        _ = try t.expectAllowed(store, .removeNamespace(org: "acme", namespace: "@acme.example"), as: "nina")
        #expect(try store.user(idOrAlias: "nick@ACME.example")?.id == "nick")
        try t.expectRefused(store, .addAlias(user: "bob", alias: "bob@acme.example"), as: "ann", "outside_namespace")
        #expect(try store.identityNamespaces(partner: "acme").map(\.text) == ["okta-acme|"])
    }

    /// An import is not refused for the rule (it is the business's own write) but reports every
    /// alias that breaks it, for the partners that declared namespaces.
    @Test func violationsAreReportedForPartnersWithDeclaredNamespaces() throws {
        let dir = TempDir()
        let store = try adminStore(dir)
        #expect(try store.namespaceViolations().isEmpty, "no partner declared any: nothing to report")
        _ = try store.administer(.addNamespace(org: "acme", namespace: "okta-acme|"), as: "nina", now: t0)
        _ = try store.importJSON(Data(#"{"users": [{"id": "zed", "org": "acme-north", "aliases": ["okta-acme|zed", "zed@globex.example"]}, {"id": "gil", "org": "globex", "aliases": ["x|gil"]}]}"#.utf8))
        let v = try store.namespaceViolations()
        #expect(v == [NamespaceViolation(partner: "acme", user: "ann", alias: "okta|ann"),
                      NamespaceViolation(partner: "acme", user: "zed", alias: "zed@globex.example")], "\(v)")
    }

    /// An invitee binding an identity at acceptance: inside its partner's namespaces, once the
    /// business declared some (else whoever holds the secret could bind anyone's subject).
    @Test func acceptanceBindsOnlyAnIdentityInsideTheNamespaces() throws {
        let dir = TempDir()
        let store = try adminStore(dir)
        _ = try store.administer(.addNamespace(org: "acme", namespace: "okta-acme|"), as: "nina", now: t0)
        let invite = try store.administer(.inviteUser(user: "ivy", org: "acme", name: nil, email: nil, aliases: [], validUntil: nil), as: "ann", now: t0)
        let secret = try #require(invite.invitationToken)
        #expect(throws: PIAMError.self) { try store.acceptInvitation(secret: secret, identity: "nina@northwind.example", now: t0 + 1) }
        #expect(try store.user(idOrAlias: "ivy")?.status == .invited)
        let ok = try store.acceptInvitation(secret: secret, identity: "okta-acme|ivy", now: t0 + 2)
        let bound = try store.user(idOrAlias: "okta-acme|ivy")?.id
        #expect(ok.allowed && bound == "ivy")
    }
}

/// SCIM tokens in the store: created by the business, at most two live per partner, each
/// acting as the partner's SCIM service user.
@Suite struct SCIMTokenStoreTests {
    @Test func tokensActAsTheServiceUserWithTheChosenRolesAndRotate() throws {
        let dir = TempDir()
        let store = try adminStore(dir)
        let (a, secretA) = try store.createSCIMToken(partner: "acme", roles: ["partner-admin", "claims-viewer"], createdBy: "nina", now: t0)
        #expect(a.serviceUser == "scim.acme" && a.credential == "scim:acme#\(a.id)" && secretA.hasPrefix("piamscim_"))
        let svc = try #require(try store.user(idOrAlias: "scim.acme"))
        #expect(svc.org == "acme" && svc.status == .active)
        #expect(Set(try store.assignments(user: "scim.acme").map(\.role)) == ["partner-admin", "claims-viewer"])
        #expect(try store.assignments(user: "scim.acme").allSatisfy { $0.scope == "acme" && $0.grantedBy == "nina" })
        // The secret is never stored.
        #expect(try store.db.scalarInt("SELECT count(*) FROM scim_tokens WHERE hash = '\(secretA)'") == 0)
        guard case .valid(let v) = try store.authenticateSCIMToken(secretA, now: t0 + 1) else { Issue.record("not valid"); return }
        #expect(v.id == a.id)
        #expect(try store.authenticateSCIMToken("piamscim_nope", now: t0) == .unknown)
        #expect(try store.authenticateSCIMToken(secretA.replacingOccurrences(of: "piamscim_", with: "piam_"), now: t0) == .unknown)

        // Rotation: a second live token; a third is refused until one is revoked.
        let (b, _) = try store.createSCIMToken(partner: "acme", roles: ["partner-admin"], expires: t0 + 1000, createdBy: "nina", now: t0)
        #expect(Set(try store.assignments(user: "scim.acme").map(\.role)) == ["partner-admin"], "the roles of the latest creation")
        #expect(throws: PIAMError.self) { try store.createSCIMToken(partner: "acme", roles: ["partner-admin"], createdBy: "nina", now: t0) }
        // An expired one no longer counts, and no longer authenticates.
        let (_, _) = try store.createSCIMToken(partner: "acme", roles: ["partner-admin"], createdBy: "nina", now: t0 + 2000)
        #expect(b.status(at: t0 + 2000) == "expired")
        try store.revokeSCIMToken(id: a.id, revokedBy: "nina", now: t0 + 3000)
        #expect(try store.authenticateSCIMToken(secretA, now: t0 + 3001) == .revoked(try #require(try store.scimToken(id: a.id))))
        let ops = try store.auditLog().map(\.operation)
        #expect(ops.filter { $0 == "scim.token.create" }.count == 3 && ops.contains("scim.token.revoke"))

        // Only partner roots, only roles in the ceiling.
        #expect(throws: PIAMError.self) { try store.createSCIMToken(partner: "acme-north", roles: ["partner-admin"], createdBy: nil, now: t0) }
        #expect(throws: PIAMError.self) { try store.createSCIMToken(partner: "globex", roles: ["claims-viewer"], createdBy: nil, now: t0) }
        #expect(throws: PIAMError.self) { try store.createSCIMToken(partner: "globex", roles: [], createdBy: nil, now: t0) }
        #expect(throws: PIAMError.self) { try store.createSCIMToken(partner: "host", roles: ["partner-admin"], createdBy: nil, now: t0) }
    }

    /// A database written by schema v4, with data, migrates to v5 keeping it: the graph, the
    /// audit log, API tokens (which still authenticate); the new tables are empty, and the
    /// revision does not move.
    @Test func aVersion4DatabaseWithDataMigratesToVersion5() throws {
        let dir = TempDir()
        let path = dir.path("v4.db")
        var secret = ""
        do {
            let raw = try Database(path: path, create: true)
            for (i, sql) in Schema.migrations.prefix(4).enumerated() {
                try raw.execute(sql)
                try raw.execute("PRAGMA user_version = \(i + 1)")
            }
            try raw.execute("""
                INSERT INTO orgs(id, parent, name, kind) VALUES ('host', NULL, 'Host', 'host'), ('partners', 'host', 'P', 'host'), ('acme', 'partners', 'Acme', 'partner');
                INSERT INTO roles(id, permissions) VALUES ('partner-admin', '["user:view"]');
                INSERT INTO entitlements(org, role) VALUES ('acme', 'partner-admin');
                INSERT INTO users(id, org, status) VALUES ('ann', 'acme', 'active');
                INSERT INTO user_aliases(alias, user) VALUES ('okta|ann', 'ann');
                INSERT INTO audit(at, actor, operation, target, decision, reason, revision, credential) VALUES (1, 'x', 'user.invite', 'user:ann', 'allowed', 'allowed', 4, 'cli');
                """)
            secret = Secrets.make(prefix: Secrets.tokenPrefix)
            try raw.execute("INSERT INTO api_tokens(user, name, hash, created_at) VALUES ('ann', 'portal', '\(Secrets.hash(secret))', 1)")
        }
        let ro = try Store(path: path, readOnly: true)
        #expect(try ro.schemaVersion == 4)
        let revision = try ro.revision()
        let store = try Store(path: path)
        #expect(try store.schemaVersion == Schema.latestVersion && Schema.latestVersion >= 5)
        #expect(try store.revision() == revision, "the migration journals nothing")
        #expect(try store.user(idOrAlias: "okta|ann")?.id == "ann")
        #expect(try store.auditLog().map(\.credential) == ["cli"])
        guard case .valid = try store.authenticateToken(secret) else { Issue.record("the v4 API token no longer authenticates"); return }
        #expect(try store.allIdentityNamespaces().isEmpty && store.scimTokens().isEmpty && store.scimUsers(partner: "acme").isEmpty)
        // And the new tables work on the migrated file.
        _ = try store.createSCIMToken(partner: "acme", roles: ["partner-admin"], createdBy: nil)
    }
}

extension SCIMTokenStoreTests {
    /// The SCIM service user holds partner-admin at the root, but it is no admin a person can
    /// fall back on: the last human admin still may not step down.
    @Test func theServiceUserDoesNotCountForTheLastAdminRule() throws {
        let dir = TempDir()
        let store = try adminStore(dir)
        _ = try store.createSCIMToken(partner: "globex", roles: ["partner-admin"], createdBy: "nina", now: t0)
        try AdminStoreTests().expectRefused(store, .revoke(user: "gus", role: "partner-admin", scope: nil), as: "gus", "last_admin")
        try AdminStoreTests().expectRefused(store, .suspendUser(user: "gus"), as: "scim.globex", "last_admin")
    }
}

import Foundation
import PIAMEngine
import Testing
@testable import PIAMStore

/// Schema v4: API tokens, invitations, idempotency records and the audit log's credential.
@Suite struct CredentialTests {
    static let day: Timestamp = 86_400_000

    // MARK: API tokens

    @Test func secretsAreRandomAndHashedWithSHA256() {
        // FIPS 180-4's test vectors, through swift-crypto.
        #expect(Secrets.hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(Data()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let many = (0..<1000).map { _ in Secrets.make(prefix: Secrets.tokenPrefix) }
        #expect(Set(many).count == 1000 && many.allSatisfy { $0.count == 48 })
    }

    @Test func tokensAuthenticateUntilRevokedOrExpiredAndKeepOnlyTheHash() throws {
        let dir = TempDir()
        let store = try adminStore(dir)
        let rev = try store.revision()
        let (info, secret) = try store.createToken(user: "okta|ann", name: "billing-portal", expires: t0 + 30 * Self.day,
                                                   createdBy: "nina", now: t0, credential: "cli")
        #expect(info.user == "ann" && info.name == "billing-portal" && info.createdBy == "nina" && info.expiresAt == t0 + 30 * Self.day)
        #expect(info.credential == "token:billing-portal#\(info.id)")
        // piam_ + base64url of 32 bytes; the database holds its SHA-256, never the secret.
        #expect(secret.hasPrefix("piam_") && secret.count == 5 + 43)
        #expect(secret.dropFirst(5).allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        let stored = try store.db.scalarText("SELECT hash FROM api_tokens WHERE id = ?1", String(info.id))
        #expect(stored == Secrets.hash(secret) && stored?.count == 64)
        #expect(try store.db.scalarInt("SELECT count(*) FROM api_tokens WHERE hash LIKE '%' || ?1 || '%'", String(secret.dropFirst(5))) == 0)
        #expect(try store.revision() == rev, "tokens are not part of the graph")

        // Valid; last use recorded at most once a minute.
        guard case .valid(let v) = try store.authenticateToken(secret, now: t0 + 1000) else { Issue.record("not valid"); return }
        #expect(v.id == info.id && v.lastUsedAt == t0 + 1000)
        _ = try store.authenticateToken(secret, now: t0 + 30_000)
        #expect(try store.token(id: info.id)?.lastUsedAt == t0 + 1000)
        _ = try store.authenticateToken(secret, now: t0 + 61_000)
        #expect(try store.token(id: info.id)?.lastUsedAt == t0 + 61_000)
        // Expired, unknown, malformed.
        guard case .expired(let e) = try store.authenticateToken(secret, now: t0 + 30 * Self.day) else { Issue.record("not expired"); return }
        #expect(e.id == info.id)
        #expect(try store.authenticateToken("piam_" + String(repeating: "A", count: 43), now: t0) == .unknown)
        #expect(try store.authenticateToken("Bearer nonsense", now: t0) == .unknown)
        #expect(try store.authenticateToken(secret + "x", now: t0) == .unknown)
        // Revoked (by id), and revoking again changes nothing.
        let revoked = try store.revokeToken(id: info.id, revokedBy: "nina", now: t0 + 2000, credential: "cli")
        #expect(revoked.revokedAt == t0 + 2000)
        guard case .revoked = try store.authenticateToken(secret, now: t0 + 3000) else { Issue.record("not revoked"); return }
        #expect(try store.revokeToken(id: info.id, now: t0 + 9000).revokedAt == t0 + 2000)
        #expect(try store.tokens(user: "ann").map { $0.status(at: t0 + 3000) } == ["revoked"])

        // Audited: create and revoke (once), target the user, the partner, never the secret.
        let rows = try store.auditLog().filter { $0.operation.hasPrefix("token.") }
        #expect(rows.map(\.operation) == ["token.create", "token.revoke"])
        #expect(rows.allSatisfy { $0.target == "user:ann" && $0.partner == "acme" && $0.actor == "nina" && $0.credential == "cli" })
        #expect(rows.allSatisfy { !($0.detail ?? "").contains(secret) && !($0.message ?? "").contains(secret) })
        #expect(rows[0].detail?.contains(#""name":"billing-portal""#) == true)
    }

    @Test func tokenErrorsHaveCodes() throws {
        let dir = TempDir()
        let store = try adminStore(dir)
        _ = try store.createToken(user: "bob", name: "sync", createdBy: nil, now: t0)
        func code(_ body: () throws -> Void) -> String? {
            do { try body(); return nil } catch let e as PIAMError { return e.code.rawValue } catch { return "\(error)" }
        }
        #expect(code { _ = try store.createToken(user: "bob", name: "sync", createdBy: nil, now: t0) } == "conflict")
        #expect(code { _ = try store.createToken(user: "nobody", name: "x", createdBy: nil, now: t0) } == "not_found")
        #expect(code { _ = try store.createToken(user: "bob", name: "", createdBy: nil, now: t0) } == "invalid_input")
        #expect(code { _ = try store.createToken(user: "bob", name: "a\nb", createdBy: nil, now: t0) } == "invalid_input")
        #expect(code { _ = try store.createToken(user: "bob", name: "late", expires: t0, createdBy: nil, now: t0) } == "invalid_input")
        #expect(code { try store.revokeToken(id: 999, now: t0) } == "not_found")
        #expect(code { try store.revokeToken(user: "bob", name: "nope", now: t0) } == "not_found")
        #expect(code { _ = try store.tokens(user: "nobody") } == "not_found")
        // The same name for another user is fine; revoking by user and name.
        let other = try store.createToken(user: "ann", name: "sync", createdBy: nil, now: t0)
        #expect(try store.revokeToken(user: "okta|ann", name: "sync", now: t0).id == other.info.id)
        #expect(try store.tokens().map(\.user) == ["ann", "bob"])
        // A token goes with its user.
        _ = try store.administer(.removeUser(user: "bob"), as: "nina", now: t0)
        #expect(try store.tokens().map(\.user) == ["ann"])
    }

    // MARK: Invitations

    @Test func invitingCreatesAnInvitationThatTheInviteeAcceptsOnce() throws {
        let dir = TempDir()
        let store = try adminStore(dir)
        let invite = try store.administer(.inviteUser(user: "dana", org: "acme-north", name: "Dana", email: nil, aliases: [],
                                                      validUntil: nil), as: "nora", now: t0)
        #expect(invite.allowed)
        let secret = try #require(invite.invitationToken)
        #expect(secret.hasPrefix("piam_inv_") && invite.invitationExpires == t0 + 7 * Self.day)
        #expect(try store.invitations(user: "dana").map { $0.status(at: t0) } == ["open"])
        #expect(try store.db.scalarInt("SELECT count(*) FROM invitations WHERE hash = ?1", Secrets.hash(secret)) == 1)
        // The audit row says nothing of the secret.
        #expect(try store.auditLog().allSatisfy { !($0.detail ?? "").contains(secret) && !($0.message ?? "").contains(secret) })

        // Not a token; a wrong secret; an identity that belongs to someone else.
        func code(_ body: () throws -> Void) -> String? {
            do { try body(); return nil } catch let e as PIAMError { return e.code.rawValue } catch { return "\(error)" }
        }
        #expect(code { _ = try store.acceptInvitation(secret: "piam_inv_nope", identity: "okta|dana", now: t0) } == "invitation_invalid")
        #expect(code { _ = try store.acceptInvitation(secret: "piam_x", identity: "okta|dana", now: t0) } == "invitation_invalid")
        #expect(code { _ = try store.acceptInvitation(secret: secret, identity: "okta|ann", now: t0) } == "conflict")
        #expect(code { _ = try store.acceptInvitation(secret: secret, identity: "", now: t0) } == "invalid_input")
        #expect(try store.user(idOrAlias: "dana")?.status == .invited)
        // Those failures on a known invitation are audited (actor: the invitee).
        #expect(try store.auditLog().last.map { "\($0.decision) \($0.reason) \($0.actor) \($0.credential ?? "-")" } == "failed invalid_input dana invitation")

        let rev = try store.revision()
        let accepted = try store.acceptInvitation(secret: secret, identity: "okta|dana", now: t0 + 1000)
        #expect(accepted.allowed && accepted.operation == "user.activate" && accepted.target == "user:dana" && accepted.actor == "dana")
        let revisionNow = try store.revision()
        #expect(accepted.revision > rev && accepted.revision == revisionNow)
        #expect(try store.user(idOrAlias: "okta|dana").map { "\($0.id) \($0.status.name) \($0.aliases)" } == #"dana active ["okta|dana"]"#)
        let rows = try store.auditLog().suffix(2)
        #expect(rows.map { "\($0.operation) \($0.actor) \($0.decision) \($0.credential ?? "-")" }
                == ["user.activate dana allowed invitation", "user.alias.add dana allowed invitation"])
        #expect(rows.allSatisfy { $0.partner == "acme" })
        #expect(try store.invitations(user: "dana").map { $0.status(at: t0) } == ["used"])
        // Single use.
        #expect(code { _ = try store.acceptInvitation(secret: secret, identity: "okta|dana2", now: t0 + 2000) } == "invitation_used")
        #expect(try store.user(idOrAlias: "okta|dana2") == nil)
        // The engine now sees an active user.
        #expect(try store.loadGraph().graph.check(subject: "okta|dana", action: "view", resource: ResourceRef(type: "org", id: "acme-north"), now: t0 + 3000).allowed)
    }

    @Test func invitationsExpireAreResentAndRevoked() throws {
        let dir = TempDir()
        let store = try adminStore(dir)
        // The business declared acme's identity namespace: its admins alias inside it.
        #expect(try store.administer(.addNamespace(org: "acme", namespace: "okta|"), as: "nina", now: t0).allowed)
        // Expiry capped at the user's end of access; an explicit one.
        let short = try store.administer(.inviteUser(user: "sid", org: "acme", name: nil, email: nil, aliases: ["okta|sid"],
                                                     validUntil: t0 + Self.day), as: "ann", now: t0)
        #expect(short.invitationExpires == t0 + Self.day)
        let explicit = try store.administer(.inviteUser(user: "eve", org: "acme", name: nil, email: nil, aliases: [], validUntil: nil,
                                                        invitationExpires: t0 + 3 * Self.day), as: "ann", now: t0)
        #expect(explicit.invitationExpires == t0 + 3 * Self.day)
        #expect(throws: PIAMError.self) {
            try store.administer(.inviteUser(user: "late", org: "acme", name: nil, email: nil, aliases: [], validUntil: nil,
                                             invitationExpires: t0 - 1), as: "ann", now: t0)
        }
        #expect(try store.user(idOrAlias: "late") == nil)
        func code(_ body: () throws -> Void) -> String? {
            do { try body(); return nil } catch let e as PIAMError { return e.code.rawValue } catch { return "\(error)" }
        }
        let old = try #require(explicit.invitationToken)
        #expect(code { _ = try store.acceptInvitation(secret: old, identity: "okta|eve", now: t0 + 3 * Self.day) } == "invitation_expired")

        // Resend: only by someone with invite_user on the user's org; the old secret stops working.
        let before = try store.auditLog().count
        let refused = try store.administer(.resendInvitation(user: "eve"), as: "gus", now: t0)
        #expect(!refused.allowed && refused.reason == "out_of_scope" && refused.invitationToken == nil)
        #expect(try store.auditLog().count == before + 1)
        #expect(try !store.administer(.resendInvitation(user: "eve"), as: "bob", now: t0).allowed)
        let resent = try store.administer(.resendInvitation(user: "eve"), as: "ann", now: t0 + Self.day)
        #expect(resent.allowed && resent.changed && resent.invitationExpires == t0 + 8 * Self.day)
        let fresh = try #require(resent.invitationToken)
        #expect(fresh != old)
        #expect(code { _ = try store.acceptInvitation(secret: old, identity: "okta|eve", now: t0 + Self.day) } == "invitation_invalid")
        #expect(try store.invitations(user: "eve").map { $0.status(at: t0 + Self.day) } == ["revoked", "open"])
        // The identity may be an alias the user already has (given at invite time): nothing to add.
        let sid = try #require(short.invitationToken)
        let s = try store.acceptInvitation(secret: sid, identity: "okta|sid", now: t0 + 1000)
        #expect(s.details == [#"identity "okta|sid" already names user:sid"#])
        #expect(try store.auditLog().last?.operation == "user.activate")
        // Resending to an active user is an error; revoking.
        #expect(code { _ = try store.administer(.resendInvitation(user: "sid"), as: "ann", now: t0) } == "conflict")
        #expect(code { _ = try store.administer(.resendInvitation(user: "nobody"), as: "ann", now: t0) } == "not_found")
        let revoked = try store.administer(.revokeInvitation(user: "eve"), as: "ann", now: t0 + Self.day)
        #expect(revoked.allowed && revoked.changed)
        #expect(try !store.administer(.revokeInvitation(user: "eve"), as: "ann", now: t0 + Self.day).changed)
        #expect(code { _ = try store.acceptInvitation(secret: fresh, identity: "okta|eve", now: t0 + Self.day) } == "invitation_invalid")
        #expect(try store.user(idOrAlias: "eve")?.status == .invited)
    }

    @Test func selfActivationNeedsTheInvitationAndAnAdminActivationRevokesIt() throws {
        let dir = TempDir()
        let store = try adminStore(dir)
        #expect(try store.administer(.addNamespace(org: "acme", namespace: "okta|"), as: "nina", now: t0).allowed)
        let invite = try store.administer(.inviteUser(user: "dana", org: "acme-north", name: nil, email: nil, aliases: ["okta|dana"],
                                                      validUntil: nil), as: "nora", now: t0)
        // No bare claim: the invitee may not activate itself, by id or alias.
        for who in ["dana", "okta|dana"] {
            let r = try store.administer(.activateUser(user: "dana"), as: who, now: t0)
            #expect(!r.allowed && r.reason == AdminReason.invitationRequired)
        }
        #expect(try store.adminQuestions(.activateUser(user: "dana"), as: "dana")
                == [.check(actor: "dana", action: "reactivate", resource: ResourceRef(type: "user", id: "dana"))])
        // Nor in a batch.
        let batch = try store.apply([AdminBatchItem(actor: "dana", operation: .activateUser(user: "dana"))], now: t0)
        #expect(!batch.committed && batch.results.first?.reason == AdminReason.invitationRequired)
        #expect(try store.user(idOrAlias: "dana")?.status == .invited)
        // An admin with user:reactivate may; its open invitation goes.
        let r = try store.administer(.activateUser(user: "dana"), as: "nora", now: t0)
        #expect(r.allowed && r.invitationToken == nil)
        #expect(try store.invitations(user: "dana").map { $0.status(at: t0) } == ["revoked"])
        #expect(throws: PIAMError(.invitationInvalid, "the invitation of user:dana was revoked at \(RFC3339.format(t0)) (a newer one may have been sent)")) {
            try store.acceptInvitation(secret: invite.invitationToken!, identity: "okta|dana2", now: t0)
        }
    }

    @Test func registrationAndApplyReturnTheInvitationsTheyCreate() throws {
        let dir = TempDir()
        let store = try adminStore(dir)
        let items = try Store.parseApplyFile(Data("""
            [{"op": "org.register", "org": "initech", "admin": "bill", "as": "nina"},
             {"op": "org.approve", "org": "initech", "entitle": ["partner-admin"], "as": "nina"},
             {"op": "user.invite", "user": "peter", "org": "initech", "invitation_expires": "2027-01-20T08:00:00Z", "as": "nina"},
             {"op": "invitation.resend", "user": "peter", "expires": "2027-01-21T08:00:00Z", "as": "nina"}]
            """.utf8), defaultActor: nil)
        let ok = try store.apply(items, now: t0)
        #expect(ok.committed)
        #expect(ok.results.map { $0.invitationToken != nil } == [true, false, true, true])
        #expect(ok.results[3].invitationExpires == RFC3339.parse("2027-01-21T08:00:00Z"))
        #expect(try store.invitations(user: "bill").first?.createdBy == "nina")
        #expect(try store.invitations(user: "peter").map { $0.status(at: t0) } == ["revoked", "open"])
        // The first admin accepts; then acts.
        let bill = try store.acceptInvitation(secret: ok.results[0].invitationToken!, identity: "bill@initech.example", now: t0)
        #expect(bill.allowed)
        #expect(try store.administer(.suspendUser(user: "peter"), as: "bill@initech.example", now: t0).allowed)
        // A self-registration's invitation is created by "registration".
        let reg = try store.administer(.registerOrg(org: "newco", name: nil, parent: nil, admin: "nell", adminName: nil, adminEmail: nil),
                                       as: "nell", now: t0)
        let nellBy = try store.invitations(user: "nell").first?.createdBy
        #expect(reg.invitationToken != nil && nellBy == "registration")
        // A run that does not commit returns no secret.
        let bad = try store.apply([AdminBatchItem(actor: "nina", operation: .inviteUser(user: "x1", org: "acme", name: nil, email: nil, aliases: [], validUntil: nil)),
                                   AdminBatchItem(actor: "nina", operation: .revoke(user: "x1", role: "nope", scope: nil))], now: t0)
        #expect(!bad.committed && bad.results.allSatisfy { $0.invitationToken == nil })
        #expect(try store.invitations().filter { $0.user == "x1" }.isEmpty)
    }

    // MARK: Idempotency

    @Test func idempotencyRecordsCommitWithTheWriteTheyDescribe() throws {
        let dir = TempDir()
        let store = try adminStore(dir)
        #expect(try store.idempotentResponse(actor: "ann", key: "k1") == nil)
        // Inside a write transaction that rolls back: gone with it.
        #expect(throws: PIAMError.self) {
            try store.db.withTransaction(immediate: true) { () throws(PIAMError) in
                try store.saveIdempotentResponse(actor: "ann", key: "k1", requestHash: "h1", status: 201, body: "{}", now: t0)
                #expect(try store.idempotentResponse(actor: "ann", key: "k1")?.status == 201)
                throw PIAMError(.conflict, "the write failed")
            }
        }
        #expect(try store.idempotentResponse(actor: "ann", key: "k1") == nil)
        // Inside one that commits.
        try store.db.withTransaction(immediate: true) { () throws(PIAMError) in
            _ = try store.saveIdempotentResponse(actor: "ann", key: "k1", requestHash: "h1", status: 201, body: #"{"ok":true}"#, now: t0)
        }
        let saved = try #require(try store.idempotentResponse(actor: "ann", key: "k1"))
        #expect(saved.requestHash == "h1" && saved.status == 201 && saved.body == #"{"ok":true}"#)
        // The first response stays; keys are per actor; outside a transaction too.
        #expect(try !store.saveIdempotentResponse(actor: "ann", key: "k1", requestHash: "h2", status: 500, body: "x", now: t0 + 1))
        #expect(try store.idempotentResponse(actor: "ann", key: "k1")?.requestHash == "h1")
        #expect(try store.saveIdempotentResponse(actor: "bob", key: "k1", requestHash: "h3", status: 403, body: "no", now: t0 + 10))
        #expect(try store.pruneIdempotency(olderThan: t0 + 5) == 1)
        #expect(try store.idempotentResponse(actor: "ann", key: "k1") == nil)
        #expect(try store.idempotentResponse(actor: "bob", key: "k1")?.status == 403)
    }

    // MARK: Migration

    @Test func aVersion3DatabaseMigratesToVersion4() throws {
        let dir = TempDir()
        let path = dir.path("v3.db")
        do {
            let raw = try Database(path: path, create: true)
            for (i, sql) in Schema.migrations.prefix(3).enumerated() {
                try raw.execute(sql)
                try raw.execute("PRAGMA user_version = \(i + 1)")
            }
            try raw.execute("""
                INSERT INTO orgs(id, parent, name, kind) VALUES ('host', NULL, 'Host', 'host');
                INSERT INTO users(id, org, status) VALUES ('old', 'host', 'invited');
                INSERT INTO audit(at, actor, operation, target, decision, reason, revision) VALUES (1, 'x', 'user.invite', 'user:old', 'allowed', 'allowed', 2);
                """)
        }
        // A read-only store reads the v3 audit log (credential unknown).
        let ro = try Store(path: path, readOnly: true)
        #expect(try ro.auditLog().map(\.credential) == [nil])
        let store = try Store(path: path)
        #expect(try store.schemaVersion == Schema.latestVersion && Schema.latestVersion >= Schema.credentialsVersion)
        #expect(try store.revision() == 2, "the migration journals nothing")
        #expect(try store.auditLog().map(\.credential) == [nil])
        #expect(try store.tokens().isEmpty && store.invitations().isEmpty)
        // An invited user from before v4 has no invitation: an admin sends one.
        #expect(try store.invitations(user: "old").isEmpty)
    }
}

import Foundation
import Testing

/// The operating-system user running the tests (and so piamctl), as piamctl names it.
private let osUser: String = {
    if let pw = getpwuid(geteuid()), let name = pw.pointee.pw_name { return String(cString: name) }
    return "uid \(geteuid())"
}()

/// `piamctl token …` and `piamctl invitation …`, the real binary on a real database.
@Suite("piamctl tokens and invitations", .serialized)
struct CredentialCLITests {
    @Test func tokensAreShownOnceListedWithoutSecretsAndRevoked() async throws {
        let cli = try CLI()
        try await cli.demo()
        // Text: the secret on a line of its own, and a line saying it will not be shown again.
        let created = try await cli.admin("token create", "--user", "okta|acme-brokers-admin", "--name", "billing-portal", "--expires", "30d")
        #expect(created.code == 0, "\(created.out) \(created.err)")
        let lines = created.out.split(separator: "\n").map(String.init)
        #expect(lines.count == 3 && lines[0].hasPrefix("created token \"billing-portal\" (#1) for user:acme-brokers-admin, expires "))
        let secret = lines[1]
        #expect(secret.hasPrefix("piam_") && secret.count == 48)
        #expect(lines[2].contains("will not be shown again"))
        // JSON has it too (once, at creation).
        let json = try await cli.admin("token create", "--user", "nina.hq", "--name", "nightly-sync", "--json")
        #expect(json.code == 0)
        let second = try #require(json.object["secret"] as? String)
        #expect(second.hasPrefix("piam_") && second != secret)
        #expect(json.object["status"] as? String == "active" && json.object["expires_at"] == nil && json.object["id"] as? Int == 2)
        // A duplicate name, an unknown user, a bad expiry: exit 2, one line.
        let dup = try await cli.admin("token create", "--user", "acme-brokers-admin", "--name", "billing-portal")
        #expect(dup.code == 2 && dup.err.hasPrefix("piamctl: user \"acme-brokers-admin\" already has a token named \"billing-portal\"")
                && dup.err.split(separator: "\n").count == 1, "\(dup.err)")
        let unknown = try await cli.admin("token create", "--user", "nobody", "--name", "x", "--json")
        #expect(unknown.code == 2 && (unknown.object["error"] as? [String: Any])?["code"] as? String == "not_found")
        #expect(try await cli.admin("token create", "--user", "nina.hq", "--name", "y", "--expires", "soon").code == 2)

        // Listing never shows a secret.
        let list = try await cli.admin("token list")
        #expect(list.code == 0 && list.out.contains("billing-portal") && list.out.contains("nightly-sync"))
        #expect(!list.out.contains(secret) && !list.out.contains(second))
        let listed = try await cli.admin("token list", "--user", "nina.hq", "--json")
        let tokens = (listed.object["tokens"] as? [[String: Any]]) ?? []
        #expect(tokens.count == 1 && tokens[0]["name"] as? String == "nightly-sync" && tokens[0]["secret"] == nil)
        #expect(tokens[0]["created_by"] as? String == "os:\(osUser)")

        // Revoking by id and by user and name; revoking again changes nothing.
        let r1 = try await cli.admin("token revoke", "1")
        #expect(r1.code == 0 && r1.out == "revoked token \"billing-portal\" (#1) of user:acme-brokers-admin\n")
        #expect(try await cli.admin("token revoke", "1").out.contains("already revoked"))
        let r2 = try await cli.admin("token revoke", "--user", "nina.hq", "--name", "nightly-sync", "--json")
        #expect(r2.code == 0 && r2.object["status"] as? String == "revoked")
        #expect(try await cli.admin("token revoke", "7").code == 2)
        #expect(try await cli.admin("token revoke", "1", "--user", "nina.hq").code == 2)
        #expect(try await cli.admin("token revoke").code == 2)
        let after = (try await cli.admin("token list", "--json").object["tokens"] as? [[String: Any]]) ?? []
        #expect(after.map { $0["status"] as? String } == ["revoked", "revoked"])

        // Audited with the credential, never with the secret.
        let audit = (try await cli.admin("audit", "--json").json as? [[String: Any]]) ?? []
        let rows = audit.filter { ($0["operation"] as? String)?.hasPrefix("token.") == true }
        #expect(rows.map { $0["operation"] as? String } == ["token.create", "token.create", "token.revoke", "token.revoke"])
        #expect(rows.allSatisfy { $0["credential"] as? String == "cli" && $0["actor"] as? String == "os:\(osUser)" })
        let text = String(decoding: try JSONSerialization.data(withJSONObject: audit), as: UTF8.self)
        #expect(!text.contains(secret) && !text.contains(second))
    }

    @Test func anInvitationIsAcceptedOnceWithTheInviteesIdentity() async throws {
        let cli = try CLI()
        try await cli.demo()
        let admin = "acme-brokers-north-admin"
        // The secret is printed once, with how to accept it.
        let invite = try await cli.admin("user invite", "dana", "--org", "acme-brokers-north-b1", "--invitation-expires", "72h", "--as", admin)
        #expect(invite.code == 0, "\(invite.out) \(invite.err)")
        let secret = try #require(invite.out.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.first { $0.hasPrefix("piam_inv_") })
        #expect(invite.out.contains("invitation accept"))
        // The invitee cannot simply claim to be itself.
        let claim = try await cli.admin("user activate", "dana", "--as", "dana")
        #expect(claim.code == 1 && claim.out.hasPrefix("refused invitation_required:"), "\(claim.out)")
        #expect(try await cli.admin("user activate", "--help").out.contains("invitation accept"))
        // Listing: open, no secret.
        let listed = try await cli.admin("invitation list", "--user", "dana", "--json")
        let rows = (listed.object["invitations"] as? [[String: Any]]) ?? []
        #expect(rows.count == 1 && rows[0]["status"] as? String == "open" && rows[0]["created_by"] as? String == admin)
        #expect(!listed.out.contains(secret))
        // Accepting: active, the identity bound as an alias; the graph sees it.
        let accepted = try await cli.admin("invitation accept", secret, "--identity", "okta|dana", "--json")
        #expect(accepted.code == 0 && accepted.object["operation"] as? String == "user.activate" && accepted.object["actor"] as? String == "dana")
        #expect(try await cli.runAsync(["check", "--db", cli.db, "okta|dana", "view", "org:acme-brokers-north-b1"]).out == "allow\n")
        // Single use: exit 2 with the code.
        let again = try await cli.admin("invitation accept", secret, "--identity", "okta|dana", "--json")
        #expect(again.code == 2 && (again.object["error"] as? [String: Any])?["code"] as? String == "invitation_used")
        let bogus = try await cli.admin("invitation accept", "piam_inv_bogus", "--identity", "x")
        #expect(bogus.code == 2 && bogus.err.hasPrefix("piamctl: no invitation has this secret"))
        let audit = (try await cli.admin("audit", "--actor", "dana", "--json").json as? [[String: Any]]) ?? []
        #expect(audit.map { "\($0["operation"] as? String ?? "") \($0["decision"] as? String ?? "") \($0["credential"] as? String ?? "-")" }
                == ["user.activate refused -", "user.activate allowed invitation", "user.alias.add allowed invitation", "user.activate failed invitation"])
    }

    @Test func anAdminResendsOrRevokesAnInvitation() async throws {
        let cli = try CLI()
        try await cli.demo()
        let admin = "acme-brokers-north-admin"
        let invite = try await cli.admin("user invite", "eve", "--org", "acme-brokers-north-b1", "--as", admin, "--json")
        let first = try #require(invite.object["invitation_token"] as? String)
        #expect(invite.object["invitation_expires"] as? String != nil)
        // Another partner's admin may not; the region's admin may.
        let foreign = try await cli.admin("invitation resend", "eve", "--as", "bluesky-agency-admin")
        #expect(foreign.code == 1 && foreign.out.hasPrefix("refused out_of_scope:"), "\(foreign.out)")
        let resent = try await cli.admin("invitation resend", "eve", "--expires", "14d", "--as", admin, "--json")
        #expect(resent.code == 0, "\(resent.out) \(resent.err)")
        let second = try #require(resent.object["invitation_token"] as? String)
        #expect(second != first)
        let old = try await cli.admin("invitation accept", first, "--identity", "okta|eve", "--json")
        #expect(old.code == 2 && (old.object["error"] as? [String: Any])?["code"] as? String == "invitation_invalid")
        // Revoked: the new one stops working too; the user stays invited.
        let revoked = try await cli.admin("invitation revoke", "eve", "--as", admin)
        #expect(revoked.code == 0 && revoked.out.hasPrefix("revoked 1 open invitation of user:eve"), "\(revoked.out)")
        #expect(try await cli.admin("invitation accept", second, "--identity", "okta|eve").code == 2)
        let list = try await cli.admin("invitation list", "--user", "eve")
        #expect(list.out.contains("revoked") && !list.out.contains("open"))
        // An apply file prints the invitations it created.
        let file = try cli.write("ops.json", #"[{"op": "user.invite", "user": "fay", "org": "acme-brokers-north-b1", "as": "\#(admin)"}]"#)
        let applied = try await cli.admin("apply", file)
        #expect(applied.code == 0 && applied.out.contains("invitation (shown once") && applied.out.contains("piam_inv_"), "\(applied.out)")
        // Help points to the new commands.
        #expect(try await cli.runAsync(["--help"]).out.contains("  invitation "))
        #expect(try await cli.runAsync(["--help"]).out.contains("  token "))
        #expect(try await cli.runAsync(["token", "create", "--help"]).out.contains("--expires"))
    }
}

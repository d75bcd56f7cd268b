import Foundation
import Testing

/// `piamctl apply FILE --what-if`: the real binary on a real database.
@Suite("piamctl apply --what-if")
struct WhatIfCLITests {
    @Test func reportsGainsAndLossesAndWritesNothing() async throws {
        let cli = try CLI()
        try await cli.demo()
        let before = try await cli.rev()
        let file = cli.path("change.json")
        try """
            [{"op": "org.suspend", "org": "acme-brokers-north-b1", "as": "acme-brokers-admin"},
             {"op": "grant", "user": "bluesky-agency-admin", "role": "claims-viewer", "as": "nina.hq"}]
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let json = try await cli.admin("apply", file, "--what-if", "--json")
        #expect(json.code == 0, "\(json.out) \(json.err)")
        #expect(json.object["what_if"] as? Bool == true && json.object["would_commit"] as? Bool == true)
        #expect(json.object["revision"] as? Int == before)
        let people = (json.object["people"] as? [[String: Any]]) ?? []
        let gain = people.first { $0["user"] as? String == "bluesky-agency-admin" }
        #expect(((gain?["gained"] as? [[String: Any]]) ?? []).map { "\($0["permission"]!) \($0["scope"]!)" } == ["claim:read bluesky-agency"])
        let losers = people.filter { !(($0["lost"] as? [Any]) ?? []).isEmpty }.compactMap { $0["user"] as? String }
        #expect(!losers.isEmpty && losers.allSatisfy { $0.hasPrefix("acme-brokers-north-b1") || $0 == "temp.agent" }, "\(losers)")
        #expect(try await cli.rev() == before, "nothing was written")

        let text = try await cli.admin("apply", file, "--what-if")
        #expect(text.code == 0)
        #expect(text.out.contains("user:bluesky-agency-admin (org:bluesky-agency)\n  + claim:read over org:bluesky-agency  via assignment claims-viewer"), "\(text.out)")
        #expect(text.out.contains("  - user:view over org:acme-brokers-north-b1"), "\(text.out)")

        // A refusal: reported, exit 1, nobody gains or loses.
        let bad = cli.path("bad.json")
        try #"[{"op": "user.suspend", "user": "bluesky-agency-admin", "as": "acme-brokers-admin"}]"#
            .write(toFile: bad, atomically: true, encoding: .utf8)
        let refused = try await cli.admin("apply", bad, "--what-if", "--json")
        #expect(refused.code == 1)
        #expect(refused.object["would_commit"] as? Bool == false && (refused.object["people"] as? [Any])?.isEmpty == true)
        #expect(((refused.object["results"] as? [[String: Any]]) ?? []).first?["status"] as? String == "refused")
        #expect(try await cli.rev() == before)
        let audit = try await cli.admin("audit", "--json", "--refused")
        #expect(!audit.out.contains("bluesky-agency-admin"), "a what-if audits nothing: \(audit.out)")
    }
}

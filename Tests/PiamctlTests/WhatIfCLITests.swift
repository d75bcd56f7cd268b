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

/// `piamctl findings`: the real binary on the demo database (no usage files: everything unused).
@Suite("piamctl findings")
struct FindingsCLITests {
    @Test func jsonCsvAndRemediesInApplyForm() async throws {
        let cli = try CLI()
        try await cli.demo()
        let json = try await cli.admin("findings", "--days", "10", "--json")
        #expect(json.code == 0, "\(json.err)")
        let findings = (json.object["findings"] as? [[String: Any]]) ?? []
        #expect(findings.contains { $0["kind"] as? String == "dormant_person" && $0["user"] as? String == "acme-brokers-admin" })
        #expect(findings.contains { $0["kind"] as? String == "dormant_holding" && $0["source"] as? String == "org_grant" })
        // Every remedy is an operation in apply form: the list is an apply file.
        let remedies = findings.compactMap { $0["remedy"] as? [String: Any] }
        #expect(remedies.count == findings.count && remedies.allSatisfy { ["user.suspend", "revoke", "org-revoke", "user.remove"].contains($0["op"] as? String ?? "") })
        let file = cli.path("cleanup.json")
        // (Partner users' holdings: revoking the business's own admin role first would leave it
        // without the right to do the rest — the rules decide remedies like any operation.)
        let partnerRevokes = findings.filter { $0["partner"] as? String == "acme-brokers" }.compactMap { $0["remedy"] as? [String: Any] }
            .filter { $0["op"] as? String == "revoke" }
        try JSONSerialization.data(withJSONObject: Array(partnerRevokes.prefix(3))).write(to: URL(fileURLWithPath: file))
        let whatIf = try await cli.admin("apply", file, "--as", "nina.hq", "--what-if", "--json")
        #expect(whatIf.code == 0 && whatIf.object["would_commit"] as? Bool == true, "\(whatIf.out) \(whatIf.err)")
        #expect(((whatIf.object["people"] as? [[String: Any]]) ?? []).contains { !((($0["lost"] as? [Any]) ?? []).isEmpty) })
        // A partner admin sees its partner's findings only.
        let ann = try await cli.admin("findings", "--days", "10", "--json", "--as", "acme-brokers-admin")
        let annFindings = (ann.object["findings"] as? [[String: Any]]) ?? []
        #expect(!annFindings.isEmpty && annFindings.allSatisfy { $0["partner"] as? String == "acme-brokers" }, "\(annFindings.prefix(3))")
        let csv = try await cli.admin("findings", "--days", "10", "--csv")
        #expect(csv.out.hasPrefix("kind,partner,org,user,source,role,scope,last_use,since,granted_by,granted_at,message,remedy\n"))
        #expect(csv.out.split(separator: "\n").count == findings.count + 1)
        // Usage files are read (UsageTests checks their figures); a missing one is a clear error.
        let usage = try await cli.admin("findings", "--usage", cli.path("usage.db"))
        #expect(usage.code != 0 && usage.err.contains("does not exist"), "\(usage.err)")
    }
}

import Foundation
import PIAMAdmin
import PIAMDemo
import PIAMEngine
import PIAMStore
import Testing

/// An access review end to end with the real binaries: piamctl starts and closes the campaign,
/// two partners' admins decide over piam-admind's HTTP API, each seeing only its own partner's
/// items; a revocation by an admin lacking the right is refused; the no-answer policy is applied
/// at close; the audit log holds every step.
@Suite("access reviews end to end (piamctl and piam-admind)", .serialized)
struct ReviewTests {
    @Test func aCampaignFromItemsToClose() async throws {
        let f = try Fixture.delegation()
        // The business starts a campaign over every partner: unanswered items are revoked.
        let created = try await piamctl(["review", "create", "Q1 review", "--all-partners", "--due", "30d", "--no-answer", "revoke",
                                         "--days", "30", "--as", "nina", "--db", f.db, "--json"], in: f)
        #expect(created.code == 0, "\(created.out) \(created.err)")
        let campaign = try #require((try JSONSerialization.jsonObject(with: Data(created.out.utf8)) as? [String: Any])?["campaign"] as? Int)
        // A partner admin may not start one: it is the business's.
        let notBusiness = try await piamctl(["review", "create", "mine", "--partner", "acme", "--due", "30d", "--no-answer", "keep",
                                             "--as", "ann", "--db", f.db], in: f)
        #expect(notBusiness.code == 1 && notBusiness.out.hasPrefix("refused no_permission"), "\(notBusiness.out) \(notBusiness.err)")

        let admind = try await AdmindProcess(f)
        defer { Task { await admind.stop() } }
        func items(_ user: String) throws -> [[String: Any]] {
            let r = try admind.call("GET", "/admin/v1/reviews/\(campaign)/items", as: user)
            #expect(r.status == 200, "\(r)")
            return (r.json?["items"] as? [[String: Any]]) ?? []
        }
        func key(_ i: [String: Any]) -> String { "\(i["user"]!) \(i["role"]!)" }
        // Frozen items: every partner user's assignment; each admin sees its own partner's only.
        let ann = try items("ann"), gus = try items("gus")
        #expect(Set(ann.map(key)) == ["ann partner-admin", "ann claims-viewer", "bob approver", "nora partner-admin"], "\(ann.map(key))")
        #expect(gus.map(key) == ["gus partner-admin"])
        #expect(ann.allSatisfy { $0["recommendation"] as? String == "revoke" && $0["last_use"] is NSNull }, "no usage: unused")
        #expect((ann.first { key($0) == "bob approver" }?["reviewers"] as? [String]) == ["ann"], "the partner's admin, not the business")
        /// The item's id (0, which no item has, when missing: the request then fails the test).
        func item(_ list: [[String: Any]], _ k: String) -> Int { (list.first { key($0) == k }?["id"] as? Int) ?? 0 }
        func decide(_ user: String, _ id: Int, _ decision: String, _ comment: String) throws -> HTTPReply {
            try admind.call("POST", "/admin/v1/reviews/\(campaign)/items/\(id)/decision", as: user,
                            body: ["decision": decision, "comment": comment])
        }
        // Decisions by two partners' admins.
        let keep = try decide("ann", item(ann, "ann partner-admin"), "keep", "I run acme")
        #expect(keep.status == 200, "\(keep)")
        let revoke = try decide("ann", item(ann, "ann claims-viewer"), "revoke", "not needed any more")
        #expect(revoke.status == 200, "\(revoke)")
        #expect(try decide("gus", item(gus, "gus partner-admin"), "keep", "still the admin").status == 200)
        #expect(try Store(path: f.db, readOnly: true).loadGraph().graph.accessReport(user: "ann", now: AdminAPI.now())!
            .holdings.contains { $0.role == "claims-viewer" } == false, "the revocation reached the graph")
        // Another partner's item: 404 for gus. An admin lacking the right: refused (bob may view
        // ann, not revoke her roles; nora, a region admin, cannot reach bob at acme's root).
        #expect(try decide("gus", item(ann, "bob approver"), "revoke", "x").status == 404)
        let byBob = try decide("bob", item(ann, "nora partner-admin"), "revoke", "x")
        #expect(byBob.status == 403 && byBob.json?["code"] as? String == "no_permission", "\(byBob)")
        let byNora = try await piamctl(["review", "decide", String(item(ann, "bob approver")), "revoke", "--comment", "x",
                                        "--as", "nora", "--db", f.db], in: f)
        #expect(byNora.code == 1 && byNora.out.hasPrefix("refused out_of_scope"), "\(byNora.out) \(byNora.err)")
        // Closing revokes the two unanswered items, but only once confirmed with that count.
        let unconfirmed = try admind.call("POST", "/admin/v1/reviews/\(campaign)/close", as: "nina", body: [String: Any]())
        #expect(unconfirmed.status == 409 && unconfirmed.json?["revocations"] as? Int == 2, "\(unconfirmed)")
        let cliUnconfirmed = try await piamctl(["review", "close", String(campaign), "--as", "nina", "--db", f.db], in: f)
        #expect(cliUnconfirmed.code == 1 && cliUnconfirmed.out.contains("closing would revoke 2 unanswered items"), "\(cliUnconfirmed.out)")
        let closed = try admind.call("POST", "/admin/v1/reviews/\(campaign)/close", as: "nina", body: ["confirm_revocations": 2])
        #expect(closed.status == 200, "\(closed)")
        let graph = try Store(path: f.db, readOnly: true).loadGraph().graph
        #expect(graph.accessReport(user: "bob", now: AdminAPI.now())!.holdings.allSatisfy { $0.role != "approver" })
        #expect(graph.accessReport(user: "nora", now: AdminAPI.now())!.holdings.allSatisfy { $0.role != "partner-admin" })
        #expect(graph.accessReport(user: "gus", now: AdminAPI.now())!.holdings.contains { $0.role == "partner-admin" })
        // Completion per partner.
        let report = try await piamctl(["review", "report", String(campaign), "--db", f.db, "--json"], in: f)
        let partners = ((try JSONSerialization.jsonObject(with: Data(report.out.utf8)) as? [String: Any])?["partners"] as? [[String: Any]]) ?? []
        let acme = partners.first { $0["partner"] as? String == "acme" }, globex = partners.first { $0["partner"] as? String == "globex" }
        #expect(acme?["items"] as? Int == 4 && acme?["decided"] as? Int == 2 && acme?["revoked"] as? Int == 3 && acme?["kept"] as? Int == 1, "\(partners)")
        #expect(globex?["items"] as? Int == 1 && globex?["percent_decided"] as? Int == 100 && globex?["kept"] as? Int == 1)
        // The audit trail: every step, allowed or refused, with the revocations it made.
        let audit = try Store(path: f.db, readOnly: true).auditLog().filter { $0.operation.hasPrefix("review.") || $0.operation == "revoke" }
        let trail = audit.map { "\($0.operation) \($0.actor) \($0.decision) \($0.reason)" }
        #expect(trail == [
            "review.create nina allowed allowed",
            "review.create ann refused no_permission",
            "review.keep ann allowed allowed",
            "revoke ann allowed allowed",
            "review.revoke ann allowed allowed",
            "review.keep gus allowed allowed",
            "review.revoke bob refused no_permission",
            "review.revoke nora refused out_of_scope",
            "revoke nina allowed allowed",
            "revoke nina allowed allowed",
            "review.close nina allowed allowed",
        ], "\(trail)")
        #expect(audit.filter { $0.operation == "revoke" && $0.actor == "nina" }.allSatisfy { $0.batch == "review-\(campaign)" })
        #expect(audit.first { $0.operation == "review.revoke" && $0.decision == "allowed" }?.detail?.contains("not needed any more") == true)
    }
}

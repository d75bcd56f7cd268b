import Foundation
import PIAMStore
import Testing

/// Delegated administration with `piamctl --socket`: the daemon makes the pre-decision.
@Suite("piamctl administration through piamd", .serialized)
struct AdminDaemonTests {
    @Test func theDaemonDecidesFirstAndTheTransactionAgain() async throws {
        let f = try Fixture()
        let d = try await DaemonProcess(f)
        func admin(_ words: String, _ args: String...) async throws -> (code: Int32, out: String, err: String) {
            try await piamctl(words.split(separator: " ").map(String.init) + ["--db", f.db, "--socket", f.socket, "--json"] + args, in: f)
        }
        func json(_ text: String) -> [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
        }
        // A write, then the daemon answers on a graph at least that new (read-your-writes).
        let invited = try await admin("user invite", "dana", "--org", "acme-brokers-north-b1", "--as", "acme-brokers-north-admin")
        #expect(invited.code == 0, "\(invited.out) \(invited.err)")
        let rev = try #require(json(invited.out)["revision"] as? Int)
        // The next write's pre-decision names dana: the daemon must have caught up to decide it.
        let accepted = try await admin("user activate", "dana", "--as", "acme-brokers-north-admin")
        #expect(accepted.code == 0, "\(accepted.out) \(accepted.err)")
        let suspended = try await admin("user suspend", "dana", "--as", "acme-brokers-north-admin")
        #expect(suspended.code == 0, "\(suspended.out) \(suspended.err)")
        let now = try await piamctl(["check", "--socket", f.socket, "--min-revision", String(rev + 2), "dana", "view", "user:dana"], in: f)
        #expect(now.out == "deny subject_inactive\n")
        // A refusal by the daemon's pre-decision: audited, and says where it was decided.
        let refused = try await admin("user suspend", "bluesky-agency-admin", "--as", "acme-brokers-admin")
        #expect(refused.code == 1)
        #expect(json(refused.out)["reason"] as? String == "out_of_scope")
        #expect((json(refused.out)["message"] as? String)?.hasSuffix("(pre-decision)") == true)
        let audit = try Store(path: f.db).auditLog()
        #expect(audit.map(\.decision) == ["allowed", "allowed", "allowed", "refused"])
        // Without the daemon there is no pre-decision to take: an error, nothing written.
        await d.stop()
        let before = try Store(path: f.db).revision()
        let down = try await admin("user reactivate", "dana", "--as", "acme-brokers-north-admin")
        #expect(down.code == 2 && down.err.hasPrefix("piamctl: "), "\(down.out) \(down.err)")
        #expect(try Store(path: f.db).revision() == before)
    }
}

import Foundation
import Testing

extension CLI {
    /// Runs an administrative command against this test's database: `words` is the command
    /// path (`"org register"`), `--db` goes after it.
    @discardableResult
    func admin(_ words: String, _ args: String...) throws -> Result {
        try run(words.split(separator: " ").map(String.init) + ["--db", db] + args)
    }

    /// Writes the curated demo database.
    func demo() throws {
        let r = try run(["demo", "--db", db])
        precondition(r.code == 0, r.err)
    }

    func export() throws -> String { try run(["export", "--db", db]).out }
}

extension CLI.Result {
    var reason: String? { object["reason"] as? String }
    var revision: Int? { object["revision"] as? Int }
}

@Suite("piamctl delegated administration", .serialized)
struct AdminCLITests {
    /// Expects exit status `code` (and, for a refusal, its reason on stdout).
    func expect(_ r: CLI.Result, _ code: Int32, _ reason: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.code == code, "exit \(r.code): \(r.out) \(r.err)", sourceLocation: sourceLocation)
        if let reason { #expect(r.out.hasPrefix("refused \(reason):"), "\(r.out)", sourceLocation: sourceLocation) }
    }

    @Test func partnerOnboardingFromSelfRegistrationToDelegatedAdmins() throws {
        let cli = try CLI()
        try cli.demo()
        // A partner registers itself from a sign-up form: pending org, invited first admin.
        let reg = try cli.admin("org register", "zenith", "--name", "Zenith Brokers", "--admin", "zoe", "--admin-email", "zoe@zenith.example", "--json")
        expect(reg, 0)
        #expect(reg.object["decision"] as? String == "allowed" && reg.object["target"] as? String == "org:zenith")
        let rev = try #require(reg.revision)
        #expect(try cli.revision() == rev)
        expect(try cli.admin("user activate", "zoe", "--as", "zoe"), 0)
        // Its admin cannot approve its own registration, nor act while it is pending.
        expect(try cli.admin("org approve", "zenith", "--as", "zoe"), 1, "self_action")
        expect(try cli.admin("user invite", "zack", "--org", "zenith", "--as", "zoe"), 1, "org_inactive")
        // The business's partner manager approves it and entitles the partner.
        let approved = try cli.admin("org approve", "zenith", "--entitle", "partner-admin", "--entitle", "quote-creator", "--as", "pete.pm")
        expect(approved, 0)
        #expect(approved.out.contains("approved org:zenith") && approved.out.contains("revision"))
        // Now the delegated admin runs its own company.
        expect(try cli.admin("user invite", "zack", "--org", "zenith", "--name", "Zack", "--alias", "okta|zack", "--as", "zoe"), 0)
        expect(try cli.admin("user activate", "okta|zack", "--as", "okta|zack"), 0)
        expect(try cli.admin("org create", "zenith-west", "--parent", "zenith", "--name", "Zenith West", "--as", "zoe"), 0)
        expect(try cli.admin("user invite", "wes", "--org", "zenith-west", "--as", "zoe"), 0)
        // Handing out power it does not hold is escalation; its own role it may share.
        expect(try cli.admin("grant", "zack", "quote-creator", "--as", "zoe"), 1, "escalation")
        expect(try cli.admin("grant", "zack", "partner-admin", "--as", "zoe"), 0)
        #expect(try cli.run(["check", "--db", cli.db, "zack", "suspend", "user:wes"]).code == 0)
        // Two admins: zoe may step down; then zack is the last one and may not.
        expect(try cli.admin("revoke", "zoe", "partner-admin", "--as", "zoe"), 0)
        expect(try cli.admin("revoke", "zack", "partner-admin", "--as", "zack"), 1, "last_admin")
        expect(try cli.admin("user suspend", "zack", "--as", "zack"), 1, "self_action")
        // The business rejects a registration it does not want.
        expect(try cli.admin("org register", "shady", "--admin", "sam"), 0)
        expect(try cli.admin("org reject", "shady", "--as", "acme-brokers-admin"), 1, "no_permission")
        expect(try cli.admin("org reject", "shady", "--as", "pete.pm"), 0)
        #expect(try cli.run(["check", "--db", cli.db, "sam", "view", "org:shady"]).out == "deny unknown_subject\n")
    }

    @Test func delegatedAdministrationInsideOnePartner() throws {
        let cli = try CLI()
        try cli.demo()
        let north = "acme-brokers-north-admin", root = "acme-brokers-admin"
        // A region admin manages its region's people…
        expect(try cli.admin("user suspend", "acme-brokers-north-b1-agent1", "--as", north), 0)
        #expect(try cli.run(["check", "--db", cli.db, "acme-brokers-north-b1-agent1", "view", "org:acme-brokers-north"]).out == "deny subject_inactive\n")
        expect(try cli.admin("user reactivate", "acme-brokers-north-b1-agent1", "--as", north), 0)
        // …but not the parent's or a sibling region's, nor another partner's.
        expect(try cli.admin("user suspend", "acme-brokers-south-b1-agent1", "--as", north), 1, "out_of_scope")
        expect(try cli.admin("user suspend", root, "--as", north), 1, "out_of_scope")
        expect(try cli.admin("user suspend", "bluesky-agency-admin", "--as", root), 1, "out_of_scope")
        // The partner root's admin manages the region admin like anyone else below it.
        expect(try cli.admin("user suspend", north, "--as", root), 0)
        expect(try cli.admin("user invite", "nadia", "--org", "acme-brokers-north", "--as", north), 1, "subject_inactive")
        expect(try cli.admin("user reactivate", north, "--as", root), 0)
        // Sub-orgs: create in its region; moving one needs rights at both ends.
        expect(try cli.admin("org create", "acme-brokers-north-b3", "--parent", "acme-brokers-north", "--as", north), 0)
        expect(try cli.admin("org move", "acme-brokers-north-b3", "--parent", "acme-brokers-south", "--as", north), 1, "out_of_scope")
        expect(try cli.admin("org move", "acme-brokers-north-b3", "--parent", "acme-brokers-south", "--as", root), 0)
        expect(try cli.admin("org move", "acme-brokers-south", "--parent", "bluesky-agency", "--as", "nina.hq"), 1, "cross_partner")
        // Org grants: the root admin shares a role it holds with a whole region.
        expect(try cli.admin("org-grant", "acme-brokers-east", "quote-creator", "--include-suborgs", "--as", root), 0)
        expect(try cli.admin("org-grant", "acme-brokers-east", "claims-adjuster", "--as", root), 1, "outside_ceiling")
        expect(try cli.admin("org-grant", "acme-brokers-east", "policy-servicer", "--as", root), 1, "escalation")
        // An access request, approved by the one admin who may.
        let req = try cli.admin("request create", "quote-manager", "--note", "team lead from May", "--as", "acme-brokers-north-b1-agent2", "--json")
        expect(req, 0)
        let id = try #require(req.object["request_id"] as? Int)
        let forNorth = try cli.admin("request list", "--as", north, "--json")
        #expect((forNorth.object["requests"] as? [Any])?.isEmpty == true)
        let forRoot = try cli.admin("request list", "--as", root, "--json")
        #expect(((forRoot.object["requests"] as? [[String: Any]]) ?? []).map { $0["id"] as? Int } == [id])
        expect(try cli.admin("request approve", String(id), "--as", north), 1, "escalation")
        expect(try cli.admin("request approve", String(id), "--as", "acme-brokers-north-b1-agent2"), 1, "self_action")
        expect(try cli.admin("request approve", String(id), "--as", root), 0)
        #expect(try cli.run(["check", "--db", cli.db, "acme-brokers-north-b1-agent2", "approve", "quote:Q-9", "--prop", "org=acme-brokers-north-b1"]).code == 0)
        // Errors: one line on stderr, exit 2, audited as failed.
        let dup = try cli.admin("user invite", "acme-brokers-north-b1-agent1", "--org", "acme-brokers-north", "--as", north)
        #expect(dup.code == 2 && dup.err == "piamctl: user id \"acme-brokers-north-b1-agent1\" is already a user id or alias\n")
        let audit = try cli.admin("audit", "--actor", north, "--refused", "--json")
        let rows = (audit.json as? [[String: Any]]) ?? []
        #expect(rows.map { $0["reason"] as? String } == ["out_of_scope", "out_of_scope", "subject_inactive", "out_of_scope", "escalation", "conflict"])
        #expect(rows.allSatisfy { $0["actor_partner"] as? String == "acme-brokers" })
    }

    @Test func aSuspendedPartnerIsCutOffAndRestored() throws {
        let cli = try CLI()
        try cli.demo()
        // Granite Brokers is suspended in the demo: its admin can do nothing.
        expect(try cli.admin("user suspend", "granite-brokers-quarry-b1-agent1", "--as", "granite-brokers-admin"), 1, "org_inactive")
        expect(try cli.admin("org suspend", "acme-brokers", "--as", "acme-brokers-admin"), 1, "self_action")
        expect(try cli.admin("org suspend", "acme-brokers", "--as", "pete.pm", "--json"), 0)
        for args in [["user invite", "x1", "--org", "acme-brokers"], ["user suspend", "acme-brokers-north-admin"], ["org reactivate", "acme-brokers"],
                     ["grant", "acme-brokers-north-b1-agent1", "quote-manager"]] {
            let words = args[0].split(separator: " ").map(String.init)
            expect(try cli.run(words + ["--db", cli.db] + Array(args.dropFirst()) + ["--as", "acme-brokers-admin"]), 1, "org_inactive")
        }
        expect(try cli.admin("org reactivate", "acme-brokers", "--as", "pete.pm"), 0)
        expect(try cli.admin("user invite", "x1", "--org", "acme-brokers", "--as", "acme-brokers-admin"), 0)
        let audit = try cli.admin("audit", "--partner", "acme-brokers", "--json")
        let rows = (audit.json as? [[String: Any]]) ?? []
        #expect(rows.filter { $0["reason"] as? String == "org_inactive" }.count == 4)
        #expect(rows.last?["decision"] as? String == "allowed" && rows.last?["operation"] as? String == "user.invite")
        #expect(try cli.admin("audit", "--since", "1h").out.contains("pete.pm"))
        #expect(try cli.admin("audit", "--since", "2000-01-01T00:00:00Z", "--refused", "--limit", "1").out.contains("refused org_inactive"))
    }

    @Test func applyOneBadOperationChangesNothing() throws {
        let cli = try CLI()
        try cli.demo()
        let before = try cli.export()
        let rev = try cli.revision()
        let file = try cli.write("ops.json", """
            [{"op": "org.register", "org": "initech", "admin": "bill", "as": "nina.hq"},
             {"op": "org.approve", "org": "initech", "entitle": ["partner-admin"], "as": "pete.pm"},
             {"op": "user.activate", "user": "bill", "as": "bill"},
             {"op": "user.invite", "user": "peter", "org": "initech", "as": "bill"},
             {"op": "user.suspend", "user": "bill", "as": "bill"},
             {"op": "user.invite", "user": "milton", "org": "initech", "as": "bill"}]
            """)
        let r = try cli.admin("apply", file, "--json")
        #expect(r.code == 1)
        #expect(r.object["committed"] as? Bool == false)
        let results = (r.object["results"] as? [[String: Any]]) ?? []
        #expect(results.map { $0["status"] as? String } == ["rolled_back", "rolled_back", "rolled_back", "rolled_back", "refused", "not_run"])
        #expect(results[4]["reason"] as? String == "self_action")
        #expect(try cli.export() == before)
        #expect(try cli.revision() == rev)
        // Without it, all of it in one go.
        let good = try cli.write("good.json", """
            [{"op": "org.register", "org": "initech", "admin": "bill", "as": "nina.hq"},
             {"op": "org.approve", "org": "initech", "entitle": ["partner-admin"], "as": "pete.pm"},
             {"op": "user.activate", "user": "bill", "as": "bill"},
             {"op": "user.invite", "user": "peter", "org": "initech", "as": "bill"}]
            """)
        let ok = try cli.admin("apply", good)
        #expect(ok.code == 0, "\(ok.out)\(ok.err)")
        #expect(ok.out.contains("applied 4 operations: revision \(rev) -> "))
        // A malformed file: exit 2, the JSON path named, nothing written.
        let bad = try cli.admin("apply", try cli.write("bad.json", #"[{"op": "grant", "user": "peter"}]"#), "--as", "bill")
        #expect(bad.code == 2 && bad.err == "piamctl: operations[0].role: missing\n")
    }

    @Test func applyKilledMidwayLeavesTheDatabaseExactlyAsBefore() throws {
        let cli = try CLI()
        try cli.demo()
        // Many thousands of invitations by the business, in one transaction.
        var ops: [String] = []
        for i in 0..<40_000 {
            ops.append(#"{"op": "user.invite", "user": "bulk-\#(i)", "org": "acme-brokers-north-b1", "email": "bulk-\#(i)@acme.example"}"#)
        }
        let file = try cli.write("bulk.json", "[" + ops.joined(separator: ",\n") + "]")
        let before = try cli.export()
        let rev = try cli.revision()
        let auditRows = ((try cli.admin("audit", "--json").json as? [Any]) ?? []).count
        let mainFile = try Data(contentsOf: URL(fileURLWithPath: cli.db))

        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLI.binary)
        p.arguments = ["apply", "--db", cli.db, file, "--as", "nina.hq", "--progress"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        // Wait until the transaction has begun writing (the first progress line, "apply: 1/40000
        // rows"), let it write for a while (thousands of rows), then kill it.
        var seen = ""
        while !seen.contains("/40000") {
            let chunk = err.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen += String(decoding: chunk, as: UTF8.self)
        }
        #expect(seen.contains("apply: 1/40000"), "\(seen)")
        usleep(300_000)
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        #expect(p.terminationReason == .uncaughtSignal, "it finished before it could be killed: \(seen)")

        // The main file was never written; the database reads exactly as before.
        #expect(try Data(contentsOf: URL(fileURLWithPath: cli.db)) == mainFile)
        #expect(try cli.export() == before)
        #expect(try cli.revision() == rev)
        #expect(((try cli.admin("audit", "--json").json as? [Any]) ?? []).count == auditRows)
        // And it is healthy: a write works.
        expect(try cli.admin("user invite", "after-kill", "--org", "acme-brokers-north-b1", "--as", "nina.hq"), 0)
    }

    @Test func authorityRemovedWhileWaitingForTheWriteLockIsRefused() throws {
        let cli = try CLI()
        try cli.demo()
        let north = "acme-brokers-north-admin"
        let req = try cli.admin("request create", "partner-admin", "--as", "acme-brokers-north-b1-agent1", "--json")
        let id = try #require(req.object["request_id"] as? Int)
        // A long bulk run by the business that ends by taking the region admin's authority away.
        var ops: [String] = []
        for i in 0..<8_000 { ops.append(#"{"op": "user.invite", "user": "bulk-\#(i)", "org": "acme-brokers-south"}"#) }
        ops.append(#"{"op": "revoke", "user": "\#(north)", "role": "partner-admin"}"#)
        let file = try cli.write("bulk.json", "[" + ops.joined(separator: ",\n") + "]")
        let bulk = Process()
        bulk.executableURL = URL(fileURLWithPath: CLI.binary)
        bulk.arguments = ["apply", "--db", cli.db, file, "--as", "nina.hq", "--progress"]
        let err = Pipe()
        bulk.standardError = err
        bulk.standardOutput = FileHandle.nullDevice  // one line per operation: never let a full pipe block it
        try bulk.run()
        var seen = ""
        while !seen.contains("/8001") {
            let chunk = err.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen += String(decoding: chunk, as: UTF8.self)
        }
        // Meanwhile the region admin invites and approves: the pre-decision (on the committed
        // graph) allows; the write waits for the lock, then decides again and refuses.
        // Both at once, while the bulk run holds the write lock.
        func start(_ args: [String]) throws -> (Process, Pipe) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: CLI.binary)
            p.arguments = args
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            return (p, out)
        }
        let runs = [
            try start(["user", "invite", "--db", cli.db, "late", "--org", "acme-brokers-north-b1", "--as", north, "--json"]),
            try start(["request", "approve", "--db", cli.db, String(id), "--as", north, "--json"]),
        ]
        let results = runs.map { p, out in
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return CLI.Result(code: p.terminationStatus, out: String(decoding: data, as: UTF8.self), err: "")
        }
        let (invite, approve) = (results[0], results[1])
        bulk.waitUntilExit()
        #expect(bulk.terminationStatus == 0)
        for r in [invite, approve] {
            #expect(r.code == 1 && r.reason == "no_permission", "\(r.out) \(r.err)")
            #expect((r.object["message"] as? String)?.contains("pre-decision") == false)
        }
        #expect(try cli.run(["check", "--db", cli.db, "late", "view", "user:late"]).out == "deny unknown_subject\n")
        let mine = try cli.admin("request list", "--mine", "--as", "acme-brokers-north-b1-agent1", "--json")
        #expect(((mine.object["requests"] as? [[String: Any]]) ?? []).first?["status"] as? String == "pending")
        // Afterwards, the pre-decision refuses at once, and says so.
        let again = try cli.admin("user invite", "late", "--org", "acme-brokers-north-b1", "--as", north, "--json")
        #expect(again.code == 1 && (again.object["message"] as? String)?.hasSuffix("(pre-decision)") == true)
    }

    @Test func helpIsAManPage() throws {
        let cli = try CLI()
        for words in ["org register", "org approve", "user invite", "user move", "grant", "org-grant", "request create", "audit", "apply", "role delete"] {
            let r = try cli.run(words.split(separator: " ").map(String.init) + ["--help"])
            #expect(r.code == 0, "\(words)")
            #expect(r.out.contains("OVERVIEW:") && r.out.contains("USAGE:") && r.out.contains("--db"), "\(words)")
        }
        #expect(try cli.run(["apply", "--help"]).out.contains("ONE transaction"))
        #expect(try cli.run(["org", "register", "--help"]).out.contains("EXAMPLES"))
        let root = try cli.run(["--help"]).out
        for c in ["org", "user", "role", "grant", "revoke", "org-grant", "org-revoke", "entitle", "request", "audit", "apply"] {
            #expect(root.contains("  \(c) "), "\(c) missing from piamctl --help")
        }
    }
}

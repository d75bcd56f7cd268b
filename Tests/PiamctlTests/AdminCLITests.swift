import Foundation
import Testing

// These tests never block a Swift concurrency thread while a child process runs: output goes to
// files and exits are awaited by polling. (Foundation's Process notices exits on one run-loop
// thread; while another suite's child holds it, a blocking wait here could starve the few
// cooperative threads that the other suite needs to finish, and the whole run would stall.)

/// A started `piamctl` whose output goes to files.
struct Spawned {
    let process: Process
    let outPath: String
    let errPath: String

    var out: String { (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "" }
    var err: String { (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "" }

    /// Waits for the exit without blocking a thread.
    func result() async throws -> CLI.Result {
        while process.isRunning { try await Task.sleep(for: .milliseconds(5)) }
        return CLI.Result(code: process.terminationStatus, out: out, err: err)
    }
}

extension CLI {
    /// Starts `piamctl ARGS` (without $PIAM_DB), stdout and stderr to files in this test's directory.
    func spawn(_ args: [String]) throws -> Spawned {
        let id = UUID().uuidString.prefix(8)
        let out = path("out-\(id)"), err = path("err-\(id)")
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        _ = FileManager.default.createFile(atPath: err, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = args
        var e = ProcessInfo.processInfo.environment
        e.removeValue(forKey: "PIAM_DB")
        e.removeValue(forKey: "PIAM_SOCKET")
        p.environment = e
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle(forWritingAtPath: out)
        p.standardError = FileHandle(forWritingAtPath: err)
        try p.run()
        return Spawned(process: p, outPath: out, errPath: err)
    }

    /// Runs `piamctl ARGS` to the end.
    func runAsync(_ args: [String]) async throws -> Result { try await spawn(args).result() }

    /// Runs an administrative command against this test's database: `words` is the command
    /// path (`"org register"`), `--db` goes after it.
    @discardableResult
    func admin(_ words: String, _ args: String...) async throws -> Result {
        try await runAsync(words.split(separator: " ").map(String.init) + ["--db", db] + args)
    }

    /// Writes the curated demo database.
    func demo() async throws {
        let r = try await runAsync(["demo", "--db", db])
        precondition(r.code == 0, r.err)
    }

    func export() async throws -> String { try await runAsync(["export", "--db", db]).out }

    func rev() async throws -> Int { (try await admin("status", "--json").object["revision"] as? Int) ?? -1 }
}

extension CLI.Result {
    var reason: String? { object["reason"] as? String }
    var revision: Int? { object["revision"] as? Int }
}

@Suite("piamctl delegated administration", .serialized)
struct AdminCLITests {
    /// Waits (without blocking a thread) until `run`'s stderr contains `text`, or it exits.
    func waitFor(_ run: Spawned, _ text: String) async throws {
        while !run.err.contains(text) && run.process.isRunning { try await Task.sleep(for: .milliseconds(5)) }
    }

    /// Expects exit status `code` (and, for a refusal, its reason on stdout).
    func expect(_ r: CLI.Result, _ code: Int32, _ reason: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.code == code, "exit \(r.code): \(r.out) \(r.err)", sourceLocation: sourceLocation)
        if let reason { #expect(r.out.hasPrefix("refused \(reason):"), "\(r.out)", sourceLocation: sourceLocation) }
    }

    @Test func partnerOnboardingFromSelfRegistrationToDelegatedAdmins() async throws {
        let cli = try CLI()
        try await cli.demo()
        // A partner registers itself from a sign-up form: pending org, invited first admin.
        let reg = try await cli.admin("org register", "zenith", "--name", "Zenith Brokers", "--admin", "zoe", "--admin-email", "zoe@zenith.example", "--json")
        expect(reg, 0)
        #expect(reg.object["decision"] as? String == "allowed" && reg.object["target"] as? String == "org:zenith")
        let rev = try #require(reg.revision)
        #expect(try await cli.rev() == rev)
        // Its first admin accepts the invitation the registration printed (never by a bare claim).
        expect(try await cli.admin("user activate", "zoe", "--as", "zoe"), 1, "invitation_required")
        let zoeSecret = try #require(reg.object["invitation_token"] as? String)
        expect(try await cli.admin("invitation accept", zoeSecret, "--identity", "okta|zoe"), 0)
        // Its admin cannot approve its own registration, nor act while it is pending.
        expect(try await cli.admin("org approve", "zenith", "--as", "zoe"), 1, "self_action")
        expect(try await cli.admin("user invite", "zack", "--org", "zenith", "--as", "zoe"), 1, "org_inactive")
        // The business's partner manager approves it and entitles the partner.
        let approved = try await cli.admin("org approve", "zenith", "--entitle", "partner-admin", "--entitle", "quote-creator", "--as", "pete.pm")
        expect(approved, 0)
        #expect(approved.out.contains("approved org:zenith") && approved.out.contains("revision"))
        // The business declares the partner's identity namespace: its admins alias only inside it.
        expect(try await cli.admin("user invite", "zack", "--org", "zenith", "--alias", "okta|zack", "--as", "okta|zoe"), 1, "outside_namespace")
        expect(try await cli.admin("namespace add", "zenith", "okta-zenith|", "--as", "zoe"), 1, "no_permission")
        expect(try await cli.admin("namespace add", "zenith", "okta-zenith|", "--as", "pete.pm"), 0)
        // Now the delegated admin runs its own company.
        let zackInvite = try await cli.admin("user invite", "zack", "--org", "zenith", "--name", "Zack", "--alias", "okta-zenith|zack", "--as", "okta|zoe", "--json")
        expect(zackInvite, 0)
        expect(try await cli.admin("invitation accept", try #require(zackInvite.object["invitation_token"] as? String), "--identity", "okta-zenith|zack"), 0)
        expect(try await cli.admin("org create", "zenith-west", "--parent", "zenith", "--name", "Zenith West", "--as", "zoe"), 0)
        expect(try await cli.admin("user invite", "wes", "--org", "zenith-west", "--as", "zoe"), 0)
        // Handing out power it does not hold is escalation; its own role it may share.
        expect(try await cli.admin("grant", "zack", "quote-creator", "--as", "zoe"), 1, "escalation")
        expect(try await cli.admin("grant", "zack", "partner-admin", "--as", "zoe"), 0)
        #expect(try await cli.runAsync(["check", "--db", cli.db, "zack", "suspend", "user:wes"]).code == 0)
        // Two admins: zoe may step down; then zack is the last one and may not.
        expect(try await cli.admin("revoke", "zoe", "partner-admin", "--as", "zoe"), 0)
        expect(try await cli.admin("revoke", "zack", "partner-admin", "--as", "zack"), 1, "last_admin")
        expect(try await cli.admin("user suspend", "zack", "--as", "zack"), 1, "self_action")
        // The business rejects a registration it does not want.
        expect(try await cli.admin("org register", "shady", "--admin", "sam"), 0)
        expect(try await cli.admin("org reject", "shady", "--as", "acme-brokers-admin"), 1, "no_permission")
        expect(try await cli.admin("org reject", "shady", "--as", "pete.pm"), 0)
        #expect(try await cli.runAsync(["check", "--db", cli.db, "sam", "view", "org:shady"]).out == "deny unknown_subject\n")
    }

    @Test func delegatedAdministrationInsideOnePartner() async throws {
        let cli = try CLI()
        try await cli.demo()
        let north = "acme-brokers-north-admin", root = "acme-brokers-admin"
        // A region admin manages its region's people…
        expect(try await cli.admin("user suspend", "acme-brokers-north-b1-agent1", "--as", north), 0)
        #expect(try await cli.runAsync(["check", "--db", cli.db, "acme-brokers-north-b1-agent1", "view", "org:acme-brokers-north"]).out == "deny subject_inactive\n")
        expect(try await cli.admin("user reactivate", "acme-brokers-north-b1-agent1", "--as", north), 0)
        // …but not the parent's or a sibling region's, nor another partner's.
        expect(try await cli.admin("user suspend", "acme-brokers-south-b1-agent1", "--as", north), 1, "out_of_scope")
        expect(try await cli.admin("user suspend", root, "--as", north), 1, "out_of_scope")
        expect(try await cli.admin("user suspend", "bluesky-agency-admin", "--as", root), 1, "out_of_scope")
        // The partner root's admin manages the region admin like anyone else below it.
        expect(try await cli.admin("user suspend", north, "--as", root), 0)
        expect(try await cli.admin("user invite", "nadia", "--org", "acme-brokers-north", "--as", north), 1, "subject_inactive")
        expect(try await cli.admin("user reactivate", north, "--as", root), 0)
        // Sub-orgs: create in its region; moving one needs rights at both ends.
        expect(try await cli.admin("org create", "acme-brokers-north-b3", "--parent", "acme-brokers-north", "--as", north), 0)
        expect(try await cli.admin("org move", "acme-brokers-north-b3", "--parent", "acme-brokers-south", "--as", north), 1, "out_of_scope")
        expect(try await cli.admin("org move", "acme-brokers-north-b3", "--parent", "acme-brokers-south", "--as", root), 0)
        expect(try await cli.admin("org move", "acme-brokers-south", "--parent", "bluesky-agency", "--as", "nina.hq"), 1, "cross_partner")
        // Org grants: the root admin shares a role it holds with a whole region.
        expect(try await cli.admin("org-grant", "acme-brokers-east", "quote-creator", "--include-suborgs", "--as", root), 0)
        expect(try await cli.admin("org-grant", "acme-brokers-east", "claims-adjuster", "--as", root), 1, "outside_ceiling")
        expect(try await cli.admin("org-grant", "acme-brokers-east", "policy-servicer", "--as", root), 1, "escalation")
        // An access request, approved by the one admin who may.
        let req = try await cli.admin("request create", "quote-manager", "--note", "team lead from May", "--as", "acme-brokers-north-b1-agent2", "--json")
        expect(req, 0)
        let id = try #require(req.object["request_id"] as? Int)
        let forNorth = try await cli.admin("request list", "--as", north, "--json")
        #expect((forNorth.object["requests"] as? [Any])?.isEmpty == true)
        let forRoot = try await cli.admin("request list", "--as", root, "--json")
        #expect(((forRoot.object["requests"] as? [[String: Any]]) ?? []).map { $0["id"] as? Int } == [id])
        expect(try await cli.admin("request approve", String(id), "--as", north), 1, "escalation")
        expect(try await cli.admin("request approve", String(id), "--as", "acme-brokers-north-b1-agent2"), 1, "self_action")
        expect(try await cli.admin("request approve", String(id), "--as", root), 0)
        #expect(try await cli.runAsync(["check", "--db", cli.db, "acme-brokers-north-b1-agent2", "approve", "quote:Q-9", "--prop", "org=acme-brokers-north-b1"]).code == 0)
        // Errors: one line on stderr, exit 2, audited as failed.
        let dup = try await cli.admin("user invite", "acme-brokers-north-b1-agent1", "--org", "acme-brokers-north", "--as", north)
        #expect(dup.code == 2 && dup.err == "piamctl: user id \"acme-brokers-north-b1-agent1\" is already a user id or alias\n")
        let audit = try await cli.admin("audit", "--actor", north, "--refused", "--json")
        let rows = (audit.json as? [[String: Any]]) ?? []
        #expect(rows.map { $0["reason"] as? String } == ["out_of_scope", "out_of_scope", "subject_inactive", "out_of_scope", "escalation", "conflict"])
        #expect(rows.allSatisfy { $0["actor_partner"] as? String == "acme-brokers" })
    }

    @Test func aSuspendedPartnerIsCutOffAndRestored() async throws {
        let cli = try CLI()
        try await cli.demo()
        // Granite Brokers is suspended in the demo: its admin can do nothing.
        expect(try await cli.admin("user suspend", "granite-brokers-quarry-b1-agent1", "--as", "granite-brokers-admin"), 1, "org_inactive")
        expect(try await cli.admin("org suspend", "acme-brokers", "--as", "acme-brokers-admin"), 1, "self_action")
        expect(try await cli.admin("org suspend", "acme-brokers", "--as", "pete.pm", "--json"), 0)
        for args in [["user invite", "x1", "--org", "acme-brokers"], ["user suspend", "acme-brokers-north-admin"], ["org reactivate", "acme-brokers"],
                     ["grant", "acme-brokers-north-b1-agent1", "quote-manager"]] {
            let words = args[0].split(separator: " ").map(String.init)
            expect(try await cli.runAsync(words + ["--db", cli.db] + Array(args.dropFirst()) + ["--as", "acme-brokers-admin"]), 1, "org_inactive")
        }
        expect(try await cli.admin("org reactivate", "acme-brokers", "--as", "pete.pm"), 0)
        expect(try await cli.admin("user invite", "x1", "--org", "acme-brokers", "--as", "acme-brokers-admin"), 0)
        let audit = try await cli.admin("audit", "--partner", "acme-brokers", "--json")
        let rows = (audit.json as? [[String: Any]]) ?? []
        #expect(rows.filter { $0["reason"] as? String == "org_inactive" }.count == 4)
        #expect(rows.last?["decision"] as? String == "allowed" && rows.last?["operation"] as? String == "user.invite")
        #expect(try await cli.admin("audit", "--since", "1h").out.contains("pete.pm"))
        #expect(try await cli.admin("audit", "--since", "2000-01-01T00:00:00Z", "--refused", "--limit", "1").out.contains("refused org_inactive"))
    }

    @Test func applyOneBadOperationChangesNothing() async throws {
        let cli = try CLI()
        try await cli.demo()
        let before = try await cli.export()
        let rev = try await cli.rev()
        let file = try cli.write("ops.json", """
            [{"op": "org.register", "org": "initech", "admin": "bill", "as": "nina.hq"},
             {"op": "org.approve", "org": "initech", "entitle": ["partner-admin"], "as": "pete.pm"},
             {"op": "user.activate", "user": "bill", "as": "nina.hq"},
             {"op": "user.invite", "user": "peter", "org": "initech", "as": "bill"},
             {"op": "user.suspend", "user": "bill", "as": "bill"},
             {"op": "user.invite", "user": "milton", "org": "initech", "as": "bill"}]
            """)
        let r = try await cli.admin("apply", file, "--json")
        #expect(r.code == 1)
        #expect(r.object["committed"] as? Bool == false)
        let results = (r.object["results"] as? [[String: Any]]) ?? []
        #expect(results.map { $0["status"] as? String } == ["rolled_back", "rolled_back", "rolled_back", "rolled_back", "refused", "not_run"])
        #expect(results[4]["reason"] as? String == "self_action")
        #expect(try await cli.export() == before)
        #expect(try await cli.rev() == rev)
        // Without it, all of it in one go.
        let good = try cli.write("good.json", """
            [{"op": "org.register", "org": "initech", "admin": "bill", "as": "nina.hq"},
             {"op": "org.approve", "org": "initech", "entitle": ["partner-admin"], "as": "pete.pm"},
             {"op": "user.activate", "user": "bill", "as": "nina.hq"},
             {"op": "user.invite", "user": "peter", "org": "initech", "as": "bill"}]
            """)
        let ok = try await cli.admin("apply", good)
        #expect(ok.code == 0, "\(ok.out)\(ok.err)")
        #expect(ok.out.contains("applied 4 operations: revision \(rev) -> "))
        // A malformed file: exit 2, the JSON path named, nothing written.
        let bad = try await cli.admin("apply", try cli.write("bad.json", #"[{"op": "grant", "user": "peter"}]"#), "--as", "bill")
        #expect(bad.code == 2 && bad.err == "piamctl: operations[0].role: missing\n")
    }

    @Test func applyKilledMidwayLeavesTheDatabaseExactlyAsBefore() async throws {
        let cli = try CLI()
        try await cli.demo()
        // Many thousands of invitations by the business, in one transaction.
        var ops: [String] = []
        for i in 0..<40_000 {
            ops.append(#"{"op": "user.invite", "user": "bulk-\#(i)", "org": "acme-brokers-north-b1", "email": "bulk-\#(i)@acme.example"}"#)
        }
        let file = try cli.write("bulk.json", "[" + ops.joined(separator: ",\n") + "]")
        let before = try await cli.export()
        let rev = try await cli.rev()
        let auditRows = ((try await cli.admin("audit", "--json").json as? [Any]) ?? []).count
        // A raw read of the file: safe only because this process holds no SQLite connection to
        // it (every database access here is a piamctl process; see ReloadModel, "no file access
        // outside SQLite").
        let mainFile = try Data(contentsOf: URL(fileURLWithPath: cli.db))

        let run = try cli.spawn(["apply", "--db", cli.db, file, "--as", "nina.hq", "--progress"])
        // Wait until the transaction has begun writing (the first progress line, "apply: 1/40000
        // rows"), let it write for a while (thousands of rows), then kill it.
        try await waitFor(run, "/40000")
        let seen = run.err
        #expect(seen.contains("apply: 1/40000"), "\(seen)")
        try await Task.sleep(for: .milliseconds(300))
        kill(run.process.processIdentifier, SIGKILL)
        _ = try await run.result()
        let p = run.process
        #expect(p.terminationReason == .uncaughtSignal, "it finished before it could be killed: \(seen)")

        // The main file was never written; the database reads exactly as before.
        #expect(try Data(contentsOf: URL(fileURLWithPath: cli.db)) == mainFile)
        #expect(try await cli.export() == before)
        #expect(try await cli.rev() == rev)
        #expect(((try await cli.admin("audit", "--json").json as? [Any]) ?? []).count == auditRows)
        // And it is healthy: a write works.
        expect(try await cli.admin("user invite", "after-kill", "--org", "acme-brokers-north-b1", "--as", "nina.hq"), 0)
    }

    @Test func authorityRemovedWhileWaitingForTheWriteLockIsRefused() async throws {
        let cli = try CLI()
        try await cli.demo()
        let north = "acme-brokers-north-admin"
        let req = try await cli.admin("request create", "partner-admin", "--as", "acme-brokers-north-b1-agent1", "--json")
        let id = try #require(req.object["request_id"] as? Int)
        // A long bulk run by the business that ends by taking the region admin's authority away.
        var ops: [String] = []
        // Long enough for the two others to start waiting for the lock, short enough that they
        // get it within SQLite's busy timeout (5 s) on a loaded machine.
        for i in 0..<3_000 { ops.append(#"{"op": "user.invite", "user": "bulk-\#(i)", "org": "acme-brokers-south"}"#) }
        ops.append(#"{"op": "revoke", "user": "\#(north)", "role": "partner-admin"}"#)
        let file = try cli.write("bulk.json", "[" + ops.joined(separator: ",\n") + "]")
        let bulk = try cli.spawn(["apply", "--db", cli.db, file, "--as", "nina.hq", "--progress"])
        try await waitFor(bulk, "/3001")
        // Meanwhile the region admin invites and approves, both at once while the bulk run holds
        // the write lock: the pre-decision (on the committed graph) allows; the write waits for
        // the lock, then decides again and refuses.
        let runs = [
            try cli.spawn(["user", "invite", "--db", cli.db, "late", "--org", "acme-brokers-north-b1", "--as", north, "--json"]),
            try cli.spawn(["request", "approve", "--db", cli.db, String(id), "--as", north, "--json"]),
        ]
        let invite = try await runs[0].result(), approve = try await runs[1].result()
        let bulkResult = try await bulk.result()
        #expect(bulkResult.code == 0)
        for r in [invite, approve] {
            #expect(r.code == 1 && r.reason == "no_permission", "\(r.out) \(r.err)")
            #expect((r.object["message"] as? String)?.contains("pre-decision") == false)
        }
        #expect(try await cli.runAsync(["check", "--db", cli.db, "late", "view", "user:late"]).out == "deny unknown_subject\n")
        let mine = try await cli.admin("request list", "--mine", "--as", "acme-brokers-north-b1-agent1", "--json")
        #expect(((mine.object["requests"] as? [[String: Any]]) ?? []).first?["status"] as? String == "pending")
        // Afterwards, the pre-decision refuses at once, and says so.
        let again = try await cli.admin("user invite", "late", "--org", "acme-brokers-north-b1", "--as", north, "--json")
        #expect(again.code == 1 && (again.object["message"] as? String)?.hasSuffix("(pre-decision)") == true)
    }

    @Test func helpIsAManPage() async throws {
        let cli = try CLI()
        for words in ["org register", "org approve", "user invite", "user move", "grant", "org-grant", "request create", "audit", "apply", "role delete"] {
            let r = try await cli.runAsync(words.split(separator: " ").map(String.init) + ["--help"])
            #expect(r.code == 0, "\(words)")
            #expect(r.out.contains("OVERVIEW:") && r.out.contains("USAGE:") && r.out.contains("--db"), "\(words)")
        }
        #expect(try await cli.runAsync(["apply", "--help"]).out.contains("ONE transaction"))
        #expect(try await cli.runAsync(["org", "register", "--help"]).out.contains("EXAMPLES"))
        let root = try await cli.runAsync(["--help"]).out
        for c in ["org", "user", "role", "grant", "revoke", "org-grant", "org-revoke", "entitle", "request", "audit", "apply"] {
            #expect(root.contains("  \(c) "), "\(c) missing from piamctl --help")
        }
    }
}

/// Identity namespaces and SCIM tokens through the CLI.
@Suite("piamctl identity namespaces and SCIM tokens", .serialized)
struct NamespaceCLITests {
    /// The issue's hijack on the demo: the north admin attaching to its own agent an e-mail of
    /// the business (nina@northwind.example) and another partner's IdP subject — refused
    /// `outside_namespace` (exit 1), audited; inside its partner's namespaces it works; the
    /// business assigns any; an import reports the aliases that break the rule.
    @Test func theAliasHijackIsRefusedThroughTheCLI() async throws {
        let cli = try CLI()
        try await cli.demo()
        let north = "acme-brokers-north-admin", agent = "acme-brokers-north-b1-agent1"
        for alias in ["nina@northwind.example", "okta|bluesky-agency-newhire"] {
            let r = try await cli.admin("user alias add", agent, alias, "--as", north, "--json")
            #expect(r.code == 1 && r.reason == "outside_namespace", "\(r)")
            let audit = try await cli.admin("audit", "--refused", "--json")
            #expect(audit.code == 0 && audit.out.contains("outside_namespace") && audit.out.contains(alias), "\(audit.out.suffix(400))")
        }
        let add = try await cli.admin("namespace add", "acme-brokers", "okta-acme|", "--as", "pete.pm", "--json")
        #expect(add.code == 0, "\(add)")
        #expect(try await cli.admin("namespace add", "acme-brokers", "@acme-brokers.example", "--as", "pete.pm").code == 0)
        #expect(try await cli.admin("namespace add", "bluesky-agency", "okta-acme|x|", "--as", "pete.pm").code == 2, "overlapping another partner's")
        let list = try await cli.admin("namespace list", "--json")
        #expect(((list.object["namespaces"] as? [[String: Any]]) ?? []).map { $0["namespace"] as? String } == ["@acme-brokers.example", "okta-acme|"])
        let again = try await cli.admin("user alias add", agent, "nina@northwind.example", "--as", north)
        #expect(again.code == 1 && again.out.hasPrefix("refused outside_namespace:") && again.out.contains("okta-acme|"), "\(again)")
        #expect(try await cli.admin("user alias add", agent, "okta-acme|agent1", "--as", north).code == 0)
        #expect(try await cli.admin("user alias add", agent, "agent1@acme-brokers.example", "--as", north).code == 0)
        #expect(try await cli.admin("user alias add", agent, "agent1@partner-portal.example", "--as", "nina.hq").code == 0, "the business assigns any alias")
        // The demo's existing aliases of acme-brokers are outside the new namespaces: reported.
        let check = try await cli.admin("namespace check", "--json")
        let violations = (check.object["violations"] as? [[String: Any]]) ?? []
        #expect(check.code == (violations.isEmpty ? 0 : 1))
        #expect(violations.allSatisfy { $0["partner"] as? String == "acme-brokers" })
        #expect(violations.contains { $0["alias"] as? String == "agent1@partner-portal.example" })
        let file = cli.path("more.json")
        try #"{"users": [{"id": "imported-1", "org": "acme-brokers", "aliases": ["imported@elsewhere.example"]}]}"#.write(toFile: file, atomically: true, encoding: .utf8)
        let imported = try await cli.runAsync(["import", "--db", cli.db, file, "--json"])
        #expect(imported.code == 0, "\(imported)")
        let reported = (imported.object["namespace_violations"] as? [[String: Any]]) ?? []
        #expect(reported.contains { $0["user"] as? String == "imported-1" && $0["alias"] as? String == "imported@elsewhere.example" }, "\(imported.out.prefix(600))")
        let text = try await cli.runAsync(["import", "--db", cli.db, file])
        #expect(text.out.contains("outside their partner's identity namespaces") && text.out.contains("imported@elsewhere.example"), "\(text.out)")
    }

    @Test func scimTokensAreCreatedOnceListedAndRevoked() async throws {
        let cli = try CLI()
        try await cli.demo()
        let made = try await cli.admin("scim token create", "--partner", "acme-brokers", "--role", "partner-admin", "--expires", "30d", "--json")
        #expect(made.code == 0, "\(made)")
        let secret = try #require(made.object["secret"] as? String)
        #expect(secret.hasPrefix("piamscim_") && made.object["service_user"] as? String == "scim.acme-brokers")
        #expect(made.object["endpoint"] as? String == "/scim/v2/orgs/acme-brokers")
        #expect(try await cli.admin("scim token create", "--partner", "acme-brokers", "--role", "partner-admin").code == 0)
        let third = try await cli.admin("scim token create", "--partner", "acme-brokers", "--role", "partner-admin")
        #expect(third.code == 2 && third.err.contains("2 live SCIM tokens"), "\(third)")
        let list = try await cli.admin("scim token list", "--json")
        let tokens = (list.object["tokens"] as? [[String: Any]]) ?? []
        #expect(tokens.count == 2 && !list.out.contains(secret))
        let id = try #require(made.object["id"] as? Int)
        let revoked = try await cli.admin("scim token revoke", String(id), "--json")
        #expect(revoked.code == 0 && revoked.object["status"] as? String == "revoked", "\(revoked)")
        #expect(try await cli.admin("scim token create", "--partner", "acme-brokers", "--role", "partner-admin").code == 0, "rotation")
    }
}

import Foundation
import PIAMStore
import Testing

/// Runs the built `piamctl` binary (next to the test bundle in the build directory).
struct CLI {
    struct Result {
        var code: Int32
        var out: String
        var err: String
        var json: Any? { try? JSONSerialization.jsonObject(with: Data(out.utf8)) }
        var object: [String: Any] { (json as? [String: Any]) ?? [:] }
    }

    static let binary: String = {
        if let p = ProcessInfo.processInfo.environment["PIAMCTL"] { return p }
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        // The test binary lives in .build/<config>/ (or inside an .xctest bundle there).
        for candidate in [dir, dir.deletingLastPathComponent(), dir.deletingLastPathComponent().deletingLastPathComponent()] {
            let p = candidate.appendingPathComponent("piamctl").path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return dir.appendingPathComponent("piamctl").path
    }()

    let dir: URL
    var db: String { dir.appendingPathComponent("piam.db").path }

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("piamctl-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    @discardableResult
    func run(_ args: [String], env: [String: String] = [:], stdin: String? = nil) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = args
        var e = ProcessInfo.processInfo.environment
        e.removeValue(forKey: "PIAM_DB")
        for (k, v) in env { e[k] = v }
        p.environment = e
        let out = Pipe(), err = Pipe(), inp = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = inp
        try p.run()
        if let stdin { inp.fileHandleForWriting.write(Data(stdin.utf8)) }
        try inp.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let r = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(code: p.terminationStatus, out: String(decoding: o, as: UTF8.self), err: String(decoding: r, as: UTF8.self))
    }

    /// Runs a command against this test's database (`--db` goes after the subcommand path).
    @discardableResult
    func db(_ command: String, _ args: String...) throws -> Result {
        if command == "list", let sub = args.first {
            return try run(["list", sub, "--db", db] + args.dropFirst())
        }
        return try run([command, "--db", db] + args)
    }

    func write(_ name: String, _ text: String) throws -> String {
        let p = path(name)
        try text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }

    func revision() throws -> Int {
        (try db("status", "--json").object["revision"] as? Int) ?? -1
    }
}

let sampleGraph = """
    {
      "orgs": [
        {"id": "acme-north", "parent": "acme", "name": "Acme North", "kind": "partner"},
        {"id": "acme", "parent": "partners", "name": "Acme Brokers", "kind": "partner", "status": "active"},
        {"id": "globex", "parent": "partners", "name": "Globex", "kind": "partner"}
      ],
      "roles": [{"id": "claims-agent", "name": "Claims agent", "permissions": ["claim:read", "claim:submit", "claim:withdraw:owner"]}],
      "users": [
        {"id": "alice", "org": "acme", "name": "Alice", "email": "alice@acme.example", "aliases": ["idp|123"], "status": "active", "valid_until": "2099-06-30T00:00:00Z"},
        {"id": "ann", "org": "acme", "name": "Ann Admin"},
        {"id": "nick", "org": "acme-north", "name": "Nick"},
        {"id": "gina", "org": "globex", "name": "Gina"}
      ],
      "resources": [{"type": "claim", "id": "CLM-1", "org": "acme", "owner": "alice", "shared": false, "name": "Claim 1"}],
      "entitlements": [{"org": "partners", "role": "partner-user"}, {"org": "acme", "role": "claims-agent"}, {"org": "acme", "role": "partner-admin"}],
      "assignments": [
        {"user": "alice", "role": "claims-agent", "scope": "acme", "valid_until": null},
        {"user": "ann", "role": "partner-admin", "scope": "acme"}
      ],
      "org_grants": [{"org": "acme", "role": "partner-user", "include_suborgs": true, "valid_until": null}]
    }
    """

@Suite("piamctl end to end", .serialized)
struct PiamctlTests {
    @Test func initIsIdempotentAndPrintsTheRevision() throws {
        let cli = try CLI()
        let first = try cli.db("init", "--json")
        #expect(first.code == 0)
        #expect(first.object["created"] as? Bool == true)
        let rev = try #require(first.object["revision"] as? Int)
        #expect(rev > 0)
        let again = try cli.db("init", "--json")
        #expect(again.code == 0 && again.object["created"] as? Bool == false && again.object["revision"] as? Int == rev)
        let text = try cli.db("init")
        #expect(text.out.hasPrefix("migrated \(cli.db) (schema v\(Schema.latestVersion), revision \(rev))"), "\(text.out)")
    }

    @Test func importCheckExplainAndExitCodes() throws {
        let cli = try CLI()
        try cli.db("init")
        let file = try cli.write("graph.json", sampleGraph)
        let imp = try cli.db("import", file, "--json")
        #expect(imp.code == 0, "\(imp.err)")
        #expect(imp.object["changed"] as? Bool == true)
        // Importing the same file again changes nothing.
        let again = try cli.db("import", file, "--json")
        #expect(again.object["changed"] as? Bool == false && again.object["revision"] as? Int == imp.object["revision"] as? Int)

        let allow = try cli.db("check", "alice", "read", "claim:CLM-1")
        #expect(allow.code == 0 && allow.out == "allow\n")
        let deny = try cli.db("check", "gina", "read", "claim:CLM-1")
        #expect(deny.code == 1 && deny.out == "deny no_permission\n")
        let scoped = try cli.db("check", "ann", "view", "user:gina", "--json")
        #expect(scoped.code == 1)
        #expect(scoped.object["decision"] as? String == "deny" && scoped.object["reason"] as? String == "out_of_scope")
        #expect(scoped.object["revision"] as? Int == imp.object["revision"] as? Int)
        // Alias, properties, time travel.
        #expect(try cli.db("check", "idp|123", "withdraw", "claim:EXT-9", "--prop", "org=acme-north", "--prop", "owner=alice").code == 0)
        #expect(try cli.db("check", "alice", "withdraw", "claim:EXT-9", "--prop", "org=acme-north").out == "deny not_owner\n")
        #expect(try cli.db("check", "alice", "read", "claim:CLM-1", "--at", "2100-01-01T00:00:00Z").out == "deny subject_expired\n")
        // Errors: exit 2 and one line on stderr.
        let bad = try cli.db("check", "alice", "read", "CLM-1")
        #expect(bad.code == 2 && bad.err == "piamctl: resource \"CLM-1\" is not TYPE:ID\n")
        let badProp = try cli.db("check", "alice", "read", "claim:X", "--prop", "colour=red")
        #expect(badProp.code == 2 && badProp.err.hasPrefix("piamctl: --prop colour"))
        let noDB = try cli.run(["check", "--db", cli.path("missing.db"), "alice", "read", "claim:CLM-1"])
        #expect(noDB.code == 2 && noDB.err.contains("not a PIAM database (run piamctl init)"))
        #expect(noDB.err.split(separator: "\n").count == 1)
        let noDBJSON = try cli.run(["check", "--db", cli.path("missing.db"), "--json", "alice", "read", "claim:CLM-1"])
        #expect(((noDBJSON.object["error"] as? [String: Any])?["code"] as? String) == "schema")
        #expect(try cli.run(["check"]).code == 2)

        let explain = try cli.db("explain", "ann", "view", "user:gina", "--json")
        #expect(explain.code == 1)
        #expect(explain.object["reason"] as? String == "out_of_scope")
        let holdings = explain.object["holdings"] as? [[String: Any]] ?? []
        #expect(holdings.contains { $0["role"] as? String == "partner-admin" && $0["rule"] as? String == "out_of_reach" })
        let text = try cli.db("explain", "alice", "read", "claim:CLM-1")
        #expect(text.code == 0 && text.out.hasPrefix("allow allowed"))
        #expect(text.out.contains("claims-agent") && text.out.contains("claim:read"))
    }

    @Test func listsWhoCanCanAssignAndAccess() throws {
        let cli = try CLI()
        try cli.db("init")
        try cli.db("import", try cli.write("g.json", sampleGraph))
        #expect(try cli.db("who-can", "view", "user:nick").out == "alice\nann\nnick\n")
        let page = try cli.db("who-can", "view", "user:nick", "--limit", "2", "--json")
        #expect(page.object["items"] as? [String] == ["alice", "ann"])
        let cursor = try #require(page.object["next_cursor"] as? String)
        #expect(try cli.db("who-can", "view", "user:nick", "--limit", "2", "--cursor", cursor, "--json").object["items"] as? [String] == ["nick"])
        #expect(try cli.db("who-can", "view", "user:nick", "--cursor", "bogus").code == 2)
        #expect(try cli.db("list", "resources", "ann", "suspend", "user").out == "user:alice\nuser:nick\n")
        #expect(try cli.db("list", "actions", "alice", "claim:CLM-1").out == "read\nsubmit\nwithdraw\n")
        #expect(try cli.db("can-assign", "ann", "nick", "claims-agent").code == 1)  // ann lacks claim powers: escalation
        #expect(try cli.db("can-assign", "ann", "nick", "claims-agent").out == "deny escalation\n")
        #expect(try cli.db("can-assign", "ann", "nick", "partner-user").out == "allow\n")
        #expect(try cli.db("can-assign", "ann", "nick", "partner-admin", "--scope", "acme").out == "deny out_of_scope\n")
        let access = try cli.db("access", "idp|123", "--json")
        #expect(access.code == 0 && access.object["user"] as? String == "alice" && access.object["name"] as? String == "Alice")
        let eff = access.object["effective"] as? [[String: Any]] ?? []
        #expect(eff.contains { $0["permission"] as? String == "claim:withdraw:owner" && $0["scope"] as? String == "acme" })
        #expect(try cli.db("access", "ghost").code == 2)
        #expect(try cli.db("list", "orgs").out.contains("    acme-north"))
        #expect(try cli.db("list", "users", "--org", "acme", "--json").json as? [[String: Any]] != nil)
        #expect(try cli.db("list", "grants", "--org", "acme").out.contains("claims-agent"))
        #expect(try cli.db("list", "roles").out.contains("partner-admin"))
    }

    @Test func failedImportChangesNothingAndNamesThePath() throws {
        let cli = try CLI()
        try cli.db("init")
        try cli.db("import", try cli.write("g.json", sampleGraph))
        let before = try cli.revision()
        let exported = try cli.db("export").out
        let broken = sampleGraph.replacingOccurrences(of: #"{"id": "gina", "org": "globex", "name": "Gina"}"#,
                                                      with: #"{"id": "gina", "org": "acme-eu", "name": "Gina"}"#)
        let r = try cli.db("import", try cli.write("bad.json", broken))
        #expect(r.code == 2)
        #expect(r.err == "piamctl: users[3].org: no such org \"acme-eu\"\n")
        #expect(try cli.revision() == before)
        #expect(try cli.db("export").out == exported)
        let syntax = try cli.db("import", try cli.write("syntax.json", "{\"orgs\": [}"))
        #expect(syntax.code == 2 && syntax.err.split(separator: "\n").count == 1)
        let mode = try cli.db("import", "--mode", "upsert", try cli.write("x.json", "{}"))
        #expect(mode.code == 2 && mode.err.contains("--mode must be merge or replace"))
    }

    @Test func exportImportRoundTripIsIdentical() throws {
        let cli = try CLI()
        #expect(try cli.run(["demo", "--db", cli.db]).code == 0)
        let exported = try cli.db("export")
        #expect(exported.code == 0)
        let file = try cli.write("export.json", exported.out)
        let copy = cli.path("copy.db")
        #expect(try cli.run(["init", "--db", copy]).code == 0)
        let imp = try cli.run(["import", "--db", copy, "--mode", "replace", file])
        #expect(imp.code == 0, "\(imp.err)")
        #expect(try cli.run(["export", "--db", copy]).out == exported.out)
        // export to a file says where on stderr and writes the same bytes.
        let toFile = try cli.db("export", cli.path("e2.json"))
        #expect(toFile.code == 0 && toFile.err.hasPrefix("exported revision"))
        #expect(try String(contentsOfFile: cli.path("e2.json"), encoding: .utf8) == exported.out)
    }

    @Test func demoAndEnvironment() throws {
        let cli = try CLI()
        let r = try cli.run(["demo", "--json"], env: ["PIAM_DB": cli.db])
        #expect(r.code == 0, "\(r.err)")
        let counts = r.object["counts"] as? [String: Int] ?? [:]
        #expect((counts["orgs"] ?? 0) > 50 && (counts["users"] ?? 0) > 100 && (counts["org_grants"] ?? 0) > 10)
        // PIAM_DB is the default database of every command.
        let env = ["PIAM_DB": cli.db]
        #expect(try cli.run(["check", "acme-brokers-north-admin", "suspend", "user:acme-brokers-north-b1-agent1"], env: env).code == 0)
        #expect(try cli.run(["check", "acme-brokers-north-admin", "view", "user:bluesky-agency-admin"], env: env).out == "deny out_of_scope\n")
        #expect(try cli.run(["check", "granite-brokers-admin", "view", "org:granite-brokers"], env: env).out == "deny org_inactive\n")
        #expect(try cli.run(["check", "newleaf-agency-admin", "view", "org:newleaf-agency"], env: env).out == "deny subject_inactive\n")
        #expect(try cli.run(["check", "acme-brokers-north-admin", "read", "document:product-guide-2027"], env: env).code == 0)
        // The demo refuses to overwrite without --force.
        let again = try cli.run(["demo"], env: env)
        #expect(again.code == 2 && again.err.contains("exists (use --force"))
        #expect(try cli.run(["demo", "--force", "--orgs", "40", "--users", "500", "--resources", "200", "--json"], env: env).code == 0)
        let status = try cli.run(["status", "--json"], env: env).object
        #expect((status["counts"] as? [String: Int])?["users"] == 500)
        #expect(try cli.run(["demo", "--orgs", "5"], env: env).code == 2)
    }

    /// Issue 13's reproduction: a host department whose id sorts before `host` (the store loads
    /// it first), and a user whose `role:define` acts over that department only. Roles lie at
    /// the root, out of its reach.
    @Test func roleDefineOverADepartmentDoesNotReachTheRoles() throws {
        let cli = try CLI()
        try cli.db("init")
        let file = try cli.write("dept.json", """
            {"orgs": [{"id": "dept", "parent": "host", "kind": "host"}],
             "roles": [{"id": "role-definer", "permissions": ["role:define"]}],
             "users": [{"id": "ann", "org": "dept"}, {"id": "nina", "org": "host"}],
             "assignments": [{"user": "ann", "role": "role-definer", "scope": "dept"}, {"user": "nina", "role": "host-admin", "scope": "host"}]}
            """)
        #expect(try cli.db("import", file).code == 0)
        #expect(try cli.db("check", "ann", "define", "role:x").out == "deny out_of_scope\n")
        #expect(try cli.db("check", "nina", "define", "role:x").out == "allow\n")
        #expect(try cli.db("check", "nina", "grant", "role:partner-admin").out == "allow\n")
        #expect(try cli.db("list", "actions", "nina", "role:x").out == "define\ndelete\ngrant\nupdate\n")
    }

    @Test func helpAndVersion() throws {
        let cli = try CLI()
        let help = try cli.run(["--help"])
        #expect(help.code == 0 && help.out.contains("EXIT STATUS") && help.out.contains("who-can"))
        #expect(try cli.run(["check", "--help"]).out.contains("--prop"))
        #expect(try cli.run(["--version"]).code == 0)
    }
}

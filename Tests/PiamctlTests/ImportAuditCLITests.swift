import Foundation
import Testing

/// `piamctl import` leaves a trace: one audit row per run, written with the import.
@Suite("piamctl import is audited", .serialized)
struct ImportAuditCLITests {
    /// The OS user running the tests (and so piamctl).
    static var osUser: String {
        guard let pw = getpwuid(geteuid()), let name = pw.pointee.pw_name else { return "uid \(geteuid())" }
        return String(cString: name)
    }

    /// SHA-256 of a file, by coreutils (not by the code under test).
    func sha256(_ path: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        p.arguments = [path]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(String(decoding: data, as: UTF8.self).prefix(64))
    }

    func audit(_ cli: CLI) async throws -> [[String: Any]] {
        let r = try await cli.dbAsync("audit", "--json")
        #expect(r.code == 0, "\(r.err)")
        return (r.json as? [[String: Any]]) ?? []
    }

    @Test func anImportGrantingPartnerAdminLeavesOneAuditRow() async throws {
        let cli = try CLI()
        try await cli.dbAsync("init")
        let file = try cli.write("graph.json", sampleGraph)
        let before = try await cli.revisionAsync()
        let imp = try await cli.dbAsync("import", file, "--json")
        #expect(imp.code == 0, "\(imp.err)")
        let after = try await cli.revisionAsync()
        let rows = try await audit(cli)
        try #require(rows.count == 1, "one row per import: \(rows)")
        let row = rows[0]
        #expect(row["operation"] as? String == "import")
        #expect(row["actor"] as? String == Self.osUser)
        #expect(row["decision"] as? String == "allowed")
        #expect(row["revision"] as? Int == after)
        #expect((row["target"] as? String)?.contains("graph.json") == true, "\(row)")
        let detail = try #require(row["detail"] as? [String: Any], "\(row)")
        #expect(detail["mode"] as? String == "merge")
        #expect(detail["file"] as? String == file)
        #expect(detail["sha256"] as? String == (try sha256(file)))
        #expect(detail["bytes"] as? Int == sampleGraph.utf8.count)
        #expect(detail["revision_before"] as? Int == before)
        #expect(detail["revision_after"] as? Int == after)
        let rowCounts = try #require(detail["rows"] as? [String: [String: Int]], "\(detail)")
        #expect(rowCounts["assignments"]?["inserted"] == 2)
        #expect(rowCounts["users"]?["inserted"] == 4)
        #expect(rowCounts["org_grants"]?["inserted"] == 1)

        // Each run is audited, a run that changes nothing too; the mode is recorded.
        #expect(try await cli.dbAsync("import", file, "--mode", "merge").code == 0)
        let again = try await audit(cli)
        #expect(again.count == 2)
        let second = try #require(again.last?["detail"] as? [String: Any])
        #expect(second["revision_before"] as? Int == after && second["revision_after"] as? Int == after)
        #expect((second["rows"] as? [String: [String: Int]])?["assignments"]?["unchanged"] == 2)

        // Standard input has no file name: the row says so.
        #expect(try await cli.runAsync(["import", "--db", cli.db, "-"], stdin: sampleGraph).code == 0)
        let stdin = try #require(try await audit(cli).last)
        #expect((stdin["detail"] as? [String: Any])?["file"] as? String == "-")
        #expect((stdin["detail"] as? [String: Any])?["sha256"] as? String == (try sha256(file)))
    }

    @Test func aFailedImportChangesNothingAndIsAuditedAsFailed() async throws {
        let cli = try CLI()
        try await cli.dbAsync("init")
        try await cli.dbAsync("import", try cli.write("g.json", sampleGraph))
        let rev = try await cli.revisionAsync()
        let exported = try await cli.dbAsync("export").out
        let bad = sampleGraph.replacingOccurrences(of: #""org": "globex", "name": "Gina""#, with: #""org": "acme-eu", "name": "Gina""#)
        let file = try cli.write("bad.json", bad)
        let r = try await cli.dbAsync("import", file)
        #expect(r.code == 2 && r.err == "piamctl: users[3].org: no such org \"acme-eu\"\n")
        #expect(try await cli.revisionAsync() == rev)
        #expect(try await cli.dbAsync("export").out == exported)
        let rows = try await audit(cli)
        #expect(rows.count == 2)
        let failed = try #require(rows.last)
        #expect(failed["operation"] as? String == "import" && failed["decision"] as? String == "failed")
        #expect(failed["reason"] as? String == "not_found")
        #expect(failed["message"] as? String == "users[3].org: no such org \"acme-eu\"")
        #expect(failed["revision"] as? Int == rev)
        let detail = try #require(failed["detail"] as? [String: Any])
        #expect(detail["sha256"] as? String == (try sha256(file)) && detail["revision_before"] as? Int == rev)
        #expect(detail["rows"] == nil, "nothing was written")
    }
}

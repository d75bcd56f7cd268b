import Foundation
import Testing

@Suite struct JournalCLITests {
    @Test func journalCompactKeepsTheNewestRowsAndSaysWhatItRemoved() throws {
        let cli = try CLI()
        try cli.db("init")
        let file = try cli.write("g.json", sampleGraph)
        let imported = try cli.db("import", file, "--json")
        #expect(imported.code == 0 && imported.object["revision"] as? Int ?? 0 > 0, "import prints its revision with --json")
        let rev = try cli.revision()
        let rows = try cli.db("status", "--json").object["journal_rows"] as? Int ?? 0
        #expect(rows == rev)

        let text = try cli.run(["journal", "compact", "--db", cli.db, "--keep", "5"])
        #expect(text.code == 0)
        #expect(text.out.contains("removed \(rev - 5) journal rows (compacted through revision \(rev - 5)); kept 5 rows; revision \(rev)"), "\(text.out)")
        let again = try cli.run(["journal", "compact", "--db", cli.db, "--keep", "0", "--json"])
        #expect(again.code == 0)
        #expect(again.object["removed"] as? Int == 5)
        #expect(again.object["compacted_through"] as? Int == rev)
        #expect(again.object["kept"] as? Int == 0)
        #expect(again.object["revision"] as? Int == rev, "compaction does not change the revision")
        #expect(try cli.revision() == rev)
        let bad = try cli.run(["journal", "compact", "--db", cli.db, "--keep=-1"])
        #expect(bad.code == 2 && bad.err.contains("--keep"))

        // Every write still prints the revision it produced, text and JSON.
        let grant = try cli.run(["user", "suspend", "--db", cli.db, "nick", "--as", "ann"])
        #expect(grant.code == 0 && grant.out.contains("revision \(rev + 1)"), "\(grant.out)")
        let grantJSON = try cli.run(["user", "reactivate", "--db", cli.db, "nick", "--as", "ann", "--json"])
        #expect(grantJSON.object["revision"] as? Int == rev + 2)
    }
}

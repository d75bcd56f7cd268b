import Foundation
import PIAMEngine
import Testing
@testable import PIAMStore

@Suite struct JournalTests {
    @Test func everyWriteOfEveryGraphTableIsJournaled() throws {
        let dir = TempDir()
        let store = try freshStore(dir)
        let db = store.db
        var rev = try store.revision()
        func expectJournal(_ sql: String, _ expected: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
            try db.execute(sql)
            #expect(try journalRows(store, after: rev).sorted() == expected.sorted(), sourceLocation: sourceLocation)
            let now = try store.revision()
            #expect(now == rev + Int64(expected.count), sourceLocation: sourceLocation)
            rev = now
        }
        try expectJournal("INSERT INTO orgs(id, parent, name, kind) VALUES ('acme', 'partners', 'Acme', 'partner')", ["orgs acme insert"])
        try expectJournal("UPDATE orgs SET status = 'suspended' WHERE id = 'acme'", ["orgs acme update"])
        try expectJournal("INSERT INTO roles(id, permissions) VALUES ('r', '[\"claim:read\"]')", ["roles r insert"])
        try expectJournal("UPDATE roles SET name = 'R' WHERE id = 'r'", ["roles r update"])
        try expectJournal("INSERT INTO users(id, org) VALUES ('alice', 'acme'), ('bob', 'acme')", ["users alice insert", "users bob insert"])
        try expectJournal("UPDATE users SET email = 'a@x' WHERE id = 'alice'", ["users alice update"])
        try expectJournal("INSERT INTO user_aliases VALUES ('idp|1', 'alice')", ["user_aliases idp|1 insert"])
        try expectJournal("UPDATE user_aliases SET user = 'bob' WHERE alias = 'idp|1'", ["user_aliases idp|1 update"])
        try expectJournal("INSERT INTO resources(type, id, org, owner) VALUES ('claim', 'C1', 'acme', 'alice')", [#"resources ["claim","C1"] insert"#])
        try expectJournal("UPDATE resources SET shared = 0, name = 'n' WHERE id = 'C1'", [#"resources ["claim","C1"] update"#])
        try expectJournal("INSERT INTO entitlements VALUES ('acme', 'r')", [#"entitlements ["acme","r"] insert"#])
        try expectJournal("INSERT INTO assignments(user, role, scope) VALUES ('alice', 'r', 'acme')", [#"assignments ["alice","r","acme"] insert"#])
        try expectJournal("UPDATE assignments SET valid_until = 5", [#"assignments ["alice","r","acme"] update"#])
        try expectJournal("INSERT INTO org_grants(org, role) VALUES ('acme', 'r')", [#"org_grants ["acme","r"] insert"#])
        try expectJournal("UPDATE org_grants SET include_suborgs = 1", [#"org_grants ["acme","r"] update"#])
        // FK actions: ON DELETE SET NULL (resource owner) and CASCADE (aliases, assignments).
        try expectJournal("INSERT INTO user_aliases VALUES ('a2', 'alice')", ["user_aliases a2 insert"])
        try expectJournal("DELETE FROM users WHERE id = 'alice'", [
            "users alice delete",
            #"resources ["claim","C1"] update"#,
            #"assignments ["alice","r","acme"] delete"#,
            "user_aliases a2 delete",
        ].sorted())
        try expectJournal("DELETE FROM resources", [#"resources ["claim","C1"] delete"#])
        // Deleting a role cascades to entitlements and org grants.
        try expectJournal("DELETE FROM roles WHERE id = 'r'", [
            "roles r delete", #"entitlements ["acme","r"] delete"#, #"org_grants ["acme","r"] delete"#,
        ].sorted())
        try expectJournal("DELETE FROM user_aliases", ["user_aliases idp|1 delete"])
        try expectJournal("DELETE FROM users", ["users bob delete"])
        try expectJournal("DELETE FROM orgs WHERE id = 'acme'", ["orgs acme delete"])
        // meta is not journaled, and reads are not.
        try expectJournal("INSERT INTO meta VALUES ('k', 'v'); SELECT * FROM orgs;", [])
    }

    @Test func revisionIsTheLastSeqAndSurvivesCompaction() throws {
        let dir = TempDir()
        let store = try freshStore(dir)
        let rev = try store.revision()
        #expect(rev == (try store.db.scalarInt("SELECT max(seq) FROM journal")))
        #expect(try store.compactJournal(through: rev) == Int(rev))
        #expect(try store.journalCount() == 0)
        #expect(try store.revision() == rev)
        try store.db.execute("UPDATE orgs SET name = 'H' WHERE id = 'host'")
        #expect(try store.revision() == rev + 1)
        #expect(try store.journal(after: 0).map(\.seq) == [rev + 1])
    }
}

@Suite struct ConstraintTests {
    func rejects(_ sql: String, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let dir = TempDir()
        let store = try freshStore(dir)
        try store.db.execute("""
            INSERT INTO orgs(id, parent, name, kind) VALUES ('acme', 'partners', 'Acme', 'partner'), ('eu', 'acme', 'EU', 'partner'),
              ('dept', 'host', 'Dept', 'host'), ('team', 'dept', 'Team', 'host');
            INSERT INTO users(id, org) VALUES ('alice', 'acme'), ('bob', 'acme');
            INSERT INTO user_aliases VALUES ('idp|1', 'alice');
            """)
        let rev = try store.revision()
        let got = errorMessage { try store.db.execute(sql) }
        #expect(got == message, sourceLocation: sourceLocation)
        #expect(try store.revision() == rev, sourceLocation: sourceLocation)
    }

    @Test func secondRoot() throws {
        try rejects("INSERT INTO orgs(id, name, kind) VALUES ('h2', 'H2', 'host')",
                    "org tree: a second root org is not allowed (only the host root has no parent)")
        try rejects("UPDATE orgs SET parent = NULL WHERE id = 'partners'",
                    "org tree: a second root org is not allowed (only the host root has no parent)")
    }

    @Test func cycle() throws {
        try rejects("UPDATE orgs SET parent = 'eu' WHERE id = 'acme'",
                    "org tree: cycle (an org may not be moved below itself or one of its sub-orgs)")
        try rejects("UPDATE orgs SET parent = 'partners' WHERE id = 'host'",
                    "org tree: cycle (an org may not be moved below itself or one of its sub-orgs)")
        try rejects("UPDATE orgs SET parent = 'team' WHERE id = 'dept'",
                    "org tree: cycle (an org may not be moved below itself or one of its sub-orgs)")
        try rejects("UPDATE orgs SET parent = id WHERE id = 'eu'",
                    "org tree: cycle (an org may not be moved below itself or one of its sub-orgs)")
        try rejects("INSERT INTO orgs(id, parent, name, kind) VALUES ('self', 'self', 'x', 'partner')", "CHECK constraint failed: parent <> id")
    }

    @Test func hostBelowPartner() throws {
        try rejects("INSERT INTO orgs(id, parent, name, kind) VALUES ('h', 'acme', 'H', 'host')",
                    "org tree: a host org may not lie below a partner org")
        try rejects("UPDATE orgs SET kind = 'host' WHERE id = 'eu'", "org tree: a host org may not lie below a partner org")
        try rejects("UPDATE orgs SET parent = 'eu' WHERE id = 'dept'", "org tree: a host org may not lie below a partner org")
    }

    @Test func orgWithHostChildrenBecomingPartner() throws {
        try rejects("UPDATE orgs SET kind = 'partner' WHERE id = 'dept'",
                    "org tree: an org with host sub-orgs may not become a partner org")
        try rejects("UPDATE orgs SET kind = 'partner' WHERE id = 'host'",
                    "org tree: an org with host sub-orgs may not become a partner org")
        // A leaf host org may become a partner (below a host org).
        let dir = TempDir()
        let store = try freshStore(dir)
        try store.db.execute("UPDATE orgs SET kind = 'partner' WHERE id = 'partners'")
        #expect(try store.org(id: "partners")?.kind == .partner)
    }

    @Test func aliasAndUserIDNamespaces() throws {
        try rejects("INSERT INTO user_aliases VALUES ('bob', 'alice')", "user namespace: an alias may not equal a user id")
        try rejects("INSERT INTO user_aliases VALUES ('alice', 'alice')", "user namespace: an alias may not equal a user id")
        try rejects("INSERT INTO users(id, org) VALUES ('idp|1', 'acme')", "user namespace: a user id may not equal another user's alias")
        try rejects("INSERT INTO user_aliases VALUES ('idp|1', 'bob')", "UNIQUE constraint failed: user_aliases.alias")
    }

    @Test func idLengthAndImmutableIDs() throws {
        let long = String(repeating: "é", count: 128)  // 256 bytes
        try rejects("INSERT INTO users(id, org) VALUES ('\(long)', 'acme')", "CHECK constraint failed: length(CAST(id AS BLOB)) BETWEEN 1 AND 255")
        try rejects("INSERT INTO orgs(id, parent, name, kind) VALUES ('', 'acme', 'x', 'partner')",
                    "CHECK constraint failed: length(CAST(id AS BLOB)) BETWEEN 1 AND 255")
        try rejects("UPDATE users SET id = 'carol' WHERE id = 'bob'",
                    "users: the key columns (id) are immutable; delete and insert instead")
        try rejects("UPDATE orgs SET id = 'acme2' WHERE id = 'acme'",
                    "orgs: the key columns (id) are immutable; delete and insert instead")
        try rejects("UPDATE user_aliases SET alias = 'x' WHERE alias = 'idp|1'",
                    "user_aliases: the key columns (alias) are immutable; delete and insert instead")
        try rejects("INSERT INTO resources(type, id, org) VALUES ('org', 'x', 'acme')",
                    "CHECK constraint failed: length(CAST(type AS BLOB)) BETWEEN 1 AND 64 AND type NOT IN ('user', 'org', 'role')")
        try rejects("DELETE FROM orgs WHERE id = 'acme'", "FOREIGN KEY constraint failed")
    }
}

@Suite struct LoaderTests {
    @Test func loadedGraphCountsMatchTheTables() throws {
        let dir = TempDir()
        let store = try freshStore(dir)
        _ = try store.importJSON(Data(canonicalFixture.utf8))
        let loaded = try store.loadGraph()
        #expect(loaded.revision == (try store.revision()))
        let c = loaded.graph.counts
        let rows = Dictionary(uniqueKeysWithValues: try store.tableCounts().map { ($0.table, $0.rows) })
        #expect(c.orgs == 4 && c.orgs == rows["orgs"])
        #expect(c.users == 3 && c.users == rows["users"])
        #expect(c.aliases == 2 && c.aliases == rows["user_aliases"])
        #expect(c.roles == 4 && c.roles == rows["roles"])
        #expect(c.resources == 2 && c.resources == rows["resources"])
        #expect(c.entitlements == 2 && c.entitlements == rows["entitlements"])
        #expect(c.assignments == 3 && c.assignments == rows["assignments"])
        #expect(c.orgGrants == 1 && c.orgGrants == rows["org_grants"])
    }

    @Test func readOnlyStoreLoads() throws {
        let dir = TempDir()
        _ = try freshStore(dir)
        let ro = try Store(path: dir.path("piam.db"), readOnly: true)
        #expect(try ro.loadGraph().graph.counts.orgs == 2)
        #expect(errorMessage { try ro.db.execute("DELETE FROM journal") } == "attempt to write a readonly database")
    }
}

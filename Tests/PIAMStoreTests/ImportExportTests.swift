import Foundation
import PIAMEngine
import Testing
@testable import PIAMStore

@Suite struct ImportExportTests {
    func importText(_ store: Store, _ json: String, mode: ImportMode = .merge) throws -> ImportResult {
        try store.importJSON(Data(json.utf8), mode: mode)
    }

    @Test func canonicalFileRoundTripsByteForByte() throws {
        let dir = TempDir()
        let store = try freshStore(dir)
        let result = try importText(store, canonicalFixture)
        #expect(result["orgs"].inserted == 2)
        #expect(result["orgs"].unchanged == 2)
        #expect(result["users"].inserted == 3)
        #expect(result["user_aliases"].inserted == 2)
        #expect(result["assignments"].inserted == 3)
        let out = String(decoding: try store.exportData(), as: UTF8.self)
        #expect(out == canonicalFixture)

        // export -> replace-import into a fresh DB -> export: identical.
        let path = dir.path("export.json")
        try store.export(toFile: path)
        let other = try freshStore(dir, "other.db")
        _ = try other.importFile(path: path, mode: .replace)
        #expect(try other.exportData() == (try store.exportData()))
    }

    @Test("an import leaves no WAL behind: a reader opening the file later need not rebuild the WAL index from it")
    func importCheckpointsTheWAL() throws {
        let dir = TempDir()
        let store = try freshStore(dir)
        // A reader holding the file open, as piamd does (between its reads).
        let reader = try Store(path: dir.path("piam.db"), readOnly: true)
        _ = try reader.revision()
        _ = try importText(store, canonicalFixture)
        // (busy, frames in the WAL, frames checkpointed): an emptied WAL has none.
        let frames = try store.db.prepare("PRAGMA wal_checkpoint(PASSIVE)").rows { $0.int64(1) }
        #expect(frames == [0], "the import left \(frames) frames in the WAL")
        #expect(try reader.revision() == (try store.revision()))
    }

    @Test func importingTheSameFileTwiceChangesNothing() throws {
        let dir = TempDir()
        let store = try freshStore(dir)
        let first = try importText(store, canonicalFixture)
        #expect(first.changed)
        let rev = try store.revision()
        #expect(first.revision == rev)
        let second = try importText(store, canonicalFixture)
        #expect(!second.changed)
        #expect(second.revision == rev)
        #expect(try store.revision() == rev)
        #expect(second["users"].unchanged == 3)
        #expect(second["user_aliases"].unchanged == 2)
        let third = try importText(store, canonicalFixture, mode: .replace)
        #expect(!third.changed)
        #expect(try store.revision() == rev)
    }

    @Test func mergeUpdatesOnlyWhatDiffersAndNeverDeletes() throws {
        let dir = TempDir()
        let store = try freshStore(dir)
        _ = try importText(store, canonicalFixture)
        let rev = try store.revision()
        let r = try importText(store, """
            {"users": [{"id": "alice", "org": "acme", "name": "Alice B", "email": "alice@acme.example",
                        "aliases": ["idp|123", "new-alias"], "valid_until": "2027-06-30T00:00:00Z"}],
             "orgs": [{"id": "acme-new", "parent": "acme"}]}
            """)
        #expect(r["users"].updated == 1)
        #expect(r["user_aliases"].inserted == 1 && r["user_aliases"].deleted == 1 && r["user_aliases"].unchanged == 1)
        #expect(r["orgs"].inserted == 1)
        #expect(try journalRows(store, after: rev) == [
            "user_aliases alice@idp delete", "orgs acme-new insert", "users alice update", "user_aliases new-alias insert",
        ])
        #expect(try store.user(idOrAlias: "new-alias")?.aliases == ["idp|123", "new-alias"])
        #expect(try store.org(id: "acme-new")?.kind == .partner)
        #expect(try store.org(id: "acme-new")?.name == "acme-new")
        #expect(try store.listUsers().count == 3)  // merge never deletes
        // Leaving aliases out keeps them.
        _ = try importText(store, #"{"users": [{"id": "alice", "org": "acme", "name": "Alice B", "email": "alice@acme.example", "valid_until": "2027-06-30T00:00:00Z"}]}"#)
        #expect(try store.user(idOrAlias: "alice")?.aliases == ["idp|123", "new-alias"])
    }

    @Test func replaceDeletesWhatTheFileLacks() throws {
        let dir = TempDir()
        let store = try freshStore(dir)
        _ = try importText(store, canonicalFixture)
        let rev = try store.revision()
        let r = try importText(store, """
            {"orgs": [{"id": "host", "name": "Host", "kind": "host"}, {"id": "partners", "parent": "host", "name": "Partners", "kind": "host"},
                      {"id": "acme", "parent": "partners", "name": "Acme Brokers"}],
             "roles": [{"id": "partner-user", "name": "Partner user", "description": "Sees its organization and colleagues, may request roles for itself",
                        "permissions": ["org:view", "user:view", "user:request_role:owner"]}],
             "users": [{"id": "alice", "org": "acme", "name": "Alice", "email": "alice@acme.example", "valid_until": "2027-06-30T00:00:00Z"}]}
            """, mode: .replace)
        #expect(r["orgs"].deleted == 1)
        #expect(r["users"].deleted == 2)
        #expect(r["roles"].deleted == 3)
        #expect(r["user_aliases"].deleted == 2)
        #expect(r["assignments"].deleted == 3)
        #expect(r["resources"].deleted == 2)
        #expect(r["entitlements"].deleted == 2)
        #expect(r["org_grants"].deleted == 1)
        #expect(try store.tableCounts().map(\.rows) == [3, 1, 1, 0, 0, 0, 0, 0])
        let journal = try journalRows(store, after: rev)
        #expect(journal.contains("orgs acme-eu delete"))
        #expect(journal.filter { $0.hasSuffix("delete") }.count == 16)
        #expect(errorMessage { _ = try importText(store, #"{"orgs": [{"id": "root2", "kind": "host"}]}"#, mode: .replace) }
            == #"orgs[0].parent: org "root2" would be a second root (the root org is "host" and its id cannot change)"#)
        #expect(errorMessage { _ = try importText(store, #"{"users": []}"#, mode: .replace) }
            == #"orgs: replace would delete the root org "host"; the file must contain it"#)
    }

    @Test func orgsMayAppearInAnyOrder() throws {
        let dir = TempDir()
        let store = try freshStore(dir)
        _ = try importText(store, """
            {"orgs": [{"id": "c", "parent": "b"}, {"id": "b", "parent": "a"}, {"id": "a", "parent": "partners"},
                      {"id": "h2", "parent": "host", "kind": "host"}]}
            """)
        #expect(try store.org(id: "c")?.parent == "b")
        // Moving orgs around in one file, in an order that is only valid as a whole.
        _ = try importText(store, #"{"orgs": [{"id": "a", "parent": "c"}, {"id": "c", "parent": "partners"}, {"id": "b", "parent": "c"}]}"#)
        #expect(try store.org(id: "a")?.parent == "c")
    }

    @Test func failedImportChangesNothingAndNamesThePath() throws {
        let dir = TempDir()
        let store = try freshStore(dir)
        _ = try importText(store, canonicalFixture)
        let rev = try store.revision()
        let before = try store.exportData()
        // Many valid rows, then one bad row last.
        var users = (0..<2000).map { #"{"id": "u\#($0)", "org": "acme"}"# }
        users.append(#"{"id": "bad", "org": "acme-xx"}"#)
        let msg = errorMessage { _ = try importText(store, #"{"users": [\#(users.joined(separator: ","))]}"#) }
        #expect(msg == #"users[2000].org: no such org "acme-xx""#)
        #expect(try store.revision() == rev)
        #expect(try store.exportData() == before)

        // A residual SQL failure in the last row (validation cannot see a trigger we add here).
        try store.db.execute("CREATE TEMP TRIGGER t_fail BEFORE INSERT ON main.users WHEN NEW.id = 'last' BEGIN SELECT RAISE(ABORT, 'nope'); END;")
        users.removeLast()
        users.append(#"{"id": "last", "org": "acme"}"#)
        let msg2 = errorMessage { _ = try importText(store, #"{"users": [\#(users.joined(separator: ","))]}"#) }
        #expect(msg2 == "users[2000]: nope")
        #expect(try store.revision() == rev)
        #expect(try store.exportData() == before)
        #expect(try store.listUsers().count == 3)
    }

    @Test(arguments: [
        (#"{"users": [{"id": "x", "org": "acme-eu2"}]}"#, #"users[0].org: no such org "acme-eu2""#),
        (#"{"roles": [{"id": "r", "permissions": ["claim:read", "claim"]}]}"#,
         #"roles[0].permissions[1]: permission "claim" is not TYPE:ACTION or TYPE:ACTION:owner"#),
        (#"{"orgs": [{"id": "a", "parent": "b"}, {"id": "b", "parent": "c"}, {"id": "c", "parent": "a"}]}"#,
         #"orgs[0].parent: cycle: "a" -> "b" -> "c" -> "a""#),
        (#"{"orgs": [{"id": "acme", "parent": "acme-eu"}]}"#, #"orgs[0].parent: cycle: "acme" -> "acme-eu" -> "acme""#),
        (#"{"users": [{"id": "y", "org": "acme", "aliases": ["alice"]}]}"#,
         #"users[0].aliases[0]: alias "alice" is already the id of user "alice""#),
        (#"{"users": [{"id": "y", "org": "acme", "aliases": ["idp|123"]}]}"#,
         #"users[0].aliases[0]: alias "idp|123" is already an alias of user "alice""#),
        (#"{"users": [{"id": "idp|123", "org": "acme"}]}"#, #"users[0].id: user id "idp|123" is already an alias of user "alice""#),
        (#"{"users": [{"id": "bob2", "org": "acme"}, {"id": "x", "org": "acme"}, {"id": "bob2", "org": "acme"}]}"#,
         #"users[2].id: duplicate user "bob2" (also users[0])"#),
        (#"{"users": [{"id": "x", "org": "acme", "status": "gone"}]}"#, #"users[0].status: "gone" is not invited, active or suspended"#),
        (#"{"orgs": [{"id": "x", "parent": "acme", "kind": "vendor"}]}"#, #"orgs[0].kind: "vendor" is not host or partner"#),
        (#"{"users": [{"id": "x", "org": "acme", "valid_until": "tomorrow"}]}"#,
         #"users[0].valid_until: "tomorrow" is not an RFC 3339 time (e.g. 2027-06-30T00:00:00Z)"#),
        (#"{"users": [{"id": "x", "org": "acme", "valid_until": 17}]}"#, #"users[0].valid_until: expected a string"#),
        (#"{"users": [{"id": "x", "org": "acme", "nickname": "xx"}]}"#, #"users[0].nickname: unknown key "nickname""#),
        (#"{"users": [{"id": "x"}]}"#, #"users[0].org: missing (required)"#),
        (#"{"people": []}"#, #"people: unknown key "people""#),
        ("{\"users\": [{\"id\": \"\(String(repeating: "x", count: 256))\", \"org\": \"acme\"}]}",
         #"users[0].id: id must be 1-255 bytes of UTF-8, got 256 bytes"#),
        (#"{"resources": [{"type": "user", "id": "x", "org": "acme"}]}"#,
         #"resources[0].type: "user" is a built-in type (users, orgs and roles are resources implicitly)"#),
        (#"{"resources": [{"type": "claim", "id": "x", "org": "acme", "owner": "nobody"}]}"#, #"resources[0].owner: no such user "nobody""#),
        (#"{"orgs": [{"id": "h", "parent": "acme", "kind": "host"}]}"#, #"orgs[0].parent: host org "h" may not lie below partner org "acme""#),
        (#"{"orgs": [{"id": "partners", "parent": "host", "kind": "partner"}]}"#,
         #"orgs[0].kind: partner org "partners" may not have host sub-org "h1""#),
        (#"{"orgs": [{"id": "root2", "kind": "host"}]}"#,
         #"orgs[0].parent: org "root2" would be a second root (the root org is "host" and its id cannot change)"#),
        (#"{"assignments": [{"user": "alice", "role": "partner-admin"}]}"#,
         #"assignments[0]: duplicate assignment (user "alice", role "partner-admin", scope "acme") (also assignments[0])"#),
        (#"{"assignments": [{"user": "alice", "role": "nope"}]}"#, #"assignments[0].role: no such role "nope""#),
        (#"{"org_grants": [{"org": "acme", "role": "partner-user", "include_suborgs": "yes"}]}"#,
         #"org_grants[0].include_suborgs: expected true or false"#),
    ])
    func validationErrors(json: String, expected: String) throws {
        let dir = TempDir()
        let store = try freshStore(dir)
        _ = try importText(store, canonicalFixture)
        _ = try importText(store, #"{"orgs": [{"id": "h1", "parent": "partners", "kind": "host"}]}"#)
        let rev = try store.revision()
        var doc = json
        if expected.hasPrefix("assignments[0]: duplicate") {
            doc = #"{"assignments": [{"user": "alice", "role": "partner-admin"}, {"user": "alice", "role": "partner-admin", "scope": "acme"}]}"#
            #expect(errorMessage { _ = try importText(store, doc) }
                == #"assignments[1]: duplicate assignment (user "alice", role "partner-admin", scope "acme") (also assignments[0])"#)
        } else {
            #expect(errorMessage { _ = try importText(store, doc) } == expected)
        }
        #expect(try store.revision() == rev)
    }

    @Test func invalidJSONSyntaxIsAnError() throws {
        let dir = TempDir()
        let store = try freshStore(dir)
        let msg = errorMessage { _ = try importText(store, #"{"users": [}"#) }
        #expect(msg?.hasPrefix("invalid JSON: ") == true, "\(msg ?? "")")
        #expect(try store.revision() == 5)
    }

    @Test func progressIsReported() throws {
        let dir = TempDir()
        let store = try freshStore(dir)
        let users = (0..<1000).map { #"{"id": "u\#($0)", "org": "partners"}"# }.joined(separator: ",")
        final class Box: @unchecked Sendable { var calls: [(Int, Int)] = [] }
        let box = Box()
        _ = try store.importJSON(Data(#"{"users": [\#(users)]}"#.utf8)) { box.calls.append(($0, $1)) }
        #expect(box.calls.count >= 90 && box.calls.count <= 101)
        #expect(box.calls.last! == (1000, 1000))
    }
}

import Foundation
import PIAMEngine
import Testing
@testable import PIAMStore

/// Import errors: a `granted_by` must name a user, and no error message echoes more than about
/// 100 bytes of the value it complains about, however long the value.
@Suite struct ImportErrorTests {
    static let base = """
        {
          "orgs": [{"id": "acme", "parent": "partners", "kind": "partner"}],
          "roles": [{"id": "agent", "permissions": ["claim:read"]}],
          "users": [
            {"id": "ann", "org": "acme"},
            {"id": "bob", "org": "acme", "aliases": ["idp|bob"]}
          ],
          "entitlements": [{"org": "acme", "role": "agent"}, {"org": "acme", "role": "partner-admin"}],
          "assignments": [
            {"user": "ann", "role": "partner-admin", "scope": "acme"},
            {"user": "bob", "role": "agent", "granted_by": "ann"}
          ],
          "org_grants": [{"org": "acme", "role": "agent", "granted_by": "ann"}]
        }
        """

    func failure(_ store: Store, _ json: String) -> PIAMError? {
        do {
            _ = try store.importJSON(Data(json.utf8))
            return nil
        } catch {
            return error
        }
    }

    @Test func grantedByMustNameAUserOfTheFileOrTheDatabase() throws {
        let dir = TempDir()
        let store = try freshStore(dir)
        let rev = try store.revision()
        let ghost = Self.base.replacingOccurrences(of: #"{"user": "bob", "role": "agent", "granted_by": "ann"}"#,
                                                    with: #"{"user": "bob", "role": "agent", "granted_by": "x"}"#)
        let e = try #require(failure(store, ghost))
        #expect(e.message == #"assignments[1].granted_by: no such user "x""#)
        #expect(e.code == .notFound)
        let grant = Self.base.replacingOccurrences(of: #"{"org": "acme", "role": "agent", "granted_by": "ann"}"#,
                                                    with: #"{"org": "acme", "role": "agent", "granted_by": "nobody"}"#)
        #expect(failure(store, grant)?.message == #"org_grants[0].granted_by: no such user "nobody""#)
        // An alias names a user, but granted_by records user ids.
        let alias = Self.base.replacingOccurrences(of: #""granted_by": "ann"}]"#, with: #""granted_by": "idp|bob"}]"#)
        #expect(failure(store, alias)?.message == #"org_grants[0].granted_by: "idp|bob" is an alias of user "bob"; name the user by its id"#)
        #expect(try store.revision() == rev, "nothing was written")

        // A user of the file, then a user of the database.
        _ = try store.importJSON(Data(Self.base.utf8))
        let later = #"{"assignments": [{"user": "ann", "role": "agent", "granted_by": "bob"}]}"#
        #expect(try store.importJSON(Data(later.utf8)).changed)
    }

    @Test func aGranterRemovedSinceStillReimports() throws {
        // granted_by is history: removing the granter keeps it. Importing the database's own
        // export again (the value unchanged) is no error.
        let dir = TempDir()
        let store = try freshStore(dir)
        _ = try store.importJSON(Data(Self.base.utf8))
        try store.db.execute("DELETE FROM assignments WHERE user = 'ann'; DELETE FROM users WHERE id = 'ann'")
        let exported = try store.exportData()
        let again = try store.importJSON(exported)
        #expect(!again.changed)
        // But a new grant naming the removed user is refused.
        let new = #"{"assignments": [{"user": "bob", "role": "partner-admin", "scope": "acme", "granted_by": "ann"}]}"#
        #expect(failure(store, new)?.message == #"assignments[0].granted_by: no such user "ann""#)
    }

    /// The value at `placeholder` in `template` replaced by `value`, imported: the error message.
    func message(_ template: String, _ value: String, _ store: Store) throws -> String {
        var escaped = ""
        for c in value.unicodeScalars { escaped += c == "\"" ? "\\\"" : c == "\\" ? "\\\\" : String(c) }
        let json = template.replacingOccurrences(of: "VALUE", with: escaped)
        return try #require(failure(store, json)?.message, "\(template) must fail")
    }

    static let templates: [String] = [
        #"{"users": [{"id": "u", "org": "VALUE"}]}"#,
        #"{"orgs": [{"id": "o", "parent": "partners", "kind": "VALUE"}]}"#,
        #"{"orgs": [{"id": "o", "parent": "partners", "status": "VALUE"}]}"#,
        #"{"orgs": [{"id": "o", "parent": "VALUE"}]}"#,
        #"{"users": [{"id": "u", "org": "host", "status": "VALUE"}]}"#,
        #"{"users": [{"id": "u", "org": "host", "valid_until": "VALUE"}]}"#,
        #"{"roles": [{"id": "r", "permissions": ["VALUE"]}]}"#,
        #"{"roles": [{"id": "r", "permissions": ["claim:VALUE"]}]}"#,
        #"{"resources": [{"type": "VALUE", "id": "x", "org": "host"}]}"#,
        #"{"resources": [{"type": "claim", "id": "x", "org": "host", "owner": "VALUE"}]}"#,
        #"{"entitlements": [{"org": "host", "role": "VALUE"}]}"#,
        #"{"assignments": [{"user": "VALUE", "role": "host-admin"}]}"#,
        #"{"assignments": [{"user": "root", "role": "host-admin", "granted_by": "VALUE"}]}"#,
        #"{"org_grants": [{"org": "host", "role": "host-admin", "valid_until": "VALUE"}]}"#,
        #"{"org_grants": [{"org": "host", "role": "host-admin", "granted_by": "VALUE"}]}"#,
        #"{"users": [{"id": "u", "org": "host", "VALUE": 1}]}"#,
    ]

    @Test(arguments: templates)
    func aHugeValueIsQuotedInAboutAHundredBytes(_ template: String) throws {
        let dir = TempDir()
        let store = try freshStore(dir)
        _ = try store.importJSON(Data(#"{"users": [{"id": "root", "org": "host"}]}"#.utf8))
        // 10 MB for the first (the reported case: a 20 MB error line), 1 MB for the others.
        let size = template == Self.templates[0] ? 10 << 20 : 1 << 20
        let m = try message(template, String(repeating: "x", count: size), store)
        #expect(m.utf8.count < 400, "\(m.prefix(500))")
        if m.contains("xxxxxxxxxx") {
            // Quoted: a prefix, an ellipsis and the whole value's length.
            #expect(m.contains(String(repeating: "x", count: 90) + "…\" (\(size / 1000)") && m.contains(" bytes)"), "\(m)")
        } else {
            #expect(m.contains("\(size) bytes"), "not quoted, but measured: \(m)")
        }
    }

    @Test func truncationKeepsUTF8CharactersWhole() throws {
        let dir = TempDir()
        let store = try freshStore(dir)
        for pad in 0..<4 {
            // 4-byte characters starting at every offset around the cut.
            let value = String(repeating: "a", count: pad) + String(repeating: "🙂", count: 60)
            let m = try message(#"{"users": [{"id": "u", "org": "VALUE"}]}"#, value, store)
            #expect(!m.contains("\u{FFFD}"), "\(m)")
            #expect(m.contains("…\" (\(value.utf8.count) bytes)"), "\(m)")
            #expect(m.utf8.count < 200)
        }
        // A short value is quoted whole, as before.
        #expect(try message(#"{"users": [{"id": "u", "org": "VALUE"}]}"#, "acme-eu", store) == #"users[0].org: no such org "acme-eu""#)
    }
}

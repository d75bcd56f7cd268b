import Foundation
import PIAMEngine
import Testing
@testable import PIAMStore

@Suite struct InitAndSchemaTests {
    @Test func initSeedsRootPartnersAndDefaultRoles() throws {
        let dir = TempDir()
        let store = try freshStore(dir)
        #expect(try store.schemaVersion == Schema.latestVersion)
        let orgs = try store.listOrgs()
        #expect(orgs.map(\.id) == ["host", "partners"])
        #expect(orgs[0].parent == nil && orgs[0].kind == .host)
        #expect(orgs[1].parent == "host" && orgs[1].kind == .host && orgs[1].name == "Partners")
        let roles = try store.listRoles()
        #expect(roles.map(\.id) == ["host-admin", "partner-admin", "partner-user"])
        #expect(try store.role(id: "partner-user")?.permissions == ["org:view", "user:view", "user:request_role:owner"])
        #expect(try store.role(id: "partner-admin")?.permissions == Seed.partnerAdmin.permissions)
        #expect(Seed.partnerAdmin.permissions.count == 14)
        #expect(try store.meta("created_at") == "2023-11-14T22:13:20Z")
        #expect(try store.revision() == 5)  // 2 orgs + 3 roles journaled
    }

    @Test func initTwiceIsANoOp() throws {
        let dir = TempDir()
        let first = try freshStore(dir)
        let rev = try first.revision()
        let again = try Store.initialize(path: dir.path("piam.db"))
        #expect(try again.revision() == rev)
        #expect(try again.journalCount() == Int(rev))
        #expect(try again.meta("created_at") == "2023-11-14T22:13:20Z")
    }

    @Test func migrationSetsUserVersionAndFutureVersionIsRefused() throws {
        let dir = TempDir()
        let path = dir.path("x.db")
        do {
            let raw = try Database(path: path, create: true)
            #expect(try raw.scalarInt("PRAGMA user_version") == 0)
        }
        _ = try Store.initialize(path: path)
        do {
            let raw = try Database(path: path)
            #expect(try raw.scalarInt("PRAGMA user_version") == Int64(Schema.latestVersion))
            try raw.execute("PRAGMA user_version = \(Schema.latestVersion + 1)")
        }
        let e1 = errorMessage { _ = try Store(path: path) }
        #expect(e1?.contains("newer than this program knows") == true)
        let e2 = errorMessage { _ = try Store.initialize(path: path) }
        #expect(e2?.contains("newer than this program knows") == true)
        do {
            _ = try Store(path: path, readOnly: true)
            Issue.record("expected an error")
        } catch {
            let e = error
            #expect(e.code == .schema)
        }
    }

    @Test func notAPIAMDatabase() throws {
        let dir = TempDir()
        let missing = dir.path("missing.db")
        #expect(errorMessage { _ = try Store(path: missing, readOnly: true) } == "\(missing): not a PIAM database (run piamctl init)")
        #expect(!FileManager.default.fileExists(atPath: missing))
        let empty = dir.path("empty.db")
        _ = try Database(path: empty, create: true)
        #expect(errorMessage { _ = try Store(path: empty) } == "\(empty): not a PIAM database (run piamctl init)")
        let other = dir.path("other.db")
        try Database(path: other, create: true).execute("CREATE TABLE t(x)")
        #expect(errorMessage { _ = try Store.initialize(path: other) }?.contains("refusing") == true)
    }

    @Test func rfc3339() {
        #expect(RFC3339.parse("2027-06-30T00:00:00Z") == 1_814_313_600_000)
        #expect(RFC3339.parse("1970-01-01T00:00:00Z") == 0)
        #expect(RFC3339.parse("1970-01-01T01:00:00+01:00") == 0)
        #expect(RFC3339.parse("1969-12-31T19:00:00.5-05:00") == 500)
        #expect(RFC3339.parse("2024-02-29t12:00:00.123456z") == 1_709_208_000_123)
        #expect(RFC3339.parse("2023-02-29T00:00:00Z") == nil)
        #expect(RFC3339.parse("2023-01-01 00:00:00Z") == nil)
        #expect(RFC3339.parse("2023-01-01T00:00:00") == nil)
        #expect(RFC3339.parse("2023-01-01T24:00:00Z") == nil)
        #expect(RFC3339.parse("2023-01-01T00:00:00.Z") == nil)
        #expect(RFC3339.format(1_814_313_600_000) == "2027-06-30T00:00:00Z")
        #expect(RFC3339.format(1_709_208_000_123) == "2024-02-29T12:00:00.123Z")
        #expect(RFC3339.format(-1) == "1969-12-31T23:59:59.999Z")
        for t: Timestamp in [0, 1, 999, 86_399_999, 951_782_400_000, 4_102_444_800_007, -86_400_000] {
            #expect(RFC3339.parse(RFC3339.format(t)) == t)
        }
    }
}

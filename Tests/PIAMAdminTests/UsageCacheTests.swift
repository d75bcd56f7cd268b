import Foundation
import PIAMAdmin
import PIAMEngine
import PIAMStore
import Testing

/// piam-admind's one merge of piamd's usage files: made once, shared, made again only when the
/// files changed and the merge is old enough.
@Suite("the usage files' cache (piam-admind)")
struct UsageCacheTests {
    func directory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("piam-usage-cache-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    func record(_ db: UsageDatabase, user: String, partner: String, at now: Timestamp) throws {
        try db.record(UsageBatch(features: [.init(user: user, partner: partner, type: "claim", action: "read", allowed: 1, denied: 0,
                                                  firstAllowed: now, lastAllowed: now)]), now: now)
    }

    func partners(_ cache: UsageCache, now: Timestamp) throws -> [String]? {
        try cache.read { try $0.partnerRanking(now: now).map(\.partner) }
    }

    @Test("none configured: no reader, and no use for findings")
    func unconfigured() throws {
        let cache = UsageCache(paths: [])
        #expect(!cache.configured)
        #expect(try partners(cache, now: 0) == nil)
        #expect(try cache.facts().lastAllowed(user: "anyone") == nil)
    }

    @Test("a directory piamd has not written to yet reads as no use; a missing one is an error")
    func emptyDirectory() throws {
        let dir = try directory()
        #expect(try partners(UsageCache(paths: [dir]), now: 0) == [])
        #expect(throws: PIAMError.self) { try UsageCache(paths: [dir + "/nowhere"]).read { _ in 0 } }
    }

    @Test("changed files are merged again once the merge is refresh_ms old, not before")
    func refresh() throws {
        let dir = try directory()
        let db = try UsageDatabase(path: dir + "/host1.db")
        let now: Timestamp = 1_800_000_000_000
        try record(db, user: "ann", partner: "acme", at: now)
        let eager = UsageCache(paths: [dir], refreshMS: 0)
        let lazy = UsageCache(paths: [dir], refreshMS: 3_600_000)
        #expect(try partners(eager, now: now) == ["acme"])
        #expect(try partners(lazy, now: now) == ["acme"])
        #expect(try eager.facts().lastAllowed(user: "ann") == now)

        // piamd writes again: a second partner, and a later use of ann.
        try record(db, user: "gus", partner: "globex", at: now + 1000)
        try record(db, user: "ann", partner: "acme", at: now + 2000)
        #expect(try Set(partners(eager, now: now) ?? []) == ["acme", "globex"])
        #expect(try eager.facts().lastAllowed(user: "ann") == now + 2000, "facts are judged on the new merge")
        #expect(try partners(lazy, now: now) == ["acme"], "an hour-long refresh keeps the first merge")
        #expect(try lazy.facts().lastAllowed(user: "ann") == now)

        // A second host's file in the directory is a change too.
        let other = try UsageDatabase(path: dir + "/host2.db")
        try record(other, user: "nick", partner: "initech", at: now)
        #expect(try Set(partners(eager, now: now) ?? []) == ["acme", "globex", "initech"])
    }
}

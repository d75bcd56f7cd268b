import Foundation
import PIAMEngine
@testable import PIAMStore
import Testing

/// The usage database's writes: what a flush adds, and what the writer skips because it knows
/// the row is there.
@Suite("usage database: flushes")
struct UsageDatabaseTests {
    static let day: Timestamp = 86_400_000
    static let noon: Timestamp = 20_000 * day + day / 2

    func open() throws -> (UsageDatabase, String) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("piam-usage-\(UUID().uuidString).db").path
        return (try UsageDatabase(path: path), path)
    }

    func use(_ user: String, _ partner: String = "acme", first: Timestamp, last: Timestamp? = nil) -> UsageBatch.Feature {
        .init(user: user, partner: partner, type: "claim", action: "read", allowed: 1, denied: 0,
              firstAllowed: first, lastAllowed: last ?? first)
    }

    func activeDays(_ db: UsageDatabase) throws -> [String] {
        let s = try db.database.prepare("SELECT day, partner, user FROM active_day ORDER BY day, partner, user")
        return try s.rows { "\($0.text(0)) \($0.text(1)) \($0.text(2))" }
    }

    @Test("a person active in several flushes of a day is one row, written by the first; the next day starts again")
    func activeDaysOnce() throws {
        let (db, _) = try open()
        let d = Self.noon / Self.day
        try db.record(UsageBatch(features: [use("ann", first: Self.noon), use("bob", "globex", first: Self.noon)]), now: Self.noon)
        #expect(db.knownDay == d)
        #expect(db.knownActive.count == 2)
        try db.record(UsageBatch(features: [use("ann", first: Self.noon + 1000)]), now: Self.noon + 1000)
        #expect(db.knownActive.count == 2, "ann's row was known: nothing to add")
        // One feature spanning midnight (first use before it, last after): both days.
        let late = Self.noon + Self.day / 2 - 500
        try db.record(UsageBatch(features: [use("cy", first: late, last: late + 1000)]), now: late + 1000)
        #expect(db.knownDay == d + 1)
        #expect(db.knownActive == [.init(partner: "acme", user: "cy")])
        // A batch still holding yesterday's use (flushed after midnight) writes yesterday's row.
        try db.record(UsageBatch(features: [use("dee", first: late - 10)]), now: late + 2000)
        #expect(try activeDays(db) == [
            "\(d) acme ann", "\(d) acme cy", "\(d) acme dee", "\(d) globex bob", "\(d + 1) acme cy",
        ])
    }

    @Test("a flush that fails marks nothing: the next one writes the person's day")
    func failedFlushMarksNothing() throws {
        let (db, path) = try open()
        try db.database.execute("PRAGMA busy_timeout=0")
        let other = try Database(path: path)
        try other.execute("BEGIN IMMEDIATE")
        #expect(throws: PIAMError.self) {
            try db.record(UsageBatch(features: [use("ann", first: Self.noon)]), now: Self.noon)
        }
        #expect(db.knownActive.isEmpty)
        try other.execute("COMMIT")
        try db.record(UsageBatch(features: [use("ann", first: Self.noon + 1000)]), now: Self.noon + 1000)
        #expect(try activeDays(db) == ["\(Self.noon / Self.day) acme ann"])
    }
}

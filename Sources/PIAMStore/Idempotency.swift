import Foundation
import PIAMEngine

extension Store {
    /// The response stored for `key` of `actor` (schema v4, table `idempotency`), or `nil`:
    /// `requestHash` is the digest of the request it answered (a retry with the same key but
    /// another request is a client error, not a replay), `status` and `body` what was sent.
    ///
    /// Works inside an open transaction (reading what it sees) and outside one.
    public func idempotentResponse(actor: String, key: String) throws(PIAMError) -> (requestHash: String, status: Int, body: String)? {
        let s = try cached("SELECT request_hash, status, body FROM idempotency WHERE actor = ?1 AND key = ?2")
        s.bind(1, actor); s.bind(2, key)
        defer { s.reset() }
        guard try s.step() else { return nil }
        return (requestHash: s.text(0), status: Int(s.int64(1)), body: s.text(2))
    }

    /// Stores the response to `key` of `actor`. The first response stored for a key stays:
    /// storing again for the same key changes nothing and returns `false`.
    ///
    /// Call it INSIDE the write transaction of the operation it describes (an
    /// ``administer(_:as:now:graph:)`` is one; an HTTP layer with its own
    /// `db.withTransaction(immediate: true)` another), so the record commits — or rolls back —
    /// with the write: a crash between the two can neither replay a write that was lost nor
    /// repeat one that was kept. Outside a transaction it is one autocommitted insert (for
    /// responses that wrote nothing, such as a refusal).
    @discardableResult
    public func saveIdempotentResponse(actor: String, key: String, requestHash: String, status: Int, body: String,
                                       now: Timestamp) throws(PIAMError) -> Bool {
        let s = try cached("""
            INSERT INTO idempotency(actor, key, request_hash, status, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
            ON CONFLICT(actor, key) DO NOTHING
            """)
        s.bind(1, actor); s.bind(2, key); s.bind(3, requestHash); s.bind(4, status); s.bind(5, body); s.bind(6, now)
        try s.run()
        return db.changes > 0
    }

    /// Deletes the stored responses created before `olderThan`; returns how many.
    @discardableResult
    public func pruneIdempotency(olderThan: Timestamp) throws(PIAMError) -> Int {
        let s = try cached("DELETE FROM idempotency WHERE created_at < ?1")
        s.bind(1, olderThan)
        try s.run()
        return db.changes
    }
}

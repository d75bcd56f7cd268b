import PIAMEngine

/// An administrative writer that keeps the graph in memory between operations, so that a write
/// costs the change and not the graph: piam-admind's writer.
///
/// ``Store/administer(_:as:now:graph:)`` without a graph loads the whole graph inside its write
/// transaction (seconds at a million users, holding SQLite's write lock throughout). A writer
/// loads it once, then for each operation: `BEGIN IMMEDIATE`; the journal rows after its graph's
/// revision applied to the graph *inside* the transaction (other writers' commits: `piamctl`,
/// an import, another service); the engine's questions answered on that exact state; the write
/// and its audit row; its own change applied from the journal; `COMMIT`. The graph is kept only
/// when the transaction commits: a refusal or an error leaves it as it was, which is still the
/// state of the database.
///
/// Not thread-safe: one writer per connection, used from one thread at a time (piam-admind keeps
/// it behind a lock on a thread of its own).
public final class AdminWriter {
    /// The error code of a conditional write whose expected revision is no longer the
    /// database's (HTTP 412).
    public static let preconditionFailed = PIAMError.Code("precondition_failed")

    /// The writer's connection.
    public let store: Store
    /// The graph as of the last committed operation or catch-up, with its revision.
    public private(set) var current: LoadedGraph
    /// How many times the whole graph was loaded (1 at start, then only when the journal could
    /// not bring it up to date).
    public private(set) var fullLoads = 1

    /// Opens a writer on `store`, loading the graph.
    public init(store: Store) throws(PIAMError) {
        self.store = store
        current = try store.loadGraph()
    }

    /// Follows the journal outside a write: applies the changes other writers committed since
    /// the graph's revision (or loads the graph anew when the journal cannot). Returns whether
    /// the graph moved.
    @discardableResult
    public func catchUp() throws(PIAMError) -> Bool {
        let set = try store.changes(after: current.revision, schemaVersion: nil)
        guard set.revision != current.revision || set.fullReload != nil else { return false }
        if set.fullReload == nil, let next = try? current.graph.applying(set.changes) {
            current = LoadedGraph(graph: next, revision: set.revision)
        } else {
            current = try store.loadGraph()
            fullLoads += 1
        }
        return true
    }

    /// Performs one operation as ``Store/administer(_:as:now:graph:)`` does, on the kept graph.
    ///
    /// - Parameters:
    ///   - credential: how the actor was authenticated, for the audit row (`token:ci#3`, `jwt`).
    ///   - finishing: runs with the (allowed) result inside the transaction, before the commit:
    ///     whatever it writes commits with the operation, or not at all.
    ///   - expectedRevision: perform only while the database is at this revision (checked in the
    ///     transaction; else a ``preconditionFailed`` error, audited).
    public func administer(_ op: AdminOperation, as actor: String, credential: String? = nil, now: Timestamp? = nil,
                           expectedRevision: Int64? = nil,
                           finishing: ((AdminResult) throws(PIAMError) -> Void)? = nil) throws(PIAMError) -> AdminResult {
        let (result, graph) = try store.administer(op, as: actor, now: now ?? Store.clock(), credential: credential,
                                                   hint: current, expectedRevision: expectedRevision, finishing: finishing)
        if let graph { current = graph }
        return result
    }

    /// Runs a list of operations as ONE transaction, as ``Store/apply(_:now:graph:progress:)``
    /// does, on the kept graph. `finishing` runs with the result of a run that is about to
    /// commit, inside its transaction.
    public func apply(_ items: [AdminBatchItem], credential: String? = nil, now: Timestamp? = nil,
                      expectedRevision: Int64? = nil,
                      progress: ((Int, Int) -> Void)? = nil,
                      finishing: ((ApplyResult) throws(PIAMError) -> Void)? = nil) throws(PIAMError) -> ApplyResult {
        let (result, graph) = try store.apply(items, now: now ?? Store.clock(), credential: credential, hint: current,
                                              expectedRevision: expectedRevision, progress: progress, finishing: finishing)
        if let graph { current = graph }
        return result
    }

    /// What `items` would do (``Store/whatIf(_:now:graph:)``), on the kept graph: nothing is
    /// written; the kept graph is brought up to the database's revision.
    public func whatIf(_ items: [AdminBatchItem], credential: String? = nil, now: Timestamp? = nil) throws(PIAMError) -> WhatIfResult {
        let (result, graph) = try store.whatIf(items, now: now ?? Store.clock(), credential: credential, hint: current)
        current = graph
        return result
    }
}

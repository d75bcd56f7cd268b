import Foundation
import PIAMEngine

/// What a list of operations would do, decided and performed exactly as ``Store/apply(_:now:graph:progress:)``
/// would, in a transaction that is then rolled back: nothing is written, not even an audit row.
public struct WhatIfResult: Sendable, Hashable {
    /// Whether a real run would commit: every entry allowed and performed.
    public var wouldCommit: Bool
    /// The revision the entries were decided on (the database's, which is left unchanged).
    public var revision: Int64
    /// Every entry's outcome: `ok` (allowed, performed in the rolled-back transaction),
    /// `refused` (by the engine or a guard: `reason` says why), `failed` (an error: bad input,
    /// a conflict) or `not_run` (after a refusal or failure, as a real run stops there).
    /// Invitation secrets are never included.
    public var results: [ApplyItemResult]
    /// Who gains and who loses which permissions over which scope. Empty when a real run would
    /// not commit: it would change nothing.
    public var diff: AccessDiff
}

extension Store {
    /// What `items` would do, without writing anything.
    ///
    /// The entries run as in ``apply(_:now:graph:progress:)``: in ONE immediate write
    /// transaction, each decided by the engine for its actor on the state the entries before it
    /// produced, with the same guards and the same writes. Then the transaction is rolled back.
    /// The people the resulting changes can touch (``PIAMEngine/AccessGraph/usersAffected(by:)``:
    /// members of the orgs and subtrees concerned, holders of changed roles — never a scan of
    /// everyone) have their effective permissions compared before and after
    /// (``PIAMEngine/AccessDiff``).
    ///
    /// A refused entry is reported as refused (with the reason a real run would give) and the
    /// entries after it as `not_run`; the diff is then empty, since a real run would commit
    /// nothing. Nothing is audited: nothing happened.
    ///
    /// - Parameters:
    ///   - now: the time decisions are made and permissions compared at (default: the clock).
    ///   - graph: a graph already loaded by the caller, brought up to date through the journal.
    public func whatIf(_ items: [AdminBatchItem], now: Timestamp? = nil, graph: LoadedGraph? = nil) throws(PIAMError) -> WhatIfResult {
        try whatIf(items, now: now ?? Self.clock(), credential: nil, hint: graph).result
    }

    /// ``whatIf(_:now:graph:)`` for a writer that keeps its graph: also returns the graph at the
    /// database's (unchanged) revision.
    func whatIf(_ items: [AdminBatchItem], now: Timestamp, credential: String?,
                hint: LoadedGraph?) throws(PIAMError) -> (result: WhatIfResult, graph: LoadedGraph) {
        do {
            try db.execute("BEGIN IMMEDIATE")
            defer { try? db.execute("ROLLBACK") }
            let session = try AdminSession(store: self, now: now, batch: nil, credential: credential, hint: hint)
            let before = session.loaded
            var results: [ApplyItemResult] = []
            var stopped = false
            for (i, item) in items.enumerated() {
                let op = item.operation
                if stopped {
                    results.append(ApplyItemResult(index: i, operation: op.name, target: op.target(actor: item.actor), actor: item.actor,
                                                   status: "not_run", reason: "", message: "", revision: nil, details: [], requestID: nil))
                    continue
                }
                do {
                    let r = try session.perform(op, as: item.actor)
                    results.append(ApplyItemResult(index: i, operation: r.operation, target: r.target, actor: r.actor, status: "ok",
                                                   reason: r.reason, message: r.message, revision: nil, details: r.details,
                                                   requestID: nil))
                } catch {
                    stopped = true
                    let actor = (try? userRecord(item.actor)?.id) ?? item.actor
                    let (status, reason, message): (String, String, String)
                    switch error {
                    case let r as Refusal: (status, reason, message) = ("refused", r.reason, r.message)
                    case let e as PIAMError: (status, reason, message) = ("failed", e.code.rawValue, e.message)
                    default: (status, reason, message) = ("failed", PIAMError.Code.database.rawValue, "\(error)")
                    }
                    results.append(ApplyItemResult(index: i, operation: op.name, target: op.target(actor: actor), actor: actor,
                                                   status: status, reason: reason, message: message, revision: nil, details: [],
                                                   requestID: nil))
                }
            }
            var diff = AccessDiff(people: [], considered: 0)
            if !stopped {
                try session.catchUp()
                let set = try changes(after: before.revision, schemaVersion: nil, maxRows: Int.max)
                diff = AccessDiff.between(before.graph, session.graph, changes: set.changes, now: now)
            }
            return (WhatIfResult(wouldCommit: !stopped, revision: before.revision, results: results, diff: diff), before)
        } catch let e as PIAMError {
            throw e
        } catch {
            throw PIAMError(.database, "\(error)")
        }
    }
}

extension WhatIfResult {
    /// The answer as compact JSON (keys sorted), written by hand: a change that touches ten
    /// thousand people answers with a hundred thousand permissions, and Foundation's serializer
    /// of `[String: Any]` would take several times longer than deciding the change.
    ///
    /// `{"considered", "hidden", "people": [{"gained": [{"permission", "scope", "via"}], "lost",
    /// "org", "user"}], "results": [{"details"?, "index", "message", "operation", "reason",
    /// "status", "target"}], "revision", "seconds", "would_commit"}`.
    ///
    /// - Parameters:
    ///   - people: the people to list (the diff's, or those of them the reader may see).
    ///   - hidden: how many of the diff's people were left out.
    ///   - seconds: how long deciding took.
    public func jsonBytes(people: [AccessDiff.Person], hidden: Int, seconds: Double) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256 + people.count * 256)
        func raw(_ s: String) { out.append(contentsOf: s.utf8) }
        func str(_ s: String) { JSONText.appendString(s, to: &out) }
        func effective(_ list: [AccessReport.Effective]) {
            out.append(UInt8(ascii: "["))
            for (i, e) in list.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                raw("{\"permission\":"); str(e.permission); raw(",\"scope\":"); str(e.scope); raw(",\"via\":[")
                for (j, v) in e.via.enumerated() {
                    if j > 0 { out.append(UInt8(ascii: ",")) }
                    str(v)
                }
                raw("]}")
            }
            out.append(UInt8(ascii: "]"))
        }
        raw("{\"considered\":\(diff.considered),\"hidden\":\(hidden),\"people\":[")
        for (i, p) in people.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            raw("{\"gained\":"); effective(p.gained); raw(",\"lost\":"); effective(p.lost)
            raw(",\"org\":"); str(p.org); raw(",\"user\":"); str(p.user); raw("}")
        }
        raw("],\"results\":[")
        for (i, r) in results.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            raw("{")
            if !r.details.isEmpty {
                raw("\"details\":[")
                for (j, d) in r.details.enumerated() {
                    if j > 0 { out.append(UInt8(ascii: ",")) }
                    str(d)
                }
                raw("],")
            }
            raw("\"index\":\(r.index),\"message\":"); str(r.message); raw(",\"operation\":"); str(r.operation)
            raw(",\"reason\":"); str(r.reason); raw(",\"status\":"); str(r.status); raw(",\"target\":"); str(r.target); raw("}")
        }
        raw("],\"revision\":\(revision),\"seconds\":\(seconds.isFinite ? seconds : 0),\"would_commit\":\(wouldCommit)}")
        return out
    }
}

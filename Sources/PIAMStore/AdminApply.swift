import Foundation
import PIAMEngine

/// One entry of a bulk run: who performs which operation.
public struct AdminBatchItem: Sendable, Hashable {
    /// The actor (a user id or alias).
    public var actor: String
    public var operation: AdminOperation

    public init(actor: String, operation: AdminOperation) {
        self.actor = actor
        self.operation = operation
    }
}

/// The outcome of one entry of a bulk run.
public struct ApplyItemResult: Sendable, Hashable {
    public var index: Int
    public var operation: String
    public var target: String
    public var actor: String
    /// `ok` (written, committed with the rest), `refused`, `failed`, `rolled_back` (it ran, but
    /// a later entry was refused or failed, so nothing was kept) or `not_run`.
    public var status: String
    /// `allowed`, the refusal reason or the error code.
    public var reason: String
    public var message: String
    /// The revision right after this entry (entries that ran only).
    public var revision: Int64?
    public var details: [String]
    public var requestID: Int64?
    /// The secret of the invitation the entry created (shown once), as in ``AdminResult``.
    /// Gone with the rest when the run did not commit.
    public var invitationToken: String? = nil
    /// When that invitation expires.
    public var invitationExpires: Timestamp? = nil
}

/// The outcome of a bulk run: all of it committed, or none of it.
public struct ApplyResult: Sendable, Hashable {
    /// The run's id in the audit log (`batch`).
    public var batch: String
    /// Whether every entry was allowed and the transaction committed.
    public var committed: Bool
    /// The revision before the run.
    public var previousRevision: Int64
    /// The revision after the run (the same as before when it did not commit).
    public var revision: Int64
    public var results: [ApplyItemResult]
    /// How many times the graph was loaded to decide (1 plus a reload each time an entry
    /// depended on something written earlier in the run).
    public var graphLoads: Int
}

extension Store {
    /// Parses an `apply` file: a JSON array of operation objects (or `{"operations": [...]}`).
    /// Each object is `{"op": NAME, …}` (see ``AdminOperation/init(json:path:)``) with an
    /// optional `"as"` naming its actor; entries without one are performed by `defaultActor`.
    /// Errors name the JSON path: `operations[3].role: missing`.
    public static func parseApplyFile(_ data: Data, defaultActor: String?) throws(PIAMError) -> [AdminBatchItem] {
        let top: Any
        do {
            top = try JSONSerialization.jsonObject(with: data, options: [])
        } catch {
            throw PIAMError(.invalidInput, "not JSON: \((error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? error.localizedDescription)")
        }
        let list: [Any]
        if let a = top as? [Any] {
            list = a
        } else if let o = top as? [String: Any], let a = o["operations"] as? [Any], o.count == 1 {
            list = a
        } else {
            throw PIAMError(.invalidInput, "an apply file is a JSON array of operations, or {\"operations\": [...]}")
        }
        var items: [AdminBatchItem] = []
        items.reserveCapacity(list.count)
        for (i, x) in list.enumerated() {
            let path = "operations[\(i)]"
            guard let o = x as? [String: Any] else { throw PIAMError(.invalidInput, "\(path): must be an object {\"op\": …}") }
            let op = try AdminOperation(json: o, path: path)
            let actor: String
            if let a = o["as"] {
                guard let s = a as? String, !s.isEmpty else { throw PIAMError(.invalidInput, "\(path).as: must be a user id or alias") }
                actor = s
            } else if let defaultActor {
                actor = defaultActor
            } else {
                throw PIAMError(.invalidInput, "\(path): no actor (give \"as\" here, or --as for the whole file)")
            }
            items.append(AdminBatchItem(actor: actor, operation: op))
        }
        return items
    }

    /// Runs a list of operations as ONE immediate write transaction: all of them, or none.
    ///
    /// Each entry is decided and written exactly as ``administer(_:as:now:graph:)`` would, on
    /// the state the entries before it produced, and audited (with the run's `batch` id) in the
    /// same transaction. At the first refusal or error the transaction is rolled back, the
    /// database is left exactly as it was, and only that entry's refusal or failure is audited
    /// (in its own small transaction). The result lists every entry's outcome.
    ///
    /// - Parameters:
    ///   - items: the entries, in order.
    ///   - now: the time decisions are made at and the audit rows' time (default: the clock).
    ///   - graph: a graph already loaded by the caller, used when still current.
    ///   - progress: called after each entry with (done, total).
    public func apply(_ items: [AdminBatchItem], now: Timestamp? = nil, graph: LoadedGraph? = nil,
                      progress: ((Int, Int) -> Void)? = nil) throws(PIAMError) -> ApplyResult {
        try apply(items, now: now ?? Self.clock(), credential: nil, hint: graph, expectedRevision: nil, progress: progress, finishing: nil).result
    }

    /// ``apply(_:now:graph:progress:)`` for a writer that keeps its graph: also returns the
    /// graph at the committed revision (`nil` when the run did not commit), and runs `finishing`
    /// with the committed run's result inside the transaction, before the commit.
    func apply(_ items: [AdminBatchItem], now: Timestamp, credential: String?, hint: LoadedGraph?, expectedRevision: Int64?,
               progress: ((Int, Int) -> Void)?,
               finishing: ((ApplyResult) throws(PIAMError) -> Void)?) throws(PIAMError) -> (result: ApplyResult, graph: LoadedGraph?) {
        let batch = "apply-\(RFC3339.format(now))-\(UUID().uuidString.prefix(8).lowercased())"
        let before = try revision()
        var results: [ApplyItemResult] = []
        var loads = 0
        var failedAt: Int?
        var failure: (any Error)?
        let committed: (ApplyResult, LoadedGraph)
        do {
            committed = try writeTransaction { () throws -> (ApplyResult, LoadedGraph) in
                try requireRevision(expectedRevision)
                let session = try AdminSession(store: self, now: now, batch: batch, credential: credential, hint: hint)
                defer { loads = session.loads }
                for (i, item) in items.enumerated() {
                    do {
                        let r = try session.perform(item.operation, as: item.actor)
                        results.append(ApplyItemResult(index: i, operation: r.operation, target: r.target, actor: r.actor, status: "ok",
                                                       reason: r.reason, message: r.message, revision: r.revision, details: r.details,
                                                       requestID: r.requestID, invitationToken: r.invitationToken,
                                                       invitationExpires: r.invitationExpires))
                    } catch {
                        failedAt = i
                        failure = error
                        throw error
                    }
                    progress?(i + 1, items.count)
                }
                try session.catchUp()
                let result = ApplyResult(batch: batch, committed: true, previousRevision: before, revision: session.graphRevision,
                                         results: results, graphLoads: session.loads)
                try finishing?(result)
                return (result, session.loaded)
            }
        } catch {
            guard let i = failedAt, let failure else { throw (error as? PIAMError) ?? PIAMError(.database, "\(error)") }
            // Everything that ran was rolled back; record the refusal or failure alone.
            results = results.map {
                var r = $0
                r.status = "rolled_back"; r.revision = nil; r.invitationToken = nil; r.invitationExpires = nil
                return r
            }
            let item = items[i]
            let recorded: AdminResult
            do {
                recorded = try record(failure: failure, op: item.operation, actor: item.actor, now: now, batch: batch, credential: credential)
                results.append(ApplyItemResult(index: i, operation: recorded.operation, target: recorded.target, actor: recorded.actor,
                                               status: "refused", reason: recorded.reason, message: recorded.message, revision: nil,
                                               details: [], requestID: nil))
            } catch {
                results.append(ApplyItemResult(index: i, operation: item.operation.name, target: item.operation.target(actor: item.actor),
                                               actor: item.actor, status: "failed", reason: error.code.rawValue, message: error.message,
                                               revision: nil, details: [], requestID: nil))
            }
            for j in (i + 1)..<items.count {
                let it = items[j]
                results.append(ApplyItemResult(index: j, operation: it.operation.name, target: it.operation.target(actor: it.actor),
                                               actor: it.actor, status: "not_run", reason: "", message: "", revision: nil,
                                               details: [], requestID: nil))
            }
            return (ApplyResult(batch: batch, committed: false, previousRevision: before, revision: try revision(),
                                results: results, graphLoads: loads), nil)
        }
        return (committed.0, committed.1)
    }
}

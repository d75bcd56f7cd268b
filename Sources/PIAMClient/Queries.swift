import PIAMEngine
import PIAMWire

/// The daemon's STATUS document, decoded loosely: the raw JSON plus the fields most callers want.
public struct DaemonStatus: Sendable, Hashable {
    /// The JSON text as the daemon sent it.
    public var json: String
    public var revision: Int64
}

extension PIAMClient {
    /// CHECK: may `subject` do `action` on the resource?
    ///
    /// - Parameters:
    ///   - request: the subject, action and resource.
    ///   - minRevision: answer only from a graph at least this new (read-your-writes; the write
    ///     commands of `piamctl` print the revision they produced).
    public func check(_ request: CheckRequest, minRevision: Int64 = 0) async throws(PIAMError) -> Answer<Decision> {
        let (body, rev) = try await call(.check(request), minRevision: minRevision)
        guard case .decision(let d) = body else { throw Self.unexpected(body) }
        return Answer(value: d, revision: rev)
    }

    /// CHECK with the parts spelled out.
    public func check(subject: String, action: String, resource: ResourceRef, minRevision: Int64 = 0) async throws(PIAMError) -> Answer<Decision> {
        try await check(CheckRequest(subject: subject, action: action, resource: resource), minRevision: minRevision)
    }

    /// CHECK_BATCH: one decision per request, in order; short-circuit semantics stop after the
    /// deciding item, so fewer decisions than requests may come back.
    public func checkBatch(_ requests: [CheckRequest], semantic: BatchSemantic = .executeAll, minRevision: Int64 = 0) async throws(PIAMError) -> Answer<[Decision]> {
        let (body, rev) = try await call(.checkBatch(semantic, requests), minRevision: minRevision)
        guard case .decisions(let ds) = body else { throw Self.unexpected(body) }
        return Answer(value: ds, revision: rev)
    }

    /// EXPLAIN: the decision and the daemon's JSON trace (holdings considered and the rule each
    /// passed or failed — the engine's `Explanation` encoded as JSON).
    public func explain(_ request: CheckRequest, minRevision: Int64 = 0) async throws(PIAMError) -> Answer<(decision: Decision, trace: String)> {
        let (body, rev) = try await call(.explain(request), minRevision: minRevision)
        guard case .explanation(let d, let trace) = body else { throw Self.unexpected(body) }
        return Answer(value: (d, trace), revision: rev)
    }

    /// One page of LIST_RESOURCES. `cursor` nil starts at the beginning; `limit` 0 is the
    /// daemon's default page size. The page's `nextCursor` is nil on the last page.
    public func listResources(subject: String, action: String, type: String, cursor: String? = nil, limit: Int = 0,
                              minRevision: Int64 = 0) async throws(PIAMError) -> Answer<Page> {
        let (body, rev) = try await call(.listResources(subject: subject, action: action, type: type, cursor: cursor ?? "",
                                                        limit: UInt32(clamping: max(0, limit))), minRevision: minRevision)
        return Answer(value: try Self.page(body), revision: rev)
    }

    /// One page of LIST_SUBJECTS (see ``listResources(subject:action:type:cursor:limit:minRevision:)``).
    public func listSubjects(action: String, resource: ResourceRef, cursor: String? = nil, limit: Int = 0,
                             minRevision: Int64 = 0) async throws(PIAMError) -> Answer<Page> {
        let (body, rev) = try await call(.listSubjects(action: action, resource: resource, cursor: cursor ?? "",
                                                       limit: UInt32(clamping: max(0, limit))), minRevision: minRevision)
        return Answer(value: try Self.page(body), revision: rev)
    }

    /// Every resource id, following cursors page by page. All pages are read at (or after)
    /// the first page's revision.
    public func allResources(subject: String, action: String, type: String, pageSize: Int = 0,
                             minRevision: Int64 = 0) async throws(PIAMError) -> Answer<[String]> {
        try await collect(minRevision: minRevision) { cursor, min throws(PIAMError) in
            try await self.listResources(subject: subject, action: action, type: type, cursor: cursor, limit: pageSize, minRevision: min)
        }
    }

    /// Every allowed user id, following cursors page by page.
    public func allSubjects(action: String, resource: ResourceRef, pageSize: Int = 0,
                            minRevision: Int64 = 0) async throws(PIAMError) -> Answer<[String]> {
        try await collect(minRevision: minRevision) { cursor, min throws(PIAMError) in
            try await self.listSubjects(action: action, resource: resource, cursor: cursor, limit: pageSize, minRevision: min)
        }
    }

    /// LIST_ACTIONS: the actions `subject` may do on the resource.
    public func listActions(subject: String, resource: ResourceRef, minRevision: Int64 = 0) async throws(PIAMError) -> Answer<[String]> {
        let (body, rev) = try await call(.listActions(subject: subject, resource: resource), minRevision: minRevision)
        guard case .actions(let a) = body else { throw Self.unexpected(body) }
        return Answer(value: a, revision: rev)
    }

    /// CAN_ASSIGN: may `actor` give `target` the role at `scope` (nil: the target's org)?
    public func canAssign(actor: String, target: String, role: String, scope: String? = nil,
                          minRevision: Int64 = 0) async throws(PIAMError) -> Answer<Decision> {
        let (body, rev) = try await call(.canAssign(actor: actor, target: target, role: role, scope: scope ?? ""), minRevision: minRevision)
        guard case .decision(let d) = body else { throw Self.unexpected(body) }
        return Answer(value: d, revision: rev)
    }

    /// STATUS: the daemon's JSON status document.
    public func status() async throws(PIAMError) -> DaemonStatus {
        let (body, rev) = try await call(.status)
        guard case .status(let json) = body else { throw Self.unexpected(body) }
        return DaemonStatus(json: json, revision: rev)
    }

    /// PING: returns the daemon's graph revision.
    @discardableResult
    public func ping(minRevision: Int64 = 0) async throws(PIAMError) -> Int64 {
        let (body, rev) = try await call(.ping, minRevision: minRevision)
        guard case .empty = body else { throw Self.unexpected(body) }
        return rev
    }

    static func page(_ body: Response.Body) throws(PIAMError) -> Page {
        guard case .page(let items, let next) = body else { throw unexpected(body) }
        return Page(items: items, nextCursor: next.isEmpty ? nil : next)
    }

    private func collect(minRevision: Int64, _ fetch: (String?, Int64) async throws(PIAMError) -> Answer<Page>) async throws(PIAMError) -> Answer<[String]> {
        var items: [String] = []
        var cursor: String? = nil
        var min = minRevision
        var revision: Int64 = 0
        repeat {
            let a = try await fetch(cursor, min)
            items += a.value.items
            cursor = a.value.nextCursor
            // Later pages must not come from an older graph than earlier ones.
            min = Swift.max(min, a.revision)
            revision = Swift.max(revision, a.revision)
        } while cursor != nil
        return Answer(value: items, revision: revision)
    }
}

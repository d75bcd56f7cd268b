import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import PIAMEngine
import PIAMStore

/// The HTTP API's settings (``AdminConfig`` holds them with the rest).
public struct APISettings: Sendable, Hashable {
    /// Larger request bodies get 413.
    public var maxBodyBytes = 4 * 1024 * 1024
    /// The page size when a list request gives none.
    public var defaultPageSize = 100
    /// The largest page a list request may ask for.
    public var maxPageSize = 1000
    /// A connection with no request for this long is closed.
    public var idleTimeoutMS = 60_000
    /// Open connections per listener; beyond it new ones wait to be accepted.
    public var maxConnections = 256
    public init() {}
}

/// The administration API, `/admin/v1`: every administrative operation as a route
/// (``OperationRoute``), bulk runs, scoped reads and `me`. Every request is authenticated
/// (``AuthenticationMiddleware``) and every operation is decided by the engine inside the
/// store's write transaction and audited there; the API only translates.
public struct AdminAPI: Sendable {
    let service: AdminService
    let settings: APISettings
    /// piamd's usage files, or directories of them (``AdminConfig/usagePaths``), merged once per
    /// change and shared by the usage reports, findings, reviews and the consoles.
    let usageCache: UsageCache

    /// - Parameter usage: piamd's usage files (`usage.paths`); by default none: the usage reports
    ///   answer `not_configured`, and findings and reviews count every person and holding as
    ///   unused (``PIAMStore/NoUsage``).
    public init(service: AdminService, settings: APISettings, usage: UsageCache = UsageCache(paths: [])) {
        self.service = service
        self.settings = settings
        self.usageCache = usage
    }

    /// What the usage files say of each person's last activity and each holding's last use
    /// (nothing when none are configured).
    func usage() throws -> any UsageFacts {
        try usageCache.facts()
    }

    /// A router for one listener. `trustedHeader` is the proxy's identity header when this
    /// listener trusts it (a Unix socket or loopback listener configured so), else `nil`: a
    /// header arriving elsewhere is ignored.
    public func router(verifiers: [any BearerVerifier], trustedHeader: String?, console: ConsoleOptions? = nil,
                       sessions: ConsoleSessions = ConsoleSessions()) -> Router<AdminRequestContext> {
        let router = Router(context: AdminRequestContext.self)
        router.add(middleware: ProblemMiddleware())
        router.add(middleware: AuthenticationMiddleware(service: service, verifiers: verifiers,
                                                        trustedHeader: trustedHeader.flatMap { HTTPField.Name($0) }))
        for route in OperationRoute.all {
            router.on(RouterPath(route.path), method: route.method) { request, context in
                if route.operation.hasPrefix("scim.group.") { return try await performSCIMMapping(route, request, context) }
                return try await perform(route, request, context)
            }
        }
        addSCIMAdmin(to: router)
        SCIMAPI(service: service, settings: settings).add(to: router)
        router.post("\(OperationRoute.prefix)/operations") { request, context in try await performOne(request, context) }
        router.post("\(OperationRoute.prefix)/apply") { request, context in try await applyBulk(request, context) }
        router.post("\(OperationRoute.prefix)/what-if") { request, context in try await whatIf(request, context) }
        router.post("\(OperationRoute.prefix)/invitations/accept") { request, context in try await acceptInvitation(request, context) }
        addReads(to: router)
        addReviews(to: router)
        if let console {
            Console(api: self, sessions: sessions, options: console).addRoutes(to: router)
        }
        return router
    }

    // MARK: Operations

    /// Runs one route's operation.
    func perform(_ route: OperationRoute, _ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let body = try await JSONBody.object(request, limit: settings.maxBodyBytes)
        var params: [String: String] = [:]
        for f in route.pathFields {
            params[f.name] = context.parameters.get(f.name).map { $0.removingPercentEncoding ?? $0 }
        }
        var query: [String: String] = [:]
        for f in route.queryFields { query[f.name] = request.uri.queryParameters.get(f.name) }
        let form = try route.applyForm(path: params, query: query, body: body)
        let op = try parse(form)
        return try await run(op, request, principal, success: route.created ? .created : .ok, bodyForHash: form)
    }

    /// `POST /admin/v1/operations`: one operation in its apply form (`{"op": …}`).
    func performOne(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let form = try await JSONBody.object(request, limit: settings.maxBodyBytes)
        if form["as"] != nil { throw Problem(.badRequest, "invalid_input", "\"as\" is not accepted: operations act for the authenticated user") }
        let op = try parse(form)
        return try await run(op, request, principal, success: .ok, bodyForHash: form)
    }

    /// The operation of an apply form. JSON that is no valid operation (a missing field, an id
    /// of more than 255 bytes) is a 422: the body parsed, its content does not hold.
    func parse(_ form: [String: Any]) throws -> AdminOperation {
        do {
            return try AdminOperation(json: form, path: "body")
        } catch {
            throw Problem(.unprocessableContent, error.code.rawValue, error.message)
        }
    }

    /// Performs `op` for `principal`, honouring `Idempotency-Key` and `If-Match`.
    func run(_ op: AdminOperation, _ request: Request, _ principal: Principal, success: HTTPResponse.Status,
             bodyForHash: [String: Any]) async throws -> Response {
        let expected = try Self.ifMatchRevision(request)
        let idempotency = try Idempotency(request: request, actor: principal.user, form: bodyForHash)
        if let idempotency, let replay = try await service.read({ store, _ in try idempotency.replay(store) }) {
            return replay
        }
        let outcome = try await administer(op, principal, expectedRevision: expected) { w, r throws(PIAMError) in
            try idempotency?.save(w.store, status: success, body: Self.storable(Self.resultJSON(r)))
        }
        switch outcome {
        case .success(let r) where r.allowed:
            return JSONBody.response(Self.resultJSON(r), status: success, headers: Self.revisionHeaders(r.revision))
        case .success(let r):
            throw try await refusal(r, principal)
        case .failure(let e) where e.code == AdminWriter.preconditionFailed:
            throw Problem(.preconditionFailed, e.code.rawValue, e.message)
        case .failure(let e) where e.code == .invalidInput:
            // Well-formed, but against a rule of the graph the schema cannot express.
            throw Problem(.unprocessableContent, e.code.rawValue, e.message)
        case .failure(let e):
            // A missing target, or one the caller may not see: the same 404.
            throw Problem.from(e)
        }
    }

    /// Performs `op` for `principal` through the writer: the engine decides, the store writes and
    /// audits, in one transaction. The one path every administrative face takes (the API's routes,
    /// `POST /admin/v1/operations`, the consoles' forms): a refusal is an allowed `false` result.
    func administer(_ op: AdminOperation, _ principal: Principal, expectedRevision: Int64? = nil,
                    finishing: (@Sendable (AdminWriter, AdminResult) throws(PIAMError) -> Void)? = nil) async throws -> Result<AdminResult, PIAMError> {
        try await service.write { w in
            do {
                let r = try w.administer(op, as: principal.user, credential: principal.credential, expectedRevision: expectedRevision) { r throws(PIAMError) in
                    try finishing?(w, r)
                }
                return .success(r)
            } catch let e as PIAMError {
                return .failure(e)
            }
        }
    }

    /// The problem for a refused operation: 404 when the caller may not even see the target
    /// (another partner's ids look like ids that do not exist), else 403 with the reason.
    /// (`jit.create` names the subject the caller sent, usually no user yet: never hidden.)
    func refusal(_ r: AdminResult, _ principal: Principal) async throws -> Problem {
        if r.operation != "jit.create", try await !isVisible(r.target, to: principal.user) {
            return Problem.notFound(r.target)
        }
        return Problem(.forbidden, r.reason, r.message, extra: ["revision": r.revision, "operation": r.operation, "target": r.target])
    }

    /// Whether `user` may view the entity `target` (`TYPE:ID`) on the current graph.
    func isVisible(_ target: String, to user: String) async throws -> Bool {
        guard let colon = target.firstIndex(of: ":") else { return false }
        let type = String(target[..<colon]), id = String(target[target.index(after: colon)...])
        if type == "scim-group" {
            let partner = try await service.read { store, _ in try store.scimGroup(id)?.partner }
            guard let partner else { return false }
            return service.graph.graph.check(subject: user, action: "view", resource: ResourceRef(type: BuiltinType.org, id: partner),
                                             now: Self.now()).allowed
        }
        if type == "request" {
            guard let n = Int64(id) else { return false }
            return try await service.read { store, g in
                guard let req = try? store.accessRequest(id: n) else { return false }
                return g.graph.check(subject: user, action: "view", resource: ResourceRef(type: BuiltinType.user, id: req.user),
                                     now: AdminAPI.now()).allowed || g.graph.userID(for: req.user) == user
            }
        }
        let g = service.graph.graph
        if type == BuiltinType.user, g.userID(for: id) == user { return true }
        return g.check(subject: user, action: "view", resource: ResourceRef(type: type, id: id), now: Self.now()).allowed
    }

    /// `POST /admin/v1/apply`: a list of operations as one transaction (all or nothing).
    func applyBulk(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let (list, batch) = try await bulkItems(request, principal)
        return try await applyParsed(list, batch, request, principal)
    }

    /// `POST /admin/v1/what-if`: what a list of operations (the body of `apply`) would do,
    /// decided exactly as `apply` would decide it, with nothing written: each entry's outcome
    /// and who would gain and lose which permissions. As for `apply`: a refusal on a target the
    /// caller may not see is a 404; any other refusal, or an entry that fails (no such entity, a
    /// conflict), is a 422 carrying every entry's result (`results`, `would_commit: false`).
    /// People the caller may not view are left out of the diff (counted in `hidden`).
    func whatIf(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let (_, batch) = try await bulkItems(request, principal)
        let outcome = try await whatIfOutcome(batch, principal)
        let result = outcome.result
        if let f = result.results.first(where: { $0.status == "refused" || $0.status == "failed" }) {
            // As for apply: a 422 carrying every entry's result (the refused or failed one, and
            // those not run after it); nobody gains or loses anything, since a real run would
            // commit nothing.
            let json = Self.whatIfJSON(result, people: [], seconds: outcome.seconds)
            throw Problem(.unprocessableContent, f.reason,
                          "operations[\(f.index)] \(f.operation): \(f.message) — a real run would apply nothing",
                          extra: ["results": json["results"] ?? [Any](), "would_commit": false, "revision": result.revision])
        }
        var headers: HTTPFields = [.contentType: "application/json"]
        for f in Self.revisionHeaders(result.revision) { headers.append(f) }
        let bytes = result.jsonBytes(people: outcome.people, hidden: outcome.hidden, seconds: outcome.seconds)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// A what-if as `principal` sees it: the store's result, and the diff's people it may view.
    struct WhatIfOutcome: Sendable {
        var result: WhatIfResult
        /// The diff's people the principal may view (itself, people it may `view`, people the
        /// change itself creates); empty when a real run would not commit.
        var people: [AccessDiff.Person]
        /// How many of the diff's people were left out.
        var hidden: Int
        /// How long deciding took.
        var seconds: Double
    }

    /// What `batch` would do, decided exactly as ``applyItems(_:_:expectedRevision:finishing:)``
    /// would decide it, with nothing written (``PIAMStore/AdminWriter/whatIf(_:credential:now:)``):
    /// the one path of `POST /admin/v1/what-if` and the consoles' previews. A refusal on a target
    /// the principal may not see is a 404 (thrown); any other refusal or failure is in the
    /// result's entries.
    func whatIfOutcome(_ batch: [AdminBatchItem], _ principal: Principal) async throws -> WhatIfOutcome {
        let started = Date()
        let (result, graph): (WhatIfResult, AccessGraph) = try await service.write { w in
            let r = try w.whatIf(batch, credential: principal.credential)
            return (r, w.current.graph)
        }
        let seconds = Date().timeIntervalSince(started)
        if let f = result.results.first(where: { $0.status == "refused" }), try await !isVisible(f.target, to: principal.user) {
            throw Problem.notFound(f.target)
        }
        let now = Self.now()
        let visible = result.diff.people.filter { p in
            p.user == principal.user
                || graph.check(subject: principal.user, action: "view", resource: ResourceRef(type: BuiltinType.user, id: p.user), now: now).allowed
                || graph.userID(for: p.user) == nil  // created by the change itself (the graph is the one before it)
        }
        return WhatIfOutcome(result: result, people: visible, hidden: result.diff.people.count - visible.count, seconds: seconds)
    }

    /// The operations of an `apply` or `what-if` body, for the authenticated user.
    func bulkItems(_ request: Request, _ principal: Principal) async throws -> (list: [Any], items: [AdminBatchItem]) {
        let any = try await JSONBody.any(request, limit: settings.maxBodyBytes)
        let list: [Any]
        if let a = any as? [Any] {
            list = a
        } else if let o = any as? [String: Any], let a = o["operations"] as? [Any], o.count == 1 {
            list = a
        } else {
            throw Problem(.badRequest, "invalid_input", "the body is {\"operations\": [...]} or a JSON array of operations")
        }
        var items: [AdminBatchItem] = []
        for (i, x) in list.enumerated() {
            guard let o = x as? [String: Any] else { throw Problem(.badRequest, "invalid_input", "operations[\(i)]: must be an object") }
            if o["as"] != nil { throw Problem(.badRequest, "invalid_input", "operations[\(i)].as: operations act for the authenticated user") }
            do {
                items.append(AdminBatchItem(actor: principal.user, operation: try AdminOperation(json: o, path: "operations[\(i)]")))
            } catch {
                throw Problem(.unprocessableContent, error.code.rawValue, error.message)
            }
        }
        return (list, items)
    }

    /// Continues ``applyBulk(_:_:)`` once the body is parsed.
    func applyParsed(_ list: [Any], _ batch: [AdminBatchItem], _ request: Request, _ principal: Principal) async throws -> Response {
        let expected = try Self.ifMatchRevision(request)
        let idempotency = try Idempotency(request: request, actor: principal.user, form: ["operations": list])
        if let idempotency, let replay = try await service.read({ store, _ in try idempotency.replay(store) }) {
            return replay
        }
        let result = try await applyItems(batch, principal, expectedRevision: expected) { w, r throws(PIAMError) in
            try idempotency?.save(w.store, status: .ok, body: Self.storable(Self.applyJSON(r)))
        }
        if result.committed {
            return JSONBody.response(Self.applyJSON(result), headers: Self.revisionHeaders(result.revision))
        }
        throw try await applyProblem(result, principal)
    }

    /// Runs `batch` for `principal` as ONE transaction through the writer
    /// (``PIAMStore/AdminWriter/apply(_:credential:now:expectedRevision:finishing:)``): each entry
    /// decided by the engine and audited with the principal's credential, all or nothing. The one
    /// path of `POST /admin/v1/apply` and the consoles' multi-operation forms.
    func applyItems(_ batch: [AdminBatchItem], _ principal: Principal, expectedRevision: Int64? = nil,
                    finishing: (@Sendable (AdminWriter, ApplyResult) throws(PIAMError) -> Void)? = nil) async throws -> ApplyResult {
        try await service.write { w in
            try w.apply(batch, credential: principal.credential, expectedRevision: expectedRevision, finishing: { r throws(PIAMError) in
                try finishing?(w, r)
            })
        }
    }

    /// The problem for a run that did not commit: 412 when the database moved past the expected
    /// revision, 404 when the refused entry's target is one the principal may not see, else 422
    /// carrying every entry's result.
    func applyProblem(_ result: ApplyResult, _ principal: Principal) async throws -> Problem {
        let failed = result.results.first { $0.status == "refused" || $0.status == "failed" }
        if failed?.reason == AdminWriter.preconditionFailed.rawValue {
            return Problem(.preconditionFailed, AdminWriter.preconditionFailed.rawValue, failed?.message ?? "")
        }
        var status: HTTPResponse.Status = .unprocessableContent
        if let f = failed, f.status == "refused", try await !isVisible(f.target, to: principal.user) { status = .notFound }
        return Problem(status, failed?.reason ?? "refused",
                       "operations[\(failed?.index ?? 0)] \(failed?.operation ?? ""): \(failed?.message ?? "") — nothing was applied",
                       extra: ["results": Self.applyJSON(result)["results"] ?? [Any]()])
    }

    // MARK: JSON

    static func resultJSON(_ r: AdminResult) -> [String: Any] {
        var o: [String: Any] = ["operation": r.operation, "target": r.target, "actor": r.actor, "allowed": r.allowed,
                                "reason": r.reason, "message": r.message, "changed": r.changed, "revision": r.revision]
        if !r.details.isEmpty { o["details"] = r.details }
        if let id = r.requestID { o["request_id"] = id }
        if let t = r.invitationToken { o["invitation_token"] = t }
        if let e = r.invitationExpires { o["invitation_expires"] = RFC3339.format(e) }
        return o
    }

    /// What an Idempotency-Key keeps of an answer: all but an invitation's secret, which the
    /// database never holds (a replay says to resend the invitation instead).
    static func storable(_ o: [String: Any]) -> [String: Any] {
        var o = o
        if o.removeValue(forKey: "invitation_token") != nil {
            o["invitation_token_note"] = "shown once, in the first answer; resend the invitation for a new one"
        }
        if var results = o["results"] as? [[String: Any]] {
            for i in results.indices where results[i].removeValue(forKey: "invitation_token") != nil {
                results[i]["invitation_token_note"] = "shown once, in the first answer; resend the invitation for a new one"
            }
            o["results"] = results
        }
        return o
    }

    static func applyJSON(_ r: ApplyResult) -> [String: Any] {
        ["batch": r.batch, "committed": r.committed, "previous_revision": r.previousRevision, "revision": r.revision,
         "results": r.results.map { i -> [String: Any] in
             var o: [String: Any] = ["index": i.index, "operation": i.operation, "target": i.target, "status": i.status,
                                     "reason": i.reason, "message": i.message]
             if let v = i.revision { o["revision"] = v }
             if !i.details.isEmpty { o["details"] = i.details }
             if let id = i.requestID { o["request_id"] = id }
             if let t = i.invitationToken { o["invitation_token"] = t }
             if let e = i.invitationExpires { o["invitation_expires"] = RFC3339.format(e) }
             return o
         }]
    }

    static func whatIfJSON(_ r: WhatIfResult, people: [AccessDiff.Person], seconds: Double) -> [String: Any] {
        func effective(_ e: AccessReport.Effective) -> [String: Any] { ["permission": e.permission, "scope": e.scope, "via": e.via] }
        return ["would_commit": r.wouldCommit, "revision": r.revision, "considered": r.diff.considered,
                "hidden": r.diff.people.count - people.count, "seconds": seconds,
                "results": r.results.map { i -> [String: Any] in
                    var o: [String: Any] = ["index": i.index, "operation": i.operation, "target": i.target, "status": i.status,
                                            "reason": i.reason, "message": i.message]
                    if !i.details.isEmpty { o["details"] = i.details }
                    return o
                },
                "people": people.map { p -> [String: Any] in
                    ["user": p.user, "org": p.org, "gained": p.gained.map(effective), "lost": p.lost.map(effective)]
                }]
    }

    static func revisionHeaders(_ revision: Int64) -> HTTPFields {
        var h: HTTPFields = [:]
        h[.eTag] = "\"\(revision)\""
        h[HTTPField.Name("X-PIAM-Revision")!] = String(revision)
        return h
    }

    /// `X-PIAM-Revision` alone (SCIM answers carry their own ETags).
    static func revisionOnly(_ revision: Int64) -> HTTPFields {
        var h: HTTPFields = [:]
        h[HTTPField.Name("X-PIAM-Revision")!] = String(revision)
        return h
    }

    /// `If-Match: "REVISION"`: the write happens only while the database is at that revision.
    static func ifMatchRevision(_ request: Request) throws -> Int64? {
        guard let v = request.headers[.ifMatch], !v.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
        var t = v.trimmingCharacters(in: .whitespaces)
        if t.hasPrefix("W/") { t.removeFirst(2) }
        guard t.count >= 3, t.hasPrefix("\""), t.hasSuffix("\""), case let digits = t.dropFirst().dropLast(),
              digits.count <= 18, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), let n = Int64(digits) else {
            throw Problem(.badRequest, "invalid_input", "If-Match: an ETag this API gave (\"REVISION\"), not \(v)")
        }
        return n
    }

    /// The clock the API decides at (milliseconds since the epoch).
    public static func now() -> Timestamp { Timestamp(Date().timeIntervalSince1970 * 1000) }
}

/// Turns errors no handler answered into problem+json (Hummingbird's own 404s and 405s too).
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = AdminRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let p as Problem {
            throw p
        } catch let s as SCIMError {
            throw s
        } catch let e as PIAMError where request.uri.path.hasPrefix("/scim/") {
            throw SCIMError.from(e)
        } catch let e as HTTPError where request.uri.path.hasPrefix("/scim/") {
            if e.status == .notFound {
                let allowed = SCIMAPI.methods(matching: request.uri.path)
                if !allowed.isEmpty, !allowed.contains(request.method.rawValue) {
                    var s = SCIMError(.methodNotAllowed, code: "method_not_allowed", "\(request.method.rawValue) is not one of \(allowed.joined(separator: ", ")) here")
                    s.headers[.allow] = allowed.joined(separator: ", ")
                    throw s
                }
            }
            throw SCIMError(e.status, code: e.status == .notFound ? "not_found" : "http_\(e.status.code)", e.body ?? e.status.reasonPhrase)
        } catch let e as PIAMError {
            throw Problem.from(e)
        } catch let e as HTTPError {
            if e.status == .notFound {
                let allowed = APIRoutes.methods(matching: request.uri.path)
                if !allowed.isEmpty, !allowed.contains(request.method.rawValue) {
                    var p = Problem(.methodNotAllowed, "method_not_allowed", "\(request.method.rawValue) is not one of \(allowed.joined(separator: ", ")) here")
                    p.headers[.allow] = allowed.joined(separator: ", ")
                    throw p
                }
                throw Problem(.notFound, "not_found", "no such path")
            }
            throw Problem(e.status, "http_\(e.status.code)", e.body ?? e.status.reasonPhrase)
        } catch {
            context.logger.error("unexpected error: \(error)")
            throw Problem(.internalServerError, "internal", "an unexpected error; the service logged it")
        }
    }
}

/// `Idempotency-Key` on a POST: the response of the first request with that key (per user) is
/// stored in the same transaction as its write and replayed for a retry; the same key with a
/// different request is refused (422).
struct Idempotency: Sendable {
    let actor: String
    let key: String
    let requestHash: String

    init?(request: Request, actor: String, form: [String: Any]) throws {
        guard let key = request.headers[HTTPField.Name("Idempotency-Key")!] else { return nil }
        guard !key.isEmpty, key.utf8.count <= 255 else {
            throw Problem(.badRequest, "invalid_input", "Idempotency-Key: 1 to 255 characters")
        }
        self.actor = actor
        self.key = key
        var text = "\(request.method.rawValue) \(request.uri.path)\n"
        text += String(decoding: JSONBody.data(form), as: UTF8.self)
        requestHash = SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    func replay(_ store: Store) throws -> Response? {
        guard let saved = try store.idempotentResponse(actor: actor, key: key) else { return nil }
        guard saved.requestHash == requestHash else {
            throw Problem(.unprocessableContent, "idempotency_conflict",
                          "Idempotency-Key \(key) was used for a different request")
        }
        var h: HTTPFields = [:]
        h[HTTPField.Name("Idempotent-Replayed")!] = "true"
        if let o = try? JSONSerialization.jsonObject(with: Data(saved.body.utf8)) as? [String: Any], let rev = o["revision"] as? Int64 {
            for f in AdminAPI.revisionHeaders(rev) { h.append(f) }
        }
        return Response(status: HTTPResponse.Status(code: saved.status), headers: [.contentType: "application/json"] + h,
                        body: .init(byteBuffer: ByteBuffer(string: saved.body)))
    }

    func save(_ store: Store, status: HTTPResponse.Status, body: [String: Any]) throws(PIAMError) {
        try store.saveIdempotentResponse(actor: actor, key: key, requestHash: requestHash, status: status.code,
                                         body: String(decoding: JSONBody.data(body), as: UTF8.self), now: AdminAPI.now())
    }
}

private func + (a: HTTPFields, b: HTTPFields) -> HTTPFields {
    var r = a
    for f in b { r.append(f) }
    return r
}

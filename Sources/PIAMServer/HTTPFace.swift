import Foundation
import NIOHTTP1
import PIAMEngine
import PIAMStore
import PIAMWire

/// One HTTP request as the face sees it: complete, body included.
public struct HTTPFaceRequest: Sendable {
    public var method: HTTPMethod
    public var uri: String
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(method: HTTPMethod, uri: String, headers: HTTPHeaders = [:], body: [UInt8] = []) {
        self.method = method
        self.uri = uri
        self.headers = headers
        self.body = body
    }

    /// The path without the query.
    var path: Substring {
        let u = Substring(uri)
        return u.firstIndex(of: "?").map { u[..<$0] } ?? u
    }
}

/// One HTTP response of the face.
public struct HTTPFaceResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// The endpoint it answered, the metrics' `endpoint` label.
    public var endpoint: String
    /// Set, instead of an answer, for subjects the graph does not know inside a JIT-enabled
    /// namespace, when just-in-time creation is configured: nothing was decided, counted or
    /// logged. The listener has the subjects created (``JITProvisioner``) and asks again on the
    /// graph that has them, or, when that fails, asks again with creation off
    /// (``HTTPFace/respond(to:snapshot:creating:)``): each request is decided once. One subject,
    /// or a batch's distinct ones (at most ``HTTPFace/jitSubjectsPerBatch``), in request order.
    public var jitSubjects: [String] = []

    init(_ status: HTTPResponseStatus, endpoint: String, headers: HTTPHeaders = [:], body: [UInt8] = [], contentType: String? = nil) {
        self.status = status
        self.endpoint = endpoint
        self.headers = headers
        self.body = body
        if let contentType { self.headers.replaceOrAdd(name: "Content-Type", value: contentType) }
    }

    /// A JSON document.
    static func json(_ status: HTTPResponseStatus, endpoint: String, _ object: Any, revision: Int64? = nil) -> HTTPFaceResponse {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        var r = HTTPFaceResponse(status, endpoint: endpoint, body: Array(data), contentType: "application/json")
        if let revision { r.headers.replaceOrAdd(name: HTTPFace.revisionHeader, value: String(revision)) }
        return r
    }

    /// An error: `{"error": {"code", "message"}}`.
    static func error(_ status: HTTPResponseStatus, endpoint: String, code: PIAMError.Code, _ message: String) -> HTTPFaceResponse {
        json(status, endpoint: endpoint, ["error": ["code": code.rawValue, "message": message]])
    }
}

/// A request the face refuses with 400 and this message.
struct BadRequest: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// The HTTP face's endpoints: the AuthZEN Authorization API 1.0, forward-auth for reverse
/// proxies, `/metrics` and `/healthz`. A pure function of the request and a graph snapshot —
/// the listener (``HTTPServer``) does the I/O and the waiting for a `min_revision`.
///
/// Every decision is made by ``QueryEvaluator`` exactly as for the binary socket.
public struct HTTPFace: Sendable {
    /// Carries the revision an answer was computed on.
    public static let revisionHeader = "X-PIAM-Revision"
    /// Asks for an answer from a graph at least this new (read-your-writes).
    public static let minRevisionHeader = "X-PIAM-Min-Revision"

    let evaluator: QueryEvaluator
    let state: GraphState
    let metrics: ServerMetrics?
    let publicURL: String?
    let subjectHeader: String
    let allowUnrouted: Bool
    let routes: [ForwardAuthRoute]
    /// Just-in-time creation is configured (`jit.admind`).
    let jitEnabled: Bool

    public init(config: DaemonConfig, state: GraphState, metrics: ServerMetrics?) {
        evaluator = QueryEvaluator(config: config, state: state, metrics: metrics, interface: .http)
        self.state = state
        self.metrics = metrics
        publicURL = config.httpPublicURL
        subjectHeader = config.forwardAuthSubjectHeader
        allowUnrouted = config.forwardAuthAllowUnrouted
        routes = config.forwardAuthRoutes
        jitEnabled = config.jitAdmind != nil
    }

    /// Whether `subject` is to be created just in time before anything is decided: only when
    /// JIT is configured and some partner enables it, only for a subject no user has as id or
    /// alias (its check would be the engine's first deny, `unknown_subject`) inside a namespace
    /// of a JIT-enabled partner (any other subject never leaves piamd).
    @inline(__always)
    func wantsJIT(subject: String, on snapshot: Snapshot) -> Bool {
        guard jitEnabled, !snapshot.jit.isEmpty else { return false }
        return snapshot.graph.userID(for: subject) == nil && snapshot.jit.setting(for: subject) != nil
    }

    /// ``wantsJIT(subject:on:)`` for a subject given as bytes (the fast path, which then hands
    /// the request to the general path).
    @inline(__always)
    func wantsJIT(subject: UnsafeRawBufferPointer, on snapshot: Snapshot) -> Bool {
        guard jitEnabled, !snapshot.jit.isEmpty, snapshot.graph.userIdentity(utf8: subject) == nil else { return false }
        return snapshot.jit.setting(for: String(decoding: subject, as: UTF8.self)) != nil
    }

    /// The response that stands for a request held for just-in-time creation of `subjects`
    /// (never written: see ``HTTPFaceResponse/jitSubjects``).
    static func creating(_ subjects: [String], endpoint: String) -> HTTPFaceResponse {
        var r = HTTPFaceResponse(.serviceUnavailable, endpoint: endpoint)
        r.jitSubjects = subjects
        return r
    }

    /// The most distinct subjects of one AuthZEN batch created just in time before it is
    /// decided; a batch's further new subjects are decided as they are (`unknown_subject`) and
    /// created when a later request asks for them.
    public static let jitSubjectsPerBatch = 8

    /// The AuthZEN endpoints' paths.
    enum Path {
        static let evaluation = "/access/v1/evaluation"
        static let evaluations = "/access/v1/evaluations"
        static let searchSubject = "/access/v1/search/subject"
        static let searchResource = "/access/v1/search/resource"
        static let searchAction = "/access/v1/search/action"
        static let configuration = "/.well-known/authzen-configuration"
    }

    /// Answers `request` from `snapshot` (nil while the first graph loads). With `creating`
    /// (and JIT configured), a request whose subject is to be created just in time is not
    /// decided but held (``HTTPFaceResponse/jitSubjects``); without it, it is decided as it is.
    public func respond(to request: HTTPFaceRequest, snapshot: Snapshot?, creating: Bool = true) -> HTTPFaceResponse {
        let path = request.path
        func only(_ method: HTTPMethod, endpoint: String, _ body: () -> HTTPFaceResponse) -> HTTPFaceResponse {
            guard request.method == method || (method == .GET && request.method == .HEAD) else {
                var r = HTTPFaceResponse.error(.methodNotAllowed, endpoint: endpoint, code: .invalidInput,
                                               "\(path) answers \(method.rawValue) only")
                r.headers.add(name: "Allow", value: method.rawValue)
                return r
            }
            return body()
        }
        func decide(endpoint: String, _ body: (Snapshot, [String: Any]) throws(BadRequest) -> HTTPFaceResponse) -> HTTPFaceResponse {
            only(.POST, endpoint: endpoint) {
                guard let snapshot else { return Self.loading(endpoint) }
                do throws(BadRequest) {
                    return try body(snapshot, try Self.jsonObject(request.body))
                } catch {
                    return .error(.badRequest, endpoint: endpoint, code: .invalidInput, error.message)
                }
            }
        }
        switch path {
        case Path.evaluation: return decide(endpoint: "evaluation") { s, o throws(BadRequest) in try evaluation(o, on: s, creating: creating) }
        case Path.evaluations: return decide(endpoint: "evaluations") { s, o throws(BadRequest) in try evaluations(o, on: s, creating: creating) }
        case Path.searchSubject: return decide(endpoint: "search_subject") { s, o throws(BadRequest) in try searchSubject(o, on: s) }
        case Path.searchResource: return decide(endpoint: "search_resource") { s, o throws(BadRequest) in try searchResource(o, on: s) }
        case Path.searchAction: return decide(endpoint: "search_action") { s, o throws(BadRequest) in try searchAction(o, on: s) }
        case Path.configuration: return only(.GET, endpoint: "configuration") { discovery(request) }
        case "/forward-auth": return forwardAuth(request, snapshot: snapshot, creating: creating)
        case "/healthz": return only(.GET, endpoint: "healthz") { health(snapshot) }
        case "/metrics":
            return only(.GET, endpoint: "metrics") {
                guard let metrics else { return .error(.notFound, endpoint: "metrics", code: .notFound, "metrics are off") }
                return HTTPFaceResponse(.ok, endpoint: "metrics", body: metrics.render(state: state),
                                        contentType: "text/plain; version=0.0.4; charset=utf-8")
            }
        default:
            return .error(.notFound, endpoint: "other", code: .notFound, "no such endpoint: \(path)")
        }
    }

    static func loading(_ endpoint: String) -> HTTPFaceResponse {
        var r = HTTPFaceResponse.error(.serviceUnavailable, endpoint: endpoint, code: .unavailable, "piamd is loading its graph")
        r.headers.add(name: "Retry-After", value: "1")
        return r
    }

    // MARK: /healthz and discovery

    func health(_ snapshot: Snapshot?) -> HTTPFaceResponse {
        guard let snapshot else { return .json(.serviceUnavailable, endpoint: "healthz", ["status": "loading"]) }
        // Freshness: the lag behind the database and the last proof, as in STATUS.
        let f = state.freshness
        var body: [String: Any] = ["revision": snapshot.revision, "lag": max(0, f.databaseRevision - snapshot.revision)]
        if let wall = f.verifiedWall { body["last_verified"] = RFC3339.format(Timestamp(wall.timeIntervalSince1970 * 1000)) }
        if state.replicaMaxAge != nil { body["replica_age_ms"] = f.replicaAge().map(GraphState.ms) ?? NSNull() }
        if let reason = state.degraded {
            body["status"] = "degraded"
            body["reason"] = reason
            return .json(.serviceUnavailable, endpoint: "healthz", body, revision: snapshot.revision)
        }
        body["status"] = "serving"
        return .json(.ok, endpoint: "healthz", body, revision: snapshot.revision)
    }

    /// The AuthZEN discovery document (the PDP metadata).
    func discovery(_ request: HTTPFaceRequest) -> HTTPFaceResponse {
        let base = publicURL ?? "http://" + (request.headers.first(name: "Host").flatMap { $0.isEmpty ? nil : $0 } ?? "localhost")
        return .json(.ok, endpoint: "configuration", [
            "policy_decision_point": base,
            "access_evaluation_endpoint": base + Path.evaluation,
            "access_evaluations_endpoint": base + Path.evaluations,
            "search_subject_endpoint": base + Path.searchSubject,
            "search_resource_endpoint": base + Path.searchResource,
            "search_action_endpoint": base + Path.searchAction,
        ])
    }

    // MARK: AuthZEN evaluation

    /// What one evaluation asks: a check, or an answer known without the graph (a subject
    /// type that does not name PIAM users).
    enum Evaluation {
        case check(CheckRequest)
        case deny(Reason)
    }

    /// `POST /access/v1/evaluation` (`creating`: a subject to create just in time is held for
    /// it rather than decided).
    func evaluation(_ body: [String: Any], on snapshot: Snapshot, creating: Bool = true) throws(BadRequest) -> HTTPFaceResponse {
        try single(body, endpoint: "evaluation", on: snapshot, creating: creating)
    }

    /// One evaluation of `body`'s fields, answered as such (or held for just-in-time creation of
    /// its subject): `/evaluation`, and `/evaluations` without items.
    private func single(_ body: [String: Any], endpoint: String, on snapshot: Snapshot, creating: Bool) throws(BadRequest) -> HTTPFaceResponse {
        let e = try Self.parseEvaluation(body)
        if creating, case .check(let c) = e, wantsJIT(subject: c.subject, on: snapshot) {
            return Self.creating([c.subject], endpoint: endpoint)
        }
        let d = decide(e, on: snapshot)
        return HTTPFaceResponse.json(.ok, endpoint: endpoint, Self.decisionObject(d, details: Self.wantsDetails(body), snapshot),
                                     revision: snapshot.revision)
    }

    /// `POST /access/v1/evaluations`: top-level fields are defaults each item may replace.
    func evaluations(_ body: [String: Any], on snapshot: Snapshot, creating: Bool = true) throws(BadRequest) -> HTTPFaceResponse {
        var semantic = BatchSemantic.executeAll
        if let options = body["options"], !(options is NSNull) {
            guard let o = options as? [String: Any] else { throw BadRequest("options must be an object") }
            if let s = o["evaluations_semantic"], !(s is NSNull) {
                switch s as? String {
                case "execute_all": semantic = .executeAll
                case "deny_on_first_deny": semantic = .denyOnFirstDeny
                case "permit_on_first_permit": semantic = .permitOnFirstPermit
                default: throw BadRequest("options.evaluations_semantic must be execute_all, deny_on_first_deny or permit_on_first_permit")
                }
            }
        }
        let items: [Any]
        switch body["evaluations"] {
        case nil, is NSNull: items = []
        case let list as [Any]: items = list
        default: throw BadRequest("evaluations must be a list")
        }
        // No items: one evaluation of the top-level fields, answered as such.
        if items.isEmpty { return try single(body, endpoint: "evaluations", on: snapshot, creating: creating) }
        // An item that cannot be evaluated is a deny, not an error of the whole batch.
        let evaluations: [(Evaluation?, merged: [String: Any])] = items.map { item in
            var merged = body
            if let o = item as? [String: Any] {
                for key in ["subject", "action", "resource", "context"] where o[key] != nil { merged[key] = o[key] }
            }
            return (item is [String: Any] ? try? Self.parseEvaluation(merged) : nil, merged)
        }
        // A batch with subjects to create just in time (a portal asking what a new person may do
        // on its page, or what several may) is held until they are created, then decided whole,
        // once.
        if creating {
            var subjects: [String] = []
            for case (.check(let c)?, _) in evaluations where subjects.count < Self.jitSubjectsPerBatch && !subjects.contains(c.subject) {
                if wantsJIT(subject: c.subject, on: snapshot) { subjects.append(c.subject) }
            }
            if !subjects.isEmpty { return Self.creating(subjects, endpoint: "evaluations") }
        }
        var results: [[String: Any]] = []
        for (e, merged) in evaluations {
            let d = e.map { decide($0, on: snapshot) } ?? .deny(.unknownResource)
            results.append(Self.decisionObject(d, details: e != nil && Self.wantsDetails(merged), snapshot))
            if semantic.stops(after: d) { break }
        }
        return .json(.ok, endpoint: "evaluations", ["evaluations": results], revision: snapshot.revision)
    }

    func decide(_ e: Evaluation, on snapshot: Snapshot) -> Decision {
        switch e {
        case .deny(let reason): return .deny(reason)
        case .check(let c):
            if case .decision(let d) = evaluator.answer(Request(body: .check(c)), on: snapshot).body { return d }
            return .deny(.unknownSubject)
        }
    }

    static func decisionObject(_ d: Decision, details: Bool, _ snapshot: Snapshot) -> [String: Any] {
        guard details else { return ["decision": d.allowed] }
        return ["decision": d.allowed,
                "context": ["reason": d.reason.name, "reason_code": Int(d.reason.rawValue), "revision": snapshot.revision]]
    }

    /// Whether the request's context asks for PIAM's details: `"context": {"piam_details": true}`.
    static func wantsDetails(_ body: [String: Any]) -> Bool {
        ((body["context"] as? [String: Any])?["piam_details"] as? Bool) == true
    }

    /// Subject types that name PIAM users (by id or alias).
    static let userTypes: Set<String> = ["user", "identity"]

    static func parseEvaluation(_ body: [String: Any]) throws(BadRequest) -> Evaluation {
        let subject = try entity(body, "subject", needsID: true)
        let action = try actionName(body)
        let resource = try resourceRef(body, needsID: true)
        if let c = body["context"], !(c is NSNull), !(c is [String: Any]) { throw BadRequest("context must be an object") }
        guard userTypes.contains(subject.type) else { return .deny(.unknownSubject) }
        return .check(CheckRequest(subject: subject.id!, action: action, resource: resource))
    }

    // MARK: AuthZEN search

    /// `POST /access/v1/search/subject`: every user allowed `action` on `resource`.
    func searchSubject(_ body: [String: Any], on snapshot: Snapshot) throws(BadRequest) -> HTTPFaceResponse {
        let subject = try Self.entity(body, "subject", needsID: false)
        let action = try Self.actionName(body)
        let resource = try Self.resourceRef(body, needsID: true)
        let (token, limit) = try Self.page(body)
        guard Self.userTypes.contains(subject.type) else { return searchResults([], next: "", "search_subject", snapshot) }
        let page = try listPage(.listSubjects(action: action, resource: resource, cursor: token, limit: limit), on: snapshot)
        return searchResults(page.items.map { ["type": subject.type, "id": $0] }, next: page.next, "search_subject", snapshot)
    }

    /// `POST /access/v1/search/resource`: every resource of the type the subject may act on.
    func searchResource(_ body: [String: Any], on snapshot: Snapshot) throws(BadRequest) -> HTTPFaceResponse {
        let subject = try Self.entity(body, "subject", needsID: true)
        let action = try Self.actionName(body)
        let resource = try Self.entity(body, "resource", needsID: false)
        let (token, limit) = try Self.page(body)
        guard Self.userTypes.contains(subject.type) else { return searchResults([], next: "", "search_resource", snapshot) }
        let page = try listPage(.listResources(subject: subject.id!, action: action, type: resource.type, cursor: token, limit: limit),
                                on: snapshot)
        return searchResults(page.items.map { ["type": resource.type, "id": $0] }, next: page.next, "search_resource", snapshot)
    }

    /// `POST /access/v1/search/action`: every action the subject may do to the resource. The
    /// list is a type's vocabulary (small); its pages' tokens are offsets.
    func searchAction(_ body: [String: Any], on snapshot: Snapshot) throws(BadRequest) -> HTTPFaceResponse {
        let subject = try Self.entity(body, "subject", needsID: true)
        let resource = try Self.resourceRef(body, needsID: true)
        let (token, limit) = try Self.page(body)
        let offset: Int
        if token.isEmpty { offset = 0 } else {
            guard token.hasPrefix("a"), let n = Int(token.dropFirst()), n >= 0 else {
                throw BadRequest("page.token: \"\(token)\" is not a token this server issued")
            }
            offset = n
        }
        guard Self.userTypes.contains(subject.type) else { return searchResults([], next: "", "search_action", snapshot) }
        guard case .actions(let all) = evaluator.answer(Request(body: .listActions(subject: subject.id!, resource: resource)),
                                                        on: snapshot).body else {
            return searchResults([], next: "", "search_action", snapshot)
        }
        let size = limit == 0 ? evaluator.defaultListPage : min(Int(limit), evaluator.maxList)
        let slice = all.dropFirst(offset).prefix(size)
        let end = min(offset, all.count) + slice.count
        return searchResults(slice.map { ["name": $0] }, next: end < all.count ? "a\(end)" : "", "search_action", snapshot)
    }

    func listPage(_ body: Request.Body, on snapshot: Snapshot) throws(BadRequest) -> (items: [String], next: String) {
        let r = evaluator.answer(Request(body: body), on: snapshot)
        switch r.body {
        case .page(let items, let next): return (items, next)
        case .message(let m): throw BadRequest("page.token: \(m)")
        default: return ([], "")
        }
    }

    func searchResults(_ results: [[String: String]], next: String, _ endpoint: String, _ snapshot: Snapshot) -> HTTPFaceResponse {
        .json(.ok, endpoint: endpoint, ["results": results, "page": ["next_token": next]], revision: snapshot.revision)
    }

    /// `page.token` ("" for the first page) and `page.limit` (0 for the default page size).
    static func page(_ body: [String: Any]) throws(BadRequest) -> (token: String, limit: UInt32) {
        guard let p = body["page"], !(p is NSNull) else { return ("", 0) }
        guard let o = p as? [String: Any] else { throw BadRequest("page must be an object") }
        var token = ""
        if let t = o["token"], !(t is NSNull) {
            guard let s = t as? String else { throw BadRequest("page.token must be a string") }
            token = s
        }
        var limit: UInt32 = 0
        if let l = o["limit"], !(l is NSNull) {
            guard !(l is String), !(l is Bool), let n = l as? NSNumber, n.doubleValue == n.doubleValue.rounded(),
                  n.doubleValue >= 0, n.doubleValue <= Double(UInt32.max) else {
                throw BadRequest("page.limit must be a non-negative integer")
            }
            limit = n.uint32Value
        }
        return (token, limit)
    }

    // MARK: Parsing helpers

    static func jsonObject(_ body: [UInt8]) throws(BadRequest) -> [String: Any] {
        guard !body.isEmpty else { throw BadRequest("the request body must be a JSON object; it is empty") }
        guard let parsed = try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed]) else {
            throw BadRequest("the request body is not valid JSON")
        }
        guard let o = parsed as? [String: Any] else { throw BadRequest("the request body must be a JSON object") }
        return o
    }

    /// `key` as an entity: `type` (required, a non-empty string), `id` (required when
    /// `needsID`), `properties` (an object when present).
    static func entity(_ body: [String: Any], _ key: String, needsID: Bool) throws(BadRequest) -> (type: String, id: String?, properties: [String: Any]) {
        guard let v = body[key], !(v is NSNull) else { throw BadRequest("\(key) is required") }
        guard let o = v as? [String: Any] else { throw BadRequest("\(key) must be an object") }
        let type = try string(o, "type", in: key)
        let id = needsID ? try string(o, "id", in: key) : nil
        var properties: [String: Any] = [:]
        if let p = o["properties"], !(p is NSNull) {
            guard let po = p as? [String: Any] else { throw BadRequest("\(key).properties must be an object") }
            properties = po
        }
        return (type, id, properties)
    }

    static func string(_ o: [String: Any], _ field: String, in key: String) throws(BadRequest) -> String {
        guard let v = o[field], !(v is NSNull) else { throw BadRequest("\(key).\(field) is required") }
        guard let s = v as? String else { throw BadRequest("\(key).\(field) must be a string") }
        guard !s.isEmpty else { throw BadRequest("\(key).\(field) must not be empty") }
        return s
    }

    static func actionName(_ body: [String: Any]) throws(BadRequest) -> String {
        guard let v = body["action"], !(v is NSNull) else { throw BadRequest("action is required") }
        guard let o = v as? [String: Any] else { throw BadRequest("action must be an object") }
        return try string(o, "name", in: "action")
    }

    /// The resource with its `org`/`owner` properties (other properties are ignored).
    static func resourceRef(_ body: [String: Any], needsID: Bool) throws(BadRequest) -> ResourceRef {
        let e = try entity(body, "resource", needsID: needsID)
        var ref = ResourceRef(type: e.type, id: e.id ?? "")
        for key in ["org", "owner"] {
            guard let v = e.properties[key], !(v is NSNull) else { continue }
            guard let s = v as? String, !s.isEmpty else { throw BadRequest("resource.properties.\(key) must be a non-empty string") }
            if key == "org" { ref.org = s } else { ref.owner = s }
        }
        return ref
    }

    // MARK: Forward-auth

    /// `/forward-auth`: the proxy's subrequest. 200 allows (with `X-PIAM-Subject`,
    /// `X-PIAM-Org`, `X-PIAM-Revision` for the upstream), 403 denies, 401 when the identity
    /// header is missing, 400 when the proxy sent no original URI; `X-PIAM-Reason` says why
    /// (`no_identity`, `no_uri`, `invalid_uri`, `no_route` or a decision's reason).
    ///
    /// Every answer has an empty body (`Content-Length: 0`): an auth subrequest's body is never
    /// read (nginx's `auth_request` keeps an upstream connection only when the answer has no
    /// body, Caddy's and Traefik's Go clients reuse it only once the body is consumed), so an
    /// empty one lets every proxy keep its connections to piamd.
    func forwardAuth(_ request: HTTPFaceRequest, snapshot: Snapshot?, creating: Bool = true) -> HTTPFaceResponse {
        let endpoint = "forward_auth"
        func text(_ status: HTTPResponseStatus, reason: String) -> HTTPFaceResponse {
            var r = HTTPFaceResponse(status, endpoint: endpoint)
            r.headers.add(name: "X-PIAM-Reason", value: reason)
            if let snapshot { r.headers.add(name: Self.revisionHeader, value: String(snapshot.revision)) }
            return r
        }
        let subject = request.headers.first(name: subjectHeader)?.trimmingCharacters(in: .whitespaces) ?? ""
        guard !subject.isEmpty else { return text(.unauthorized, reason: "no_identity") }
        guard let snapshot else { return Self.loading(endpoint) }
        let method = (request.headers.first(name: "X-Original-Method") ?? request.headers.first(name: "X-Forwarded-Method")
            ?? request.method.rawValue).uppercased()
        guard let uri = request.headers.first(name: "X-Original-URI") ?? request.headers.first(name: "X-Forwarded-Uri") else {
            return text(.badRequest, reason: "no_uri")
        }
        guard let segments = ForwardAuthRoute.pathSegments(of: uri) else {
            return text(.forbidden, reason: "invalid_uri")
        }
        guard let (action, resource) = routes.lazy.compactMap({ $0.match(method: method, pathSegments: segments) }).first else {
            if allowUnrouted { return allowed(subject: subject, on: snapshot) }
            return text(.forbidden, reason: "no_route")
        }
        if creating && wantsJIT(subject: subject, on: snapshot) { return Self.creating([subject], endpoint: endpoint) }
        let d = decide(.check(CheckRequest(subject: subject, action: action, resource: resource)), on: snapshot)
        guard d.allowed else { return text(.forbidden, reason: d.reason.name) }
        return allowed(subject: subject, on: snapshot)
    }

    /// 200 with the subject's canonical id and org for the upstream.
    func allowed(subject: String, on snapshot: Snapshot) -> HTTPFaceResponse {
        var r = HTTPFaceResponse(.ok, endpoint: "forward_auth")
        let id = snapshot.graph.userID(for: subject) ?? subject
        r.headers.add(name: "X-PIAM-Subject", value: id)
        if let org = snapshot.graph.location(of: ResourceRef(type: "user", id: id))?.org { r.headers.add(name: "X-PIAM-Org", value: org) }
        r.headers.add(name: Self.revisionHeader, value: String(snapshot.revision))
        return r
    }
}

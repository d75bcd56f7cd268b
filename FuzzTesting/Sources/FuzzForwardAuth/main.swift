// The forward-auth route matcher: an original method, URI and subject (three lines of the
// input) against a route table with literals, parameters, method lists and org/owner
// templates. The answer is 200 (with X-PIAM-Subject and X-PIAM-Revision), 401, 403 (with
// X-PIAM-Reason) or 400 — nothing else; a URI with a dot segment, an encoded slash or bad
// percent-encoding is never allowed; a matching route's check is the engine's own decision.
import Foundation
import FuzzCommon
import NIOHTTP1
import PIAMEngine
@testable import PIAMServer

enum ForwardAuth {
    static let state: GraphState = {
        let s = GraphState {}
        s.publish(Snapshot(graph: FuzzCommon.graph, revision: Int64(FuzzCommon.revision), loadSeconds: 0, cause: "fuzz"))
        return s
    }()
    static let routes: [ForwardAuthRoute] = try! [
        ForwardAuthRoute(methods: ["GET", "HEAD"], path: "/claims/{id}", action: "read", type: "claim", id: "{id}"),
        ForwardAuthRoute(methods: ["POST"], path: "/claims/{id}/{verb}", action: "{verb}", type: "claim", id: "{id}"),
        ForwardAuthRoute(methods: [], path: "/partners/{org}/users/{user}", action: "view", type: "user", id: "{user}"),
        ForwardAuthRoute(methods: ["GET"], path: "/partners/{org}/documents/{doc}", action: "read", type: "document",
                         id: "{doc}", org: "{org}", owner: "{org}-{doc}"),
        ForwardAuthRoute(methods: ["DELETE", "PUT"], path: "/a/{x}/b/{y}", action: "{x}{y}", type: "{y}", id: "{x}/{y}"),
    ]
    static func face(allowUnrouted: Bool) -> HTTPFace {
        var c = DaemonConfig()
        c.forwardAuthRoutes = routes
        c.forwardAuthAllowUnrouted = allowUnrouted
        return HTTPFace(config: c, state: state, metrics: nil)
    }
    static let denying = face(allowUnrouted: false)
    static let allowing = face(allowUnrouted: true)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzForwardAuth(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    var input = FuzzInput(start, count)
    let flags = input.byte()
    let lines = String(decoding: input.rest, as: UTF8.self).split(separator: "\n", maxSplits: 2, omittingEmptySubsequences: false)
    let method = lines.count > 0 ? String(lines[0]) : ""
    let uri = lines.count > 1 ? String(lines[1]) : ""
    let subject = lines.count > 2 ? String(lines[2]) : ""
    var headers = HTTPHeaders()
    // HTTPHeaders takes any string; NIO's parser would refuse control characters on the wire.
    headers.add(name: flags & 1 == 0 ? "X-Original-Method" : "X-Forwarded-Method", value: method)
    if flags & 2 == 0 { headers.add(name: flags & 4 == 0 ? "X-Original-URI" : "X-Forwarded-Uri", value: uri) }
    if flags & 8 == 0 { headers.add(name: "X-Forwarded-User", value: subject) }
    let face = flags & 16 == 0 ? ForwardAuth.denying : ForwardAuth.allowing
    let r = face.respond(to: HTTPFaceRequest(method: .GET, uri: "/forward-auth", headers: headers), snapshot: ForwardAuth.state.snapshot)
    let code = r.status.code
    FuzzCommon.require([200, 400, 401, 403].contains(code), "/forward-auth answered \(code)")
    if code == 200 {
        FuzzCommon.require(r.headers.first(name: "X-PIAM-Subject") != nil && r.headers.first(name: HTTPFace.revisionHeader) != nil,
                           "an allow without X-PIAM-Subject or X-PIAM-Revision")
        // Never allow a path the upstream could read differently.
        // The path ends at the query or the fragment (a crash input had bad percent-encoding after a `#`).
        let path = uri.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "?" || $0 == "#" }).first.map(String.init) ?? ""
        for segment in path.split(separator: "/") {
            let decoded = String(segment).removingPercentEncoding
            FuzzCommon.require(decoded != nil && decoded != "." && decoded != ".." && !(decoded!.contains("/")),
                               "allowed a URI with segment \"\(segment)\": \(uri)")
        }
    }
    if code == 403 { FuzzCommon.require(r.headers.first(name: "X-PIAM-Reason") != nil, "a deny without X-PIAM-Reason") }
    // The first matching route's check decides, exactly as the engine decides it.
    let trimmed = subject.trimmingCharacters(in: .whitespaces)
    if flags & 10 == 0, !trimmed.isEmpty, let segments = ForwardAuthRoute.pathSegments(of: uri) {
        let m = method.uppercased()
        if let (action, resource) = ForwardAuth.routes.lazy.compactMap({ $0.match(method: m, pathSegments: segments) }).first {
            let d = FuzzCommon.graph.check(CheckRequest(subject: trimmed, action: action, resource: resource), now: QueryEvaluator.now())
            FuzzCommon.require(code == (d.allowed ? 200 : 403), "route check \(action) \(resource): \(d), answered \(code)")
            if !d.allowed { FuzzCommon.require(r.headers.first(name: "X-PIAM-Reason") == d.reason.name, "the deny's reason differs") }
        } else {
            FuzzCommon.require(code == (flags & 16 == 0 ? 403 : 200), "no route matched, answered \(code)")
        }
    } else if flags & 8 != 0 || trimmed.isEmpty {
        FuzzCommon.require(code == 401, "no identity, answered \(code)")
    }
    return 0
}

// The AuthZEN decoder behind the HTTP face: any body POSTed to any of the five decision and
// search endpoints is answered 200 with a JSON object (a deny is 200 too) or 400 with
// `{"error": {"code", "message"}}` — never a crash, never another status, never a body that
// is not JSON. The same request asked twice gets the same answer.
import Foundation
import FuzzCommon
import NIOHTTP1
import PIAMEngine
import PIAMServer

enum AuthZEN {
    static let state: GraphState = {
        let s = GraphState {}
        s.publish(Snapshot(graph: FuzzCommon.graph, revision: Int64(FuzzCommon.revision), loadSeconds: 0, cause: "fuzz"))
        return s
    }()
    static let face: HTTPFace = {
        var c = DaemonConfig()
        c.maxList = 3
        return HTTPFace(config: c, state: state, metrics: nil)
    }()
    static let paths = ["/access/v1/evaluation", "/access/v1/evaluations", "/access/v1/search/subject",
                        "/access/v1/search/resource", "/access/v1/search/action"]
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAuthZEN(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    var input = FuzzInput(start, count)
    let path = AuthZEN.paths[Int(input.byte()) % AuthZEN.paths.count]
    let body = input.rest
    let snapshot = AuthZEN.state.snapshot
    let request = HTTPFaceRequest(method: .POST, uri: path, headers: ["Content-Type": "application/json"], body: body)
    let r = AuthZEN.face.respond(to: request, snapshot: snapshot)
    FuzzCommon.require(r.status == .ok || r.status == .badRequest, "\(path) answered \(r.status)")
    let parsed = try? JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any]
    FuzzCommon.require(parsed != nil, "\(path) answered a body that is not a JSON object")
    if r.status == .badRequest {
        let error = parsed?["error"] as? [String: Any]
        FuzzCommon.require(error?["code"] as? String == "invalid_input" && !((error?["message"] as? String) ?? "").isEmpty,
                           "a 400 without its error code and message")
    } else {
        FuzzCommon.require(r.headers.first(name: HTTPFace.revisionHeader) == String(FuzzCommon.revision), "a 200 without X-PIAM-Revision")
    }
    let again = AuthZEN.face.respond(to: request, snapshot: snapshot)
    FuzzCommon.require(again.status == r.status && again.body == r.body, "the same request answered differently")
    return 0
}

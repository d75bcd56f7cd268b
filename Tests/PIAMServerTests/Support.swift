import Foundation
import NIOCore
import PIAMEngine
import PIAMServer
import PIAMWire

let sampleCheck = CheckRequest(subject: "alice", action: "read",
                               resource: ResourceRef(type: "claim", id: "CLM-1", org: "acme", owner: "alice"))
let plainCheck = CheckRequest(subject: "idp|bob", action: "submit", resource: ResourceRef(type: "claim", id: "CLM-2"))

/// One request of every opcode (the same list as the wire codec's tests).
let everyRequest: [Request] = [
    Request(requestID: 1, minRevision: 7, body: .check(sampleCheck)),
    Request(requestID: 2, body: .checkBatch(.denyOnFirstDeny, [sampleCheck, plainCheck])),
    Request(requestID: 3, body: .checkBatch(.executeAll, [])),
    Request(requestID: 4, body: .explain(plainCheck)),
    Request(requestID: 5, body: .listResources(subject: "alice", action: "read", type: "claim", cursor: "c1abcd", limit: 50)),
    Request(requestID: 6, body: .listSubjects(action: "read", resource: sampleCheck.resource, cursor: "", limit: 0)),
    Request(requestID: 7, body: .listActions(subject: "alice", resource: plainCheck.resource)),
    Request(requestID: 8, body: .canAssign(actor: "admin", target: "alice", role: "claims-agent", scope: "")),
    Request(requestID: 9, body: .status),
    Request(requestID: UInt32.max, minRevision: UInt64.max, body: .ping),
    Request(requestID: 10, body: .check(CheckRequest(subject: "ünïcødé ✓", action: "a", resource: ResourceRef(type: "t", id: "😀")))),
]

func frames(_ requests: [Request]) -> ByteBuffer {
    var b = ByteBuffer()
    for r in requests { r.encodeFrame(into: &b) }
    return b
}

/// The configuration suites' loader: a JSON file with `json` and the environment `env`.
protocol ConfigLoading {}

extension ConfigLoading {
    func load(_ json: String, env: [String: String] = [:]) async throws(PIAMError) -> DaemonConfig {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("piamd-\(UUID().uuidString).json").path
        try? json.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        return try await DaemonConfig.load(file: file, environment: env)
    }

    /// The error message loading gives, or "no error".
    func message(_ json: String, env: [String: String] = [:]) async -> String {
        do {
            _ = try await load(json, env: env)
            return "no error"
        } catch {
            return error.message
        }
    }
}

import Foundation
import PIAMAdmin
import PIAMDemo
import PIAMEngine
import PIAMStore
import Testing

/// The real `piam-admind` on a fixture: a Unix socket that trusts the proxy header
/// `X-Forwarded-User`, and a loopback port that does not (bearer credentials only).
final class AdmindProcess: @unchecked Sendable {
    let daemon: DaemonProcess
    let unix: HTTPTarget
    let tcp: HTTPTarget

    init(_ f: Fixture, env: [String: String] = [:], extraArgs: [String] = [], tcpPort: UInt16? = nil) async throws {
        let sock = f.path("admin.sock")
        let port = tcpPort ?? freeLoopbackPort()
        daemon = try await DaemonProcess(
            f, args: ["--db", f.db, "--listen", "unix:" + sock, "--listen", "127.0.0.1:\(port)",
                      "--trusted-header", "X-Forwarded-User"] + extraArgs,
            env: ["PIAM_ADMIND_AUTH_HEADER_LISTENERS": "unix:" + sock].merging(env) { _, b in b },
            executable: builtBinary("piam-admind"), socket: sock, waitForReady: false)
        unix = .unix(sock)
        tcp = .tcp(port: port)
        let d = daemon
        try await waitForHTTP(unix, "/admin/v1/openapi.json", process: d.process, log: { d.log })
        try await waitForHTTP(tcp, "/admin/v1/openapi.json", process: d.process, log: { d.log })
    }

    /// A request as `user` through the trusted header (Unix socket), or with a bearer
    /// credential (loopback port), or with neither.
    func call(_ method: String, _ path: String, as user: String? = nil, bearer: String? = nil, body: Any? = nil,
              headers: [String: String] = [:]) throws -> HTTPReply {
        var h = headers
        if let user { h["X-Forwarded-User"] = user }
        if let bearer { h["Authorization"] = "Bearer \(bearer)" }
        var bytes: [UInt8] = []
        if let body {
            bytes = Array(try JSONSerialization.data(withJSONObject: body))
            h["Content-Type"] = "application/json"
        }
        return try httpRequest(bearer == nil ? unix : tcp, method, path, headers: h, body: bytes)
    }

    /// Performs `op` as `user` through its route (``OperationRoute``): path parameters, query
    /// and body from the operation's apply form.
    func perform(_ op: AdminOperation, as user: String, headers: [String: String] = [:]) throws -> HTTPReply {
        let r = Self.request(for: op)
        return try call(r.method, r.path, as: user, body: r.body, headers: headers)
    }

    static func request(for op: AdminOperation) -> (method: String, path: String, body: [String: Any]?) {
        var form = op.json
        form.removeValue(forKey: "op")
        let route = OperationRoute.all.first { $0.operation == op.name }!
        var path = route.path
        for f in route.pathFields {
            let v = form.removeValue(forKey: f.name).map { "\($0)" } ?? ""
            path = path.replacingOccurrences(of: "{\(f.name)}", with: v.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? v)
        }
        var query: [String] = []
        for f in route.queryFields {
            if let v = form.removeValue(forKey: f.name) { query.append("\(f.name)=\(v as? Bool == true ? "true" : "\(v)")") }
        }
        if !query.isEmpty { path += "?" + query.joined(separator: "&") }
        return (route.method.rawValue, path, route.bodyFields.isEmpty && form.isEmpty ? nil : form)
    }

    func stop() async { await daemon.stop() }
}

extension Fixture {
    /// A fixture holding ``DelegationScenario``'s graph instead of the demo.
    static func delegation() throws -> Fixture {
        let f = try Fixture(demo: false)
        _ = try Store(path: f.db).importJSON(Data(DelegationScenario.document.utf8))
        return f
    }

    /// The newest audit row.
    func lastAudit() throws -> AuditEntry? { try Store(path: db, readOnly: true).auditLog(AuditFilter(limit: 1)).last }
}

import Foundation
import PIAMEngine
import Testing

/// A reverse proxy (nginx or Caddy) run for a test, on Unix sockets in the fixture's directory.
final class ProxyProcess: @unchecked Sendable {
    let process = Process()
    let logPath: String

    init(executable: String, arguments: [String], env: [String: String] = [:], log: String) throws {
        logPath = log
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var e = ProcessInfo.processInfo.environment
        for (k, v) in env { e[k] = v }
        process.environment = e
        let handle = FileHandle(forWritingAtPath: log)!
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// SIGTERM, then waits (5 s, then SIGKILL) without blocking a cooperative thread.
    func stop() async {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        let deadline = ContinuousClock.now + .seconds(5)
        while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

    /// The path of an installed program, or nil.
    static func which(_ name: String) -> String? {
        ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"].map { "\($0)/\(name)" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

/// The people of the demo graph the proxy tests ask about, chosen from the graph itself.
struct ProxyCast {
    let claim: String
    let entitled: String
    let entitledOrg: String
    let otherPartner: String
    let suspendedPartnerUser: String

    init(_ f: Fixture) throws {
        let g = try f.loaded().graph
        let now = QueryEvaluatorClock.now()
        func reads(_ u: String, _ c: String) -> Decision {
            g.check(CheckRequest(subject: u, action: "read", resource: ResourceRef(type: "claim", id: c)), now: now)
        }
        let claim = try #require(g.allResources.first { r in
            r.type == "claim" && g.location(of: ResourceRef(type: "claim", id: r.id)).flatMap { $0.owner.map { reads($0, r.id).allowed } } == true
        }?.id)
        let owner = try #require(g.location(of: ResourceRef(type: "claim", id: claim))?.owner)
        self.claim = claim
        entitled = owner
        entitledOrg = try #require(g.location(of: ResourceRef(type: "user", id: owner))?.org)
        let ownerRoot = g.partnerRoot(ofOrg: entitledOrg)
        // An active admin of another partner, denied for partner isolation.
        otherPartner = try #require(g.allUserIDs.first { u in
            guard let org = g.location(of: ResourceRef(type: "user", id: u))?.org, let root = g.partnerRoot(ofOrg: org) else { return false }
            return root != ownerRoot && u.hasSuffix("-admin") && [.outOfScope, .noPermission].contains(reads(u, claim).reason)
        })
        // A user of a suspended partner: denied org_inactive.
        suspendedPartnerUser = try #require(g.allUserIDs.first { reads($0, claim).reason == .orgInactive })
    }
}

@Suite("Reverse proxies in front of piamd (real nginx and Caddy)", .serialized)
struct ReverseProxyTests {
    /// The proxy's answer for one identity (nil: no identity header at all).
    static func get(_ proxy: HTTPTarget, _ path: String, as user: String?) throws -> HTTPReply {
        try httpRequest(proxy, "GET", path, headers: user.map { ["X-Test-Identity": $0] } ?? [:])
    }

    /// The four cases the issue names, plus an unrouted path, through `proxy`.
    static func exercise(_ proxy: HTTPTarget, _ cast: ProxyCast, revision: Int64) throws {
        let path = "/claims/\(cast.claim)"
        let ok = try get(proxy, path, as: cast.entitled)
        #expect(ok.status == 200, "\(ok)")
        #expect(ok.text.trimmingCharacters(in: .newlines) == "upstream GET \(path) for \(cast.entitled) of \(cast.entitledOrg) at \(revision)", "\(ok)")
        let other = try get(proxy, path, as: cast.otherPartner)
        #expect(other.status == 403, "\(other)")
        #expect(!other.text.contains("upstream"))
        let suspended = try get(proxy, path, as: cast.suspendedPartnerUser)
        #expect(suspended.status == 403, "\(suspended)")
        let anonymous = try get(proxy, path, as: nil)
        #expect(anonymous.status == 401, "\(anonymous)")
        let unrouted = try get(proxy, "/admin/settings", as: cast.entitled)
        #expect(unrouted.status == 403, "\(unrouted)")
        // A client cannot choose its identity: the proxy sets the header piamd reads.
        let spoof = try httpRequest(proxy, "GET", path, headers: ["X-Forwarded-User": cast.entitled])
        #expect(spoof.status == 401, "\(spoof)")
    }

    @Test("nginx auth_request → piamd over a Unix socket: 200 upstream page, 403 other partner, 403 suspended partner, 401 no identity")
    func nginx() async throws {
        let nginx = try #require(ProxyProcess.which("nginx"), "nginx is not installed (apt-get install nginx; .ci/run does)")
        let f = try Fixture()
        let (d, _) = try await startHTTPDaemon(f, env: ["PIAMD_FORWARD_AUTH_ROUTES": testRoutes])
        let cast = try ProxyCast(f)
        let dir = f.path("nginx")
        for sub in ["", "/tmp"] { try FileManager.default.createDirectory(atPath: dir + sub, withIntermediateDirectories: true) }
        let conf = try Self.nginxConf(f, dir: dir,
                                      upstreamReply: "upstream $request_method $request_uri for $http_x_piam_subject of $http_x_piam_org at $http_x_piam_revision")
        #expect(conf.contains("auth_request /_piam_auth;"))
        try conf.write(toFile: dir + "/nginx.conf", atomically: true, encoding: .utf8)
        let proxy = try ProxyProcess(executable: nginx, arguments: ["-p", dir, "-c", dir + "/nginx.conf", "-g", "daemon off;"],
                                     log: dir + "/stderr.log")
        let target = HTTPTarget.unix(dir + "/nginx.sock")
        try await waitForSocket(dir + "/nginx.sock", proxy) { "\(proxy.log) \((try? String(contentsOfFile: dir + "/error.log", encoding: .utf8)) ?? "")" }
        try Self.exercise(target, cast, revision: try f.loaded().revision)
        await proxy.stop()
        await d.stop()
    }

    @Test("Caddy forward_auth → piamd over a Unix socket: the same four answers")
    func caddy() async throws {
        let caddy = try #require(ProxyProcess.which("caddy"), "caddy is not installed (apt-get install caddy; .ci/run does)")
        let f = try Fixture()
        let (d, _) = try await startHTTPDaemon(f, env: ["PIAMD_FORWARD_AUTH_ROUTES": testRoutes])
        let cast = try ProxyCast(f)
        let dir = f.path("caddy")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let caddyfile = try Self.caddyfile(f, dir: dir,
                                           upstreamReply: "upstream {method} {uri} for {header.X-PIAM-Subject} of {header.X-PIAM-Org} at {header.X-PIAM-Revision}")
        #expect(caddyfile.contains("forward_auth"))
        try caddyfile.write(toFile: dir + "/Caddyfile", atomically: true, encoding: .utf8)
        let proxy = try ProxyProcess(executable: caddy, arguments: ["run", "--config", dir + "/Caddyfile", "--adapter", "caddyfile"],
                                     env: ["HOME": dir, "XDG_DATA_HOME": dir + "/data", "XDG_CONFIG_HOME": dir + "/config"],
                                     log: dir + "/caddy.log")
        try await waitForSocket(dir + "/caddy.sock", proxy) { proxy.log }
        try Self.exercise(.unix(dir + "/caddy.sock"), cast, revision: try f.loaded().revision)
        await proxy.stop()
        await d.stop()
    }

    /// An nginx configuration around Config/nginx-piam.conf's server block: test paths (piamd's
    /// HTTP socket of `f`, nginx listening on DIR/nginx.sock), a tiny upstream on
    /// DIR/upstream.sock answering `upstreamReply`, and the identity taken from the test's
    /// X-Test-Identity (standing in for an authentication layer).
    static func nginxConf(_ f: Fixture, dir: String, upstreamReply: String) throws -> String {
        let snippet = try String(contentsOfFile: configDir + "/nginx-piam.conf", encoding: .utf8)
            .replacingOccurrences(of: "/run/piam/http.sock", with: f.path("h.sock"))
            .replacingOccurrences(of: "listen 80;", with: "listen unix:\(dir)/nginx.sock;")
            .replacingOccurrences(of: "$remote_user", with: "$http_x_test_identity")
            .replacingOccurrences(of: "proxy_pass http://127.0.0.1:8080;", with: "proxy_pass http://unix:\(dir)/upstream.sock:;")
        return """
            \(geteuid() == 0 ? "user root;" : "")
            worker_processes 1;
            pid \(dir)/nginx.pid;
            error_log \(dir)/error.log info;
            events { worker_connections 1024; }
            http {
                access_log \(dir)/access.log;
                client_body_temp_path \(dir)/tmp/body; proxy_temp_path \(dir)/tmp/proxy;
                fastcgi_temp_path \(dir)/tmp/fastcgi; uwsgi_temp_path \(dir)/tmp/uwsgi; scgi_temp_path \(dir)/tmp/scgi;
                server {
                    listen unix:\(dir)/upstream.sock;
                    location / { default_type text/plain; return 200 "\(upstreamReply)\\n"; }
                }
            \(snippet)
            }
            """
    }

    /// A Caddyfile around Config/Caddyfile's site: test paths (piamd's HTTP socket of `f`, Caddy
    /// on DIR/caddy.sock), its basicauth taken out, a tiny upstream on DIR/upstream.sock
    /// answering `upstreamReply`, and the identity from the test's X-Test-Identity.
    static func caddyfile(_ f: Fixture, dir: String, upstreamReply: String) throws -> String {
        var site = try String(contentsOfFile: configDir + "/Caddyfile", encoding: .utf8)
        let start = try #require(site.range(of: "app.example.com {"))
        site = String(site[start.lowerBound...])
        let basicauth = try #require(site.range(of: "    basicauth {"))
        let basicauthEnd = try #require(site.range(of: "    }\n", range: basicauth.upperBound..<site.endIndex))
        site.removeSubrange(basicauth.lowerBound..<basicauthEnd.upperBound)
        site = site
            .replacingOccurrences(of: "app.example.com {", with: "http://localhost {\n    bind unix/\(dir)/caddy.sock")
            .replacingOccurrences(of: "unix//run/piam/http.sock", with: "unix/\(f.path("h.sock"))")
            .replacingOccurrences(of: "{http.auth.user.id}", with: "{http.request.header.X-Test-Identity}")
            .replacingOccurrences(of: "reverse_proxy 127.0.0.1:8080", with: "reverse_proxy unix/\(dir)/upstream.sock {\n        header_up Host upstream\n    }")
        return """
            {
                admin off
                auto_https off
                storage file_system \(dir)/data
            }
            http://upstream {
                bind unix/\(dir)/upstream.sock
                respond "\(upstreamReply)"
            }
            \(site)
            """
    }

    static let configDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Config").path

    /// Waits until something accepts connections on `path` (20 s).
    func waitForSocket(_ path: String, _ proxy: ProxyProcess, log: () -> String) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if !proxy.process.isRunning { throw PIAMError(.server, "the proxy exited: \(log())") }
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            let rc = withUnixAddress(path) { connect(fd, $0, $1) }
            close(fd)
            if rc == 0 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw PIAMError(.server, "nothing listens on \(path): \(log())")
    }
}

import Foundation
import PIAMEngine
import Testing

/// Issue 20: proxies keep their connections to piamd, and the HTTP face's fast path answers
/// exactly what the general path answers.
@Suite("Forward-auth at the speed of the proxy: kept connections, the fast path", .serialized)
struct ForwardAuthKeepAliveTests {
    /// `piam_http_connections_accepted_total`, scraped on a connection of its own (counted too).
    static func accepted(_ http: HTTPTarget) throws -> Double {
        try scrapedMetric(http, "piam_http_connections_accepted_total")
    }

    /// `clients` client threads at once, each sending `each` GETs of `path` through `proxy` (a
    /// third of them as `denied`, the rest as `allowed`): how many answers were not the
    /// expected 200 or 403, and how many connections piamd accepted meanwhile.
    static func concurrentLoad(_ proxy: HTTPTarget, _ http: HTTPTarget, path: String, allowed: String, denied: String,
                               clients: Int, each: Int) async throws -> (wrong: Int, opened: Double) {
        let before = try accepted(http)
        // Threads of their own (onThreads): the requests block, and must be in flight together.
        let wrong = try await onThreads(clients, timeout: .seconds(120)) { i in
            (0..<each).reduce(0) { n, k in
                let user = (i + k) % 3 == 0 ? denied : allowed
                let status = (try? ReverseProxyTests.get(proxy, path, as: user))?.status
                return n + (status == (user == allowed ? 200 : 403) ? 0 : 1)
            }
        }.reduce(0, +)
        // The scrape counts its own connection.
        return (wrong, try accepted(http) - before - 1)
    }

    @Test("nginx with the shipped snippet: 300 auth subrequests (allow and deny), then 480 from 32 clients at once, reuse the keepalive pool, not one connection each")
    func nginxKeepsConnections() async throws {
        let nginx = try #require(ProxyProcess.which("nginx"), "nginx is not installed (apt-get install nginx; .ci/run does)")
        let f = try Fixture()
        let (d, http) = try await startHTTPDaemon(f, env: ["PIAMD_FORWARD_AUTH_ROUTES": testRoutes])
        let cast = try ProxyCast(f)
        let dir = f.path("nginx-keepalive")
        for sub in ["", "/tmp"] { try FileManager.default.createDirectory(atPath: dir + sub, withIntermediateDirectories: true) }
        let shipped = try String(contentsOfFile: ReverseProxyTests.configDir + "/nginx-piam.conf", encoding: .utf8)
        let pool = try #require(shipped.firstMatch(of: /keepalive (\d+);/).flatMap { Int($0.1) }, "the snippet sets keepalive N")
        let conf = try ReverseProxyTests.nginxConf(f, dir: dir, upstreamReply: "upstream for $http_x_piam_subject")
        try conf.write(toFile: dir + "/nginx.conf", atomically: true, encoding: .utf8)
        let proxy = try ProxyProcess(executable: nginx, arguments: ["-p", dir, "-c", dir + "/nginx.conf", "-g", "daemon off;"],
                                     log: dir + "/stderr.log")
        try await ReverseProxyTests().waitForSocket(dir + "/nginx.sock", proxy) { proxy.log }
        let target = HTTPTarget.unix(dir + "/nginx.sock")
        let before = try Self.accepted(http)
        let path = "/claims/\(cast.claim)"
        var allowed = 0, denied = 0
        for i in 0..<300 {
            let user = i % 3 == 0 ? cast.otherPartner : cast.entitled
            let r = try ReverseProxyTests.get(target, path, as: user)
            if user == cast.entitled { #expect(r.status == 200, "\(r)"); allowed += r.status == 200 ? 1 : 0 }
            else { #expect(r.status == 403, "\(r)"); denied += r.status == 403 ? 1 : 0 }
        }
        let after = try Self.accepted(http)
        // The scrape after counts its own connection; nginx's requests are sequential, so one
        // pooled connection serves them all — at most the pool in any case.
        let opened = after - before - 1
        #expect(allowed == 200 && denied == 100)
        #expect(opened >= 1 && opened <= Double(pool), "piamd accepted \(Int(opened)) connections for 300 subrequests (keepalive \(pool))")
        // Clients at once: nginx needs a connection per subrequest in flight and keeps them all
        // (up to the pool), so piamd accepts at most the pool, not one per request.
        let load = try await Self.concurrentLoad(target, http, path: path, allowed: cast.entitled, denied: cast.otherPartner, clients: 32, each: 15)
        #expect(load.wrong == 0)
        #expect(load.opened <= Double(pool), "piamd accepted \(Int(load.opened)) connections for 480 subrequests from 32 clients at once (keepalive \(pool))")
        await proxy.stop()
        await d.stop()
    }

    @Test("Caddy with the shipped site: forward_auth reuses its connections to piamd")
    func caddyKeepsConnections() async throws {
        let caddy = try #require(ProxyProcess.which("caddy"), "caddy is not installed (apt-get install caddy; .ci/run does)")
        let f = try Fixture()
        let (d, http) = try await startHTTPDaemon(f, env: ["PIAMD_FORWARD_AUTH_ROUTES": testRoutes])
        let cast = try ProxyCast(f)
        let dir = f.path("caddy-keepalive")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let caddyfile = try ReverseProxyTests.caddyfile(f, dir: dir, upstreamReply: "upstream")
        try caddyfile.write(toFile: dir + "/Caddyfile", atomically: true, encoding: .utf8)
        let proxy = try ProxyProcess(executable: caddy, arguments: ["run", "--config", dir + "/Caddyfile", "--adapter", "caddyfile"],
                                     env: ["HOME": dir, "XDG_DATA_HOME": dir + "/data", "XDG_CONFIG_HOME": dir + "/config"],
                                     log: dir + "/caddy.log")
        try await ReverseProxyTests().waitForSocket(dir + "/caddy.sock", proxy) { proxy.log }
        let target = HTTPTarget.unix(dir + "/caddy.sock")
        let before = try Self.accepted(http)
        for i in 0..<150 {
            let user = i % 3 == 0 ? cast.otherPartner : cast.entitled
            let r = try ReverseProxyTests.get(target, "/claims/\(cast.claim)", as: user)
            #expect(r.status == (user == cast.entitled ? 200 : 403), "\(r)")
        }
        let opened = try Self.accepted(http) - before - 1
        #expect(opened >= 1 && opened <= 4, "piamd accepted \(Int(opened)) connections for 150 forward_auth requests")
        await proxy.stop()
        await d.stop()
    }

    /// Reads `count` whole responses (Content-Length bodies) from a kept connection.
    static func readResponses(_ c: RawConnection, count: Int) -> [HTTPReply] {
        var out: [HTTPReply] = []
        var buffer: [UInt8] = []
        while out.count < count {
            if let end = buffer.firstRange(of: [13, 10, 13, 10] as [UInt8]) {
                let head = String(decoding: buffer[..<end.lowerBound], as: UTF8.self)
                let length = head.components(separatedBy: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                    .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                if buffer.count >= end.upperBound + length {
                    let whole = Array(buffer[..<(end.upperBound + length)])
                    buffer.removeFirst(whole.count)
                    if let r = try? parseHTTPResponse(whole) { out.append(r) }
                    continue
                }
            }
            guard let b = c.readExactly(1) else { break }
            buffer += b
        }
        return out
    }

    @Test("the fast path answers what the general path answers: forward-auth and evaluation, same status, headers and body")
    func fastEqualsGeneral() async throws {
        let f = try Fixture()
        let (d, http) = try await startHTTPDaemon(f, env: ["PIAMD_FORWARD_AUTH_ROUTES": testRoutes])
        let g = try f.loaded().graph
        let cast = try ProxyCast(f)
        // X-PIAM-Min-Revision (even 0) sends a request the general way.
        let general = ["X-PIAM-Min-Revision": "0"]
        func same(_ a: HTTPReply, _ b: HTTPReply, _ what: String) {
            #expect(a.status == b.status, "\(what): \(a) vs \(b)")
            #expect(a.body == b.body, "\(what): \(a.text) vs \(b.text)")
            let names = Set((a.headers + b.headers).map { $0.0.lowercased() })
            for n in names { #expect(a.header(n) == b.header(n), "\(what): header \(n)") }
        }
        let claim = cast.claim
        let uris = ["/claims/\(claim)", "/claims/\(claim)?x=1#y", "/claims/../admin", "/claims/./x", "/nothing", "claims/x",
                    "/partners/acme-brokers-north/reports/R-1", "/partners/acme-brokers-north/users/acme-brokers-north-b1-agent1",
                    "/claims/\(claim)/withdraw", "//claims//\(claim)//", "/claims/%43LM"]
        let users = [cast.entitled, cast.otherPartner, cast.suspendedPartnerUser, "okta|carl", "nobody", "", "  \(cast.entitled)\t"]
        for uri in uris {
            for user in users {
                for (method, style) in [("GET", "X-Original"), ("POST", "X-Forwarded"), ("get", "X-Original")] {
                    var h = ["\(style)-Method": method, style == "X-Original" ? "X-Original-URI" : "X-Forwarded-Uri": uri, "X-Request-ID": "r1"]
                    if !user.isEmpty { h["X-Forwarded-User"] = user }
                    let fast = try httpRequest(http, "GET", "/forward-auth", headers: h)
                    let slow = try httpRequest(http, "GET", "/forward-auth", headers: h.merging(general) { a, _ in a })
                    same(fast, slow, "forward-auth \(method) \(uri) as \(user)")
                    #expect(fast.body.isEmpty && fast.header("Content-Length") == "0", "no body: proxies keep the connection")
                }
            }
        }
        let noURI = try httpRequest(http, "HEAD", "/forward-auth", headers: ["X-Forwarded-User": cast.entitled])
        same(noURI, try httpRequest(http, "HEAD", "/forward-auth", headers: ["X-Forwarded-User": cast.entitled].merging(general) { a, _ in a }), "no uri")
        // Evaluations: the engine's answers, details, odd but valid JSON, and bodies the fast path declines.
        var bodies: [String] = []
        for c in randomChecks(g, count: 40, seed: 20) {
            bodies.append(#"{"subject":{"type":"user","id":"\#(c.subject)"},"action":{"name":"\#(c.action)"},"resource":{"type":"\#(c.resource.type)","id":"\#(c.resource.id)"}}"#)
        }
        bodies += [
            #"{"subject":{"type":"user","id":"\#(cast.entitled)"},"action":{"name":"read"},"resource":{"type":"claim","id":"\#(claim)"},"context":{"piam_details":true}}"#,
            #" { "context" : { "piam_details" : false, "x": [1, -2.5e3, "a\"b", {"k": true}] }, "resource":{"id":"EXT-1","type":"claim","properties":{"org":"hq-claims","other":[]}}, "action":{"name":"read","properties":{}}, "subject":{"type":"identity","id":"okta|carl","properties":{}}, "extra": 0 } "#,
            #"{"subject":{"type":"service","id":"carl.claims"},"action":{"name":"read"},"resource":{"type":"claim","id":"CLM-HQ-0001"},"context":{"piam_details":true}}"#,
            #"{"subject":{"type":"user","id":"carl.claims"},"action":{"name":"read"},"resource":{"type":"claim","id":"CLM-HQ-0001"},"context":{"piam_details":true}}"#,
            #"{"subject":{"type":"user","id":"carl\u002eclaims"},"action":{"name":"read"},"resource":{"type":"claim","id":"CLM-HQ-0001"}}"#,
            #"{"subject":{"type":"user","id":"carl.claims"},"action":{"name":"read"},"resource":{"type":"claim","id":"CLM-HQ-0001"},"subject":{"type":"user","id":"x"}}"#,
            #"{"subject":{"type":"user","id":""},"action":{"name":"read"},"resource":{"type":"claim","id":"C"}}"#,
            #"{"subject":{"type":"user","id":"a"},"action":{"name":"read"},"resource":{"type":"claim","id":"C","properties":{"org":5}}}"#,
            #"{"subject":{"type":"user","id":"a"},"action":null,"resource":{"type":"claim","id":"C"}}"#,
            #"{"subject":{"type":"user","id":"a"},"action":{"name":"read"},"resource":{"type":"claim","id":"C"},"context":"x"}"#,
            #"{"subject":{"type":"user","id":"a"}"#, "[1]", "",
        ]
        for body in bodies {
            let b = Array(body.utf8)
            let fast = try httpRequest(http, "POST", "/access/v1/evaluation", headers: ["Content-Type": "application/json", "X-Request-ID": "e"], body: b)
            let slow = try httpRequest(http, "POST", "/access/v1/evaluation", headers: ["Content-Type": "application/json", "X-Request-ID": "e"].merging(general) { a, _ in a }, body: b)
            same(fast, slow, "evaluation \(body)")
        }
        await d.stop()
    }

    @Test("one kept connection, requests pipelined in one write across both paths: every answer, in order")
    func pipelinedAcrossPaths() async throws {
        let f = try Fixture()
        let (d, http) = try await startHTTPDaemon(f, env: ["PIAMD_FORWARD_AUTH_ROUTES": testRoutes])
        guard case .unix(let path) = http else { return }
        let cast = try ProxyCast(f)
        let fa = "GET /forward-auth HTTP/1.1\r\nHost: x\r\nX-Forwarded-User: \(cast.entitled)\r\nX-Original-URI: /claims/\(cast.claim)\r\n"
        let body = #"{"subject":{"type":"user","id":"\#(cast.otherPartner)"},"action":{"name":"read"},"resource":{"type":"claim","id":"\#(cast.claim)"}}"#
        let ev = "POST /access/v1/evaluation HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
        var requests: [(String, Int, String)] = []  // (bytes, status, X-Request-ID)
        for i in 0..<40 {
            switch i % 5 {
            case 0: requests.append((fa + "X-Request-ID: \(i)\r\n\r\n", 200, "\(i)"))
            case 1: requests.append((ev + "X-Request-ID: \(i)\r\n\r\n" + body, 200, "\(i)"))
            case 2: requests.append(("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-ID: \(i)\r\n\r\n", 200, "\(i)"))
            case 3: requests.append((fa + "X-PIAM-Min-Revision: 1\r\nX-Request-ID: \(i)\r\n\r\n", 200, "\(i)"))
            default: requests.append(("GET /forward-auth HTTP/1.1\r\nHost: x\r\nX-Original-URI: /claims/x\r\nX-Request-ID: \(i)\r\n\r\n", 401, "\(i)"))
            }
        }
        let all = Array(requests.map(\.0).joined().utf8), expected = requests.count
        let replies = try await offPool { () throws -> [HTTPReply] in
            let c = try RawConnection(path: path)
            // Split the bytes at odd places: requests straddle reads.
            var at = 0
            for size in [7, 300, 1, 4000, 13, all.count] where at < all.count {
                let end = min(all.count, at + size)
                c.send(Array(all[at..<end]))
                at = end
            }
            return Self.readResponses(c, count: expected)
        }
        #expect(replies.count == requests.count)
        for (r, want) in zip(replies, requests) {
            #expect(r.status == want.1 && r.header("X-Request-ID") == want.2, "\(want.2): \(r)")
        }
        #expect(replies.filter { $0.header("X-Request-ID").map { Int($0)! % 5 == 1 } == true }.allSatisfy { $0.json?["decision"] as? Bool == false })
        #expect(await d.stop() == 0)
    }
}

import Foundation
import PIAMEngine
@testable import PIAMServer
import Testing

@Suite("HTTP face configuration: http.*, forward_auth.* and the route table")
struct HTTPConfigTests: ConfigLoading {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test("Config/piamd.json documents every key and loads")
    func documentedFile() async throws {
        let path = Self.repo.appendingPathComponent("Config/piamd.json").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let root = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        for (key, _) in DaemonConfig.keys {
            let parts = key.split(separator: ".").map(String.init)
            let section = root[parts[0]] as? [String: Any]
            #expect(section?.keys.contains(parts[1]) == true, "Config/piamd.json lacks \(key)")
        }
        let c = try await DaemonConfig.load(file: path, environment: [:])
        #expect(c.httpListen == nil && c.forwardAuthRoutes.count == 4 && !c.forwardAuthAllowUnrouted)
        #expect(c.forwardAuthSubjectHeader == "X-Forwarded-User")
    }

    @Test("http.* keys: listen addresses, socket mode, public URL; the environment overrides")
    func httpKeys() async throws {
        let c = try await load(#"{"http": {"listen": "unix:/run/piam/http.sock", "socket_mode": "0666", "public_url": "https://pdp.example/", "max_body_bytes": 2048}}"#)
        #expect(c.httpListen == "unix:/run/piam/http.sock" && c.httpSocketMode == 0o666 && c.httpMaxBodyBytes == 2048)
        #expect(c.httpPublicURL == "https://pdp.example")
        // The face's own loops: half the cores by default (at least one), or as configured.
        #expect(c.httpThreads == 0 && c.httpThreadsInEffect == max(1, ProcessInfo.processInfo.activeProcessorCount / 2))
        let threaded = try await load(#"{"http": {"threads": 3}}"#)
        #expect(threaded.httpThreads == 3 && threaded.httpThreadsInEffect == 3)
        #expect(await message(#"{"http": {"threads": -1}}"#).contains("http.threads"))
        let e = try await load("{}", env: ["PIAMD_HTTP_LISTEN": "[::1]:8181"])
        #expect(try HTTPListenAddress(parsing: e.httpListen!) == .tcp(host: "::1", port: 8181))
        #expect(try HTTPListenAddress(parsing: "127.0.0.1:0") == .tcp(host: "127.0.0.1", port: 0))
        #expect(try HTTPListenAddress(parsing: "localhost:80") == .tcp(host: "localhost", port: 80))
        #expect(await message(#"{"http": {"listen": "0.0.0.0:8181"}}"#).contains("not a loopback address"))
        #expect(await message(#"{"http": {"listen": "10.1.2.3:80"}}"#).contains("not a loopback address"))
        #expect(await message(#"{"http": {"listen": "unix:run/http.sock"}}"#).contains("must be absolute"))
        #expect(await message(#"{"http": {"listen": "somewhere"}}"#).contains("neither unix:/path nor HOST:PORT"))
        #expect(await message(#"{"http": {"listen": "127.0.0.1:99999"}}"#).contains("neither"))
        #expect(await message(#"{"http": {"socket_mode": "rwx"}}"#).contains("http.socket_mode"))
        #expect(await message(#"{"http": {"public_url": "pdp.example"}}"#).contains("http.public_url"))
        #expect(await message(#"{"http": {"max_body_bytes": 0}}"#).contains("http.max_body_bytes"))
        #expect(await message(#"{"http": {"lisen": "unix:/x"}}"#).contains("unknown key http.lisen"))
        #expect(await message(#"{"forward_auth": {"no_route": "maybe"}}"#).contains("forward_auth.no_route"))
        #expect(await message(#"{"forward_auth": {"subject_header": "X User"}}"#).contains("forward_auth.subject_header"))
    }

    @Test("jit.* keys: off unless jit.admind is set; its address forms; a token file is required with it")
    func jitKeys() async throws {
        let off = try await load("{}")
        #expect(off.jitAdmind == nil && off.jitTimeoutMS == 2000 && off.jitMaxInFlight == 8)
        let c = try await load(#"{"jit": {"admind": "unix:/run/piam-admin/admin.sock", "token_file": "/etc/piam/jit.token", "timeout_ms": 500, "max_in_flight": 3}}"#)
        #expect(c.jitAdmind == "unix:/run/piam-admin/admin.sock" && c.jitTokenFile == "/etc/piam/jit.token" && c.jitTimeoutMS == 500 && c.jitMaxInFlight == 3)
        let e = try await load("{}", env: ["PIAMD_JIT_ADMIND": "http://127.0.0.1:8081", "PIAMD_JIT_TOKEN_FILE": "/t"])
        #expect(try JITAddress(parsing: e.jitAdmind!) == .tcp(host: "127.0.0.1", port: 8081))
        #expect(try JITAddress(parsing: "/run/a.sock") == .unix("/run/a.sock"))
        #expect(try JITAddress(parsing: "http://[::1]:9/") == .tcp(host: "::1", port: 9))
        #expect(await message(#"{"jit": {"admind": "http://127.0.0.1:8081"}}"#).contains("jit.token_file"))
        #expect(await message(#"{"jit": {"admind": "127.0.0.1:8081", "token_file": "/t"}}"#).contains("jit.admind"))
        #expect(await message(#"{"jit": {"admind": "unix:relative.sock", "token_file": "/t"}}"#).contains("absolute"))
        #expect(await message(#"{"jit": {"admind": "/a.sock", "token_file": "/t", "max_in_flight": 0}}"#).contains("jit.max_in_flight"))
    }

    @Test("route table: validated with the failing entry and field named")
    func routeErrors() async throws {
        func routes(_ list: String) async -> String { await message(#"{"forward_auth": {"routes": \#(list)}}"#) }
        #expect(await routes(#"[{"path": "/a/{id}", "action": "read", "type": "claim", "id": "{id}"}]"#) == "no error")
        #expect(await routes(#"[{"path": "a/{id}", "action": "read", "type": "claim", "id": "{id}"}]"#).contains("routes[0].path"))
        #expect(await routes(#"[{"path": "/a", "action": "read", "type": "claim", "id": "{id}"}]"#).contains("routes[0].id: {id} is not a parameter"))
        #expect(await routes(#"[{"path": "/a/x{id}", "action": "read", "type": "claim", "id": "x"}]"#).contains("whole segment"))
        #expect(await routes(#"[{"path": "/a/{id}/{id}", "action": "read", "type": "claim", "id": "{id}"}]"#).contains("twice"))
        #expect(await routes(#"[{"path": "/a", "type": "claim", "id": "x"}]"#).contains("routes[0].action: required"))
        #expect(await routes(#"[{"path": "/a", "action": "read", "type": "claim", "id": "x", "verb": "GET"}]"#).contains("unknown key verb"))
        #expect(await routes(#"[{"method": "G3T", "path": "/a", "action": "read", "type": "claim", "id": "x"}]"#).contains("not an HTTP method"))
        #expect(await routes(#"[{"path": "/a", "action": "", "type": "claim", "id": "x"}]"#).contains("must not be empty"))
        #expect(await routes(#"[7]"#).contains("list of objects"))
        #expect(await message("{}", env: ["PIAMD_FORWARD_AUTH_ROUTES": "not json"]).contains("PIAMD_FORWARD_AUTH_ROUTES"))
        let env = try await load("{}", env: ["PIAMD_FORWARD_AUTH_ROUTES": #"[{"path": "/b/{x}", "action": "a", "type": "t", "id": "{x}"}]"#])
        #expect(env.forwardAuthRoutes.map(\.path) == ["/b/{x}"])
    }

    @Test("route matching: methods, templates, percent-decoding; unsafe URIs never match")
    func matching() throws {
        let r = try ForwardAuthRoute(methods: ["get", "HEAD"], path: "/partners/{org}/claims/{id}", action: "read",
                                     type: "claim", id: "{id}", org: "{org}")
        let m = r.match(method: "GET", pathSegments: ForwardAuthRoute.pathSegments(of: "/partners/acme/claims/C%201?x=1")!)
        #expect(m?.action == "read" && m?.resource == ResourceRef(type: "claim", id: "C 1", org: "acme"))
        #expect(r.match(method: "POST", pathSegments: ["partners", "acme", "claims", "C"]) == nil)
        #expect(r.match(method: "GET", pathSegments: ["partners", "acme", "claims"]) == nil)
        #expect(r.match(method: "GET", pathSegments: ["partner", "acme", "claims", "C"]) == nil)
        let any = try ForwardAuthRoute(methods: ["*"], path: "/x", action: "a", type: "t", id: "i")
        #expect(any.match(method: "PATCH", pathSegments: ["x"]) != nil)
        // The path ends at `#` as at `?`: what follows is never matched nor judged (FuzzForwardAuth's
        // input Corpus/FuzzForwardAuth/regression-fragment-after-bad-percent).
        #expect(ForwardAuthRoute.pathSegments(of: "/claims/CLM-1#/x/%Lg/..") == ["claims", "CLM-1"])
        #expect(ForwardAuthRoute.pathSegments(of: "/claims/%Lg#ok") == nil)
        #expect(ForwardAuthRoute.pathSegments(of: "/a//b/") == ["a", "b"])
        for bad in ["/a/../b", "/a/./b", "/a/%2e%2e/b", "/a/b%2Fc", "/a/%zz", "a/b", "http://x/a"] {
            #expect(ForwardAuthRoute.pathSegments(of: bad) == nil, "\(bad)")
        }
    }
}

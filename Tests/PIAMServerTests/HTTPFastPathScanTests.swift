import PIAMEngine
@testable import PIAMServer
import Testing

@Suite("HTTPRequestScan: what the fast path leaves to the general path")
struct HTTPFastPathScanTests {
    static func scan(_ text: String) -> HTTPRequestScan.Request? {
        var c = DaemonConfig()
        c.forwardAuthRoutes = [try! ForwardAuthRoute(methods: ["GET"], path: "/claims/{id}", action: "read", type: "claim", id: "{id}")]
        let state = GraphState {}
        let face = HTTPFace(config: c, state: state, metrics: nil)
        let config = HTTPFastPathConfig(face: face, state: state, metrics: nil, maxBodyBytes: c.httpMaxBodyBytes)
        let bytes = Array(text.utf8)
        guard case .request(let r) = bytes.withUnsafeBytes({ HTTPRequestScan.scan($0, config: config) }) else { return nil }
        return r
    }

    /// FuzzHTTPFastPath: `X-Original-Method:GET ` — NIO keeps the trailing space, the general path
    /// matched no route (403 no_route) while the fast path trimmed it and allowed (200).
    @Test("a header value with trailing whitespace goes the general way (FuzzTesting regression)")
    func trailingWhitespace() throws {
        let head = "GET /forward-auth HTTP/1.1\r\nX-Forwarded-User: alice\r\nX-Original-URI: /claims/CLM-1\r\n"
        let plain = try #require(Self.scan(head + "X-Original-Method:GET\r\n\r\n"))
        #expect(!plain.slowOnly && plain.endpoint == .forwardAuth)
        // Leading whitespace is not part of the value for NIO either.
        #expect(try #require(Self.scan(head + "X-Original-Method: \tGET\r\n\r\n")).slowOnly == false)
        for line in ["X-Original-Method:GET \r\n", "X-Original-Method: GET\t\r\n", "X-Request-ID: r1 \r\n", "X-Original-URI: /claims/CLM-1 \r\n"] {
            #expect(try #require(Self.scan(head + line + "\r\n")).slowOnly, "\(line)")
        }
    }
}

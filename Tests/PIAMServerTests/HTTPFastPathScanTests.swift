import Logging
import NIOCore
import NIOEmbedded
import PIAMEngine
@testable import PIAMServer
import Testing

/// Stands for NIO's HTTP pipeline behind the fast path: records what it is handed, answers the
/// first request at once (as `HTTPFaceHandler` does) and, that answer being `Connection: close`,
/// closes.
final class ClosingGeneralPath: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let link: HTTPSlowPathLink
    var received: [UInt8] = []
    init(link: HTTPSlowPathLink) { self.link = link }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += unwrapInboundIn(data).readableBytesView
        if link.owed > 0 {
            link.owed -= 1
            context.close(promise: nil)
        }
    }
}

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

    /// FuzzHTTPFastPath: an HTTP/1.0 request (NIO answers it and closes) followed, in the same
    /// read, by forward-auth requests: the fast path answered those after the connection closed —
    /// after a `Connection: close` answer, on a socket slower to take it.
    @Test("after a request NIO answers with Connection: close, the rest is NIO's (FuzzTesting regression)")
    func closeHandedOver() throws {
        var c = DaemonConfig()
        c.forwardAuthRoutes = [try ForwardAuthRoute(methods: ["GET"], path: "/claims/{id}", action: "read", type: "claim", id: "{id}")]
        let state = GraphState {}
        state.publish(Snapshot(graph: try tinyGraph(), revision: 10, loadSeconds: 0, cause: "test"))
        let face = HTTPFace(config: c, state: state, metrics: nil)
        let config = HTTPFastPathConfig(face: face, state: state, metrics: nil, maxBodyBytes: c.httpMaxBodyBytes)
        let forward = "GET /forward-auth HTTP/1.1\r\nX-Forwarded-User: alice\r\nX-Original-URI: /claims/CLM-1\r\n\r\n"
        for first in ["GET /forward-auth HTTP/1.0\r\nX-Forwarded-User: alice\r\nX-Original-URI: /claims/CLM-1\r\n\r\n",
                      "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n"] {
            let channel = EmbeddedChannel()
            let connectionGuard = ConnectionGuard(idleTimeout: .seconds(300), frameTimeout: .seconds(10), face: "http",
                                                  log: RateLimitedLog(logger: Logger(label: "test")), timeoutAnswer: { _ in nil })
            let link = HTTPSlowPathLink()
            let general = ClosingGeneralPath(link: link)
            try channel.pipeline.syncOperations.addHandler(connectionGuard)
            try channel.pipeline.syncOperations.addHandler(HTTPFastPath(config: config, connectionGuard: connectionGuard, link: link))
            try channel.pipeline.syncOperations.addHandler(general)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            let input = first + forward + forward
            channel.pipeline.fireChannelRead(ByteBuffer(string: input))
            channel.pipeline.fireChannelReadComplete()
            #expect(general.received == Array(input.utf8), "\(first)")
            #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
            _ = try? channel.finish(acceptAlreadyClosed: true)
        }
    }
}

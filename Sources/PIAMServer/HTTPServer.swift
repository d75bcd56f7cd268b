import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import PIAMEngine
import ServiceLifecycle

/// The HTTP/1.1 listener of the HTTP face (``HTTPFace``) on `http.listen`: a Unix socket or a
/// loopback TCP port. It listens from the start — `/healthz` answers 503 while the first graph
/// loads — and answers from the same snapshots as the binary socket. A request carrying
/// `X-PIAM-Min-Revision` waits (up to `consistency.timeout_ms`, without blocking its event
/// loop) for the graph to reach that revision, else gets 503. On graceful shutdown it stops
/// accepting, finishes the responses in progress and closes.
public final class HTTPServer: Service, Sendable {
    private let config: DaemonConfig
    private let address: HTTPListenAddress
    private let face: HTTPFace
    private let state: GraphState
    private let metrics: ServerMetrics
    private let logger: Logger
    private let group: any EventLoopGroup
    private let connections: OpenConnections
    private let boundPromise: EventLoopPromise<String>

    /// - Throws: a `PIAMError` when `config.httpListen` is absent or not a valid address.
    public init(config: DaemonConfig, state: GraphState, metrics: ServerMetrics, logger: Logger, group: any EventLoopGroup) throws(PIAMError) {
        guard let listen = config.httpListen else { throw PIAMError(.invalidInput, "http.listen is not set") }
        self.config = config
        self.address = try HTTPListenAddress(parsing: listen)
        self.face = HTTPFace(config: config, state: state, metrics: metrics)
        self.state = state
        self.metrics = metrics
        connections = OpenConnections { [metrics] in metrics.httpConnections.wrappingAdd($0, ordering: .relaxed).newValue }
        self.logger = logger
        self.group = group
        self.boundPromise = group.next().makePromise()
    }

    /// Where the face listens, once bound (`unix:/path` or `HOST:PORT` with the real port).
    public func boundAddress() async throws -> String { try await boundPromise.futureResult.get() }

    public func run() async throws {
        let channel: any Channel
        do {
            channel = try await bind()
        } catch {
            boundPromise.fail(error)
            throw error
        }
        let bound: String
        switch address {
        case .unix: bound = address.description
        case .tcp(let host, _):
            let port = channel.localAddress?.port ?? 0
            bound = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
        boundPromise.succeed(bound)
        logger.notice("http listening", metadata: ["http": "\(bound)"])
        await withGracefulShutdownHandler {
            try? await channel.closeFuture.get()
        } onGracefulShutdown: {
            channel.close(promise: nil)
        }
        await drainConnections()
        if case .unix(let path) = address { unlink(path) }
        logger.notice("http stopped")
    }

    private func bind() async throws -> any Channel {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 512)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in self.initialize(channel) }
        switch address {
        case .unix(let path):
            try SocketServer.refuseIfServed(path)
            let dir = (path as NSString).deletingLastPathComponent
            if !dir.isEmpty && !FileManager.default.fileExists(atPath: dir) {
                throw PIAMError(.io, "http.listen: directory \(dir) does not exist")
            }
            let channel: any Channel
            do {
                channel = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
            } catch {
                throw PIAMError(.io, "cannot listen on unix:\(path): \(error)")
            }
            try SocketServer.applyOwnership(path, mode: config.httpSocketMode, owner: nil, group: config.httpSocketGroup)
            return channel
        case .tcp(let host, let port):
            do {
                return try await bootstrap.bind(host: host, port: port).get()
            } catch {
                throw PIAMError(.io, "cannot listen on \(address): \(error)")
            }
        }
    }

    private func initialize(_ channel: any Channel) -> EventLoopFuture<Void> {
        if connections.opened(channel) > config.maxConnections {
            logger.warning("http connection refused: limits.max_connections reached", metadata: ["max_connections": "\(config.maxConnections)"])
            return channel.close()
        }
        connections.admit(channel)
        return channel.eventLoop.makeCompletedFuture {
            let sync = channel.pipeline.syncOperations
            try sync.configureHTTPServerPipeline(withErrorHandling: true)
            try sync.addHandler(IdleStateHandler(allTimeout: .milliseconds(Int64(config.idleTimeoutMS))))
            try sync.addHandler(HTTPFaceHandler(
                face: face, state: state, metrics: metrics, maxBodyBytes: config.httpMaxBodyBytes,
                consistencyTimeout: .milliseconds(Int64(config.consistencyTimeoutMS)), logger: logger))
        }
    }

    /// Tells every connection to finish its response and close, then waits (bounded).
    private func drainConnections() async {
        await connections.drain(consistencyTimeoutMS: config.consistencyTimeoutMS)
    }
}

/// One HTTP connection: collects each request (body bounded by `http.max_body_bytes`), waits
/// for its `X-PIAM-Min-Revision` if it has one, answers it through ``HTTPFace``, and echoes
/// `X-Request-ID`. NIO's pipelining handler hands it one request at a time.
final class HTTPFaceHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let face: HTTPFace
    private let state: GraphState
    private let metrics: ServerMetrics
    private let maxBodyBytes: Int
    private let consistencyTimeout: TimeAmount
    private let logger: Logger
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var tooLarge = false
    /// A request is read and not yet answered.
    private var busy = false
    private var closing = false

    init(face: HTTPFace, state: GraphState, metrics: ServerMetrics, maxBodyBytes: Int, consistencyTimeout: TimeAmount, logger: Logger) {
        self.face = face
        self.state = state
        self.metrics = metrics
        self.maxBodyBytes = maxBodyBytes
        self.consistencyTimeout = consistencyTimeout
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body = []
            tooLarge = false
            busy = true
        case .body(let buffer):
            guard !tooLarge else { return }
            if body.count + buffer.readableBytes > maxBodyBytes {
                tooLarge = true
                body = []
            } else {
                body.append(contentsOf: buffer.readableBytesView)
            }
        case .end:
            guard let head else { return }
            self.head = nil
            handle(head, context: context)
        }
    }

    private func handle(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        if tooLarge {
            closing = true
            write(.error(.payloadTooLarge, endpoint: "other", code: .invalidInput,
                         "the request body exceeds http.max_body_bytes (\(maxBodyBytes))"), for: head, context: context)
            return
        }
        let request = HTTPFaceRequest(method: head.method, uri: head.uri, headers: head.headers, body: body)
        body = []
        var minRevision: Int64 = 0
        if let text = head.headers.first(name: HTTPFace.minRevisionHeader) {
            guard let n = Int64(text.trimmingCharacters(in: .whitespaces)), n >= 0 else {
                write(.error(.badRequest, endpoint: "other", code: .invalidInput,
                             "\(HTTPFace.minRevisionHeader) must be a non-negative integer"), for: head, context: context)
                return
            }
            minRevision = n
        }
        let snapshot = state.snapshot
        if minRevision == 0 || (snapshot?.revision ?? -1) >= minRevision {
            write(face.respond(to: request, snapshot: snapshot), for: head, context: context)
            return
        }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let timeout = consistencyTimeout
        let wanted = minRevision
        state.whenRevision(atLeast: minRevision, timeout: timeout, on: context.eventLoop) { snap in
            let (handler, context) = loopBound.value
            guard let snap else {
                let have = handler.state.snapshot?.revision ?? 0
                var r = HTTPFaceResponse.error(.serviceUnavailable, endpoint: "other", code: .stale,
                    "revision \(wanted) not reached within \(timeout.nanoseconds / 1_000_000) ms; the graph is at revision \(have)")
                r.headers.add(name: HTTPFace.revisionHeader, value: String(have))
                handler.write(r, for: head, context: context)
                return
            }
            handler.write(handler.face.respond(to: request, snapshot: snap), for: head, context: context)
        }
    }

    private func write(_ response: HTTPFaceResponse, for head: HTTPRequestHead, context: ChannelHandlerContext) {
        busy = false
        guard context.channel.isActive else { return }
        var headers = response.headers
        if let id = head.headers.first(name: "X-Request-ID") { headers.replaceOrAdd(name: "X-Request-ID", value: id) }
        headers.replaceOrAdd(name: "Content-Length", value: String(response.body.count))
        let keepAlive = head.isKeepAlive && !closing
        if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        let out = HTTPResponseHead(version: head.version, status: response.status, headers: headers)
        context.write(wrapOutboundOut(.head(out)), promise: nil)
        if head.method != .HEAD && !response.body.isEmpty {
            var buffer = context.channel.allocator.buffer(capacity: response.body.count)
            buffer.writeBytes(response.body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        metrics.recordHTTP(endpoint: response.endpoint, code: Int(response.status.code))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ServerShutdownEvent {
            closing = true
            if !busy { context.close(promise: nil) }
            return
        }
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .all {
            if !busy { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("http connection error; closing", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension HTTPFaceHandler: Sendable {}

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
    private let logger: Logger
    private let listener: Listener
    private let boundPromise: EventLoopPromise<String>

    /// - Throws: a `PIAMError` when `config.httpListen` is absent or not a valid address.
    public init(config: DaemonConfig, state: GraphState, metrics: ServerMetrics, logger: Logger, group: any EventLoopGroup) throws(PIAMError) {
        guard let listen = config.httpListen else { throw PIAMError(.invalidInput, "http.listen is not set") }
        self.config = config
        self.address = try HTTPListenAddress(parsing: listen)
        self.logger = logger
        let face = HTTPFace(config: config, state: state, metrics: metrics)
        let maxBody = config.httpMaxBodyBytes, frameTimeoutMS = config.frameTimeoutMS
        let fast = HTTPFastPathConfig(face: face, state: state, metrics: metrics, maxBodyBytes: maxBody)
        let consistencyTimeout = TimeAmount.milliseconds(Int64(config.consistencyTimeoutMS))
        let jit = config.jitAdmind == nil ? nil : try JITProvisioner(config: config, metrics: metrics, logger: logger, group: group)
        self.listener = Listener(config: config, face: Listener.Face(
            name: "http", usesAllowlist: false,
            initialize: { channel, connectionGuard in
                let sync = channel.pipeline.syncOperations
                let link = HTTPSlowPathLink()
                try sync.addHandler(HTTPFastPath(config: fast, connectionGuard: connectionGuard, link: link))
                try sync.configureHTTPServerPipeline(withErrorHandling: true)
                try sync.addHandler(HTTPFaceHandler(
                    face: face, state: state, metrics: metrics, maxBodyBytes: maxBody,
                    consistencyTimeout: consistencyTimeout, connectionGuard: connectionGuard, link: link, logger: logger, jit: jit))
            },
            refusal: { refusal, allocator in
                switch refusal {
                case .full(let max):
                    Self.rawResponse(503, "Service Unavailable", code: .unavailable,
                                     "too many connections (limits.max_connections = \(max))", allocator)
                case .perUID(let uid, let max):
                    Self.rawResponse(503, "Service Unavailable", code: .unavailable,
                                     "too many connections from uid \(uid) (limits.max_connections_per_uid = \(max))", allocator)
                case .peer: nil
                }
            },
            timeoutAnswer: { allocator in
                Self.rawResponse(408, "Request Timeout", code: .invalidInput,
                                 "request not completed within limits.frame_timeout_ms (\(frameTimeoutMS) ms)", allocator)
            },
            count: { [metrics] in
                metrics.httpConnections.wrappingAdd($0, ordering: .relaxed)
                if $0 > 0 { metrics.acceptedHTTPConnection() }
            }
        ), logger: logger, group: group)
        self.boundPromise = group.next().makePromise()
    }

    /// A whole `Connection: close` response with a JSON error body, for the listener to write
    /// before any HTTP handler runs (a refused connection) or instead of it (a timed-out request).
    static func rawResponse(_ status: Int, _ reason: String, code: PIAMError.Code, _ message: String,
                            _ allocator: ByteBufferAllocator) -> ByteBuffer {
        let body = (try? JSONSerialization.data(withJSONObject: ["error": ["code": code.rawValue, "message": message]],
                                                options: [.sortedKeys])) ?? Data()
        var b = allocator.buffer(capacity: 160 + body.count)
        b.writeString("HTTP/1.1 \(status) \(reason)\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n")
        if status == 503 { b.writeString("Retry-After: 1\r\n") }
        b.writeString("Connection: close\r\n\r\n")
        b.writeBytes(body)
        return b
    }

    /// Where the face listens, once bound (`unix:/path` or `HOST:PORT` with the real port).
    public func boundAddress() async throws -> String { try await boundPromise.futureResult.get() }

    public func run() async throws {
        let channel: any Channel
        do {
            switch address {
            case .unix(let path):
                channel = try await listener.bind(.unix(path: path, mode: config.httpSocketMode, owner: nil, group: config.httpSocketGroup))
            case .tcp(let host, let port):
                channel = try await listener.bind(.tcp(host: host, port: port))
            }
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
        await listener.withLogFlush {
            await withGracefulShutdownHandler {
                try? await channel.closeFuture.get()
            } onGracefulShutdown: {
                channel.close(promise: nil)
            }
        }
        await listener.drain(consistencyTimeoutMS: config.consistencyTimeoutMS)
        if case .unix(let path) = address { unlink(path) }
        logger.notice("http stopped")
    }
}

/// The general path of one HTTP connection, behind ``HTTPFastPath`` and NIO's HTTP/1.1
/// pipeline (every request the fast path does not answer): collects each request (body bounded by `http.max_body_bytes`), waits
/// for its `X-PIAM-Min-Revision` if it has one, answers it through ``HTTPFace``, and echoes
/// `X-Request-ID`. NIO's pipelining handler hands it one request at a time.
///
/// Backpressure: a request that arrives while the peer has not taken `limits.max_output_bytes`
/// of its answers is parked (with the rest of that read) and answered once the output drains,
/// while the ``ConnectionGuard`` holds further reads — so pipelined requests that are never read
/// cost one read's worth of parsed requests, not an answer each.
final class HTTPFaceHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let face: HTTPFace
    private let state: GraphState
    private let metrics: ServerMetrics
    private let maxBodyBytes: Int
    private let consistencyTimeout: TimeAmount
    private let connectionGuard: ConnectionGuard
    private let link: HTTPSlowPathLink
    private let logger: Logger
    private let jit: JITProvisioner?
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var tooLarge = false
    /// A request is read and not yet answered.
    private var busy = false
    private var closing = false
    /// Request parts read while the output was full, in order.
    private var parked = CircularBuffer<HTTPServerRequestPart>()
    private var writable = true

    init(face: HTTPFace, state: GraphState, metrics: ServerMetrics, maxBodyBytes: Int, consistencyTimeout: TimeAmount,
         connectionGuard: ConnectionGuard, link: HTTPSlowPathLink, logger: Logger, jit: JITProvisioner? = nil) {
        self.link = link
        self.jit = jit
        self.face = face
        self.state = state
        self.metrics = metrics
        self.maxBodyBytes = maxBodyBytes
        self.consistencyTimeout = consistencyTimeout
        self.connectionGuard = connectionGuard
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if case .end = part { connectionGuard.messageCompleted() }
        if !parked.isEmpty || (!writable && !isBody(part)) {
            parked.append(part)
            updateGuard()
            return
        }
        process(part, context: context)
    }

    private func isBody(_ part: HTTPServerRequestPart) -> Bool {
        if case .head = part { return false }
        return head != nil
    }

    private func process(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
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

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        writable = context.channel.isWritable
        if writable { resume(context: context) }
        context.fireChannelWritabilityChanged()
    }

    /// Answers parked requests while the output takes them (one at a time, as they come: a
    /// request waiting for its revision stops the loop until it is answered).
    private func resume(context: ChannelHandlerContext) {
        while writable, context.channel.isActive, !(busy && head == nil), let part = parked.popFirst() {
            process(part, context: context)
        }
        updateGuard()
    }

    /// Tells the guard whether answers are owed and whether reads must be held.
    private func updateGuard() {
        connectionGuard.busy(busy || !parked.isEmpty)
        connectionGuard.hold(!parked.isEmpty)
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
            answer(request, snapshot: snapshot, for: head, context: context)
            return
        }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let timeout = consistencyTimeout
        let wanted = minRevision
        state.whenRevision(atLeast: minRevision, timeout: timeout, on: context.eventLoop) { snap in
            let (handler, context) = loopBound.value
            guard let snap else {
                let stale = handler.state.staleMessage(wanted: wanted, timeout: timeout)
                var r = HTTPFaceResponse.error(.serviceUnavailable, endpoint: "other", code: .stale, stale.message)
                r.headers.add(name: HTTPFace.revisionHeader, value: String(stale.have))
                handler.write(r, for: head, context: context)
                return
            }
            handler.answer(request, snapshot: snap, for: head, context: context)
        }
    }

    /// Answers `request` from `snapshot`; a request the face held for just-in-time creation of
    /// its subjects (``HTTPFaceResponse/jitSubjects``: not decided yet) first has them created
    /// by piam-admind (at once), waits (within `jit.timeout_ms` in all) for the graph to reach
    /// the newest revision their creations answered, and is decided there — a subject whose
    /// creation failed being `unknown_subject` there — or, when none was created, decided on
    /// `snapshot` as it is. Either way it is decided, counted and logged once.
    private func answer(_ request: HTTPFaceRequest, snapshot: Snapshot?, for head: HTTPRequestHead, context: ChannelHandlerContext) {
        let response = face.respond(to: request, snapshot: snapshot)
        let subjects = response.jitSubjects
        guard !subjects.isEmpty else { return write(response, for: head, context: context) }
        let face = self.face
        let asItIs: @Sendable () -> HTTPFaceResponse = { face.respond(to: request, snapshot: snapshot, creating: false) }
        guard let jit, let snapshot else { return write(asItIs(), for: head, context: context) }
        let loop = context.eventLoop
        let loopBound = NIOLoopBound((self, context), eventLoop: loop)
        let deadline = NIODeadline.now() + jit.timeout
        // The creations' answers, gathered on the loop.
        let gathered = NIOLoopBound(JITCreations(remaining: subjects.count), eventLoop: loop)
        for subject in subjects {
            jit.provision(subject: subject, revision: snapshot.revision) { revision in
                loop.execute {
                    let creations = gathered.value
                    if let revision { creations.revision = max(creations.revision ?? revision, revision) }
                    creations.remaining -= 1
                    guard creations.remaining == 0 else { return }
                    let (handler, context) = loopBound.value
                    guard let revision = creations.revision else { return handler.write(asItIs(), for: head, context: context) }
                    let remaining = deadline - NIODeadline.now()
                    handler.state.whenRevision(atLeast: revision, timeout: max(remaining, .milliseconds(1)), on: loop) { snap in
                        let (handler, context) = loopBound.value
                        guard let snap else {
                            jit.count(.timeout)
                            return handler.write(asItIs(), for: head, context: context)
                        }
                        handler.write(face.respond(to: request, snapshot: snap, creating: false), for: head, context: context)
                    }
                }
            }
        }
    }

    private func write(_ response: HTTPFaceResponse, for head: HTTPRequestHead, context: ChannelHandlerContext) {
        busy = false
        if link.owed > 0 { link.owed -= 1 }
        defer { if !parked.isEmpty { resume(context: context) } else { updateGuard() } }
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
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        connectionGuard.failed("http connection error", error: error)
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension HTTPFaceHandler: Sendable {}

/// The answers of one request's just-in-time creations so far (on the connection's loop).
final class JITCreations {
    var remaining: Int
    /// The newest revision a creation answered; nil while none succeeded.
    var revision: Int64?
    init(remaining: Int) { self.remaining = remaining }
}

import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PIAMEngine
import PIAMWire

/// An answer from the daemon and the graph revision it was computed on.
public struct Answer<Value: Sendable>: Sendable {
    public var value: Value
    /// The revision of the graph the daemon answered from.
    public var revision: Int64

    public init(value: Value, revision: Int64) {
        self.value = value
        self.revision = revision
    }
}

extension Answer: Equatable where Value: Equatable {}
extension Answer: Hashable where Value: Hashable {}

/// A connection to `piamd` over its Unix socket (wire protocol v1).
///
/// One client is one connection. Every method may be called from many tasks at once: requests
/// are written as they come and answered in order, so concurrent calls pipeline. `send(_:)`
/// with an array writes a whole batch with one flush.
///
/// ```swift
/// let client = try await PIAMClient.connect(socketPath: "/run/piam/piamd.sock")
/// defer { Task { await client.close() } }
/// let answer = try await client.check(CheckRequest(subject: "alice", action: "read",
///                                                  resource: ResourceRef(type: "claim", id: "CLM-1")))
/// print(answer.value.allowed, answer.revision)
/// ```
///
/// Errors are `PIAMError` with codes: `stale` (the `minRevision` was not reached
/// in time), `unavailable` (overloaded or shutting down), `invalid_input` (the daemon called the
/// request malformed, e.g. a bad cursor), `server`, `protocol`, `connection`.
public final class PIAMClient: Sendable {
    private let channel: any Channel
    private let nextID = NIOLockedValueBox<UInt32>(1)

    private init(channel: any Channel) {
        self.channel = channel
    }

    /// Connects to the daemon's socket.
    ///
    /// - Parameters:
    ///   - socketPath: the daemon's `socket.path`.
    ///   - eventLoopGroup: where the connection's I/O runs (default: NIO's shared group).
    ///   - maxResponseBytes: the largest response frame accepted (long list pages and EXPLAIN
    ///     traces can exceed the daemon's request limit).
    public static func connect(socketPath: String, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                               maxResponseBytes: Int = 64 << 20) async throws(PIAMError) -> PIAMClient {
        do {
            let channel = try await ClientBootstrap(group: eventLoopGroup)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(maxFrameBytes: maxResponseBytes)))
                        try channel.pipeline.syncOperations.addHandler(ClientHandler())
                    }
                }
                .connect(unixDomainSocketPath: socketPath).get()
            return PIAMClient(channel: channel)
        } catch {
            throw PIAMError(.connection, "cannot connect to piamd at \(socketPath): \(Self.describe(error))")
        }
    }

    /// Closes the connection; calls still waiting fail with `connection`.
    public func close() async {
        try? await channel.close()
    }

    /// Whether the connection is open.
    public var isActive: Bool { channel.isActive }

    // MARK: Raw requests

    /// Sends one request and returns the daemon's response, whatever its status. The client
    /// assigns the request id.
    ///
    /// - Parameter request: the request; its `requestID` is replaced.
    public func send(_ request: Request) async throws(PIAMError) -> Response {
        try await send([request])[0]
    }

    /// Sends many requests with one write and flush (pipelining) and returns their responses in
    /// order, whatever their status.
    ///
    /// - Parameter requests: the requests; their `requestID`s are replaced with consecutive ids.
    public func send(_ requests: [Request]) async throws(PIAMError) -> [Response] {
        guard !requests.isEmpty else { return [] }
        var numbered = requests
        let first = nextID.withLockedValue { id -> UInt32 in
            defer { id = id &+ UInt32(truncatingIfNeeded: requests.count) }
            return id
        }
        for i in numbered.indices {
            numbered[i].requestID = first &+ UInt32(truncatingIfNeeded: i)
            try numbered[i].validateForWire()
        }
        let promises = (0..<numbered.count).map { _ in channel.eventLoop.makePromise(of: Response.self) }
        // A write that never reaches the handler (the connection closed meanwhile, e.g. after
        // OVERLOADED) fails its promise here; answered promises ignore the late failure.
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { error in
            let e = error as? PIAMError ?? PIAMError(.connection, "the connection to piamd is closed: \(Self.describe(error))")
            for p in promises { p.fail(e) }
        }
        channel.writeAndFlush(ClientHandler.Outbound(requests: numbered, promises: promises), promise: written)
        var out: [Response] = []
        out.reserveCapacity(promises.count)
        for p in promises {
            do {
                out.append(try await p.futureResult.get())
            } catch let e as PIAMError {
                throw e
            } catch {
                throw PIAMError(.connection, Self.describe(error))
            }
        }
        return out
    }

    /// Sends one request; a status other than OK becomes a thrown `PIAMError`.
    public func call(_ body: Request.Body, minRevision: Int64 = 0) async throws(PIAMError) -> (Response.Body, Int64) {
        let r = try await send(Request(minRevision: UInt64(max(0, minRevision)), body: body))
        try Self.checkStatus(r)
        return (r.body, Int64(clamping: r.revision))
    }

    static func checkStatus(_ r: Response) throws(PIAMError) {
        guard r.status != .ok else { return }
        let code: PIAMError.Code = switch r.status {
        case .ok: .server
        case .badRequest, .frameTooLarge: .invalidInput
        case .stale: .stale
        case .overloaded, .shuttingDown: .unavailable
        case .unsupportedVersion, .unknownOpcode: .protocolViolation
        case .internalError: .server
        }
        throw PIAMError(code, "piamd: \(r.status): \(r.message)")
    }

    static func unexpected(_ body: Response.Body) -> PIAMError {
        PIAMError(.protocolViolation, "piamd answered with an unexpected body: \(body)")
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? IOError { return e.description }
        if let e = error as? ChannelError { return "\(e)" }
        return "\(error)"
    }
}

/// Writes requests and matches responses to callers, in order.
final class ClientHandler: ChannelDuplexHandler {
    typealias InboundIn = InboundFrame
    typealias OutboundIn = Outbound
    typealias OutboundOut = ByteBuffer

    struct Outbound: Sendable {
        var requests: [Request]
        var promises: [EventLoopPromise<Response>]
    }

    private var waiting = CircularBuffer<(id: UInt32, promise: EventLoopPromise<Response>)>()
    private var closed = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let o = unwrapOutboundIn(data)
        guard !closed else {
            for p in o.promises { p.fail(PIAMError(.connection, "the connection to piamd is closed")) }
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: 64 * o.requests.count)
        for (r, p) in zip(o.requests, o.promises) {
            r.encodeFrame(into: &buffer)
            waiting.append((r.requestID, p))
        }
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .payload(let payload):
            do throws(PIAMError) {
                let response = try Response.decode(payload: payload)
                // Unsolicited (request id 0 with nothing of ours at id 0): OVERLOADED at accept,
                // FRAME_TOO_LARGE. They end the connection for every waiting call.
                if response.status != .ok, response.requestID == 0, waiting.first?.id != 0 {
                    let code: PIAMError.Code = response.status == .overloaded ? .unavailable : .protocolViolation
                    failAll(PIAMError(code, "piamd: \(response.status): \(response.message)"), context: context)
                    return
                }
                guard let next = waiting.popFirst() else {
                    throw PIAMError(.protocolViolation, "piamd sent a response nobody asked for (request id \(response.requestID))")
                }
                guard next.id == response.requestID else {
                    next.promise.fail(PIAMError(.protocolViolation, "response for request \(response.requestID) arrived where \(next.id) was expected"))
                    throw PIAMError(.protocolViolation, "responses out of order")
                }
                next.promise.succeed(response)
            } catch {
                failAll(error, context: context)
            }
        case .tooLarge(let declared):
            failAll(PIAMError(.protocolViolation, "piamd sent a \(declared)-byte frame, above the client's limit"), context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        let pending = waiting
        waiting.removeAll()
        for w in pending { w.promise.fail(PIAMError(.connection, "piamd closed the connection")) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(PIAMError(.connection, PIAMClient.describe(error)), context: context)
    }

    private func failAll(_ error: PIAMError, context: ChannelHandlerContext) {
        closed = true
        let pending = waiting
        waiting.removeAll()
        for w in pending { w.promise.fail(error) }
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension ClientHandler: Sendable {}

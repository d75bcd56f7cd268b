import Logging
import NIOCore
import PIAMEngine
import PIAMWire

/// Sent down every connection's pipeline when the daemon begins a graceful shutdown.
public struct ServerShutdownEvent: Sendable {}

/// One client connection: decodes frames into requests, answers them from the current
/// snapshot on the event loop, and writes the responses in request order.
///
/// A request whose `min_revision` is ahead of the graph waits (up to the consistency timeout)
/// without blocking the loop; responses to later requests on the same connection queue behind
/// it, so order is kept. Responses produced while reading are written with one flush per read
/// burst.
final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = InboundFrame
    typealias OutboundOut = ByteBuffer

    private let evaluator: QueryEvaluator
    private let state: GraphState
    private let consistencyTimeout: TimeAmount
    private let logger: Logger

    /// Requests and responses behind a request that waits for its `min_revision`, in order.
    private enum Slot {
        /// Waiting for a newer graph (or its timeout).
        case waiting
        /// Read behind a waiting request; evaluated when it reaches the head, on the graph of
        /// that moment — so revisions never go backwards on one connection.
        case pending(Request)
        /// Answered, not yet written.
        case done(Response)
    }
    /// The connection's mutable state, behind a pointer. Every access to a class's stored
    /// `var` is checked for exclusivity at run time (`swift_beginAccess`), about a dozen per
    /// request on this path — measured at a sixth of piamd's user time under pipelined CHECKs.
    /// The handler lives on one event loop and never lends these out, so the checks guard
    /// nothing here; the computed properties below keep the code reading as plain fields.
    private struct Fields {
        var queue = CircularBuffer<Slot>()
        /// The sequence number of `queue.first`.
        var baseSeq = 0
        /// Encoded responses not yet flushed.
        var out: ByteBuffer?
        var shuttingDown = false
        var closeWhenDrained = false
        var active = true
        /// Reused by the CHECK / CHECK_BATCH fast path (see ``QueryEvaluator/answerFast``).
        var scratch: [CheckBytes] = []
        /// What this connection answered since the last flush into the metrics, and the
        /// requests it received (STATUS `requests`): counted here without atomics, flushed once
        /// per read burst, before the answers are written.
        var tally = QueryTally()
        var received = 0
        /// The snapshot this read burst answers from, and the publication it was taken at: one
        /// look at the shared state per burst while nothing is published (an atomic load per
        /// request, no lock), and dropped at the burst's end so an idle connection pins no graph.
        var burstSnapshot: Snapshot?
        var burstGeneration = -1
    }
    private let fields: UnsafeMutablePointer<Fields>

    private var queue: CircularBuffer<Slot> { _read { yield fields.pointee.queue } _modify { yield &fields.pointee.queue } }
    private var baseSeq: Int { _read { yield fields.pointee.baseSeq } _modify { yield &fields.pointee.baseSeq } }
    private var out: ByteBuffer? { _read { yield fields.pointee.out } _modify { yield &fields.pointee.out } }
    private var shuttingDown: Bool { _read { yield fields.pointee.shuttingDown } _modify { yield &fields.pointee.shuttingDown } }
    private var closeWhenDrained: Bool { _read { yield fields.pointee.closeWhenDrained } _modify { yield &fields.pointee.closeWhenDrained } }
    private var active: Bool { _read { yield fields.pointee.active } _modify { yield &fields.pointee.active } }
    private var scratch: [CheckBytes] { _read { yield fields.pointee.scratch } _modify { yield &fields.pointee.scratch } }
    private var tally: QueryTally { _read { yield fields.pointee.tally } _modify { yield &fields.pointee.tally } }
    private var received: Int { _read { yield fields.pointee.received } _modify { yield &fields.pointee.received } }
    private var burstSnapshot: Snapshot? { _read { yield fields.pointee.burstSnapshot } _modify { yield &fields.pointee.burstSnapshot } }
    private var burstGeneration: Int { _read { yield fields.pointee.burstGeneration } _modify { yield &fields.pointee.burstGeneration } }

    init(evaluator: QueryEvaluator, state: GraphState, consistencyTimeout: TimeAmount, logger: Logger) {
        self.evaluator = evaluator
        self.state = state
        self.consistencyTimeout = consistencyTimeout
        self.logger = logger
        fields = .allocate(capacity: 1)
        fields.initialize(to: Fields())
    }

    deinit {
        fields.deinitialize(count: 1)
        fields.deallocate()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .payload(let payload):
            handle(payload, context: context)
        case .tooLarge(let declared):
            logger.notice("frame too large; closing connection", metadata: ["declared_bytes": "\(declared)"])
            enqueue(.error(.frameTooLarge, opcodeByte: 0, requestID: 0, revision: currentRevision,
                           message: "frame of \(declared) bytes exceeds limits.max_frame_bytes"), context: context)
            closeWhenDrained = true
            flushAndMaybeClose(context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushAndMaybeClose(context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ServerShutdownEvent {
            shuttingDown = true
            // Requests already read are answered; for a moment, requests still on the wire are
            // answered SHUTTING_DOWN; then the connection closes once nothing waits.
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: .milliseconds(100)) {
                let (handler, context) = loopBound.value
                handler.closeWhenDrained = true
                handler.flushAndMaybeClose(context: context)
            }
            return
        }
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .all {
            if queue.isEmpty {
                logger.debug("idle timeout; closing connection")
                context.close(promise: nil)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        active = false
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error; closing", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    private var currentRevision: UInt64 { UInt64(currentSnapshot()?.revision ?? 0) }

    /// The newest published snapshot (see `burstSnapshot`).
    @inline(__always)
    private func currentSnapshot() -> Snapshot? {
        let g = state.generation
        if g != burstGeneration || burstSnapshot == nil {
            burstSnapshot = state.snapshot
            burstGeneration = g
        }
        return burstSnapshot
    }

    private func flushStats() {
        if received > 0 {
            state.requests.add(received, ordering: .relaxed)
            received = 0
        }
        evaluator.flush(&tally)
    }

    private func handle(_ payload: ByteBuffer, context: ChannelHandlerContext) {
        received += 1
        // The hot opcodes, answered from the request's bytes when nothing waits before them.
        if queue.isEmpty, !shuttingDown, let snapshot = currentSnapshot() {
            if out == nil { out = context.channel.allocator.buffer(capacity: 256) }
            if evaluator.answerFast(payload: payload, on: snapshot, into: &out!, scratch: &scratch, tally: &tally) { return }
        }
        // Everything else: counts so far are made visible first (a STATUS reports them).
        flushStats()
        let request: Request
        switch Request.decode(payload: payload) {
        case .failure(let e):
            enqueue(.error(e.status, opcodeByte: e.opcodeByte, requestID: e.requestID, revision: currentRevision,
                           message: e.message), context: context)
            return
        case .success(let r):
            request = r
        }
        if shuttingDown {
            enqueue(.error(.shuttingDown, opcodeByte: request.opcode.rawValue, requestID: request.requestID,
                           revision: currentRevision, message: "piamd is shutting down"), context: context)
            return
        }
        guard queue.isEmpty else {
            queue.append(.pending(request))
            return
        }
        answerOrWait(request, seq: baseSeq, context: context)
    }

    /// Answers `request` now when the graph is new enough, else parks it as `seq` (the head of
    /// the queue) until a newer graph is published or the consistency timeout passes.
    /// Returns whether it was answered.
    @discardableResult
    private func answerOrWait(_ request: Request, seq: Int, context: ChannelHandlerContext) -> Bool {
        guard let snapshot = currentSnapshot() else {
            write(.error(.internalError, opcodeByte: request.opcode.rawValue, requestID: request.requestID,
                         revision: 0, message: "no graph loaded"), context: context)
            return true
        }
        if request.minRevision <= UInt64(max(snapshot.revision, 0)) {
            write(evaluator.answer(request, on: snapshot, tally: &tally), context: context)
            return true
        }
        // Wait for a newer graph without blocking the loop; later requests queue behind this one.
        if seq == baseSeq + queue.count { queue.append(.waiting) } else { queue[queue.startIndex] = .waiting }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let timeout = consistencyTimeout
        state.whenRevision(atLeast: Int64(clamping: request.minRevision), timeout: timeout, on: context.eventLoop) { snap in
            let (handler, context) = loopBound.value
            handler.complete(seq: seq, response: handler.respond(request, after: snap, timeout: timeout), context: context)
        }
        return false
    }

    private func respond(_ request: Request, after snapshot: Snapshot?, timeout: TimeAmount) -> Response {
        if let snapshot { return evaluator.answer(request, on: snapshot, tally: &tally) }
        let have = state.snapshot?.revision ?? 0
        if shuttingDown {
            return .error(.shuttingDown, opcodeByte: request.opcode.rawValue, requestID: request.requestID,
                          revision: UInt64(have), message: "piamd is shutting down")
        }
        return .error(.stale, opcodeByte: request.opcode.rawValue, requestID: request.requestID, revision: UInt64(have),
                      message: "revision \(request.minRevision) not reached within \(timeout.nanoseconds / 1_000_000) ms; the graph is at revision \(have)")
    }

    /// Queues a response (or writes it straight to the output when nothing waits before it).
    private func enqueue(_ response: Response, context: ChannelHandlerContext) {
        if queue.isEmpty {
            write(response, context: context)
        } else {
            queue.append(.done(response))
        }
    }

    /// A wait ended: write everything that is now answerable, in order.
    private func complete(seq: Int, response: Response, context: ChannelHandlerContext) {
        guard active else { return }
        precondition(seq == baseSeq, "only the head of the queue waits")
        queue[queue.startIndex] = .done(response)
        drain: while let first = queue.first {
            switch first {
            case .waiting:
                break drain
            case .done(let r):
                write(r, context: context)
            case .pending(let request):
                if !answerOrWait(request, seq: baseSeq, context: context) { break drain }
            }
            queue.removeFirst()
            baseSeq += 1
        }
        flushAndMaybeClose(context: context)
    }

    private func write(_ response: Response, context: ChannelHandlerContext) {
        if out == nil { out = context.channel.allocator.buffer(capacity: 256) }
        response.encodeFrame(into: &out!)
    }

    private func flushAndMaybeClose(context: ChannelHandlerContext) {
        burstSnapshot = nil
        flushStats()
        guard active else { return }
        if let buffer = out, buffer.readableBytes > 0 {
            out = nil
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        }
        if closeWhenDrained && queue.isEmpty {
            active = false
            context.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension ConnectionHandler: Sendable {}

/// Answers a connection the server will not serve (too many connections) with one frame, then
/// closes it.
final class RejectHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let response: Response?

    init(_ response: Response?) { self.response = response }

    func channelActive(context: ChannelHandlerContext) {
        if let response {
            var b = context.channel.allocator.buffer(capacity: 64)
            response.encodeFrame(into: &b)
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(b)).whenComplete { _ in loopBound.value.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

@available(*, unavailable)
extension RejectHandler: Sendable {}

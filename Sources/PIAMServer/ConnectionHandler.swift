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
/// burst (or every ``flushBytes``).
///
/// Backpressure: while the peer has not taken `limits.max_output_bytes` of its answers (the
/// channel is not writable), or `limits.max_waiting_requests` requests are held behind a
/// `min_revision` wait, frames already read are parked undecoded and the ``ConnectionGuard``
/// holds further reads; they are answered, in order, once the output drains or the wait ends.
/// So one connection's memory is bounded by its output bound plus one read, whatever it sends.
final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = InboundFrame
    typealias OutboundOut = ByteBuffer

    private let evaluator: QueryEvaluator
    private let state: GraphState
    private let consistencyTimeout: TimeAmount
    private let maxWaiting: Int
    private let connectionGuard: ConnectionGuard
    private let logger: Logger
    /// Answers are written out once this many bytes are pending within a read burst.
    static let flushBytes = 64 * 1024

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
        /// Frames read but not yet decoded: held while the output is full or too many requests
        /// wait (in arrival order, before anything read later).
        var parked = CircularBuffer<ByteBuffer>()
        /// The channel takes more output (below the high-water mark).
        var writable = true
        /// What the guard was last told.
        var busy = false
        var holding = false
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
    private var parked: CircularBuffer<ByteBuffer> { _read { yield fields.pointee.parked } _modify { yield &fields.pointee.parked } }
    private var writable: Bool { _read { yield fields.pointee.writable } _modify { yield &fields.pointee.writable } }

    init(evaluator: QueryEvaluator, state: GraphState, consistencyTimeout: TimeAmount, maxWaiting: Int = 128,
         connectionGuard: ConnectionGuard, logger: Logger) {
        self.evaluator = evaluator
        self.state = state
        self.consistencyTimeout = consistencyTimeout
        self.maxWaiting = max(1, maxWaiting)
        self.connectionGuard = connectionGuard
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
            connectionGuard.messageCompleted()
            if parked.isEmpty && writable && queue.count < maxWaiting {
                handle(payload, context: context)
                if let o = out, o.readableBytes >= Self.flushBytes { flushAndMaybeClose(context: context) }
            } else {
                parked.append(payload)
                updateGuard()
            }
        case .tooLarge(let declared):
            connectionGuard.log.record(.frameTooLarge, metadata: ["declared_bytes": "\(declared)"])
            enqueue(.error(.frameTooLarge, opcodeByte: 0, requestID: 0, revision: currentRevision,
                           message: "frame of \(declared) bytes exceeds limits.max_frame_bytes"), context: context)
            closeWhenDrained = true
            flushAndMaybeClose(context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushAndMaybeClose(context: context)
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        writable = context.channel.isWritable
        if writable { resume(context: context) }
        context.fireChannelWritabilityChanged()
    }

    /// Answers parked frames while the output takes them and nothing waits too long a queue.
    private func resume(context: ChannelHandlerContext) {
        var answered = false
        while active, writable, queue.count < maxWaiting, let payload = parked.popFirst() {
            handle(payload, context: context)
            answered = true
            if let o = out, o.readableBytes >= Self.flushBytes { flushAndMaybeClose(context: context) }
        }
        if answered { flushAndMaybeClose(context: context) }
        updateGuard()
    }

    /// Tells the guard whether answers are owed and whether reads must be held.
    private func updateGuard() {
        let busy = !queue.isEmpty || !parked.isEmpty
        let holding = !parked.isEmpty || queue.count >= maxWaiting
        if busy != fields.pointee.busy {
            fields.pointee.busy = busy
            connectionGuard.busy(busy)
        }
        if holding != fields.pointee.holding {
            fields.pointee.holding = holding
            connectionGuard.hold(holding)
        }
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
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        active = false
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        connectionGuard.failed("connection error", error: error)
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
            updateGuard()
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
        updateGuard()
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
        let stale = state.staleMessage(wanted: Int64(clamping: request.minRevision), timeout: timeout)
        if shuttingDown {
            return .error(.shuttingDown, opcodeByte: request.opcode.rawValue, requestID: request.requestID,
                          revision: UInt64(stale.have), message: "piamd is shutting down")
        }
        return .error(.stale, opcodeByte: request.opcode.rawValue, requestID: request.requestID, revision: UInt64(stale.have),
                      message: stale.message)
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
        resume(context: context)
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
        if closeWhenDrained && queue.isEmpty && (parked.isEmpty || !writable) {
            active = false
            context.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension ConnectionHandler: Sendable {}


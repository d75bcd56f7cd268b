import Logging
import NIOCore

/// The life of one client connection, the same for both faces: which deadline runs, whether
/// the connection may be read, and what a timer that fires means. A value with no I/O: the
/// ``ConnectionGuard`` handler feeds it events and carries out what it answers, and tests drive
/// it directly.
///
/// Each per-connection limit lives here and only here:
///
/// - `limits.idle_timeout_ms`: nothing read and nothing outstanding for that long → close.
/// - `limits.frame_timeout_ms`: a message (a binary frame, an HTTP request head and body) begun
///   and not completed within that long → answer "timed out" (when nothing else is owed) and
///   close. Separate from the idle timeout, so a peer that trickles a byte a second cannot keep
///   a slot.
/// - `limits.max_output_bytes` (the channel's write-buffer high-water mark): while the peer has
///   not taken that much of its answers, nothing more is read from it (the reads are held, as
///   swift-nio's `HTTPServerPipelineHandler` holds them while a response is pending); a peer that
///   takes none of its output for `limits.idle_timeout_ms` is closed.
/// - The face's own backlog (requests held behind a `min_revision` wait, or read but not yet
///   answered because the output was full) also holds the reads: ``hold(_:)``.
struct ConnectionStateMachine: Sendable {
    /// Where the connection is in its request/answer cycle.
    enum State: Sendable, Hashable {
        /// Between messages, nothing owed: the idle deadline runs from `since`.
        case idle(since: NIODeadline)
        /// A message has begun arriving at `since` and is not complete: its deadline runs.
        case receiving(since: NIODeadline)
        /// Whole messages read whose answers are still owed (a `min_revision` wait, or answers
        /// held back by a full output); `partialSince` is when the next message began arriving,
        /// if it has.
        case answering(partialSince: NIODeadline?)
        /// Closed or closing: nothing more is read or timed.
        case closed
    }

    /// What a fired deadline asks for.
    enum Expiry: Sendable, Hashable {
        /// Nothing expired (the deadline moved meanwhile).
        case none
        /// Idle too long: close quietly.
        case idle
        /// A message took longer than `frame_timeout_ms`; `answerable` when nothing else is owed,
        /// so a "timed out" answer cannot be mistaken for another request's.
        case messageTimeout(answerable: Bool)
        /// The peer took none of its output for `idle_timeout_ms`.
        case stalled
    }

    let idleTimeout: TimeAmount
    let frameTimeout: TimeAmount
    private(set) var state: State
    /// The channel's output is below the high-water mark.
    private(set) var writable = true
    /// When the output went above the high-water mark (nil while writable).
    private(set) var stalledSince: NIODeadline?
    /// The face asked for no more input until its backlog is answered.
    private(set) var held = false
    /// A read was asked for while reading was held; issue it on release.
    private(set) var readPending = false

    init(idleTimeout: TimeAmount, frameTimeout: TimeAmount, now: NIODeadline) {
        self.idleTimeout = idleTimeout
        self.frameTimeout = frameTimeout
        state = .idle(since: now)
    }

    /// Whether the connection may be read now.
    var mayRead: Bool { writable && !held && state != .closed }

    /// Bytes arrived (read burst at `now`).
    mutating func bytesRead(now: NIODeadline) {
        switch state {
        case .idle: state = .receiving(since: now)
        case .answering(nil): state = .answering(partialSince: now)
        case .receiving, .answering, .closed: break
        }
    }

    /// The face decoded one whole message; `now` may be the read burst's time.
    mutating func messageCompleted(now: NIODeadline) {
        switch state {
        case .receiving: state = .idle(since: now)
        case .answering: state = .answering(partialSince: nil)
        case .idle, .closed: break
        }
    }

    /// The face owes answers (`true`) or owes none any more (`false`).
    mutating func busy(_ busy: Bool, now: NIODeadline) {
        switch (state, busy) {
        case (.idle, true): state = .answering(partialSince: nil)
        case (.receiving(let since), true): state = .answering(partialSince: since)
        case (.answering(let partial), false): state = partial.map { .receiving(since: $0) } ?? .idle(since: now)
        default: break
        }
    }

    /// The output crossed a water mark. Returns whether a held read must be issued now.
    mutating func writabilityChanged(_ writable: Bool, now: NIODeadline) -> Bool {
        self.writable = writable
        stalledSince = writable ? nil : (stalledSince ?? now)
        return releasePendingRead()
    }

    /// The face's backlog holds input (`true`) or no longer does. Returns whether a held read
    /// must be issued now.
    mutating func hold(_ hold: Bool) -> Bool {
        held = hold
        return releasePendingRead()
    }

    /// The pipeline asks for a read: returns whether to pass it on (else it is remembered).
    mutating func readRequested() -> Bool {
        if mayRead { return true }
        if state != .closed { readPending = true }
        return false
    }

    private mutating func releasePendingRead() -> Bool {
        guard readPending && mayRead else { return false }
        readPending = false
        return true
    }

    mutating func closed() {
        state = .closed
        readPending = false
    }

    /// The earliest moment something may expire (nil: nothing runs).
    var nextDeadline: NIODeadline? {
        var d: NIODeadline?
        switch state {
        case .idle(let since): d = since + idleTimeout
        case .receiving(let since), .answering(.some(let since)): d = since + frameTimeout
        case .answering(nil): d = nil
        case .closed: return nil
        }
        if let s = stalledSince { d = min(d ?? s + idleTimeout, s + idleTimeout) }
        return d
    }

    /// What has expired at `now`; the state is `closed` after anything but `.none`.
    mutating func expire(now: NIODeadline) -> Expiry {
        let expiry: Expiry
        switch state {
        case .idle(let since) where now >= since + idleTimeout: expiry = .idle
        case .receiving(let since) where now >= since + frameTimeout: expiry = .messageTimeout(answerable: true)
        case .answering(.some(let since)) where now >= since + frameTimeout: expiry = .messageTimeout(answerable: false)
        case .closed: return .none
        default:
            if let s = stalledSince, now >= s + idleTimeout { expiry = .stalled } else { return .none }
        }
        closed()
        return expiry
    }
}

/// What the face writes before closing a connection whose message timed out (binary: an error
/// frame; HTTP: `408 Request Timeout`), given the allocator; nil: close without a word.
typealias TimeoutAnswer = @Sendable (ByteBufferAllocator) -> ByteBuffer?

/// The first handler of every connection's pipeline (next to the socket), for both faces: it
/// runs ``ConnectionStateMachine`` — the idle and message deadlines, holding reads while the
/// peer's unread output is above the high-water mark or the face's backlog is full — and
/// reports per-connection failures through the rate-limited log.
///
/// The face's handler, on the same event loop, tells it when a message is complete
/// (``messageCompleted()``), when answers are owed (``busy(_:)``) and when its backlog is full
/// (``hold(_:)``): direct calls, no pipeline events, so the hot path pays a store per message
/// and one clock read per read burst.
final class ConnectionGuard: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var machine: ConnectionStateMachine
    private let timeoutAnswer: TimeoutAnswer
    /// The listener's rate-limited log, for the face's handler too.
    let log: RateLimitedLog
    private let face: String
    private var context: ChannelHandlerContext?
    /// The one timer of this connection, and when it fires.
    private var timer: Scheduled<Void>?
    private var timerAt: NIODeadline?
    /// The time of the current read burst (one clock read per burst).
    private var burstTime: NIODeadline

    init(idleTimeout: TimeAmount, frameTimeout: TimeAmount, face: String, log: RateLimitedLog, timeoutAnswer: @escaping TimeoutAnswer) {
        // Replaced by the event loop's clock when added (a test's EmbeddedEventLoop runs its own).
        let now = NIODeadline.now()
        machine = ConnectionStateMachine(idleTimeout: idleTimeout, frameTimeout: frameTimeout, now: now)
        burstTime = now
        self.timeoutAnswer = timeoutAnswer
        self.log = log
        self.face = face
    }

    /// The state, for tests.
    var state: ConnectionStateMachine.State { machine.state }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        burstTime = context.eventLoop.now
        machine = ConnectionStateMachine(idleTimeout: machine.idleTimeout, frameTimeout: machine.frameTimeout, now: burstTime)
        if context.channel.isActive { rearm() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        burstTime = context.eventLoop.now
        rearm()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        machine.closed()
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard machine.state != .closed else { return }
        burstTime = context.eventLoop.now
        machine.bytesRead(now: burstTime)
        rearm()
        context.fireChannelRead(data)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if machine.writabilityChanged(context.channel.isWritable, now: context.eventLoop.now) { context.read() }
        rearm()
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if machine.readRequested() { context.read() }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failed("connection error", error: error)
        context.close(promise: nil)
    }

    // MARK: Calls from the face's handler (same event loop)

    /// A whole message was decoded.
    @inline(__always)
    func messageCompleted() {
        machine.messageCompleted(now: burstTime)
    }

    /// Answers are owed (a wait, answers held back), or no longer.
    func busy(_ busy: Bool) {
        machine.busy(busy, now: context?.eventLoop.now ?? .now())
        rearm()
    }

    /// The face's backlog is full (hold the reads) or drained.
    func hold(_ hold: Bool) {
        if machine.hold(hold) { context?.read() }
    }

    /// Whether nothing holds the reads (the face's own view of backpressure).
    var writable: Bool { machine.writable }

    /// Logs a per-connection failure (rate-limited) and closes.
    func failed(_ what: String, error: (any Error)? = nil) {
        var metadata: Logger.Metadata = ["face": "\(face)"]
        if let error { metadata["error"] = "\(error)" }
        log.record(.connectionFailure, "\(what); closing connection", metadata: metadata)
    }

    // MARK: Deadlines

    /// Makes sure the timer fires no later than the machine's next deadline.
    private func rearm() {
        guard let context, let deadline = machine.nextDeadline else { return }
        if let at = timerAt, at <= deadline { return }
        timer?.cancel()
        timerAt = deadline
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) { loopBound.value.fire() }
    }

    private func fire() {
        timer = nil
        timerAt = nil
        guard let context else { return }
        switch machine.expire(now: context.eventLoop.now) {
        case .none:
            rearm()
        case .idle:
            context.close(promise: nil)
        case .stalled:
            log.record(.stalled, "peer took none of its answers for limits.idle_timeout_ms; closing connection", metadata: ["face": "\(face)"])
            context.close(promise: nil)
        case .messageTimeout(let answerable):
            log.record(.frameTimeout, "message not completed within limits.frame_timeout_ms; closing connection",
                       metadata: ["face": "\(face)", "frame_timeout_ms": "\(machine.frameTimeout.nanoseconds / 1_000_000)"])
            if answerable, let answer = timeoutAnswer(context.channel.allocator) {
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(answer)).whenComplete { _ in channel.close(promise: nil) }
            } else {
                context.close(promise: nil)
            }
        }
    }
}

@available(*, unavailable)
extension ConnectionGuard: Sendable {}

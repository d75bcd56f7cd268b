import Logging
import NIOCore
import NIOEmbedded
import PIAMEngine
@testable import PIAMServer
import PIAMWire
import Testing

@Suite("The connection's life: ConnectionStateMachine and ConnectionGuard")
struct ConnectionLifecycleTests {
    typealias M = ConnectionStateMachine
    let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)

    func machine() -> M { M(idleTimeout: .seconds(10), frameTimeout: .seconds(2), now: t0) }

    @Test("idle → receiving → idle: the idle deadline between messages, the frame deadline within one")
    func deadlines() {
        var m = machine()
        #expect(m.nextDeadline == t0 + .seconds(10))
        m.bytesRead(now: t0 + .seconds(1))
        #expect(m.state == .receiving(since: t0 + .seconds(1)))
        #expect(m.nextDeadline == t0 + .seconds(3), "the frame deadline runs from the message's first byte")
        // More bytes of the same message do not move it (a trickle cannot keep a slot).
        m.bytesRead(now: t0 + .milliseconds(2900))
        #expect(m.nextDeadline == t0 + .seconds(3))
        let r1 = m.expire(now: t0 + .milliseconds(2999))
        #expect(r1 == .none)
        let r2 = m.expire(now: t0 + .seconds(3))
        #expect(r2 == .messageTimeout(answerable: true))
        #expect(m.state == .closed && !m.mayRead)
        var n = machine()
        n.bytesRead(now: t0)
        n.messageCompleted(now: t0 + .milliseconds(5))
        #expect(n.state == .idle(since: t0 + .milliseconds(5)))
        let r3 = n.expire(now: t0 + .seconds(3))
        #expect(r3 == .none, "a completed message's deadline is gone")
        let r4 = n.expire(now: t0 + .seconds(11))
        #expect(r4 == .idle)
    }

    @Test("answers owed: no idle deadline while a request waits; a message begun meanwhile is still timed, and not answered")
    func answering() {
        var m = machine()
        m.bytesRead(now: t0)
        m.messageCompleted(now: t0)
        m.busy(true, now: t0)
        #expect(m.state == .answering(partialSince: nil))
        #expect(m.nextDeadline == nil)
        let r5 = m.expire(now: t0 + .seconds(100))
        #expect(r5 == .none)
        m.bytesRead(now: t0 + .seconds(1))
        #expect(m.nextDeadline == t0 + .seconds(3))
        m.busy(false, now: t0 + .seconds(2))
        #expect(m.state == .receiving(since: t0 + .seconds(1)))
        m.busy(true, now: t0 + .seconds(2))
        let r6 = m.expire(now: t0 + .seconds(3))
        #expect(r6 == .messageTimeout(answerable: false))
    }

    @Test("reads are held while the output is above the water mark or the face's backlog is full, and released once")
    func backpressure() {
        var m = machine()
        let r7 = m.readRequested()
        #expect(r7)
        let r8 = m.writabilityChanged(false, now: t0)
        #expect(!r8)
        let r9 = m.readRequested()
        #expect(!r9, "held")
        let r10 = m.hold(true)
        #expect(!r10)
        let r11 = m.writabilityChanged(true, now: t0)
        #expect(!r11, "still held by the backlog")
        let r12 = m.hold(false)
        #expect(r12, "the pending read is issued once")
        let r13 = m.hold(false)
        #expect(!r13)
        let r14 = m.readRequested()
        #expect(r14)
        // A peer that takes none of its output for the idle timeout is closed.
        var s = machine()
        s.bytesRead(now: t0)
        s.messageCompleted(now: t0)
        s.busy(true, now: t0)
        _ = s.writabilityChanged(false, now: t0 + .seconds(1))
        #expect(s.nextDeadline == t0 + .seconds(11))
        let r15 = s.expire(now: t0 + .seconds(11))
        #expect(r15 == .stalled)
    }

    @Test("the guard on a channel: a trickled frame is answered by the timeout answer and closed; the idle timeout closes a silent one")
    func guardOnChannel() throws {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(loop: loop)
        let g = ConnectionGuard(idleTimeout: .seconds(5), frameTimeout: .milliseconds(500), face: "socket",
                                log: RateLimitedLog(logger: Logger(label: "t")), timeoutAnswer: { a in
            var b = a.buffer(capacity: 4)
            b.writeString("late")
            return b
        })
        try channel.pipeline.syncOperations.addHandler(g)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        for _ in 0..<4 {
            try channel.writeInbound(ByteBuffer(bytes: [0]))
            loop.advanceTime(by: .milliseconds(100))
        }
        #expect(channel.isActive)
        loop.advanceTime(by: .milliseconds(100))
        var out = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(out.readString(length: 4) == "late")
        loop.run()
        #expect(!channel.isActive)

        let idle = EmbeddedChannel(loop: loop)
        let g2 = ConnectionGuard(idleTimeout: .seconds(5), frameTimeout: .milliseconds(500), face: "socket",
                                 log: RateLimitedLog(logger: Logger(label: "t")), timeoutAnswer: { _ in nil })
        try idle.pipeline.syncOperations.addHandler(g2)
        try idle.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        loop.advanceTime(by: .milliseconds(4999))
        #expect(idle.isActive)
        loop.advanceTime(by: .milliseconds(1))
        #expect(!idle.isActive)
    }

    @Test("binary connection: while the output is full, frames are parked undecoded and reads held; answered in order once it drains")
    func parkedWhileUnwritable() throws {
        let h = try Harness()
        var reads = 0
        // Count the reads that reach the socket end (through the guard).
        try h.channel.pipeline.syncOperations.addHandler(ReadCounter { reads += 1 }, position: .first)
        h.channel.isWritable = false
        h.channel.pipeline.fireChannelWritabilityChanged()
        try h.send((1...5).map { Request(requestID: $0, body: .ping) })
        #expect(try h.responses().isEmpty, "nothing answered while the output is full")
        let before = reads
        h.channel.read()
        #expect(reads == before, "the read is held")
        h.channel.isWritable = true
        h.channel.pipeline.fireChannelWritabilityChanged()
        #expect(try h.responses().map(\.requestID) == [1, 2, 3, 4, 5])
        #expect(reads == before + 1, "the held read is issued once the backlog is answered")
    }

    @Test("binary connection: limits.max_waiting_requests holds reads while that many wait behind a min_revision")
    func waitingBound() throws {
        let h = try Harness(revision: 10, timeoutMS: 500, maxWaiting: 3)
        var reads = 0
        try h.channel.pipeline.syncOperations.addHandler(ReadCounter { reads += 1 }, position: .first)
        try h.send([Request(requestID: 1, minRevision: 11, body: .ping)] + (2...6).map { Request(requestID: $0, body: .ping) })
        let before = reads
        h.channel.read()
        #expect(reads == before, "three wait: reads are held")
        h.state.publish(Snapshot(graph: try tinyGraph(), revision: 11, loadSeconds: 0, cause: "test"))
        h.loop.run()
        #expect(try h.responses().map(\.requestID) == [1, 2, 3, 4, 5, 6])
        #expect(reads == before + 1)
    }

    @Test("the rate-limited log: the first event at once, then one line an interval with the count")
    func rateLimitedLog() {
        let lines = LineRecorder()
        let logger = Logger(label: "t") { _ in lines }
        let log = RateLimitedLog(logger: logger, intervalMS: 60_000)
        for _ in 0..<2000 { log.record(.refusedPeer, metadata: ["peer_uid": "7"]) }
        #expect(lines.messages.count == 1)
        #expect(log.pending(.refusedPeer) == 1999)
        log.flush()
        #expect(lines.messages.count == 1, "not before the interval has passed")
        let fast = RateLimitedLog(logger: logger, intervalMS: 0)
        fast.record(.frameTimeout)
        fast.record(.frameTimeout)
        #expect(lines.messages.count == 3)
    }
}

/// Counts the reads that reach the channel's socket end.
final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = Any
    let onRead: () -> Void
    init(_ onRead: @escaping () -> Void) { self.onRead = onRead }
    func read(context: ChannelHandlerContext) {
        onRead()
        context.read()
    }
}

/// A log handler that keeps the messages.
final class LineRecorder: LogHandler, @unchecked Sendable {
    private(set) var messages: [String] = []
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) { messages.append(event.message.description) }
}

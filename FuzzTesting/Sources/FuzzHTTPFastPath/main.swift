// The HTTP face's fast path (`HTTPFastPath`, `HTTPRequestScan`, `EvaluationScan`) on the
// connection pipeline piamd builds — ConnectionGuard, HTTPFastPath, NIO's HTTP/1.1 server
// pipeline, HTTPFaceHandler — fed an arbitrary byte stream in reads and read bursts the input
// chooses, next to the same pipeline without the fast path (the general path: NIO's parser and
// `HTTPFace`) fed the same reads. Asserted:
//
// - never a crash or a hang (libFuzzer's -timeout);
// - every write the fast path makes is one or more whole, well-formed HTTP/1.1 responses:
//   status line, `Name: value` header lines, exactly one `Content-Length` matching the body that
//   follows; a status it may give (forward-auth 200/400/401/403, evaluation 200 with a JSON
//   `decision`); never a write after the connection was closed;
// - the strongest oracle: the connection's whole output while it is open — the fast path's
//   answers and the general path's, interleaved — is byte for byte what the general path alone
//   writes for the same reads: the same answers (status, headers, body) to the same requests,
//   in the same order, and the connection closed at the same point.
//
// The input: three bytes of parameters (configuration, read size, read bursts, a shutdown, timers,
// a long header), then the stream.
import FuzzCommon
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import PIAMEngine
@testable import PIAMServer

/// Which handler a write came from; set by ``Mark`` handlers on the way to the ``Tap``.
final class WriteLog {
    enum Source { case fast, general, connectionGuard }
    var markedGeneral = false
    var markedInner = false
    var writes: [(source: Source, bytes: [UInt8], open: Bool)] = []
    /// The connection was still open when the input ended and the timers had run.
    var endedOpen = false

    /// What reached the socket while the connection was open, concatenated.
    var openBytes: [UInt8] { writes.filter(\.open).flatMap(\.bytes) }
}

@available(*, unavailable)
extension WriteLog: Sendable {}

/// Records each write that reaches the head of the pipeline, and who made it.
final class Tap: ChannelOutboundHandler {
    typealias OutboundIn = IOData
    let log: WriteLog
    init(_ log: WriteLog) { self.log = log }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let source: WriteLog.Source = log.markedGeneral ? .general : log.markedInner ? .fast : .connectionGuard
        log.markedGeneral = false
        log.markedInner = false
        if case .byteBuffer(let b) = unwrapOutboundIn(data) {
            log.writes.append((source, Array(b.readableBytesView), context.channel.isActive))
        } else {
            FuzzCommon.require(false, "a file region was written")
        }
        context.write(data, promise: promise)
    }
}

@available(*, unavailable)
extension Tap: Sendable {}

/// Marks the writes that pass it (those of the handlers behind it).
final class Mark: ChannelOutboundHandler {
    typealias OutboundIn = IOData
    let log: WriteLog
    let general: Bool
    init(_ log: WriteLog, general: Bool) {
        self.log = log
        self.general = general
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if general { log.markedGeneral = true } else { log.markedInner = true }
        context.write(data, promise: promise)
    }
}

@available(*, unavailable)
extension Mark: Sendable {}

enum FastPathFuzz {
    static let metrics = ServerMetrics()
    static let logger = Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() })
    static let log = RateLimitedLog(logger: logger)
    /// FuzzForwardAuth's route table: literals, parameters, method lists, org/owner templates.
    static let routes: [ForwardAuthRoute] = try! [
        ForwardAuthRoute(methods: ["GET", "HEAD"], path: "/claims/{id}", action: "read", type: "claim", id: "{id}"),
        ForwardAuthRoute(methods: ["POST"], path: "/claims/{id}/{verb}", action: "{verb}", type: "claim", id: "{id}"),
        ForwardAuthRoute(methods: [], path: "/partners/{org}/users/{user}", action: "view", type: "user", id: "{user}"),
        ForwardAuthRoute(methods: ["GET"], path: "/partners/{org}/documents/{doc}", action: "read", type: "document",
                         id: "{doc}", org: "{org}", owner: "{org}-{doc}"),
        ForwardAuthRoute(methods: ["DELETE", "PUT"], path: "/a/{x}/b/{y}", action: "{x}{y}", type: "{y}", id: "{x}/{y}"),
    ]

    struct Setup {
        let config: DaemonConfig
        let state: GraphState
        let face: HTTPFace
        let fast: HTTPFastPathConfig
    }

    /// The configuration the bits choose, on a graph state of its own: a `X-PIAM-Min-Revision`
    /// wait takes a weak reference to it, whose side table LeakSanitizer would report as a leak
    /// if the state lived for good (its address is kept encoded in the object's header).
    static func setup(_ bits: UInt8) -> Setup {
        var c = DaemonConfig()
        c.forwardAuthRoutes = routes
        c.forwardAuthAllowUnrouted = bits & 1 != 0
        c.httpMaxBodyBytes = bits & 2 != 0 ? 96 : 1_048_576
        c.forwardAuthSubjectHeader = bits & 4 != 0 ? "Remote-User" : "X-Forwarded-User"
        c.maxList = 3
        // No graph yet (every endpoint answers 503, the fast path answers nothing), or the fuzz graph.
        let state = GraphState {}
        if bits & 8 == 0 {
            state.publish(Snapshot(graph: FuzzCommon.graph, revision: Int64(FuzzCommon.revision), loadSeconds: 0, cause: "fuzz"))
        }
        let face = HTTPFace(config: c, state: state, metrics: metrics)
        return Setup(config: c, state: state, face: face,
                     fast: HTTPFastPathConfig(face: face, state: state, metrics: metrics, maxBodyBytes: c.httpMaxBodyBytes))
    }

    /// How the stream is delivered: reads (ranges of it), which of them end a read burst, after
    /// which burst the server shuts down, whether the frame deadline is let expire at the end.
    struct Delivery {
        var reads: [Range<Int>] = []
        var burstEnds: Set<Int> = []
        var shutdownAfter: Int?
        var frameTimeout = false
    }

    /// piamd's HTTP connection pipeline (with or without the fast path) on an EmbeddedChannel,
    /// fed `data` as `delivery` says; what it wrote.
    static func run(_ data: [UInt8], _ s: Setup, fastPath: Bool, _ delivery: Delivery) -> WriteLog {
        let log = WriteLog()
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(loop: loop)
        let frameTimeoutMS = s.config.frameTimeoutMS
        let connectionGuard = ConnectionGuard(
            idleTimeout: .milliseconds(Int64(s.config.idleTimeoutMS)), frameTimeout: .milliseconds(Int64(frameTimeoutMS)),
            face: "http", log: Self.log,
            timeoutAnswer: { allocator in
                HTTPServer.rawResponse(408, "Request Timeout", code: .invalidInput,
                                       "request not completed within limits.frame_timeout_ms (\(frameTimeoutMS) ms)", allocator)
            })
        let link = HTTPSlowPathLink()
        let sync = channel.pipeline.syncOperations
        try! sync.addHandler(Tap(log))
        try! sync.addHandler(connectionGuard)
        try! sync.addHandler(Mark(log, general: false))
        if fastPath { try! sync.addHandler(HTTPFastPath(config: s.fast, connectionGuard: connectionGuard, link: link)) }
        try! sync.addHandler(Mark(log, general: true))
        try! sync.configureHTTPServerPipeline(withErrorHandling: true)
        try! sync.addHandler(HTTPFaceHandler(
            face: s.face, state: s.state, metrics: metrics, maxBodyBytes: s.config.httpMaxBodyBytes,
            consistencyTimeout: .milliseconds(Int64(s.config.consistencyTimeoutMS)), connectionGuard: connectionGuard,
            link: link, logger: logger))
        try! channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()

        var inBurst = false
        for (i, r) in delivery.reads.enumerated() {
            // A closed connection is not read.
            guard channel.isActive else { break }
            channel.pipeline.fireChannelRead(ByteBuffer(bytes: data[r]))
            inBurst = true
            if delivery.burstEnds.contains(i) || i == delivery.reads.count - 1 {
                channel.pipeline.fireChannelReadComplete()
                inBurst = false
                if delivery.shutdownAfter == i && channel.isActive {
                    channel.pipeline.fireUserInboundEventTriggered(ServerShutdownEvent())
                }
            }
        }
        if inBurst && channel.isActive { channel.pipeline.fireChannelReadComplete() }
        // X-PIAM-Min-Revision waits end (consistency.timeout_ms) one after the other (a request
        // behind a wait may wait in turn), then maybe the frame deadline.
        for _ in 0..<max(1, waits(data)) { loop.advanceTime(by: .milliseconds(Int64(s.config.consistencyTimeoutMS) + 1)) }
        if delivery.frameTimeout { loop.advanceTime(by: .milliseconds(Int64(frameTimeoutMS) + 1)) }
        log.endedOpen = channel.isActive
        _ = try? channel.throwIfErrorCaught()
        _ = try? channel.finish(acceptAlreadyClosed: true)
        // A wait left (its connection closed first) holds the handler, which holds the state that
        // holds the wait: piamd's timer would end it within consistency.timeout_ms; end it here.
        s.state.failAllWaiters()
        loop.run()
        return log
    }

    /// How many requests may wait for a revision: the times the header's name appears.
    static func waits(_ data: [UInt8]) -> Int {
        let name = Array("min-revision".utf8)
        var n = 0
        var i = 0
        while i + name.count <= data.count {
            if zip(data[i..<(i + name.count)], name).allSatisfy({ HTTPRequestScan.lower($0) == $1 }) { n += 1 }
            i += 1
        }
        return n
    }

    /// One response: status code, headers, body.
    struct Response {
        var status: Int
        var headers: [(name: String, value: String)]
        var body: [UInt8]
        func header(_ name: String) -> [String] { headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value) }
    }

    /// The responses one write of the fast path holds: whole ones, nothing after the last.
    static func parseResponses(_ b: [UInt8]) -> [Response] {
        var out: [Response] = []
        var i = 0
        func line() -> [UInt8]? {
            var j = i
            while j + 1 < b.count && !(b[j] == 13 && b[j + 1] == 10) {
                FuzzCommon.require(b[j] != 13 && b[j] != 10, "a bare CR or LF in a fast-path response head")
                j += 1
            }
            guard j + 1 < b.count else { return nil }
            defer { i = j + 2 }
            return Array(b[i..<j])
        }
        while i < b.count {
            guard let status = line() else { FuzzCommon.require(false, "a fast-path write ends inside a response head"); break }
            let s = String(decoding: status, as: UTF8.self)
            let parts = s.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            FuzzCommon.require(parts.count == 3 && parts[0] == "HTTP/1.1" && parts[1].count == 3 && Int(parts[1]) != nil
                               && !parts[2].isEmpty, "a fast-path status line \"\(s)\"")
            var r = Response(status: Int(parts[1]) ?? 0, headers: [], body: [])
            while true {
                guard let h = line() else { FuzzCommon.require(false, "a fast-path write ends inside a response head"); return out }
                if h.isEmpty { break }
                guard let colon = h.firstIndex(of: UInt8(ascii: ":")), colon > 0,
                      h[..<colon].allSatisfy(HTTPRequestScan.isToken),
                      colon + 1 < h.count, h[colon + 1] == UInt8(ascii: " ")
                else {
                    FuzzCommon.require(false, "a fast-path header line \"\(String(decoding: h, as: UTF8.self))\"")
                    return out
                }
                let value = h[(colon + 2)...]
                FuzzCommon.require(value.allSatisfy { $0 >= 0x20 && $0 != 0x7f || $0 == 9 },
                                   "a control character in a fast-path header value")
                r.headers.append((String(decoding: h[..<colon], as: UTF8.self), String(decoding: value, as: UTF8.self)))
            }
            let lengths = r.header("Content-Length")
            FuzzCommon.require(lengths.count == 1, "a fast-path response with \(lengths.count) Content-Length headers")
            guard let n = lengths.first.flatMap({ Int($0) }), n >= 0, n <= b.count - i else {
                FuzzCommon.require(false, "a fast-path Content-Length \(lengths) and \(b.count - i) bytes left")
                return out
            }
            r.body = Array(b[i..<(i + n)])
            i += n
            out.append(r)
        }
        return out
    }

    /// What only a fast-path answer can be.
    static func checkFastAnswer(_ r: Response) {
        let revision = r.header(HTTPFace.revisionHeader)
        FuzzCommon.require(revision == [String(FuzzCommon.revision)], "a fast-path answer with X-PIAM-Revision \(revision)")
        if r.header("Content-Type") == ["application/json"] {
            FuzzCommon.require(r.status == 200, "a fast-path evaluation answered \(r.status)")
            let o = try? JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any]
            FuzzCommon.require(o?["decision"] is Bool, "a fast-path evaluation body without a decision")
        } else {
            FuzzCommon.require([200, 400, 401, 403].contains(r.status), "a fast-path forward-auth answered \(r.status)")
            FuzzCommon.require(r.body.isEmpty, "a fast-path forward-auth answer with a body")
            FuzzCommon.require((r.status == 200) == !r.header("X-PIAM-Subject").isEmpty, "X-PIAM-Subject on \(r.status)")
            FuzzCommon.require((r.status != 200) == (r.header("X-PIAM-Reason").count == 1), "X-PIAM-Reason on \(r.status)")
        }
    }

    nonisolated(unsafe) static var reportedHeld = false
    /// What NIO's `HTTPServerProtocolErrorHandler` answers to a request its parser refuses.
    static let nioBadRequest = Array("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n".utf8)

    /// Where the fast path's framing of the whole stream stops at an incomplete request (the
    /// bytes it holds from there on), nil when it frames everything or hands the rest over.
    static func heldFrom(_ data: [UInt8], _ s: Setup) -> Int? {
        var at = 0
        while at < data.count {
            switch data[at...].withUnsafeBytes({ HTTPRequestScan.scan($0, config: s.fast) }) {
            case .incomplete: return at
            case .unframeable: return nil
            case .request(let r):
                if !r.keepAlive { return nil }
                at += r.headEnd + r.contentLength
            }
        }
        return nil
    }

    static func show(_ b: ArraySlice<UInt8>) -> String {
        String(decoding: b.prefix(400), as: UTF8.self).replacingOccurrences(of: "\r\n", with: "⏎")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPFastPath(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    var input = FuzzInput(start, count)
    let flags = input.byte(), readSize = input.byte(), bursts = input.byte()
    let setup = FastPathFuzz.setup(flags & 0x0F)
    var data = input.rest
    // A long header after the request line, up to 31 KiB: the 16 KiB head limit of the fast path
    // (libFuzzer's inputs are at most 4 KiB).
    if bursts & 0x80 != 0, flags & 0x80 != 0, let lf = data.firstIndex(of: 10) {
        let pad = Array("X-Pad: ".utf8) + [UInt8](repeating: UInt8(ascii: "a"), count: Int(bursts & 0x1F) * 1024 + 17) + [13, 10]
        data.insert(contentsOf: pad, at: lf + 1)
    }
    // Reads of `chunk` bytes, at most 16 of them; a read ends a burst where `bursts` has its bit.
    var delivery = FastPathFuzz.Delivery()
    let chunk = max(Int(readSize & 0x3F) + 1, (data.count + 15) / 16)
    var i = 0
    while i < data.count {
        let end = min(data.count, i + chunk)
        delivery.reads.append(i..<end)
        i = end
    }
    for k in delivery.reads.indices where bursts & (1 << (k % 7)) != 0 || readSize & 0x40 == 0 { delivery.burstEnds.insert(k) }
    if flags & 0x10 != 0 { delivery.shutdownAfter = Int(readSize >> 4) % max(1, delivery.reads.count) }
    delivery.frameTimeout = flags & 0x20 != 0

    let fast = FastPathFuzz.run(data, setup, fastPath: true, delivery)
    let general = FastPathFuzz.run(data, setup, fastPath: false, delivery)

    // Every write of the fast path is whole responses, well formed, made while the connection is open.
    var answered = 0
    for w in fast.writes where w.source == .fast {
        FuzzCommon.require(w.open, "the fast path wrote \(w.bytes.count) bytes after the connection closed: "
                           + FastPathFuzz.show(w.bytes[...]))
        let responses = FastPathFuzz.parseResponses(w.bytes)
        FuzzCommon.require(!responses.isEmpty, "an empty fast-path write")
        for r in responses { FastPathFuzz.checkFastAnswer(r) }
        answered += responses.count
    }
    FuzzCommon.require(general.writes.allSatisfy { $0.source != .fast }, "the general pipeline saw a fast-path write")
    // The same output, byte for byte, as the general path alone.
    let a = fast.openBytes, b = general.openBytes
    if a != b {
        let at = zip(a, b).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset ?? min(a.count, b.count)
        // Back to the start of the response that differs.
        func starts(_ x: [UInt8], _ i: Int) -> Bool { x[i...].starts(with: "HTTP/1.1 ".utf8) }
        var from = at
        while from > 0 && !(starts(b, from) && (from == a.count || starts(a, from))) { from -= 1 }
        // Known, tolerated (README.md, Findings): NIO's parser refuses a malformed head at its
        // first bad byte (400 and close, or a close with an answer still owed), while the fast path
        // holds a request line or header line without its line end as incomplete — until more
        // bytes, the head limit or the frame deadline (then the guard's 408). Then the fast
        // path's connection must be the general path's fed only the bytes before the held ones.
        var tolerated = false
        if !general.endedOpen, let k = FastPathFuzz.heldFrom(data, setup) {
            var clipped = delivery
            clipped.reads = delivery.reads.map { $0.clamped(to: 0..<k) }.filter { !$0.isEmpty }
            let t = FastPathFuzz.run(Array(data[..<k]), setup, fastPath: false, clipped).openBytes
            tolerated = a == t || (a.starts(with: t) && fast.writes.last?.source == .connectionGuard
                                   && a[t.count...].starts(with: "HTTP/1.1 408 ".utf8))
            // And the held bytes are ones NIO refuses (not a request it would answer).
            if tolerated {
                let alone = FastPathFuzz.run(Array(data[k...]), setup, fastPath: false, FastPathFuzz.Delivery(reads: [0..<(data.count - k)]))
                tolerated = alone.openBytes == FastPathFuzz.nioBadRequest && !alone.endedOpen
            }
            if tolerated && !FastPathFuzz.reportedHeld {
                FastPathFuzz.reportedHeld = true
                print("fuzz: tolerated once more (known): the fast path holds \(data.count - k) malformed bytes without a line end "
                      + "that NIO refuses: \(FastPathFuzz.show(data[k...].prefix(80)))")
            }
        }
        // Known, tolerated (README.md, Findings): a parse error while an answer is owed (a
        // `X-PIAM-Min-Revision` wait). NIO's pipeline keeps the error until the answer is written,
        // then answers 400 and closes — unless more bytes reach its decoder after the error, whose
        // error then closes the connection at once, the answer unwritten. The fast path hands NIO
        // whole requests, the general path alone whatever the reads hold: the same bytes may take
        // either way. Then the general path's output must be where the fast path's stops, and the
        // rest of the fast path's connection only NIO's answers, the last its 400.
        if !tolerated, !general.endedOpen, !fast.endedOpen, a.count > b.count, a.starts(with: b),
           a.reversed().starts(with: FastPathFuzz.nioBadRequest.reversed()) {
            var at = 0
            var onlyNIO = true
            for w in fast.writes where w.open {
                if at + w.bytes.count > b.count && w.source != .general { onlyNIO = false }
                at += w.bytes.count
            }
            tolerated = onlyNIO
        }
        if !tolerated {
            FuzzCommon.require(false, "the fast path's connection wrote \(a.count) bytes, the general path's \(b.count); "
                               + "they differ at byte \(at):\n  with the fast path: \(FastPathFuzz.show(a[from...]))\n"
                               + "  general path only: \(FastPathFuzz.show(b[from...]))")
        }
    }
    if ProcessInfo.processInfo.environment["PIAM_FUZZ_VERBOSE"] != nil {
        let generalAnswers = fast.writes.filter { $0.source == .general }.count
        print("fuzz: \(data.count) bytes in \(delivery.reads.count) reads; fast path answered \(answered) requests, "
              + "general path wrote \(generalAnswers) parts; \(a.count) bytes out")
    }
    return 0
}

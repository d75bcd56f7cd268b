import Logging
import NIOCore
import NIOHTTP1
import PIAMEngine
import PIAMWire
import Prometheus

#if canImport(Glibc)
import Glibc
#endif

/// What the fast path needs of the face, made once per listener.
struct HTTPFastPathConfig: Sendable {
    let face: HTTPFace
    let state: GraphState
    let maxBodyBytes: Int
    /// The subject header's name, lower-case bytes.
    let subjectHeader: [UInt8]
    /// Where the answers the fast path gives are counted, by ``HTTPFastPath/Answer``.
    let metrics: ServerMetrics?

    init(face: HTTPFace, state: GraphState, metrics: ServerMetrics?, maxBodyBytes: Int) {
        self.face = face
        self.state = state
        self.maxBodyBytes = maxBodyBytes
        subjectHeader = Array(face.subjectHeader.lowercased().utf8)
        self.metrics = metrics
    }
}

/// Shared by one connection's ``HTTPFastPath`` and ``HTTPFaceHandler`` (same event loop): how
/// many requests the fast path handed to NIO's HTTP pipeline are not answered yet. While any
/// are, every later request goes the same way, so answers keep their order.
final class HTTPSlowPathLink {
    var owed = 0
}

@available(*, unavailable)
extension HTTPSlowPathLink: Sendable {}

/// The HTTP face's fast path, first after the ``ConnectionGuard``: `/forward-auth` and
/// `POST /access/v1/evaluation` are framed, parsed, decided and answered from the request's
/// bytes on the event loop that read them — no `HTTPRequestHead`, no `HTTPHeaders`, no
/// `String` or JSON object per request, no task or promise; answers of one read burst go out
/// with one flush, metrics are counted per burst.
///
/// It frames every request (request line, headers, `Content-Length` body) and hands the ones
/// it does not answer — other endpoints, `X-PIAM-Min-Revision`, `Expect`, HTTP/1.0, an
/// escaped or non-ASCII JSON string, a percent-encoded URI, anything malformed — whole to
/// NIO's HTTP pipeline and ``HTTPFaceHandler`` behind it, which answer exactly as before. What
/// it cannot frame (chunked bodies, bare-LF lines, a head over ``maxHeadBytes``, a body over
/// `http.max_body_bytes`, garbage) switches the connection to that pipeline for good, so NIO's
/// parser words the error. The fast path answers only what the general path would answer
/// with the same bytes: a test sends each request both ways and compares.
///
/// Memory: a partial request is kept up to ``maxHeadBytes`` plus `http.max_body_bytes`; the
/// answers of one read (at most one read's worth of requests) are buffered until the burst
/// ends, and while the peer does not take its output the guard holds further reads.
final class HTTPFastPath: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The longest request head the fast path waits for (NIO's pipeline takes longer ones).
    static let maxHeadBytes = 16 * 1024

    /// The answers it counts, as (endpoint, code).
    enum Answer: Int, CaseIterable {
        case forwardAuthAllowed, forwardAuthBadRequest, forwardAuthNoIdentity, forwardAuthDenied, evaluation
        var endpoint: String { self == .evaluation ? "evaluation" : "forward_auth" }
        var code: Int { [200, 400, 401, 403, 200][rawValue] }
    }

    private let config: HTTPFastPathConfig
    private let connectionGuard: ConnectionGuard
    private let link: HTTPSlowPathLink
    @exclusivity(unchecked) private var pending: ByteBuffer?
    /// Answers not yet written. One buffer for the connection's life: once the socket has taken
    /// a burst's answers it is uniquely referenced again and `clear()` reuses its storage, so
    /// answering allocates nothing.
    @exclusivity(unchecked) private var out = ByteBufferAllocator().buffer(capacity: 1024)
    /// Everything goes to NIO's pipeline from now on.
    @exclusivity(unchecked) private var slow = false
    @exclusivity(unchecked) private var closeAfterFlush = false
    /// NIO's pipeline got bytes in this read burst (it then sees the burst's end too).
    @exclusivity(unchecked) private var handedOver = false
    @exclusivity(unchecked) private var tally = QueryTally()
    @exclusivity(unchecked) private var answers = [Int](repeating: 0, count: Answer.allCases.count)
    @exclusivity(unchecked) private var counted = false
    /// Path segments of the URI being matched, and the filled templates of a route.
    @exclusivity(unchecked) private var segments: [Range<Int>] = []
    @exclusivity(unchecked) private var fill: [UInt8] = []
    @exclusivity(unchecked) private var burstSnapshot: Snapshot?
    @exclusivity(unchecked) private var burstGeneration = -1

    init(config: HTTPFastPathConfig, connectionGuard: ConnectionGuard, link: HTTPSlowPathLink) {
        self.config = config
        self.connectionGuard = connectionGuard
        self.link = link
        segments.reserveCapacity(16)
        fill.reserveCapacity(512)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if slow {
            handedOver = true
            context.fireChannelRead(data)
            return
        }
        if closeAfterFlush { return }
        if var p = pending {
            pending = nil
            p.writeBuffer(&buffer)
            buffer = p
        }
        while buffer.readableBytes > 0 && !closeAfterFlush {
            let scanned = buffer.withUnsafeReadableBytes { HTTPRequestScan.scan($0, config: config) }
            switch scanned {
            case .incomplete:
                pending = buffer
                return
            case .unframeable:
                handOver(buffer, context: context)
                slow = true
                return
            case .request(let request):
                let whole = request.headEnd + request.contentLength
                if link.owed == 0 && !request.slowOnly, let snapshot = snapshot() {
                    if out.readableBytes == 0 { out.clear() }
                    let answered = buffer.withUnsafeReadableBytes { raw in
                        answer(request, raw: UnsafeRawBufferPointer(rebasing: raw[..<whole]), snapshot: snapshot, into: &out)
                    }
                    if answered {
                        connectionGuard.messageCompleted()
                        buffer.moveReaderIndex(forwardBy: whole)
                        if !request.keepAlive { closeAfterFlush = true }
                        continue
                    }
                }
                let slice = buffer.readSlice(length: whole)!
                link.owed += 1
                handOver(slice, context: context)
                if !request.keepAlive {
                    // NIO's pipeline answers it and closes; what follows is its business too, so
                    // no answer of ours can follow its last (found by FuzzHTTPFastPath).
                    if buffer.readableBytes > 0 { handOver(buffer, context: context) }
                    slow = true
                    return
                }
            }
        }
    }

    /// Passes bytes to NIO's HTTP pipeline, after the answers already made (order).
    private func handOver(_ bytes: ByteBuffer, context: ChannelHandlerContext) {
        if out.readableBytes > 0 {
            countAnswers()
            context.write(wrapOutboundOut(out), promise: nil)
            out.moveReaderIndex(to: out.writerIndex)
        }
        handedOver = true
        context.fireChannelRead(wrapInboundOut(bytes))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        burstSnapshot = nil
        if out.readableBytes > 0 {
            countAnswers()
            if closeAfterFlush {
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(out)).whenComplete { _ in channel.close(promise: nil) }
            } else {
                context.writeAndFlush(wrapOutboundOut(out), promise: nil)
            }
            out.moveReaderIndex(to: out.writerIndex)
            // A burst's answers, bounded by one read; do not keep a large buffer for good.
            if out.capacity > 64 * 1024 { out = context.channel.allocator.buffer(capacity: 1024) }
        }
        // NIO's HTTP handlers behind this one act on the bytes they are given, not on the end of
        // a burst; a burst answered here entirely need not walk their five contexts.
        if handedOver {
            handedOver = false
            context.fireChannelReadComplete()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // At shutdown NIO's pipeline answers what comes (Connection: close) and closes.
        if event is ServerShutdownEvent {
            if let p = pending {
                pending = nil
                context.fireChannelRead(wrapInboundOut(p))
            }
            slow = true
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// The newest snapshot, looked up once per burst while nothing is published (as the socket).
    @inline(__always)
    private func snapshot() -> Snapshot? {
        let g = config.state.generation
        if g != burstGeneration || burstSnapshot == nil {
            burstSnapshot = config.state.snapshot
            burstGeneration = g
        }
        return burstSnapshot
    }

    /// Counts what was answered into the metrics, before the answers are written.
    private func countAnswers() {
        config.face.evaluator.flush(&tally)
        guard counted else { return }
        counted = false
        config.metrics?.flushFastPathAnswers(&answers)
    }

    // MARK: Answers

    /// Answers one whole request (`raw`: its bytes) when the fast path can; false, having
    /// written nothing, when NIO's pipeline must.
    private func answer(_ r: HTTPRequestScan.Request, raw: UnsafeRawBufferPointer, snapshot: Snapshot,
                        into out: inout ByteBuffer) -> Bool {
        switch r.endpoint {
        case .forwardAuth: forwardAuth(r, raw: raw, snapshot: snapshot, into: &out)
        case .evaluation: evaluation(r, raw: raw, snapshot: snapshot, into: &out)
        }
    }

    private func count(_ a: Answer) {
        answers[a.rawValue] &+= 1
        counted = true
    }

    /// `/forward-auth`, as ``HTTPFace/forwardAuth(_:snapshot:)`` answers it.
    private func forwardAuth(_ r: HTTPRequestScan.Request, raw: UnsafeRawBufferPointer, snapshot: Snapshot,
                             into out: inout ByteBuffer) -> Bool {
        let face = config.face
        guard let subject = r.subject.map({ UnsafeRawBufferPointer(rebasing: raw[$0]) }), subject.count > 0 else {
            writeForwardAuth(.unauthorized, reason: "no_identity", r, raw: raw, snapshot: snapshot, into: &out)
            count(.forwardAuthNoIdentity)
            return true
        }
        guard let uriRange = r.originalURI ?? r.forwardedURI else {
            writeForwardAuth(.badRequest, reason: "no_uri", r, raw: raw, snapshot: snapshot, into: &out)
            count(.forwardAuthBadRequest)
            return true
        }
        let uri = UnsafeRawBufferPointer(rebasing: raw[uriRange])
        // Percent-encoding and braces go the general way (decoding, UTF-8, template text).
        var end = uri.count
        for (i, b) in uri.enumerated() {
            if b == UInt8(ascii: "%") || b == UInt8(ascii: "{") || b == UInt8(ascii: "}") { return false }
            if (b == UInt8(ascii: "?") || b == UInt8(ascii: "#")) && end == uri.count { end = i }
        }
        let path = UnsafeRawBufferPointer(rebasing: uri[..<end])
        segments.removeAll(keepingCapacity: true)
        var valid = path.first == UInt8(ascii: "/")
        if valid {
            var start = 1
            for i in 1...path.count where i == path.count || path[i] == UInt8(ascii: "/") {
                let n = i - start
                if n > 0 {
                    if path[start] == UInt8(ascii: ".") && (n == 1 || (n == 2 && path[start + 1] == UInt8(ascii: "."))) { valid = false }
                    segments.append(start..<i)
                }
                start = i + 1
            }
        }
        guard valid else {
            writeForwardAuth(.forbidden, reason: "invalid_uri", r, raw: raw, snapshot: snapshot, into: &out)
            count(.forwardAuthDenied)
            return true
        }
        let method = r.originalMethod ?? r.forwardedMethod ?? r.method
        let methodBytes = UnsafeRawBufferPointer(rebasing: raw[method])
        guard let route = face.routes.first(where: { Self.matches($0.compiled, method: methodBytes, path: path, segments: segments) }) else {
            if face.allowUnrouted {
                writeAllowed(subject: subject, r, raw: raw, snapshot: snapshot, into: &out)
                return true
            }
            writeForwardAuth(.forbidden, reason: "no_route", r, raw: raw, snapshot: snapshot, into: &out)
            count(.forwardAuthDenied)
            return true
        }
        // The check's fields, filled from the path into one scratch array.
        let c = route.compiled
        fill.removeAll(keepingCapacity: true)
        let action = append(c.action, path: path), type = append(c.type, path: path), id = append(c.id, path: path)
        let org = c.org.map { append($0, path: path) }, owner = c.owner.map { append($0, path: path) }
        // A subject to create just in time goes the general way, which holds the request for it
        // (nothing was written, decided or counted yet).
        if face.wantsJIT(subject: subject, on: snapshot) { return false }
        let now = QueryEvaluator.now()
        let start = QueryEvaluator.monotonicNanoseconds()
        let d = fill.withUnsafeBytes { f in
            face.evaluator.decide(utf8: CheckBytes(subject: subject, action: UnsafeRawBufferPointer(rebasing: f[action]),
                                     resourceType: UnsafeRawBufferPointer(rebasing: f[type]),
                                     resourceID: UnsafeRawBufferPointer(rebasing: f[id]),
                                     org: org.map { UnsafeRawBufferPointer(rebasing: f[$0]) },
                                     owner: owner.map { UnsafeRawBufferPointer(rebasing: f[$0]) }), on: snapshot, now: now)
        }
        if face.evaluator.metrics != nil {
            tally.record(opcode: Opcode.check.rawValue, nanoseconds: QueryEvaluator.monotonicNanoseconds() &- start)
            tally.record(d)
        }
        if d.allowed {
            writeAllowed(subject: subject, r, raw: raw, snapshot: snapshot, into: &out)
        } else {
            writeForwardAuth(.forbidden, reason: d.reason.name, r, raw: raw, snapshot: snapshot, into: &out)
            count(.forwardAuthDenied)
        }
        return true
    }

    /// Whether a compiled route matches an upper-cased-on-the-fly method and the path's segments.
    private static func matches(_ c: ForwardAuthRoute.Compiled, method: UnsafeRawBufferPointer, path: UnsafeRawBufferPointer,
                                segments: [Range<Int>]) -> Bool {
        guard segments.count == c.literals.count else { return false }
        if !c.methods.isEmpty {
            guard c.methods.contains(where: { m in
                m.count == method.count && zip(m, method).allSatisfy { $0 == HTTPRequestScan.upper($1) }
            }) else { return false }
        }
        for (literal, range) in zip(c.literals, segments) {
            guard let literal else { continue }
            guard literal.count == range.count,
                  literal.withUnsafeBytes({ memcmp($0.baseAddress!, path.baseAddress! + range.lowerBound, range.count) == 0 })
            else { return false }
        }
        return true
    }

    /// Appends a filled template to `fill`; returns where it is.
    private func append(_ parts: [ForwardAuthRoute.Part], path: UnsafeRawBufferPointer) -> Range<Int> {
        let start = fill.count
        for p in parts {
            switch p {
            case .literal(let l): fill.append(contentsOf: l)
            case .segment(let i): fill.append(contentsOf: path[segments[i]])
            }
        }
        return start..<fill.count
    }

    private func writeAllowed(subject: UnsafeRawBufferPointer, _ r: HTTPRequestScan.Request, raw: UnsafeRawBufferPointer,
                              snapshot: Snapshot, into out: inout ByteBuffer) {
        out.writeStaticString("HTTP/1.1 200 OK\r\nX-PIAM-Subject: ")
        if let (id, org) = snapshot.graph.userIdentity(utf8: subject) {
            out.writeString(id)
            out.writeStaticString("\r\nX-PIAM-Org: ")
            out.writeString(org)
        } else {
            out.writeBytes(subject)
        }
        out.writeStaticString("\r\nX-PIAM-Revision: ")
        Self.writeDecimal(snapshot.revision, into: &out)
        finishEmpty(r, raw: raw, into: &out)
        count(.forwardAuthAllowed)
    }

    private func writeForwardAuth(_ status: HTTPResponseStatus, reason: String, _ r: HTTPRequestScan.Request,
                                  raw: UnsafeRawBufferPointer, snapshot: Snapshot, into out: inout ByteBuffer) {
        switch status {
        case .unauthorized: out.writeStaticString("HTTP/1.1 401 Unauthorized\r\nX-PIAM-Reason: ")
        case .badRequest: out.writeStaticString("HTTP/1.1 400 Bad Request\r\nX-PIAM-Reason: ")
        default: out.writeStaticString("HTTP/1.1 403 Forbidden\r\nX-PIAM-Reason: ")
        }
        out.writeString(reason)
        out.writeStaticString("\r\nX-PIAM-Revision: ")
        Self.writeDecimal(snapshot.revision, into: &out)
        finishEmpty(r, raw: raw, into: &out)
    }

    /// The end of a forward-auth answer: no body, so every proxy can keep the connection.
    private func finishEmpty(_ r: HTTPRequestScan.Request, raw: UnsafeRawBufferPointer, into out: inout ByteBuffer) {
        writeTrailer(r, raw: raw, into: &out)
        out.writeStaticString("Content-Length: 0\r\n")
        if !r.keepAlive { out.writeStaticString("Connection: close\r\n") }
        out.writeStaticString("\r\n")
    }

    /// `X-Request-ID`, echoed.
    private func writeTrailer(_ r: HTTPRequestScan.Request, raw: UnsafeRawBufferPointer, into out: inout ByteBuffer) {
        out.writeStaticString("\r\n")
        if let id = r.requestID {
            out.writeStaticString("X-Request-ID: ")
            out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[id]))
            out.writeStaticString("\r\n")
        }
    }

    /// `POST /access/v1/evaluation`, as ``HTTPFace`` answers it (same bytes).
    private func evaluation(_ r: HTTPRequestScan.Request, raw: UnsafeRawBufferPointer, snapshot: Snapshot,
                            into out: inout ByteBuffer) -> Bool {
        let body = UnsafeRawBufferPointer(rebasing: raw[r.headEnd..<(r.headEnd + r.contentLength)])
        guard let e = EvaluationScan.scan(body) else { return false }
        let d: Decision
        if EvaluationScan.namesUser(body, e.subjectType) {
            if config.face.wantsJIT(subject: UnsafeRawBufferPointer(rebasing: body[e.subjectID]), on: snapshot) { return false }
            let now = QueryEvaluator.now()
            let start = QueryEvaluator.monotonicNanoseconds()
            func part(_ range: Range<Int>) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: body[range]) }
            d = config.face.evaluator.decide(utf8: CheckBytes(subject: part(e.subjectID), action: part(e.action), resourceType: part(e.resourceType),
                                         resourceID: part(e.resourceID), org: e.org.map(part), owner: e.owner.map(part)), on: snapshot, now: now)
            if config.face.evaluator.metrics != nil {
                tally.record(opcode: Opcode.check.rawValue, nanoseconds: QueryEvaluator.monotonicNanoseconds() &- start)
                tally.record(d)
            }
        } else {
            d = .deny(.unknownSubject)
        }
        out.writeStaticString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-PIAM-Revision: ")
        Self.writeDecimal(snapshot.revision, into: &out)
        writeTrailer(r, raw: raw, into: &out)
        // The body's length, known before it is written.
        let reason = d.reason.name
        var length = d.allowed ? 17 : 18  // {"decision":true} / {"decision":false}
        if e.details {
            // {"context":{"reason":"R","reason_code":N,"revision":V},  then "decision":…} without its "{".
            length += 22 + reason.utf8.count + 16 + Self.decimalCount(Int64(d.reason.rawValue)) + 12
                + Self.decimalCount(snapshot.revision) + 2 - 1
        }
        out.writeStaticString("Content-Length: ")
        Self.writeDecimal(Int64(length), into: &out)
        out.writeStaticString("\r\n")
        if !r.keepAlive { out.writeStaticString("Connection: close\r\n") }
        out.writeStaticString("\r\n")
        let bodyAt = out.writerIndex
        if e.details {
            out.writeStaticString("{\"context\":{\"reason\":\"")
            out.writeString(reason)
            out.writeStaticString("\",\"reason_code\":")
            Self.writeDecimal(Int64(d.reason.rawValue), into: &out)
            out.writeStaticString(",\"revision\":")
            Self.writeDecimal(snapshot.revision, into: &out)
            out.writeStaticString("},")
        } else {
            out.writeStaticString("{")
        }
        out.writeStaticString(d.allowed ? "\"decision\":true}" : "\"decision\":false}")
        assert(out.writerIndex - bodyAt == length, "evaluation body length")
        count(.evaluation)
        return true
    }

    /// A decimal integer, without a `String`.
    static func writeDecimal(_ value: Int64, into out: inout ByteBuffer) {
        if value < 0 { out.writeInteger(UInt8(ascii: "-")) }
        var v = value.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { d in
            var i = 0
            repeat { d[23 - i] = UInt8(ascii: "0") + UInt8(v % 10); v /= 10; i += 1 } while v > 0
            out.writeBytes(UnsafeRawBufferPointer(rebasing: d[(24 - i)...]))
        }
    }

    /// How many characters ``writeDecimal(_:into:)`` writes.
    static func decimalCount(_ value: Int64) -> Int {
        var v = value.magnitude, n = value < 0 ? 2 : 1
        while v >= 10 { v /= 10; n += 1 }
        return n
    }
}

@available(*, unavailable)
extension HTTPFastPath: Sendable {}

/// Frames one HTTP/1.1 request from the front of a buffer and picks out the headers the fast
/// path reads — ranges into the bytes, nothing copied.
enum HTTPRequestScan {
    enum Endpoint { case forwardAuth, evaluation }

    struct Request {
        var endpoint: Endpoint = .forwardAuth
        /// The request line's method.
        var method: Range<Int> = 0..<0
        var headEnd = 0
        var contentLength = 0
        var keepAlive = true
        /// A whole request the fast path leaves to NIO's pipeline.
        var slowOnly = false
        var subject: Range<Int>?
        var originalMethod: Range<Int>?
        var forwardedMethod: Range<Int>?
        var originalURI: Range<Int>?
        var forwardedURI: Range<Int>?
        var requestID: Range<Int>?
    }

    enum Result {
        /// More bytes are needed.
        case incomplete
        /// Not a request the fast path can frame: NIO's pipeline takes the connection.
        case unframeable
        case request(Request)
    }

    @inline(__always)
    static func upper(_ b: UInt8) -> UInt8 { b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z") ? b &- 32 : b }
    @inline(__always)
    static func lower(_ b: UInt8) -> UInt8 { b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z") ? b &+ 32 : b }

    /// Whether `bytes` are exactly `text` (one `memcmp`; `elementsEqual` against a string's UTF-8
    /// view walks it generically, a character at a time).
    @inline(__always)
    static func equals(_ bytes: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        bytes.count == text.utf8CodeUnitCount && (bytes.count == 0 || memcmp(bytes.baseAddress!, text.utf8Start, bytes.count) == 0)
    }

    /// Whether `raw[range]` equals the lower-case ASCII `name`, ignoring case.
    @inline(__always)
    static func equalsLower(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>, _ name: StaticString) -> Bool {
        guard range.count == name.utf8CodeUnitCount else { return false }
        let p = name.utf8Start
        for i in 0..<range.count where lower(raw[range.lowerBound + i]) != p[i] { return false }
        return true
    }

    @inline(__always)
    static func equalsLower(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>, _ name: [UInt8]) -> Bool {
        guard range.count == name.count else { return false }
        for i in 0..<range.count where lower(raw[range.lowerBound + i]) != name[i] { return false }
        return true
    }

    /// RFC 9110 token characters (a header name).
    @inline(__always)
    static func isToken(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"): true
        default: false
        }
    }

    static func scan(_ raw: UnsafeRawBufferPointer, config: HTTPFastPathConfig) -> Result {
        let n = raw.count
        let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n"), sp = UInt8(ascii: " "), ht = UInt8(ascii: "\t")
        /// The end of the line starting at `from` (the index of its CR), nil when not there yet;
        /// `bad` for a bare LF.
        var bad = false
        func lineEnd(_ from: Int) -> Int? {
            var i = from
            while i < n {
                if raw[i] == lf {
                    if i == from || raw[i - 1] != cr { bad = true; return nil }
                    return i - 1
                }
                i += 1
            }
            return nil
        }
        var r = Request()
        // The request line: METHOD SP target SP HTTP/1.x.
        guard let lineStop = lineEnd(0) else {
            return bad || n > HTTPFastPath.maxHeadBytes ? .unframeable : .incomplete
        }
        var i = 0
        while i < lineStop && raw[i] != sp { guard isToken(raw[i]) else { return .unframeable }; i += 1 }
        guard i > 0, i < lineStop else { return .unframeable }
        r.method = 0..<i
        let targetStart = i + 1
        var j = targetStart
        var queryAt: Int?
        while j < lineStop && raw[j] != sp {
            let b = raw[j]
            guard b > 0x20 && b < 0x7f else { return .unframeable }
            if b == UInt8(ascii: "?") && queryAt == nil { queryAt = j }
            j += 1
        }
        guard j > targetStart, lineStop - j == 9 else { return .unframeable }
        let version = UnsafeRawBufferPointer(rebasing: raw[(j + 1)..<lineStop])
        if equals(version, "HTTP/1.1") {
        } else if equals(version, "HTTP/1.0") {
            // NIO closes after it (unless `Connection: keep-alive`; closing is the safe side).
            r.slowOnly = true
            r.keepAlive = false
        } else {
            return .unframeable
        }
        let path = UnsafeRawBufferPointer(rebasing: raw[targetStart..<(queryAt ?? j)])
        let method = UnsafeRawBufferPointer(rebasing: raw[r.method])
        if equals(path, "/forward-auth") {
            r.endpoint = .forwardAuth
            if !(equals(method, "GET") || equals(method, "HEAD") || equals(method, "POST")) {
                r.slowOnly = true
            }
        } else if equals(path, "/access/v1/evaluation") {
            r.endpoint = .evaluation
            if !equals(method, "POST") { r.slowOnly = true }
        } else {
            r.slowOnly = true
        }
        // Headers.
        var contentLength: Int?
        i = lineStop + 2
        while true {
            guard let stop = lineEnd(i) else { return bad || n > HTTPFastPath.maxHeadBytes ? .unframeable : .incomplete }
            if stop == i { r.headEnd = i + 2; break }
            guard i < n, raw[i] != sp && raw[i] != ht else { return .unframeable }  // obs-fold
            var colon = i
            while colon < stop && raw[colon] != UInt8(ascii: ":") {
                guard isToken(raw[colon]) else { return .unframeable }
                colon += 1
            }
            guard colon < stop, colon > i else { return .unframeable }
            var vs = colon + 1, ve = stop
            while vs < ve && (raw[vs] == sp || raw[vs] == ht) { vs += 1 }
            while ve > vs && (raw[ve - 1] == sp || raw[ve - 1] == ht) { ve -= 1 }
            // NIO keeps a value's trailing whitespace, and the general path reads the original
            // method and URI and the request id as they are ("GET " matches no GET route): such a
            // request goes the general way, which answers it as before (found by FuzzHTTPFastPath).
            if ve < stop { r.slowOnly = true }
            for k in vs..<ve {
                let b = raw[k]
                if b >= 0x80 { r.slowOnly = true } else if b < 0x20 && b != ht || b == 0x7f { return .unframeable }
            }
            let name = i..<colon, value = vs..<ve
            if equalsLower(raw, name, config.subjectHeader) && r.subject == nil { r.subject = value }
            switch name.count {
            case 14 where equalsLower(raw, name, "content-length"):
                guard contentLength == nil, value.count > 0, value.count <= 10 else { return .unframeable }
                var v = 0
                for k in value {
                    let b = raw[k]
                    guard b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") else { return .unframeable }
                    v = v * 10 + Int(b - UInt8(ascii: "0"))
                }
                guard v <= config.maxBodyBytes else { return .unframeable }
                contentLength = v
            case 17 where equalsLower(raw, name, "transfer-encoding"):
                return .unframeable
            case 10 where equalsLower(raw, name, "connection"):
                // Tokens: close ends the connection; an upgrade is NIO's business.
                var t = value.lowerBound
                while t < value.upperBound {
                    var e = t
                    while e < value.upperBound && raw[e] != UInt8(ascii: ",") { e += 1 }
                    var a = t, b = e
                    while a < b && (raw[a] == sp || raw[a] == ht) { a += 1 }
                    while b > a && (raw[b - 1] == sp || raw[b - 1] == ht) { b -= 1 }
                    if equalsLower(raw, a..<b, "close") { r.keepAlive = false }
                    if equalsLower(raw, a..<b, "upgrade") { return .unframeable }
                    t = e + 1
                }
            case 7 where equalsLower(raw, name, "upgrade"):
                return .unframeable
            case 6 where equalsLower(raw, name, "expect"):
                r.slowOnly = true
            case 19 where equalsLower(raw, name, "x-piam-min-revision"):
                r.slowOnly = true
            case 17 where equalsLower(raw, name, "x-original-method"):
                if r.originalMethod == nil { r.originalMethod = value }
            case 18 where equalsLower(raw, name, "x-forwarded-method"):
                if r.forwardedMethod == nil { r.forwardedMethod = value }
            case 14 where equalsLower(raw, name, "x-original-uri"):
                if r.originalURI == nil { r.originalURI = value }
            case 15 where equalsLower(raw, name, "x-forwarded-uri"):
                if r.forwardedURI == nil { r.forwardedURI = value }
            case 12 where equalsLower(raw, name, "x-request-id"):
                if r.requestID == nil { r.requestID = value }
            default:
                break
            }
            i = stop + 2
        }
        r.contentLength = contentLength ?? 0
        guard n >= r.headEnd + r.contentLength else { return .incomplete }
        return .request(r)
    }
}

/// The fields of an AuthZEN evaluation request read from its JSON bytes, for the shape
/// ``HTTPFace`` accepts without an error: plain (unescaped, ASCII) strings where PIAM reads
/// them, every other value validated and skipped. Anything else — an escape in a field PIAM
/// reads, a duplicate key, `null`, non-ASCII, nesting deeper than 32 — is declined (`nil`) and
/// answered by the general path, which words the error or decodes the escapes.
enum EvaluationScan {
    struct Fields {
        var subjectType = 0..<0, subjectID = 0..<0, action = 0..<0, resourceType = 0..<0, resourceID = 0..<0
        var org: Range<Int>?, owner: Range<Int>?
        var details = false
    }

    /// `user` or `identity` (``HTTPFace/userTypes``).
    static func namesUser(_ raw: UnsafeRawBufferPointer, _ type: Range<Int>) -> Bool {
        let t = UnsafeRawBufferPointer(rebasing: raw[type])
        return HTTPRequestScan.equals(t, "user") || HTTPRequestScan.equals(t, "identity")
    }

    static func scan(_ raw: UnsafeRawBufferPointer) -> Fields? {
        var s = Scanner(raw: raw)
        var f = Fields()
        var seen: UInt8 = 0
        var have: UInt8 = 0
        s.ws()
        let ok = s.object { s, key in
            let bit: UInt8
            if s.key(key, "subject") { bit = 1 } else if s.key(key, "action") { bit = 2 } else if s.key(key, "resource") { bit = 4 }
            else if s.key(key, "context") { bit = 8 } else { return s.skip(depth: 0) }
            guard seen & bit == 0 else { return false }
            seen |= bit
            switch bit {
            case 1:
                return s.object { s, k in
                    if s.key(k, "type") { guard have & 1 == 0, let v = s.plain() else { return false }; have |= 1; f.subjectType = v; return true }
                    if s.key(k, "id") { guard have & 2 == 0, let v = s.plain() else { return false }; have |= 2; f.subjectID = v; return true }
                    if s.key(k, "properties") { return s.peek == UInt8(ascii: "{") && s.skip(depth: 1) }
                    return s.skip(depth: 1)
                }
            case 2:
                return s.object { s, k in
                    if s.key(k, "name") { guard have & 4 == 0, let v = s.plain() else { return false }; have |= 4; f.action = v; return true }
                    return s.skip(depth: 1)
                }
            case 4:
                return s.object { s, k in
                    if s.key(k, "type") { guard have & 8 == 0, let v = s.plain() else { return false }; have |= 8; f.resourceType = v; return true }
                    if s.key(k, "id") { guard have & 16 == 0, let v = s.plain() else { return false }; have |= 16; f.resourceID = v; return true }
                    if s.key(k, "properties") {
                        guard have & 32 == 0 else { return false }
                        have |= 32
                        var props: UInt8 = 0
                        return s.object { s, p in
                            if s.key(p, "org") { guard props & 1 == 0, let v = s.plain() else { return false }; props |= 1; f.org = v; return true }
                            if s.key(p, "owner") { guard props & 2 == 0, let v = s.plain() else { return false }; props |= 2; f.owner = v; return true }
                            return s.skip(depth: 2)
                        }
                    }
                    return s.skip(depth: 1)
                }
            default:
                var detailsSeen = false
                return s.object { s, k in
                    if s.key(k, "piam_details") {
                        guard !detailsSeen else { return false }
                        detailsSeen = true
                        if s.literal("true") { f.details = true; return true }
                        return s.literal("false")
                    }
                    return s.skip(depth: 1)
                }
            }
        }
        s.ws()
        guard ok, s.at == raw.count, have & 31 == 31, seen & 7 == 7 else { return nil }
        return f
    }

    struct Scanner {
        let raw: UnsafeRawBufferPointer
        var at = 0

        init(raw: UnsafeRawBufferPointer) { self.raw = raw }

        var peek: UInt8? { at < raw.count ? raw[at] : nil }

        mutating func ws() {
            while at < raw.count {
                switch raw[at] {
                case 0x20, 0x09, 0x0a, 0x0d: at += 1
                default: return
                }
            }
        }

        mutating func eat(_ c: UInt8) -> Bool {
            guard at < raw.count, raw[at] == c else { return false }
            at += 1
            return true
        }

        func key(_ range: Range<Int>, _ name: StaticString) -> Bool {
            guard range.count == name.utf8CodeUnitCount else { return false }
            return HTTPRequestScan.equals(UnsafeRawBufferPointer(rebasing: raw[range]), name)
        }

        /// A non-empty string of printable ASCII without escapes: its content's range.
        mutating func plain() -> Range<Int>? {
            guard eat(UInt8(ascii: "\"")) else { return nil }
            let start = at
            while at < raw.count {
                let b = raw[at]
                if b == UInt8(ascii: "\"") {
                    guard at > start else { return nil }
                    at += 1
                    return start..<(at - 1)
                }
                guard b >= 0x20 && b < 0x7f && b != UInt8(ascii: "\\") else { return nil }
                at += 1
            }
            return nil
        }

        mutating func literal(_ word: StaticString) -> Bool {
            let n = word.utf8CodeUnitCount
            guard raw.count - at >= n,
                  UnsafeRawBufferPointer(rebasing: raw[at..<(at + n)]).elementsEqual(UnsafeRawBufferPointer(start: word.utf8Start, count: n))
            else { return false }
            at += n
            return true
        }

        /// An object: calls `member` with each key's range, positioned at its value.
        mutating func object(_ member: (inout Scanner, Range<Int>) -> Bool) -> Bool {
            guard eat(UInt8(ascii: "{")) else { return false }
            ws()
            if eat(UInt8(ascii: "}")) { return true }
            while true {
                ws()
                guard eat(UInt8(ascii: "\"")) else { return false }
                let start = at
                while at < raw.count && raw[at] != UInt8(ascii: "\"") {
                    guard raw[at] >= 0x20 && raw[at] < 0x7f && raw[at] != UInt8(ascii: "\\") else { return false }
                    at += 1
                }
                guard at < raw.count else { return false }
                let key = start..<at
                at += 1
                ws()
                guard eat(UInt8(ascii: ":")) else { return false }
                ws()
                guard member(&self, key) else { return false }
                ws()
                if eat(UInt8(ascii: ",")) { continue }
                return eat(UInt8(ascii: "}"))
            }
        }

        /// Validates and skips any JSON value except `null` (which the general path may read
        /// as "absent" or refuse; it decides).
        mutating func skip(depth: Int) -> Bool {
            guard depth < 32, let c = peek else { return false }
            switch c {
            case UInt8(ascii: "{"):
                return object { s, _ in s.skip(depth: depth + 1) }
            case UInt8(ascii: "["):
                at += 1
                ws()
                if eat(UInt8(ascii: "]")) { return true }
                while true {
                    ws()
                    guard peek != UInt8(ascii: "n"), skip(depth: depth + 1) else { return false }
                    ws()
                    if eat(UInt8(ascii: ",")) { continue }
                    return eat(UInt8(ascii: "]"))
                }
            case UInt8(ascii: "\""):
                at += 1
                while at < raw.count {
                    let b = raw[at]
                    if b == UInt8(ascii: "\"") { at += 1; return true }
                    guard b >= 0x20 && b < 0x80 else { return false }
                    if b == UInt8(ascii: "\\") {
                        at += 1
                        guard let e = peek else { return false }
                        switch e {
                        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                             UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                            at += 1
                        default:
                            // \u escapes (surrogates and all) are left to the general path.
                            return false
                        }
                        continue
                    }
                    at += 1
                }
                return false
            case UInt8(ascii: "t"): return literal("true")
            case UInt8(ascii: "f"): return literal("false")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                // RFC 8259 numbers, at most 20 characters.
                let start = at
                _ = eat(UInt8(ascii: "-"))
                func digits(_ s: inout Scanner) -> Int {
                    var k = 0
                    while let d = s.peek, d >= UInt8(ascii: "0") && d <= UInt8(ascii: "9") { s.at += 1; k += 1 }
                    return k
                }
                guard let first = peek else { return false }
                if first == UInt8(ascii: "0") { at += 1 } else if digits(&self) == 0 { return false }
                if eat(UInt8(ascii: ".")) { guard digits(&self) > 0 else { return false } }
                if eat(UInt8(ascii: "e")) || eat(UInt8(ascii: "E")) {
                    if !eat(UInt8(ascii: "+")) { _ = eat(UInt8(ascii: "-")) }
                    guard digits(&self) > 0 else { return false }
                }
                return at - start <= 20
            default:
                return false
            }
        }
    }
}

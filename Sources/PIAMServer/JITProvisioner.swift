import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import PIAMEngine
import Prometheus

/// Where piam-admind listens, for piamd's just-in-time calls (`jit.admind`): a Unix socket
/// (`unix:/run/piam/admind.sock` or just the absolute path) or `http://HOST:PORT`.
public enum JITAddress: Sendable, Hashable, CustomStringConvertible {
    /// A Unix socket path.
    case unix(String)
    /// A TCP host and port (HTTP/1.1, no TLS: a loopback address).
    case tcp(host: String, port: Int)

    /// Parses `jit.admind`.
    /// - Throws: `invalid_input` naming the accepted forms.
    public init(parsing raw: String) throws(PIAMError) {
        if raw.hasPrefix("unix:") || raw.hasPrefix("/") {
            let path = raw.hasPrefix("unix:") ? String(raw.dropFirst(5)) : raw
            guard path.hasPrefix("/") else { throw PIAMError(.invalidInput, "config jit.admind: \"\(raw)\": a socket path is absolute") }
            self = .unix(path)
            return
        }
        if raw.hasPrefix("http://") {
            let rest = raw.dropFirst(7).split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)[0]
            if let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) {
                var host = String(rest[..<colon])
                if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
                if !host.isEmpty {
                    self = .tcp(host: host, port: port)
                    return
                }
            }
        }
        throw PIAMError(.invalidInput, "config jit.admind: \"\(raw)\" is neither unix:/path, /path nor http://HOST:PORT")
    }

    /// The address as configured (`unix:/path`, `http://host:port`).
    public var description: String {
        switch self {
        case .unix(let p): "unix:\(p)"
        case .tcp(let h, let p): "http://\(h):\(p)"
        }
    }
}

/// piamd's side of just-in-time creation: asks piam-admind (`POST /admin/v1/jit`) to create the
/// user an unknown subject names, and answers with the revision to wait for.
///
/// Only the HTTP face's forward-auth and AuthZEN evaluations come here, and only after a
/// decision denied `unknown_subject` for a subject inside a JIT-enabled namespace
/// (``Snapshot/jit``): the query path of known subjects never does. Bounded: at most
/// `jit.max_in_flight` calls at once (beyond: `busy`), concurrent requests for one subject
/// share one call, and a subject piam-admind refused is not asked for again until the graph's
/// revision moves (`skipped`). Each outcome is counted in `piam_jit_total{result}`.
public final class JITProvisioner: Sendable {
    /// The outcomes counted in `piam_jit_total{result=…}`.
    public enum Outcome: String, Sendable, CaseIterable {
        /// piam-admind created the user.
        case created
        /// The user existed already (another piamd, or a race).
        case existing
        /// piam-admind refused (a problem with a code, e.g. `jit_not_eligible`).
        case refused
        /// The call failed (connection, a 5xx, an answer that does not parse).
        case failed
        /// The call, or the graph catching up with its revision, took longer than `jit.timeout_ms`.
        case timeout
        /// `jit.max_in_flight` calls were running.
        case busy
        /// piam-admind refused this subject at the same revision before.
        case skipped
    }

    let address: JITAddress
    let token: String
    /// `jit.timeout_ms`.
    public let timeout: TimeAmount
    let maxInFlight: Int
    let group: any EventLoopGroup
    let logger: Logger
    private let counters: [Outcome: Counter]

    private struct Locked {
        var inFlight: [String: [@Sendable (Int64?) -> Void]] = [:]
        /// Subjects refused, with the graph revision they were asked at.
        var refused: [String: Int64] = [:]
    }
    private let locked = NIOLockedValueBox(Locked())

    /// The most refused subjects remembered (beyond it the memory starts over).
    static let maxRemembered = 10_000

    /// - Throws: `invalid_input` when the address does not parse or the token file cannot be read.
    public init(config: DaemonConfig, metrics: ServerMetrics?, logger: Logger, group: any EventLoopGroup) throws(PIAMError) {
        guard let raw = config.jitAdmind, let tokenFile = config.jitTokenFile else {
            throw PIAMError(.invalidInput, "config jit.admind and jit.token_file are both needed for just-in-time creation")
        }
        address = try JITAddress(parsing: raw)
        guard let data = FileManager.default.contents(atPath: tokenFile),
              case let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty
        else {
            throw PIAMError(.invalidInput, "config jit.token_file: cannot read a token from \(tokenFile)")
        }
        token = text
        timeout = .milliseconds(Int64(config.jitTimeoutMS))
        maxInFlight = config.jitMaxInFlight
        self.group = group
        self.logger = logger
        var c: [Outcome: Counter] = [:]
        if let registry = metrics?.registry {
            let d = MetricNameDescriptor(namespace: "piam", metricName: "jit", unitName: "total",
                                         helpText: "Just-in-time creations piamd asked piam-admind for, by outcome.")
            for o in Outcome.allCases { c[o] = registry.makeCounter(descriptor: d, labels: [("result", o.rawValue)]) }
        }
        counters = c
    }

    /// Counts one outcome.
    func count(_ o: Outcome) { counters[o]?.increment() }

    /// Asks piam-admind to create the user `subject` names (the graph at `revision` does not
    /// know it); `done` gets the revision to wait for, or `nil` on any failure (counted and
    /// logged). Called once, on some event loop.
    func provision(subject: String, revision: Int64, done: @escaping @Sendable (Int64?) -> Void) {
        enum Start { case call, joined, busy, skipped }
        let start: Start = locked.withLockedValue { s in
            if let r = s.refused[subject] {
                if r == revision { return .skipped }
                s.refused[subject] = nil
            }
            if s.inFlight[subject] != nil {
                s.inFlight[subject]!.append(done)
                return .joined
            }
            if s.inFlight.count >= maxInFlight { return .busy }
            s.inFlight[subject] = [done]
            return .call
        }
        switch start {
        case .joined: return
        case .skipped: count(.skipped); return done(nil)
        case .busy:
            count(.busy)
            logger.warning("jit: too many creations in flight", metadata: ["subject": "\(subject)", "max_in_flight": "\(maxInFlight)"])
            return done(nil)
        case .call: break
        }
        call(subject: subject).whenComplete { result in
            var answer: Int64?
            var refusedNow = false
            switch result {
            case .success(let reply):
                let o = (try? JSONSerialization.jsonObject(with: Data(reply.body))) as? [String: Any]
                if reply.status == 200 || reply.status == 201, let rev = (o?["revision"] as? NSNumber)?.int64Value {
                    answer = rev
                    let changed = (o?["changed"] as? Bool) ?? true
                    self.count(changed ? .created : .existing)
                    self.logger.info("jit: user created", metadata: ["subject": "\(subject)", "revision": "\(rev)", "changed": "\(changed)"])
                } else if (400..<500).contains(reply.status) {
                    refusedNow = true
                    self.count(.refused)
                    self.logger.notice("jit: piam-admind refused", metadata: [
                        "subject": "\(subject)", "status": "\(reply.status)", "code": "\(o?["code"] ?? "?")",
                    ])
                } else {
                    self.count(.failed)
                    self.logger.warning("jit: piam-admind answered \(reply.status)", metadata: ["subject": "\(subject)"])
                }
            case .failure(let error):
                let timedOut = (error as? JITCallError) == .timeout
                self.count(timedOut ? .timeout : .failed)
                self.logger.warning("jit: cannot reach piam-admind at \(self.address): \(error)", metadata: ["subject": "\(subject)"])
            }
            let waiting = self.locked.withLockedValue { s in
                if refusedNow {
                    if s.refused.count >= Self.maxRemembered { s.refused = [:] }
                    s.refused[subject] = revision
                }
                return s.inFlight.removeValue(forKey: subject) ?? []
            }
            for w in waiting { w(answer) }
        }
    }

    /// One HTTP/1.1 exchange with piam-admind.
    struct Reply: Sendable {
        var status: Int
        var body: [UInt8]
    }

    enum JITCallError: Error, Equatable, CustomStringConvertible {
        case timeout
        case closed
        var description: String {
            switch self {
            case .timeout: "no answer within jit.timeout_ms"
            case .closed: "the connection closed before the answer was complete"
            }
        }
    }

    /// `POST /admin/v1/jit` with the bearer token, on a connection of its own, bounded by
    /// `jit.timeout_ms` from connect to the answer's end.
    func call(subject: String) -> EventLoopFuture<Reply> {
        let loop = group.next()
        let promise = loop.makePromise(of: Reply.self)
        let body = (try? JSONSerialization.data(withJSONObject: ["subject": subject])) ?? Data()
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ReplyCollector(promise: promise))
                }
            }
        let connected: EventLoopFuture<any Channel>
        let host: String
        switch address {
        case .unix(let path):
            connected = bootstrap.connect(unixDomainSocketPath: path)
            host = "localhost"
        case .tcp(let h, let port):
            connected = bootstrap.connect(host: h, port: port)
            host = h.contains(":") ? "[\(h)]:\(port)" : "\(h):\(port)"
        }
        let token = self.token
        let timer = loop.scheduleTask(in: timeout) { promise.fail(JITCallError.timeout) }
        connected.whenComplete { result in
            switch result {
            case .failure(let e): promise.fail(e)
            case .success(let channel):
                var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/admin/v1/jit")
                head.headers.add(name: "Host", value: host)
                head.headers.add(name: "Authorization", value: "Bearer \(token)")
                head.headers.add(name: "Content-Type", value: "application/json")
                head.headers.add(name: "Content-Length", value: String(body.count))
                head.headers.add(name: "Connection", value: "close")
                var buffer = channel.allocator.buffer(capacity: body.count)
                buffer.writeBytes(body)
                channel.write(HTTPClientRequestPart.head(head), promise: nil)
                channel.write(HTTPClientRequestPart.body(.byteBuffer(buffer)), promise: nil)
                channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
                promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
            }
        }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        return promise.futureResult
    }
}

/// Collects one HTTP response into ``JITProvisioner/Reply``.
private final class ReplyCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    let promise: EventLoopPromise<JITProvisioner.Reply>
    var status = 0
    var body: [UInt8] = []

    init(promise: EventLoopPromise<JITProvisioner.Reply>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): status = Int(h.status.code)
        case .body(let b): if body.count < 1 << 20 { body.append(contentsOf: b.readableBytesView) }
        case .end: promise.succeed(JITProvisioner.Reply(status: status, body: body))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(JITProvisioner.JITCallError.closed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}

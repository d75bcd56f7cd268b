import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PIAMEngine
import PIAMWire
import ServiceLifecycle

/// The peer of a Unix socket connection (`SO_PEERCRED`; same layout as `struct ucred`).
public struct PeerCredentials: Sendable, Hashable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32
}

/// The binary protocol's server: binds the socket (or adopts systemd's), answers connections,
/// reports `READY=1`, and on graceful shutdown stops accepting, answers what was read, closes.
public final class SocketServer: Service, Sendable {
    private let config: DaemonConfig
    private let state: GraphState
    private let notifier: any Notifier
    private let logger: Logger
    private let group: any EventLoopGroup
    private let evaluator: QueryEvaluator
    private let connections: OpenConnections
    private let listeningPromise: EventLoopPromise<String>

    /// - Parameters:
    ///   - config: the daemon's configuration (socket, limits, allowlist, timeouts).
    ///   - state: the shared snapshot holder the connections answer from.
    ///   - notifier: where readiness and status go (systemd's notify socket, or nowhere).
    ///   - logger: the daemon's logger.
    ///   - group: the event loops that serve the connections.
    ///   - metrics: where the socket's queries are counted (`interface="socket"`).
    public init(config: DaemonConfig, state: GraphState, notifier: any Notifier, logger: Logger, group: any EventLoopGroup,
                metrics: ServerMetrics? = nil) {
        self.config = config
        self.state = state
        connections = OpenConnections { [state] in state.connections.wrappingAdd($0, ordering: .relaxed).newValue }
        self.notifier = notifier
        self.logger = logger
        self.group = group
        self.evaluator = QueryEvaluator(config: config, state: state, metrics: metrics, interface: .socket)
        self.listeningPromise = group.next().makePromise()
    }

    /// The path clients connect to, once listening (the watchdog probes through it).
    public func listeningPath() async throws -> String { try await listeningPromise.futureResult.get() }

    public func run() async throws {
        let (channel, path, adopted): (any Channel, String, Bool)
        do {
            try await state.waitUntilLoaded()
            (channel, path, adopted) = try await bind()
        } catch {
            listeningPromise.fail(error)
            throw error
        }
        listeningPromise.succeed(path)
        logger.notice("listening", metadata: ["socket": "\(path)", "adopted_from_systemd": "\(adopted)"])
        notifier.notify(["READY=1", "STATUS=\(GraphLoader.statusLine(state))", "MAINPID=\(getpid())"])

        await withGracefulShutdownHandler {
            try? await channel.closeFuture.get()
        } onGracefulShutdown: {
            self.notifier.notify(["STOPPING=1", "STATUS=stopping"])
            self.logger.notice("shutting down: no new connections; answering what was read")
            channel.close(promise: nil)
        }
        await drainConnections()
        state.failAllWaiters()
        if !adopted { unlink(path) }
        logger.notice("stopped")
    }

    /// Tells every connection to finish, then waits (bounded) for them to close.
    private func drainConnections() async {
        await connections.drain(consistencyTimeoutMS: config.consistencyTimeoutMS)
    }

    /// Sends ``ServerShutdownEvent`` down each channel, then waits for them to close, closing
    /// whatever is still open `consistency.timeout_ms` + 2 s later (both servers' shutdown).
    static func drain(_ open: [any Channel], consistencyTimeoutMS: Int) async {
        for c in open { c.pipeline.fireUserInboundEventTriggered(ServerShutdownEvent()) }
        let deadline = ContinuousClock.now + .milliseconds(consistencyTimeoutMS + 2000)
        for c in open {
            let remaining = deadline - ContinuousClock.now
            if remaining <= .zero { c.close(promise: nil); continue }
            let closed = c.closeFuture
            let timer = c.eventLoop.scheduleTask(in: .nanoseconds(Int64(remaining / .nanoseconds(1)))) { c.close(promise: nil) }
            try? await closed.get()
            timer.cancel()
        }
    }

    private func bind() async throws -> (any Channel, String, Bool) {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 512)
            .childChannelInitializer { [self] channel in self.initialize(channel) }
        let passed = Systemd.passedSockets()
        if let socket = passed.first(where: { $0.name == "piamd" || $0.name == "piamd.socket" }) ?? (passed.count == 1 ? passed[0] : nil) {
            let channel = try await bootstrap.withBoundSocket(socket.fd).get()
            let path = channel.localAddress?.pathname ?? config.socketPath
            return (channel, path, true)
        }
        if !passed.isEmpty {
            logger.warning("systemd passed sockets, none named piamd; binding the configured path",
                           metadata: ["names": "\(passed.map(\.name))"])
        }
        let path = config.socketPath
        try Self.refuseIfServed(path)
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty && !FileManager.default.fileExists(atPath: dir) {
            throw PIAMError(.io, "socket directory \(dir) does not exist (systemd's RuntimeDirectory= creates it)")
        }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        } catch {
            throw PIAMError(.io, "cannot listen on \(path): \(error)")
        }
        try Self.applyOwnership(path, mode: config.socketMode, owner: config.socketOwner, group: config.socketGroup)
        return (channel, path, false)
    }

    /// Refuses to take over a socket another process is serving.
    static func refuseIfServed(_ path: String) throws {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            throw PIAMError(.invalidInput, "socket path \(path) is too long for a Unix socket")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc == 0 { throw PIAMError(.conflict, "another process is already serving \(path)") }
    }

    /// A socket file's mode, owner and group (`socket.*`, `http.socket_*`).
    static func applyOwnership(_ path: String, mode: UInt32, owner: String?, group: String?) throws {
        guard chmod(path, mode_t(mode)) == 0 else {
            throw PIAMError(.io, "chmod \(String(mode, radix: 8)) \(path): \(String(cString: strerror(errno)))")
        }
        var uid = uid_t.max, gid = gid_t.max
        if let owner {
            if let n = UInt32(owner) { uid = n } else if let pw = getpwnam(owner) { uid = pw.pointee.pw_uid } else {
                throw PIAMError(.invalidInput, "\(path): socket owner: no such user \"\(owner)\"")
            }
        }
        if let group {
            if let n = UInt32(group) { gid = n } else if let gr = getgrnam(group) { gid = gr.pointee.gr_gid } else {
                throw PIAMError(.invalidInput, "\(path): socket group: no such group \"\(group)\"")
            }
        }
        if uid != uid_t.max || gid != gid_t.max {
            guard chown(path, uid, gid) == 0 else {
                throw PIAMError(.io, "chown \(path): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Sets up one accepted connection: the connection limit, the peer allowlist, the pipeline.
    private func initialize(_ channel: any Channel) -> EventLoopFuture<Void> {
        if connections.opened(channel) > config.maxConnections {
            logger.warning("connection refused: limits.max_connections reached", metadata: ["max_connections": "\(config.maxConnections)"])
            let revision = UInt64(state.snapshot?.revision ?? 0)
            let message = "too many connections (limits.max_connections = \(config.maxConnections))"
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(RejectHandler(.error(
                    .overloaded, opcodeByte: 0, requestID: 0, revision: revision, message: message)))
            }
        }
        return peerAllowed(channel).flatMap { [self] allowed in
            return channel.eventLoop.makeCompletedFuture {
                guard allowed else {
                    try channel.pipeline.syncOperations.addHandler(RejectHandler(nil))
                    return
                }
                connections.admit(channel)
                let sync = channel.pipeline.syncOperations
                // The idle timer first: it sees each socket read, not each frame decoded from it.
                try sync.addHandler(IdleStateHandler(allTimeout: .milliseconds(Int64(config.idleTimeoutMS))))
                try sync.addHandler(ByteToMessageHandler(FrameDecoder(maxFrameBytes: config.maxFrameBytes)))
                try sync.addHandler(ConnectionHandler(
                    evaluator: evaluator, state: state,
                    consistencyTimeout: .milliseconds(Int64(config.consistencyTimeoutMS)), logger: logger))
            }
        }
    }

    /// Whether the peer may connect: no allowlist, the daemon itself (its watchdog probe), or
    /// a uid/gid on the allowlist. Refusals are logged.
    private func peerAllowed(_ channel: any Channel) -> EventLoopFuture<Bool> {
        let uids = config.allowedUIDs, gids = config.allowedGIDs
        guard !uids.isEmpty || !gids.isEmpty else { return channel.eventLoop.makeSucceededFuture(true) }
        guard let provider = channel as? any SocketOptionProvider else { return channel.eventLoop.makeSucceededFuture(false) }
        let future: EventLoopFuture<PeerCredentials> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
        return future.map { [logger] peer in
            if peer.pid == getpid() || uids.contains(peer.uid) || gids.contains(peer.gid) { return true }
            logger.warning("connection refused: peer not in socket.allowed_uids/allowed_gids",
                           metadata: ["peer_pid": "\(peer.pid)", "peer_uid": "\(peer.uid)", "peer_gid": "\(peer.gid)"])
            return false
        }.recover { [logger] error in
            logger.error("connection refused: cannot read SO_PEERCRED", metadata: ["error": "\(error)"])
            return false
        }
    }
}

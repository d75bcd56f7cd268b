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
///
/// The transport — binding, slots, the allowlist, deadlines, backpressure, the drain — is the
/// ``Listener`` the HTTP face shares; this type adds the wire protocol's handlers
/// (`FrameDecoder`, ``ConnectionHandler``) and its answers to refused and timed-out
/// connections. See <doc:LimitsAndAbuse>.
public final class SocketServer: Service, Sendable {
    private let config: DaemonConfig
    private let state: GraphState
    private let notifier: any Notifier
    private let logger: Logger
    private let listener: Listener
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
        self.notifier = notifier
        self.logger = logger
        let evaluator = QueryEvaluator(config: config, state: state, metrics: metrics, interface: .socket)
        let consistencyTimeout = TimeAmount.milliseconds(Int64(config.consistencyTimeoutMS))
        let maxFrameBytes = config.maxFrameBytes, maxWaiting = config.maxWaitingRequests
        let frameTimeoutMS = config.frameTimeoutMS
        @Sendable func frame(_ allocator: ByteBufferAllocator, _ status: Status, _ message: String) -> ByteBuffer {
            var b = allocator.buffer(capacity: 64 + message.utf8.count)
            Response.error(status, opcodeByte: 0, requestID: 0, revision: UInt64(max(state.snapshot?.revision ?? 0, 0)),
                           message: message).encodeFrame(into: &b)
            return b
        }
        let face = Listener.Face(
            name: "socket", usesAllowlist: true,
            initialize: { channel, connectionGuard in
                let sync = channel.pipeline.syncOperations
                try sync.addHandler(ByteToMessageHandler(FrameDecoder(maxFrameBytes: maxFrameBytes)))
                try sync.addHandler(ConnectionHandler(
                    evaluator: evaluator, state: state, consistencyTimeout: consistencyTimeout, maxWaiting: maxWaiting,
                    connectionGuard: connectionGuard, logger: logger))
            },
            refusal: { refusal, allocator in
                switch refusal {
                case .full(let max): frame(allocator, .overloaded, "too many connections (limits.max_connections = \(max))")
                case .perUID(let uid, let max):
                    frame(allocator, .overloaded, "too many connections from uid \(uid) (limits.max_connections_per_uid = \(max))")
                case .peer: nil
                }
            },
            timeoutAnswer: { allocator in
                frame(allocator, .badRequest, "frame not completed within limits.frame_timeout_ms (\(frameTimeoutMS) ms)")
            },
            count: { [state] in state.connections.wrappingAdd($0, ordering: .relaxed) }
        )
        self.listener = Listener(config: config, face: face, logger: logger, group: group)
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

        await listener.withLogFlush {
            await withGracefulShutdownHandler {
                try? await channel.closeFuture.get()
            } onGracefulShutdown: {
                self.notifier.notify(["STOPPING=1", "STATUS=stopping"])
                self.logger.notice("shutting down: no new connections; answering what was read")
                channel.close(promise: nil)
            }
        }
        await listener.drain(consistencyTimeoutMS: config.consistencyTimeoutMS)
        state.failAllWaiters()
        if !adopted { unlink(path) }
        logger.notice("stopped")
    }

    private func bind() async throws -> (any Channel, String, Bool) {
        let passed = Systemd.passedSockets()
        if let socket = passed.first(where: { $0.name == "piamd" || $0.name == "piamd.socket" }) ?? (passed.count == 1 ? passed[0] : nil) {
            let channel = try await listener.bind(.adopted(fd: socket.fd))
            let path = channel.localAddress?.pathname ?? config.socketPath
            return (channel, path, true)
        }
        if !passed.isEmpty {
            logger.warning("systemd passed sockets, none named piamd; binding the configured path",
                           metadata: ["names": "\(passed.map(\.name))"])
        }
        let path = config.socketPath
        let channel = try await listener.bind(.unix(path: path, mode: config.socketMode, owner: config.socketOwner, group: config.socketGroup))
        return (channel, path, false)
    }
}

import Logging
import NIOCore
import NIOPosix
import PIAMEngine
import PIAMWire
import ServiceLifecycle
import UnixSignals

/// Feeds systemd's watchdog (`WATCHDOG=1` every `WATCHDOG_USEC`/2), but only after a probe
/// through the real query path succeeded: a fresh connection to the daemon's own socket (the
/// accept path, the frame decoder, the connection handler and the engine answer a CHECK),
/// plus a no-op task on every event loop. A wedged event loop or engine makes the probe time
/// out, the watchdog starves, and systemd restarts the daemon.
public final class WatchdogService: Service, Sendable {
    private let server: SocketServer
    private let group: any EventLoopGroup
    private let notifier: any Notifier
    private let logger: Logger
    private let interval: Duration?

    /// - Parameters:
    ///   - server: the socket server whose socket is probed.
    ///   - group: the event loops that must each run a probe task.
    ///   - notifier: where `WATCHDOG=1` goes.
    ///   - logger: logs a failing probe once, and its recovery.
    ///   - intervalMicroseconds: systemd's `WATCHDOG_USEC` (nil: no watchdog; the service then
    ///     only waits for shutdown).
    public init(server: SocketServer, group: any EventLoopGroup, notifier: any Notifier, logger: Logger,
                intervalMicroseconds: UInt64? = Systemd.watchdogMicroseconds()) {
        self.server = server
        self.group = group
        self.notifier = notifier
        self.logger = logger
        self.interval = intervalMicroseconds.map { .microseconds(Int64($0 / 2)) }
    }

    public func run() async throws {
        guard let interval else {
            try? await gracefulShutdown()
            return
        }
        guard let path = try? await server.listeningPath() else { return }
        logger.info("watchdog enabled", metadata: ["ping_interval_ms": "\(interval / .milliseconds(1))"])
        // The probe's own I/O runs on its own thread, so a wedged server loop cannot wedge it.
        let probeGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var failing = false
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let ok = await probe(path: path, group: probeGroup, deadline: interval / 2)
            if ok {
                notifier.notify(["WATCHDOG=1"])
                if failing { logger.notice("watchdog probe succeeds again") }
                failing = false
            } else if !failing {
                failing = true
                logger.error("watchdog probe failed: not feeding the watchdog")
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
        try? await probeGroup.shutdownGracefully()
    }

    /// One probe, bounded by `deadline`.
    func probe(path: String, group probeGroup: any EventLoopGroup, deadline: Duration) async -> Bool {
        let loops = Array(group.makeIterator())
        return await withTaskGroup(of: Bool.self) { tasks in
            tasks.addTask {
                do {
                    try await Self.checkThroughSocket(path: path, group: probeGroup)
                    for loop in loops { try await loop.submit {}.get() }
                    return true
                } catch {
                    return false
                }
            }
            tasks.addTask {
                try? await Task.sleep(for: deadline)
                return false
            }
            let first = await tasks.next() ?? false
            tasks.cancelAll()
            return first
        }
    }
}

extension WatchdogService {
    /// The probe's CHECK: a fresh connection to the daemon's socket, one CHECK frame written,
    /// the answer read back and decoded (any decision will do: the path answered). Plain NIO and
    /// the wire codec: the daemon's library does not depend on its own client.
    static func checkThroughSocket(path: String, group: any EventLoopGroup) async throws {
        let channel = try await ClientBootstrap(group: group).connect(unixDomainSocketPath: path) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
        try await channel.executeThenClose { inbound, outbound in
            var frame = ByteBuffer()
            Request(requestID: 1, body: .check(CheckRequest(subject: "", action: "probe", resource: ResourceRef(type: "probe", id: "probe"))))
                .encodeFrame(into: &frame)
            try await outbound.write(frame)
            var received = ByteBuffer()
            for try await chunk in inbound {
                received.writeImmutableBuffer(chunk)
                guard let length = received.getInteger(at: received.readerIndex, as: UInt32.self),
                      received.readableBytes >= 4 + Int(length),
                      let payload = received.getSlice(at: received.readerIndex + 4, length: Int(length)) else { continue }
                let response = try Response.decode(payload: payload)
                guard response.requestID == 1 else { throw PIAMError(.io, "watchdog probe: unexpected answer") }
                return
            }
            throw PIAMError(.io, "watchdog probe: the connection closed before the answer")
        }
    }
}

/// Turns SIGHUP into a full reload.
public struct ReloadSignalService: Service {
    let loader: GraphLoader

    public init(loader: GraphLoader) { self.loader = loader }

    public func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            loader.request(.sighup)
        }
    }
}

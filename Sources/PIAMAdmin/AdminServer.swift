import Foundation
import Hummingbird
import Logging
import NIOCore
import PIAMEngine
import PIAMServer
import PIAMStore
import ServiceLifecycle
import Synchronization
import UnixSignals

/// Runs piam-admind: the service, one HTTP server per listen address, the journal follower and
/// systemd's notifications, until SIGTERM or SIGINT.
public enum AdminServer {
    /// Runs until a shutdown signal. `onReady` is called with each listener's bound address
    /// once all listen (tests learn a port given as 0 this way).
    public static func run(_ config: AdminConfig, notifier: any Notifier = SystemdNotifier(),
                           onReady: @escaping @Sendable ([String]) -> Void = { _ in }) async throws {
        let logger = Logger(label: "piam-admind") { label in JournalLogHandler(label: label, level: config.logLevel) }
        let gid = try config.socketGroup.map(groupID)
        let service = try AdminService(databasePath: config.databasePath)
        var verifiers: [any BearerVerifier] = [APITokenVerifier(service: service)]
        if let jwt = config.jwt {
            verifiers.append(JWTVerifier(authenticator: try await JWTAuthenticator(settings: jwt)))
        }
        // The usage reports, findings, reviews and consoles read piamd's usage files, merged
        // once per change (at most every usage.refresh_ms).
        let api = AdminAPI(service: service, settings: config.api,
                           usage: UsageCache(paths: config.usagePaths, refreshMS: Int64(config.usageRefreshMS)))
        // One set of console sessions for every listener.
        let sessions = ConsoleSessions()
        let bound = Mutex<[String]>([])
        let expected = config.listen.count
        var services: [any Service] = []
        for listener in config.listen {
            let address: BindAddress
            switch listener {
            case .unix(let path):
                try removeStaleSocket(path)
                address = .unixDomainSocket(path: path)
            case .tcp(let host, let port):
                address = .hostname(host, port: port)
            }
            let trusted = config.trustsHeader(on: listener) ? config.trustedHeader : nil
            let app = Application(
                router: api.router(verifiers: verifiers, trustedHeader: trusted,
                                   console: ConsoleOptions(demo: config.demo, loopback: listener.isLoopbackTCP,
                                                          publicURL: config.consolePublicURL,
                                                          dormantTilesMaxPeople: config.dormantTilesMaxPeople), sessions: sessions),
                // A connection idle this long is closed; past max_connections (per listener) no
                // new one is accepted until one closes: a misbehaving client costs bounded memory.
                server: .http1(configuration: .init(idleTimeout: .milliseconds(Int64(config.api.idleTimeoutMS)))),
                configuration: .init(address: address, serverName: nil,
                                     availableConnectionsDelegate: .maximum(config.api.maxConnections, logger: logger)),
                onServerRunning: { channel in
                    var name = listener.description
                    if case .unix(let path) = listener {
                        chmod(path, mode_t(config.socketMode))
                        if let gid, chown(path, uid_t.max, gid) != 0 {
                            logger.error("cannot give \(path) to group \(config.socketGroup ?? ""): errno \(errno)")
                        }
                    } else if let port = channel.localAddress?.port, case .tcp(let host, _) = listener {
                        name = AdminListenAddress.tcp(host: host, port: port).description
                    }
                    let all = bound.withLock { b -> [String]? in
                        b.append(name)
                        return b.count == expected ? b : nil
                    }
                    if let all {
                        logger.info("piam-admind \(AdminDaemon.version) serving", metadata: [
                            "listen": .string(all.joined(separator: ", ")), "database": .string(config.databasePath),
                            "revision": .stringConvertible(service.graph.revision),
                            "trusted_header": .string(config.trustedHeader ?? "-"), "jwt": .string(config.jwt == nil ? "off" : "on"),
                        ])
                        if config.demo {
                            for case .tcp(let host, let port) in all.compactMap({ try? AdminListenAddress(parsing: $0) }) where AdminListenAddress.tcp(host: host, port: port).isLoopbackTCP {
                                logger.notice("demo console: http://\(host.contains(":") ? "[\(host)]" : host):\(port)/console/demo-sign-in")
                            }
                        }
                        notifier.notify(["READY=1", "STATUS=serving revision \(service.graph.revision)"])
                        onReady(all)
                    }
                },
                logger: logger
            )
            services.append(app)
        }
        services.append(FollowerService(service: service, config: config, notifier: notifier, logger: logger))
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        notifier.notify(["STOPPING=1"])
        await service.shutdown()
        for case .unix(let path) in config.listen { try? removeStaleSocket(path) }
    }

    /// A group's id, by name or number.
    static func groupID(_ name: String) throws(PIAMError) -> gid_t {
        if let n = gid_t(name) { return n }
        guard let g = getgrnam(name) else { throw PIAMError(.invalidInput, "socket_group: no group \"\(name)\"") }
        return g.pointee.gr_gid
    }

    /// Removes a socket file left by an earlier run (never anything that is not a socket).
    static func removeStaleSocket(_ path: String) throws(PIAMError) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else {
            throw PIAMError(.io, "\(path) exists and is not a socket: not removing it")
        }
        unlink(path)
    }
}

/// Follows other writers' commits (piamctl, imports) every `follow.poll_ms`, prunes old
/// Idempotency-Key answers, and feeds systemd's watchdog while a read through the service's
/// thread pool and database succeeds.
struct FollowerService: Service {
    let service: AdminService
    let config: AdminConfig
    let notifier: any Notifier
    let logger: Logger

    func run() async throws {
        let watchdog = Systemd.watchdogMicroseconds().map { Duration.microseconds(Int64($0 / 2)) }
        let poll = Duration.milliseconds(config.followMS)
        var lastWatchdog = ContinuousClock.now
        var lastPrune = ContinuousClock.now - .seconds(3600)
        var failing = false
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                if try await service.catchUp() {
                    notifier.notify(["STATUS=serving revision \(service.graph.revision)"])
                }
                if ContinuousClock.now - lastPrune > .seconds(600) {
                    let cutoff = AdminAPI.now() - Timestamp(config.idempotencyHours) * 3_600_000
                    _ = try await service.write { w in try w.store.pruneIdempotency(olderThan: cutoff) }
                    lastPrune = .now
                }
                if failing { logger.notice("following the database again") }
                failing = false
                if let watchdog, ContinuousClock.now - lastWatchdog >= watchdog {
                    notifier.notify(["WATCHDOG=1"])
                    lastWatchdog = .now
                }
            } catch {
                if !failing { logger.error("cannot follow the database: \(error)") }
                failing = true
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: min(poll, watchdog ?? poll)) }
        }
    }
}

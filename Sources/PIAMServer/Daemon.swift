import Logging
import NIOCore
import NIOPosix
import PIAMEngine
import ServiceLifecycle

/// piamd: the services of one daemon in one `ServiceGroup` — graph loader, socket server,
/// watchdog, SIGHUP handling — with graceful shutdown on SIGTERM and SIGINT.
public enum Daemon {
    /// Runs until SIGTERM/SIGINT (or a fatal error, which is thrown).
    public static func run(config: DaemonConfig, notifier: any Notifier = SystemdNotifier()) async throws {
        let logger = Logger(label: "piamd") { label in JournalLogHandler(label: label, level: config.logLevel) }
        if config.httpListen != nil {
            logger.warning("http.listen is set, but this version of piamd has no HTTP face yet; ignoring it")
        }
        let threads = config.threads > 0 ? config.threads : System.coreCount
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)

        let triggers = GraphLoader.makeTriggers()
        let state = GraphState { triggers.1.yield(.catchUp) }
        let loader = GraphLoader(config: config, state: state, notifier: notifier, logger: logger, triggers: triggers)
        let server = SocketServer(config: config, state: state, notifier: notifier, logger: logger, group: group)
        let watchdog = WatchdogService(server: server, group: group, notifier: notifier, logger: logger)
        let signals = ReloadSignalService(loader: loader)
        logger.notice("piamd \(piamdVersion) starting", metadata: [
            "database": "\(config.databasePath)", "socket": "\(config.socketPath)", "threads": "\(threads)",
        ])
        let serviceGroup = ServiceGroup(configuration: .init(
            services: [
                .init(service: loader),
                .init(service: server),
                .init(service: watchdog, successTerminationBehavior: .ignore),
                .init(service: signals, successTerminationBehavior: .ignore),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        ))
        do {
            try await serviceGroup.run()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try? await group.shutdownGracefully()
    }
}

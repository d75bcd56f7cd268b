import Logging
import NIOCore
import NIOPosix
import PIAMEngine
import ServiceLifecycle

/// piamd: the services of one daemon in one `ServiceGroup` — graph loader, socket server,
/// the HTTP face when `http.listen` is set, watchdog, SIGHUP handling — with graceful shutdown
/// on SIGTERM and SIGINT.
public enum Daemon {
    /// Runs until SIGTERM/SIGINT (or a fatal error, which is thrown).
    public static func run(config: DaemonConfig, notifier: any Notifier = SystemdNotifier()) async throws {
        let logger = Logger(label: "piamd") { label in JournalLogHandler(label: label, level: config.logLevel) }
        let threads = config.threads > 0 ? config.threads : System.coreCount
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        // The HTTP face's loops are its own (http.threads, DaemonConfig.httpThreads).
        let httpGroup = config.httpListen == nil ? nil : MultiThreadedEventLoopGroup(numberOfThreads: config.httpThreadsInEffect)

        let triggers = GraphLoader.makeTriggers()
        let state = GraphState(pollMS: config.reloadVerifyMS, timeoutMS: config.consistencyTimeoutMS,
                               replicaMaxAgeMS: config.databaseReplica ? config.replicaMaxAgeMS : nil) { triggers.1.yield(.catchUp) }
        let loader = GraphLoader(config: config, state: state, notifier: notifier, logger: logger, triggers: triggers)
        let metrics = ServerMetrics()
        let server = SocketServer(config: config, state: state, notifier: notifier, logger: logger, group: group, metrics: metrics)
        let http = try httpGroup.map { httpGroup throws(PIAMError) in
            try HTTPServer(config: config, state: state, metrics: metrics, logger: logger, group: httpGroup)
        }
        let watchdog = WatchdogService(server: server, group: group, notifier: notifier, logger: logger)
        let signals = ReloadSignalService(loader: loader)
        // First in the group, so it stops last: its final flush writes what the faces answered.
        let usage = config.usagePath == nil && config.decisionLogPath == nil ? nil
            : UsageService(config: config, loops: Array(group.makeIterator()) + (httpGroup.map { Array($0.makeIterator()) } ?? []),
                           metrics: metrics, logger: logger)
        logger.notice("piamd \(piamdVersion) starting", metadata: [
            "database": "\(config.databasePath)", "socket": "\(config.socketPath)", "threads": "\(threads)",
            "http_threads": "\(httpGroup == nil ? 0 : config.httpThreadsInEffect)",
            "http": "\(config.httpListen ?? "off")", "usage": "\(config.usagePath ?? "off")",
        ])
        let serviceGroup = ServiceGroup(configuration: .init(
            services: (usage.map { [ServiceGroupConfiguration.ServiceConfiguration(service: $0)] } ?? []) + [
                .init(service: loader),
                .init(service: server),
            ] + (http.map { [ServiceGroupConfiguration.ServiceConfiguration(service: $0)] } ?? []) + [
                .init(service: watchdog, successTerminationBehavior: .ignore),
                .init(service: signals, successTerminationBehavior: .ignore),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        ))
        do {
            try await serviceGroup.run()
        } catch {
            try? await httpGroup?.shutdownGracefully()
            try? await group.shutdownGracefully()
            throw error
        }
        try? await httpGroup?.shutdownGracefully()
        try? await group.shutdownGracefully()
    }
}

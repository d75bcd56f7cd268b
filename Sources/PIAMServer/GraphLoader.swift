import Foundation
import Logging
import NIOPosix
import PIAMEngine
import PIAMStore
import ServiceLifecycle

/// Loads the graph from the database and keeps it current.
///
/// - At start: one full load (with `EXTEND_TIMEOUT_USEC` while it runs), then the graph is
///   published and the socket server may report `READY=1`.
/// - On SIGHUP: `RELOADING=1` + `MONOTONIC_USEC`, a full reload, then `READY=1`.
/// - When a request waits for a `min_revision` the graph has not reached, and every
///   `reload.poll_ms`: the database's revision is read and, when it moved, the graph is
///   reloaded.
///
/// Loads run on NIO's blocking thread pool and build a new graph beside the old one; the old
/// one keeps answering until the new one is published. A failed load keeps the last good
/// graph, marks the daemon degraded (STATUS and systemd `STATUS=`), logs once, and is retried
/// on the next trigger.
public final class GraphLoader: Service, Sendable {
    /// Why a load or check was asked for.
    public enum Cause: String, Sendable {
        case startup, sighup
        case catchUp = "catch-up"
        case poll
    }

    private let config: DaemonConfig
    private let state: GraphState
    private let notifier: any Notifier
    private let logger: Logger
    private let triggers: AsyncStream<Cause>
    private let continuation: AsyncStream<Cause>.Continuation

    /// A trigger stream for ``GraphState``'s wake-up closure and this loader to share.
    public static func makeTriggers() -> (AsyncStream<Cause>, AsyncStream<Cause>.Continuation) {
        AsyncStream.makeStream(of: Cause.self, bufferingPolicy: .bufferingNewest(4))
    }

    public init(config: DaemonConfig, state: GraphState, notifier: any Notifier, logger: Logger,
                triggers: (AsyncStream<Cause>, AsyncStream<Cause>.Continuation)) {
        self.config = config
        self.state = state
        self.notifier = notifier
        self.logger = logger
        (self.triggers, self.continuation) = triggers
    }

    /// Asks for a reload (SIGHUP) or a revision check.
    public func request(_ cause: Cause) { continuation.yield(cause) }

    public func run() async throws {
        let first: Snapshot
        do {
            first = try await initialLoad()
        } catch {
            state.failInitialLoad(error)
            throw error
        }
        state.publish(first)
        let pollMS = config.reloadPollMS
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                if pollMS > 0 {
                    group.addTask {
                        while !Task.isCancelled {
                            try? await Task.sleep(for: .milliseconds(pollMS))
                            self.request(.poll)
                        }
                    }
                }
                group.addTask {
                    for await cause in self.triggers { await self.handle(cause) }
                }
                await group.next()
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.continuation.finish()
        }
    }

    /// The first load, extending systemd's start timeout while it runs.
    private func initialLoad() async throws -> Snapshot {
        notifier.notify(["STATUS=loading the graph from \(config.databasePath)"])
        logger.info("loading graph", metadata: ["database": "\(config.databasePath)"])
        let extender = Task {
            while !Task.isCancelled {
                notifier.notify(["EXTEND_TIMEOUT_USEC=20000000"])
                try? await Task.sleep(for: .seconds(5))
            }
        }
        defer { extender.cancel() }
        return try await load(.startup)
    }

    private func handle(_ cause: Cause) async {
        switch cause {
        case .startup:
            break
        case .sighup:
            notifier.notify(["RELOADING=1", "MONOTONIC_USEC=\(Systemd.monotonicMicroseconds())", "STATUS=reloading (SIGHUP)"])
            logger.notice("SIGHUP: full reload")
            do {
                state.publish(try await load(.sighup))
                recovered()
            } catch {
                degrade("reload failed: \(error)")
            }
            notifier.notify(["READY=1", "STATUS=\(statusLine())"])
        case .catchUp, .poll:
            guard let current = state.snapshot else { return }
            let revision: Int64
            do {
                revision = try await NIOThreadPool.singleton.runIfActive { [path = config.databasePath] in
                    try Store(path: path, readOnly: true).revision()
                }
            } catch {
                degrade("cannot read the database: \(error)")
                return
            }
            guard revision != current.revision else {
                recovered()
                return
            }
            do {
                state.publish(try await load(cause))
                recovered()
                notifier.notify(["STATUS=\(statusLine())"])
            } catch {
                degrade("reload failed: \(error)")
            }
        }
    }

    /// One full load off the event loops and the cooperative pool.
    private func load(_ cause: Cause) async throws -> Snapshot {
        let start = ContinuousClock.now
        let loaded: LoadedGraph
        do {
            loaded = try await NIOThreadPool.singleton.runIfActive { [path = config.databasePath] in
                try Store(path: path, readOnly: true).loadGraph()
            }
        } catch let e as PIAMError where e.message.contains("readonly") {
            throw PIAMError(e.code, "\(e.message) — in a read-only directory piamd needs \(config.databasePath)-wal and -shm to exist; any piamctl write (e.g. piamctl init --db \(config.databasePath)) creates them")
        }
        let seconds = (ContinuousClock.now - start) / .seconds(1)
        let snapshot = Snapshot(graph: loaded.graph, revision: loaded.revision, loadSeconds: seconds, cause: cause.rawValue)
        let c = snapshot.counts
        logger.info("graph loaded", metadata: [
            "cause": "\(cause.rawValue)", "revision": "\(loaded.revision)", "seconds": "\(String(format: "%.3f", seconds))",
            "orgs": "\(c.orgs)", "users": "\(c.users)", "roles": "\(c.roles)", "resources": "\(c.resources)",
            "grants": "\(c.grants)",
        ])
        return snapshot
    }

    private func degrade(_ reason: String) {
        if state.setDegraded(reason) {
            logger.error("degraded: serving the last good graph", metadata: ["reason": "\(reason)"])
            notifier.notify(["STATUS=\(statusLine())"])
        }
    }

    private func recovered() {
        if state.setDegraded(nil) {
            logger.notice("recovered: the database is readable again")
            notifier.notify(["STATUS=\(statusLine())"])
        }
    }

    /// The one-line status for systemd's `STATUS=`.
    func statusLine() -> String { Self.statusLine(state) }

    /// "serving revision 42: 9 orgs, 30 users, …" (prefixed with the reason when degraded).
    public static func statusLine(_ state: GraphState) -> String {
        guard let s = state.snapshot else { return "starting" }
        let c = s.counts
        let line = "serving revision \(s.revision): \(c.orgs) orgs, \(c.users) users, \(c.roles) roles, \(c.resources) resources, \(c.grants) grants"
        if let d = state.degraded { return "degraded (\(d)); \(line)" }
        return line
    }
}

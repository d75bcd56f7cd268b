import Logging
import NIOCore
import NIOPosix
import PIAMEngine
import PIAMStore
import Prometheus
import ServiceLifecycle

/// Records who uses what (`usage.path`): installs a ``LoopUsage`` on every event loop, and every
/// `usage.flush_ms` takes the loops' tallies (a task on each loop: the query path never waits on
/// it), names them on the graphs that decided, and adds them to the usage database in one
/// transaction on a thread of its own. At shutdown — after the faces have stopped answering,
/// being first in the service group — it writes what is left.
///
/// A crash loses at most one flush interval; the usage database is never half written (each
/// flush is one SQLite transaction).
public final class UsageService: Service, Sendable {
    let path: String
    let interval: Duration
    let maxKeys: Int
    let group: any EventLoopGroup
    let logger: Logger
    let dropped: Counter?
    let flushes: Counter?
    let failures: Counter?

    /// - Parameters:
    ///   - config: `usage.path` (must be set), `usage.flush_ms`, `usage.max_keys`.
    ///   - group: the event loops that answer queries.
    ///   - metrics: where `piam_usage_dropped_total`, `piam_usage_flushes_total` and
    ///     `piam_usage_flush_failures_total` are counted.
    public init(config: DaemonConfig, group: any EventLoopGroup, metrics: ServerMetrics?, logger: Logger) {
        path = config.usagePath ?? ""
        interval = .milliseconds(config.usageFlushMS)
        maxKeys = config.usageMaxKeys
        self.group = group
        self.logger = logger
        func name(_ m: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "piam", metricName: m, unitName: "total", helpText: help)
        }
        dropped = metrics?.registry.makeCounter(descriptor: name("usage_dropped",
            "Decisions not recorded in the usage tallies because an event loop's table held usage.max_keys keys."))
        flushes = metrics?.registry.makeCounter(descriptor: name("usage_flushes", "Usage flushes written to usage.path."))
        failures = metrics?.registry.makeCounter(descriptor: name("usage_flush_failures",
            "Usage flushes that failed to write (their tallies are kept and written with the next)."))
    }

    public func run() async throws {
        let writerGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { writerGroup.shutdownGracefully { _ in } }
        let writer = writerGroup.next()
        let path = self.path
        let database = try await writer.submit { NIOLoopBound(try UsageDatabase(path: path), eventLoop: writer) }.get()
        let maxKeys = self.maxKeys
        for loop in group.makeIterator() {
            try await loop.submit { LoopUsage.install(LoopUsage(maxKeys: maxKeys)) }.get()
        }
        logger.info("recording usage", metadata: ["usage_path": "\(path)", "flush_ms": "\(interval / .milliseconds(1))"])
        var pending = Pending()
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            await flush(into: &pending, database: database, writer: writer)
        }
        // The faces stopped before this service (it is first in the group): one last flush of
        // everything they answered, then no more recording.
        await flush(into: &pending, database: database, writer: writer)
        for loop in group.makeIterator() { try? await loop.submit { LoopUsage.uninstall() }.get() }
    }

    /// What a failed write left to write with the next flush.
    struct Pending: Sendable {
        var batch = UsageBatch()
    }

    /// Takes every loop's tally, names it and writes it; a failed write keeps the batch for the
    /// next flush.
    func flush(into pending: inout Pending, database: NIOLoopBound<UsageDatabase>, writer: any EventLoop) async {
        var taken: [LoopUsage.Taken] = []
        var drops = 0
        for loop in group.makeIterator() {
            guard let t = try? await loop.submit({ LoopUsage.current?.take() ?? (tables: [], dropped: 0) }).get() else { continue }
            taken += t.tables
            drops += t.dropped
        }
        if drops > 0 { dropped?.increment(by: Int64(drops)) }
        let carried = pending.batch
        let tables = taken, dropped = drops
        // Named and written on the writer's thread; a failed write hands the named batch back.
        let result = try? await writer.submit { () -> (left: UsageBatch, error: String?) in
            var batch = Self.name(tables, merging: carried)
            batch.dropped += dropped
            if batch.isEmpty { return (batch, nil) }
            do {
                try database.value.record(batch, now: QueryEvaluator.now())
                return (UsageBatch(), nil)
            } catch {
                return (batch, "\(error)")
            }
        }.get()
        guard let result else { return }
        pending.batch = result.left
        if let error = result.error {
            failures?.increment()
            logger.warning("usage flush failed; keeping it for the next", metadata: ["error": "\(error)"])
        } else {
            flushes?.increment()
        }
    }

    /// The loops' tables in names, merged with `carried` (a batch not yet written).
    static func name(_ taken: [LoopUsage.Taken], merging carried: UsageBatch) -> UsageBatch {
        var features: [FeatureKey: UsageBatch.Feature] = [:]
        var holdings: [HoldingKey: UsageBatch.Holding] = [:]
        for f in carried.features { features[FeatureKey(user: f.user, type: f.type, action: f.action)] = f }
        for h in carried.holdings { holdings[h.holding] = h }
        for t in taken { t.name(into: &features, &holdings) }
        return UsageBatch(features: Array(features.values), holdings: Array(holdings.values), dropped: carried.dropped)
    }
}

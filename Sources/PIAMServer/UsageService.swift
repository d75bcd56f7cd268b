import Foundation
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
    let path: String?
    let logPath: String?
    let logPolicy: DecisionLogPolicy
    let logMaxBytes: Int
    let logKeep: Int
    let logBufferBytes: Int
    let interval: Duration
    let maxKeys: Int
    /// The event loops that answer queries (the socket's and the HTTP face's).
    let loops: [any EventLoop]
    let logger: Logger
    let dropped: Counter?
    let logDropped: Counter?
    let flushes: Counter?
    let failures: Counter?
    /// Prefix of every decision id: random per process, so ids from several hosts and restarts
    /// do not collide.
    let process: String

    /// - Parameters:
    ///   - config: `usage.path`, `usage.flush_ms`, `usage.max_keys`, `decision_log.*` (one of
    ///     `usage.path` and `decision_log.path` set).
    ///   - loops: the event loops that answer queries (every face's).
    ///   - metrics: where `piam_usage_dropped_total`, `piam_decision_log_dropped_total`,
    ///     `piam_usage_flushes_total` and `piam_usage_flush_failures_total` are counted.
    public init(config: DaemonConfig, loops: [any EventLoop], metrics: ServerMetrics?, logger: Logger) {
        path = config.usagePath
        logPath = config.decisionLogPath
        logPolicy = DecisionLogPolicy(denyOnly: config.decisionLogDenyOnly, sample: config.decisionLogSample)
        logMaxBytes = config.decisionLogMaxBytes
        logKeep = config.decisionLogKeep
        logBufferBytes = config.decisionLogBufferBytes
        interval = .milliseconds(config.usageFlushMS)
        maxKeys = config.usageMaxKeys
        self.loops = loops
        self.logger = logger
        process = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        func name(_ m: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "piam", metricName: m, unitName: "total", helpText: help)
        }
        dropped = metrics?.registry.makeCounter(descriptor: name("usage_dropped",
            "Decisions not recorded in the usage tallies because an event loop's table held usage.max_keys keys."))
        logDropped = metrics?.registry.makeCounter(descriptor: name("decision_log_dropped",
            "Decisions the decision log selected but dropped because an event loop's buffer held decision_log.buffer_bytes."))
        flushes = metrics?.registry.makeCounter(descriptor: name("usage_flushes", "Usage and decision-log flushes written."))
        failures = metrics?.registry.makeCounter(descriptor: name("usage_flush_failures",
            "Flushes that failed to write (usage tallies are kept and written with the next; decision-log lines are lost and counted here)."))
    }

    /// What the writer thread owns.
    final class Outputs {
        let database: UsageDatabase?
        let log: DecisionLogFile?
        init(database: UsageDatabase?, log: DecisionLogFile?) {
            self.database = database
            self.log = log
        }
    }

    public func run() async throws {
        let writerGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { writerGroup.shutdownGracefully { _ in } }
        let writer = writerGroup.next()
        let (path, logPath, logMaxBytes, logKeep) = (self.path, self.logPath, self.logMaxBytes, self.logKeep)
        let outputs = try await writer.submit {
            // Named for `top -H`, `ps -L` and the benchmark, which counts its CPU apart (as the
            // graph reader and reload threads are).
            Thread.current.name = "piam-usage"
            return NIOLoopBound(Outputs(database: try path.map { try UsageDatabase(path: $0) },
                                 log: try logPath.map { try DecisionLogFile(path: $0, maxBytes: logMaxBytes, keep: logKeep) }),
                         eventLoop: writer)
        }.get()
        let (maxKeys, tallies, policy, bufferBytes) = (self.maxKeys, path != nil, logPolicy, logBufferBytes)
        for (index, loop) in loops.enumerated() {
            try await loop.submit {
                LoopUsage.install(LoopUsage(maxKeys: maxKeys, tallies: tallies,
                                            log: logPath == nil ? nil : DecisionLogBuffer(policy: policy, maxBytes: bufferBytes, loop: index)))
            }.get()
        }
        logger.info("recording usage", metadata: [
            "usage_path": "\(path ?? "off")", "decision_log": "\(logPath ?? "off")", "flush_ms": "\(interval / .milliseconds(1))",
        ])
        var pending = Pending()
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            await flush(into: &pending, outputs: outputs, writer: writer)
        }
        // The faces stopped before this service (it is first in the group): one last flush of
        // everything they answered, then no more recording.
        await flush(into: &pending, outputs: outputs, writer: writer)
        for loop in loops { try? await loop.submit { LoopUsage.uninstall() }.get() }
    }

    /// What a failed write left to write with the next flush.
    struct Pending: Sendable {
        var batch = UsageBatch()
    }

    /// Takes every loop's tally, names it and writes it; a failed write keeps the batch for the
    /// next flush.
    func flush(into pending: inout Pending, outputs: NIOLoopBound<Outputs>, writer: any EventLoop) async {
        var taken: [LoopUsage.Taken] = []
        var drops = 0, logDrops = 0
        for loop in loops {
            guard let t = try? await loop.submit({ LoopUsage.current?.take() ?? (tables: [], dropped: 0, logDropped: 0) }).get() else { continue }
            taken += t.tables
            drops += t.dropped
            logDrops += t.logDropped
        }
        if drops > 0 { dropped?.increment(by: Int64(drops)) }
        if logDrops > 0 { logDropped?.increment(by: Int64(logDrops)) }
        let carried = pending.batch
        let tables = taken, dropped = drops, process = self.process
        // Named and written on the writer's thread; a failed write hands the named batch back.
        let result = try? await writer.submit { () -> (left: UsageBatch, error: String?) in
            var error: String?
            if let file = outputs.value.log {
                var lines: [UInt8] = []
                for t in tables where !t.log.isEmpty {
                    lines += DecisionLogBuffer.lines(t.log, loop: t.loop, process: process, graph: t.graph)
                }
                do { try file.write(lines) } catch let e { error = "decision log: \(e)" }
            }
            var batch = Self.name(tables, merging: carried)
            batch.dropped += dropped
            guard let database = outputs.value.database, !batch.isEmpty else { return (UsageBatch(), error) }
            do {
                try database.record(batch, now: QueryEvaluator.now())
                return (UsageBatch(), error)
            } catch let e {
                return (batch, "\(e)")
            }
        }.get()
        guard let result else { return }
        pending.batch = result.left
        if let error = result.error {
            failures?.increment()
            logger.warning("usage flush failed; usage tallies kept for the next", metadata: ["error": "\(error)"])
        } else {
            flushes?.increment()
        }
    }

    /// One flush of `usages` (each an event loop's tallies) into `database`, on the calling
    /// thread: what the writer thread does every `usage.flush_ms` (for the benchmark that times it).
    public static func write(_ usages: [LoopUsage], to database: UsageDatabase, now: Timestamp) throws(PIAMError) {
        let tables = usages.flatMap { $0.take().tables }
        try database.record(name(tables, merging: UsageBatch()), now: now)
    }

    /// The loops' tables in names, merged with `carried` (a batch not yet written). Tables of
    /// one graph (the usual flush: no reload in the interval) merge on slot numbers; batches of
    /// several graphs, or with a carried one, then merge on names.
    static func name(_ taken: [LoopUsage.Taken], merging carried: UsageBatch) -> UsageBatch {
        var groups: [(graph: AccessGraph, tables: [LoopUsage.Taken])] = []
        for t in taken {
            guard let g = t.graph else {
                t.free()
                continue
            }
            if let k = groups.firstIndex(where: { $0.graph === g }) { groups[k].tables.append(t) } else { groups.append((g, [t])) }
        }
        let named = groups.map { LoopUsage.Taken.name($0.tables, graph: $0.graph) }
        if carried.isEmpty, named.count <= 1 { return named.first ?? UsageBatch() }
        var features: [FeatureKey: UsageBatch.Feature] = [:]
        var holdings: [HoldingKey: UsageBatch.Holding] = [:]
        for b in [carried] + named {
            for f in b.features {
                let k = FeatureKey(user: f.user, type: f.type, action: f.action)
                guard var x = features[k] else {
                    features[k] = f
                    continue
                }
                x.allowed += f.allowed
                x.denied += f.denied
                x.firstAllowed = [x.firstAllowed, f.firstAllowed].compactMap { $0 }.min()
                x.lastAllowed = [x.lastAllowed, f.lastAllowed].compactMap { $0 }.max()
                features[k] = x
            }
            for h in b.holdings {
                guard var x = holdings[h.holding] else {
                    holdings[h.holding] = h
                    continue
                }
                x.uses += h.uses
                x.lastUsed = max(x.lastUsed, h.lastUsed)
                holdings[h.holding] = x
            }
        }
        return UsageBatch(features: Array(features.values), holdings: Array(holdings.values), dropped: carried.dropped)
    }
}

import Foundation
import NIOConcurrencyHelpers
import NIOCore
import PIAMEngine
import Synchronization

/// An immutable graph with the revision it reflects and how it came to be. Queries hold one
/// for the length of a request; a reload publishes a new one and never touches the old.
public final class Snapshot: Sendable {
    public let graph: AccessGraph
    public let revision: Int64
    /// Wall-clock time the load finished.
    public let loadedAt: Date
    /// Seconds the load took.
    public let loadSeconds: Double
    /// Why it was loaded: `startup`, `sighup`, `catch-up`, `poll`.
    public let cause: String
    /// Entity counts (computed once; STATUS reports them).
    public let counts: AccessGraph.Counts
    /// The identity namespaces of the JIT-enabled partners at ``revision`` (just-in-time
    /// creation asks piam-admind only for an unknown subject inside one of them).
    public let jit: JITNamespaces

    public init(graph: AccessGraph, revision: Int64, loadedAt: Date = Date(), loadSeconds: Double, cause: String,
                jit: JITNamespaces = .empty) {
        self.graph = graph
        self.jit = jit
        self.revision = revision
        self.loadedAt = loadedAt
        self.loadSeconds = loadSeconds
        self.cause = cause
        self.counts = graph.counts
    }
}

/// The daemon's shared state: the current snapshot, the requests waiting for a newer revision,
/// health, and counters for STATUS.
///
/// The query path takes one short lock to read the snapshot reference — never held while a
/// graph is loaded or built, and taken once per read burst while ``generation`` stands still —
/// so queries never wait on a reload.
public final class GraphState: Sendable {
    private struct Waiter {
        let id: Int
        let minRevision: Int64
        let loop: any EventLoop
        let done: @Sendable (Snapshot?) -> Void
        var timeout: Scheduled<Void>?
    }

    private struct Locked {
        var snapshot: Snapshot?
        var waiters: [Waiter] = []
        var nextWaiter = 0
        var degraded: String?
        var freshness = Freshness()
    }

    /// What the loader last proved about the served graph against the database itself.
    public struct Freshness: Sendable, Equatable {
        /// When a read through a freshly opened connection last found the database's revision
        /// (monotonic; nil before the first).
        public var verifiedAt: ContinuousClock.Instant?
        /// The same instant on the wall clock, for STATUS and `/metrics`.
        public var verifiedWall: Date?
        /// The database's revision at that read (or the newest revision published since: the
        /// database is at least that new).
        public var databaseRevision: Int64 = 0
        /// Since when the database is known to be ahead of the served graph (nil: not behind).
        public var behindSince: ContinuousClock.Instant?
        /// A full reload is running: the loader is catching up, not idle.
        public var reloading = false
        /// Replica mode: the primary's last heartbeat as the replica holds it (`meta`
        /// `heartbeat_at`, written by `piamctl heartbeat` on the primary); nil before one is read.
        public var heartbeat: Date?

        /// Replica mode: how old the replica's content is (now − the primary's last heartbeat).
        public func replicaAge(now: Date = Date()) -> Duration? {
            heartbeat.map { .milliseconds(Int64((now.timeIntervalSince($0) * 1000).rounded())) }
        }
    }

    /// How long the served graph may go unverified, or known behind, before piamd calls itself
    /// degraded: `reload.poll_ms` + `consistency.timeout_ms`, and `consistency.timeout_ms`.
    private let verifyGrace: Duration
    private let behindGrace: Duration
    /// Replica mode (`database.replica`): the oldest the replica may be (`database.replica_max_age_ms`).
    public let replicaMaxAge: Duration?

    private let locked = NIOLockedValueBox(Locked())
    /// Open client connections.
    public let connections = Atomic<Int>(0)
    /// Requests answered since start.
    public let requests = Atomic<Int>(0)
    /// Graphs published since start, the first load included (`piam_graph_reloads_total`).
    public let published = Atomic<Int>(0)
    public let startedAt = Date()
    /// Journal applies and full reloads since start (STATUS `reloads`).
    public let reloads = ReloadCounters()
    private let wake: @Sendable () -> Void
    private enum Startup {
        case waiting([CheckedContinuation<Void, any Error>])
        case loaded
        case failed(any Error)
    }
    private let startup = NIOLockedValueBox(Startup.waiting([]))

    /// - Parameters:
    ///   - pollMS: the loader's verification interval (`reload.poll_ms`).
    ///   - timeoutMS: `consistency.timeout_ms`: how long piamd may be behind, or go unverified
    ///     beyond one interval, before it reports itself degraded.
    ///   - wake: asks the loader to look for a newer revision at once.
    ///   - replicaMaxAgeMS: replica mode: a replica whose primary's last heartbeat is older than
    ///     this (or that has none) is degraded; nil for a local database.
    public init(pollMS: Int = 1000, timeoutMS: Int = 1000, replicaMaxAgeMS: Int? = nil, wake: @escaping @Sendable () -> Void) {
        self.wake = wake
        behindGrace = .milliseconds(max(0, timeoutMS))
        verifyGrace = .milliseconds(max(1, pollMS) + max(0, timeoutMS))
        replicaMaxAge = replicaMaxAgeMS.map { .milliseconds($0) }
    }

    /// How many snapshots have been published: a connection that took ``snapshot`` at one
    /// value may keep answering from it until the value moves (an atomic load, no lock). It
    /// moves after the new snapshot is in place, so whoever sees it move then reads the new one.
    @inline(__always)
    public var generation: Int { published.load(ordering: .acquiring) }

    /// The graph queries are answered from (nil before the first load).
    public var snapshot: Snapshot? { locked.withLockedValue { $0.snapshot } }

    /// Why the daemon is degraded (serving its last good graph, or unable to prove that graph is
    /// the database's), or nil when healthy.
    ///
    /// Derived when asked, from the loader's last fault and its last verification, so that a
    /// loader stuck in a system call still shows as degraded once its grace has passed: piamd
    /// never reports `serving` while it is, or cannot prove it is not, behind the database.
    public var degraded: String? {
        let now = ContinuousClock.now
        return locked.withLockedValue { s in
            s.degraded ?? Self.staleness(s, now: now, verifyGrace: verifyGrace, behindGrace: behindGrace, replicaMaxAge: replicaMaxAge)
        }
    }

    /// The last fault the loader reported (nil when its last cycle succeeded), without the
    /// freshness rules of ``degraded``.
    public var fault: String? { locked.withLockedValue { $0.degraded } }

    /// Marks the daemon degraded by a fault (or clears the fault with nil). Returns whether the
    /// fault state changed.
    @discardableResult
    public func setDegraded(_ reason: String?) -> Bool {
        locked.withLockedValue { s in
            defer { s.degraded = reason }
            return (s.degraded == nil) != (reason == nil)
        }
    }

    /// The freshness record (STATUS, `/metrics`).
    public var freshness: Freshness { locked.withLockedValue { $0.freshness } }

    /// The loader read the database's revision `databaseRevision` through a connection that
    /// cannot be looking at a stale WAL index, at `at`; compared with the served snapshot.
    public func recordVerification(databaseRevision: Int64, at: ContinuousClock.Instant, wall: Date) {
        locked.withLockedValue { s in
            s.freshness.verifiedAt = at
            s.freshness.verifiedWall = wall
            s.freshness.databaseRevision = databaseRevision
            let served = s.snapshot?.revision ?? -1
            if databaseRevision > served {
                if s.freshness.behindSince == nil { s.freshness.behindSince = at }
            } else {
                s.freshness.behindSince = nil
            }
        }
    }

    /// A full reload started (`true`) or ended: while one runs, the time since the last
    /// verification is not held against the daemon (it is catching up).
    public func setReloading(_ on: Bool) {
        locked.withLockedValue { $0.freshness.reloading = on }
    }

    /// Replica mode: the primary's heartbeat read from the replica (nil: none there).
    public func recordHeartbeat(_ at: Date?) {
        locked.withLockedValue { $0.freshness.heartbeat = at }
    }

    private static func staleness(_ s: Locked, now: ContinuousClock.Instant, verifyGrace: Duration, behindGrace: Duration,
                                  replicaMaxAge: Duration?) -> String? {
        guard let snap = s.snapshot else { return nil }
        let f = s.freshness
        if let maxAge = replicaMaxAge {
            guard let age = f.replicaAge() else {
                return "replica of unknown age: no heartbeat from the primary in the database (run piamctl heartbeat on the primary)"
            }
            if age > maxAge {
                return "replica is \(Self.ms(age)) ms old (the primary's last heartbeat; database.replica_max_age_ms \(Self.ms(maxAge))): the primary or the replication is unreachable"
            }
        }
        if let since = f.behindSince, f.databaseRevision > snap.revision, now - since > behindGrace {
            return "behind the database: serving revision \(snap.revision), the database is at \(f.databaseRevision) (for \(Self.ms(now - since)) ms)"
        }
        if !f.reloading, let at = f.verifiedAt, now - at > verifyGrace {
            return "not verified current for \(Self.ms(now - at)) ms (serving revision \(snap.revision))"
        }
        return nil
    }

    static func ms(_ d: Duration) -> Int64 {
        d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
    }

    /// Makes `snapshot` current and answers every waiter it satisfies.
    public func publish(_ snapshot: Snapshot) {
        let ready: [Waiter] = locked.withLockedValue { s in
            s.snapshot = snapshot
            // The graph was read from the database: it is at least this new.
            if snapshot.revision >= s.freshness.databaseRevision {
                s.freshness.databaseRevision = snapshot.revision
                s.freshness.behindSince = nil
            }
            var ready: [Waiter] = []
            s.waiters.removeAll { w in
                if w.minRevision <= snapshot.revision { ready.append(w); return true }
                return false
            }
            return ready
        }
        published.add(1, ordering: .releasing)
        for w in ready {
            w.timeout?.cancel()
            w.loop.execute { w.done(snapshot) }
        }
        finishStartup(.loaded)
    }

    /// Fails startup: whoever waits in ``waitUntilLoaded()`` gets `error`.
    public func failInitialLoad(_ error: any Error) { finishStartup(.failed(error)) }

    private func finishStartup(_ outcome: Startup) {
        let waiting: [CheckedContinuation<Void, any Error>] = startup.withLockedValue { s in
            guard case .waiting(let w) = s else { return [] }
            s = outcome
            return w
        }
        for c in waiting {
            if case .failed(let e) = outcome { c.resume(throwing: e) } else { c.resume() }
        }
    }

    /// Returns once the first graph is published (throws if the initial load failed).
    public func waitUntilLoaded() async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            let now: Startup? = startup.withLockedValue { s in
                if case .waiting(let w) = s {
                    s = .waiting(w + [c])
                    return nil
                }
                return s
            }
            switch now {
            case nil: break
            case .failed(let e): c.resume(throwing: e)
            default: c.resume()
            }
        }
    }

    /// The message of a `min_revision` wait that timed out (the socket's `STALE`, HTTP's 503
    /// `stale`): what was wanted, how long it waited, and the revision served now.
    public func staleMessage(wanted: Int64, timeout: TimeAmount) -> (message: String, have: Int64) {
        let have = snapshot?.revision ?? 0
        return ("revision \(wanted) not reached within \(timeout.nanoseconds / 1_000_000) ms; the graph is at revision \(have)", have)
    }

    /// Calls `done` on `loop` with a snapshot at least `minRevision` new — at once when the
    /// current one is — or with nil after `timeout`. Wakes the loader when it has to wait.
    public func whenRevision(atLeast minRevision: Int64, timeout: TimeAmount, on loop: any EventLoop,
                             _ done: @escaping @Sendable (Snapshot?) -> Void) {
        let now: Snapshot? = locked.withLockedValue { s in
            if let snap = s.snapshot, snap.revision >= minRevision { return snap }
            let id = s.nextWaiter
            s.nextWaiter += 1
            var w = Waiter(id: id, minRevision: minRevision, loop: loop, done: done, timeout: nil)
            w.timeout = loop.scheduleTask(in: timeout) { [weak self] in
                guard let self else { return }
                let expired = self.locked.withLockedValue { s -> Waiter? in
                    guard let i = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                    return s.waiters.remove(at: i)
                }
                if let expired { expired.done(nil) }
            }
            s.waiters.append(w)
            return nil
        }
        if let now {
            if loop.inEventLoop { done(now) } else { loop.execute { done(now) } }
        } else {
            wake()
        }
    }

    /// Answers every waiter with nil now (shutdown).
    public func failAllWaiters() {
        let all = locked.withLockedValue { s in
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in all {
            w.timeout?.cancel()
            w.loop.execute { w.done(nil) }
        }
    }
}

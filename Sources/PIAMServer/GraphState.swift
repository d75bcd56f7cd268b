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

    public init(graph: AccessGraph, revision: Int64, loadedAt: Date = Date(), loadSeconds: Double, cause: String) {
        self.graph = graph
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
    }

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

    /// - Parameter wake: asks the loader to look for a newer revision at once.
    public init(wake: @escaping @Sendable () -> Void) {
        self.wake = wake
    }

    /// How many snapshots have been published: a connection that took ``snapshot`` at one
    /// value may keep answering from it until the value moves (an atomic load, no lock). It
    /// moves after the new snapshot is in place, so whoever sees it move then reads the new one.
    @inline(__always)
    public var generation: Int { published.load(ordering: .acquiring) }

    /// The graph queries are answered from (nil before the first load).
    public var snapshot: Snapshot? { locked.withLockedValue { $0.snapshot } }

    /// Why the daemon is degraded (serving its last good graph), or nil when healthy.
    public var degraded: String? { locked.withLockedValue { $0.degraded } }

    /// Marks the daemon degraded (or healthy with nil). Returns whether the state changed.
    @discardableResult
    public func setDegraded(_ reason: String?) -> Bool {
        locked.withLockedValue { s in
            defer { s.degraded = reason }
            return (s.degraded == nil) != (reason == nil)
        }
    }

    /// Makes `snapshot` current and answers every waiter it satisfies.
    public func publish(_ snapshot: Snapshot) {
        let ready: [Waiter] = locked.withLockedValue { s in
            s.snapshot = snapshot
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

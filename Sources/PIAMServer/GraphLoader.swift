import Foundation
import Logging
import PIAMEngine
import PIAMStore
import ServiceLifecycle
import Synchronization

/// Loads the graph from the database and keeps it current by following the change journal.
///
/// One dedicated thread ("piamd-reload") owns one long-lived read-only connection and does all
/// the blocking work, so neither the event loops nor the cooperative pool ever wait on SQLite:
///
/// - At start: one full load (with `EXTEND_TIMEOUT_USEC` while it runs), then the graph is
///   published and the socket server may report `READY=1`.
/// - Detection: inotify on the database's directory (a commit writes `-wal`), a wake-up when a
///   request waits for a `min_revision` the graph has not reached, and every `reload.poll_ms`
///   (for filesystems where inotify is silent). Each is confirmed cheaply with `PRAGMA
///   data_version` before any table is read.
/// - Apply: `Store.changes(after:schemaVersion:maxRows:)` (PIAMStore) (one read transaction) →
///   `AccessGraph.applying` → publish. Commits that arrive during an apply are taken together by
///   the next one.
/// - Full reload: journal compacted past the graph's revision, schema version changed, database
///   file replaced (a new inode), an apply that fails, and SIGHUP (`RELOADING=1` +
///   `MONOTONIC_USEC`, then `READY=1`).
/// - Faults (file missing, not an SQLite file, unreadable, locked past the busy timeout): the last
///   good graph keeps answering, the daemon is marked degraded (STATUS and systemd `STATUS=`,
///   logged once), and the next trigger retries; the first success logs the recovery.
public final class GraphLoader: Service, Sendable {
    /// Why a load or check was asked for.
    public enum Cause: String, Sendable {
        case startup, sighup
        case catchUp = "catch-up"
        case poll
        case inotify
    }

    private static let stopFlag: UInt8 = 1
    private static let sighupFlag: UInt8 = 2
    private static let catchUpFlag: UInt8 = 4

    let config: DaemonConfig
    let state: GraphState
    let notifier: any Notifier
    let logger: Logger
    private let triggers: AsyncStream<Cause>
    private let continuation: AsyncStream<Cause>.Continuation
    /// Requests for the loader's thread (bits: stop, SIGHUP, catch-up).
    private let flags = Atomic<UInt8>(0)
    private let watcher: Mutex<ChangeWatcher?> = Mutex(nil)

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

    /// Asks for a full reload (SIGHUP) or a revision check; returns at once.
    public func request(_ cause: Cause) {
        switch cause {
        case .sighup: flags.bitwiseOr(Self.sighupFlag, ordering: .sequentiallyConsistent)
        default: flags.bitwiseOr(Self.catchUpFlag, ordering: .sequentiallyConsistent)
        }
        watcher.withLock { $0?.wake() }
    }

    public func run() async throws {
        let watcher = try ChangeWatcher(databasePath: config.databasePath, replica: config.databaseReplica)
        if let e = watcher.inotifyError {
            logger.warning("inotify is off; commits are found by reload.poll_ms and min_revision requests only", metadata: ["error": "\(e)"])
        }
        self.watcher.withLock { $0 = watcher }
        notifier.notify(["STATUS=loading the graph from \(config.databasePath)"])
        logger.info("loading graph", metadata: ["database": "\(config.databasePath)"])
        let extender = Task {
            while !Task.isCancelled {
                notifier.notify(["EXTEND_TIMEOUT_USEC=20000000"])
                try? await Task.sleep(for: .seconds(5))
            }
        }
        let (exited, exit) = AsyncStream.makeStream(of: Void.self)
        do {
            try await withCheckedThrowingContinuation { (started: CheckedContinuation<Void, any Error>) in
                let thread = Thread { [self] in
                    self.threadMain(watcher: watcher, started: started)
                    exit.finish()
                }
                thread.name = "piamd-reload"
                thread.start()
            }
        } catch {
            extender.cancel()
            state.failInitialLoad(error)
            throw error
        }
        extender.cancel()
        await withGracefulShutdownHandler {
            // Catch-up requests from GraphState (a request waits for a newer revision).
            for await cause in self.triggers { self.request(cause) }
        } onGracefulShutdown: {
            self.continuation.finish()
        }
        flags.bitwiseOr(Self.stopFlag, ordering: .sequentiallyConsistent)
        watcher.wake()
        for await _ in exited {}
    }

    /// The loader thread: the first load, then one wait and one cycle per wake-up until stopped.
    private func threadMain(watcher: ChangeWatcher, started: CheckedContinuation<Void, any Error>) {
        let follower = JournalFollower(loader: self)
        do {
            try follower.fullReload(cause: Cause.startup.rawValue)
        } catch {
            started.resume(throwing: error)
            return
        }
        started.resume()
        while true {
            let woke = watcher.wait(timeoutMS: follower.nextWakeMS())
            let requested = flags.exchange(0, ordering: .sequentiallyConsistent)
            if requested & Self.stopFlag != 0 { return }
            if requested & Self.sighupFlag != 0 {
                follower.sighup()
            } else {
                let cause: Cause = woke.contains(.file) ? .inotify : requested & Self.catchUpFlag != 0 ? .catchUp : .poll
                follower.cycle(cause)
            }
            follower.notifyStatusIfDue()
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

/// The database file's identity: a replacement (rename over it) has a new inode.
struct FileIdentity: Equatable {
    var device: UInt64
    var inode: UInt64
}

/// What the database path holds now, checked before every cycle: one `stat(2)`.
///
/// Never `open(2)` the database file outside SQLite in this process: on POSIX, `close()` of any
/// descriptor of a file drops every advisory lock the process holds on it, SQLite's included.
/// piamd would then hold no lock on its database while its connection believes it does, and the
/// next foreign connection to close would think itself the last, checkpoint, and delete the WAL
/// and its index under piamd (which then never sees another commit). Whether the file is an
/// SQLite database at all is SQLite's to say, on the next read.
enum FileProbe {
    case ok(FileIdentity)
    case fault(String)

    static func probe(_ path: String) -> FileProbe {
        var st = stat()
        guard stat(path, &st) == 0 else {
            return .fault(errno == ENOENT ? "database file \(path) is missing" : "cannot stat \(path): \(String(cString: strerror(errno)))")
        }
        guard st.st_mode & S_IFMT == S_IFREG else { return .fault("\(path) is not a regular file") }
        return .ok(FileIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino)))
    }
}

/// The loader thread's state: the connection the follower reads through and what the published
/// graph was read from. Created on, and confined to, that thread (it holds a non-`Sendable`
/// `Store`).
///
/// Three promises, each guarding against a way a follower can fall silently behind:
/// - **No file access outside SQLite** (``FileProbe``): the process never loses SQLite's locks,
///   so no other program's connection can delete the WAL under it.
/// - **Verification** every `reload.poll_ms`, whatever woke the thread: the connection is closed
///   and opened anew — piamd's only connection to the file, so SQLite maps the WAL index afresh
///   from the path — and the database's revision read through it is compared with the served
///   one; behind → catch up. A follower fooled by a stale WAL index, a missed inotify event or a
///   replaced `-wal` is found within one interval. ``GraphState`` turns "behind for longer than
///   `consistency.timeout_ms`" and "not verified for an interval plus that" into `degraded`.
/// - **Back-off** after a failure (100 ms doubling to 5 s): wake-ups during it are coalesced into
///   the retry, and a failure is logged when it starts or changes, not per attempt.
final class JournalFollower {
    let loader: GraphLoader
    var config: DaemonConfig { loader.config }
    var state: GraphState { loader.state }
    var logger: Logger { loader.logger }
    /// The connection the follower reads through (nil before the first load and after a fault).
    private var store: Store?
    private var identity: FileIdentity?
    private var schemaVersion = 0
    private var dataVersion: Int64 = -1
    /// Set after a fault that may have left the connection looking at the wrong file or stale
    /// pages: the next successful cycle reopens and loads everything.
    private var reopenReason: String?
    /// A STATUS= line is owed to systemd (applies send it at most once a second).
    private(set) var statusDirty = false
    private var lastStatus = ContinuousClock.now
    /// The verification interval (`reload.poll_ms`) and when the next verification is due.
    let verifyInterval: Duration
    private var nextVerify = ContinuousClock.now
    /// After a failure: no attempt before `retryAt`; the delay doubles up to ``maxBackoff``.
    private var retryAt: ContinuousClock.Instant?
    private var backoff: Duration = .zero
    static let firstBackoff: Duration = .milliseconds(100)
    static let maxBackoff: Duration = .seconds(5)
    /// The freshness verdict last logged (``GraphState/degraded`` minus faults), to log a change once.
    private var staleLogged = false
    /// A file event whose cycle found no commit: a writer's first write to `-wal` wakes the
    /// thread before its commit is visible, and a long-lived writer sends no event after it. So
    /// look again shortly (1, 5, 20 and 100 ms after the last event) before leaving it to the next
    /// verification.
    private var recheckAt: ContinuousClock.Instant?
    private var rechecks = 0
    static let recheckDelays: [Duration] = [.milliseconds(1), .milliseconds(5), .milliseconds(20), .milliseconds(100)]
    /// Replica mode (`database.replica`): the connection is closed at the end of every cycle, so
    /// the replication engine (Litestream's follow mode applies nothing while a connection stays
    /// open) can write between reads; each cycle is therefore a verification too.
    let replica: Bool

    init(loader: GraphLoader) {
        self.loader = loader
        verifyInterval = .milliseconds(loader.config.reloadVerifyMS)
        replica = loader.config.databaseReplica
    }

    /// Replica mode: records the primary's heartbeat the replica holds.
    private func readHeartbeat(_ s: Store) throws(PIAMError) {
        guard replica else { return }
        state.recordHeartbeat(try s.heartbeat().map { Date(timeIntervalSince1970: Double($0) / 1000) })
    }

    /// Milliseconds until the thread must run a cycle by itself: the next verification, the end
    /// of a back-off, or an owed STATUS= line.
    func nextWakeMS() -> Int32 {
        let now = ContinuousClock.now
        // While backing off, nothing runs before the retry; otherwise the next verification.
        var due = retryAt ?? nextVerify
        if statusDirty { due = min(due, lastStatus + .seconds(1)) }
        if let r = recheckAt { due = min(due, r) }
        // The freshness verdict changes with time alone: look again when it can next change.
        due = min(due, now + verifyInterval)
        return Int32(clamping: max(0, GraphState.ms(due - now)) + 1)
    }

    /// Opens the read connection (the only one this process holds on the file).
    private func openConnection() throws(PIAMError) -> Store {
        let path = config.databasePath
        do throws(PIAMError) {
            let s = try Store(path: path, readOnly: true)
            // Wait at most a second for a lock (a rollback-journal writer, WAL recovery): the
            // thread then reports degraded instead of hanging; queries are never waiting on it.
            try s.db.execute("PRAGMA busy_timeout=1000")
            return s
        } catch where error.message.contains("readonly") {
            throw PIAMError(error.code, "\(error.message) — in a read-only directory piamd needs \(path)-wal and -shm to exist; any piamctl write (e.g. piamctl init --db \(path)) creates them")
        }
    }

    // MARK: Full reload

    /// Opens the database anew and loads the whole graph in one read transaction; publishes it.
    func fullReload(cause: String) throws(PIAMError) {
        let path = config.databasePath
        let start = ContinuousClock.now
        let wall = Date()
        guard case .ok(let before) = FileProbe.probe(path) else {
            if case .fault(let why) = FileProbe.probe(path) { throw PIAMError(.database, why) }
            throw PIAMError(.database, "\(path): unreadable")
        }
        state.setReloading(true)
        defer { state.setReloading(false) }
        // Close before opening: SQLite shares one WAL index per file among a process's
        // connections, so a new connection opened beside a stale one would inherit its staleness.
        store = nil
        dataVersion = -1
        let s = try openConnection()
        // data_version in the same read transaction as the graph: read after it, a commit
        // landing in between would be in the baseline and never be applied.
        let (loaded, version, dv) = try s.db.withTransaction { () throws(PIAMError) -> (LoadedGraph, Int, Int64) in
            // The database's revision, recorded before the build: a graph that cannot be built
            // still shows how far behind the served one is.
            state.recordVerification(databaseRevision: try s.revision(), at: start, wall: wall)
            try readHeartbeat(s)
            return (try s.loadGraph(), try s.schemaVersion, try s.dataVersion())
        }
        guard case .ok(let after) = FileProbe.probe(path), after == before else {
            throw PIAMError(.database, "\(path) was replaced while it was being loaded")
        }
        let seconds = (ContinuousClock.now - start) / .seconds(1)
        let snapshot = Snapshot(graph: loaded.graph, revision: loaded.revision, loadSeconds: seconds, cause: cause, jit: loaded.jit)
        // Counted before publishing: a client released by the publish may ask STATUS at once.
        state.reloads.recordFullReload()
        state.publish(snapshot)
        nextVerify = start + verifyInterval
        store = replica ? nil : s
        identity = after
        schemaVersion = version
        dataVersion = dv
        reopenReason = nil
        let c = snapshot.counts
        logger.info("graph loaded", metadata: [
            "cause": "\(cause)", "revision": "\(loaded.revision)", "seconds": "\(String(format: "%.3f", seconds))",
            "orgs": "\(c.orgs)", "users": "\(c.users)", "roles": "\(c.roles)", "resources": "\(c.resources)",
            "grants": "\(c.grants)",
        ])
        statusDirty = true
    }

    /// A full reload that reports its failure as degraded instead of throwing.
    private func tryFullReload(cause: String, why: String) {
        // Logged when piamd is healthy; while degraded, retries are debug lines (``fail`` says
        // what went wrong once).
        logger.log(level: state.fault == nil ? .info : .debug, "full reload", metadata: ["cause": "\(cause)", "reason": "\(why)"])
        do {
            try fullReload(cause: cause)
            succeeded()
        } catch {
            fail("reload failed: \(Self.describe(error))", reopen: why)
        }
    }

    func sighup() {
        loader.notifier.notify(["RELOADING=1", "MONOTONIC_USEC=\(Systemd.monotonicMicroseconds())", "STATUS=reloading (SIGHUP)"])
        logger.notice("SIGHUP: full reload")
        // An operator asked: try now, whatever the back-off says.
        retryAt = nil
        tryFullReload(cause: GraphLoader.Cause.sighup.rawValue, why: "SIGHUP")
        loader.notifier.notify(["READY=1", "STATUS=\(loader.statusLine())"])
        statusDirty = false
        lastStatus = .now
        state.reloads.recordSighup()
    }

    // MARK: Journal apply

    /// One wake-up: skipped while backing off after a failure; a verification when one is due.
    func cycle(_ trigger: GraphLoader.Cause) {
        let now = ContinuousClock.now
        if let r = retryAt, now < r {
            logFreshness()
            return
        }
        check(trigger, verify: now >= nextVerify)
        logFreshness()
    }

    /// One cycle: is the file still the one we read, did anything commit, and if so apply it.
    /// With `verify`, the connection is opened anew first and the revision it reads is recorded
    /// as proven (``GraphState/recordVerification(databaseRevision:at:wall:)``).
    func check(_ trigger: GraphLoader.Cause, verify: Bool) {
        guard let current = state.snapshot else { return }
        // Replica mode: never hold the replica open between cycles.
        defer { if replica { store = nil } }
        switch FileProbe.probe(config.databasePath) {
        case .fault(let why):
            return fail(why, reopen: why)
        case .ok(let id):
            if id != identity { return tryFullReload(cause: "file-replaced", why: "the database file was replaced (new inode)") }
        }
        if let why = reopenReason { return tryFullReload(cause: "recovery", why: why) }
        let start = ContinuousClock.now
        let wall = Date()
        // A freshly opened connection proves what it reads (always in replica mode: the
        // connection is closed after every cycle).
        let fresh = verify || store == nil
        do throws(PIAMError) {
            if fresh {
                nextVerify = start + verifyInterval
                store = nil  // closed first: see fullReload
                store = try openConnection()
                dataVersion = -1
            }
            guard let store else { return }
            let dv = try store.dataVersion()
            if dv != dataVersion {
                recheckAt = nil
            } else if trigger == .inotify {
                // Every file event restarts the sequence: what matters is the time after the last.
                rechecks = 1
                recheckAt = ContinuousClock.now + Self.recheckDelays[0]
            } else if recheckAt != nil {
                recheckAt = rechecks < Self.recheckDelays.count ? ContinuousClock.now + Self.recheckDelays[rechecks] : nil
                rechecks += 1
            }
            if dv == dataVersion {
                // A request waits for a revision a writer already returned, yet this connection
                // sees no commit: prove it with a fresh connection now, not at the next interval.
                if trigger == .catchUp && !fresh { return check(trigger, verify: true) }
                succeeded()
                return
            }
            let set = try store.changes(after: current.revision, schemaVersion: schemaVersion)
            dataVersion = dv
            // The database's revision as a fresh connection read it: current, or how far behind.
            if fresh { state.recordVerification(databaseRevision: set.revision, at: start, wall: wall) }
            try readHeartbeat(store)
            if let r = set.fullReload { return tryFullReload(cause: r.cause, why: r.description) }
            guard set.revision != current.revision else {
                succeeded()
                return
            }
            let engineStart = ContinuousClock.now
            let graph: AccessGraph
            do throws(PIAMError) {
                graph = try current.graph.applying(set.changes)
            } catch {
                return tryFullReload(cause: "apply-failed", why: "the journal apply failed: \(error.message)")
            }
            let engine = ContinuousClock.now - engineStart
            // The new snapshot keeps the last full load's time, duration and cause (last_reload).
            // Counted before publishing: a client released by the publish may ask STATUS at once.
            let total = ContinuousClock.now - start
            state.reloads.recordApply(micros: Self.micros(total), engineMicros: Self.micros(engine),
                                      keys: set.changes.count, rows: set.journalRows)
            state.publish(Snapshot(graph: graph, revision: set.revision, loadedAt: current.loadedAt,
                                   loadSeconds: current.loadSeconds, cause: current.cause, jit: set.jit ?? current.jit))
            statusDirty = true
            let abandoned = graph.reclaimable
            if config.reloadReclaimSlots > 0 && abandoned >= config.reloadReclaimSlots {
                return tryFullReload(cause: "reclaim", why: "\(abandoned) slots abandoned by incremental applies (reload.reclaim_slots \(config.reloadReclaimSlots))")
            }
            if logger.logLevel <= .debug {
                logger.debug("journal applied", metadata: [
                    "trigger": "\(trigger.rawValue)", "revision": "\(set.base) -> \(set.revision)",
                    "rows": "\(set.journalRows)", "keys": "\(set.changes.count)",
                    "us": "\(Self.micros(total))", "engine_us": "\(Self.micros(engine))",
                ])
            }
            succeeded()
        } catch {
            if error.message.contains("locked") || error.message.contains("busy") {
                // A writer holds the file locked past the busy timeout: the connection is fine.
                fail("database locked: \(error.message)", reopen: nil)
            } else {
                fail("cannot read the database: \(Self.describe(error))", reopen: error.message)
            }
        }
    }

    /// SQLite's message, saying "corrupt" where SQLite says the file is not (or no longer) a
    /// well-formed database — what an operator searches the journal for.
    static func describe(_ error: PIAMError) -> String {
        let m = error.message
        return m.contains("not a database") || m.contains("malformed") ? "the database file is corrupt (\(m))" : m
    }

    static func micros(_ d: Duration) -> Int {
        Int(d.components.seconds) * 1_000_000 + Int(d.components.attoseconds / 1_000_000_000_000)
    }

    // MARK: Health

    /// A cycle failed: serve the last good graph, say so (once per distinct reason), and back
    /// off before the next attempt. `reopen`: the connection cannot be trusted; the next
    /// successful cycle loads everything anew.
    private func fail(_ reason: String, reopen: String?) {
        if let reopen, reopenReason == nil { reopenReason = reopen }
        backoff = backoff == .zero ? Self.firstBackoff : min(backoff * 2, Self.maxBackoff)
        retryAt = ContinuousClock.now + backoff
        let previous = state.fault
        state.setDegraded(reason)
        if previous == nil {
            logger.error("degraded: serving the last good graph", metadata: ["reason": "\(reason)"])
            notifyStatus()
        } else if previous != reason, backoff >= Self.maxBackoff {
            // Still failing, for a new reason: said at most once per back-off period.
            logger.warning("still degraded", metadata: ["reason": "\(reason)"])
            notifyStatus()
        }
    }

    private func succeeded() {
        retryAt = nil
        backoff = .zero
        if state.setDegraded(nil) {
            logger.notice("recovered: the database is readable again")
            notifyStatus()
        }
    }

    /// Logs, once each way, when the served graph becomes (or stops being) unproven or behind —
    /// the part of ``GraphState/degraded`` that time alone can change.
    private func logFreshness() {
        let stale = state.fault == nil ? state.degraded : nil
        if let stale, !staleLogged {
            staleLogged = true
            logger.warning("degraded: cannot prove the served graph is current", metadata: ["reason": "\(stale)"])
            notifyStatus()
        } else if stale == nil && staleLogged && state.fault == nil {
            staleLogged = false
            logger.notice("current again: the served graph matches the database")
            notifyStatus()
        }
    }

    private func notifyStatus() {
        loader.notifier.notify(["STATUS=\(loader.statusLine())"])
        statusDirty = false
        lastStatus = .now
    }

    /// Sends the owed STATUS= line when the last one is a second old (applies can be thousands a
    /// second; systemd needs the gist, not each one).
    func notifyStatusIfDue() {
        if statusDirty && ContinuousClock.now - lastStatus >= .seconds(1) { notifyStatus() }
    }
}

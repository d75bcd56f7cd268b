import Foundation
import NIOCore
import PIAMEngine
import PIAMStore
import PIAMWire

/// Answers decoded requests from a snapshot: the engine call per opcode, the list limits, the
/// JSON documents of EXPLAIN and STATUS. Pure apart from reading the clock and counting into
/// ``ServerMetrics``; no I/O, no waiting. Both faces answer through it, so a decision over HTTP
/// is the very decision the socket gives.
public struct QueryEvaluator: Sendable {
    public let maxList: Int
    public let defaultListPage: Int
    let state: GraphState
    let metrics: ServerMetrics?
    let interface: ServerMetrics.Interface

    /// - Parameters:
    ///   - config: the list limits (`limits.max_list`, the default page).
    ///   - state: the daemon's shared state (STATUS reads it).
    ///   - metrics: where each answer's operation, latency and decisions are counted (nil: nowhere).
    ///   - interface: the face this evaluator answers for, the metrics' `interface` label.
    public init(config: DaemonConfig, state: GraphState, metrics: ServerMetrics? = nil, interface: ServerMetrics.Interface = .socket) {
        maxList = config.maxList
        defaultListPage = config.defaultListPage
        self.state = state
        self.metrics = metrics
        self.interface = interface
    }

    /// Milliseconds since the epoch, the engine's `now`.
    @inline(__always) public static func now() -> Timestamp {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        return Timestamp(t.tv_sec) &* 1000 &+ Timestamp(t.tv_nsec / 1_000_000)
    }

    /// The answer to `request` computed on `snapshot`, counted in the metrics at once.
    public func answer(_ request: Request, on snapshot: Snapshot) -> Response {
        guard let metrics else { return compute(request, on: snapshot) }
        var tally = QueryTally()
        let response = answer(request, on: snapshot, tally: &tally)
        metrics.flush(interface, &tally)
        return response
    }

    /// The answer to `request` computed on `snapshot`, counted into `tally` (which the caller
    /// flushes into the metrics with ``flush(_:)``).
    public func answer(_ request: Request, on snapshot: Snapshot, tally: inout QueryTally) -> Response {
        guard metrics != nil else { return compute(request, on: snapshot) }
        let start = Self.monotonicNanoseconds()
        let response = compute(request, on: snapshot)
        tally.record(opcode: request.opcode.rawValue, nanoseconds: Self.monotonicNanoseconds() &- start)
        switch response.body {
        case .decision(let d), .explanation(let d, _): tally.record(d)
        case .decisions(let ds): for d in ds { tally.record(d) }
        default: break
        }
        return response
    }

    /// Adds `tally` to the metrics and zeroes it.
    public func flush(_ tally: inout QueryTally) {
        if let metrics { metrics.flush(interface, &tally) } else { tally.reset() }
    }

    /// `CLOCK_MONOTONIC` in nanoseconds (a `ContinuousClock` difference costs 128-bit
    /// `Duration` arithmetic per query).
    @inline(__always)
    static func monotonicNanoseconds() -> Int64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Int64(t.tv_sec) &* 1_000_000_000 &+ Int64(t.tv_nsec)
    }

    /// Answers a CHECK or CHECK_BATCH payload through `FastCheck` — ids looked up from the
    /// request's bytes, the response written straight into `out` — when the fast path takes it
    /// (see there); returns `false`, having written nothing, when the caller must decode the
    /// request and call ``answer(_:on:tally:)``. Counted into `tally` like any answer.
    ///
    /// - Parameters:
    ///   - payload: a frame's bytes after its u32 length.
    ///   - snapshot: the graph and revision to answer from.
    ///   - out: where the response frame is appended.
    ///   - scratch: a batch's items, reused from call to call (one per connection).
    ///   - tally: where the answer is counted (flushed by the caller with ``flush(_:)``).
    public func answerFast(payload: ByteBuffer, on snapshot: Snapshot, into out: inout ByteBuffer,
                           scratch: inout [CheckBytes], tally: inout QueryTally) -> Bool {
        let now = Self.now()
        let start = Self.monotonicNanoseconds()
        let answered = tally.decisions.withUnsafeMutableBufferPointer { counts in
            FastCheck.answer(payload: payload, revision: UInt64(max(snapshot.revision, 0)), into: &out, scratch: &scratch) { c in
                let d = decide(utf8: c, on: snapshot, now: now)
                counts[Int(d.reason.rawValue) & 15] &+= 1
                return d
            }
        }
        guard let answered else { return false }
        tally.record(opcode: answered.opcode.rawValue, nanoseconds: Self.monotonicNanoseconds() &- start)
        return true
    }

    /// Decides one check: the one place every face's decisions — the socket's fast and general
    /// paths, AuthZEN and forward-auth over HTTP, batch items — reach the engine, and where usage
    /// is recorded (into the calling event loop's ``LoopUsage``, when `usage.path` is set: a
    /// thread-local read, and with usage on two hash-table probes; no lock, no I/O).
    @inline(__always)
    func decide(utf8 c: CheckBytes, on snapshot: Snapshot, now: Timestamp) -> Decision {
        let g = snapshot.graph
        guard let usage = LoopUsage.current else { return g.check(utf8: c, now: now) }
        var f = DecisionFacts()
        let d = g.check(utf8: c, now: now, facts: &f)
        usage.record(f, allowed: d.allowed, graph: g, now: now)
        if usage.logging { usage.log(d, f, revision: snapshot.revision, now: now, c) }
        return d
    }

    /// ``decide(utf8:on:now:)`` for a decoded request.
    @inline(__always)
    func decide(_ c: CheckRequest, on snapshot: Snapshot, now: Timestamp) -> Decision {
        let g = snapshot.graph
        guard let usage = LoopUsage.current else { return g.check(c, now: now) }
        var f = DecisionFacts()
        let d = g.check(c, now: now, facts: &f)
        usage.record(f, allowed: d.allowed, graph: g, now: now)
        if usage.logging { usage.log(d, f, revision: snapshot.revision, now: now, c) }
        return d
    }

    private func compute(_ request: Request, on snapshot: Snapshot) -> Response {
        let g = snapshot.graph
        let now = Self.now()
        let rev = UInt64(snapshot.revision)
        func ok(_ body: Response.Body) -> Response {
            Response(opcode: request.opcode, requestID: request.requestID, revision: rev, body: body)
        }
        func limit(_ l: UInt32) -> Int { l == 0 ? defaultListPage : min(Int(l), maxList) }
        do throws(PIAMError) {
            switch request.body {
            case .check(let c):
                return ok(.decision(decide(c, on: snapshot, now: now)))
            case .checkBatch(let semantic, let items):
                var ds: [Decision] = []
                ds.reserveCapacity(items.count)
                for c in items {
                    let d = decide(c, on: snapshot, now: now)
                    ds.append(d)
                    if semantic.stops(after: d) { break }
                }
                return ok(.decisions(ds))
            case .explain(let c):
                let e = g.explain(c, now: now)
                return ok(.explanation(Decision(allowed: e.allowed, reason: e.reason), trace: Self.json(e)))
            case .listResources(let subject, let action, let type, let cursor, let l):
                let p = try g.listResources(subject: subject, action: action, type: type,
                                            cursor: cursor.isEmpty ? nil : cursor, limit: limit(l), now: now)
                return ok(.page(items: p.items, nextCursor: p.nextCursor ?? ""))
            case .listSubjects(let action, let resource, let cursor, let l):
                let p = try g.listSubjects(action: action, resource: resource,
                                           cursor: cursor.isEmpty ? nil : cursor, limit: limit(l), now: now)
                return ok(.page(items: p.items, nextCursor: p.nextCursor ?? ""))
            case .listActions(let subject, let resource):
                return ok(.actions(g.listActions(subject: subject, resource: resource, now: now)))
            case .canAssign(let actor, let target, let role, let scope):
                return ok(.decision(g.canAssign(actor: actor, target: target, role: role,
                                                scope: scope.isEmpty ? nil : scope, now: now)))
            case .status:
                return ok(.status(statusJSON(snapshot)))
            case .ping:
                return ok(.empty)
            }
        } catch {
            return .error(.badRequest, opcodeByte: request.opcode.rawValue, requestID: request.requestID,
                          revision: rev, message: error.message)
        }
    }

    /// The STATUS document (PROTOCOL: revision, counts, uptime, last reload and its duration,
    /// connections; plus `state` and, when degraded, why).
    public func statusJSON(_ snapshot: Snapshot) -> String {
        Self.json(StatusDocument(snapshot: snapshot, state: state))
    }

    static func json<T: Encodable>(_ value: T) -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: enc.encode(value), as: UTF8.self)) ?? "{}"
    }
}

/// The JSON document of STATUS.
public struct StatusDocument: Codable, Sendable, Hashable {
    public struct Counts: Codable, Sendable, Hashable {
        public var orgs, users, aliases, roles, resources, entitlements, assignments, orgGrants, grants: Int
        enum CodingKeys: String, CodingKey {
            case orgs, users, aliases, roles, resources, entitlements, assignments, grants
            case orgGrants = "org_grants"
        }
    }
    public struct Reload: Codable, Sendable, Hashable {
        /// RFC 3339 time the load finished.
        public var at: String
        public var durationMS: Double
        public var cause: String
        enum CodingKeys: String, CodingKey {
            case at, cause
            case durationMS = "duration_ms"
        }
    }
    /// How the graph was kept current since start (added in 0.3; absent from older daemons).
    public struct Reloads: Codable, Sendable, Hashable {
        /// Journal applies published, and full loads published (the startup load included).
        public var applies, fullReloads: Int
        /// The last apply: microseconds in all (journal read, engine apply, publish), in the
        /// engine's `applying`, its distinct keys and journal rows; the largest apply so far.
        public var lastApplyMicros, lastEngineApplyMicros, lastApplyKeys, lastApplyRows, maxApplyMicros: Int
        /// SIGHUPs handled to the end, successful or not (added in 0.3.1; `piamctl reload` waits
        /// for it to move).
        public var sighups: Int?
        /// Slots the served graph's incremental applies abandoned, which a full reload gives back
        /// (at `reload.reclaim_slots` piamd does one; added in 0.3.1).
        public var reclaimable: Int?
        enum CodingKeys: String, CodingKey {
            case applies, sighups, reclaimable
            case fullReloads = "full_reloads"
            case lastApplyMicros = "last_apply_us"
            case lastEngineApplyMicros = "last_engine_apply_us"
            case lastApplyKeys = "last_apply_keys"
            case lastApplyRows = "last_apply_rows"
            case maxApplyMicros = "max_apply_us"
        }
    }
    /// What the loader last proved against the database itself (added in 0.4.0).
    public struct Freshness: Codable, Sendable, Hashable {
        /// The database's revision at the last verification.
        public var databaseRevision: Int64
        /// `database_revision` − `revision` (0 when current; the database may have moved since).
        public var lag: Int64
        /// When a freshly opened connection last read the database's revision (RFC 3339).
        public var lastVerified: String?
        /// Milliseconds since then.
        public var verifiedMSAgo: Int64?
        /// Replica mode only: `true`.
        public var replica: Bool?
        /// Replica mode: the primary's last heartbeat the replica holds (RFC 3339), and how old
        /// the replica's content is (now − that heartbeat), in milliseconds.
        public var heartbeatAt: String?
        public var replicaAgeMS: Int64?

        enum CodingKeys: String, CodingKey {
            case lag, replica
            case heartbeatAt = "heartbeat_at"
            case replicaAgeMS = "replica_age_ms"
            case databaseRevision = "database_revision"
            case lastVerified = "last_verified"
            case verifiedMSAgo = "verified_ms_ago"
        }
    }
    /// `serving`, or `degraded` (serving the last good graph, or unable to prove it is the
    /// database's; see `degraded_reason`).
    public var state: String
    public var degradedReason: String?
    public var revision: Int64
    public var counts: Counts
    public var uptimeSeconds: Double
    public var lastReload: Reload
    public var connections: Int
    public var requests: Int
    public var version: String
    /// The daemon's process id (added in 0.3.1), for `piamctl reload`.
    public var pid: Int32?
    public var reloads: Reloads?
    public var freshness: Freshness?

    enum CodingKeys: String, CodingKey {
        case state, revision, counts, connections, requests, version, reloads, pid, freshness
        case degradedReason = "degraded_reason"
        case uptimeSeconds = "uptime_s"
        case lastReload = "last_reload"
    }

    init(snapshot: Snapshot, state: GraphState) {
        // Read before `degraded`: a reload helper that sees this count move must also see the
        // state the reload it counts left behind.
        let sighups = state.reloads.sighups.load(ordering: .acquiring)
        let c = snapshot.counts
        let degraded = state.degraded
        self.state = degraded == nil ? "serving" : "degraded"
        degradedReason = degraded
        revision = snapshot.revision
        counts = Counts(orgs: c.orgs, users: c.users, aliases: c.aliases, roles: c.roles, resources: c.resources,
                        entitlements: c.entitlements, assignments: c.assignments, orgGrants: c.orgGrants, grants: c.grants)
        uptimeSeconds = (Date().timeIntervalSince(state.startedAt) * 1000).rounded() / 1000
        lastReload = Reload(at: RFC3339.format(Timestamp(snapshot.loadedAt.timeIntervalSince1970 * 1000)), durationMS: (snapshot.loadSeconds * 1e4).rounded() / 10,
                            cause: snapshot.cause)
        connections = state.connections.load(ordering: .relaxed)
        requests = state.requests.load(ordering: .relaxed)
        version = piamdVersion
        pid = getpid()
        let r = state.reloads
        reloads = Reloads(applies: r.applies.load(ordering: .relaxed), fullReloads: r.fullReloads.load(ordering: .relaxed),
                          lastApplyMicros: r.lastApplyMicros.load(ordering: .relaxed),
                          lastEngineApplyMicros: r.lastEngineApplyMicros.load(ordering: .relaxed),
                          lastApplyKeys: r.lastApplyKeys.load(ordering: .relaxed), lastApplyRows: r.lastApplyRows.load(ordering: .relaxed),
                          maxApplyMicros: r.maxApplyMicros.load(ordering: .relaxed), sighups: sighups,
                          reclaimable: snapshot.graph.reclaimable)
        let f = state.freshness
        freshness = Freshness(databaseRevision: f.databaseRevision, lag: max(0, f.databaseRevision - snapshot.revision),
                              lastVerified: f.verifiedWall.map { RFC3339.format(Timestamp($0.timeIntervalSince1970 * 1000)) },
                              verifiedMSAgo: f.verifiedAt.map { GraphState.ms(ContinuousClock.now - $0) },
                              replica: state.replicaMaxAge == nil ? nil : true,
                              heartbeatAt: f.heartbeat.map { RFC3339.format(Timestamp($0.timeIntervalSince1970 * 1000)) },
                              replicaAgeMS: f.replicaAge().map(GraphState.ms))
    }
}

/// piamd's version string.
public let piamdVersion = "0.4.0"

import NIOConcurrencyHelpers
import PIAMEngine
import PIAMWire
import Prometheus
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The daemon's Prometheus metrics, served as text on the HTTP face's `GET /metrics`.
///
/// Decisions and query latency are recorded by ``QueryEvaluator`` for both faces — the
/// binary socket (`interface="socket"`) and HTTP (`interface="http"`) — so the numbers cover
/// all traffic. A connection tallies into a ``QueryTally`` and flushes it once per read burst,
/// before its answers are written, into ``ShardedCounts``: relaxed atomic adds into the calling
/// thread's own shard, so the event loops never share a lock or a cache line on the query path.
/// The text is rendered from the shards' sums (the counters of the registry are brought up to
/// them then). Gauges that mirror the daemon's state (revision, connections, health) and the
/// reload count are read from ``GraphState`` when the text is rendered.
///
/// | metric | type | labels |
/// | --- | --- | --- |
/// | `piam_decisions_total` | counter | `result` (allow, deny), `reason` (the reason code's name) |
/// | `piam_requests_total` | counter | `interface`, `op` (check, check_batch, explain, list_resources, …) |
/// | `piam_request_duration_seconds` | histogram, 1 µs to 1 s buckets | `interface` |
/// | `piam_http_responses_total` | counter | `endpoint`, `code` |
/// | `piam_graph_reloads_total` | counter | — (graphs published, the first load included) |
/// | `piam_graph_revision` | gauge | — |
/// | `piam_graph_load_seconds` | gauge | — (the last load's duration) |
/// | `piam_degraded` | gauge | — (1 while serving the last good graph after a failed reload) |
/// | `piam_connections` | gauge | `interface` |
/// | `piam_http_connections_accepted_total` | counter | — (HTTP connections admitted since start) |
public final class ServerMetrics: Sendable {
    /// The registry the metrics live in (one per daemon; no global bootstrap).
    public let registry: PrometheusCollectorRegistry
    /// Indexed by the reason's raw value (0 is the only allow).
    private let decisions: [Counter]
    /// Indexed by interface, then opcode raw value.
    private let requests: [[Counter?]]
    /// The HTTP fast path's answers (``HTTPFastPath/Answer``), counted in bulk.
    private let fastPathResponses: [Counter]
    /// Per interface (not a swift-prometheus histogram: those take a lock per observation,
    /// which two event loops answering a million queries a second contend on).
    private let latency: [LatencyHistogram]
    /// What the query path adds: decisions, requests, latency and fast-path answers, per thread.
    private let counts = ShardedCounts(count: Slot.total)
    /// The sums the registry's counters were last brought up to (rendering only).
    private let synced = Mutex<[Int]>([Int](repeating: 0, count: Slot.total))

    /// Where each figure lives in ``counts``.
    enum Slot {
        static let decisions = 0  // 16 reasons
        static func requests(_ i: Interface) -> Int { 16 + i.rawValue * 16 }  // 16 opcodes each
        /// Per interface: the buckets (one above the last bound too), then the sum, then the count.
        static let latencyWidth = ServerMetrics.latencyBuckets.count + 3
        static func latency(_ i: Interface) -> Int { 48 + i.rawValue * latencyWidth }
        static let fastPath = 48 + 2 * latencyWidth
        static let total = fastPath + HTTPFastPath.Answer.allCases.count
    }
    private let reloads: Counter
    private let reloadsSeen = Mutex<Int>(0)
    private let revision: Gauge
    private let loadSeconds: Gauge
    private let degraded: Gauge
    private let lag: Gauge
    private let lastVerified: Gauge
    private let replicaAge: Gauge
    private let connections: [Gauge]
    /// Open HTTP connections (the socket's are ``GraphState/connections``).
    public let httpConnections = Atomic<Int>(0)
    /// HTTP connections accepted since start (`piam_http_connections_accepted_total`): a proxy
    /// that keeps its connections alive moves it by its pool size, not by its request count.
    private let httpAcceptedCounter: Counter

    /// Where a query came in.
    public enum Interface: Int, Sendable, CaseIterable {
        case socket = 0, http = 1
        var label: String { self == .socket ? "socket" : "http" }
    }

    /// The latency buckets: microseconds first (a decision takes a few), up to a second.
    public static let latencyBuckets: [Duration] = [
        .microseconds(1), .microseconds(2), .microseconds(5), .microseconds(10), .microseconds(25), .microseconds(50),
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(100), .milliseconds(250), .seconds(1),
    ]

    public init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "piam", metricName: metric, unitName: unit, helpText: help)
        }
        let decision = name("decisions", "total", "Access decisions by result and reason (every check, batch item, explain, can_assign, AuthZEN evaluation and forward-auth request).")
        decisions = Reason.allCases.map { r in
            registry.makeCounter(descriptor: decision, labels: [("result", r == .allowed ? "allow" : "deny"), ("reason", r.name)])
        }
        let request = name("requests", "total", "Queries answered, by interface and operation.")
        requests = Interface.allCases.map { i in
            (0...255).map { byte in
                Opcode(rawValue: UInt8(byte)).map { op in
                    registry.makeCounter(descriptor: request, labels: [("interface", i.label), ("op", op.description.lowercased())])
                }
            }
        }
        latency = Interface.allCases.map { i in LatencyHistogram(labels: #"interface="\#(i.label)""#, buckets: Self.latencyBuckets) }
        fastPathResponses = HTTPFastPath.Answer.allCases.map {
            registry.makeCounter(descriptor: Self.httpResponses, labels: [("endpoint", $0.endpoint), ("code", String($0.code))])
        }
        reloads = registry.makeCounter(descriptor: name("graph_reloads", "total", "Graphs loaded and published since start, the first load included."))
        revision = registry.makeGauge(descriptor: name("graph_revision", "", "The revision of the graph queries are answered from."))
        loadSeconds = registry.makeGauge(descriptor: name("graph_load", "seconds", "How long the last graph load took."))
        degraded = registry.makeGauge(descriptor: name("degraded", "", "1 while piamd serves its last good graph after a failed reload, or cannot prove that graph is current, else 0."))
        lag = registry.makeGauge(descriptor: name("graph_lag", "revisions", "The database's revision at the last verification minus the served revision."))
        replicaAge = registry.makeGauge(descriptor: name("replica_age", "seconds", "Replica mode: now minus the primary's last heartbeat the replica holds (0 on a local database)."))
        lastVerified = registry.makeGauge(descriptor: name("graph_last_verified", "timestamp_seconds", "When piamd last proved its graph against the database (a freshly opened connection read its revision), Unix time."))
        httpAcceptedCounter = registry.makeCounter(descriptor: name("http_connections_accepted", "total",
            "Connections the HTTP face accepted since start (a proxy's keepalive pool reuses them)."))
        let conn = name("connections", "", "Open client connections, by interface.")
        connections = Interface.allCases.map { registry.makeGauge(descriptor: conn, labels: [("interface", $0.label)]) }
    }

    /// Adds what one connection answered since its last flush (see ``QueryTally``) and
    /// zeroes the tally: a few relaxed atomic adds into this thread's shard per flush, no lock.
    func flush(_ interface: Interface, _ t: inout QueryTally) {
        guard t.answered > 0 else { return }
        let shard = ShardedCounts.currentShard
        let requestBase = Slot.requests(interface)
        for (op, n) in t.requests.enumerated() where n != 0 { counts.add(requestBase + op, n, shard: shard) }
        for (r, n) in t.decisions.enumerated() where n != 0 { counts.add(Slot.decisions + r, n, shard: shard) }
        let l = Slot.latency(interface)
        for (b, n) in t.latency.enumerated() where n != 0 { counts.add(l + b, n, shard: shard) }
        counts.add(l + t.latency.count, Int(t.latencySumNanoseconds), shard: shard)
        counts.add(l + t.latency.count + 1, t.answered, shard: shard)
        t.reset()
    }

    /// Adds the HTTP fast path's answers of a read burst (indexed by ``HTTPFastPath/Answer``)
    /// and zeroes them.
    func flushFastPathAnswers(_ answers: inout [Int]) {
        let shard = ShardedCounts.currentShard
        for i in answers.indices where answers[i] != 0 {
            counts.add(Slot.fastPath + i, answers[i], shard: shard)
            answers[i] = 0
        }
    }

    /// Brings the registry's counters up to the shards' sums (rendering only).
    private func syncCounters() {
        var targets: [(slot: Int, counter: Counter)] = decisions.enumerated().map { (Slot.decisions + $0.offset, $0.element) }
        for i in Interface.allCases {
            for (op, c) in requests[i.rawValue].prefix(16).enumerated() { if let c { targets.append((Slot.requests(i) + op, c)) } }
        }
        for (a, c) in fastPathResponses.enumerated() { targets.append((Slot.fastPath + a, c)) }
        synced.withLock { seen in
            for (slot, counter) in targets {
                let total = counts.total(slot)
                if total > seen[slot] { counter.increment(by: Int64(total - seen[slot])) }
                seen[slot] = max(seen[slot], total)
            }
        }
    }

    /// Counts one connection the HTTP face admitted (at accept, never on the query path).
    func acceptedHTTPConnection() { httpAcceptedCounter.increment() }

    /// Counts one HTTP response.
    func recordHTTP(endpoint: String, code: Int) {
        registry.makeCounter(descriptor: Self.httpResponses, labels: [("endpoint", endpoint), ("code", String(code))]).increment()
    }

    /// `piam_http_responses_total`: the fast path's answers (counted in bulk) and the general
    /// path's (one by one) are the same counters.
    static var httpResponses: MetricNameDescriptor {
        MetricNameDescriptor(namespace: "piam", metricName: "http_responses", unitName: "total",
                             helpText: "HTTP responses by endpoint and status code.")
    }

    /// The Prometheus text exposition, with the state gauges brought up to date first.
    public func render(state: GraphState) -> [UInt8] {
        let published = state.published.load(ordering: .relaxed)
        let delta = reloadsSeen.withLock { seen in
            defer { seen = max(seen, published) }
            return published - seen
        }
        if delta > 0 { reloads.increment(by: Int64(delta)) }

        if let s = state.snapshot {
            revision.set(Double(s.revision))
            loadSeconds.set(Double(s.loadSeconds))
        }
        degraded.set(state.degraded == nil ? 0.0 : 1.0)
        let f = state.freshness
        lag.set(Double(max(0, f.databaseRevision - (state.snapshot?.revision ?? 0))))
        if let wall = f.verifiedWall { lastVerified.set(wall.timeIntervalSince1970) }
        if state.replicaMaxAge != nil, let age = f.replicaAge() { replicaAge.set(Double(GraphState.ms(age)) / 1000) }
        connections[Interface.socket.rawValue].set(Double(state.connections.load(ordering: .relaxed)))
        connections[Interface.http.rawValue].set(Double(httpConnections.load(ordering: .relaxed)))
        syncCounters()
        var out: [UInt8] = []
        out.reserveCapacity(16_384)
        registry.emit(into: &out)
        for (i, h) in latency.enumerated() {
            let base = Slot.latency(Interface(rawValue: i)!)
            h.set(counts: (0..<(Self.latencyBuckets.count + 1)).map { counts.total(base + $0) },
                  sumNanoseconds: Int64(counts.total(base + Self.latencyBuckets.count + 1)),
                  count: counts.total(base + Self.latencyBuckets.count + 2))
        }
        LatencyHistogram.emit(latency, name: "piam_request_duration_seconds",
                              help: "Time to answer a query from the graph snapshot, by interface.", into: &out)
        return out
    }
}

/// What one connection answered since its last flush into ``ServerMetrics``: plain integers,
/// counted on the connection's event loop without atomics, flushed once per read burst (before
/// the answers are written, so a client that has its answers sees them counted).
public struct QueryTally: Sendable {
    /// Queries answered, by opcode byte.
    var requests = [Int](repeating: 0, count: 16)
    /// Decisions, by reason code.
    var decisions = [Int](repeating: 0, count: 16)
    /// Latencies: how many fell in each bucket of ``ServerMetrics/latencyBuckets`` (the first
    /// bound at or above them; the last slot: above every bound), and their sum.
    var latency = [Int](repeating: 0, count: ServerMetrics.latencyBuckets.count + 1)
    var latencySumNanoseconds: Int64 = 0
    var answered = 0

    public init() {}

    static let boundsNanoseconds: [Int64] = ServerMetrics.latencyBuckets.map {
        $0.components.seconds * 1_000_000_000 + $0.components.attoseconds / 1_000_000_000
    }

    /// Counts one answer of `opcode` that took `nanoseconds` (its decisions are counted by the caller).
    @inline(__always)
    mutating func record(opcode: UInt8, nanoseconds: Int64) {
        requests[Int(opcode & 15)] &+= 1
        var b = 0
        let bounds = Self.boundsNanoseconds
        while b < bounds.count && bounds[b] < nanoseconds { b += 1 }
        latency[b] &+= 1
        latencySumNanoseconds &+= nanoseconds
        answered &+= 1
    }

    @inline(__always)
    mutating func record(_ d: Decision) { decisions[Int(d.reason.rawValue) & 15] &+= 1 }

    mutating func reset() {
        for i in requests.indices { requests[i] = 0 }
        for i in decisions.indices { decisions[i] = 0 }
        for i in latency.indices { latency[i] = 0 }
        latencySumNanoseconds = 0
        answered = 0
    }
}

/// A Prometheus histogram of query latency, merged from ``QueryTally``s and rendered in the text
/// exposition format beside the registry's metrics (the same format swift-prometheus writes).
final class LatencyHistogram: Sendable {
    private struct State {
        var counts: [Int]
        var sumNanoseconds: Int64 = 0
        var count = 0
    }
    private let state: Mutex<State>
    private let labels: String
    private let buckets: [Duration]

    init(labels: String, buckets: [Duration]) {
        self.labels = labels
        self.buckets = buckets
        state = Mutex(State(counts: [Int](repeating: 0, count: buckets.count + 1)))
    }

    /// The figures to render (the shards' sums, taken when the text is rendered).
    func set(counts: [Int], sumNanoseconds: Int64, count: Int) {
        state.withLock { s in
            s.counts = counts
            s.sumNanoseconds = sumNanoseconds
            s.count = count
        }
    }

    /// `# HELP` and `# TYPE` once, then each histogram's cumulative buckets, `+Inf`, sum and count.
    static func emit(_ hs: [LatencyHistogram], name: String, help: String, into out: inout [UInt8]) {
        func line(_ s: String) { out.append(contentsOf: s.utf8); out.append(UInt8(ascii: "\n")) }
        line("# HELP \(name) \(help)")
        line("# TYPE \(name) histogram")
        for h in hs {
            let s = h.state.withLock { $0 }
            var cumulative = 0
            for (i, bound) in h.buckets.enumerated() {
                cumulative += s.counts[i]
                line("\(name)_bucket{\(h.labels),le=\"\(bound.bucketRepresentation)\"} \(cumulative)")
            }
            line("\(name)_bucket{\(h.labels),le=\"+Inf\"} \(s.count)")
            line("\(name)_sum{\(h.labels)} \(Duration.nanoseconds(s.sumNanoseconds).bucketRepresentation)")
            line("\(name)_count{\(h.labels)} \(s.count)")
        }
    }
}

/// Counters added to by several threads at once: each thread adds into a shard of its own
/// (threads take shards in turn on first use), so two event loops counting "the same" figure
/// neither share a lock nor bounce a cache line; a figure is read as the sum of its shards.
///
/// `@unchecked Sendable`: the storage is allocated once, only ever touched through atomics, and
/// freed when the last reference goes.
final class ShardedCounts: @unchecked Sendable {
    /// Shards: more than the daemon's threads, so each event loop has its own.
    static let shards = 16
    let count: Int
    /// Slots per shard, rounded up to whole 64-byte cache lines.
    private let stride: Int
    private let storage: UnsafeMutablePointer<Synchronization.Atomic<Int>>

    init(count: Int) {
        self.count = count
        stride = (count + 7) & ~7
        let n = stride * Self.shards
        storage = UnsafeMutableRawPointer.allocate(byteCount: n * MemoryLayout<Synchronization.Atomic<Int>>.stride, alignment: 64)
            .bindMemory(to: Synchronization.Atomic<Int>.self, capacity: n)
        for i in 0..<n { (storage + i).initialize(to: Synchronization.Atomic(0)) }
    }

    deinit {
        storage.deinitialize(count: stride * Self.shards)
        UnsafeMutableRawPointer(storage).deallocate()
    }

    @inline(__always)
    func add(_ slot: Int, _ amount: Int, shard: Int) {
        storage[shard * stride + slot].wrappingAdd(amount, ordering: .relaxed)
    }

    /// The figure in `slot`: the sum of every shard's.
    func total(_ slot: Int) -> Int {
        var sum = 0
        for s in 0..<Self.shards { sum &+= storage[s * stride + slot].load(ordering: .relaxed) }
        return sum
    }

    /// The calling thread's shard.
    static var currentShard: Int {
        if let p = pthread_getspecific(threadKey) { return Int(bitPattern: p) &- 1 }
        let shard = next.wrappingAdd(1, ordering: .relaxed).oldValue % shards
        pthread_setspecific(threadKey, UnsafeRawPointer(bitPattern: shard + 1))
        return shard
    }

    private static let next = Synchronization.Atomic<Int>(0)
    private static let threadKey: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()
}

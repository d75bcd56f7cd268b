import NIOConcurrencyHelpers
import PIAMEngine
import PIAMWire
import Prometheus
import Synchronization

/// The daemon's Prometheus metrics, served as text on the HTTP face's `GET /metrics`.
///
/// Decisions and query latency are recorded by ``QueryEvaluator`` for both faces — the
/// binary socket (`interface="socket"`) and HTTP (`interface="http"`) — so the numbers cover
/// all traffic. A socket connection tallies into a ``QueryTally`` and flushes it once per read
/// burst, before its answers are written; HTTP flushes per request. Gauges that mirror the daemon's state (revision, connections, health) and the
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
    /// Per interface (not a swift-prometheus histogram: those take a lock per observation,
    /// which two event loops answering a million queries a second contend on).
    private let latency: [LatencyHistogram]
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
    /// zeroes the tally: a few atomic adds and one short lock per flush, not per query.
    func flush(_ interface: Interface, _ t: inout QueryTally) {
        guard t.answered > 0 else { return }
        let byOpcode = requests[interface.rawValue]
        for (op, n) in t.requests.enumerated() where n != 0 { byOpcode[op]?.increment(by: Int64(n)) }
        for (r, n) in t.decisions.enumerated() where n != 0 { decisions[r].increment(by: Int64(n)) }
        latency[interface.rawValue].merge(t)
        t.reset()
    }

    /// Counts one connection the HTTP face admitted (at accept, never on the query path).
    func acceptedHTTPConnection() { httpAcceptedCounter.increment() }

    /// The counter of HTTP responses for one endpoint and status code, made once by whoever
    /// counts them in bulk (the HTTP fast path counts per read burst).
    func httpResponseCounter(endpoint: String, code: Int) -> Counter {
        let descriptor = MetricNameDescriptor(namespace: "piam", metricName: "http_responses", unitName: "total",
                                              helpText: "HTTP responses by endpoint and status code.")
        return registry.makeCounter(descriptor: descriptor, labels: [("endpoint", endpoint), ("code", String(code))])
    }

    /// Counts one HTTP response.
    func recordHTTP(endpoint: String, code: Int) {
        let descriptor = MetricNameDescriptor(namespace: "piam", metricName: "http_responses", unitName: "total",
                                              helpText: "HTTP responses by endpoint and status code.")
        registry.makeCounter(descriptor: descriptor, labels: [("endpoint", endpoint), ("code", String(code))]).increment()
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
        var out: [UInt8] = []
        out.reserveCapacity(16_384)
        registry.emit(into: &out)
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

    func merge(_ t: QueryTally) {
        state.withLock { s in
            for i in s.counts.indices { s.counts[i] &+= t.latency[i] }
            s.sumNanoseconds &+= t.latencySumNanoseconds
            s.count &+= t.answered
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

import NIOConcurrencyHelpers
import PIAMEngine
import PIAMWire
import Prometheus
import Synchronization

/// The daemon's Prometheus metrics, served as text on the HTTP face's `GET /metrics`.
///
/// Decisions and query latency are recorded by ``QueryEvaluator`` for both faces — the
/// binary socket (`interface="socket"`) and HTTP (`interface="http"`) — so the numbers cover
/// all traffic. Gauges that mirror the daemon's state (revision, connections, health) and the
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
public final class ServerMetrics: Sendable {
    /// The registry the metrics live in (one per daemon; no global bootstrap).
    public let registry: PrometheusCollectorRegistry
    /// Indexed by the reason's raw value (0 is the only allow).
    private let decisions: [Counter]
    /// Indexed by interface, then opcode raw value.
    private let requests: [[Counter?]]
    private let latency: [DurationHistogram]
    private let reloads: Counter
    private let reloadsSeen = Mutex<Int>(0)
    private let revision: Gauge
    private let loadSeconds: Gauge
    private let degraded: Gauge
    private let connections: [Gauge]
    /// Open HTTP connections (the socket's are ``GraphState/connections``).
    public let httpConnections = Atomic<Int>(0)

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
        let duration = name("request_duration", "seconds", "Time to answer a query from the graph snapshot, by interface.")
        latency = Interface.allCases.map { i in
            registry.makeDurationHistogram(descriptor: duration, labels: [("interface", i.label)], buckets: Self.latencyBuckets)
        }
        reloads = registry.makeCounter(descriptor: name("graph_reloads", "total", "Graphs loaded and published since start, the first load included."))
        revision = registry.makeGauge(descriptor: name("graph_revision", "", "The revision of the graph queries are answered from."))
        loadSeconds = registry.makeGauge(descriptor: name("graph_load", "seconds", "How long the last graph load took."))
        degraded = registry.makeGauge(descriptor: name("degraded", "", "1 while piamd serves its last good graph after a failed reload, else 0."))
        let conn = name("connections", "", "Open client connections, by interface.")
        connections = Interface.allCases.map { registry.makeGauge(descriptor: conn, labels: [("interface", $0.label)]) }
    }

    /// Records one answered query: its operation, its latency, and its decisions.
    @inline(__always)
    func record(_ interface: Interface, opcode: Opcode, nanoseconds: Int64, response: Response) {
        requests[interface.rawValue][Int(opcode.rawValue)]?.increment()
        latency[interface.rawValue].record(.nanoseconds(nanoseconds))
        switch response.body {
        case .decision(let d), .explanation(let d, _): decisions[Int(d.reason.rawValue)].increment()
        case .decisions(let ds): for d in ds { decisions[Int(d.reason.rawValue)].increment() }
        default: break
        }
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
        connections[Interface.socket.rawValue].set(Double(state.connections.load(ordering: .relaxed)))
        connections[Interface.http.rawValue].set(Double(httpConnections.load(ordering: .relaxed)))
        var out: [UInt8] = []
        out.reserveCapacity(16_384)
        registry.emit(into: &out)
        return out
    }
}

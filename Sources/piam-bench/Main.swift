import ArgumentParser
import Foundation
import PIAMEngine
import PIAMStore

/// `piam-bench`: PIAM's speed through its socket, measured against the transport's limit (an
/// echo server with the same framing on the same kind of socket) and a peer (Redis `GET`), all
/// in the same run.
@main
struct PiamBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "piam-bench",
        abstract: "Load generator for piamd, with an echo server and Redis as baselines in the same run.",
        discussion: """
            `piam-bench compare` starts piamd on --db, the echo server and redis-server, drives \
            each with the same generator at the same connection counts and depths, and prints \
            PIAM's figures, the baselines', and their ratios. `piam-bench run` drives one server \
            that is already running. The whole report, with the in-process figures and the \
            1M-user graph, is `Benchmarks/run.sh`.

            Latency is per request, from the write that sent it to the read that completed it \
            (HdrHistogram, 3 significant digits). Each connection is one thread with a blocking \
            socket that keeps --depth requests in flight and writes each refill with one write().
            """,
        subcommands: [Compare.self, Run.self, AB.self, Echo.self, Codec.self],
        defaultSubcommand: Compare.self)
}

/// The query mix options shared by `run` and `compare`.
struct MixOptions: ParsableArguments {
    @Option(help: "The graph piamd serves; checks are drawn from it.") var db: String
    @Option(help: "The share of checks that are allowed (0…1).") var allowRatio: Double = 0.5
    @Option(help: "Distinct checks in the mix.") var mix: Int = 4096
    @Option(help: "Seed of the draw.") var seed: UInt64 = 7
    @Option(help: "Seconds of warm-up before timing, per measurement.") var warmup: Double = 1

    func draw() throws -> (QueryMix, AccessGraph) {
        let g = try Store(path: db, readOnly: true).loadGraph().graph
        let now = Timestamp(Date().timeIntervalSince1970 * 1000)
        let m = QueryMix.draw(from: g, count: mix, allowRatio: allowRatio, seed: seed, now: now)
        guard !m.checks.isEmpty else { throw ValidationError("the graph in \(db) has no users to draw checks from") }
        return (m, g)
    }
}

enum Operation: String, ExpressibleByArgument, CaseIterable {
    case check, batch, ping
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Drive one running server (piamd or `piam-bench echo`) and print throughput and latency.",
        discussion: """
            Example:
              piam-bench run --socket /run/piam/piamd.sock --db /var/lib/piam/piam.db --connections 8 --depth 32 --seconds 10
            """)

    @Option(help: "The server's socket.") var socket: String
    @OptionGroup var mix: MixOptions
    @Option(help: "What to send: check, batch (CHECK_BATCH of --batch), ping.") var op: Operation = .check
    @Option(help: "Connections (one thread each).") var connections: Int = 1
    @Option(help: "Requests in flight per connection.") var depth: Int = 1
    @Option(help: "Checks per CHECK_BATCH (with --op batch).") var batch: Int = 128
    @Option(help: "Seconds to run after the warm-up.") var seconds: Double = 5
    @Option(help: "Stop each connection after this many timed responses (0: run --seconds).") var requests: Int = 0
    @Flag(help: "Print one JSON object instead of text.") var json = false
    @Flag(help: "No progress lines on stderr.") var quiet = false

    func validate() throws {
        guard connections > 0, depth > 0, batch > 0, seconds > 0 else { throw ValidationError("counts and --seconds must be positive") }
    }

    func run() throws {
        let (m, _) = try mix.draw()
        let pool: FramePool = switch op {
        case .check: m.checkFrames()
        case .batch: m.batchFrames(size: batch, frames: max(1, mix.mix / batch))
        case .ping: QueryMix.pingFrames()
        }
        let plan = LoadPlan(connections: connections, depth: depth, seconds: seconds, requestsPerConnection: requests,
                            warmupSeconds: mix.warmup, decisionsPerRequest: op == .batch ? batch : 1,
                            progress: !quiet, label: "\(op) \(connections)×\(depth)")
        let r = try LoadGenerator.run(socket: socket, pool: pool, plan: plan)
        if json {
            var o = r.json
            o["op"] = op.rawValue
            o["mix_allowed_fraction"] = m.allowedFraction
            print(Report.json(o))
        } else {
            print(Report.line(r))
        }
    }
}

struct Echo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo",
        abstract: "Serve the echo baseline on a Unix socket (same framing as piamd; answers each frame with itself).")

    @Option(help: "The socket to bind.") var socket: String
    @Option(help: "Event-loop threads (0: one per core, as piamd).") var threads: Int = 0
    @Option(help: "Largest frame accepted.") var maxFrameBytes: Int = 1_048_576

    func run() async throws {
        try await EchoServer.run(path: socket, threads: threads, maxFrameBytes: maxFrameBytes)
    }
}

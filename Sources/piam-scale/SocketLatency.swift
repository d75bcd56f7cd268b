import ArgumentParser
import Foundation
import PIAMClient
import PIAMDemo
import PIAMEngine
import PIAMStore
import PIAMWire

/// `piam-scale socket`: quick round-trip figures of a running piamd — one client, one request at
/// a time (CHECK against PING, the same framing with no engine work, as the baseline), and
/// throughput of pipelining clients. The formal benchmark is piam-bench; this is the daemon
/// issue's sanity figure.
struct SocketLatency: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "socket",
        abstract: "Round-trip latency and pipelined throughput of CHECK against a running piamd.",
        discussion: """
            Example:
              .build/release/piamd --db /tmp/demo.db --socket /tmp/piamd.sock &
              .build/release/piam-scale socket --db /tmp/demo.db --socket /tmp/piamd.sock
            """)

    @Option(help: "The daemon's database (read here only to pick subjects and resources).") var db: String
    @Option(help: "The daemon's socket.") var socket: String
    @Option(help: "Sequential round trips per measurement.") var requests: Int = 20_000
    @Option(help: "Pipelining clients for the throughput run.") var clients: Int = 8
    @Option(help: "Requests in flight per client.") var depth: Int = 32
    @Option(help: "Seconds of the throughput run.") var seconds: Double = 5
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func run() async throws {
        let g = try Store(path: db, readOnly: true).loadGraph().graph
        var rng = SplitMix64(seed: 11)
        let users = g.allUserIDs, res = g.allResources
        let checks = (0..<4096).map { _ -> CheckRequest in
            let r = res.randomElement(using: &rng)!
            return CheckRequest(subject: users.randomElement(using: &rng)!, action: ["read", "submit", "view"].randomElement(using: &rng)!,
                                resource: ResourceRef(type: r.type, id: r.id))
        }
        let client = try await PIAMClient.connect(socketPath: socket)
        func sequential(_ body: (Int) -> Request.Body) async throws -> [Double] {
            var out: [Double] = []
            out.reserveCapacity(requests)
            for i in 0..<(requests + 1000) {
                let t0 = ContinuousClock.now
                _ = try await client.send(Request(body: body(i)))
                if i >= 1000 { out.append(Double((ContinuousClock.now - t0) / .nanoseconds(1))) }
            }
            return out.sorted()
        }
        FileHandle.standardError.write(Data("one client, sequential: PING baseline…\n".utf8))
        let ping = try await sequential { _ in .ping }
        FileHandle.standardError.write(Data("one client, sequential: CHECK…\n".utf8))
        let check = try await sequential { .check(checks[$0 & 4095]) }
        await client.close()

        FileHandle.standardError.write(Data("\(clients) clients × depth \(depth), \(seconds) s…\n".utf8))
        func throughput(_ make: @escaping @Sendable (Int) -> Request.Body) async throws -> Double {
            let start = ContinuousClock.now
            let deadline = start + .milliseconds(Int64(seconds * 1000))
            let total = try await withThrowingTaskGroup(of: Int.self) { group in
                for c in 0..<clients {
                    group.addTask {
                        let cl = try await PIAMClient.connect(socketPath: socket)
                        var n = 0, i = c * 1000
                        while ContinuousClock.now < deadline {
                            var batch: [Request] = []
                            for _ in 0..<depth { batch.append(Request(body: make(i))); i += 1 }
                            n += try await cl.send(batch).count
                        }
                        await cl.close()
                        return n
                    }
                }
                return try await group.reduce(0, +)
            }
            return Double(total) / ((ContinuousClock.now - start) / .seconds(1))
        }
        let pingTput = try await throughput { _ in .ping }
        let checkTput = try await throughput { .check(checks[$0 & 4095]) }

        func pct(_ a: [Double], _ p: Double) -> Double { a[min(a.count - 1, Int(Double(a.count) * p))] / 1000 }
        let result: [String: Double] = [
            "ping_p50_us": pct(ping, 0.5), "ping_p99_us": pct(ping, 0.99),
            "check_p50_us": pct(check, 0.5), "check_p99_us": pct(check, 0.99),
            "check_p50_ratio": pct(check, 0.5) / pct(ping, 0.5),
            "ping_per_s": pingTput, "check_per_s": checkTput, "check_tput_ratio": checkTput / pingTput,
        ]
        if json {
            let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys, .prettyPrinted])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print(String(format: "one client, sequential (%d requests each)", requests))
        print(String(format: "  PING   p50 %.1f µs  p99 %.1f µs   (baseline: framing and socket, no engine)", pct(ping, 0.5), pct(ping, 0.99)))
        print(String(format: "  CHECK  p50 %.1f µs  p99 %.1f µs   = %.2f× PING at p50", pct(check, 0.5), pct(check, 0.99), result["check_p50_ratio"]!))
        print(String(format: "%d clients × %d in flight, %.0f s each", clients, depth, seconds))
        print(String(format: "  PING   %.0f /s", pingTput))
        print(String(format: "  CHECK  %.0f /s   = %.2f× PING", checkTput, result["check_tput_ratio"]!))
    }
}

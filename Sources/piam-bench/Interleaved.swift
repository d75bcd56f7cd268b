import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `piam-bench ab`: two running servers driven in alternating slices by the same generator, so
/// that both see the same machine: on shared cores, runs of the same server seconds apart differ
/// by more than a few percent, and a comparison of two configurations needs them interleaved
/// finely. Each server has its own connections; in a slice only the active side's send (the
/// other side's drain what they had in flight and wait).
struct AB: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ab",
        abstract: "Drive two running servers in alternating slices and print each slice's throughput.",
        discussion: """
            Each pair of slices runs A then B, or B then A (alternating), for --slice-seconds each; \
            the first --warmup seconds of pairs are not reported. With --pid-a and --pid-b, each \
            server's CPU time (utime + stime from /proc, all threads) over the reported pairs is \
            printed too: work a server does outside its own slices (a background flush) counts \
            there, not in the slices' throughput.

            Example (usage recording off against on, same graph):
              piam-bench ab --socket-a off.sock --socket-b on.sock --db piam.db --connections 8 --depth 32 --seconds 60
            """)

    @Option(help: "Server A's socket.") var socketA: String
    @Option(help: "Server B's socket.") var socketB: String
    @OptionGroup var mix: MixOptions
    @Option(help: "Connections per server (one thread each).") var connections: Int = 8
    @Option(help: "Requests in flight per connection.") var depth: Int = 32
    @Option(help: "Length of one slice.") var sliceSeconds: Double = 0.25
    @Option(help: "Seconds of reported pairs of slices.") var seconds: Double = 30
    @Option(help: "Server A's process, for its CPU time.") var pidA: Int32?
    @Option(help: "Server B's process, for its CPU time.") var pidB: Int32?
    @Flag(help: "No progress lines on stderr.") var quiet = false

    func validate() throws {
        guard connections > 0, depth > 0, sliceSeconds > 0, seconds > 0, mix.warmup >= 0 else {
            throw ValidationError("counts and times must be positive")
        }
    }

    func run() throws {
        let (m, _) = try mix.draw()
        let pool = m.checkFrames()
        let plan = LoadPlan(connections: connections, depth: depth, seconds: .infinity, requestsPerConnection: 0,
                            warmupSeconds: 0, decisionsPerRequest: 1, progress: false, label: "ab")
        let gate = Gate(sides: 2)
        let sides = [LoadShared(), LoadShared()]
        let done = DispatchSemaphore(value: 0)
        for (side, path) in [socketA, socketB].enumerated() {
            LoadGenerator.startConnections(socket: path, pool: pool, plan: plan, warmupEnd: 0, deadline: .max,
                                    shared: sides[side], done: done, gate: (gate, side))
        }
        let slice = UInt64(sliceSeconds * 1e9)
        let warmupPairs = Int((mix.warmup / (2 * sliceSeconds)).rounded(.up))
        let pairs = warmupPairs + max(1, Int((seconds / (2 * sliceSeconds)).rounded()))
        var rates: [[Double]] = []
        var cpu0: [Int64?] = []
        var failed: BenchError?
        var ended = 0  // connection threads seen ending (each signals `done` once)
        for pair in 0..<pairs {
            if pair == warmupPairs { cpu0 = [pidA, pidB].map { $0.flatMap(Self.cpuTicks) } }
            var rate = [0.0, 0.0]
            for side in pair % 2 == 0 ? [0, 1] : [1, 0] {
                gate.open(side, connections: connections)
                let n0 = sides[side].responses.load(ordering: .relaxed), t0 = Clock.nanos()
                // The slice's end, or a connection ending first (an error: none ends on its own).
                if done.wait(timeout: .now() + .nanoseconds(Int(slice))) == .success {
                    ended += 1
                    failed = Self.failure(sides) ?? BenchError("a connection ended early")
                }
                let n1 = sides[side].responses.load(ordering: .relaxed), t1 = Clock.nanos()
                rate[side] = Double(n1 - n0) / (Double(t1 - t0) / 1e9)
                if failed != nil { break }
            }
            if failed != nil { break }
            if pair >= warmupPairs { rates.append(rate) }
            if !quiet && (pair + 1) % max(1, Int(1 / (2 * sliceSeconds))) == 0 {
                FileHandle.standardError.write(Data(String(format: "piam-bench: pair %d/%d: A %.0f /s, B %.0f /s\n",
                                                           pair + 1, pairs, rate[0], rate[1]).utf8))
            }
        }
        let cpu1 = [pidA, pidB].map { $0.flatMap(Self.cpuTicks) }
        for s in sides { s.stop.store(true, ordering: .relaxed) }
        for side in 0..<2 { for _ in 0..<connections { gate.wake[side].signal() } }
        for _ in ended..<(2 * connections) { done.wait() }
        if let e = failed ?? Self.failure(sides) { throw e }
        let decisions = (0..<2).map { side in rates.reduce(0.0) { $0 + $1[side] * sliceSeconds } }
        var out: [String: Any] = [
            "slice_seconds": sliceSeconds, "connections": connections, "depth": depth,
            "pairs": rates.map { ["a": $0[0], "b": $0[1]] },
            "decisions_a": decisions[0], "decisions_b": decisions[1], "ticks_per_second": sysconf(Int32(_SC_CLK_TCK)),
        ]
        for (side, name) in ["a", "b"].enumerated() {
            if let c0 = cpu0.count == 2 ? cpu0[side] : nil, let c1 = cpu1[side] { out["cpu_ticks_\(name)"] = c1 - c0 }
        }
        print(Report.json(out))
    }

    /// utime + stime of process `pid`, in clock ticks (fields 14 and 15 of /proc/PID/stat).
    static func cpuTicks(_ pid: Int32) -> Int64? {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = s.lastIndex(of: ")") else { return nil }
        // Fields after the command's closing parenthesis start at field 3.
        let f = s[s.index(after: close)...].split(separator: " ")
        guard f.count > 12, let u = Int64(f[11]), let k = Int64(f[12]) else { return nil }
        return u + k
    }

    static func failure(_ sides: [LoadShared]) -> BenchError? {
        for s in sides {
            for r in s.results.withLock({ $0 }) { if case .failure(let e) = r { return e } }
        }
        return nil
    }
}

import Foundation

/// The peer yardstick: Debian's `redis-server` on a Unix socket, driven by its own
/// `redis-benchmark -t get` at the same connection count and pipelining depth as a PIAM run.
///
/// Redis answers from one thread, and `redis-benchmark` drives all its connections from one
/// event loop; both are the stock tools an operator would reach for.
final class RedisServer {
    let socket: String
    private let process = Process()
    private let dir: String

    /// Starts `redis-server` (no persistence, no TCP port) and waits until it answers PING.
    init(dir: String) throws {
        guard let server = Executables.find("redis-server"), Executables.find("redis-benchmark") != nil else {
            throw BenchError("redis-server and redis-benchmark are not installed (apt-get install redis-server)")
        }
        self.dir = dir
        socket = dir + "/redis.sock"
        process.executableURL = URL(fileURLWithPath: server)
        process.arguments = ["--port", "0", "--unixsocket", socket, "--unixsocketperm", "700", "--save", "",
                             "--appendonly", "no", "--dir", dir, "--logfile", dir + "/redis.log"]
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while (try? cli(["PING"])) != "PONG" {
            if Date() > deadline || !process.isRunning { throw BenchError("redis-server did not start (see \(dir)/redis.log)") }
            usleep(50_000)
        }
        // The key `redis-benchmark -t get` reads when no -r is given, so every GET is a hit.
        _ = try cli(["SET", "key:__rand_int__", "xxx"])
    }

    func cli(_ args: [String]) throws -> String {
        try Executables.output(Executables.find("redis-cli") ?? "/usr/bin/redis-cli", ["-s", socket] + args)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    struct Figures: Sendable {
        var requestsPerSecond: Double
        var p50us: Double
        var p99us: Double
        var hits: Int
        var misses: Int

        var json: [String: Any] {
            ["requests_per_second": requestsPerSecond, "p50_us": p50us, "p99_us": p99us, "keyspace_hits": hits, "keyspace_misses": misses]
        }
    }

    /// `redis-benchmark -s SOCKET -t get -c connections -P depth -n requests --csv`.
    func benchmarkGet(connections: Int, depth: Int, requests: Int) throws -> Figures {
        _ = try cli(["CONFIG", "RESETSTAT"])
        let out = try Executables.output(Executables.find("redis-benchmark")!, [
            "-s", socket, "-t", "get", "-c", String(connections), "-P", String(depth), "-n", String(requests), "--csv",
        ])
        // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
        guard let line = out.split(separator: "\n").first(where: { $0.hasPrefix("\"GET\"") }) else {
            throw BenchError("redis-benchmark printed no GET line:\n\(out)")
        }
        let f = line.split(separator: ",").map { Double($0.trimmingCharacters(in: CharacterSet(charactersIn: "\""))) ?? 0 }
        guard f.count >= 7 else { throw BenchError("unexpected redis-benchmark CSV: \(line)") }
        let stats = try cli(["INFO", "stats"])
        func stat(_ k: String) -> Int {
            stats.split(separator: "\n").first { $0.hasPrefix(k + ":") }
                .flatMap { Int($0.dropFirst(k.count + 1).trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
        }
        return Figures(requestsPerSecond: f[1], p50us: f[4] * 1000, p99us: f[6] * 1000,
                       hits: stat("keyspace_hits"), misses: stat("keyspace_misses"))
    }

    func stop() {
        if process.isRunning { _ = try? cli(["SHUTDOWN", "NOSAVE"]) }
        Executables.stop(process)
    }

    deinit { stop() }
}

/// Finding and running helper programs.
enum Executables {
    static func find(_ name: String) -> String? {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
        for d in dirs + ["/usr/bin", "/usr/sbin", "/usr/local/bin"] where FileManager.default.isExecutableFile(atPath: d + "/" + name) {
            return d + "/" + name
        }
        return nil
    }

    /// A program built next to this one (`.build/release/piamd`), else on PATH.
    static func sibling(_ name: String) -> String? {
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let p = me.deletingLastPathComponent().appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: p) { return p }
        return find(name)
    }

    /// SIGTERM, then SIGKILL if the process has not exited within 5 s.
    static func stop(_ process: Process) {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// Runs a program to completion and returns its standard output; throws on a non-zero exit.
    static func output(_ path: String, _ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw BenchError("\(path) \(args.joined(separator: " ")) exited \(p.terminationStatus)")
        }
        return String(decoding: data, as: UTF8.self)
    }
}

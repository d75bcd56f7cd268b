import Foundation
import PIAMDemo
import PIAMEngine
import PIAMStore
import Testing

/// A built executable next to the test bundle (`.build/<config>/NAME`).
private func built(_ name: String) -> String {
    let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [dir, dir.deletingLastPathComponent(), dir.deletingLastPathComponent().deletingLastPathComponent()] {
        let p = candidate.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    return dir.appendingPathComponent(name).path
}

/// A directory with the demo graph in it (`demo.db`), removed by the caller.
private func demoDirectory(_ name: String) throws -> (dir: String, db: String) {
    let dir = "/tmp/\(name)-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let db = dir + "/demo.db"
    _ = try Store.initialize(path: db).importDocument(DemoGenerator(now: Timestamp(Date().timeIntervalSince1970 * 1000)).document())
    return (dir, db)
}

/// Starts `piam-bench echo` on `socket` (one thread); the caller terminates it.
private func echoServer(socket: String) throws -> Process {
    let e = Process()
    e.executableURL = URL(fileURLWithPath: built("piam-bench"))
    e.arguments = ["echo", "--socket", socket, "--threads", "1"]
    try e.run()
    return e
}

/// Runs `piam-bench arguments…` to its end: its JSON output, having checked that it succeeded.
private func benchJSON(_ arguments: [String]) throws -> [String: Any] {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: built("piam-bench"))
    p.arguments = arguments
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    #expect(p.terminationStatus == 0, "piam-bench \(arguments.first ?? "") failed: \(errText)")
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any], "not JSON: \(String(decoding: data, as: UTF8.self))")
}

/// The load generator's smoke: a short `piam-bench compare` against the real piamd and the echo
/// server on the demo graph. It asserts that every figure is there and sane, never a timing.
@Suite struct PiamBenchTests {
    @Test func compareRunsAgainstRealPiamdAndEcho() throws {
        let (dir, db) = try demoDirectory("piam-bench-test")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let o = try benchJSON(["compare", "--db", db, "--seconds", "0.4", "--warmup", "0.1", "--mix", "256",
                               "--connections", "2", "--depth", "4", "--batch", "16", "--batch-connections", "1", "--batch-depth", "2",
                               "--no-redis", "--json", "--quiet", "--piamd", built("piamd")])

        let daemon = try #require(o["daemon"] as? [String: Any])
        #expect((daemon["seconds_to_ready"] as? Double ?? 0) > 0)
        #expect((daemon["peak_rss_mib"] as? Double ?? 0) > 0)
        let mixAllowed = try #require(o["mix_allowed_fraction"] as? Double)
        #expect(mixAllowed > 0.2 && mixAllowed < 0.8, "the mix asked for half allowed")

        let scenarios = try #require(o["scenarios"] as? [[String: Any]])
        #expect(scenarios.count == 3)
        for s in scenarios {
            for who in ["piamd", "echo"] {
                let r = try #require(s[who] as? [String: Any], "\(s["name"] ?? "?") has no \(who)")
                let requests = r["requests"] as? Int ?? 0
                #expect(requests > 0, "\(who): no timed request")
                #expect(r["errors"] as? Int == 0)
                let p50 = r["p50_us"] as? Double ?? 0, p99 = r["p99_us"] as? Double ?? 0, p999 = r["p99_9_us"] as? Double ?? 0
                #expect(p50 > 0 && p50 <= p99 && p99 <= p999, "\(who): percentiles out of order")
                #expect((r["decisions"] as? Int ?? 0) >= requests)
            }
            #expect(s["throughput_vs_echo"] is Double)
        }
        // The daemon's answers were decided, not errors: some CHECKs were allowed.
        let one = try #require(scenarios[0]["piamd"] as? [String: Any])
        #expect((one["allowed"] as? Int ?? 0) > 0)
        let batch = try #require(scenarios[2]["piamd"] as? [String: Any])
        #expect(batch["decisions"] as? Int == 16 * (batch["requests"] as? Int ?? -1))
        let targets = try #require(o["targets"] as? [[String: Any]])
        #expect(targets.count >= 5)
    }

    /// `piam-bench ab` against two echo servers: both sides get slices, every pair has both
    /// rates, and each server's CPU is read from its process.
    @Test func abDrivesTwoServersInTurn() throws {
        let (dir, db) = try demoDirectory("piam-bench-ab")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var servers: [Process] = []
        defer { for s in servers { s.terminate(); s.waitUntilExit() } }
        for side in ["a", "b"] { servers.append(try echoServer(socket: "\(dir)/\(side).sock")) }
        let deadline = Date().addingTimeInterval(30)
        while !["a", "b"].allSatisfy({ FileManager.default.fileExists(atPath: "\(dir)/\($0).sock") }) {
            try #require(Date() < deadline, "the echo servers did not bind their sockets")
            usleep(10_000)  // poll interval of a wait bounded by the deadline
        }
        let o = try benchJSON(["ab", "--socket-a", "\(dir)/a.sock", "--socket-b", "\(dir)/b.sock", "--db", db, "--mix", "64",
                               "--connections", "2", "--depth", "4", "--slice-seconds", "0.05", "--seconds", "0.4", "--warmup", "0.1",
                               "--pid-a", "\(servers[0].processIdentifier)", "--pid-b", "\(servers[1].processIdentifier)", "--quiet"])
        let pairs = try #require(o["pairs"] as? [[String: Double]])
        #expect(pairs.count == 4, "0.4 s of 0.05 s slices in pairs")
        for pair in pairs {
            #expect((pair["a"] ?? 0) > 0 && (pair["b"] ?? 0) > 0, "a side had no answers in its slice: \(pair)")
        }
        #expect((o["decisions_a"] as? Double ?? 0) > 0 && (o["decisions_b"] as? Double ?? 0) > 0)
        #expect(o["cpu_ticks_a"] is Int && o["cpu_ticks_b"] is Int)
    }

    /// A server that is not there: `ab` says so and exits, rather than waiting for it.
    @Test func abEndsWithAnErrorWhenAServerIsMissing() throws {
        let (dir, db) = try demoDirectory("piam-bench-ab-missing")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let echo = try echoServer(socket: "\(dir)/a.sock")
        defer { echo.terminate(); echo.waitUntilExit() }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: built("piam-bench"))
        p.arguments = ["ab", "--socket-a", "\(dir)/a.sock", "--socket-b", "\(dir)/nobody.sock", "--db", db, "--mix", "64",
                       "--connections", "2", "--depth", "4", "--slice-seconds", "0.05", "--seconds", "5", "--quiet"]
        let err = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = err
        try p.run()
        let deadline = Date().addingTimeInterval(30)
        while p.isRunning && Date() < deadline { usleep(20_000) }  // poll interval of a bounded wait
        if p.isRunning {
            p.terminate()
            Issue.record("piam-bench ab kept running with a server missing")
        }
        p.waitUntilExit()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationStatus != 0)
        #expect(text.contains("cannot connect"), "\(text)")
    }

    @Test func helpDocumentsEverySubcommand() throws {
        for sub in [[], ["compare"], ["run"], ["ab"], ["echo"]] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: built("piam-bench"))
            p.arguments = sub + ["--help"]
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            #expect(p.terminationStatus == 0)
            #expect(text.contains("USAGE"))
        }
    }
}

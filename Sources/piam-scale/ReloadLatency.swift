import ArgumentParser
import Foundation
import PIAMClient
import PIAMDemo
import PIAMEngine
import PIAMStore
import PIAMWire
import Synchronization

/// `piam-scale reload`: how fast a running piamd makes a commit visible (issue 4's figures).
///
/// 1. Lone single-row writes: the writer records when its COMMIT returned; a client waiting with
///    `min_revision` = the write's revision gets its answer as soon as the daemon published it.
///    Visible latency = answer − commit. The daemon's own apply time is read from STATUS
///    (`reloads.last_apply_us`, `last_engine_apply_us`) after each write.
/// 2. CHECK round trips with no writes, then the same with a writer thread committing
///    `--rate` single-row transactions a second: the p99 ratio is the cost of the write storm.
struct ReloadLatency: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract: "Commit → visible latency, single-row apply time, and CHECK p99 under a write storm, against a running piamd.",
        discussion: """
            Writes to --db (the daemon's database): toggles users' status, one row per transaction, \
            and puts every user back as it was at the end.

            Example (1M users):
              .build/release/piam-scale generate --db /tmp/scale-1m.db
              .build/release/piamd --db /tmp/scale-1m.db --socket /tmp/piamd.sock &
              .build/release/piam-scale reload --db /tmp/scale-1m.db --socket /tmp/piamd.sock
            """)

    @Option(help: "The daemon's database (written to).") var db: String
    @Option(help: "The daemon's socket.") var socket: String
    @Option(help: "Lone single-row writes to time.") var writes: Int = 500
    @Option(help: "Pause between lone writes, ms (so each is applied alone).") var gapMs: Int = 20
    @Option(help: "Writes per second during the storm.") var rate: Int = 1000
    @Option(help: "Seconds of each CHECK run (quiet, then storm).") var seconds: Double = 10
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func run() async throws {
        progress("reading users and resources from \(db)")
        let store = try Store(path: db)
        let users = try store.db.prepare("SELECT id FROM users WHERE status = 'active' ORDER BY id LIMIT 20000").rows { $0.text(0) }
        let resources = try store.db.prepare("SELECT type, id FROM resources ORDER BY type, id LIMIT 20000").rows { ($0.text(0), $0.text(1)) }
        guard users.count >= 2, !resources.isEmpty else { throw PIAMError(.invalidInput, "\(db): too few active users or resources") }
        var rng = SplitMix64(seed: 4)
        let checks = (0..<4096).map { _ -> CheckRequest in
            let r = resources.randomElement(using: &rng)!
            return CheckRequest(subject: users.randomElement(using: &rng)!, action: ["read", "submit", "view"].randomElement(using: &rng)!,
                                resource: ResourceRef(type: r.0, id: r.1))
        }
        let client = try await PIAMClient.connect(socketPath: socket)
        let toggled = Array(users.suffix(users.count / 2))
        let update = try store.db.prepare("UPDATE users SET status = ?1 WHERE id = ?2")
        func write(_ i: Int) throws -> Int64 {
            update.bind(1, i / toggled.count % 2 == 0 ? "suspended" : "active")
            update.bind(2, toggled[i % toggled.count])
            try update.run()  // autocommit: one transaction
            return try store.revision()
        }

        // 1. Lone writes.
        progress("\(writes) lone single-row writes, \(gapMs) ms apart")
        var visible: [Double] = [], apply: [Double] = [], engine: [Double] = []
        var fullBefore = -1, fullAfter = -1
        for i in 0..<writes {
            if i == 0 { fullBefore = try await reloads(client)["full_reloads"] ?? -1 }
            let rev = try write(i)
            let committed = ContinuousClock.now
            _ = try await client.ping(minRevision: rev)
            visible.append((ContinuousClock.now - committed) / .microseconds(1))
            let r = try await reloads(client)
            apply.append(Double(r["last_apply_us"] ?? 0))
            engine.append(Double(r["last_engine_apply_us"] ?? 0))
            if (i + 1) % 100 == 0 { progress("  \(i + 1)/\(writes): visible p50 \(fmt(pct(visible, 0.5))) µs") }
            try await Task.sleep(for: .milliseconds(gapMs))
        }
        fullAfter = try await reloads(client)["full_reloads"] ?? -1

        // 2. CHECK quiet, then under the storm.
        func checkRun(_ label: String) async throws -> [Double] {
            progress("CHECK round trips for \(seconds) s, \(label)")
            var out: [Double] = []
            let end = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
            var i = 0
            while ContinuousClock.now < end {
                let t0 = ContinuousClock.now
                _ = try await client.send(Request(body: .check(checks[i & 4095])))
                out.append((ContinuousClock.now - t0) / .microseconds(1))
                i += 1
            }
            return out
        }
        let quiet = try await checkRun("no writes")
        let storm = WriteStorm(db: db, users: toggled, rate: rate)
        let stormThread = Thread { storm.run() }
        stormThread.start()
        let busy = try await checkRun("\(rate) writes/s")
        storm.stop()
        let committed = storm.waitCommitted()
        let appliesDuring = try await reloads(client)["applies"] ?? 0
        await client.close()
        // Put every toggled user back to active.
        try store.db.execute("UPDATE users SET status = 'active' WHERE status = 'suspended' AND id IN (\(toggled.map { "'\($0.replacingOccurrences(of: "'", with: "''"))'" }.joined(separator: ",")))")

        let r: [String: Double] = [
            "visible_p50_us": pct(visible, 0.5), "visible_p99_us": pct(visible, 0.99),
            "apply_p50_us": pct(apply, 0.5), "apply_p99_us": pct(apply, 0.99),
            "engine_apply_p50_us": pct(engine, 0.5), "engine_apply_p99_us": pct(engine, 0.99),
            "check_quiet_p50_us": pct(quiet, 0.5), "check_quiet_p99_us": pct(quiet, 0.99),
            "check_storm_p50_us": pct(busy, 0.5), "check_storm_p99_us": pct(busy, 0.99),
            "check_p99_ratio": pct(busy, 0.99) / pct(quiet, 0.99),
            "storm_commits_per_s": Double(committed) / seconds, "applies_total": Double(appliesDuring),
            "full_reloads_during_lone_writes": Double(fullAfter - fullBefore),
        ]
        if json {
            print(String(decoding: try JSONSerialization.data(withJSONObject: r, options: [.sortedKeys, .prettyPrinted]), as: UTF8.self))
            return
        }
        print("lone single-row writes (\(writes)): commit → visible (client waits with min_revision)")
        print("  p50 \(fmt(r["visible_p50_us"]!)) µs   p99 \(fmt(r["visible_p99_us"]!)) µs   (targets: 1,000 / 10,000)")
        print("  daemon apply (journal read + engine + publish): p50 \(fmt(r["apply_p50_us"]!)) µs  p99 \(fmt(r["apply_p99_us"]!)) µs; engine alone p50 \(fmt(r["engine_apply_p50_us"]!)) µs")
        print("  full reloads meanwhile: \(fullAfter - fullBefore)")
        print("CHECK round trips, one client")
        print("  quiet:            p50 \(fmt(r["check_quiet_p50_us"]!)) µs  p99 \(fmt(r["check_quiet_p99_us"]!)) µs  (\(quiet.count) checks)")
        print("  \(rate) writes/s: p50 \(fmt(r["check_storm_p50_us"]!)) µs  p99 \(fmt(r["check_storm_p99_us"]!)) µs  (\(busy.count) checks; \(committed) commits = \(fmt(r["storm_commits_per_s"]!))/s)")
        print("  p99 ratio storm/quiet: \(String(format: "%.2f", r["check_p99_ratio"]!))×  (target ≤ 2×)")
    }

    func reloads(_ c: PIAMClient) async throws -> [String: Int] {
        let doc = try JSONSerialization.jsonObject(with: Data(try await c.status().json.utf8)) as? [String: Any]
        return doc?["reloads"] as? [String: Int] ?? [:]
    }

    func pct(_ xs: [Double], _ p: Double) -> Double {
        let s = xs.sorted()
        return s.isEmpty ? 0 : s[min(s.count - 1, Int(Double(s.count) * p))]
    }

    func fmt(_ x: Double) -> String { x >= 100 ? String(format: "%.0f", x) : String(format: "%.1f", x) }

    func progress(_ s: String) { FileHandle.standardError.write(Data("\(s)\n".utf8)) }
}

/// A writer thread committing single-row transactions at a fixed rate on its own connection.
final class WriteStorm: Sendable {
    let db: String
    let users: [String]
    let rate: Int
    private let state = Mutex<(stop: Bool, committed: Int, done: Bool)>((false, 0, false))

    init(db: String, users: [String], rate: Int) {
        self.db = db
        self.users = users
        self.rate = rate
    }

    func stop() { state.withLock { $0.stop = true } }

    /// Blocks until the thread finished; the commits it made.
    func waitCommitted() -> Int {
        while !state.withLock({ $0.done }) { usleep(1000) }
        return state.withLock { $0.committed }
    }

    func run() {
        defer { state.withLock { $0.done = true } }
        guard let store = try? Store(path: db), let update = try? store.db.prepare("UPDATE users SET status = ?1 WHERE id = ?2") else { return }
        let start = ContinuousClock.now
        var n = 0
        while !state.withLock({ $0.stop }) {
            let due = start + .microseconds(Int64(n) * 1_000_000 / Int64(rate))
            let now = ContinuousClock.now
            if due > now { usleep(UInt32((due - now) / .microseconds(1))) }
            update.bind(1, n / users.count % 2 == 0 ? "suspended" : "active")
            update.bind(2, users[(n * 7919) % users.count])
            if (try? update.run()) != nil { state.withLock { $0.committed += 1 } }
            n += 1
        }
    }
}

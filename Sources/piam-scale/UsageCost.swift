import ArgumentParser
import Foundation
import PIAMDemo
import PIAMEngine
import PIAMServer
import PIAMStore

/// Usage recording, in-process: what the tally adds to a check, its memory at many active
/// people, and the usage database after a day.
struct UsageCost: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usage",
        abstract: "Usage recording: the tally's cost per check, its memory at --people active users, the usage database after a day.",
        discussion: """
            1. Per check, interleaved batches of 4,096 over the same requests: check(utf8:) alone; \
            check(utf8:facts:) (the attributed evaluation); and that plus LoopUsage.record (what \
            piamd does with usage.path set); cold (65,536 requests over the whole graph) and warm \
            (1,024); medians. The tally's cost is the third minus the second.
            2. Memory: one allowed-or-denied decision for each of --people distinct users into one \
            LoopUsage (one event loop's flush interval with that many people active): the tables' \
            bytes and the process's RSS growth.
            3. A simulated day into a usage database: --people people each active in 4 random \
            minutes with 3 features each, written as 1,440 one-minute flushes (UsageDatabase.record); \
            the file's size and the time the writes took.
            """)

    @Option(help: "The database (a generated 1M-user graph).") var db: String = "/tmp/piam-scale.db"
    @Option(help: "Batches of 4,096 checks per phase.") var batches: Int = 400
    @Option(help: "Active people for the memory and day measurements.") var people: Int = 1_000_000
    @Option(help: "Where the simulated day's usage database is written (replaced).") var usageDB: String = "/tmp/piam-usage-day.db"
    @Flag(help: "Skip the simulated day (minutes with 1M people).") var skipDay = false
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let loaded = try Store(path: db, readOnly: true).loadGraph()
        let g = loaded.graph
        Report.progress("loaded revision \(loaded.revision); timing the tally")
        var out: [String: Double] = [:]
        let reqs = CheckBench.requestPool(graph: g, size: 1 << 16)
        let now: Timestamp = 1_800_000_000_000
        let batch = 4096
        let usage = LoopUsage(maxKeys: 1 << 22)
        var sink = 0
        // Three loops over the same requests, interleaved batch by batch: the plain check; the
        // check with its facts (the attributed evaluation piamd runs with usage on); and that
        // plus LoopUsage.record. The tally's own cost is the third minus the second.
        var times = [[Double]](repeating: [], count: 6)  // cold plain, facts, tally; warm plain, facts, tally
        ByteRequests(reqs).withItems { items in
            var off = 0
            for round in 0..<(2 * batches) {
                let warm = round >= batches
                let mask = warm ? 1023 : (1 << 16) - 1
                for phase in 0..<3 {
                    let t = DispatchTime.now().uptimeNanoseconds
                    for i in 0..<batch {
                        // Cold: each loop on requests of its own (a third of the pool apart), so
                        // none reads what another just brought into the caches.
                        let item = items[(off + phase * 21_845 + i) & mask]
                        switch phase {
                        case 0:
                            sink &+= Int(g.check(utf8: item, now: now).reason.rawValue)
                        case 1:
                            var f = DecisionFacts()
                            let d = g.check(utf8: item, now: now, facts: &f)
                            sink &+= Int(d.reason.rawValue) &+ Int(f.holding)
                        default:
                            var f = DecisionFacts()
                            let d = g.check(utf8: item, now: now, facts: &f)
                            usage.record(f, allowed: d.allowed, graph: g, now: now)
                            sink &+= Int(d.reason.rawValue)
                        }
                    }
                    times[(warm ? 3 : 0) + phase].append(Double(DispatchTime.now().uptimeNanoseconds - t) / Double(batch))
                }
                off &+= batch
                if round % 64 == 63 { usage.discard() }  // a flush interval's worth
            }
        }
        func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
        for (k, prefix) in [(0, ""), (3, "warm_")] {
            out[prefix + "check_utf8_median_ns"] = median(times[k])
            out[prefix + "check_utf8_facts_median_ns"] = median(times[k + 1])
            out[prefix + "check_utf8_facts_record_median_ns"] = median(times[k + 2])
            out[prefix + "attribution_cost_ns"] = median(times[k + 1]) - median(times[k])
            out[prefix + "tally_cost_ns"] = median(times[k + 2]) - median(times[k + 1])
            out[prefix + "usage_on_cost_ns"] = median(times[k + 2]) - median(times[k])
        }
        usage.discard()

        // Memory: --people distinct people in one interval.
        let users = Array(g.allUserIDs.prefix(people))
        let org = ResourceRef(type: "org", id: g.allOrgIDs[0])
        let rssBefore = Memory.rss()
        let tallyStart = DispatchTime.now().uptimeNanoseconds
        for u in users {
            var f = DecisionFacts()
            let d = g.check(CheckRequest(subject: u, action: "view", resource: org), now: now, facts: &f)
            usage.record(f, allowed: d.allowed, graph: g, now: now)
        }
        out["memory_people"] = Double(users.count)
        out["memory_keys"] = Double(usage.keyCount)
        out["memory_table_mb"] = Double(usage.memoryBytes) / 1_048_576
        out["memory_rss_growth_mb"] = (Memory.rss() - rssBefore) / 1_048_576
        out["memory_record_ns_per_person"] = Double(DispatchTime.now().uptimeNanoseconds - tallyStart) / Double(max(1, users.count))
        usage.discard()

        if skipDay { return try emit(out, sink: sink) }
        // A simulated day.
        Report.progress("simulating a day of \(users.count) active people into \(usageDB)")
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: usageDB + suffix) }
        let database = try UsageDatabase(path: usageDB)
        var rng = SplitMix64(seed: 0xDA7)
        let features = [("claim", "read"), ("claim", "submit"), ("policy", "read"), ("quote", "create"), ("statement", "download"),
                        ("user", "view"), ("document", "read"), ("report", "read")]
        var minutes = [[Int]](repeating: [], count: 1440)
        for (i, _) in users.enumerated() {
            for _ in 0..<4 { minutes[Int.random(in: 0..<1440, using: &rng)].append(i) }
        }
        let day0: Timestamp = 1_800_000_000_000 / 86_400_000 * 86_400_000
        let writeStart = DispatchTime.now().uptimeNanoseconds
        var rows = 0
        for (m, active) in minutes.enumerated() {
            let t = day0 + Timestamp(m) * 60_000
            var batch = UsageBatch()
            for i in active {
                let u = users[i]
                let partner = g.org(ofUser: u).flatMap { g.partnerRoot(ofOrg: $0) } ?? ""
                for k in 0..<3 {
                    let (type, action) = features[(i + k) % features.count]
                    batch.features.append(.init(user: u, partner: partner, type: type, action: action, allowed: 5, denied: 1,
                                                firstAllowed: t, lastAllowed: t + 30_000))
                }
                if let org = g.org(ofUser: u) {
                    batch.holdings.append(.init(holding: .assignment(user: u, role: "agent", scope: org), uses: 15, lastUsed: t + 30_000))
                }
            }
            rows += batch.features.count
            try database.record(batch, now: t + 60_000)
            if m % 240 == 239 { Report.progress("minute \(m + 1) of 1440") }
        }
        try database.database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        out["day_write_seconds"] = Double(DispatchTime.now().uptimeNanoseconds - writeStart) / 1e9
        out["day_feature_rows_written"] = Double(rows)
        let size = (try? FileManager.default.attributesOfItem(atPath: usageDB)[.size] as? Int) ?? 0
        out["day_usage_db_mb"] = Double(size) / 1_048_576
        try emit(out, sink: sink)
    }

    func emit(_ figures: [String: Double], sink: Int) throws {
        var out = figures
        out["sink"] = Double(sink & 1)
        if json {
            print(String(decoding: try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys]), as: UTF8.self))
        } else {
            Report.print(out)
        }
    }
}

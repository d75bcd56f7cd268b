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
            4. The writer: --flush-keys distinct (person, feature) keys decided on each of two \
            event loops' tallies (the same keys on both, as a request mix spread over two loops \
            has), then named, merged and written to a usage database as piamd's writer thread \
            does every usage.flush_ms (UsageService.write); --flushes times, the median per flush \
            and per key. The keys are the same every flush, as a steady mix's are.
            """)

    @Option(help: "The database (a generated 1M-user graph).") var db: String = "/tmp/piam-scale.db"
    @Option(help: "Batches of 4,096 checks per phase.") var batches: Int = 400
    @Option(help: "Active people for the memory and day measurements.") var people: Int = 1_000_000
    @Option(help: "Where the simulated day's usage database is written (replaced).") var usageDB: String = "/tmp/piam-usage-day.db"
    @Flag(help: "Skip the simulated day (minutes with 1M people).") var skipDay = false
    @Option(help: "Distinct keys per flush in the writer measurement (0: skip it).") var flushKeys: Int = 4096
    @Option(help: "Flushes timed in the writer measurement.") var flushes: Int = 200
    @Flag(help: "Only the writer measurement.") var writerOnly = false
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let loaded = try Store(path: db, readOnly: true).loadGraph()
        let g = loaded.graph
        Report.progress("loaded revision \(loaded.revision); timing the tally")
        var out: [String: Double] = [:]
        if flushKeys > 0 { try measureWriter(g, into: &out) }
        if writerOnly { return try emit(out, sink: 0) }
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

    /// 4: the writer thread's flush, timed.
    func measureWriter(_ g: AccessGraph, into out: inout [String: Double]) throws {
        Report.progress("timing the usage writer: \(flushKeys) keys per flush, \(flushes) flushes")
        let path = usageDB + "-writer"
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let database = try UsageDatabase(path: path)
        let reqs = CheckBench.requestPool(graph: g, size: flushKeys)
        var facts: [(DecisionFacts, Bool)] = []
        for r in reqs {
            var f = DecisionFacts()
            let d = g.check(r, now: 0, facts: &f)
            facts.append((f, d.allowed))
        }
        let loops = [LoopUsage(maxKeys: 1 << 22), LoopUsage(maxKeys: 1 << 22)]
        var now: Timestamp = 1_800_000_000_000
        var times: [Double] = []
        for round in 0..<(flushes + 5) {
            for (k, (f, allowed)) in facts.enumerated() {
                loops[k & 1].record(f, allowed: allowed, graph: g, now: now + Timestamp(k & 255))
                loops[(k + 1) & 1].record(f, allowed: allowed, graph: g, now: now + Timestamp(k & 255))
            }
            now += 1000
            let t = DispatchTime.now().uptimeNanoseconds
            try UsageService.write(loops, to: database, now: now)
            if round >= 5 { times.append(Double(DispatchTime.now().uptimeNanoseconds - t) / 1000) }  // the first fill the file
        }
        let median = times.sorted()[times.count / 2]
        out["writer_keys_per_flush"] = Double(Set(facts.map { "\($0.0.subject) \($0.0.type) \($0.0.action)" }).count)
        out["writer_flush_median_us"] = median
        out["writer_per_key_median_ns"] = median * 1000 / max(1, out["writer_keys_per_flush"]!)
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

import ArgumentParser
import Foundation
import PIAMDemo
import PIAMEngine
import PIAMStore

/// `piam-scale`: the scale measurements of the foundation — import time, load time and peak RSS
/// of building the graph from SQLite, and in-process `check` latency — on generated graphs.
///
/// Build in release: `swift build -c release --product piam-scale`.
@main
struct PiamScale: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "piam-scale",
        abstract: "Measure import, load (time, peak RSS) and in-process check latency on a generated graph.",
        discussion: """
            `piam-scale all` writes the graph (unless --db exists and --reuse is given), then runs \
            `piam-scale load` in a fresh process so that its peak RSS is the load's alone.

            Latency is reported against a baseline measured in the same run: one Dictionary \
            lookup of the subject's id (the least any check must do), so the ratio holds on a \
            noisy machine where absolute times drift.

            Example (the figures of the README):
              swift build -c release --product piam-scale
              .build/release/piam-scale all --db /tmp/scale.db --orgs 10000 --users 1000000 --resources 100000
            """,
        subcommands: [All.self, Generate.self, Load.self, ApplyLatency.self, SocketLatency.self, ReloadLatency.self, UsageCost.self],
        defaultSubcommand: All.self)
}

struct SizeOptions: ParsableArguments {
    @Option(help: "The database to write or read.") var db: String = "/tmp/piam-scale.db"
    @Option(help: "Orgs to generate.") var orgs: Int = 10_000
    @Option(help: "Users to generate.") var users: Int = 1_000_000
    @Option(help: "Resources to generate.") var resources: Int = 100_000
    @Option(help: "Generator seed.") var seed: UInt64 = 1
    @Flag(help: "Print one JSON object instead of text.") var json = false
}

struct All: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Generate (or reuse) the database, then measure the load in a fresh process.")

    @OptionGroup var size: SizeOptions
    @Flag(help: "Reuse --db if it exists instead of writing it again.") var reuse = false
    @Flag(name: .customLong("json-import"), help: "Also time export to a JSON file and importing that file into a fresh database.")
    var jsonImport = false
    @Option(help: "Random checks to time.") var checks: Int = 2_000_000

    func run() throws {
        var gen: [String: Double] = [:]
        if !(reuse && FileManager.default.fileExists(atPath: size.db)) {
            gen = try Generate.write(size)
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        p.arguments = ["load", "--db", size.db, "--checks", String(checks), "--json"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0, var load = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ValidationError("the load phase failed (exit \(p.terminationStatus))")
        }
        for (k, v) in gen { load[k] = v }
        if jsonImport {
            for (k, v) in try JSONRoundTrip.run(db: size.db) { load[k] = v }
        }
        if size.json {
            let d = try JSONSerialization.data(withJSONObject: load, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: d, as: UTF8.self))
        } else {
            Report.print(load)
        }
    }
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a generated graph to --db (replacing it).")

    @OptionGroup var size: SizeOptions

    func run() throws {
        let r = try Generate.write(size)
        if size.json {
            print(String(decoding: try JSONSerialization.data(withJSONObject: r, options: [.sortedKeys]), as: UTF8.self))
        } else {
            Report.print(r)
        }
    }

    static func write(_ size: SizeOptions) throws -> [String: Double] {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: size.db + suffix) }
        Report.progress("generating \(size.orgs) orgs, \(size.users) users, \(size.resources) resources")
        let t0 = Date()
        let doc = DemoGenerator(scale: .init(orgs: size.orgs, users: size.users, resources: size.resources),
                                seed: size.seed, now: 1_800_000_000_000).document()
        let t1 = Date()
        let store = try Store.initialize(path: size.db)
        var last = Date.distantPast
        let result = try store.importDocument(doc, mode: .merge) { done, total in
            if Date().timeIntervalSince(last) > 2 || done == total {
                last = Date()
                Report.progress("import: \(done)/\(total) rows")
            }
        }
        let t2 = Date()
        let counts = try store.tableCounts()
        var r: [String: Double] = [
            "generate_seconds": t1.timeIntervalSince(t0),
            "import_seconds": t2.timeIntervalSince(t1),
            "import_revision": Double(result.revision),
        ]
        for c in counts { r["rows_\(c.table)"] = Double(c.rows) }
        r["db_bytes"] = Double(((try? FileManager.default.attributesOfItem(atPath: size.db))?[.size] as? NSNumber)?.int64Value ?? 0)
        return r
    }
}

/// Times `export` of the database to JSON and `import` of that file (the JSON path of
/// `piamctl import`, decoding included) into a freshly initialized database.
enum JSONRoundTrip {
    static func run(db: String) throws -> [String: Double] {
        let file = db + ".export.json"
        let copy = db + ".json-import.db"
        for p in [file, copy, copy + "-wal", copy + "-shm"] { try? FileManager.default.removeItem(atPath: p) }
        defer { for p in [file, copy, copy + "-wal", copy + "-shm"] { try? FileManager.default.removeItem(atPath: p) } }
        Report.progress("exporting to \(file)")
        var t = Date()
        _ = try Store(path: db, readOnly: true).export(toFile: file)
        let exportSeconds = Date().timeIntervalSince(t)
        let bytes = ((try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? NSNumber)?.doubleValue ?? 0
        Report.progress("importing \(Int(bytes / 1_048_576)) MB of JSON into \(copy)")
        let store = try Store.initialize(path: copy)
        t = Date()
        _ = try store.importFile(path: file, mode: .replace)
        return ["export_seconds": exportSeconds, "export_mb": bytes / 1_048_576, "json_import_seconds": Date().timeIntervalSince(t)]
    }
}

struct Load: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Load --db into an AccessGraph; report time, peak RSS and check latency.")

    @Option(help: "The database.") var db: String = "/tmp/piam-scale.db"
    @Option(help: "Random checks to time.") var checks: Int = 2_000_000
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let rssBefore = Memory.rss()
        let t0 = Date()
        let store = try Store(path: db, readOnly: true)
        let loaded = try store.loadGraph()
        let loadSeconds = Date().timeIntervalSince(t0)
        let g = loaded.graph
        let rssAfter = Memory.rss()
        let peak = Memory.peakRSS()
        Report.progress("loaded revision \(loaded.revision) in \(String(format: "%.2f", loadSeconds)) s; timing \(checks) checks")

        let m = CheckBench(graph: g, count: checks).measure()
        let c = g.counts
        var r: [String: Double] = [
            "load_seconds": loadSeconds,
            "rss_before_load_mb": rssBefore / 1_048_576,
            "rss_after_load_mb": rssAfter / 1_048_576,
            "peak_rss_mb": peak / 1_048_576,
            "graph_mb": (rssAfter - rssBefore) / 1_048_576,
            "bytes_per_user": c.users > 0 ? (rssAfter - rssBefore) / Double(c.users) : 0,
            "users": Double(c.users), "orgs": Double(c.orgs), "resources": Double(c.resources),
            "grants": Double(c.grants), "aliases": Double(c.aliases),
        ]
        for (k, v) in m { r[k] = v }
        if json {
            print(String(decoding: try JSONSerialization.data(withJSONObject: r, options: [.sortedKeys]), as: UTF8.self))
        } else {
            Report.print(r)
        }
    }
}

/// Times `check` on random requests drawn from the graph, in batches, against a baseline loop.
struct CheckBench {
    let graph: AccessGraph
    let count: Int

    /// A fixed pool of `size` requests (the same every run: callgrind counts repeat): realistic
    /// mixes of partner users acting on registered resources, other users and orgs (some in their
    /// partner, many not). `size` is a power of two (indexes are masked).
    static func requestPool(graph: AccessGraph, size: Int) -> [CheckRequest] {
        var rng = SplitMix64(seed: 0x5EED)  // the same requests every run: callgrind counts repeat
        let users = graph.allUserIDs
        let resources = graph.allResources
        let orgs = graph.allOrgIDs
        let actionsFor: [String: [String]] = [
            "claim": ["read", "submit", "update", "withdraw"], "policy": ["read", "endorse", "renew"],
            "quote": ["create", "read", "submit"], "statement": ["read", "download"], "document": ["read"],
            "user": ["view", "suspend", "assign_role"], "org": ["view", "invite_user"],
        ]
        var reqs: [CheckRequest] = []
        reqs.reserveCapacity(size)
        // Half the requests are people acting on their own work (an owner on its resource, a
        // colleague on a user of its own org): the allow path. The other half are random pairs,
        // nearly always in another partner: the isolation (deny) path.
        for n in 0..<size {
            var s = users[Int.random(in: 0..<users.count, using: &rng)]
            let k = Int.random(in: 0..<10, using: &rng)
            let ref: ResourceRef
            if k < 6, !resources.isEmpty {
                let r = resources[Int.random(in: 0..<resources.count, using: &rng)]
                ref = ResourceRef(type: r.type, id: r.id)
                if n % 2 == 0, let owner = graph.location(of: ref)?.owner { s = owner }
            } else if k < 9 {
                ref = ResourceRef(type: "user", id: users[Int.random(in: 0..<users.count, using: &rng)])
                if n % 2 == 0, let org = graph.location(of: ref)?.org {
                    let colleagues = graph.users(ofOrg: org)
                    if !colleagues.isEmpty { s = colleagues[Int.random(in: 0..<colleagues.count, using: &rng)] }
                }
            } else {
                ref = ResourceRef(type: "org", id: orgs[Int.random(in: 0..<orgs.count, using: &rng)])
            }
            let acts = actionsFor[ref.type] ?? ["read"]
            reqs.append(CheckRequest(subject: s, action: acts[Int.random(in: 0..<acts.count, using: &rng)], resource: ref))
        }
        return reqs
    }

    func measure() -> [String: Double] {
        var pool = 1024
        while pool < min(count, 1 << 16) { pool <<= 1 }
        let reqs = Self.requestPool(graph: graph, size: pool)
        let now: Timestamp = 1_800_000_000_000
        var allowed = 0
        var reasons = [Int](repeating: 0, count: 16)
        for r in reqs {
            let d = graph.check(r, now: now)
            if d.allowed { allowed += 1 }
            reasons[Int(d.reason.rawValue)] += 1
        }
        let batch = 4096
        let batches = max(1, count / batch)
        var checkNs: [Double] = []
        var baseNs: [Double] = []
        checkNs.reserveCapacity(batches)
        baseNs.reserveCapacity(batches)
        var sink = 0
        var offset = 0
        // Interleave the check batches with baseline batches so both see the same machine.
        for _ in 0..<batches {
            var t = DispatchTime.now().uptimeNanoseconds
            for i in 0..<batch {
                let d = graph.check(reqs[(offset + i) & (pool - 1)], now: now)
                sink &+= Int(d.reason.rawValue)
            }
            var e = DispatchTime.now().uptimeNanoseconds
            checkNs.append(Double(e - t) / Double(batch))
            t = DispatchTime.now().uptimeNanoseconds
            for i in 0..<batch {
                if graph.userID(for: reqs[(offset + i) & (pool - 1)].subject) != nil { sink &+= 1 }
            }
            e = DispatchTime.now().uptimeNanoseconds
            baseNs.append(Double(e - t) / Double(batch))
            offset &+= batch
        }
        // Warm: the same 1,024 requests over and over, so the touched part of the graph stays in
        // the CPU caches (a portal's active users at a given minute): the cost of the rules alone.
        var warmNs: [Double] = []
        var warmBaseNs: [Double] = []
        for _ in 0..<batches {
            var t = DispatchTime.now().uptimeNanoseconds
            for i in 0..<batch {
                let d = graph.check(reqs[i & 1023], now: now)
                sink &+= Int(d.reason.rawValue)
            }
            var e = DispatchTime.now().uptimeNanoseconds
            warmNs.append(Double(e - t) / Double(batch))
            t = DispatchTime.now().uptimeNanoseconds
            for i in 0..<batch {
                if graph.userID(for: reqs[i & 1023].subject) != nil { sink &+= 1 }
            }
            e = DispatchTime.now().uptimeNanoseconds
            warmBaseNs.append(Double(e - t) / Double(batch))
        }
        // The same requests through `check(utf8:)` — ids as UTF-8 bytes, as piamd's socket decodes
        // them — cold (the whole pool) and warm (the 1,024 hot ones).
        var bytesNs: [Double] = []
        var warmBytesNs: [Double] = []
        ByteRequests(reqs).withItems { items in
            for (n, r) in reqs.enumerated() where n < 4096 {
                precondition(graph.check(utf8: items[n], now: now) == graph.check(r, now: now), "check(utf8:) disagrees with check")
            }
            var off = 0
            for round in 0..<(2 * batches) {
                let warm = round >= batches
                let t = DispatchTime.now().uptimeNanoseconds
                for i in 0..<batch {
                    let k = warm ? i & 1023 : (off + i) & (pool - 1)
                    sink &+= Int(graph.check(utf8: items[k], now: now).reason.rawValue)
                }
                let e = DispatchTime.now().uptimeNanoseconds
                if warm { warmBytesNs.append(Double(e - t) / Double(batch)) } else { bytesNs.append(Double(e - t) / Double(batch)) }
                off &+= batch
            }
        }
        bytesNs.sort()
        warmBytesNs.sort()
        warmNs.sort()
        warmBaseNs.sort()
        checkNs.sort()
        baseNs.sort()
        func pct(_ xs: [Double], _ p: Double) -> Double { xs[min(xs.count - 1, Int(Double(xs.count) * p))] }
        var out: [String: Double] = [
            "checks_timed": Double(batches * batch),
            "check_median_ns": pct(checkNs, 0.5),
            "check_p99_batch_ns": pct(checkNs, 0.99),
            "baseline_lookup_median_ns": pct(baseNs, 0.5),
            "check_vs_lookup_ratio": pct(checkNs, 0.5) / max(pct(baseNs, 0.5), 0.001),
            "warm_check_median_ns": pct(warmNs, 0.5),
            "warm_baseline_lookup_median_ns": pct(warmBaseNs, 0.5),
            "warm_check_vs_lookup_ratio": pct(warmNs, 0.5) / max(pct(warmBaseNs, 0.5), 0.001),
            "utf8_check_median_ns": pct(bytesNs, 0.5),
            "utf8_check_vs_lookup_ratio": pct(bytesNs, 0.5) / max(pct(baseNs, 0.5), 0.001),
            "warm_utf8_check_median_ns": pct(warmBytesNs, 0.5),
            "warm_utf8_check_vs_lookup_ratio": pct(warmBytesNs, 0.5) / max(pct(warmBaseNs, 0.5), 0.001),
            "allowed_fraction": Double(allowed) / Double(reqs.count),
            "sink": Double(sink & 1),
        ]
        for (i, n) in reasons.enumerated() where n > 0 {
            out["reason_\(Reason(rawValue: UInt8(i))!.name)"] = Double(n) / Double(reqs.count)
        }
        return out
    }
}

enum Memory {
    /// A field of /proc/self/status in bytes (VmRSS, VmHWM).
    static func status(_ field: String) -> Double {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in s.split(separator: "\n") where line.hasPrefix(field + ":") {
            let kb = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
            return kb * 1024
        }
        return 0
    }
    static func rss() -> Double { status("VmRSS") }
    static func peakRSS() -> Double { status("VmHWM") }
}

enum Report {
    static func progress(_ s: String) {
        FileHandle.standardError.write(Data("piam-scale: \(s)\n".utf8))
    }

    static func print(_ r: [String: Any]) {
        for (k, v) in r.sorted(by: { $0.key < $1.key }) {
            if let d = v as? Double {
                Swift.print(k.padding(toLength: 32, withPad: " ", startingAt: 0), d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(format: "%.3f", d))
            } else {
                Swift.print(k.padding(toLength: 32, withPad: " ", startingAt: 0), v)
            }
        }
    }
}

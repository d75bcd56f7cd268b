import Benchmark
import Foundation
import PIAMDemo
import PIAMEngine
import PIAMStore
import Synchronization

/// A generated graph size: the shape of `piamctl demo --orgs … --users … --resources …`.
struct GraphSize: Sendable {
    var name: String
    var orgs: Int
    var users: Int
    var resources: Int

    static let all = [
        GraphSize(name: "1k", orgs: 100, users: 1_000, resources: 100),
        GraphSize(name: "100k", orgs: 1_000, users: 100_000, resources: 10_000),
        GraphSize(name: "1M", orgs: 10_000, users: 1_000_000, resources: 100_000),
    ]

    /// `PIAM_BENCH_SIZES=1k,100k` (case-insensitive) or all three.
    static var selected: [GraphSize] {
        guard let s = ProcessInfo.processInfo.environment["PIAM_BENCH_SIZES"], !s.isEmpty else { return all }
        let wanted = Set(s.lowercased().split(separator: ",").map(String.init))
        return all.filter { wanted.contains($0.name.lowercased()) }
    }

    /// The database, written once (the 1M graph takes minutes) and reused.
    var db: String {
        let dir = ProcessInfo.processInfo.environment["PIAM_BENCH_DIR"] ?? "/tmp"
        return "\(dir)/piam-bench-\(name).db"
    }
}

/// A loaded graph and the requests drawn from it, built once per benchmark process.
struct Fixture: Sendable {
    let graph: AccessGraph
    let mix: CheckMix
    /// The mix's allowed and denied requests as UTF-8 bytes, for `check(utf8:)`.
    let allowedBytes: ByteRequests
    let deniedBytes: ByteRequests
    let now: Timestamp
    let size: GraphSize
    /// `(actor, target, role)` triples for `canAssign`: an admin of the target's org and a role.
    let assigns: [(String, String, String)]
    let claimReaders: [String]
    let resources: [ResourceRef]

    private static let cache = Mutex<[String: Fixture]>([:])

    static func get(_ size: GraphSize) -> Fixture {
        if let f = cache.withLock({ $0[size.name] }) { return f }
        do {
            let f = try make(size)
            cache.withLock { $0[size.name] = f }
            return f
        } catch {
            fatalError("cannot prepare the \(size.name) graph at \(size.db): \(error)")
        }
    }

    static func ensureDatabase(_ size: GraphSize) throws {
        guard !FileManager.default.fileExists(atPath: size.db) else { return }
        let tmp = size.db + ".partial"
        for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: tmp + s) }
        do {
            // The store closes (and checkpoints its WAL) at the end of this scope.
            let store = try Store.initialize(path: tmp)
            let doc = DemoGenerator(scale: .init(orgs: size.orgs, users: size.users, resources: size.resources),
                                    seed: 1, now: 1_800_000_000_000).document()
            _ = try store.importDocument(doc, mode: .merge)
        }
        // Whatever the WAL still holds moves with the database.
        for s in ["-wal", "-shm", ""] where FileManager.default.fileExists(atPath: tmp + s) {
            try? FileManager.default.removeItem(atPath: size.db + s)
            try FileManager.default.moveItem(atPath: tmp + s, toPath: size.db + s)
        }
    }

    private static func make(_ size: GraphSize) throws -> Fixture {
        try ensureDatabase(size)
        let graph = try Store(path: size.db, readOnly: true).loadGraph().graph
        let now: Timestamp = 1_800_000_000_000
        let mix = CheckMix.draw(from: graph, count: 4096, allowRatio: 0.5, seed: 7, now: now)
        var rng = SplitMix64(seed: 11)
        var assigns: [(String, String, String)] = []
        let users = graph.allUserIDs
        for _ in 0..<4096 * 4 where assigns.count < 1024 {
            let target = users[Int.random(in: 0..<users.count, using: &rng)]
            guard let org = graph.org(ofUser: target), let root = graph.partnerRoot(ofOrg: org) else { continue }
            guard let admin = graph.assignmentAdmins(of: root, now: now).first else { continue }
            assigns.append((admin, target, ["claims-viewer", "policy-viewer", "catalog-reader", "quote-creator"][assigns.count % 4]))
        }
        let resources = graph.allResources.filter { $0.type == "claim" }.prefix(4096).map { ResourceRef(type: $0.type, id: $0.id) }
        return Fixture(graph: graph, mix: mix, allowedBytes: ByteRequests(mix.allowed), deniedBytes: ByteRequests(mix.denied),
                       now: now, size: size, assigns: assigns,
                       claimReaders: mix.allowed.map(\.subject), resources: Array(resources))
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput],
        timeUnits: .nanoseconds,
        warmupIterations: 1,
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 1_000
    )

    for size in GraphSize.selected {
        let n = size.name

        // One iteration = 1,000 checks (scalingFactor .kilo): wall clock per iteration / 1,000 is
        // the time of one check.
        Benchmark("check allow \(n)") { benchmark in
            let f = Fixture.get(size)
            let reqs = f.mix.allowed
            benchmark.startMeasurement()
            for i in benchmark.scaledIterations { blackHole(f.graph.check(reqs[i % reqs.count], now: f.now)) }
        }
        Benchmark("check deny \(n)") { benchmark in
            let f = Fixture.get(size)
            let reqs = f.mix.denied
            benchmark.startMeasurement()
            for i in benchmark.scaledIterations { blackHole(f.graph.check(reqs[i % reqs.count], now: f.now)) }
        }
        // The same requests with their ids as bytes: piamd's socket path (`check(utf8:)`).
        for allow in [true, false] {
            Benchmark("check utf8 \(allow ? "allow" : "deny") \(n)") { benchmark in
                let f = Fixture.get(size)
                (allow ? f.allowedBytes : f.deniedBytes).withItems { items in
                    benchmark.startMeasurement()
                    for i in benchmark.scaledIterations { blackHole(f.graph.check(utf8: items[i % items.count], now: f.now)) }
                    benchmark.stopMeasurement()
                }
            }
        }
        Benchmark("checkBatch 128 \(n)", configuration: .init(scalingFactor: .one)) { benchmark in
            let f = Fixture.get(size)
            let batches = stride(from: 0, to: f.mix.checks.count - 128, by: 128).map { Array(f.mix.checks[$0..<$0 + 128]) }
            benchmark.startMeasurement()
            for i in benchmark.scaledIterations {
                blackHole(f.graph.checkBatch(batches[i % batches.count], semantic: .executeAll, now: f.now))
            }
        }
        Benchmark("listResources page 100 \(n)", configuration: .init(scalingFactor: .one)) { benchmark in
            let f = Fixture.get(size)
            benchmark.startMeasurement()
            for i in benchmark.scaledIterations {
                blackHole(try? f.graph.listResources(subject: f.claimReaders[i % f.claimReaders.count], action: "read",
                                                     type: "claim", limit: 100, now: f.now))
            }
        }
        Benchmark("listSubjects page 100 \(n)", configuration: .init(scalingFactor: .one)) { benchmark in
            let f = Fixture.get(size)
            benchmark.startMeasurement()
            for i in benchmark.scaledIterations {
                blackHole(try? f.graph.listSubjects(action: "read", resource: f.resources[i % f.resources.count], limit: 100, now: f.now))
            }
        }
        Benchmark("canAssign \(n)") { benchmark in
            let f = Fixture.get(size)
            benchmark.startMeasurement()
            for i in benchmark.scaledIterations {
                let (actor, target, role) = f.assigns[i % f.assigns.count]
                blackHole(f.graph.canAssign(actor: actor, target: target, role: role, now: f.now))
            }
        }
        // The load of a start or full reload: SQLite → AccessGraph, one read transaction.
        Benchmark("graph build (SQLite load) \(n)",
                  configuration: .init(metrics: [.wallClock, .peakMemoryResident], scalingFactor: .one, maxDuration: .seconds(20), maxIterations: 5),
                  closure: { benchmark in
                      benchmark.startMeasurement()
                      for _ in benchmark.scaledIterations {
                          blackHole(try? Store(path: size.db, readOnly: true).loadGraph())
                      }
                  },
                  setup: { try Fixture.ensureDatabase(size) })
    }
}

import Foundation
import PIAMClient
import PIAMDemo
import PIAMEngine
import PIAMStore
import Testing

/// A primary database replicated by Litestream to N replicas on this machine, each followed by
/// `litestream restore -f` into a database of its own and served by a piamd in replica mode —
/// the deployment of the README's "Beyond one machine", every process real.
///
/// The replica store is a file replica, or an S3 bucket served by moto on loopback. The primary
/// writes a heartbeat (`piamctl heartbeat`) every 200 ms.
final class Fleet: @unchecked Sendable {
    struct Replica {
        let dir: String
        var db: String { dir + "/piam.db" }
        var socket: String { dir + "/d.sock" }
        var follower: Process?
        var daemon: DaemonProcess?
    }

    let f: Fixture
    let s3Port: UInt16?
    var moto: Process?
    var replicate: Process?
    var heartbeat: Process?
    var replicas: [Replica] = []
    let maxAgeMS: Int
    /// Litestream's and moto's environment: credentials for the local S3, and no AWS_CA_BUNDLE
    /// (Litestream's S3 client refuses a custom CA bundle with its own HTTP client).
    let env: [String: String]

    init(replicas n: Int, s3: Bool, maxAgeMS: Int = 3000) async throws {
        f = try Fixture()
        self.maxAgeMS = maxAgeMS
        var e = ProcessInfo.processInfo.environment
        e.removeValue(forKey: "AWS_CA_BUNDLE")
        e["AWS_ACCESS_KEY_ID"] = "piam-test"
        e["AWS_SECRET_ACCESS_KEY"] = "piam-test"
        e["AWS_REGION"] = "us-east-1"
        e["PIAM_FOLLOW_INTERVAL"] = "100ms"
        env = e
        s3Port = s3 ? freeLoopbackPort() : nil
        if s3 { try await startStore() }
        let replica: [String] = s3Port.map { port in
            ["      - type: s3", "        bucket: piam", "        path: graph", "        endpoint: http://127.0.0.1:\(port)",
             "        region: us-east-1", "        force-path-style: true", "        sync-interval: 100ms"]
        } ?? ["      - url: file://\(f.path("replica"))", "        sync-interval: 100ms"]
        // The test's settings: every interval 100 ms (Config/litestream.yml documents the
        // production ones and their trade-off against object-store requests).
        let yml = ["dbs:", "  - path: \(f.db)", "    monitor-interval: 100ms", "    replicas:"] + replica
        try (yml.joined(separator: "\n") + "\n").write(toFile: f.path("litestream.yml"), atomically: true, encoding: .utf8)
        try startReplicate()
        // Followers need the first snapshot in the replica store ("no matching backup files").
        let deadline = ContinuousClock.now + .seconds(60)
        while !log("replicate").contains("snapshot complete") {
            guard ContinuousClock.now < deadline, replicate?.isRunning == true else {
                throw PIAMError(.server, "litestream replicate wrote no snapshot: \(log("replicate").suffix(1500))")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        heartbeat = try start(builtBinary("piamctl"), ["heartbeat", "--db", f.db, "--interval-ms", "200"], log: "heartbeat")
        for i in 0..<n {
            let dir = f.path("replica-\(i)")
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            replicas.append(Replica(dir: dir))
            try startFollower(i)
        }
        for i in 0..<n { try await startDaemon(i) }
    }

    /// Starts a process with the fleet's environment, output to `<log>.log` in the fixture.
    func start(_ executable: String, _ args: [String], log: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        p.environment = env
        let path = f.path(log + ".log")
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        let h = FileHandle(forWritingAtPath: path)!
        h.seekToEndOfFile()
        p.standardOutput = h
        p.standardError = h
        p.standardInput = FileHandle.nullDevice
        try p.run()
        return p
    }

    func log(_ name: String) -> String { (try? String(contentsOfFile: f.path(name + ".log"), encoding: .utf8)) ?? "" }

    func tool(_ name: String) throws -> String { try #require(onPath(name), "\(name) is not installed (.ci/run installs it from PyPI)") }

    /// moto's S3 on loopback, with the bucket created.
    func startStore() async throws {
        guard let port = s3Port else { return }
        moto = try start(try tool("moto_server"), ["-H", "127.0.0.1", "-p", String(port)], log: "moto")
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            let r = try await runProcess(try tool("python3"), ["-c", """
                import boto3
                s = boto3.client('s3', endpoint_url='http://127.0.0.1:\(port)', region_name='us-east-1',
                                 aws_access_key_id='piam-test', aws_secret_access_key='piam-test')
                if 'piam' not in [b['Name'] for b in s.list_buckets().get('Buckets', [])]:
                    s.create_bucket(Bucket='piam')
                """], in: f)
            if r.code == 0 { return }
            guard ContinuousClock.now < deadline, moto?.isRunning == true else {
                throw PIAMError(.server, "moto did not start: \(r.err.suffix(500)) \(log("moto").suffix(500))")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    /// The processes whose parent is `pid` (from /proc), and theirs.
    static func descendants(of pid: Int32) -> [Int32] {
        let all = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        var children: [Int32] = []
        for name in all {
            guard let child = Int32(name),
                  let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, Int32(fields[1]) == pid { children.append(child) }
        }
        return children + children.flatMap { descendants(of: $0) }
    }

    /// Stops `p` and everything it started: SIGTERM, then SIGKILL for whatever is left after
    /// 10 s (Litestream finishing a request; moto's server may not stop on SIGTERM).
    func stop(_ p: Process?) async {
        guard let p, p.isRunning else { return }
        let tree = [p.processIdentifier] + Self.descendants(of: p.processIdentifier)
        p.terminate()
        let deadline = ContinuousClock.now + .seconds(10)
        // Alive: still in /proc and not a zombie.
        func alive() -> [Int32] {
            tree.filter { ((try? String(contentsOfFile: "/proc/\($0)/stat", encoding: .utf8)).map { !$0.contains(") Z ") }) ?? false }
        }
        while !alive().isEmpty && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        for pid in alive() { kill(pid, SIGKILL) }
        while p.isRunning { try? await Task.sleep(for: .milliseconds(10)) }
    }

    func stopStore() async {
        await stop(moto)
        moto = nil
    }

    func startReplicate() throws {
        replicate = try start(try tool("litestream"), ["replicate", "-config", f.path("litestream.yml")], log: "replicate")
    }

    /// The repository's `systemd/piam-replica-follow` (Litestream's follow mode, restoring anew
    /// when Litestream cannot resume), as the replica unit runs it.
    static let followScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("systemd/piam-replica-follow").path

    /// Follows the replica store into replica `i`'s database (resuming where it stopped, or
    /// restoring anew).
    func startFollower(_ i: Int) throws {
        _ = try tool("litestream")
        let source = s3Port == nil ? ["file://" + f.path("replica")] : ["-config", f.path("litestream.yml"), f.db]
        replicas[i].follower = try start(Self.followScript, [replicas[i].db] + source, log: "follower-\(i)")
    }

    func stopFollower(_ i: Int) async {
        await stop(replicas[i].follower)
        replicas[i].follower = nil
    }

    /// piamd in replica mode on replica `i` (once the follower has written its database).
    func startDaemon(_ i: Int) async throws {
        let r = replicas[i]
        let deadline = ContinuousClock.now + .seconds(60)
        while !(FileManager.default.fileExists(atPath: r.db + "-txid") && FileManager.default.fileExists(atPath: r.db)) {
            guard ContinuousClock.now < deadline else { throw PIAMError(.server, "replica \(i) never restored: \(log("follower-\(i)").suffix(800)) \(log("replicate").suffix(800))") }
            try await Task.sleep(for: .milliseconds(20))
        }
        replicas[i].daemon = try await DaemonProcess(
            f, args: ["--db", r.db, "--socket", r.socket],
            env: ["PIAMD_DATABASE_REPLICA": "true", "PIAMD_DATABASE_REPLICA_MAX_AGE_MS": String(maxAgeMS),
                  "PIAMD_CONSISTENCY_TIMEOUT_MS": "15000", "PIAMD_RELOAD_POLL_MS": "500"],
            executable: builtBinary("piamd"), socket: r.socket)
    }

    func client(_ i: Int) async throws -> PIAMClient { try await PIAMClient.connect(socketPath: replicas[i].socket) }

    /// The primary's revision now.
    func revision() throws -> Int64 { try Store(path: f.db, readOnly: true).revision() }

    /// Every replica answers `checks` at `revision` (min_revision) exactly as a fresh load of the
    /// primary does; the number of disagreements (each recorded as an issue).
    func compareAll(revision: Int64, checks: [CheckRequest], fresh: AccessGraph, _ context: Comment) async throws -> Int {
        let expected = fresh.checkBatch(checks, semantic: .executeAll, now: QueryEvaluatorClock.now())
        var bad = 0
        for i in replicas.indices {
            let c = try await client(i)
            defer { Task { await c.close() } }
            let a: Answer<[Decision]>
            do {
                a = try await c.checkBatch(checks, semantic: .executeAll, minRevision: revision)
            } catch {
                // What the replication processes said, for the record.
                Issue.record("replica \(i): \(error) — \(context)\nfollower: \(log("follower-\(i)").suffix(1500))\nreplicate: \(log("replicate").suffix(1500))\npiamd: \(replicas[i].daemon?.log.suffix(1500) ?? "")")
                throw error
            }
            if a.revision != revision || a.value != expected {
                bad += 1
                let diff = zip(checks, zip(a.value, expected)).filter { $0.1.0 != $0.1.1 }.prefix(3)
                Issue.record("replica \(i) at revision \(a.revision) (wanted \(revision)): \(diff.map { "\($0.0): replica \($0.1.0), primary \($0.1.1)" }) — \(context)")
            }
        }
        return bad
    }

    /// Anything still running when the fleet goes away (a test that threw) is killed.
    deinit {
        for p in [moto, replicate, heartbeat] + replicas.map(\.follower) {
            if let p, p.isRunning {
                for pid in Self.descendants(of: p.processIdentifier) + [p.processIdentifier] { kill(pid, SIGKILL) }
            }
        }
    }

    func stopAll() async {
        for i in replicas.indices {
            if let d = replicas[i].daemon { await d.stop() }
            await stopFollower(i)
        }
        for p in [heartbeat, replicate] { await stop(p) }
        await stopStore()
    }
}

/// One random administrative write by the business's host admin through piamctl on the primary:
/// suspend/reactivate a user or a partner org, grant or revoke partner-user. Refusals write no
/// graph row; the caller counts the writes that moved the revision.
func randomAdminWrite(_ fleet: Fleet, rng: inout SplitMix64) async throws -> [String] {
    let store = try Store(path: fleet.f.db, readOnly: true)
    // Not invitations and registrations: those are accepted or approved, not (re)activated.
    let users = try store.db.prepare("SELECT id FROM users WHERE org <> 'host' AND status <> 'invited' ORDER BY id").rows { $0.text(0) }
    let orgs = try store.db.prepare("SELECT id FROM orgs WHERE kind = 'partner' AND status <> 'pending' ORDER BY id").rows { $0.text(0) }
    let u = users.randomElement(using: &rng)!, o = orgs.randomElement(using: &rng)!
    let args: [String]
    switch Int.random(in: 0..<6, using: &rng) {
    case 0: args = ["user", "suspend", u]
    case 1: args = ["user", "reactivate", u]
    case 2: args = ["org", "suspend", o]
    case 3: args = ["org", "reactivate", o]
    case 4: args = ["grant", u, "partner-user"]
    default: args = ["revoke", u, "partner-user"]
    }
    let full = args + ["--as", "nina.hq", "--db", fleet.f.db]
    let r = try await piamctl(full, in: fleet.f)
    // 0 done, 1 refused; 2 only for revoking an assignment that is not there.
    #expect(r.code == 0 || r.code == 1 || r.err.contains("holds no role"), "\(r.err) (exit \(r.code)) — piamctl \(full.joined(separator: " "))")
    return args
}

@Suite("replicas: piamd on every proxy host, fed by Litestream (real processes)", .serialized)
struct ReplicaTests {
    @Test("three replicas follow the primary through 200 random administrative writes: after each, every replica answers as a fresh load of the primary (min_revision); zero disagreements, zero torn reads")
    func threeReplicasFollow() async throws {
        let fleet = try await Fleet(replicas: 3, s3: false)
        let seed = ProcessInfo.processInfo.environment["PIAM_DIFF_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 0..<UInt64.max)
        var rng = SplitMix64(seed: seed)
        var writes = 0, bad = 0, attempts = 0
        while writes < 200 && bad == 0 && attempts < 600 {
            attempts += 1
            let before = try fleet.revision()
            let op = try await randomAdminWrite(fleet, rng: &rng)
            let rev = try fleet.revision()
            guard rev != before else { continue }  // refused: nothing to replicate
            writes += 1
            let fresh = try fleet.f.loaded()
            #expect(fresh.revision == rev)
            var checks = randomChecks(fresh.graph, count: 24, seed: rng.next())
            if op.count > 2 {
                checks.append(CheckRequest(subject: op[2], action: "view", resource: ResourceRef(type: "org", id: fresh.graph.org(ofUser: op[2]) ?? "host")))
            }
            bad += try await fleet.compareAll(revision: rev, checks: checks, fresh: fresh.graph, "seed \(seed) (PIAM_DIFF_SEED), write \(writes): \(op)")
        }
        #expect(writes == 200, "seed \(seed): \(writes) writes in \(attempts) attempts")
        #expect(bad == 0)
        for i in fleet.replicas.indices {
            let c = try await fleet.client(i)
            let doc = try await statusDocument(c)
            let fr = doc["freshness"] as? [String: Any] ?? [:]
            #expect(doc["state"] as? String == "serving", "replica \(i): \(doc)")
            #expect(fr["replica"] as? Bool == true && (fr["replica_age_ms"] as? Int ?? .max) < fleet.maxAgeMS, "replica \(i): \(fr)")
            await c.close()
        }
        await fleet.stopAll()
    }

    @Test("faults: object store down 30 s (age reported, 503 past the limit, then caught up), follower restarted, piamd restarted, journal compacted on the primary — every replica ends equal to the primary")
    func faults() async throws {
        let fleet = try await Fleet(replicas: 2, s3: true, maxAgeMS: 3000)
        var rng = SplitMix64(seed: 19)
        let http = fleet.f.path("h0.sock")
        // Replica 0 also answers HTTP, for /healthz and /metrics.
        if let d = fleet.replicas[0].daemon { await d.stop() }
        fleet.replicas[0].daemon = try await DaemonProcess(
            fleet.f, args: ["--db", fleet.replicas[0].db, "--socket", fleet.replicas[0].socket, "--http", "unix:" + http],
            env: ["PIAMD_DATABASE_REPLICA": "true", "PIAMD_DATABASE_REPLICA_MAX_AGE_MS": "3000",
                  "PIAMD_CONSISTENCY_TIMEOUT_MS": "15000", "PIAMD_RELOAD_POLL_MS": "500"],
            executable: builtBinary("piamd"), socket: fleet.replicas[0].socket)

        /// Writes until one moves the revision; returns it.
        func write() async throws -> Int64 {
            let before = try fleet.revision()
            for _ in 0..<50 {
                _ = try await randomAdminWrite(fleet, rng: &rng)
                let rev = try fleet.revision()
                if rev != before { return rev }
            }
            throw PIAMError(.server, "50 refused writes in a row")
        }
        func allEqual(_ what: Comment) async throws {
            let rev = try fleet.revision()
            let fresh = try fleet.f.loaded()
            let bad = try await fleet.compareAll(revision: rev, checks: randomChecks(fresh.graph, count: 64, seed: rng.next()), fresh: fresh.graph, what)
            #expect(bad == 0, what)
        }
        _ = try await write()
        try await allEqual("before the faults")

        print("fleet: 1. object store paused for 30 s")
        // 1. The object store is down for 30 s: the replicas keep answering from what they have,
        // report their age, and say degraded (503) past database.replica_max_age_ms.
        // Paused (SIGSTOP), not killed: moto keeps its objects in memory only, and a real store
        // that is unreachable for a while still has them when it comes back.
        let moto = try #require(fleet.moto)
        kill(moto.processIdentifier, SIGSTOP)
        let down = ContinuousClock.now
        var duringOutage: [Int64] = []
        for _ in 0..<3 { duringOutage.append(try await write()) }  // the primary keeps writing
        let c0 = try await fleet.client(0)
        let degraded = try await waitForStatus(c0) { $0["state"] as? String == "degraded" }
        let fr = degraded["freshness"] as? [String: Any] ?? [:]
        #expect(degraded["state"] as? String == "degraded", "\(degraded)")
        #expect((fr["replica_age_ms"] as? Int ?? 0) > 3000, "\(fr)")
        #expect((degraded["degraded_reason"] as? String)?.contains("replica is") == true, "\(degraded)")
        let health = try httpRequest(.unix(http), "GET", "/healthz")
        #expect(health.status == 503 && (health.json?["replica_age_ms"] as? Int ?? 0) > 3000, "\(health)")
        let metrics = try httpRequest(.unix(http), "GET", "/metrics").text
        let ageLine = metrics.split(separator: "\n").first { $0.hasPrefix("piam_replica_age_seconds ") }
        #expect(ageLine.flatMap { Double($0.split(separator: " ").last!) }.map { $0 > 3 } == true, "\(String(describing: ageLine))")
        // Still answering, from the last graph it has.
        #expect(try await c0.ping() < duringOutage.last!)
        let rest = Duration.seconds(30) - (ContinuousClock.now - down)
        if rest > .zero { try await Task.sleep(for: rest) }  // the outage lasts 30 s: a fault's length, not a wait for an event
        kill(moto.processIdentifier, SIGCONT)
        // Litestream retries by itself: the replicas catch up and are serving again.
        try await allEqual("after the object store came back")
        let back = try await waitForStatus(c0) { $0["state"] as? String == "serving" }
        #expect(back["state"] as? String == "serving", "\(back)")
        await c0.close()

        print("fleet: 2. follower restart")
        // 2. Replica 1's follower restarted (it resumes from its txid file).
        await fleet.stopFollower(1)
        _ = try await write()
        try fleet.startFollower(1)
        try await allEqual("after a follower restart")

        print("fleet: 3. piamd restart")
        // 3. piamd restarted on replica 1.
        if let d = fleet.replicas[1].daemon { await d.stop() }
        _ = try await write()
        try await fleet.startDaemon(1)
        try await allEqual("after a piamd restart")

        print("fleet: 4. journal compaction")
        // 4. The primary compacts its journal past the replicas' revision: full reloads.
        let r = try await piamctl(["journal", "compact", "--keep", "0", "--db", fleet.f.db], in: fleet.f)
        #expect(r.code == 0, "\(r.err)")
        _ = try await write()
        try await allEqual("after the primary compacted its journal")
        for i in fleet.replicas.indices {
            let c = try await fleet.client(i)
            let doc = try await waitForStatus(c) { $0["state"] as? String == "serving" }
            #expect(doc["state"] as? String == "serving", "replica \(i): \(doc)")
            await c.close()
        }
        await fleet.stopAll()
    }

    @Test("replica mode holds no connection between reads (Litestream's follower would freeze): the daemon's open descriptors never include the replica between cycles")
    func noLongLivedConnection() async throws {
        let fleet = try await Fleet(replicas: 1, s3: false)
        let pid = try #require(fleet.replicas[0].daemon).process.processIdentifier
        let db = fleet.replicas[0].db
        // Sample piamd's descriptors: a cycle takes milliseconds, so nearly every sample must
        // find the database closed (a long-lived connection would show in every one).
        var open = 0, samples = 0
        for _ in 0..<100 {
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
            let targets = fds.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)") }
            if targets.contains(where: { $0 == db || $0 == db + "-wal" }) { open += 1 }
            samples += 1
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(open < samples / 4, "the replica was open in \(open) of \(samples) samples")
        await fleet.stopAll()
    }
}

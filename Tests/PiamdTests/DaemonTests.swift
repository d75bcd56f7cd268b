import Foundation
import PIAMClient
import PIAMDemo
import PIAMEngine
import PIAMStore
import PIAMWire
import Testing

/// Random CHECK requests over the graph's users and resources (built-in types included).
func randomChecks(_ g: AccessGraph, count: Int, seed: UInt64) -> [CheckRequest] {
    var rng = SplitMix64(seed: seed)
    let users = g.allUserIDs, orgs = g.allOrgIDs, res = g.allResources
    let actions = ["read", "submit", "view", "update", "suspend", "assign_role", "withdraw", "approve", "*"]
    return (0..<count).map { _ in
        let subject = Int.random(in: 0..<10, using: &rng) == 0 ? "nobody-\(Int.random(in: 0..<9, using: &rng))" : users.randomElement(using: &rng)!
        let action = actions.randomElement(using: &rng)!
        let resource: ResourceRef
        switch Int.random(in: 0..<4, using: &rng) {
        case 0: resource = ResourceRef(type: "user", id: users.randomElement(using: &rng)!)
        case 1: resource = ResourceRef(type: "org", id: orgs.randomElement(using: &rng)!)
        default:
            let r = res.randomElement(using: &rng)!
            resource = ResourceRef(type: r.type, id: r.id)
        }
        return CheckRequest(subject: subject, action: action, resource: resource)
    }
}

@Suite("piamd (the real binary)", .serialized)
struct DaemonTests {
    @Test("every opcode through the client equals the in-process engine at the same revision")
    func everyOpcode() async throws {
        let f = try Fixture()
        let d = try await DaemonProcess(f)
        let c = try await d.client()
        let local = try f.loaded()
        let g = local.graph
        let now = QueryEvaluatorClock.now()

        let checks = randomChecks(g, count: 300, seed: 7)
        for r in checks.prefix(100) {
            let a = try await c.check(r)
            #expect(a.revision == local.revision)
            #expect(a.value == g.check(r, now: now), "\(r)")
        }
        for semantic in BatchSemantic.allCases {
            let a = try await c.checkBatch(checks, semantic: semantic)
            #expect(a.value == g.checkBatch(checks, semantic: semantic, now: now))
        }
        let r0 = CheckRequest(subject: "acme-brokers-north-admin", action: "view", resource: ResourceRef(type: "user", id: "bluesky-agency-admin"))
        let e = try await c.explain(r0)
        let trace = try JSONDecoder().decode(Explanation.self, from: Data(e.value.trace.utf8))
        #expect(trace == g.explain(r0, now: now))
        #expect(e.value.decision == .deny(.outOfScope))

        for subject in g.allUserIDs.prefix(15) {
            for type in ["claim", "user", "org", "document"] {
                let all = try await c.allResources(subject: subject, action: "read", type: type, pageSize: 7)
                var local: [String] = []
                var cursor: String? = nil
                repeat {
                    let p = try g.listResources(subject: subject, action: "read", type: type, cursor: cursor, limit: 1000, now: now)
                    local += p.items
                    cursor = p.nextCursor
                } while cursor != nil
                #expect(all.value == local, "\(subject) \(type)")
            }
        }
        for r in g.allResources.prefix(10) {
            let ref = ResourceRef(type: r.type, id: r.id)
            let all = try await c.allSubjects(action: "read", resource: ref, pageSize: 5)
            let p = try g.listSubjects(action: "read", resource: ref, cursor: nil, limit: 100_000, now: now)
            #expect(all.value == p.items)
            let subject = g.allUserIDs[7]
            #expect(try await c.listActions(subject: subject, resource: ref).value == g.listActions(subject: subject, resource: ref, now: now))
        }
        // A bad cursor is the caller's error, not the daemon's.
        await #expect(throws: PIAMError.self) { try await c.listSubjects(action: "read", resource: ResourceRef(type: "claim", id: "x"), cursor: "zz") }
        for (actor, target, role) in [("acme-brokers-admin", "acme-brokers-north-b1-agent1", "claims-agent"),
                                      ("acme-brokers-north-admin", "acme-brokers-north-b1-agent1", "host-admin")] {
            #expect(try await c.canAssign(actor: actor, target: target, role: role).value
                    == g.canAssign(actor: actor, target: target, role: role, scope: nil, now: now))
        }
        let status = try await c.status()
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(status.json.utf8)) as? [String: Any])
        #expect(doc["revision"] as? Int == Int(local.revision))
        #expect((doc["counts"] as? [String: Any])?["users"] as? Int == g.counts.users)
        #expect(doc["state"] as? String == "serving")
        #expect(doc["connections"] as? Int ?? 0 >= 1)
        #expect(doc["uptime_s"] != nil && doc["last_reload"] != nil)
        #expect(try await c.ping() == local.revision)
        await c.close()
        #expect(await d.stop() == 0)
    }

    @Test("10,000 pipelined requests on one connection are answered in order")
    func pipelined() async throws {
        let f = try Fixture()
        let d = try await DaemonProcess(f)
        let c = try await d.client()
        let g = try f.loaded().graph
        let now = QueryEvaluatorClock.now()
        let checks = randomChecks(g, count: 10_000, seed: 42)
        let requests = checks.enumerated().map { i, r in
            // Mix in other opcodes so order is visible across body shapes.
            i % 97 == 0 ? Request(body: .ping) : Request(body: .check(r))
        }
        let responses = try await c.send(requests)
        #expect(responses.count == 10_000)
        var previous: UInt32? = nil
        var mismatches = 0
        for (i, (req, resp)) in zip(requests, responses).enumerated() {
            #expect(resp.status == .ok)
            #expect(resp.opcodeByte == req.opcode.rawValue)
            if let p = previous { #expect(resp.requestID == p &+ 1) }
            previous = resp.requestID
            if case .check(let r) = req.body, resp.body != .decision(g.check(r, now: now)) { mismatches += 1 }
            if i % 97 == 0 { #expect(resp.body == .empty) }
        }
        #expect(mismatches == 0)
        await c.close()
        await d.stop()
    }

    @Test("min_revision: beyond the graph gives STALE after consistency.timeout_ms; a fresh write is seen at once")
    func minRevision() async throws {
        let f = try Fixture()
        let d = try await DaemonProcess(f, env: ["PIAMD_CONSISTENCY_TIMEOUT_MS": "300", "PIAMD_RELOAD_POLL_MS": "0"])
        let c = try await d.client()
        let rev = try await c.ping()
        let start = ContinuousClock.now
        do {
            try await c.ping(minRevision: rev + 1000)
            Issue.record("expected STALE")
        } catch {
            #expect(error.code == .stale)
            #expect(error.message.contains("STALE"))
        }
        let waited = ContinuousClock.now - start
        #expect(waited >= .milliseconds(290) && waited < .seconds(5), "\(waited)")
        // Read-your-writes: the write's revision, asked for at once (polling is off).
        let written = try f.touch()
        #expect(written > rev)
        let seen = try await c.ping(minRevision: written)
        #expect(seen >= written)
        await c.close()
        await d.stop()
    }

    @Test("SIGHUP reloads while a client hammers the socket: no request is lost")
    func sighupUnderLoad() async throws {
        let f = try Fixture()
        let d = try await DaemonProcess(f, env: ["PIAMD_RELOAD_POLL_MS": "0"])
        let g = try f.loaded().graph
        let checks = randomChecks(g, count: 200, seed: 3)
        let stop = ManagedFlag()
        let rounds = ManagedCounter()
        let hammer = Task { () -> (sent: Int, ok: Int, revisions: Set<UInt64>) in
            let c = try await d.client()
            var sent = 0, ok = 0
            var revisions = Set<UInt64>()
            while !stop.isSet {
                let rs = try await c.send(checks.map { Request(body: .check($0)) })
                sent += checks.count
                ok += rs.filter { $0.status == .ok }.count
                for r in rs { revisions.insert(r.revision) }
                rounds.increment()
            }
            await c.close()
            return (sent, ok, revisions)
        }
        func sighups() -> Int { d.log.components(separatedBy: "cause=sighup").count - 1 }
        for i in 0..<5 {
            // Each reload lands while the hammer is mid-flight: wait for it to complete rounds first.
            let seen = rounds.value
            try await waitFor("the hammer's next rounds") { rounds.value >= seen + 2 }
            try f.touch(i)
            d.signal(SIGHUP)
            try await waitFor("reload \(i + 1) after SIGHUP") { sighups() >= i + 1 }
        }
        let last = rounds.value
        try await waitFor("rounds answered after the last reload") { rounds.value >= last + 2 }
        stop.set()
        let result = try await hammer.value
        #expect(result.sent > 0)
        #expect(result.ok == result.sent, "every request answered OK")
        #expect(result.revisions.count >= 2, "answers came from more than one graph: \(result.revisions)")
        #expect(d.log.components(separatedBy: "cause=sighup").count - 1 >= 1)
        #expect(await d.stop() == 0)
    }

    @Test("malformed frames on the real socket: answered, connection usable; oversize closes")
    func malformedOnSocket() async throws {
        let f = try Fixture()
        let d = try await DaemonProcess(f, env: ["PIAMD_LIMITS_MAX_FRAME_BYTES": "1024"])
        let ping: [UInt8] = [1, 0x09, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0]
        let conn = try RawConnection(path: d.socket)
        for (bad, expected) in [([2] + ping.dropFirst(), Status.unsupportedVersion), ([1, 0x42] + ping.dropFirst(2), .unknownOpcode),
                                (ping + [0xFF], .badRequest), ([1, 1, 0], .badRequest)] as [([UInt8], Status)] {
            conn.sendFrame(bad)
            conn.sendFrame(ping)
            let r1 = try #require(conn.readFrame())
            let r2 = try #require(conn.readFrame())
            #expect(status(ofRaw: r1) == expected.rawValue)
            #expect(status(ofRaw: r2) == 0 && requestID(ofRaw: r2) == 5)
        }
        // Oversize: FRAME_TOO_LARGE with request id 0, then EOF.
        conn.send([0, 0, 0x10, 0x00])  // 4096 > 1024
        let r = try #require(conn.readFrame())
        #expect(status(ofRaw: r) == Status.frameTooLarge.rawValue && requestID(ofRaw: r) == 0)
        #expect(conn.readsEOF())
        // Other connections are unaffected.
        let c = try await d.client()
        #expect(try await c.ping() > 0)
        await c.close()
        #expect(await d.stop() == 0)
    }

    @Test("limits.max_connections: the next connection gets OVERLOADED and is closed")
    func maxConnections() async throws {
        let f = try Fixture()
        let d = try await DaemonProcess(f, env: ["PIAMD_LIMITS_MAX_CONNECTIONS": "2"])
        // A connection that answers PING holds a slot; waitUntilServing's own may still be
        // closing, so a refused attempt is retried (until a deadline).
        func admitted() async throws -> PIAMClient {
            var got: PIAMClient?
            try await waitFor("a free slot") {
                guard let c = try? await d.client() else { return false }
                if (try? await c.ping()) != nil { got = c; return true }
                await c.close()
                return false
            }
            return got!
        }
        let a = try await admitted(), b = try await admitted()
        let third = try await d.client()
        do {
            try await third.ping()
            Issue.record("expected OVERLOADED")
        } catch {
            #expect(error.code == .unavailable || error.code == .connection, "\(error)")
        }
        // A call on the closed connection fails at once; it must never wait forever.
        let failedFast = await withTaskGroup(of: Bool.self) { g in
            g.addTask { (try? await third.ping()) == nil }
            g.addTask { try? await Task.sleep(for: .seconds(5)); return false }
            let r = await g.next()!
            g.cancelAll()
            return r
        }
        #expect(failedFast)
        let raw = try RawConnection(path: d.socket)
        let frame = try #require(raw.readFrame())
        #expect(status(ofRaw: frame) == Status.overloaded.rawValue)
        #expect(raw.readsEOF())
        await a.close()
        let again = try await admitted()
        #expect(try await again.ping() > 0, "a slot freed by a closed connection is reused")
        for c in [b, third, again] { await c.close() }
        await d.stop()
    }

    @Test("socket.allowed_uids: a peer uid not in the allowlist is refused and logged")
    func peerAllowlist() async throws {
        let f = try Fixture()
        let me = getuid()
        let refused = try await DaemonProcess(f, env: ["PIAMD_SOCKET_ALLOWED_UIDS": "\(me &+ 4242)"], waitForReady: false)
        let deadline = ContinuousClock.now + .seconds(20)
        while !refused.log.contains("listening") && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        let c = try await refused.client()
        await #expect(throws: PIAMError.self) { try await c.ping() }
        #expect(refused.log.contains("connection refused: peer not in socket.allowed_uids"))
        #expect(refused.log.contains("peer_uid=\(me)"))
        await c.close()
        await refused.stop()

        let f2 = try Fixture()
        let allowed = try await DaemonProcess(f2, env: ["PIAMD_SOCKET_ALLOWED_UIDS": "\(me &+ 4242),\(me)"])
        let c2 = try await allowed.client()
        #expect(try await c2.ping() > 0)
        await c2.close()
        await allowed.stop()
    }

    @Test("socket file mode comes from socket.mode; SIGTERM exits 0 and removes the socket")
    func socketModeAndShutdown() async throws {
        let f = try Fixture()
        let d = try await DaemonProcess(f, env: ["PIAMD_SOCKET_MODE": "0600"])
        let attrs = try FileManager.default.attributesOfItem(atPath: d.socket)
        #expect((attrs[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        #expect(await d.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: d.socket))
        #expect(d.log.contains("stopped"))
    }

    @Test("a second daemon refuses to take over a socket that is being served")
    func socketInUse() async throws {
        let f = try Fixture()
        let d = try await DaemonProcess(f)
        let second = try await DaemonProcess(f, waitForReady: false)
        #expect(await second.waitForExit() == 1)
        #expect(second.log.contains("already serving"))
        let c = try await d.client()
        #expect(try await c.ping() > 0)
        await c.close()
        await d.stop()
    }

    @Test("a broken database: the daemon keeps serving its last good graph, says degraded, and recovers")
    func degradedAndRecovered() async throws {
        let f = try Fixture()
        let d = try await DaemonProcess(f, env: ["PIAMD_RELOAD_POLL_MS": "100"])
        let c = try await d.client()
        let rev = try await c.ping()
        func state() async throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(try await c.status().json.utf8)) as? [String: Any])
        }
        // Move the database away (as a botched deployment would).
        let fm = FileManager.default
        for suffix in ["", "-wal", "-shm"] { try fm.moveItem(atPath: f.db + suffix, toPath: f.db + suffix + ".bak") }
        var s: [String: Any] = [:]
        for _ in 0..<100 {
            s = try await state()
            if s["state"] as? String == "degraded" { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(s["state"] as? String == "degraded")
        #expect((s["degraded_reason"] as? String)?.isEmpty == false)
        // Still answering from the last good graph.
        let a = try await c.check(subject: "carl.claims", action: "read", resource: ResourceRef(type: "claim", id: "CLM-00001"))
        #expect(a.revision == rev)
        // Companions first, the database last: piamd reopens the file the moment it reappears, and
        // opening it without its WAL would start a fresh one (and lose the committed frames).
        for suffix in ["-wal", "-shm", ""] { try fm.moveItem(atPath: f.db + suffix + ".bak", toPath: f.db + suffix) }
        for _ in 0..<100 {
            s = try await state()
            if s["state"] as? String == "serving" { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(s["state"] as? String == "serving")
        #expect(d.log.components(separatedBy: "degraded: serving the last good graph").count == 2, "logged once")
        #expect(d.log.contains("recovered"))
        await c.close()
        await d.stop()
    }

    @Test("limits.idle_timeout_ms closes a silent connection")
    func idleTimeout() async throws {
        let f = try Fixture()
        let d = try await DaemonProcess(f, env: ["PIAMD_LIMITS_IDLE_TIMEOUT_MS": "200"])
        let raw = try RawConnection(path: d.socket)
        let start = ContinuousClock.now
        #expect(raw.readsEOF())
        let waited = ContinuousClock.now - start
        #expect(waited >= .milliseconds(150) && waited < .seconds(4), "\(waited)")
        await d.stop()
    }

    @Test("configuration: JSON file, PIAMD_ environment overrides, clear errors")
    func configuration() async throws {
        let f = try Fixture(demo: false)
        let file = f.path("piamd.json")
        try #"{"socket": {"path": "/tmp/x.sock", "mode": "0640"}, "limits": {"max_list": 50}, "log": {"level": "debug"}}"#
            .write(toFile: file, atomically: true, encoding: .utf8)
        func run(_ args: [String], env: [String: String] = [:]) throws -> (Int32, String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: builtBinary("piamd"))
            p.arguments = args
            var e = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PIAMD_") }
            for (k, v) in env { e[k] = v }
            p.environment = e
            let out = Pipe()
            p.standardOutput = out
            p.standardError = out
            try p.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (p.terminationStatus, String(decoding: data, as: UTF8.self))
        }
        let (code, out) = try run(["--config", file, "--print-config"], env: ["PIAMD_LIMITS_MAX_LIST": "70"])
        #expect(code == 0)
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: [String: Any]])
        #expect(doc["socket"]?["path"] as? String == "/tmp/x.sock")
        #expect(doc["socket"]?["mode"] as? String == "0640")
        #expect(doc["limits"]?["max_list"] as? Int == 70, "the environment overrides the file")
        #expect(doc["limits"]?["max_frame_bytes"] as? Int == 1_048_576, "defaults fill the rest")
        #expect(doc["log"]?["level"] as? String == "debug")

        try #"{"socket": {"pth": "/tmp/x.sock"}}"#.write(toFile: file, atomically: true, encoding: .utf8)
        let (c2, o2) = try run(["--config", file])
        #expect(c2 == 1 && o2.contains("unknown key socket.pth"))
        try #"{"limits": {"max_list": "many"}}"#.write(toFile: file, atomically: true, encoding: .utf8)
        let (c3, o3) = try run(["--config", file])
        #expect(c3 == 1 && o3.contains("limits.max_list must be an integer"))
        let (c4, o4) = try run(["--print-config"], env: ["PIAMD_SOCKET_MODE": "rw"])
        #expect(c4 == 1 && o4.contains("socket.mode"))
        let (c5, o5) = try run(["--print-config"], env: ["PIAMD_SOKET_PATH": "/x"])
        #expect(c5 == 1 && o5.contains("PIAMD_SOKET_PATH"))
        // A database that cannot be loaded: exit 1, one clear line.
        let (c6, o6) = try run(["--db", f.path("missing.db"), "--socket", f.path("s.sock")])
        #expect(c6 == 1 && o6.contains("piamd:"))
        let (c7, o7) = try run(["--help"])
        #expect(c7 == 0 && o7.contains("consistency.timeout_ms") && o7.contains("SIGHUP"))
    }
}

/// A counter shared between tasks.
final class ManagedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    var value: Int { lock.withLock { n } }
    func increment() { lock.withLock { n += 1 } }
}

/// A flag shared between tasks.
final class ManagedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}

enum QueryEvaluatorClock {
    static func now() -> Timestamp { Timestamp(Date().timeIntervalSince1970 * 1000) }
}

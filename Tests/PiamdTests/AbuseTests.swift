import Foundation
import PIAMClient
import PIAMEngine
import PIAMWire
import Testing

/// The real daemon held under abuse: clients that never read, clients that trickle, a start
/// under `umask 000`, a flood of refused connects. Each test failed on the code before issue 14.
/// The figures are printed (`abuse:` lines) for the README's "Limits and abuse" section.
@Suite("piamd under abuse (the real binary)", .serialized)
struct AbuseTests {
    /// RSS growth allowed while one never-reading client per kind floods a face: the output bound
    /// (`limits.max_output_bytes`, 256 KiB) plus one read and the parsed requests of one read per
    /// connection — well under a MiB each; the rest is allocator slack.
    static let floodGrowthBound = 48 << 20
    /// What may stay above the quiet RSS once the flooders are gone.
    static let giveBackSlack = 16 << 20

    /// Floods `path` with one never-reading client per chunk for `seconds` while a good client's
    /// CHECKs are timed; returns (growth peak, quiet p99, flood p99, bytes sent).
    func flood(_ d: DaemonProcess, path: String, chunks: [[UInt8]], seconds: Double) async throws
        -> (growth: Int, quietP99: Double, floodP99: Double, sent: Int, after: Int, base: Int, quietP50: Double, floodP50: Double) {
        let good = try await d.client()
        _ = try await checkLatencies(good, count: 300)  // warm up
        let quiet = try await checkLatencies(good, count: 2000)
        let base = residentBytes(d.process.processIdentifier)
        let flooders = try chunks.map { try Flooder(path: path, chunk: $0) }
        let sampler = RSSSampler(pid: d.process.processIdentifier, valve: base + 8 * Self.floodGrowthBound) {
            for fl in flooders { fl.halt() }
        }
        // Let the flood fill every buffer it can before timing the good client.
        try await waitFor("the flooders to be held back", timeout: .seconds(20)) {
            flooders.allSatisfy { $0.bytesWritten > 0 }
        }
        var during: [Duration] = []
        let end = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < end { during += try await checkLatencies(good, count: 50) }
        let sent = flooders.reduce(0) { $0 + $1.bytesWritten }
        for fl in flooders { fl.stop() }
        let peak = sampler.stop()
        // Memory given back: wait for the RSS to come down (an event, with a deadline).
        var after = residentBytes(d.process.processIdentifier)
        _ = try? await waitFor("the RSS to come back down", timeout: .seconds(15), every: .milliseconds(100)) {
            after = residentBytes(d.process.processIdentifier)
            return after <= base + Self.giveBackSlack
        }
        #expect(try await good.ping() > 0, "the good client's connection survived the flood")
        await good.close()
        return (peak - base, percentile(quiet, 0.99), percentile(during, 0.99), sent, after, base,
                percentile(quiet, 0.5), percentile(during, 0.5))
    }

    @Test("binary socket: clients that pipeline CHECK, EXPLAIN and far min_revision and never read: RSS bounded and given back, good CHECKs barely slower")
    func neverReadingSocketClients() async throws {
        let f = try Fixture()
        let d = try await DaemonProcess(f)
        let check = CheckRequest(subject: "acme-brokers-north-admin", action: "view",
                                 resource: ResourceRef(type: "user", id: "acme-brokers-north-b1-agent1"))
        let chunks = [
            pipelined(Request(body: .check(check)), count: 2000),
            pipelined(Request(body: .explain(check)), count: 500),
            pipelined(Request(minRevision: 1 << 63, body: .check(check)), count: 2000),
        ]
        let r = try await flood(d, path: d.socket, chunks: chunks, seconds: 4)
        let ratio = r.floodP99 / max(r.quietP99, 1)
        print("abuse: socket flood: \(r.sent >> 20) MiB sent, RSS \(r.base >> 20) MiB quiet, +\(r.growth >> 20) MiB peak, \(r.after >> 20) MiB after; good CHECK p99 \(Int(r.quietP99)) µs quiet, \(Int(r.floodP99)) µs flooded = \(String(format: "%.2f", ratio))× (p50 \(Int(r.quietP50)) → \(Int(r.floodP50)) µs)")
        #expect(r.growth < Self.floodGrowthBound, "RSS grew \(r.growth >> 20) MiB under the flood")
        #expect(r.after <= r.base + Self.giveBackSlack, "RSS \(r.after >> 20) MiB after the flood, \(r.base >> 20) MiB before")
        // Generous for a shared 2-core machine (its quiet p99 alone moves 0.6–4.7 ms between
        // runs); the README reports the real ratios.
        #expect(r.floodP99 <= max(10 * r.quietP99, 20_000), "good CHECK p99 \(r.floodP99) µs under the flood vs \(r.quietP99) µs quiet")
        #expect(await d.stop() == 0)
    }

    @Test("HTTP face: a client that pipelines GET /metrics ×1000 per write and never reads: RSS bounded and given back; the socket's CHECKs barely slower")
    func neverReadingHTTPClient() async throws {
        let f = try Fixture()
        let (d, http) = try await startHTTPDaemon(f)
        guard case .unix(let path) = http else { Issue.record("expected a unix socket"); return }
        let metrics = Array(String(repeating: "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", count: 1000).utf8)
        let r = try await flood(d, path: path, chunks: [metrics, metrics], seconds: 4)
        let ratio = r.floodP99 / max(r.quietP99, 1)
        print("abuse: http flood: \(r.sent >> 10) KiB sent, RSS \(r.base >> 20) MiB quiet, +\(r.growth >> 20) MiB peak, \(r.after >> 20) MiB after; socket CHECK p99 \(Int(r.quietP99)) µs quiet, \(Int(r.floodP99)) µs flooded = \(String(format: "%.2f", ratio))× (p50 \(Int(r.quietP50)) → \(Int(r.floodP50)) µs)")
        #expect(r.growth < Self.floodGrowthBound, "RSS grew \(r.growth >> 20) MiB under the flood")
        #expect(r.after <= r.base + Self.giveBackSlack, "RSS \(r.after >> 20) MiB after the flood, \(r.base >> 20) MiB before")
        #expect(r.floodP99 <= max(10 * r.quietP99, 20_000), "socket CHECK p99 \(r.floodP99) µs under the flood vs \(r.quietP99) µs quiet")
        let h = try httpRequest(http, "GET", "/healthz")
        #expect(h.status == 200)
        #expect(await d.stop() == 0)
    }

    @Test("HTTP fast path: clients that pipeline forward-auth and evaluations ×1000 per write and never read: RSS bounded and given back")
    func neverReadingFastPathClients() async throws {
        let f = try Fixture()
        let (d, http) = try await startHTTPDaemon(f, env: ["PIAMD_FORWARD_AUTH_ROUTES": testRoutes])
        guard case .unix(let path) = http else { Issue.record("expected a unix socket"); return }
        let fa = "GET /forward-auth HTTP/1.1\r\nHost: x\r\nX-Forwarded-User: carl.claims\r\nX-Original-URI: /claims/CLM-HQ-0001\r\n\r\n"
        let body = #"{"subject":{"type":"user","id":"carl.claims"},"action":{"name":"read"},"resource":{"type":"claim","id":"CLM-HQ-0001"},"context":{"piam_details":true}}"#
        let ev = "POST /access/v1/evaluation HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body
        let r = try await flood(d, path: path, chunks: [Array(String(repeating: fa, count: 1000).utf8),
                                                        Array(String(repeating: ev, count: 1000).utf8)], seconds: 4)
        print("abuse: http fast-path flood: \(r.sent >> 10) KiB sent, RSS \(r.base >> 20) MiB quiet, +\(r.growth >> 20) MiB peak, \(r.after >> 20) MiB after; socket CHECK p99 \(Int(r.quietP99)) µs quiet, \(Int(r.floodP99)) µs flooded")
        #expect(r.growth < Self.floodGrowthBound, "RSS grew \(r.growth >> 20) MiB under the flood")
        #expect(r.after <= r.base + Self.giveBackSlack, "RSS \(r.after >> 20) MiB after the flood, \(r.base >> 20) MiB before")
        #expect(try httpRequest(http, "GET", "/healthz").status == 200)
        #expect(await d.stop() == 0)
    }

    @Test("limits.frame_timeout_ms: a frame or an HTTP request that trickles is answered and closed, though bytes keep coming")
    func frameTimeout() async throws {
        let f = try Fixture()
        let (d, http) = try await startHTTPDaemon(f, env: ["PIAMD_LIMITS_FRAME_TIMEOUT_MS": "600"])
        // Binary: a header announcing 64 bytes, then a byte every 100 ms (the idle timeout never fires).
        let socket = d.socket
        let (answer, eof, waited) = try await offPool { () throws -> ([UInt8]?, Bool, Duration) in
            let raw = try RawConnection(path: socket)
            raw.send([0, 0, 0, 64])
            let start = ContinuousClock.now
            let fd = raw.fd
            let stop = ManagedFlag(), stopped = DispatchSemaphore(value: 0)
            let trickle = Thread {
                defer { stopped.signal() }
                for _ in 0..<40 where !stop.isSet {
                    var byte: UInt8 = 0x41
                    if send(fd, &byte, 1, Int32(MSG_NOSIGNAL)) <= 0 { return }
                    usleep(100_000)  // the trickle's pace
                }
            }
            trickle.start()
            let answer = raw.readFrame()
            let eof = raw.readsEOF()
            let waited = ContinuousClock.now - start
            // Stop the trickle before the descriptor is closed (and its number reused).
            stop.set()
            stopped.wait()
            return (answer, eof, waited)
        }
        let frame = try #require(answer, "an answer before the close")
        #expect(status(ofRaw: frame) == Status.badRequest.rawValue && requestID(ofRaw: frame) == 0)
        #expect(String(decoding: frame.dropFirst(20), as: UTF8.self).contains("limits.frame_timeout_ms"))
        #expect(eof)
        #expect(waited >= .milliseconds(500) && waited < .seconds(3), "\(waited)")
        // HTTP: a request head that never ends → 408 and close.
        guard case .unix(let path) = http else { return }
        let text = try await offPool { () throws -> String in
            let h = try RawConnection(path: path)
            h.send(Array("GET /healthz HTTP/1.1\r\nHost: x\r\n".utf8))
            var got: [UInt8] = []
            while let b = h.readExactly(1) { got += b }
            return String(decoding: got, as: UTF8.self)
        }
        #expect(text.hasPrefix("HTTP/1.1 408"), "\(text)")
        #expect(text.contains("frame_timeout_ms"))
        // Whole messages are unaffected, and a connection may stay idle past the frame timeout.
        let c = try await d.client()
        do {
            _ = try await c.ping()
            try await Task.sleep(for: .milliseconds(900))  // longer than the frame timeout, on purpose: idle is not a timeout
            #expect(try await c.ping() > 0, "an idle connection outlives limits.frame_timeout_ms")
        } catch {
            Issue.record("\(error): \(d.log)")
        }
        await c.close()
        #expect(d.log.components(separatedBy: "frame_timeout_ms; closing connection").count - 1 <= 2, "rate-limited")
        #expect(await d.stop() == 0)
    }

    /// Starts good clients (root) every 50 ms for `seconds`, each on a fresh connection; returns
    /// (answered, failed).
    func goodClients(seconds: Double, _ attempt: @escaping @Sendable () async -> Bool) async -> (Int, Int) {
        var ok = 0, failed = 0
        let end = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < end {
            if await attempt() { ok += 1 } else { failed += 1 }
            try? await Task.sleep(for: .milliseconds(50))  // pacing of the good clients, not synchronisation
        }
        return (ok, failed)
    }

    @Test("slow clients at the connection limit, binary socket: good clients answered, the watchdog keeps pinging even with every slot taken")
    func slowlorisSocket() async throws {
        guard canRunAsNobody else { print("skipped: needs root, setpriv and /usr/bin/python3"); return }
        let f = try Fixture()
        let notify = try NotifySocket(path: f.path("notify.sock"))
        defer { notify.close() }
        let d = try await DaemonProcess(f, env: [
            "NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000", "PIAMD_SOCKET_MODE": "0666",
            "PIAMD_LIMITS_MAX_CONNECTIONS": "50", "PIAMD_LIMITS_MAX_CONNECTIONS_PER_UID": "40",
            "PIAMD_LIMITS_FRAME_TIMEOUT_MS": "2500",
        ])
        _ = try await notify.wait(for: "READY=1")
        let attacker = try runAsNobody(slowlorisScript, [d.socket, "60", "7", "wire"], in: f)
        try await waitFor("the attacker's 40 slots", timeout: .seconds(15)) {
            d.log.contains("limits.max_connections_per_uid reached")
        }
        let pingsBefore = notify.messages.filter { $0.contains("WATCHDOG=1") }.count
        let socket = d.socket
        let (ok, failed) = await goodClients(seconds: 4) {
            guard let c = try? await PIAMClient.connect(socketPath: socket) else { return false }
            defer { Task { await c.close() } }
            return (try? await c.check(subject: "carl.claims", action: "read", resource: ResourceRef(type: "claim", id: "CLM-HQ-0001"))) != nil
        }
        let pings = notify.messages.filter { $0.contains("WATCHDOG=1") }.count - pingsBefore
        let stats = try await output(of: attacker)
        print("abuse: slowloris socket: good clients \(ok) answered, \(failed) failed; WATCHDOG=1 ×\(pings) in 4 s; attacker \(stats)")
        #expect(failed == 0 && ok > 10, "good clients: \(ok) answered, \(failed) failed")
        #expect(pings >= 4, "WATCHDOG=1 ×\(pings) in 4 s (every 0.5 s expected)")
        #expect(stats.contains("\"closed_by_server\": ") && !stats.contains("\"closed_by_server\": 0,"),
                "the frame timeout closed trickling connections: \(stats)")
        // Every slot taken (root squatters fill what the attacker left): the probe still gets in.
        let socket2 = d.socket
        let squatters = try await offPool { () throws -> [Int32] in
            (0..<12).map { _ in
                let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
                _ = withUnixAddress(socket2) { connect(fd, $0, $1) }
                return fd
            }
        }
        defer { for fd in squatters { close(fd) } }
        let before = notify.messages.filter { $0.contains("WATCHDOG=1") }.count
        try await waitFor("three watchdog pings with every slot taken", timeout: .seconds(5)) {
            notify.messages.filter { $0.contains("WATCHDOG=1") }.count >= before + 3
        }
        let refusedLines = d.log.components(separatedBy: "connection refused").count - 1
        #expect(refusedLines <= 6, "refusals are rate-limited: \(refusedLines) lines")
        #expect(await d.stop() == 0)
    }

    @Test("slow clients at the connection limit, HTTP face: good requests answered, the watchdog keeps pinging")
    func slowlorisHTTP() async throws {
        guard canRunAsNobody else { print("skipped: needs root, setpriv and /usr/bin/python3"); return }
        let f = try Fixture()
        let notify = try NotifySocket(path: f.path("notify.sock"))
        defer { notify.close() }
        let (d, http) = try await startHTTPDaemon(f, env: [
            "NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000", "PIAMD_HTTP_SOCKET_MODE": "0666",
            "PIAMD_LIMITS_MAX_CONNECTIONS": "50", "PIAMD_LIMITS_MAX_CONNECTIONS_PER_UID": "40",
            "PIAMD_LIMITS_FRAME_TIMEOUT_MS": "2500",
        ])
        guard case .unix(let path) = http else { return }
        let attacker = try runAsNobody(slowlorisScript, [path, "60", "7", "http"], in: f)
        try await waitFor("the attacker's 40 slots", timeout: .seconds(15)) {
            d.log.contains("limits.max_connections_per_uid reached")
        }
        let pingsBefore = notify.messages.filter { $0.contains("WATCHDOG=1") }.count
        let (ok, failed) = await goodClients(seconds: 4) {
            (try? await offPool { try httpRequest(http, "GET", "/healthz") })?.status == 200
        }
        let pings = notify.messages.filter { $0.contains("WATCHDOG=1") }.count - pingsBefore
        let stats = try await output(of: attacker)
        print("abuse: slowloris http: good requests \(ok) answered, \(failed) failed; WATCHDOG=1 ×\(pings) in 4 s; attacker \(stats)")
        #expect(failed == 0 && ok > 10, "good requests: \(ok) answered, \(failed) failed")
        #expect(pings >= 4, "WATCHDOG=1 ×\(pings) in 4 s")
        #expect(!stats.contains("\"closed_by_server\": 0,"), "the frame timeout closed trickling heads: \(stats)")
        #expect(await d.stop() == 0)
    }

    @Test("the socket's birth: under umask 000, 0 of 50 starts answer a client without permission")
    func umaskRace() async throws {
        guard canRunAsNobody else { print("skipped: needs root, setpriv and /usr/bin/python3"); return }
        let f = try Fixture(demo: false)
        let stop = f.path("stop")
        // nobody connects as fast as it can and counts the PINGs answered.
        let prober = try runAsNobody(#"""
            import os, socket, struct, sys
            path, stop = sys.argv[1], sys.argv[2]
            ping = struct.pack(">I", 16) + bytes([1, 9, 0, 0, 0, 0, 0, 1]) + bytes(8)
            answered = attempts = 0
            while not os.path.exists(stop):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(path)
                    attempts += 1
                    s.settimeout(2)
                    s.sendall(ping)
                    if len(s.recv(64)) >= 4:
                        answered += 1
                except OSError:
                    pass
                finally:
                    s.close()
            print(answered, attempts)
            """#, [f.socket, stop], in: f)
        chmod(f.dir.path, 0o777)  // the prober writes nothing, but may look; the socket's own mode decides
        var starts = 0
        for _ in 0..<50 {
            let d = try await DaemonProcess(f, args: ["-c", "umask 000; exec \"$0\" --db \"$1\" --socket \"$2\"",
                                                      ProcessInfo.processInfo.environment["PIAM_TEST_PIAMD"] ?? builtBinary("piamd"),
                                                      f.db, f.socket],
                                            executable: "/bin/sh")
            let mode = (try FileManager.default.attributesOfItem(atPath: f.socket)[.posixPermissions] as? NSNumber)?.intValue
            #expect(mode == 0o660, "the socket ends 0660")
            #expect(await d.stop() == 0)
            starts += 1
        }
        _ = FileManager.default.createFile(atPath: stop, contents: nil)
        let out = try await output(of: prober).split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        print("abuse: umask 000: \(out.first ?? -1) PINGs answered to nobody in \(starts) starts (\(out.last ?? -1) connects got through)")
        #expect(out.count == 2 && out[0] == 0, "nobody was answered: \(out)")
        // No staging directory left behind.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: f.dir.path).filter { $0.hasPrefix(".piamd-") }
        #expect(leftovers.isEmpty, "\(leftovers)")
    }

    @Test("2,000 refused connects write a handful of log lines with a count, not 2,000")
    func refusalsRateLimited() async throws {
        let f = try Fixture()
        let d = try await DaemonProcess(f, env: ["PIAMD_SOCKET_ALLOWED_UIDS": "\(getuid() &+ 4242)"], waitForReady: false)
        try await waitFor("listening", timeout: .seconds(20)) { d.log.contains("listening") }
        let socket = d.socket
        try await offPool {
            for _ in 0..<2000 {
                let raw = try RawConnection(path: socket)
                _ = raw.readsEOF()
            }
        }
        // The count of the suppressed ones is reported within the interval (10 s).
        try await waitFor("the count line", timeout: .seconds(15), every: .milliseconds(100)) {
            d.log.contains("count=")
        }
        let lines = d.log.split(separator: "\n").filter { $0.contains("connection refused: peer not in socket.allowed_uids") }
        print("abuse: 2,000 refused connects → \(lines.count) log lines: \(lines.map { String($0.suffix(60)) })")
        #expect(lines.count <= 3, "\(lines.count) lines")
        let counted = lines.compactMap { l in l.split(separator: " ").first { $0.hasPrefix("count=") }.flatMap { Int($0.dropFirst(6)) } }
        #expect(1 + counted.reduce(0, +) == 2000 || counted.reduce(0, +) == 2000, "every refusal counted: \(counted)")
        await d.stop()
    }
}

import Foundation
import PIAMClient
import PIAMEngine
import Testing

/// A datagram socket standing in for systemd's notify socket: records every message piamd sends.
final class NotifySocket: @unchecked Sendable {
    let path: String
    private let fd: Int32
    private let lock = NSLock()
    private var received: [(at: ContinuousClock.Instant, text: String)] = []
    private var thread: Thread?
    private var stopped = false

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        let rc = withUnixAddress(path) { bind(fd, $0, $1) }
        guard rc == 0 else { throw PIAMError(.io, "bind \(path): errno \(errno)") }
        var tv = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let t = Thread { [weak self] in self?.loop() }
        thread = t
        t.start()
    }

    private func loop() {
        var buf = [UInt8](repeating: 0, count: 4096)
        while !lock.withLock({ stopped }) {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                let text = String(decoding: buf[0..<n], as: UTF8.self)
                lock.withLock { received.append((ContinuousClock.now, text)) }
            }
        }
    }

    /// Every message so far, each split into its assignments.
    var messages: [[String]] { lock.withLock { received.map { $0.text.split(separator: "\n").map(String.init) } } }

    /// Waits until some message contains `assignment` (prefix match), returning the messages.
    func wait(for assignment: String, timeout: Duration = .seconds(20)) async throws -> [[String]] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let m = messages
            if m.contains(where: { $0.contains { $0.hasPrefix(assignment) } }) { return m }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw PIAMError(.server, "no \(assignment) within \(timeout); got \(messages)")
    }

    func close() {
        lock.withLock { stopped = true }
        Foundation.close(fd)
    }
}

/// Starts `path` with `args`, stdout and stderr appended to `log`; returns the pid.
func spawn(_ path: String, _ args: [String], log: String) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    let env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PIAMD_") && !$0.key.hasPrefix("LISTEN_") }
        .map { "\($0.key)=\($0.value)" }
    let argv = ([path] + args).map { strdup($0) } + [nil]
    let envp = env.map { strdup($0) } + [nil]
    defer { (argv + envp).forEach { free($0) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, path, &actions, nil, argv, envp)
    guard rc == 0 else { throw PIAMError(.io, "posix_spawn \(path): \(rc)") }
    return pid
}

/// The exit status of `pid` if it has exited (reaping it), else nil.
func reap(_ pid: pid_t) -> Int32? {
    var status: Int32 = 0
    guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
    return (status & 0x7F) == 0 ? (status >> 8) & 0xFF : -(status & 0x7F)
}

@Suite("piamd and systemd's protocols", .serialized)
struct SystemdProtocolTests {
    @Test("sd_notify sequence: READY (with STATUS) → WATCHDOG… → RELOADING/READY on SIGHUP → STOPPING")
    func notifySequence() async throws {
        let f = try Fixture()
        let notify = try NotifySocket(path: f.path("notify.sock"))
        defer { notify.close() }
        let d = try await DaemonProcess(f, env: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"])
        _ = try await notify.wait(for: "READY=1")
        // At least three watchdog pings after READY (every WATCHDOG_USEC/2 = 200 ms).
        let deadline = ContinuousClock.now + .seconds(10)
        while notify.messages.filter({ $0.contains("WATCHDOG=1") }).count < 3 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        d.signal(SIGHUP)
        let afterHup = try await notify.wait(for: "RELOADING=1")
        // READY=1 again after the reload.
        let deadline2 = ContinuousClock.now + .seconds(10)
        while notify.messages.filter({ $0.contains("READY=1") }).count < 2 && ContinuousClock.now < deadline2 {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(await d.stop() == 0)
        let all = try await notify.wait(for: "STOPPING=1")
        _ = afterHup

        // The order of the key events.
        func index(_ assignment: String, after: Int = -1) -> Int? {
            all.indices.first { $0 > after && all[$0].contains(assignment) }
        }
        let ready = try #require(index("READY=1"))
        let readyMessage = all[ready]
        #expect(readyMessage.contains { $0.hasPrefix("STATUS=serving revision ") && $0.contains("users") }, "\(readyMessage)")
        let watchdogs = all.indices.filter { all[$0].contains("WATCHDOG=1") }
        #expect(watchdogs.count >= 3, "\(all)")
        #expect(watchdogs.allSatisfy { $0 > ready }, "no WATCHDOG=1 before READY=1")
        let reloading = try #require(index("RELOADING=1", after: ready))
        #expect(all[reloading].contains { $0.hasPrefix("MONOTONIC_USEC=") && UInt64($0.dropFirst("MONOTONIC_USEC=".count)) != nil })
        let ready2 = try #require(index("READY=1", after: reloading))
        let stopping = try #require(index("STOPPING=1", after: ready2))
        #expect(stopping > ready2)
        // EXTEND_TIMEOUT_USEC was sent while the first load ran.
        #expect(all.prefix(ready).contains { $0.contains { $0.hasPrefix("EXTEND_TIMEOUT_USEC=") } })
    }

    @Test("socket activation: piamd adopts the socket passed by systemd-socket-activate")
    func socketActivation() async throws {
        let tool = "/usr/bin/systemd-socket-activate"
        guard FileManager.default.isExecutableFile(atPath: tool) else {
            Issue.record("systemd-socket-activate is not installed (Debian package systemd)")
            return
        }
        let f = try Fixture()
        let listen = f.path("activated.sock")
        let logPath = f.path("activate.log")
        // socket.path points at a directory that does not exist: only the passed socket can work.
        // posix_spawn, not Foundation's Process: systemd-socket-activate closes the descriptors
        // it does not pass, including the one Process watches for the child's exit.
        let child = try spawn(tool, ["-l", listen, "--fdname=piamd", builtBinary("piamd"),
                                     "--db", f.db, "--socket", "/nonexistent/piamd.sock"], log: logPath)
        defer { kill(child, SIGKILL); _ = reap(child) }
        let deadline = ContinuousClock.now + .seconds(10)
        while !FileManager.default.fileExists(atPath: listen) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        // The first connection starts piamd (exec'd in place); it waits in the backlog until
        // piamd accepts.
        let c = try await PIAMClient.connect(socketPath: listen)
        let rev = try await c.ping()
        #expect(rev > 0)
        let check = try await c.check(subject: "carl.claims", action: "read", resource: ResourceRef(type: "claim", id: "CLM-00001"))
        #expect(check.revision == rev)
        await c.close()
        let log = { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
        // piamd logs "listening" just after the bind, which can be after it answered the
        // connection already waiting in the backlog.
        let logBy = ContinuousClock.now + .seconds(5)
        while !log().contains("adopted_from_systemd=true") && ContinuousClock.now < logBy {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(log().contains("adopted_from_systemd=true"))
        kill(child, SIGTERM)
        var status: Int32? = nil
        let stopBy = ContinuousClock.now + .seconds(10)
        while status == nil && ContinuousClock.now < stopBy {
            status = reap(child)
            if status == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(status == 0, "piamd exits 0 after SIGTERM")
        #expect(log().contains("stopped"), "\(log())")
    }
}

@Suite("piamd and piam-admind under a real systemd", .serialized)
struct RealSystemdTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test("start (READY, STATUS), reload, watchdog restart after SIGSTOP; units verify clean, exposure ≤ 2.0")
    func realSystemd() async throws {
        try await runScript("systemd-test.sh", [builtBinary("piamd"), builtBinary("piamctl"), Self.repo.path])
    }

    @Test("piam-admind beside piamd: READY and STATUS, a write piamd serves at its revision, the only writer, watchdog restart; exposure ≤ 2.0")
    func admindUnderSystemd() async throws {
        try await runScript("admind-test.sh", [builtBinary("piamd"), builtBinary("piamctl"), builtBinary("piam-admind"), Self.repo.path])
    }

    /// Runs a script of Tests/systemd (which boots systemd in a namespace) and expects PASS.
    func runScript(_ name: String, _ args: [String]) async throws {
        guard getuid() == 0 else {
            print("SKIP \(name): needs root to boot systemd in a namespace (see Tests/systemd/sandbox.sh)")
            return
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [Self.repo.appendingPathComponent("Tests/systemd/\(name)").path] + args
        // Output to a file and an async wait: a blocking wait would hold a cooperative thread.
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("piam-systemd-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let handle = try FileHandle(forWritingTo: log)
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        let deadline = ContinuousClock.now + .seconds(300)
        while p.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        if p.isRunning { p.terminate() }
        while p.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        print(text)
        #expect(p.terminationStatus == 0, "\(text)")
        #expect(text.contains("PASS"))
    }
}

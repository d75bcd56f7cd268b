import Foundation
import PIAMClient
import PIAMDemo
import PIAMEngine
import PIAMStore
import Testing

/// A built executable next to the test bundle (`.build/<config>/NAME`).
func builtBinary(_ name: String) -> String {
    let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [dir, dir.deletingLastPathComponent(), dir.deletingLastPathComponent().deletingLastPathComponent()] {
        let p = candidate.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    return dir.appendingPathComponent(name).path
}


/// A temporary directory holding a demo database.
final class Fixture: @unchecked Sendable {
    let dir: URL
    var db: String { dir.appendingPathComponent("piam.db").path }
    /// Short: sun_path holds 108 bytes.
    let socket: String

    init(demo: Bool = true) throws {
        dir = URL(fileURLWithPath: "/tmp").appendingPathComponent("piamd-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        socket = dir.appendingPathComponent("d.sock").path
        let store = try Store.initialize(path: db)
        if demo {
            _ = try store.importDocument(DemoGenerator(now: Timestamp(Date().timeIntervalSince1970 * 1000)).document())
        }
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// The graph as the database holds it now, loaded in-process.
    func loaded() throws -> LoadedGraph { try Store(path: db, readOnly: true).loadGraph() }

    /// A committed change (a user's name), returning the new revision.
    @discardableResult
    func touch(_ n: Int = 0) throws -> Int64 {
        let json = #"{"users": [{"id": "carl.claims", "org": "hq-claims", "name": "Carl \#(n) \#(UUID().uuidString)"}]}"#
        return try Store(path: db).importJSON(Data(json.utf8)).revision
    }

    deinit { try? FileManager.default.removeItem(at: dir) }
}

/// The real `piamd` binary, started on a fixture.
final class DaemonProcess: @unchecked Sendable {
    let fixture: Fixture
    let process = Process()
    let logPath: String
    /// The protocol socket: the fixture's, or the `socket` given (replicas of one fixture).
    let socket: String

    /// Starts piamd (`--db`, `--socket`, plus `args`) and waits until it answers PING. With
    /// `executable`, `args` are the whole command line; `socket` then says where it listens.
    init(_ fixture: Fixture, args: [String] = [], env: [String: String] = [:], executable: String? = nil,
         socket: String? = nil, waitForReady: Bool = true) async throws {
        self.fixture = fixture
        self.socket = socket ?? fixture.socket
        logPath = fixture.path("piamd-\(UUID().uuidString.prefix(4)).log")
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        // PIAM_TEST_PIAMD runs the tests against another build (e.g. the code before a fix).
        let piamd = ProcessInfo.processInfo.environment["PIAM_TEST_PIAMD"] ?? builtBinary("piamd")
        process.executableURL = URL(fileURLWithPath: executable ?? piamd)
        process.arguments = executable == nil ? ["--db", fixture.db, "--socket", fixture.socket] + args : args
        var e = ProcessInfo.processInfo.environment
        for k in e.keys where k.hasPrefix("PIAMD_") || k == "NOTIFY_SOCKET" || k.hasPrefix("WATCHDOG_") || k.hasPrefix("LISTEN_") {
            e.removeValue(forKey: k)
        }
        for (k, v) in env { e[k] = v }
        process.environment = e
        let log = FileHandle(forWritingAtPath: logPath)!
        process.standardOutput = log
        process.standardError = log
        try process.run()
        if waitForReady { try await waitUntilServing() }
    }

    /// Polls PING until the daemon answers (90 s at most: a loaded 2-core CI machine can take long).
    func waitUntilServing(timeout: Duration = .seconds(90)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if !process.isRunning { throw PIAMError(.server, "piamd exited with \(process.terminationStatus): \(log)") }
            if let c = try? await PIAMClient.connect(socketPath: socket) {
                defer { Task { await c.close() } }
                if (try? await c.ping()) != nil { return }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw PIAMError(.server, "piamd did not start serving: \(log)")
    }

    func client() async throws -> PIAMClient { try await PIAMClient.connect(socketPath: socket) }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    /// SIGTERM, then waits for the exit status (10 s, then SIGKILL).
    @discardableResult
    func stop() async -> Int32 {
        if process.isRunning { signal(SIGTERM) }
        return await waitForExit()
    }

    func waitForExit(timeout: Duration = .seconds(10)) async -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning {
            signal(SIGKILL)
            process.waitUntilExit()
            return -9
        }
        return process.terminationStatus
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
}

/// Calls `body` with a `sockaddr_un` for `path`.
func withUnixAddress<R>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &addr.sun_path) { raw in
        for (i, b) in path.utf8.enumerated() { raw[i] = b }
    }
    return withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
}

/// A blocking Unix-socket connection for sending raw bytes (malformed frames).
final class RawConnection {
    let fd: Int32

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        let rc = withUnixAddress(path) { connect(fd, $0, $1) }
        guard rc == 0 else { throw PIAMError(.connection, "connect \(path): errno \(errno)") }
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    /// Sends one frame: u32 length + payload.
    func sendFrame(_ payload: [UInt8]) {
        let n = UInt32(payload.count)
        send([UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] + payload)
    }

    /// Reads one frame's payload; nil at EOF or timeout.
    func readFrame() -> [UInt8]? {
        guard let h = readExactly(4) else { return nil }
        let n = Int(h[0]) << 24 | Int(h[1]) << 16 | Int(h[2]) << 8 | Int(h[3])
        return readExactly(n)
    }

    func readExactly(_ n: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: n)
        var got = 0
        while got < n {
            let r = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, n - got) }
            if r <= 0 { return nil }
            got += r
        }
        return out
    }

    /// PING, blocking: the revision piamd answers from, or nil at EOF, timeout or an error status.
    func ping() -> Int64? {
        sendFrame([1, 9, 0, 0, 0, 0, 0, 1] + [UInt8](repeating: 0, count: 8))
        guard let r = readFrame(), r.count >= 16, status(ofRaw: r) == 0 else { return nil }
        return r[8..<16].reduce(Int64(0)) { $0 << 8 | Int64($1) }
    }

    /// Whether the peer closed the connection (EOF within the timeout).
    func readsEOF() -> Bool {
        var b: UInt8 = 0
        let n = read(fd, &b, 1)
        // A Unix socket closed by a peer that had unread bytes (a client still sending) reads as
        // ECONNRESET instead of 0: closed either way.
        return n == 0 || (n < 0 && errno == ECONNRESET)
    }
}

/// The status field of a raw response payload.
func status(ofRaw payload: [UInt8]) -> UInt16 { UInt16(payload[2]) << 8 | UInt16(payload[3]) }
func requestID(ofRaw payload: [UInt8]) -> UInt32 {
    UInt32(payload[4]) << 24 | UInt32(payload[5]) << 16 | UInt32(payload[6]) << 8 | UInt32(payload[7])
}

/// Runs piamctl without blocking a thread: output to files, the exit awaited by polling.
func piamctl(_ args: [String], in f: Fixture) async throws -> (code: Int32, out: String, err: String) {
    try await runProcess(builtBinary("piamctl"), args, in: f)
}

/// Runs a program (absolute path) without blocking a thread, `input` on its standard input:
/// output to files, the exit awaited by polling (60 s at most, then SIGKILL and an error).
func runProcess(_ executable: String, _ args: [String], input: String? = nil, in f: Fixture,
                timeout: Duration = .seconds(60)) async throws -> (code: Int32, out: String, err: String) {
    let id = UUID().uuidString.prefix(8)
    let out = f.path("out-\(id)"), err = f.path("err-\(id)")
    _ = FileManager.default.createFile(atPath: out, contents: nil)
    _ = FileManager.default.createFile(atPath: err, contents: nil)
    defer { for p in [out, err] { try? FileManager.default.removeItem(atPath: p) } }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = args
    var e = ProcessInfo.processInfo.environment
    e.removeValue(forKey: "PIAM_DB")
    e.removeValue(forKey: "PIAM_SOCKET")
    p.environment = e
    if let input {
        let inFile = f.path("in-\(id)")
        try input.write(toFile: inFile, atomically: true, encoding: .utf8)
        p.standardInput = FileHandle(forReadingAtPath: inFile)
    } else {
        p.standardInput = FileHandle.nullDevice
    }
    p.standardOutput = FileHandle(forWritingAtPath: out)
    p.standardError = FileHandle(forWritingAtPath: err)
    try p.run()
    let deadline = ContinuousClock.now + timeout
    while p.isRunning {
        if ContinuousClock.now > deadline {
            kill(p.processIdentifier, SIGKILL)
            throw PIAMError(.server, "\(executable) \(args.joined(separator: " ")) did not finish in \(timeout)")
        }
        try await Task.sleep(for: .milliseconds(5))
    }
    return (p.terminationStatus, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "",
            (try? String(contentsOfFile: err, encoding: .utf8)) ?? "")
}

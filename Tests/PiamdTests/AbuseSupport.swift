import Foundation
import NIOCore
import PIAMClient
import PIAMEngine
import PIAMWire
import Testing

/// A process's resident set (`VmRSS` of /proc/PID/status), in bytes.
func residentBytes(_ pid: Int32) -> Int {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return 0 }
    return kb * 1024
}

/// Polls `condition` until it holds or `timeout` passes: waits for an event, with a deadline.
@discardableResult
func waitFor(_ what: String, timeout: Duration = .seconds(10), every: Duration = .milliseconds(20),
             _ condition: () async throws -> Bool) async throws -> Duration {
    let start = ContinuousClock.now
    while !(try await condition()) {
        if ContinuousClock.now - start > timeout { throw PIAMError(.server, "timed out after \(timeout) waiting for \(what)") }
        try await Task.sleep(for: every)
    }
    return ContinuousClock.now - start
}

/// The p-th percentile of durations, in microseconds.
func percentile(_ xs: [Duration], _ p: Double) -> Double {
    let us = xs.map { Double($0 / .nanoseconds(1)) / 1000 }.sorted()
    guard !us.isEmpty else { return 0 }
    return us[min(us.count - 1, Int(Double(us.count) * p))]
}

/// One good client's CHECKs, one at a time: each round trip's duration.
func checkLatencies(_ client: PIAMClient, count: Int) async throws -> [Duration] {
    let r = CheckRequest(subject: "carl.claims", action: "read", resource: ResourceRef(type: "claim", id: "CLM-HQ-0001"))
    var out: [Duration] = []
    out.reserveCapacity(count)
    for _ in 0..<count {
        let start = ContinuousClock.now
        _ = try await client.check(r)
        out.append(ContinuousClock.now - start)
    }
    return out
}

/// A client that writes the same bytes over and over on its own thread and never reads: the
/// writes block once piamd stops reading it (backpressure), so it costs no CPU then.
final class Flooder: @unchecked Sendable {
    private let fd: Int32
    private let lock = NSLock()
    private var stopped = false
    private var written = 0
    private let done = DispatchSemaphore(value: 0)

    /// Connects to a Unix socket and starts writing `chunk` repeatedly.
    init(path: String, chunk: [UInt8]) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard withUnixAddress(path, { connect(fd, $0, $1) }) == 0 else { throw PIAMError(.connection, "connect \(path): errno \(errno)") }
        // A write blocks at most 100 ms, so the thread sees `stop()`.
        var tv = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let t = Thread { [self] in
            var offset = 0  // within `chunk`: a partial send resumes where it stopped, so frames stay whole
            while !lock.withLock({ stopped }) {
                let n = chunk.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
                if n > 0 {
                    lock.withLock { written += n }
                    offset = (offset + n) % chunk.count
                } else if n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
                    break
                }
            }
            done.signal()
        }
        t.start()
    }

    /// Bytes written so far.
    var bytesWritten: Int { lock.withLock { written } }

    /// Stops writing (from any thread, without waiting).
    func halt() { lock.withLock { stopped = true } }

    /// Stops writing and closes the connection.
    func stop() {
        lock.withLock { stopped = true }
        done.wait()
        close(fd)
    }
}

/// Pipelined request frames, `count` copies of `request`, as one buffer.
func pipelined(_ request: Request, count: Int) -> [UInt8] {
    var b = ByteBuffer()
    for i in 0..<count {
        var r = request
        r.requestID = UInt32(i)
        r.encodeFrame(into: &b)
    }
    return Array(b.readableBytesView)
}

/// Samples a process's RSS every 25 ms on its own thread; keeps the peak. Past `valve` bytes
/// it calls `onValve` once (the flood tests halt their flooders, so a daemon without
/// backpressure fails the test instead of taking the machine's memory).
final class RSSSampler: @unchecked Sendable {
    private let lock = NSLock()
    private var peakBytes = 0
    private var stopped = false
    private let done = DispatchSemaphore(value: 0)

    init(pid: Int32, valve: Int = .max, onValve: @escaping @Sendable () -> Void = {}) {
        Thread { [self] in
            var fired = false
            while !lock.withLock({ stopped }) {
                let r = residentBytes(pid)
                lock.withLock { peakBytes = max(peakBytes, r) }
                if r > valve && !fired {
                    fired = true
                    onValve()
                }
                usleep(25_000)
            }
            done.signal()
        }.start()
    }

    func stop() -> Int {
        lock.withLock { stopped = true }
        done.wait()
        return lock.withLock { peakBytes }
    }
}

/// The attacker of the slow-client tests, run as `nobody` (setpriv): opens `n` connections to a
/// Unix socket and sends each one byte a second of a message it never finishes, reconnecting
/// whenever piamd closes one. Prints a JSON summary.
let slowlorisScript = #"""
import json, socket, sys, time
path, n, seconds, mode = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
if mode == "wire":
    message = b"\x00\x00\x01\x00" + b"x" * 100000
else:
    message = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 100000
stats = {"opened": 0, "connect_failed": 0, "closed_by_server": 0, "answers": 0, "max_open": 0}
def open1():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError:
        stats["connect_failed"] += 1
        s.close()
        return None
    s.setblocking(False)
    stats["opened"] += 1
    return [s, 0]
conns = [open1() for _ in range(n)]
end = time.time() + seconds
while time.time() < end:
    for i, c in enumerate(conns):
        if c is None:
            conns[i] = open1()
            continue
        s = c[0]
        try:
            try:
                data = s.recv(65536)
                if data == b"":
                    raise ConnectionResetError()
                stats["answers"] += 1
            except BlockingIOError:
                pass
            s.send(message[c[1]:c[1] + 1])
            c[1] += 1
        except OSError:
            stats["closed_by_server"] += 1
            s.close()
            conns[i] = open1()
    stats["max_open"] = max(stats["max_open"], sum(1 for c in conns if c is not None))
    time.sleep(1.0)
print(json.dumps(stats))
"""#

/// Runs `script` with /usr/bin/python3 as `nobody` (setpriv) in the background; the result is
/// its standard output once it exits.
func runAsNobody(_ script: String, _ args: [String], in f: Fixture) throws -> Process {
    let file = f.path("nobody-\(UUID().uuidString.prefix(6)).py")
    try script.write(toFile: file, atomically: true, encoding: .utf8)
    chmod(file, 0o644)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
    p.arguments = ["--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/python3", file] + args
    let out = f.path("nobody-out-\(UUID().uuidString.prefix(6))")
    _ = FileManager.default.createFile(atPath: out, contents: nil)
    chmod(out, 0o666)
    p.standardOutput = FileHandle(forWritingAtPath: out)
    p.standardError = FileHandle(forWritingAtPath: out)
    p.environment = ["OUT": out]
    try p.run()
    return p
}

/// The standard output of a process started by ``runAsNobody(_:_:in:)``, once it exits.
func output(of p: Process, timeout: Duration = .seconds(60)) async throws -> String {
    try await waitFor("the nobody process to exit", timeout: timeout) { !p.isRunning }
    guard let out = p.environment?["OUT"] else { return "" }
    return (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
}

/// Whether tests may run a client as another user (root with setpriv and the system python).
var canRunAsNobody: Bool {
    getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")
        && FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")
}

/// Runs blocking socket I/O on a thread of its own, so it never holds one of the few threads
/// Swift concurrency shares with every other test running in parallel.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
        Thread { c.resume(with: Result { try body() }) }.start()
    }
}

import Foundation
import Histogram
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What one load run does: how many connections, how deep each pipelines, for how long.
struct LoadPlan: Sendable {
    /// Connections, each driven by its own thread with a blocking socket.
    var connections: Int
    /// Requests in flight per connection (1: one at a time).
    var depth: Int
    /// Stop after this long (measured after the warm-up) …
    var seconds: Double
    /// … or after this many responses per connection, whichever comes first (0: no count).
    var requestsPerConnection: Int
    /// Responses received during the warm-up are neither timed nor counted.
    var warmupSeconds: Double
    /// Decisions each request carries (1 for CHECK; the batch size for CHECK_BATCH).
    var decisionsPerRequest: Int
    /// Print a progress line to stderr every second.
    var progress: Bool
    /// A label for the progress lines.
    var label: String
}

/// What one load run measured.
struct LoadResult: Sendable {
    var label: String
    var connections: Int
    var depth: Int
    var requests: UInt64
    var decisions: UInt64
    var seconds: Double
    /// Responses whose status was not OK (0 against the echo server, which answers every frame).
    var errors: UInt64
    /// Responses whose first body byte is 1 (CHECK: allowed; meaningful against piamd only).
    var allowed: UInt64
    /// Round-trip latency of each request, nanoseconds: write of the request to read of its
    /// response (pipelined requests include their wait behind earlier ones).
    var histogram: Histogram<UInt64>

    var requestsPerSecond: Double { seconds > 0 ? Double(requests) / seconds : 0 }
    var decisionsPerSecond: Double { seconds > 0 ? Double(decisions) / seconds : 0 }
    func percentileMicros(_ p: Double) -> Double { Double(histogram.valueAtPercentile(p)) / 1000 }

    var json: [String: Any] {
        [
            "label": label, "connections": connections, "depth": depth,
            "requests": requests, "decisions": decisions, "seconds": seconds, "errors": errors, "allowed": allowed,
            "requests_per_second": requestsPerSecond, "decisions_per_second": decisionsPerSecond,
            "p50_us": percentileMicros(50), "p90_us": percentileMicros(90), "p99_us": percentileMicros(99),
            "p99_9_us": percentileMicros(99.9), "max_us": Double(histogram.max) / 1000,
        ]
    }
}

/// Request frames prepared before a run, in one contiguous byte array (no allocation while
/// timing). Each frame's request id (bytes 8..<12: after the u32 length, the version, opcode
/// and flags) is overwritten per send.
struct FramePool: Sendable {
    var bytes: [UInt8] = []
    var offsets: [Int] = []

    mutating func append(_ frame: [UInt8]) {
        offsets.append(bytes.count)
        bytes.append(contentsOf: frame)
    }

    var count: Int { offsets.count }
    func range(_ i: Int) -> Range<Int> {
        offsets[i]..<(i + 1 < offsets.count ? offsets[i + 1] : bytes.count)
    }
}

enum Clock {
    @inline(__always) static func nanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}

/// A connected Unix stream socket, blocking.
struct UnixSocket: ~Copyable {
    let fd: Int32

    init(path: String) throws {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BenchError("socket(): \(String(cString: strerror(errno)))") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(fd)
            throw BenchError("socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let e = String(cString: strerror(errno))
            close(fd)
            throw BenchError("cannot connect to \(path): \(e)")
        }
        self.fd = fd
    }

    /// Writes all of `bytes[range]`.
    func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw BenchError("write: \(String(cString: strerror(errno)))")
            }
            done += n
        }
    }

    deinit { close(fd) }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// State shared by the connection threads and the progress reporter.
final class LoadShared: Sendable {
    let responses = Atomic<UInt64>(0)
    let stop = Atomic<Bool>(false)
    let results = Mutex<[Result<LoadResult, BenchError>]>([])
}

/// Which of several servers' connections may send (`piam-bench ab`): the others drain what they
/// have in flight and wait on their side's semaphore until their turn.
final class Gate: Sendable {
    let active = Atomic<Int>(0)
    let wake: [DispatchSemaphore]

    init(sides: Int) { wake = (0..<sides).map { _ in DispatchSemaphore(value: 0) } }

    /// Gives the turn to `side`, waking `connections` threads that may be waiting on it.
    func open(_ side: Int, connections: Int) {
        active.store(side, ordering: .sequentiallyConsistent)
        for _ in 0..<connections { wake[side].signal() }
    }
}

/// Drives a server over blocking Unix sockets, one thread per connection: each thread keeps
/// `depth` requests in flight, writes every refill with one `write`, reads whatever has arrived
/// with one `read`, and times each request from its write to the read that completed it.
///
/// Frames are length-prefixed (u32, big-endian) with the request id at payload offset 4 and the
/// status at payload offset 2 — the layout of wire protocol v1, which the echo server returns
/// unchanged.
enum LoadGenerator {
    static func run(socket path: String, pool: FramePool, plan: LoadPlan) throws -> LoadResult {
        let shared = LoadShared()
        let done = DispatchSemaphore(value: 0)
        let start = Clock.nanos()
        let warmupEnd = start + UInt64(plan.warmupSeconds * 1e9)
        let deadline = warmupEnd + UInt64(plan.seconds * 1e9)
        startConnections(socket: path, pool: pool, plan: plan, warmupEnd: warmupEnd, deadline: deadline, shared: shared, done: done)
        var finished = 0
        var lastPrint = start
        var lastCount: UInt64 = 0
        while finished < plan.connections {
            if done.wait(timeout: .now() + .milliseconds(250)) == .success {
                finished += 1
                continue
            }
            let now = Clock.nanos()
            if plan.progress, now - lastPrint >= 1_000_000_000 {
                let n = shared.responses.load(ordering: .relaxed)
                let rate = Double(n - lastCount) / (Double(now - lastPrint) / 1e9)
                let phase = now < warmupEnd ? " (warm-up)" : ""
                FileHandle.standardError.write(Data(String(
                    format: "piam-bench: %@ %.0f s: %llu responses, %.0f /s%@\n",
                    plan.label, Double(now - start) / 1e9, n, rate, phase).utf8))
                lastPrint = now
                lastCount = n
            }
        }
        let results = shared.results.withLock { $0 }
        var merged = LoadResult(label: plan.label, connections: plan.connections, depth: plan.depth, requests: 0, decisions: 0,
                                seconds: 0, errors: 0, allowed: 0, histogram: latencyHistogram())
        for r in results {
            switch r {
            case .failure(let e): throw e
            case .success(let one):
                merged.requests += one.requests
                merged.decisions += one.decisions
                merged.errors += one.errors
                merged.allowed += one.allowed
                merged.seconds = max(merged.seconds, one.seconds)
                merged.histogram.add(one.histogram)
            }
        }
        return merged
    }

    /// Starts `plan.connections` connection threads; each appends its result to `shared` and
    /// signals `done` when it ends.
    static func startConnections(socket path: String, pool: FramePool, plan: LoadPlan, warmupEnd: UInt64, deadline: UInt64,
                      shared: LoadShared, done: DispatchSemaphore, gate: (Gate, side: Int)? = nil) {
        for c in 0..<plan.connections {
            let t = Thread {
                let r: Result<LoadResult, BenchError>
                do {
                    r = .success(try connection(c, path: path, pool: pool, plan: plan, warmupEnd: warmupEnd,
                                                deadline: deadline, shared: shared, gate: gate))
                } catch let e as BenchError {
                    shared.stop.store(true, ordering: .relaxed)
                    r = .failure(e)
                } catch {
                    shared.stop.store(true, ordering: .relaxed)
                    r = .failure(BenchError("\(error)"))
                }
                shared.results.withLock { $0.append(r) }
                done.signal()
            }
            t.stackSize = 1 << 20
            t.start()
        }
    }

    static func latencyHistogram() -> Histogram<UInt64> {
        // 100 ns to 100 s, three significant digits.
        var h = Histogram<UInt64>(lowestDiscernibleValue: 100, highestTrackableValue: 100_000_000_000, numberOfSignificantValueDigits: .three)
        h.autoResize = true
        return h
    }

    private static func connection(_ index: Int, path: String, pool: FramePool, plan: LoadPlan, warmupEnd: UInt64,
                                   deadline: UInt64, shared: LoadShared, gate: (Gate, side: Int)?) throws -> LoadResult {
        let sock = try UnixSocket(path: path)
        var histogram = latencyHistogram()
        var ring = 1
        while ring < plan.depth { ring <<= 1 }
        var sentAt = [UInt64](repeating: 0, count: ring)
        let mask = UInt32(ring - 1)
        var sendBuf = [UInt8]()
        sendBuf.reserveCapacity(plan.depth * 256)
        var recv = [UInt8](repeating: 0, count: 1 << 20)
        var rStart = 0, rEnd = 0
        var nextID: UInt32 = 1
        var expectID: UInt32 = 1
        var inFlight = 0
        var frame = (index * 7919) % max(pool.count, 1)
        var timed: UInt64 = 0, counted: UInt64 = 0, errors: UInt64 = 0, allowed: UInt64 = 0
        var firstTimed: UInt64 = 0, lastTimed: UInt64 = 0
        let limit = plan.requestsPerConnection > 0 ? UInt64(plan.requestsPerConnection) : UInt64.max
        var stopping = false
        while true {
            // Refill the pipeline with one write.
            let now = Clock.nanos()
            if !stopping && (now >= deadline || counted >= limit || shared.stop.load(ordering: .relaxed)) { stopping = true }
            // Not this side's turn: send nothing; once drained, wait for the turn.
            if let gate, !stopping, gate.0.active.load(ordering: .sequentiallyConsistent) != gate.side {
                if inFlight == 0 {
                    gate.0.wake[gate.side].wait()
                    continue
                }
            } else if !stopping {
                sendBuf.removeAll(keepingCapacity: true)
                while inFlight < plan.depth {
                    let r = pool.range(frame)
                    let at = sendBuf.count
                    sendBuf.append(contentsOf: pool.bytes[r])
                    sendBuf[at + 8] = UInt8(truncatingIfNeeded: nextID >> 24)
                    sendBuf[at + 9] = UInt8(truncatingIfNeeded: nextID >> 16)
                    sendBuf[at + 10] = UInt8(truncatingIfNeeded: nextID >> 8)
                    sendBuf[at + 11] = UInt8(truncatingIfNeeded: nextID)
                    sentAt[Int(nextID & mask)] = now
                    nextID &+= 1
                    inFlight += 1
                    frame += 1
                    if frame == pool.count { frame = 0 }
                }
                if !sendBuf.isEmpty { try sendBuf.withUnsafeBytes { try sock.writeAll($0) } }
            }
            if inFlight == 0 { break }
            // Read what has arrived.
            if rStart > 0 && rStart == rEnd { rStart = 0; rEnd = 0 }
            if recv.count - rEnd < 4096 {
                recv.withUnsafeMutableBytes { b in
                    _ = memmove(b.baseAddress!, b.baseAddress! + rStart, rEnd - rStart)
                }
                rEnd -= rStart
                rStart = 0
                if recv.count - rEnd < 4096 { recv.append(contentsOf: [UInt8](repeating: 0, count: recv.count)) }
            }
            let n = recv.withUnsafeMutableBytes { b in read(sock.fd, b.baseAddress! + rEnd, b.count - rEnd) }
            if n < 0 {
                if errno == EINTR { continue }
                throw BenchError("read: \(String(cString: strerror(errno)))")
            }
            if n == 0 { throw BenchError("the server closed the connection with \(inFlight) requests in flight") }
            rEnd += n
            let got = Clock.nanos()
            var completed: UInt64 = 0
            while rEnd - rStart >= 4 {
                let len = Int(recv[rStart]) << 24 | Int(recv[rStart + 1]) << 16 | Int(recv[rStart + 2]) << 8 | Int(recv[rStart + 3])
                if rEnd - rStart < 4 + len { break }
                guard len >= 16 else { throw BenchError("a \(len)-byte payload is shorter than the 16-byte header") }
                let p = rStart + 4
                let id = UInt32(recv[p + 4]) << 24 | UInt32(recv[p + 5]) << 16 | UInt32(recv[p + 6]) << 8 | UInt32(recv[p + 7])
                guard id == expectID else { throw BenchError("response for request \(id); expected \(expectID) (out of order)") }
                expectID &+= 1
                let status = UInt16(recv[p + 2]) << 8 | UInt16(recv[p + 3])
                if got >= warmupEnd {
                    _ = histogram.record(got - sentAt[Int(id & mask)])
                    if timed == 0 { firstTimed = sentAt[Int(id & mask)] }
                    lastTimed = got
                    timed += 1
                    if status != 0 { errors += 1 } else if len > 16 && recv[p + 16] == 1 { allowed += 1 }
                }
                counted += got >= warmupEnd ? 1 : 0
                completed += 1
                inFlight -= 1
                rStart += 4 + len
            }
            shared.responses.add(completed, ordering: .relaxed)
        }
        let window = max(Double(lastTimed &- max(firstTimed, warmupEnd)) / 1e9, 1e-9)
        return LoadResult(label: plan.label, connections: 1, depth: plan.depth, requests: timed,
                          decisions: timed * UInt64(plan.decisionsPerRequest), seconds: timed > 0 ? window : 0,
                          errors: errors, allowed: allowed, histogram: histogram)
    }
}

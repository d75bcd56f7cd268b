import NIOCore
import PIAMDemo
import PIAMEngine
import PIAMWire

/// The requests a run sends: a ``CheckMix`` drawn from the graph the daemon serves, encoded
/// as wire frames before the run.
struct QueryMix {
    var checks: [CheckRequest]
    /// The share of `checks` the engine allows.
    var allowedFraction: Double

    static func draw(from graph: AccessGraph, count: Int, allowRatio: Double, seed: UInt64, now: Timestamp) -> QueryMix {
        let m = CheckMix.draw(from: graph, count: count, allowRatio: allowRatio, seed: seed, now: now)
        return QueryMix(checks: m.checks, allowedFraction: m.allowedFraction)
    }

    /// CHECK frames, one per check.
    func checkFrames() -> FramePool {
        frames(checks.map { Request(body: .check($0)) })
    }

    /// CHECK_BATCH frames of `size` checks each (execute-all), walking the checks in order.
    func batchFrames(size: Int, frames count: Int) -> FramePool {
        var i = 0
        return frames((0..<count).map { _ in
            let items = (0..<size).map { k in checks[(i + k) % checks.count] }
            i += size
            return Request(body: .checkBatch(.executeAll, items))
        })
    }

    /// PING frames (the daemon's framing with no engine work).
    static func pingFrames() -> FramePool {
        var pool = FramePool()
        pool.append(encode(Request(body: .ping)))
        return pool
    }

    private func frames(_ requests: [Request]) -> FramePool {
        var pool = FramePool()
        for r in requests { pool.append(Self.encode(r)) }
        return pool
    }

    static func encode(_ r: Request) -> [UInt8] {
        var b = ByteBuffer()
        r.encodeFrame(into: &b)
        return b.readBytes(length: b.readableBytes)!
    }
}

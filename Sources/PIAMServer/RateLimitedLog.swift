import Logging
import NIOCore
import Synchronization

/// Log lines for events a peer can cause as often as it likes — refused connections and every
/// per-connection failure — at most one line per kind per interval, with a count.
///
/// The first event of a kind is logged at once, with its details. Events in the next interval
/// are only counted; the first one after it is logged with the count (`… (2,000 in the last
/// 10 s)`), and ``flush()`` (run every interval by the listener) reports a count no later event
/// did. Counting is two atomic operations: nothing here waits on a lock.
public final class RateLimitedLog: Sendable {
    /// What is counted, one line per interval each.
    public enum Kind: String, Sendable, CaseIterable {
        /// `limits.max_connections` reached.
        case refusedFull = "connection refused: limits.max_connections reached"
        /// `limits.max_connections_per_uid` reached for the peer's uid.
        case refusedPerUID = "connection refused: limits.max_connections_per_uid reached"
        /// Peer not in `socket.allowed_uids`/`allowed_gids`.
        case refusedPeer = "connection refused: peer not in socket.allowed_uids/allowed_gids"
        /// `SO_PEERCRED` could not be read.
        case peerCredentials = "connection refused: cannot read SO_PEERCRED"
        /// A frame header announced more than `limits.max_frame_bytes`.
        case frameTooLarge = "frame too large; closing connection"
        /// A message not completed within `limits.frame_timeout_ms`.
        case frameTimeout = "message not completed within limits.frame_timeout_ms; closing connection"
        /// A peer that took none of its output for `limits.idle_timeout_ms`.
        case stalled = "peer took none of its answers for limits.idle_timeout_ms; closing connection"
        /// Any other per-connection failure (a reset, a protocol error).
        case connectionFailure = "connection error; closing connection"
    }

    private final class Counter: Sendable {
        /// Events not yet reported.
        let count = Atomic<Int>(0)
        /// When the last line was written (ms on the monotonic clock; `Int64.min`: never).
        let lastLogged = Atomic<Int64>(.min)
    }

    private let logger: Logger
    private let level: Logger.Level
    /// The interval, in milliseconds.
    public let intervalMS: Int64
    private let counters: [Kind: Counter]

    /// - Parameters:
    ///   - logger: where the lines go.
    ///   - level: their level (refusals are warnings).
    ///   - intervalMS: at most one line per kind this often.
    public init(logger: Logger, level: Logger.Level = .warning, intervalMS: Int64 = 10_000) {
        self.logger = logger
        self.level = level
        self.intervalMS = intervalMS
        var c: [Kind: Counter] = [:]
        for k in Kind.allCases { c[k] = Counter() }
        counters = c
    }

    private static func nowMS() -> Int64 { NIODeadline.now().uptimeNanoseconds.asInt64 / 1_000_000 }

    /// Counts one event; logs it when its kind has not been logged for an interval. `message`
    /// defaults to the kind's own text.
    public func record(_ kind: Kind, _ message: String? = nil, metadata: Logger.Metadata = [:]) {
        let c = counters[kind]!
        c.count.add(1, ordering: .relaxed)
        let now = Self.nowMS()
        let last = c.lastLogged.load(ordering: .relaxed)
        guard last == .min || now - last >= intervalMS else { return }
        guard c.lastLogged.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged else { return }
        let n = c.count.exchange(0, ordering: .relaxed)
        var m = metadata
        if n > 1 || last != .min { m["count"] = "\(n)"; m["interval_s"] = "\(intervalMS / 1000)" }
        logger.log(level: level, "\(message ?? kind.rawValue)", metadata: m)
    }

    /// Reports the counts no later event reported (run every interval).
    public func flush() {
        let now = Self.nowMS()
        for kind in Kind.allCases {
            let c = counters[kind]!
            let last = c.lastLogged.load(ordering: .relaxed)
            guard c.count.load(ordering: .relaxed) > 0, now - last >= intervalMS,
                  c.lastLogged.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged else { continue }
            let n = c.count.exchange(0, ordering: .relaxed)
            if n > 0 {
                logger.log(level: level, "\(kind.rawValue)", metadata: ["count": "\(n)", "interval_s": "\(intervalMS / 1000)"])
            }
        }
    }

    /// Events counted and not yet reported (tests).
    func pending(_ kind: Kind) -> Int { counters[kind]!.count.load(ordering: .relaxed) }
}

private extension UInt64 {
    var asInt64: Int64 { Int64(truncatingIfNeeded: self) }
}

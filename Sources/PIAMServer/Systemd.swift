import CSystemd
import Foundation

/// Where the daemon reports its state: systemd's notify socket in production, a recorder in
/// tests.
public protocol Notifier: Sendable {
    /// Sends newline-separated `KEY=value` assignments (sd_notify(3)).
    func notify(_ assignments: [String])
}

/// sd_notify(3) through libsystemd; a no-op when `NOTIFY_SOCKET` is not set.
public struct SystemdNotifier: Notifier {
    public init() {}

    public func notify(_ assignments: [String]) {
        _ = sd_notify(0, assignments.joined(separator: "\n"))
    }
}

/// The systemd facilities piamd uses, through libsystemd.
public enum Systemd {
    /// A listening socket passed by the service manager (socket activation).
    public struct PassedSocket: Sendable, Hashable {
        public var fd: Int32
        /// `FileDescriptorName=` of the socket unit (default: the unit's name).
        public var name: String
    }

    /// The sockets passed with `LISTEN_FDS`/`LISTEN_FDNAMES` (sd_listen_fds_with_names(3)).
    /// The variables are removed from the environment, so child processes do not see them.
    public static func passedSockets() -> [PassedSocket] {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        let n = sd_listen_fds_with_names(1, &names)
        guard n > 0 else { return [] }
        defer {
            if let names {
                for i in 0..<Int(n) { free(names[i]) }
                free(names)
            }
        }
        return (0..<n).map { i in
            let name = names?[Int(i)].map { String(cString: $0) } ?? "unknown"
            return PassedSocket(fd: SD_LISTEN_FDS_START + i, name: name)
        }
    }

    /// The watchdog interval systemd expects (`WATCHDOG_USEC` for this process), or nil.
    public static func watchdogMicroseconds() -> UInt64? {
        var usec: UInt64 = 0
        return sd_watchdog_enabled(0, &usec) > 0 && usec > 0 ? usec : nil
    }

    /// CLOCK_MONOTONIC in microseconds, for `MONOTONIC_USEC=` with `RELOADING=1`.
    public static func monotonicMicroseconds() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt64(t.tv_sec) * 1_000_000 + UInt64(t.tv_nsec) / 1000
    }
}

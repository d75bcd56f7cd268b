import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A server process this run started (piamd or the echo server), stopped with SIGTERM.
final class ServerProcess {
    let process = Process()
    let socket: String
    /// Seconds from spawn to `READY=1` on the notify socket (piamd), or to the first accepted
    /// connection (the echo server).
    private(set) var secondsToReady: Double = 0

    /// Starts `executable args`; when `notify` is set, the process gets `NOTIFY_SOCKET` and the
    /// start waits for `READY=1` (as systemd would), else it waits until `socket` accepts.
    init(executable: String, args: [String], socket: String, dir: String, notify: Bool, logName: String, env extra: [String: String] = [:]) throws {
        self.socket = socket
        var env = ProcessInfo.processInfo.environment
        for k in env.keys where k.hasPrefix("PIAMD_") || k == "NOTIFY_SOCKET" || k.hasPrefix("WATCHDOG_") || k.hasPrefix("LISTEN_") {
            env.removeValue(forKey: k)
        }
        for (k, v) in extra { env[k] = v }
        var listener: NotifyListener?
        if notify {
            let l = try NotifyListener(path: dir + "/notify-\(logName).sock")
            env["NOTIFY_SOCKET"] = l.path
            listener = l
        }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = args
        process.environment = env
        let log = dir + "/\(logName).log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = FileHandle(forWritingAtPath: log)!
        process.standardOutput = handle
        process.standardError = handle
        let t0 = Clock.nanos()
        try process.run()
        let deadline = Date().addingTimeInterval(300)
        if let listener {
            while true {
                if let msg = listener.receive(timeoutMillis: 200), msg.split(separator: "\n").contains("READY=1") { break }
                if !process.isRunning || Date() > deadline { throw BenchError("\(executable) did not send READY=1 (see \(log))") }
            }
        } else {
            while (try? UnixSocket(path: socket)) == nil {
                if !process.isRunning || Date() > deadline { throw BenchError("\(executable) did not listen on \(socket) (see \(log))") }
                usleep(20_000)
            }
        }
        secondsToReady = Double(Clock.nanos() - t0) / 1e9
    }

    /// A field of the process's /proc status in MiB (`VmRSS`, `VmHWM`).
    func memoryMiB(_ field: String) -> Double {
        guard let s = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8) else { return 0 }
        for line in s.split(separator: "\n") where line.hasPrefix(field + ":") {
            return (line.split(separator: " ").compactMap { Double($0) }.first ?? 0) / 1024
        }
        return 0
    }

    func stop() { Executables.stop(process) }

    deinit { stop() }
}

/// A datagram socket standing in for systemd's notify socket: piamd sends `READY=1` there.
final class NotifyListener {
    let path: String
    private let fd: Int32

    init(path: String) throws {
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        self.fd = fd
        guard fd >= 0 else { throw BenchError("socket(): \(String(cString: strerror(errno)))") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes.prefix(raw.count - 1))
            raw[min(bytes.count, raw.count - 1)] = 0
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { throw BenchError("bind \(path): \(String(cString: strerror(errno)))") }
        self.path = path
    }

    /// One datagram, or nil after `timeoutMillis`.
    func receive(timeoutMillis: Int32) -> String? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, timeoutMillis) == 1 else { return nil }
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n > 0 ? String(decoding: buf[0..<n], as: UTF8.self) : nil
    }

    deinit {
        close(fd)
        unlink(path)
    }
}

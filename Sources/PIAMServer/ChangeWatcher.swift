import Glibc
import PIAMEngine

/// What woke the loader's thread.
struct Wake: OptionSet {
    let rawValue: UInt8
    /// The database or one of its companion files (`-wal`, `-shm`, `-journal`; a replica's `-txid`) was written, created, removed or renamed.
    static let file = Wake(rawValue: 1)
    /// ``ChangeWatcher/wake()``: a catch-up request, SIGHUP or shutdown.
    static let request = Wake(rawValue: 2)
    /// The timeout passed (the poll fallback).
    static let timeout = Wake(rawValue: 4)
}

/// The loader thread's one blocking wait: inotify on the database's directory (a WAL commit
/// writes `-wal`; a replacement renames over the file) plus an eventfd other threads write to
/// wake it (a pipe), plus a timeout — one `poll(2)`.
///
/// Everything that arrived while the thread was busy is drained by the next ``wait(timeoutMS:)``
/// at once, so a burst of commits during an apply becomes one more apply, and a lone commit is
/// applied as soon as its event arrives (no debounce delay).
final class ChangeWatcher: Sendable {
    /// The inotify descriptor, or -1 when inotify is unavailable (then only polls find commits).
    let inotifyFD: Int32
    /// A non-blocking pipe: other threads write a byte to the write end to wake the waiter.
    let wakeFD: Int32
    let wakeWriteFD: Int32
    /// The file names in the directory that matter: the database and its companions.
    let names: Set<String>
    /// Why inotify is off, when it is.
    let inotifyError: String?

    /// - Parameter replica: also wake on `<database>-txid`, the transaction-id file Litestream's
    ///   follow mode rewrites beside a replica after each applied transaction.
    init(databasePath: String, replica: Bool = false) throws(PIAMError) {
        let slash = databasePath.lastIndex(of: "/")
        let dir = slash.map { $0 == databasePath.startIndex ? "/" : String(databasePath[..<$0]) } ?? "."
        let base = slash.map { String(databasePath[databasePath.index(after: $0)...]) } ?? databasePath
        // Local database: the database, `-wal`, `-shm` and `-journal`, and every kind of event —
        // a writer's first IN_MODIFY on `-wal` can come before its commit is visible; the `-shm`
        // update and its close (IN_CLOSE_WRITE) come after it. piamd's own verification (a reopen
        // each reload.poll_ms) wakes it once more, harmlessly.
        // Replica (Litestream's follow mode): `-txid`, rewritten after each applied transaction,
        // is the signal, and `-shm` and IN_CLOSE_WRITE/IN_ATTRIB are left out: each cycle opens
        // the replica anew, which resets `-shm`, and SQLite opens `-wal` read-write (as root it
        // fchown()s it) — watching those, piamd would wake itself in a loop.
        names = replica ? [base, base + "-wal", base + "-journal", base + "-txid"] : [base, base + "-wal", base + "-shm", base + "-journal"]
        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0 else { throw PIAMError(.io, "pipe: \(String(cString: strerror(errno)))") }
        for fd in pipeFDs {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        (wakeFD, wakeWriteFD) = (pipeFDs[0], pipeFDs[1])
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        var error: String?
        if fd < 0 {
            error = "inotify_init1: \(String(cString: strerror(errno)))"
        } else {
            let mask = replica
                ? UInt32(IN_MODIFY | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO)
                : UInt32(IN_MODIFY | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ATTRIB)
            if inotify_add_watch(fd, dir, mask) < 0 {
                error = "inotify_add_watch \(dir): \(String(cString: strerror(errno)))"
                close(fd)
            }
        }
        inotifyFD = error == nil ? fd : -1
        inotifyError = error
    }

    deinit {
        close(wakeFD)
        close(wakeWriteFD)
        if inotifyFD >= 0 { close(inotifyFD) }
    }

    /// Wakes the thread blocked in ``wait(timeoutMS:)`` (any thread; never blocks).
    func wake() {
        var one: UInt8 = 1
        _ = write(wakeWriteFD, &one, 1)  // a full pipe already wakes it: EAGAIN is fine
    }

    /// Blocks until a relevant file event, a ``wake()`` or the timeout (-1: none), and drains
    /// everything pending. Events on other files of the directory are drained and ignored.
    func wait(timeoutMS: Int32) -> Wake {
        var fds = [pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        if inotifyFD >= 0 { fds.append(pollfd(fd: inotifyFD, events: Int16(POLLIN), revents: 0)) }
        var deadline = timeoutMS
        var start = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        while true {
            let n = poll(&fds, nfds_t(fds.count), deadline)
            if n == 0 { return .timeout }
            if n < 0 {
                guard errno == EINTR else { return .timeout }
                continue
            }
            var woke: Wake = []
            if fds[0].revents != 0 {
                var drain = [UInt8](repeating: 0, count: 256)
                while read(wakeFD, &drain, drain.count) > 0 {}
                woke.insert(.request)
            }
            if fds.count > 1 && fds[1].revents != 0 && drainInotify() { woke.insert(.file) }
            if !woke.isEmpty { return woke }
            // Only unrelated files changed: keep waiting for what is left of the timeout.
            if timeoutMS >= 0 {
                var now = timespec()
                clock_gettime(CLOCK_MONOTONIC, &now)
                let elapsed = Int32((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1_000_000)
                if elapsed >= timeoutMS { return .timeout }
                deadline = timeoutMS - elapsed
            }
            for i in fds.indices { fds[i].revents = 0 }
        }
    }

    /// Reads every pending inotify event; whether one named a database file (or overflowed).
    private func drainInotify() -> Bool {
        var relevant = false
        let size = 16 * 1024
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
        defer { buffer.deallocate() }
        while true {
            let n = read(inotifyFD, buffer, size)
            if n <= 0 { return relevant }
            var offset = 0
            // struct inotify_event { int wd; uint32_t mask, cookie, len; char name[len]; }
            while offset + 16 <= n {
                let mask = buffer.load(fromByteOffset: offset + 4, as: UInt32.self)
                let len = Int(buffer.load(fromByteOffset: offset + 12, as: UInt32.self))
                if mask & UInt32(IN_Q_OVERFLOW | IN_IGNORED) != 0 {
                    relevant = true
                } else if len > 0 {
                    let name = String(cString: buffer.advanced(by: offset + 16).assumingMemoryBound(to: CChar.self))
                    if names.contains(name) { relevant = true }
                }
                offset += 16 + len
            }
        }
    }
}

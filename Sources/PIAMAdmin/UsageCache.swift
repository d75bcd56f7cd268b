import PIAMEngine
import PIAMStore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// piamd's usage files (``AdminConfig/usagePaths``), merged once and shared by every request
/// until they change and the merge is older than ``refreshMS``.
///
/// Merging copies every file into one in-memory database (``PIAMStore/UsageReader``), which for a
/// day of a million people is a few hundred megabytes: done per request, a dashboard or a
/// findings page would take seconds. The cache keeps one merge and the facts findings and
/// reviews are judged on (``PIAMStore/UsageSnapshot``), and merges again on a request that finds
/// the files changed (their names, and the sizes and modification times of each file and its
/// write-ahead log, where piamd's commits land first) since a merge at least ``refreshMS`` old. piamd writes its file every `usage.flush_ms`, so the figures a page shows
/// are at most ``refreshMS`` plus one flush interval behind: activity is counted in days, and
/// dormancy in tens of days.
///
/// The reader is used under the cache's lock (a `UsageReader` is one SQLite connection, not to be
/// shared between threads); its queries run on an in-memory database and take milliseconds.
public final class UsageCache: Sendable {
    /// The files or directories read; empty: none configured.
    public let paths: [String]
    /// The youngest a merge may be when the files have changed and it is replaced.
    public let refreshMS: Int64

    private struct Merged {
        var reader: UsageReader
        var facts: UsageSnapshot?
        /// The files as they were when merged: path, size, modification time.
        var signature: [FileSignature]
        var mergedAt: Int64
    }

    struct FileSignature: Equatable {
        var path: String
        var size: Int64
        var modified: Int64
    }

    private let merged = Mutex<Merged?>(nil)

    /// - Parameters:
    ///   - paths: piamd's usage files or directories of them (`usage.paths`).
    ///   - refreshMS: `usage.refresh_ms`.
    public init(paths: [String], refreshMS: Int64 = 30_000) {
        self.paths = paths
        self.refreshMS = refreshMS
    }

    /// Whether any usage file is configured.
    public var configured: Bool { !paths.isEmpty }

    /// Runs `body` on the merged files under the cache's lock, merging first when there is no
    /// merge yet or the files changed since one at least ``refreshMS`` old; `nil` when none are
    /// configured. A configured directory piamd has not written to yet reads as no use.
    public func read<T: Sendable>(_ body: (UsageReader) throws -> T) throws -> T? {
        guard configured else { return nil }
        return try merged.withLock { m throws -> T in
            let reader = try current(&m).reader
            return try body(reader)
        }
    }

    /// Each person's last allowed decision and each holding's last use, for findings and
    /// reviews: ``PIAMStore/NoUsage`` when none are configured (everyone counts as unused).
    public func facts() throws -> any UsageFacts {
        guard configured else { return NoUsage() }
        return try merged.withLock { m throws -> UsageSnapshot in
            _ = try current(&m)
            if let f = m!.facts { return f }
            let f = try m!.reader.facts()
            m!.facts = f
            return f
        }
    }

    /// The merge to read, made anew when due.
    private func current(_ m: inout Merged?) throws -> Merged {
        let now = Self.monotonicMS()
        if let existing = m, now - existing.mergedAt < refreshMS { return existing }
        let files = try UsageReader.files(paths, allowEmpty: true)
        let signature = files.flatMap { [Self.signature($0), Self.signature($0 + "-wal")] }
        if let existing = m, existing.signature == signature {
            m!.mergedAt = now
            return existing
        }
        let fresh = Merged(reader: try UsageReader(paths: files), facts: nil, signature: signature, mergedAt: now)
        m = fresh
        return fresh
    }

    static func signature(_ path: String) -> FileSignature {
        var st = stat()
        guard stat(path, &st) == 0 else { return FileSignature(path: path, size: -1, modified: -1) }
        return FileSignature(path: path, size: Int64(st.st_size),
                             modified: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec))
    }

    static func monotonicMS() -> Int64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Int64(t.tv_sec) * 1000 + Int64(t.tv_nsec) / 1_000_000
    }
}

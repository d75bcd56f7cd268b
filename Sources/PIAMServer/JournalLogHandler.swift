import Foundation
import Logging
import PIAMStore

/// A swift-log handler writing one line per event to stderr, in the form journald reads.
///
/// Under systemd (`JOURNAL_STREAM` is set, so stderr is connected to the journal) every line
/// starts with the syslog priority in angle brackets (`<3>` error, `<4>` warning, `<6>` info,
/// `<7>` debug — sd-daemon(3)), so `journalctl -p warning` filters correctly and the journal
/// adds its own timestamps. Elsewhere lines carry an RFC 3339 timestamp and the level name.
public struct JournalLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let journal: Bool

    /// - Parameters:
    ///   - label: the logger's label.
    ///   - level: the threshold below which events are dropped.
    ///   - journal: whether to write `<N>` priority prefixes; default: `JOURNAL_STREAM` is set.
    public init(label: String, level: Logger.Level, journal: Bool = ProcessInfo.processInfo.environment["JOURNAL_STREAM"] != nil) {
        self.label = label
        self.logLevel = level
        self.journal = journal
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// The syslog priority of a level.
    public static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let p = metadataProvider { all.merge(p.get(), uniquingKeysWith: { _, new in new }) }
        if let m = event.metadata { all.merge(m, uniquingKeysWith: { _, new in new }) }
        var line = journal ? "<\(Self.priority(event.level))>" : "\(RFC3339.format(QueryEvaluator.now())) \(event.level) "
        line += event.message.description
        if let error = event.error { all["error"] = "\(error)" }
        for (k, v) in all.sorted(by: { $0.key < $1.key }) {
            line += " \(k)=\(Self.quote("\(v)"))"
        }
        line += "\n"
        // One write(2) per line, so concurrent lines never interleave.
        line.utf8CString.withUnsafeBufferPointer { p in
            _ = Foundation.write(2, p.baseAddress, p.count - 1)
        }
    }

    static func quote(_ s: String) -> String {
        s.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\\\"") + "\"" : s
    }
}

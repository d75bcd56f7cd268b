import Foundation
import PIAMEngine
import PIAMStore

/// Which decisions the decision log keeps (`decision_log.mode`, `decision_log.sample`).
public struct DecisionLogPolicy: Sendable, Hashable {
    /// `all` or `deny` (denials only).
    public var denyOnly: Bool
    /// Keep one in this many of the decisions the mode selects (1: every one).
    public var sample: Int

    public init(denyOnly: Bool, sample: Int) {
        self.denyOnly = denyOnly
        self.sample = max(1, sample)
    }
}

/// One event loop's decision-log records since the last flush, in a byte arena: a fixed header
/// and the request's four ids copied from the request's bytes — no formatting, no allocation
/// once the arena has grown. The flusher turns them into NDJSON lines on its own thread.
///
/// At most `maxBytes` per interval; a record past it is dropped and counted.
struct DecisionLogBuffer {
    let policy: DecisionLogPolicy
    let maxBytes: Int
    /// The loop's index, part of each decision id.
    let loop: Int
    private(set) var bytes: [UInt8] = []
    private(set) var dropped = 0
    private var seen = 0
    private var seq: UInt64 = 0

    init(policy: DecisionLogPolicy, maxBytes: Int, loop: Int) {
        self.policy = policy
        self.maxBytes = maxBytes
        self.loop = loop
        bytes.reserveCapacity(min(maxBytes, 1 << 16))
    }

    /// Whether decision `d` is one to log (counts it for sampling).
    @inline(__always)
    mutating func wants(_ d: Decision) -> Bool {
        if policy.denyOnly && d.allowed { return false }
        seen &+= 1
        return policy.sample == 1 || seen % policy.sample == 0
    }

    /// Appends one record; `ids` are the subject, action, resource type and id.
    mutating func append(_ d: Decision, holding: Int32, revision: Int64, now: Timestamp,
                         _ subject: UnsafeRawBufferPointer, _ action: UnsafeRawBufferPointer,
                         _ type: UnsafeRawBufferPointer, _ id: UnsafeRawBufferPointer) {
        let size = 29 + 8 + min(subject.count, 65535) + min(action.count, 65535) + min(type.count, 65535) + min(id.count, 65535)
        guard bytes.count + size <= maxBytes else {
            dropped &+= 1
            return
        }
        seq &+= 1
        Self.put(&bytes, UInt64(bitPattern: now))
        Self.put(&bytes, UInt64(bitPattern: revision))
        Self.put(&bytes, seq)
        Self.put(&bytes, UInt32(bitPattern: holding))
        bytes.append(d.reason.rawValue)
        for field in [subject, action, type, id] {
            let n = min(field.count, 65535)
            bytes.append(UInt8(n & 0xFF))
            bytes.append(UInt8(n >> 8))
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: field[0..<n]))
        }
    }

    @inline(__always)
    static func put<T: FixedWidthInteger>(_ b: inout [UInt8], _ v: T) {
        withUnsafeBytes(of: v.littleEndian) { b.append(contentsOf: $0) }
    }

    /// Hands the records over and starts an empty arena.
    mutating func take() -> (records: [UInt8], dropped: Int) {
        defer {
            bytes = []
            bytes.reserveCapacity(min(maxBytes, 1 << 16))
            dropped = 0
        }
        return (bytes, dropped)
    }

    /// The records of `arena` as NDJSON lines, holdings named on `graph` (the graph that decided).
    static func lines(_ arena: [UInt8], loop: Int, process: String, graph: AccessGraph?) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(arena.count * 3)
        var i = 0
        func u64(_ at: Int) -> UInt64 {
            var v: UInt64 = 0
            for k in 0..<8 { v |= UInt64(arena[at + k]) << (8 * k) }
            return v
        }
        while i + 29 <= arena.count {
            let now = Int64(bitPattern: u64(i)), revision = Int64(bitPattern: u64(i + 8)), seq = u64(i + 16)
            var h: UInt32 = 0
            for k in 0..<4 { h |= UInt32(arena[i + 24 + k]) << (8 * k) }
            let reason = Reason(rawValue: arena[i + 28]) ?? .noPermission
            i += 29
            var fields: [String] = []
            for _ in 0..<4 {
                let n = Int(arena[i]) | Int(arena[i + 1]) << 8
                fields.append(String(decoding: arena[(i + 2)..<(i + 2 + n)], as: UTF8.self))
                i += 2 + n
            }
            func raw(_ text: String) { out.append(contentsOf: text.utf8) }
            func string(_ text: String) { JSONText.appendString(text, to: &out) }
            raw("{\"decision_id\":\"\(process)-\(loop)-\(seq)\",\"timestamp\":\"\(RFC3339.format(now))\",\"subject\":")
            string(fields[0])
            raw(",\"action\":")
            string(fields[1])
            raw(",\"resource\":{\"type\":")
            string(fields[2])
            raw(",\"id\":")
            string(fields[3])
            raw("},\"result\":\"\(reason == .allowed ? "allow" : "deny")\",\"reason\":\"\(reason.name)\",\"revision\":\(revision),\"holding\":")
            switch graph?.usageHolding(Int32(bitPattern: h)) {
            case .assignment(let user, let role, let scope)?:
                raw("{\"source\":\"assignment\",\"user\":")
                string(user)
                raw(",\"role\":")
                string(role)
                raw(",\"scope\":")
                string(scope)
                raw("}")
            case .orgGrant(let org, let role)?:
                raw("{\"source\":\"org_grant\",\"org\":")
                string(org)
                raw(",\"role\":")
                string(role)
                raw("}")
            case nil:
                raw("null")
            }
            raw("}\n")
        }
        return out
    }
}

/// The decision log file: appended NDJSON, rotated at `maxBytes` into `PATH.1` … `PATH.keep`
/// (the oldest removed). Used by ``UsageService`` on its writer thread only.
final class DecisionLogFile {
    let path: String
    let maxBytes: Int
    let keep: Int
    private var handle: FileHandle?
    private var size = 0

    init(path: String, maxBytes: Int, keep: Int) throws {
        self.path = path
        self.maxBytes = maxBytes
        self.keep = keep
        try open()
    }

    private func open() throws {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o640]) else {
                throw PIAMError(.io, "decision_log.path \(path): cannot create the file")
            }
        }
        guard let h = FileHandle(forWritingAtPath: path) else { throw PIAMError(.io, "decision_log.path \(path): cannot open for writing") }
        size = Int(try h.seekToEnd())
        handle = h
    }

    /// Appends `lines` (whole lines), rotating first when they would pass `maxBytes`.
    func write(_ lines: [UInt8]) throws {
        if lines.isEmpty { return }
        if size > 0 && size + lines.count > maxBytes { try rotate() }
        try handle?.write(contentsOf: lines)
        size += lines.count
    }

    private func rotate() throws {
        try handle?.close()
        handle = nil
        let fm = FileManager.default
        if keep > 0 {
            try? fm.removeItem(atPath: "\(path).\(keep)")
            if keep > 1 {
                for n in stride(from: keep - 1, through: 1, by: -1) where fm.fileExists(atPath: "\(path).\(n)") {
                    try fm.moveItem(atPath: "\(path).\(n)", toPath: "\(path).\(n + 1)")
                }
            }
            try fm.moveItem(atPath: path, toPath: "\(path).1")
        } else {
            try fm.removeItem(atPath: path)
        }
        try open()
    }

    deinit { try? handle?.close() }
}

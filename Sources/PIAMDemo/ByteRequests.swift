import PIAMEngine

/// Check requests with their ids laid out as UTF-8 in one byte arena, the way piamd's socket
/// sees them, for timing ``PIAMEngine/AccessGraph/check(utf8:now:)`` against
/// ``PIAMEngine/AccessGraph/check(_:now:)`` on the same requests.
public struct ByteRequests: Sendable {
    private var arena: [UInt8] = []
    /// Per request: subject, action, type, id, org, owner (org/owner nil when absent).
    private var fields: [[Range<Int>?]] = []

    /// Lays out `requests` (their resource properties included).
    public init(_ requests: [CheckRequest]) {
        fields.reserveCapacity(requests.count)
        for r in requests {
            let values: [String?] = [r.subject, r.action, r.resource.type, r.resource.id, r.resource.org, r.resource.owner]
            fields.append(values.map { value in
                guard let value else { return nil }
                let start = arena.count
                arena.append(contentsOf: value.utf8)
                return start..<arena.count
            })
        }
    }

    /// The number of requests.
    public var count: Int { fields.count }

    /// Calls `body` with the requests as ``PIAMEngine/CheckBytes``, in the order given, valid
    /// only inside `body`.
    public func withItems<R>(_ body: ([CheckBytes]) throws -> R) rethrows -> R {
        try arena.withUnsafeBytes { all in
            let items = fields.map { f in
                let p = f.map { $0.map { UnsafeRawBufferPointer(rebasing: all[$0]) } }
                return CheckBytes(subject: p[0]!, action: p[1]!, resourceType: p[2]!, resourceID: p[3]!, org: p[4], owner: p[5])
            }
            return try body(items)
        }
    }
}

import PIAMEngine

/// One holding whose use is recorded: an assignment of a user, or an org grant (used by any
/// member it reaches).
public enum HoldingKey: Hashable, Sendable, Codable {
    case assignment(user: String, role: String, scope: String)
    case orgGrant(org: String, role: String)
}

/// What the usage files say about use: the facts behind dormant-access findings, review
/// recommendations and the usage reports. Times are Unix seconds (``Timestamp``).
public protocol UsageFacts: Sendable {
    /// The last time `user` was allowed a decision, or nil if never (in the files read).
    func lastAllowed(user: String) -> Timestamp?
    /// The last time this holding was the one that allowed a decision, or nil if never.
    func lastUse(of holding: HoldingKey) -> Timestamp?
}

/// No usage recorded: every holding and every person unused.
public struct NoUsage: UsageFacts {
    public init() {}
    public func lastAllowed(user: String) -> Timestamp? { nil }
    public func lastUse(of holding: HoldingKey) -> Timestamp? { nil }
}

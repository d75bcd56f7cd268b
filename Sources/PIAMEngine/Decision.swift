/// Why a request was allowed or denied (DESIGN §3). The raw values are the wire numbers.
public enum Reason: UInt8, Sendable, Hashable, CaseIterable, Codable, CustomStringConvertible {
    case allowed = 0
    case unknownSubject = 1
    case subjectInactive = 2
    case subjectExpired = 3
    case orgInactive = 4
    case unknownResource = 5
    case noPermission = 6
    case outOfScope = 7
    case notOwner = 8
    case outsideCeiling = 9
    case grantExpired = 10
    case selfAction = 11
    case escalation = 12
    case unknownRole = 13
    case hostOnly = 14
    case unknownOrg = 15

    /// The reason's stable snake_case name, used in text, JSON and logs.
    public var name: String {
        switch self {
        case .allowed: "allowed"
        case .unknownSubject: "unknown_subject"
        case .subjectInactive: "subject_inactive"
        case .subjectExpired: "subject_expired"
        case .orgInactive: "org_inactive"
        case .unknownResource: "unknown_resource"
        case .noPermission: "no_permission"
        case .outOfScope: "out_of_scope"
        case .notOwner: "not_owner"
        case .outsideCeiling: "outside_ceiling"
        case .grantExpired: "grant_expired"
        case .selfAction: "self_action"
        case .escalation: "escalation"
        case .unknownRole: "unknown_role"
        case .hostOnly: "host_only"
        case .unknownOrg: "unknown_org"
        }
    }

    /// Parses a reason's snake_case name.
    public init?(name: String) {
        guard let r = Reason.allCases.first(where: { $0.name == name }) else { return nil }
        self = r
    }

    public var description: String { name }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(name)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let s = try c.decode(String.self)
        guard let r = Reason(name: s) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "unknown reason \"\(s)\"")
        }
        self = r
    }
}

/// The answer to a check: allowed or not, and why.
public struct Decision: Sendable, Hashable, Codable, CustomStringConvertible {
    public var allowed: Bool
    public var reason: Reason

    public init(allowed: Bool, reason: Reason) {
        self.allowed = allowed
        self.reason = reason
    }

    /// A denial with `reason`.
    public static func deny(_ reason: Reason) -> Decision { Decision(allowed: false, reason: reason) }
    /// An allowed decision.
    public static let allow = Decision(allowed: true, reason: .allowed)

    public var description: String { allowed ? "allow" : "deny (\(reason.name))" }
}

/// The resource a query names: `TYPE:ID`, plus the optional properties `org` and `owner`
/// that locate a resource the graph does not hold (DESIGN §2).
public struct ResourceRef: Sendable, Hashable, CustomStringConvertible {
    public var type: String
    public var id: String
    /// The `org` property: the location of an unregistered resource (an org id).
    public var org: String?
    /// The `owner` property: the owner of an unregistered resource (a user id or alias).
    public var owner: String?

    public init(type: String, id: String, org: String? = nil, owner: String? = nil) {
        self.type = type
        self.id = id
        self.org = org
        self.owner = owner
    }

    /// Builds a reference from wire-style properties; keys other than `org` and `owner` are
    /// ignored (PROTOCOL: "Resource properties understood: org, owner").
    public init(type: String, id: String, properties: [(key: String, value: String)]) {
        self.init(type: type, id: id)
        for (k, v) in properties {
            if k == "org" { org = v } else if k == "owner" { owner = v }
        }
    }

    /// Parses `TYPE:ID` (the id may itself contain colons).
    public init?(parsing text: String) {
        guard let colon = text.firstIndex(of: ":") else { return nil }
        let type = String(text[..<colon])
        let id = String(text[text.index(after: colon)...])
        guard !type.isEmpty, !id.isEmpty else { return nil }
        self.init(type: type, id: id)
    }

    public var description: String { "\(type):\(id)" }
}

/// One authorization question: may `subject` do `action` to `resource`?
public struct CheckRequest: Sendable, Hashable {
    public var subject: String
    public var action: String
    public var resource: ResourceRef

    public init(subject: String, action: String, resource: ResourceRef) {
        self.subject = subject
        self.action = action
        self.resource = resource
    }
}

/// One authorization question whose ids are UTF-8 bytes borrowed from a request buffer: the
/// allocation-free form of ``CheckRequest`` that piamd's socket decodes CHECK and CHECK_BATCH
/// into. ``AccessGraph/check(utf8:now:)`` decides it exactly as it decides the same request
/// as strings.
///
/// The pointers are borrowed: they must stay valid for the call, and every field must be valid
/// UTF-8 (the codec validates first; a field that is not can never name anything, but PROTOCOL
/// answers it with BAD_REQUEST rather than a decision).
public struct CheckBytes {
    public var subject: UnsafeRawBufferPointer
    public var action: UnsafeRawBufferPointer
    public var resourceType: UnsafeRawBufferPointer
    public var resourceID: UnsafeRawBufferPointer
    /// The `org` property, when given (an empty value is given, and names no org).
    public var org: UnsafeRawBufferPointer?
    /// The `owner` property, when given.
    public var owner: UnsafeRawBufferPointer?

    public init(subject: UnsafeRawBufferPointer, action: UnsafeRawBufferPointer, resourceType: UnsafeRawBufferPointer,
                resourceID: UnsafeRawBufferPointer, org: UnsafeRawBufferPointer? = nil, owner: UnsafeRawBufferPointer? = nil) {
        self.subject = subject
        self.action = action
        self.resourceType = resourceType
        self.resourceID = resourceID
        self.org = org
        self.owner = owner
    }
}

@available(*, unavailable)
extension CheckBytes: Sendable {}

/// The ids of a resource reference, as the engine looks them up: strings, or borrowed bytes.
protocol ResourceKeys {
    associatedtype Key: IDKey
    var typeKey: Key { get }
    var idKey: Key { get }
    var orgKey: Key? { get }
    var ownerKey: Key? { get }
}

/// The ids of a check, as the engine looks them up.
protocol CheckKeys: ResourceKeys {
    var subjectKey: Key { get }
    var actionKey: Key { get }
}

extension ResourceRef: ResourceKeys {
    var typeKey: String { type }
    var idKey: String { id }
    var orgKey: String? { org }
    var ownerKey: String? { owner }
}

extension CheckRequest: CheckKeys {
    var subjectKey: String { subject }
    var actionKey: String { action }
    var typeKey: String { resource.type }
    var idKey: String { resource.id }
    var orgKey: String? { resource.org }
    var ownerKey: String? { resource.owner }
}

extension CheckBytes: CheckKeys {
    var subjectKey: UnsafeRawBufferPointer { subject }
    var actionKey: UnsafeRawBufferPointer { action }
    var typeKey: UnsafeRawBufferPointer { resourceType }
    var idKey: UnsafeRawBufferPointer { resourceID }
    var orgKey: UnsafeRawBufferPointer? { org }
    var ownerKey: UnsafeRawBufferPointer? { owner }
}

/// How a batch of checks is evaluated (the three AuthZEN evaluation semantics).
public enum BatchSemantic: UInt8, Sendable, Hashable, CaseIterable, Codable {
    /// Evaluate every request.
    case executeAll = 0
    /// Stop after the first denial (it is the last answer returned).
    case denyOnFirstDeny = 1
    /// Stop after the first permit (it is the last answer returned).
    case permitOnFirstPermit = 2

    /// The AuthZEN spelling.
    public var name: String {
        switch self {
        case .executeAll: "execute_all"
        case .denyOnFirstDeny: "deny_on_first_deny"
        case .permitOnFirstPermit: "permit_on_first_permit"
        }
    }

    /// Whether a batch with this semantic ends after decision `d` (which is then its last
    /// answer): the one statement of the short-circuit rule, which every face's batch follows.
    @inlinable
    public func stops(after d: Decision) -> Bool {
        switch self {
        case .executeAll: false
        case .denyOnFirstDeny: !d.allowed
        case .permitOnFirstPermit: d.allowed
        }
    }

    /// Parses the AuthZEN spelling.
    public init?(name: String) {
        guard let s = BatchSemantic.allCases.first(where: { $0.name == name }) else { return nil }
        self = s
    }
}

/// One page of a list query. `nextCursor` is `nil` when there is nothing more.
public struct Page: Sendable, Hashable, Codable {
    public var items: [String]
    public var nextCursor: String?

    public init(items: [String], nextCursor: String?) {
        self.items = items
        self.nextCursor = nextCursor
    }
}

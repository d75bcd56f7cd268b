import PIAMEngine

/// What every target shares: a small graph with ASCII and non-ASCII ids, long and short, and a
/// failure that libFuzzer records as a crash with its input.
public enum FuzzCommon {
    /// The revision the targets answer at.
    public static let revision: UInt64 = 10
    /// A fixed clock, so an answer is a function of the input alone.
    public static let now: Timestamp = 1_800_000_000_000

    /// host ⊃ partners ⊃ acme ⊃ (long sub-org), zoë-brokers; users with aliases, a suspended
    /// one, a host admin; claims owned and located.
    public static let graph: AccessGraph = {
        var d = GraphData()
        let longOrg = "a-very-long-organization-id-0001"
        let longUser = "bob-with-a-long-identifier@acme.example"
        d.orgs = [
            OrgRecord(id: "host", parent: nil, kind: .host, status: .active),
            OrgRecord(id: "partners", parent: "host", kind: .host, status: .active),
            OrgRecord(id: "acme", parent: "partners", kind: .partner, status: .active),
            OrgRecord(id: longOrg, parent: "acme", kind: .partner, status: .active),
            OrgRecord(id: "zoë-brokers", parent: "partners", kind: .partner, status: .active),
            OrgRecord(id: "gone", parent: "partners", kind: .partner, status: .suspended),
        ]
        let perms = ["claim:read", "claim:submit:owner", "user:view", "user:suspend", "org:view", "document:*"]
        d.roles = [
            RoleRecord(id: "agent", permissions: perms.map { try! Permission(parsing: $0) }),
            RoleRecord(id: "admin", permissions: ["user:*", "claim:*", "org:*", "role:*"].map { try! Permission(parsing: $0) }),
        ]
        d.entitlements = ["acme", longOrg, "zoë-brokers", "gone"].flatMap { o in ["agent", "admin"].map { EntitlementRecord(org: o, role: $0) } }
        d.users = [
            UserRecord(id: "alice", org: "acme", aliases: ["alice@acme.example"], status: .active),
            UserRecord(id: longUser, org: longOrg, status: .active),
            UserRecord(id: "zoë", org: "zoë-brokers", status: .active),
            UserRecord(id: "carol", org: "acme", status: .suspended),
            UserRecord(id: "hq-admin", org: "host", status: .active),
            UserRecord(id: "gus", org: "gone", status: .active),
        ]
        d.resources = [
            ResourceRecord(type: "claim", id: "CLM-1", org: "acme", owner: "alice"),
            ResourceRecord(type: "claim", id: "CLM-2", org: longOrg, owner: longUser),
            ResourceRecord(type: "claim", id: "CLM-ü", org: "zoë-brokers", owner: "zoë"),
        ]
        d.assignments = [
            AssignmentRecord(user: "alice", role: "agent", scope: "acme"),
            AssignmentRecord(user: longUser, role: "admin", scope: longOrg),
            AssignmentRecord(user: "zoë", role: "agent"),
            AssignmentRecord(user: "hq-admin", role: "admin", scope: "host"),
            AssignmentRecord(user: "gus", role: "agent", scope: "gone"),
        ]
        return try! GraphBuilder.build(d)
    }()

    /// Stops the run with `message`: libFuzzer saves the input as a crash.
    public static func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                               file: StaticString = #fileID, line: UInt = #line) {
        if !condition() { fatalError("invariant broken: \(message())", file: file, line: line) }
    }
}

/// Reads the fuzzer's input as a few parameters followed by data.
public struct FuzzInput {
    public var bytes: UnsafeRawBufferPointer
    public var index = 0

    public init(_ start: UnsafeRawPointer, _ count: Int) {
        bytes = UnsafeRawBufferPointer(start: start, count: count)
    }

    /// The next byte (0 past the end).
    public mutating func byte() -> UInt8 {
        guard index < bytes.count else { return 0 }
        defer { index += 1 }
        return bytes[index]
    }

    /// Everything not read yet.
    public var rest: [UInt8] { index < bytes.count ? Array(bytes[index...]) : [] }
}

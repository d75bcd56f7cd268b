import PIAMEngine
@testable import PIAMServer
import PIAMStore
import Testing

/// `LoopUsage`, in-process: a feature's entry carries the holding that allowed its latest
/// decisions; when another takes over, the run moves to the holdings table with its last use.
@Suite("the usage tally (one event loop's tables)")
struct UsageTallyTests {
    /// `tinyGraph` plus an org grant of claims-agent on acme: alice holds claims-agent twice.
    func graph() throws -> AccessGraph {
        var d = try tinyGraph().graphData()
        d.orgGrants = [OrgGrantRecord(org: "acme", role: "claims-agent", includeSuborgs: true, validUntil: nil, grantedBy: nil, grantedAt: nil)]
        return try GraphBuilder.build(d)
    }

    @Test("a feature allowed by one holding, another, then the first again: each holding's uses and last use exact")
    func holdingRuns() throws {
        let g = try graph()
        var f = DecisionFacts()
        let d = g.check(CheckRequest(subject: "alice", action: "read", resource: ResourceRef(type: "claim", id: "CLM-1")), now: 1, facts: &f)
        #expect(d.allowed && f.holding != -1)
        let assignment = try #require((0..<16).map(Int32.init).first {
            g.usageHolding($0) == .assignment(user: "alice", role: "claims-agent", scope: "acme")
        })
        let grant: Int32 = -2
        #expect(g.usageHolding(grant) == .orgGrant(org: "acme", role: "claims-agent"))

        let usage = LoopUsage(maxKeys: 100)
        func record(_ holding: Int32, at t: Timestamp) {
            var x = f
            x.holding = holding
            usage.record(x, allowed: holding != -1, graph: g, now: t)
        }
        record(assignment, at: 10); record(assignment, at: 20); record(assignment, at: 30)
        record(grant, at: 40); record(grant, at: 50)
        record(-1, at: 55)  // a denial: no holding
        record(assignment, at: 60)
        #expect(usage.keyCount == 3, "the feature, the assignment's run moved out at 40 and the grant's at 60")

        let batch = UsageService.name(usage.take().tables, merging: UsageBatch())
        #expect(batch.features == [UsageBatch.Feature(user: "alice", partner: "acme", type: "claim", action: "read", allowed: 6, denied: 1,
                                                      firstAllowed: 10, lastAllowed: 60)])
        let holdings = Dictionary(uniqueKeysWithValues: batch.holdings.map { ($0.holding, $0) })
        #expect(holdings.count == 2)
        #expect(holdings[.assignment(user: "alice", role: "claims-agent", scope: "acme")]?.uses == 4)
        #expect(holdings[.assignment(user: "alice", role: "claims-agent", scope: "acme")]?.lastUsed == 60)
        #expect(holdings[.orgGrant(org: "acme", role: "claims-agent")]?.uses == 2)
        #expect(holdings[.orgGrant(org: "acme", role: "claims-agent")]?.lastUsed == 50)
        // The next interval starts empty.
        #expect(usage.keyCount == 0 && UsageService.name(usage.take().tables, merging: UsageBatch()).isEmpty)
    }

    @Test("past max_keys a decision is dropped and counted, and what was admitted stays exact")
    func boundedKeys() throws {
        let g = try graph()
        let usage = LoopUsage(maxKeys: 16)
        var f = DecisionFacts()
        _ = g.check(CheckRequest(subject: "alice", action: "read", resource: ResourceRef(type: "claim", id: "CLM-1")), now: 1, facts: &f)
        for i in 0..<40 {
            var x = f
            x.action = Int32(i)  // 40 distinct features of one person
            usage.record(x, allowed: false, graph: g, now: 5)
        }
        #expect(usage.keyCount == 16 && usage.dropped == 24)
        let t = usage.take()
        #expect(t.dropped == 24)
        for table in t.tables { table.free() }
    }

    @Test("times are kept relative to the interval's first decision: real timestamps come back exact, a clock stepped back reads as that first time")
    func relativeTimes() throws {
        let g = try graph()
        var f = DecisionFacts()
        let t0: Timestamp = 1_800_000_000_123  // 2027: far past what 32 bits of milliseconds hold
        let d = g.check(CheckRequest(subject: "alice", action: "read", resource: ResourceRef(type: "claim", id: "CLM-1")), now: t0, facts: &f)
        #expect(d.allowed)
        let usage = LoopUsage(maxKeys: 100)
        usage.record(f, allowed: true, graph: g, now: t0)
        usage.record(f, allowed: true, graph: g, now: t0 + 86_400_000)  // a day later, same interval
        var batch = UsageService.name(usage.take().tables, merging: UsageBatch())
        #expect(batch.features.map { [$0.firstAllowed, $0.lastAllowed] } == [[t0, t0 + 86_400_000]])
        #expect(batch.holdings.map(\.lastUsed) == [t0 + 86_400_000])
        // The next interval counts from its own first decision; one before it (the clock stepped
        // back) is recorded at that first time, never as a time before it or far after.
        usage.record(f, allowed: true, graph: g, now: t0 + 5_000)
        usage.record(f, allowed: true, graph: g, now: t0 + 1_000)
        batch = UsageService.name(usage.take().tables, merging: UsageBatch())
        #expect(batch.features.map { [$0.firstAllowed, $0.lastAllowed, Timestamp($0.allowed)] } == [[t0 + 5_000, t0 + 5_000, 2]])
    }
}

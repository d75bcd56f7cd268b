import PIAMDemo
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

    @Test("two loops' tables, a graph replaced mid-interval and a batch carried from a failed flush: the named batch equals a tally kept in names", arguments: [1, 2, 3])
    func mergedBatchEqualsATallyInNames(seed: UInt64) throws {
        let graphs = [try graph(), try graph()]  // the same data, two graphs: slots renumbered as a reload does
        let subjects = ["alice", "acme-admin", "nobody"], actions = ["read", "view", "assign_role", "submit", "no-such-action"]
        let resources = [ResourceRef(type: "claim", id: "CLM-1"), ResourceRef(type: "org", id: "acme"), ResourceRef(type: "user", id: "alice"),
                         ResourceRef(type: "claim", id: "CLM-404"), ResourceRef(type: "no-such-type", id: "x")]
        var rng = SplitMix64(seed: seed)
        let loops = [LoopUsage(maxKeys: 1000), LoopUsage(maxKeys: 1000)]
        var expected: [FeatureKey: UsageBatch.Feature] = [:]
        var expectedHoldings: [HoldingKey: UsageBatch.Holding] = [:]
        // The carried batch: what a failed write handed back, already in names.
        let carried = UsageBatch(features: [UsageBatch.Feature(user: "alice", partner: "acme", type: "claim", action: "read", allowed: 2, denied: 1,
                                                               firstAllowed: 5, lastAllowed: 7)],
                                 holdings: [UsageBatch.Holding(holding: .orgGrant(org: "acme", role: "claims-agent"), uses: 2, lastUsed: 7)])
        expected[FeatureKey(user: "alice", type: "claim", action: "read")] = carried.features[0]
        expectedHoldings[carried.holdings[0].holding] = carried.holdings[0]
        for n in 0..<400 {
            let g = graphs[n < 200 ? 0 : 1]
            let now = Timestamp(100 + n)
            var f = DecisionFacts()
            let d = g.check(CheckRequest(subject: subjects.randomElement(using: &rng)!, action: actions.randomElement(using: &rng)!,
                                         resource: resources.randomElement(using: &rng)!), now: now, facts: &f)
            // An allowed decision credited to either of alice's holdings at random (as a
            // graph whose first allowing holding changes would): runs move between tables.
            if d.allowed, f.holding != -1, g.usageNames(f)?.user == "alice", Int.random(in: 0..<2, using: &rng) == 0 {
                f.holding = f.holding == -2 ? try #require((0..<16).map(Int32.init).first {
                    g.usageHolding($0) == .assignment(user: "alice", role: "claims-agent", scope: "acme")
                }) : -2
            }
            loops[Int.random(in: 0..<2, using: &rng)].record(f, allowed: d.allowed, graph: g, now: now)
            guard let names = g.usageNames(f) else { continue }
            let k = FeatureKey(user: names.user, type: names.type, action: names.action)
            var x = expected[k] ?? UsageBatch.Feature(user: names.user, partner: names.partner ?? "", type: names.type, action: names.action,
                                                      allowed: 0, denied: 0, firstAllowed: nil, lastAllowed: nil)
            if d.allowed {
                x.allowed += 1
                x.firstAllowed = x.firstAllowed ?? now
                x.lastAllowed = now
                let h = try #require(g.holdingKey(f.holding))
                var y = expectedHoldings[h] ?? UsageBatch.Holding(holding: h, uses: 0, lastUsed: 0)
                y.uses += 1
                y.lastUsed = now
                expectedHoldings[h] = y
            } else {
                x.denied += 1
            }
            expected[k] = x
        }
        let tables = loops.flatMap { $0.take().tables }
        #expect(tables.count == 4, "each loop: the first graph's tables retired, then the second's")
        let batch = UsageService.name(tables, merging: carried)
        #expect(Set(batch.features) == Set(expected.values) && batch.features.count == expected.count)
        #expect(Set(batch.holdings) == Set(expectedHoldings.values) && batch.holdings.count == expectedHoldings.count)
        // One graph, nothing carried: the slots' merge alone gives one row per key.
        let single = [LoopUsage(maxKeys: 1000), LoopUsage(maxKeys: 1000)]
        var f = DecisionFacts()
        let d = graphs[0].check(CheckRequest(subject: "alice", action: "read", resource: resources[0]), now: 1, facts: &f)
        for (k, u) in single.enumerated() { u.record(f, allowed: d.allowed, graph: graphs[0], now: 10 + Timestamp(k)) }
        let one = UsageService.name(single.flatMap { $0.take().tables }, merging: UsageBatch())
        #expect(one.features == [UsageBatch.Feature(user: "alice", partner: "acme", type: "claim", action: "read", allowed: 2, denied: 0,
                                                    firstAllowed: 10, lastAllowed: 11)])
        #expect(one.holdings.map(\.uses) == [2])
    }
}

import Foundation
import PIAMDemo
import PIAMEngine
@testable import PIAMStore
import Testing

/// What-if: a list of operations decided and performed as `apply` would, rolled back, and the
/// effective permissions of the people it can touch diffed. It must equal the diff of the
/// engine's answers for everyone before and after actually applying the same list.
@Suite("what-if equals the diff of really applying the same operations")
struct WhatIfTests {
    static let now = AdminWriterTests.now

    /// Everyone's access (effective permissions, when they may act at all) on a graph.
    static func everyone(_ g: AccessGraph) -> [String: Set<String>] {
        var out: [String: Set<String>] = [:]
        for u in g.allUserIDs {
            out[u] = Set(g.access(of: u, now: now).effective.map { "\($0.permission) @\($0.scope)" })
        }
        return out
    }

    /// The diff of two full pictures: user → (gained, lost), people with a difference only.
    static func bruteDiff(_ a: [String: Set<String>], _ b: [String: Set<String>]) -> [String: [Set<String>]] {
        var out: [String: [Set<String>]] = [:]
        for u in Set(a.keys).union(b.keys) {
            let x = a[u] ?? [], y = b[u] ?? []
            if x != y { out[u] = [y.subtracting(x), x.subtracting(y)] }
        }
        return out
    }

    static func asSets(_ d: AccessDiff) -> [String: [Set<String>]] {
        var out: [String: [Set<String>]] = [:]
        for p in d.people {
            out[p.user] = [Set(p.gained.map { "\($0.permission) @\($0.scope)" }), Set(p.lost.map { "\($0.permission) @\($0.scope)" })]
        }
        return out
    }

    static let actors = ["nina.hq", "pete.pm", "acme-brokers-admin", "acme-brokers-north-admin", "bluesky-agency-admin",
                         "harbor-adjusters-admin", "acme-brokers-north-b1-agent1"]

    /// A random operation by a random actor: most allowed, some refused by the rules (a partner
    /// admin outside its partner, an agent with no admin role), some failing (a missing grant).
    static func randomItem(_ data: GraphData, _ rng: inout SplitMix64, serial: Int) -> AdminBatchItem {
        func pick(_ xs: [String]) -> String { xs[Int(rng.next() % UInt64(xs.count))] }
        // Mostly the business (so that most lists commit), else anyone (so that some are refused).
        let actor = rng.next() % 10 < 8 ? "nina.hq" : pick(actors)
        let partnerOrgs = data.orgs.filter { $0.kind == .partner }.map(\.id)
        let users = data.users.map(\.id)
        let roles = ["claims-viewer", "claims-handler", "policy-viewer", "quote-creator", "catalog-reader", "commission-viewer"]
        let op: AdminOperation
        switch rng.next() % 8 {
        case 0: op = .unentitle(org: pick(partnerOrgs), role: pick(roles))
        case 1: op = .entitle(org: pick(partnerOrgs), role: pick(roles))
        case 2: op = .updateRole(role: pick(roles), name: nil, description: nil,
                                 permissions: [pick(["claim:read", "policy:read", "document:read", "quote:create"]), "statement:read:owner"])
        case 3: op = .revokeFromOrg(org: pick(partnerOrgs), role: pick(["catalog-reader", "policy-viewer", "partner-user"]))
        case 4: op = .moveUser(user: pick(users), org: pick(partnerOrgs))
        case 5: op = .removeUser(user: pick(users))
        case 6: op = .updateUser(user: pick(users), name: nil, email: nil, validUntil: .some(now - 1))
        default: op = AdminWriterTests.randomOperation(data, &rng, serial: serial)
        }
        return AdminBatchItem(actor: actor, operation: op)
    }

    static func auditCount(_ store: Store) throws -> Int {
        let s = try store.db.prepare("SELECT count(*) FROM audit")
        _ = try s.step()
        return Int(s.int64(0))
    }

    @Test func randomizedListsAgreeWithRealApplies() throws {
        let dir = TempDir()
        var store = try AdminWriterTests.demoStore(dir)
        var rng = SplitMix64(seed: 16)
        var committed = 0, refused = 0, failed = 0, peopleChanged = 0
        for list in 0..<220 {
            if list % 40 == 39 {
                // Start again from the demo now and then: later lists would otherwise mostly act
                // on a graph the earlier ones emptied.
                store = try AdminWriterTests.demoStore(dir, "piam-\(list).db")
            }
            let before = try store.loadGraph()
            let data = before.graph.graphData()
            let items = (0..<(1 + Int(rng.next() % 3))).map { Self.randomItem(data, &rng, serial: list * 10 + $0) }
            let audits = try Self.auditCount(store)

            let w = try store.whatIf(items, now: Self.now)
            #expect(try store.revision() == before.revision, "list \(list): a what-if writes nothing")
            #expect(try Self.auditCount(store) == audits, "list \(list): a what-if audits nothing")
            #expect(w.revision == before.revision)

            let real = try store.apply(items, now: Self.now)
            #expect(real.committed == w.wouldCommit, "list \(list): \(items.map(\.operation.name))")
            for (x, y) in zip(w.results, real.results) {
                // A real run marks the entries before a refusal rolled_back: the what-if, ok.
                let status = y.status == "rolled_back" ? "ok" : y.status
                #expect(x.status == status && x.index == y.index, "list \(list) entry \(x.index)")
                if x.status == "refused" || x.status == "failed" {
                    #expect(x.reason == y.reason && x.message == y.message, "list \(list) entry \(x.index)")
                }
            }
            let after = try store.loadGraph()
            let expected = Self.bruteDiff(Self.everyone(before.graph), Self.everyone(after.graph))
            #expect(Self.asSets(w.diff) == expected, "list \(list): \(items.map { "\($0.actor) \($0.operation.name) \($0.operation.target(actor: $0.actor))" })")
            if real.committed { committed += 1 } else if w.results.contains(where: { $0.status == "refused" }) { refused += 1 } else { failed += 1 }
            peopleChanged += expected.count
        }
        #expect(committed > 60 && refused > 10 && failed > 5, "committed \(committed), refused \(refused), failed \(failed)")
        #expect(peopleChanged > 200, "the lists changed people's access: \(peopleChanged)")
    }

    @Test func theWritersWhatIfKeepsItsGraphAndWritesNothing() throws {
        let dir = TempDir()
        let store = try AdminWriterTests.demoStore(dir)
        let writer = try AdminWriter(store: store)
        let before = writer.current
        let items = [AdminBatchItem(actor: "nina.hq", operation: .suspendOrg(org: "acme-brokers-north")),
                     AdminBatchItem(actor: "nina.hq", operation: .grant(user: "bluesky-agency-admin", role: "claims-viewer", scope: nil, validUntil: nil))]
        let w = try writer.whatIf(items, now: Self.now)
        #expect(w.wouldCommit)
        #expect(writer.current.revision == before.revision)
        expectSame(writer.current.graph.graphData(), try store.loadGraph().graph.graphData())
        // Everyone of the north region loses everything; bluesky's admin gains claim:read.
        let losers = w.diff.people.filter { !$0.lost.isEmpty }
        #expect(losers.count > 5)
        for p in losers {
            #expect(p.gained.isEmpty)
            #expect(before.graph.accessReport(user: p.user, now: Self.now)!.orgPath.contains("acme-brokers-north"), "\(p.user)")
            #expect(before.graph.access(of: p.user, now: Self.now).effective.count == p.lost.count, "\(p.user) loses everything")
        }
        let gain = w.diff.people.first { $0.user == "bluesky-agency-admin" }
        #expect(gain?.gained.map(\.permission) == ["claim:read"] && gain?.gained.first?.scope == "bluesky-agency")
        #expect(gain?.gained.first?.via == ["assignment claims-viewer"])
        #expect(w.diff.considered < before.graph.counts.users, "only the people the change can touch are compared")
        // Then really applied, the graph moves as the what-if said.
        let real = try writer.apply(items, now: Self.now)
        #expect(real.committed)
    }

    @Test func aRefusedEntryIsReportedAndNothingIsGainedOrLost() throws {
        let dir = TempDir()
        let store = try AdminWriterTests.demoStore(dir)
        let items = [AdminBatchItem(actor: "acme-brokers-admin", operation: .suspendUser(user: "acme-brokers-north-b1-agent1")),
                     AdminBatchItem(actor: "acme-brokers-admin", operation: .suspendUser(user: "bluesky-agency-admin")),
                     AdminBatchItem(actor: "acme-brokers-admin", operation: .suspendUser(user: "acme-brokers-north-b1-agent2"))]
        let w = try store.whatIf(items, now: Self.now)
        #expect(!w.wouldCommit)
        #expect(w.results.map(\.status) == ["ok", "refused", "not_run"])
        #expect(w.results[1].reason == "out_of_scope")
        #expect(w.diff.people.isEmpty)
    }
}

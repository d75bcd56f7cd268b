import ArgumentParser
import Foundation
import PIAMDemo
import PIAMEngine
import PIAMStore

/// `piam-scale apply`: how long `AccessGraph.applying` takes for single-row changes of each
/// kind on a loaded graph, against the full load it replaces (measured in the same run).
struct ApplyLatency: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Time AccessGraph.applying for single-row changes of each kind, against a full load.",
        discussion: """
            Loads --db, then applies --iterations changes of each kind, each followed by its undo \
            (so the graph keeps its size), timing every apply. Each new graph replaces the previous \
            one, as in the daemon. The baseline is the full load of the same database in the same \
            run: the cost every change had before incremental apply.

            Example: .build/release/piam-scale apply --db /tmp/scale.db
            """)

    @Option(help: "The database (read only).") var db: String = "/tmp/piam-scale.db"
    @Option(help: "Applies per kind (half changes, half undos).") var iterations: Int = 400
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let store = try Store(path: db, readOnly: true)
        let t0 = ContinuousClock.now
        var graph = try store.loadGraph().graph
        let loadSeconds = (ContinuousClock.now - t0) / .seconds(1)
        Report.progress("loaded \(graph.counts.users) users in \(String(format: "%.2f", loadSeconds)) s")
        var rng = SplitMix64(seed: 0xA991)
        let users = graph.allUserIDs
        let orgs = graph.allOrgIDs
        let roles = try store.listRoles().map(\.id)
        let partnerOrgs = orgs.filter { graph.partnerRoot(ofOrg: $0) != nil }
        func user() throws -> UserRecord {
            let id = users[Int.random(in: 0..<users.count, using: &rng)]
            let u = try store.user(idOrAlias: id)!
            return UserRecord(id: u.id, org: u.org, status: u.status, validUntil: u.validUntil)
        }
        func pick<T>(_ xs: [T]) -> T { xs[Int.random(in: 0..<xs.count, using: &rng)] }

        // Each kind: a change and its undo.
        let kinds: [(String, () throws -> ([GraphChange], [GraphChange]))] = [
            ("user_status", {
                var u = try user()
                let back = u
                u.status = u.status == .active ? .suspended : .active
                return ([.user(id: u.id, u)], [.user(id: back.id, back)])
            }),
            ("user_new", {
                let u = UserRecord(id: "bench-\(UInt64.random(in: 0...UInt64.max, using: &rng))", org: pick(partnerOrgs), status: .active)
                return ([.user(id: u.id, u)], [.user(id: u.id, nil)])
            }),
            ("alias", {
                let u = try user()
                let a = "bench-alias-\(UInt64.random(in: 0...UInt64.max, using: &rng))"
                return ([.alias(a, user: u.id)], [.alias(a, user: nil)])
            }),
            ("assignment", {
                let u = try user()
                let a = AssignmentRecord(user: u.id, role: pick(roles), scope: u.org)
                let exists = try store.assignments(user: u.id).contains { $0.role == a.role && $0.scope == u.org }
                let add = GraphChange.assignment(user: u.id, role: a.role, scope: u.org, a)
                let remove = GraphChange.assignment(user: u.id, role: a.role, scope: u.org, nil)
                return exists ? ([remove], [add]) : ([add], [remove])
            }),
            ("resource_new", {
                let r = ResourceRecord(type: "claim", id: "bench-\(UInt64.random(in: 0...UInt64.max, using: &rng))", org: pick(partnerOrgs))
                return ([.resource(type: r.type, id: r.id, r)], [.resource(type: r.type, id: r.id, nil)])
            }),
            ("org_status", {
                let id = pick(partnerOrgs)
                let o = try store.org(id: id)!
                var r = OrgRecord(id: o.id, parent: o.parent, kind: o.kind, status: o.status)
                let back = r
                r.status = r.status == .active ? .suspended : .active
                return ([.org(id: id, r)], [.org(id: id, back)])
            }),
            ("org_new", {
                let r = OrgRecord(id: "bench-\(UInt64.random(in: 0...UInt64.max, using: &rng))", parent: pick(partnerOrgs), kind: .partner, status: .active)
                return ([.org(id: r.id, r)], [.org(id: r.id, nil)])
            }),
            ("entitlement", {
                let o = pick(partnerOrgs), r = pick(roles)
                let exists = try store.entitlements(org: o).contains(r)
                return (exists ? [.entitlement(org: o, role: r, present: false)] : [.entitlement(org: o, role: r, present: true)],
                        [.entitlement(org: o, role: r, present: exists)])
            }),
        ]
        var out: [String: Double] = ["load_ms": loadSeconds * 1000]
        for (name, make) in kinds {
            var times: [Double] = []
            times.reserveCapacity(iterations)
            for _ in 0..<(iterations / 2) {
                let (change, undo) = try make()
                for c in [change, undo] {
                    let s = ContinuousClock.now
                    graph = try graph.applying(c)
                    times.append((ContinuousClock.now - s) / .microseconds(1))
                }
            }
            times.sort()
            let p50 = times[times.count / 2], p99 = times[min(times.count - 1, times.count * 99 / 100)]
            out["\(name)_p50_us"] = p50
            out["\(name)_p99_us"] = p99
            out["\(name)_p50_per_load"] = p50 / (loadSeconds * 1_000_000)
            Report.progress(String(format: "%@: p50 %.1f µs, p99 %.1f µs (%.5f of a full load)", name, p50, p99, p50 / (loadSeconds * 1_000_000)))
        }
        out["reclaimable_slots"] = Double(graph.reclaimable)
        if json {
            print(String(decoding: try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys]), as: UTF8.self))
        } else {
            Report.print(out)
        }
    }
}

import PIAMEngine

/// Checks drawn at random from a graph with a chosen share allowed: the request mix of the
/// benchmarks (`piam-bench`, the `Benchmarks/` package).
///
/// Candidates are people acting on their own work (an owner on its resource, a colleague on a
/// user of its own org: mostly allowed) and random pairs across the graph (nearly always another
/// partner: the isolation path, denied). Each candidate is decided in-process on the same graph,
/// then allowed and denied ones are kept in the requested proportion, so the mix is known before
/// it is sent.
public struct CheckMix: Sendable {
    /// The checks, shuffled.
    public var checks: [CheckRequest]
    /// The share of `checks` the engine allows.
    public var allowedFraction: Double
    /// The allowed checks alone, then the denied ones alone (for separate allow and deny figures).
    public var allowed: [CheckRequest]
    public var denied: [CheckRequest]

    /// Actions drawn for each resource type of the generated graphs.
    public static let actionsFor: [String: [String]] = [
        "claim": ["read", "submit", "update", "withdraw"], "policy": ["read", "endorse", "renew"],
        "quote": ["create", "read", "submit"], "statement": ["read", "download"], "document": ["read"],
        "user": ["view", "suspend", "assign_role"], "org": ["view", "invite_user"],
    ]

    /// Draws `count` checks from `graph`, `allowRatio` of them allowed (as near as the graph
    /// allows: a graph with few allowed candidates gives fewer), the same for the same seed.
    public static func draw(from graph: AccessGraph, count: Int, allowRatio: Double, seed: UInt64, now: Timestamp) -> CheckMix {
        var rng = SplitMix64(seed: seed)
        let users = graph.allUserIDs
        let resources = graph.allResources
        let orgs = graph.allOrgIDs
        let wantAllowed = Int((Double(count) * min(max(allowRatio, 0), 1)).rounded())
        var allowed: [CheckRequest] = [], denied: [CheckRequest] = []
        var attempts = 0
        while (allowed.count < wantAllowed || denied.count < count - wantAllowed) && attempts < count * 50 && !users.isEmpty {
            attempts += 1
            var subject = users[Int.random(in: 0..<users.count, using: &rng)]
            let own = Bool.random(using: &rng)
            let k = Int.random(in: 0..<10, using: &rng)
            let ref: ResourceRef
            if k < 6, !resources.isEmpty {
                let r = resources[Int.random(in: 0..<resources.count, using: &rng)]
                ref = ResourceRef(type: r.type, id: r.id)
                if own, let owner = graph.location(of: ref)?.owner { subject = owner }
            } else if k < 9 || orgs.isEmpty {
                ref = ResourceRef(type: "user", id: users[Int.random(in: 0..<users.count, using: &rng)])
                if own, let org = graph.location(of: ref)?.org {
                    let colleagues = graph.users(ofOrg: org)
                    if !colleagues.isEmpty { subject = colleagues[Int.random(in: 0..<colleagues.count, using: &rng)] }
                }
            } else {
                ref = ResourceRef(type: "org", id: orgs[Int.random(in: 0..<orgs.count, using: &rng)])
            }
            let acts = actionsFor[ref.type] ?? ["read"]
            let c = CheckRequest(subject: subject, action: acts[Int.random(in: 0..<acts.count, using: &rng)], resource: ref)
            if graph.check(c, now: now).allowed {
                if allowed.count < wantAllowed { allowed.append(c) }
            } else if denied.count < count - wantAllowed {
                denied.append(c)
            }
        }
        var all = allowed + denied
        all.shuffle(using: &rng)
        return CheckMix(checks: all, allowedFraction: all.isEmpty ? 0 : Double(allowed.count) / Double(all.count),
                        allowed: allowed, denied: denied)
    }
}

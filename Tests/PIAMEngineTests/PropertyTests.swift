import PIAMEngine
import Testing

/// SplitMix64: a small seeded generator so a failing case can be replayed from its seed.
struct SeededRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A random partner graph: host departments, partners with sub-orgs three levels deep, users
/// anywhere, random roles over claim/document/user/org, random entitlements, assignments with
/// arbitrary scopes (including other partners' orgs, which the bounds rule must neutralize),
/// org grants, expiries, suspended and pending orgs, shared host documents.
func randomGraph(seed: UInt64) -> GraphData {
    var rng = SeededRNG(seed: seed)
    func pick<T>(_ xs: [T]) -> T { xs[Int.random(in: 0..<xs.count, using: &rng)] }
    func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }
    func status() -> OrgStatus { chance(0.08) ? .suspended : (chance(0.05) ? .pending : .active) }

    var d = GraphData()
    d.orgs = [OrgRecord(id: "host", parent: nil, kind: .host, status: .active),
              OrgRecord(id: "partners", parent: "host", kind: .host, status: .active),
              OrgRecord(id: "dept", parent: "host", kind: .host, status: .active)]
    var frontier: [String] = []
    for p in 0..<Int.random(in: 2...4, using: &rng) {
        let root = "p\(p)"
        d.orgs.append(OrgRecord(id: root, parent: "partners", kind: .partner, status: status()))
        var level = [root]
        for depth in 1...3 {
            var next: [String] = []
            for parent in level where chance(0.8) {
                for c in 0..<Int.random(in: 0...2, using: &rng) {
                    let id = "\(parent).\(depth)\(c)"
                    d.orgs.append(OrgRecord(id: id, parent: parent, kind: .partner, status: status()))
                    next.append(id)
                }
            }
            level = next
        }
        frontier.append(root)
    }
    let orgIDs = d.orgs.map(\.id)
    let types = ["claim", "document", "user", "org"]
    let actions = ["view", "read", "suspend", "remove", "assign_role", "approve", "submit"]
    for r in 0..<8 {
        var ps: Set<Permission> = []
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            ps.insert(Permission(type: pick(types), action: chance(0.15) ? "*" : pick(actions), ownerOnly: chance(0.2)))
        }
        d.roles.append(RoleRecord(id: "r\(r)", permissions: Array(ps)))
    }
    for o in orgIDs where chance(0.5) {
        for r in d.roles where chance(0.3) { d.entitlements.append(EntitlementRecord(org: o, role: r.id)) }
    }
    for u in 0..<40 {
        let st: UserStatus = chance(0.85) ? .active : (chance(0.5) ? .suspended : .invited)
        let exp: Timestamp? = chance(0.1) ? now + (chance(0.5) ? -day : day) : nil
        d.users.append(UserRecord(id: "u\(u)", org: pick(orgIDs), aliases: chance(0.2) ? ["alias-\(u)"] : [], status: st, validUntil: exp))
    }
    for i in 0..<30 {
        let type = pick(["claim", "document"])
        let org = pick(orgIDs)
        let host = org == "host" || org == "dept" || org == "partners"
        d.resources.append(ResourceRecord(type: type, id: "\(type)-\(i)", org: org,
                                          owner: chance(0.5) ? pick(d.users).id : nil, shared: host && chance(0.5)))
    }
    var seen = Set<String>()
    for _ in 0..<90 {
        let a = AssignmentRecord(user: pick(d.users).id, role: pick(d.roles).id, scope: chance(0.5) ? nil : pick(orgIDs),
                                 validUntil: chance(0.15) ? now + (chance(0.5) ? -1 : day) : nil)
        if seen.insert("\(a.user)|\(a.role)|\(a.scope ?? "")").inserted { d.assignments.append(a) }
    }
    var seenG = Set<String>()
    for _ in 0..<12 {
        let g = OrgGrantRecord(org: pick(orgIDs), role: pick(d.roles).id, includeSuborgs: chance(0.6),
                               validUntil: chance(0.15) ? now - 1 : nil)
        if seenG.insert("\(g.org)|\(g.role)").inserted { d.orgGrants.append(g) }
    }
    return d
}

@Suite("Randomized properties")
struct PropertyTests {
    static let seeds: [UInt64] = {
        // A fixed base plus the run's own seeds: every CI run covers new graphs, and a failure
        // names the seed (it is the test's argument and is in every message) to replay.
        var s: [UInt64] = [1, 2, 3, 42]
        var sys = SystemRandomNumberGenerator()
        for _ in 0..<16 { s.append(sys.next()) }
        return s
    }()

    @Test(arguments: seeds)
    func partnersAreIsolatedAndListsAgreeWithCheck(seed: UInt64) throws {
        let data = randomGraph(seed: seed)
        let g = try GraphBuilder.build(data)
        let actions = ["view", "read", "suspend", "remove", "assign_role", "approve", "submit", "never-named"]
        let partnerRoot = Dictionary(uniqueKeysWithValues: data.orgs.map { ($0.id, g.partnerRoot(ofOrg: $0.id)) })

        var resources: [(ResourceRef, String)] = []  // and the location org
        for r in data.resources { resources.append((ResourceRef(type: r.type, id: r.id), r.org)) }
        for u in data.users { resources.append((ResourceRef(type: "user", id: u.id), u.org)) }
        for o in data.orgs { resources.append((ResourceRef(type: "org", id: o.id), o.id)) }
        for o in data.orgs.prefix(6) { resources.append((ResourceRef(type: "claim", id: "ext-\(o.id)", org: o.id), o.id)) }

        // Isolation: no partner user is ever allowed on anything of another partner.
        for u in data.users {
            guard let mine = partnerRoot[u.org] ?? nil else { continue }
            for (r, loc) in resources {
                guard let theirs = partnerRoot[loc] ?? nil, theirs != mine else { continue }
                for a in actions {
                    #expect(!g.check(subject: u.id, action: a, resource: r, now: now).allowed,
                            "seed \(seed): \(u.id)@\(u.org) may \(a) \(r) of partner \(theirs)")
                }
            }
        }
        // listSubjects agrees with check, across pages.
        for (r, _) in resources {
            for a in actions {
                let expected = data.users.map(\.id).filter { g.check(subject: $0, action: a, resource: r, now: now).allowed }.sorted()
                let got = try collect { c in try g.listSubjects(action: a, resource: r, cursor: c, limit: 3, now: now) }
                #expect(got == expected, "seed \(seed): listSubjects(\(a), \(r))")
            }
        }
        // listResources agrees with check for every registered resource and built-in type.
        for u in data.users.map(\.id) + data.users.flatMap(\.aliases) {
            for type in ["claim", "document", "user", "org"] {
                for a in actions {
                    let candidates: [String]
                    switch type {
                    case "user": candidates = data.users.map(\.id)
                    case "org": candidates = data.orgs.map(\.id)
                    default: candidates = data.resources.filter { $0.type == type }.map(\.id)
                    }
                    let expected = candidates.filter {
                        g.check(subject: u, action: a, resource: ResourceRef(type: type, id: $0), now: now).allowed
                    }.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
                    let got = try collect { c in try g.listResources(subject: u, action: a, type: type, cursor: c, limit: 4, now: now) }
                    #expect(got == expected, "seed \(seed): listResources(\(u), \(a), \(type))")
                }
            }
        }
        // listActions agrees with check over the type's vocabulary; explain agrees with check.
        for u in data.users.prefix(15) {
            for (r, _) in resources.prefix(40) {
                let expected = g.vocabulary(ofType: r.type).filter { g.check(subject: u.id, action: $0, resource: r, now: now).allowed }
                #expect(g.listActions(subject: u.id, resource: r, now: now) == expected, "seed \(seed): listActions(\(u.id), \(r))")
                for a in actions.prefix(4) {
                    let req = CheckRequest(subject: u.id, action: a, resource: r)
                    #expect(g.explain(req, now: now).decision == g.check(req, now: now), "seed \(seed): explain \(u.id) \(a) \(r)")
                }
            }
        }
    }

}

/// Every item of a paged list, following `next_cursor` from the first page to the last.
func collect(_ page: (String?) throws -> Page) throws -> [String] {
    var out: [String] = []
    var cursor: String? = nil
    repeat {
        let p = try page(cursor)
        out += p.items
        cursor = p.nextCursor
    } while cursor != nil
    return out
}

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
/// anywhere, random roles over claim/document/user/org/role (so `org:*`, `org:approve`,
/// `role:grant`, `role:*` turn up), random entitlements, assignments with arbitrary scopes
/// (including other partners' orgs, which the bounds rule must neutralize), org grants,
/// expiries, suspended and pending orgs, shared host documents. The orgs come in a shuffled
/// order, so the root is seldom the first org the builder sees (graph slot 0).
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
    let types = ["claim", "document", "user", "org", "role"]
    let actions = ["view", "read", "suspend", "remove", "assign_role", "approve", "submit", "grant", "define", "grant_role"]
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
    d.orgs.shuffle(using: &rng)
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
        let actions = ["view", "read", "suspend", "remove", "assign_role", "approve", "submit", "grant", "define", "never-named"]
        let partnerRoot = Dictionary(uniqueKeysWithValues: data.orgs.map { ($0.id, g.partnerRoot(ofOrg: $0.id)) })

        var resources: [(ResourceRef, String)] = []  // and the location org
        for r in data.resources { resources.append((ResourceRef(type: r.type, id: r.id), r.org)) }
        for u in data.users { resources.append((ResourceRef(type: "user", id: u.id), u.org)) }
        for o in data.orgs { resources.append((ResourceRef(type: "org", id: o.id), o.id)) }
        for o in data.orgs.prefix(6) { resources.append((ResourceRef(type: "claim", id: "ext-\(o.id)", org: o.id), o.id)) }
        for r in data.roles.prefix(3).map(\.id) + ["not-yet-defined"] { resources.append((ResourceRef(type: "role", id: r), "host")) }

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
            for type in ["claim", "document", "user", "org", "role"] {
                for a in actions {
                    let candidates: [String]
                    switch type {
                    case "user": candidates = data.users.map(\.id)
                    case "org": candidates = data.orgs.map(\.id)
                    case "role": candidates = data.roles.map(\.id)
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
            for (r, _) in resources.prefix(40) + resources.suffix(4) {
                let expected = g.vocabulary(ofType: r.type).filter { g.check(subject: u.id, action: $0, resource: r, now: now).allowed }
                #expect(g.listActions(subject: u.id, resource: r, now: now) == expected, "seed \(seed): listActions(\(u.id), \(r))")
                for a in actions.prefix(4) {
                    let req = CheckRequest(subject: u.id, action: a, resource: r)
                    #expect(g.explain(req, now: now).decision == g.check(req, now: now), "seed \(seed): explain \(u.id) \(a) \(r)")
                }
            }
        }
    }

    /// Fewer graphs than the other properties, each checked many times over: these cases are
    /// CPU-bound and run beside suites that wait on daemons, so they also yield now and then.
    static let referenceSeeds: [UInt64] = {
        var s: [UInt64] = [1, 2, 3, 42]
        var sys = SystemRandomNumberGenerator()
        for _ in 0..<4 { s.append(sys.next()) }
        return s
    }()

    @Test(arguments: referenceSeeds)
    func checkFollowsTheReferenceRules(seed: UInt64) async throws {
        let data = randomGraph(seed: seed)
        let g = try GraphBuilder.build(data)
        let model = ReferenceRules(data, now: now)
        var rng = SeededRNG(seed: seed ^ 0x5EED)
        let subjects = data.users.map(\.id) + data.users.flatMap(\.aliases) + ["nobody"]
        let actions = ["view", "read", "suspend", "remove", "assign_role", "approve", "entitle", "submit", "grant", "define", "grant_role", "never-named"]
        var refs = data.resources.map { ResourceRef(type: $0.type, id: $0.id) }
        refs += data.users.map { ResourceRef(type: "user", id: $0.id) } + data.users.flatMap(\.aliases).map { ResourceRef(type: "user", id: $0) }
        refs += data.orgs.map { ResourceRef(type: "org", id: $0.id) } + [ResourceRef(type: "org", id: "no-such-org")]
        refs += data.roles.map { ResourceRef(type: "role", id: $0.id) } + [ResourceRef(type: "role", id: "not-yet-defined")]
        for o in data.orgs.map(\.id) + ["no-such-org"] {
            refs.append(ResourceRef(type: "claim", id: "ext", org: o, owner: data.users.randomElement(using: &rng)?.id))
        }
        for i in 0..<4000 {
            if i % 250 == 0 { await Task.yield() }
            let s = subjects.randomElement(using: &rng)!, a = actions.randomElement(using: &rng)!, r = refs.randomElement(using: &rng)!
            #expect(g.check(subject: s, action: a, resource: r, now: now) == model.check(s, a, r), "seed \(seed): check \(s) \(a) \(r)")
        }
    }

    @Test(arguments: referenceSeeds)
    func canAssignAndOrgGrantsFollowTheReferenceRules(seed: UInt64) async throws {
        let data = randomGraph(seed: seed)
        let g = try GraphBuilder.build(data)
        let model = ReferenceRules(data, now: now)
        var rng = SeededRNG(seed: seed ^ 0xCA55)
        let users = data.users.map(\.id) + data.users.flatMap(\.aliases)
        let roles = data.roles.map(\.id) + ["no-such-role"]
        let orgs = data.orgs.map(\.id)
        for i in 0..<3000 {
            if i % 250 == 0 { await Task.yield() }
            let a = users.randomElement(using: &rng)!, t = users.randomElement(using: &rng)!, r = roles.randomElement(using: &rng)!
            let scope: String? = Bool.random(using: &rng) ? nil : (orgs + ["no-such-org"]).randomElement(using: &rng)!
            let d = g.canAssign(actor: a, target: t, role: r, scope: scope, now: now)
            #expect(d == model.canAssign(a, t, r, scope: scope), "seed \(seed): canAssign \(a) \(t) \(r) \(scope ?? "-")")
            let o = orgs.randomElement(using: &rng)!
            #expect(g.canGrantToOrg(actor: a, org: o, role: r, now: now) == model.canGrantToOrg(a, o, r),
                    "seed \(seed): canGrantToOrg \(a) \(o) \(r)")
        }
        // Every actor who is a role administrator gets its can_assign past rule 5 on any role.
        for a in data.users.map(\.id) {
            await Task.yield()
            for r in data.roles.map(\.id) where g.check(subject: a, action: "grant", resource: ResourceRef(type: "role", id: r), now: now).allowed {
                for t in data.users.map(\.id) where g.canAssign(actor: a, target: t, role: r, now: now) == .deny(.escalation) {
                    Issue.record("seed \(seed): role administrator \(a) refused escalation for \(r) to \(t)")
                }
            }
        }
    }
}

/// A reference model: DESIGN §2–§3 written from their words over the plain records, with no
/// engine code at all (no index, slot, pre-order number or bitset). Where the contract states a
/// rule through `check` (rule 1 of `can_assign`, and `check(A, grant, role:R)` in rule 5), the
/// model uses its own `check`. The property tests hold the engine to it on random graphs; the
/// DocC article "Decision rules", the README and DESIGN must say the same.
struct ReferenceRules {
    let data: GraphData
    let now: Timestamp
    let orgs: [String: OrgRecord]
    let users: [String: UserRecord]
    /// Id or alias → user id.
    let userID: [String: String]
    let permissions: [String: [Permission]]
    /// The one org without a parent.
    let root: String
    /// `holdings(_:)` and `ceiling(_:)` of every user and org, worked out once by the functions
    /// below (which say the rules) and looked up after.
    private var holdingsOf: [String: [Holding]] = [:]
    private var ceilingOf: [String: Set<String>] = [:]
    private let resourceAt: [String: ResourceRecord]

    init(_ data: GraphData, now: Timestamp) {
        self.data = data
        self.now = now
        orgs = Dictionary(uniqueKeysWithValues: data.orgs.map { ($0.id, $0) })
        users = Dictionary(uniqueKeysWithValues: data.users.map { ($0.id, $0) })
        var ids: [String: String] = [:]
        for u in data.users {
            ids[u.id] = u.id
            for a in u.aliases { ids[a] = u.id }
        }
        userID = ids
        permissions = Dictionary(uniqueKeysWithValues: data.roles.map { ($0.id, $0.permissions) })
        root = data.orgs.first { $0.parent == nil }!.id
        resourceAt = Dictionary(uniqueKeysWithValues: data.resources.map { ("\($0.type):\($0.id)", $0) })
        for o in data.orgs { ceilingOf[o.id] = ceilingByTheWords(o.id) }
        for u in data.users { holdingsOf[u.id] = holdingsByTheWords(u.id) }
    }

    /// O and its ancestors up to the root.
    func path(_ o: String) -> [String] {
        var out = [o]
        while let p = orgs[out.last!]?.parent { out.append(p) }
        return out
    }

    /// `o` is `l` or below it.
    func isWithin(_ o: String, _ l: String) -> Bool { path(o).contains(l) }

    func isHostOrg(_ o: String) -> Bool { orgs[o]?.kind == .host }

    func ceiling(_ o: String) -> Set<String> { ceilingOf[o] ?? [] }

    /// The ceiling of O: the entitlements of O and all of its ancestors.
    func ceilingByTheWords(_ o: String) -> Set<String> {
        let p = Set(path(o))
        return Set(data.entitlements.filter { p.contains($0.org) }.map(\.role))
    }

    struct Holding { var role: String; var scope: String; var validUntil: Timestamp? }

    func holdings(_ s: String) -> [Holding] { holdingsOf[s] ?? [] }

    /// User S holds role R over scope L through (a) each assignment of S, with L = its scope
    /// (default: S's org), or (b) each org grant G with S.org = G.org, or S.org below G.org and
    /// G.include_suborgs, with L = S.org.
    func holdingsByTheWords(_ s: String) -> [Holding] {
        let sOrg = users[s]!.org
        var out = data.assignments.filter { $0.user == s }.map { Holding(role: $0.role, scope: $0.scope ?? sOrg, validUntil: $0.validUntil) }
        for g in data.orgGrants where g.org == sOrg || (g.includeSuborgs && isWithin(sOrg, g.org)) {
            out.append(Holding(role: g.role, scope: sOrg, validUntil: g.validUntil))
        }
        return out
    }

    func notExpired(_ h: Holding) -> Bool { h.validUntil.map { $0 > now } ?? true }

    /// Effective: not expired; within the ceiling (S is a host user, or R is in the ceiling of
    /// S.org); in bounds (S is a host user, or L is S.org or below it).
    func isEffective(_ s: String, _ h: Holding) -> Bool {
        let sOrg = users[s]!.org
        return notExpired(h) && (isHostOrg(sOrg) || ceiling(sOrg).contains(h.role)) && (isHostOrg(sOrg) || isWithin(h.scope, sOrg))
    }

    /// Host-only (DESIGN §2): any action on `role`, plus `approve` and `entitle` on `org`
    /// (`org:*` is not host-only).
    static func isHostOnly(type: String, action: String) -> Bool {
        type == "role" || (type == "org" && (action == "approve" || action == "entitle"))
    }

    // MARK: check

    func check(_ subject: String, _ action: String, _ r: ResourceRef) -> Decision {
        // 1–4: the subject.
        guard let s = userID[subject], let u = users[s] else { return .deny(.unknownSubject) }
        if u.status != .active { return .deny(.subjectInactive) }
        if let v = u.validUntil, v <= now { return .deny(.subjectExpired) }
        if !path(u.org).allSatisfy({ orgs[$0]!.status == .active }) { return .deny(.orgInactive) }
        // 5: the resource resolves: location, owner, shared.
        var location: String, owner: String? = nil, shared = false
        switch r.type {
        case "user":
            guard let t = userID[r.id] else { return .deny(.unknownResource) }
            location = users[t]!.org
            owner = t
        case "org":
            guard orgs[r.id] != nil else { return .deny(.unknownResource) }
            location = r.id
        case "role":
            location = root  // every role, defined or not yet, is located at the root
        default:
            if let x = resourceAt["\(r.type):\(r.id)"] {
                location = x.org
                owner = x.owner.flatMap { userID[$0] }
                shared = x.shared
            } else {
                guard let o = r.org, orgs[o] != nil else { return .deny(.unknownResource) }
                location = o
                owner = r.owner.flatMap { userID[$0] }
            }
        }
        // 6: no self-action.
        if action == "suspend" || action == "remove" {
            if r.type == "user" && owner == s { return .deny(.selfAction) }
            if r.type == "org" && isWithin(u.org, location) { return .deny(.selfAction) }
        }
        // 7, and the first reason that applies.
        let host = isHostOrg(u.org)
        let hostOnlyRequest = Self.isHostOnly(type: r.type, action: action)
        let inReach = { (h: Holding) in isWithin(location, h.scope) || (shared && isHostOrg(location)) }
        var matching: [(Holding, Permission)] = []
        for h in holdings(s) {
            for p in permissions[h.role] ?? [] where p.type == r.type && (p.action == action || p.action == Permission.anyAction) {
                matching.append((h, p))
            }
        }
        let effective = matching.filter { isEffective(s, $0.0) }
        if effective.contains(where: { inReach($0.0) && (!$0.1.ownerOnly || owner == s) && (!hostOnlyRequest || host) }) { return .allow }
        if effective.contains(where: { !inReach($0.0) }) { return .deny(.outOfScope) }
        if effective.contains(where: { $0.1.ownerOnly && owner != s }) { return .deny(.notOwner) }
        if !effective.isEmpty { return .deny(.hostOnly) }
        if matching.contains(where: { notExpired($0.0) }) { return .deny(.outsideCeiling) }
        if !matching.isEmpty { return .deny(.grantExpired) }
        return .deny(.noPermission)
    }

    // MARK: can_assign and org grants

    /// P is covered at L for actor A: A has an effective holding whose scope is L or above L
    /// with a permission Q of P's type whose action is `*` or (P's action is not `*` and)
    /// equals P's action, and Q carries `:owner` only if P does; a host-only P (any on `role`,
    /// `org:approve`, `org:entitle`) is covered only for a host actor, while `org:*` is covered
    /// by a Q of `org:*` for any actor.
    func covered(_ p: Permission, actor a: String, at l: String) -> Bool {
        if Self.isHostOnly(type: p.type, action: p.action) && !isHostOrg(users[a]!.org) { return false }
        return holdings(a).contains { h in
            isEffective(a, h) && isWithin(l, h.scope) && (permissions[h.role] ?? []).contains { q in
                q.type == p.type && (q.action == Permission.anyAction || (p.action != Permission.anyAction && q.action == p.action))
                    && (!q.ownerOnly || p.ownerOnly)
            }
        }
    }

    /// Rule 5, no escalation: `check(A, grant, role:R)` is allowed, or every permission P of R
    /// is covered at L.
    func noEscalation(_ a: String, _ role: String, at l: String) -> Bool {
        check(a, "grant", ResourceRef(type: "role", id: role)).allowed
            || permissions[role]!.allSatisfy { covered($0, actor: a, at: l) }
    }

    func canAssign(_ actor: String, _ target: String, _ role: String, scope: String?) -> Decision {
        // 1. check(A, assign_role, user:T).
        let d = check(actor, "assign_role", ResourceRef(type: "user", id: target))
        guard d.allowed else { return d }
        let a = userID[actor]!, t = userID[target]!
        // 2. R exists, L exists.
        guard permissions[role] != nil else { return .deny(.unknownRole) }
        let tOrg = users[t]!.org
        let l = (scope?.isEmpty ?? true) ? tOrg : scope!
        guard orgs[l] != nil else { return .deny(.unknownOrg) }
        let targetIsHost = isHostOrg(tOrg)
        // 3. R is in the ceiling of T.org, or T is a host user.
        if !targetIsHost && !ceiling(tOrg).contains(role) { return .deny(.outsideCeiling) }
        // 4. L is T.org or below it, or T is a host user.
        if !targetIsHost && !isWithin(l, tOrg) { return .deny(.outOfScope) }
        // 5.
        return noEscalation(a, role, at: l) ? .allow : .deny(.escalation)
    }

    /// An org grant: `check(A, grant_role, org:O)`, R exists, R is in the ceiling of O unless O
    /// is a host org, and rule 5 at O.
    func canGrantToOrg(_ actor: String, _ o: String, _ role: String) -> Decision {
        let d = check(actor, "grant_role", ResourceRef(type: "org", id: o))
        guard d.allowed else { return d }
        guard permissions[role] != nil else { return .deny(.unknownRole) }
        if !isHostOrg(o) && !ceiling(o).contains(role) { return .deny(.outsideCeiling) }
        return noEscalation(userID[actor]!, role, at: o) ? .allow : .deny(.escalation)
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

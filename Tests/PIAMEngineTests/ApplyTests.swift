import PIAMEngine
import Testing

/// `AccessGraph.applying` against the obvious reference: random valid changes (every entity
/// kind; insert, update, delete; org moves, kind and status changes; role permission edits;
/// expiries; aliases; cascades as the store's foreign keys produce them) are applied to a graph
/// step by step, and after every step the graph must hold exactly the records of a model and
/// answer like a graph built from that model from scratch.
@Suite("Incremental apply")
struct ApplyTests {
    static let seeds: [UInt64] = {
        var s: [UInt64] = [7, 8, 9]
        var sys = SystemRandomNumberGenerator()
        for _ in 0..<5 { s.append(sys.next()) }
        return s
    }()

    @Test(arguments: seeds)
    func applyingEqualsBuildingFromScratch(seed: UInt64) throws {
        var model = randomGraph(seed: seed)
        // The store resolves an assignment's scope when it is written; so does the model.
        let orgOf = Dictionary(uniqueKeysWithValues: model.users.map { ($0.id, $0.org) })
        for i in model.assignments.indices where model.assignments[i].scope == nil {
            model.assignments[i].scope = orgOf[model.assignments[i].user]
        }
        var keys = Set<String>()  // and keeps one assignment per (user, role, scope)
        model.assignments = model.assignments.filter { keys.insert("\($0.user)|\($0.role)|\($0.scope!)").inserted }
        var m = Mutator(seed: seed)
        // Who granted, and when: the records carry them through the builder and every apply.
        for i in model.assignments.indices { (model.assignments[i].grantedBy, model.assignments[i].grantedAt) = m.provenance(model) }
        for i in model.orgGrants.indices { (model.orgGrants[i].grantedBy, model.orgGrants[i].grantedAt) = m.provenance(model) }
        var graph = try GraphBuilder.build(model)
        for step in 0..<150 {
            let changes = m.randomChanges(&model)
            model.apply(changes)
            let what = "seed \(seed) step \(step): \(changes)"
            graph = try graph.applying(changes)
            let fresh = try GraphBuilder.build(model)
            let same = normalized(graph.graphData()) == normalized(model) && graph.counts == fresh.counts
            #expect(same, "\(what): records or counts differ")
            if !same { break }  // one failure is enough to replay it from the seed
            try expectSameAnswers(graph, fresh, model, &m.rng, what)
        }
    }

    @Test func aRemovedRoleStillInUseIsRefusedAndTheOldGraphIsIntact() throws {
        let data = randomGraph(seed: 3)
        let g = try GraphBuilder.build(data)
        let used = try #require(data.assignments.first?.role)
        #expect(throws: PIAMError.self) { try g.applying([.role(id: used, nil)]) }
        #expect(g.counts == (try GraphBuilder.build(data)).counts)
    }

    func expectSameAnswers(_ g: AccessGraph, _ f: AccessGraph, _ d: GraphData, _ rng: inout SeededRNG, _ what: String) throws {
        let actions = ["view", "read", "suspend", "remove", "assign_role", "approve", "submit", "define", "grant"]
        var refs = d.resources.map { ResourceRef(type: $0.type, id: $0.id) }
        refs += d.users.map { ResourceRef(type: "user", id: $0.id) } + d.orgs.map { ResourceRef(type: "org", id: $0.id) }
        // Roles lie at the root, whatever slot it has after orgs were added and removed.
        refs += d.roles.map { ResourceRef(type: "role", id: $0.id) } + [ResourceRef(type: "role", id: "not-yet-defined")]
        let subjects = d.users.map(\.id) + d.users.flatMap(\.aliases)
        for _ in 0..<150 {
            let s = subjects.randomElement(using: &rng)!, a = actions.randomElement(using: &rng)!, r = refs.randomElement(using: &rng)!
            let expected = f.check(subject: s, action: a, resource: r, now: now)
            #expect(g.check(subject: s, action: a, resource: r, now: now) == expected, "\(what): check \(s) \(a) \(r)")
            // The byte-keyed lookups over the applied graph's tables (chunks rewritten, entries
            // shifted back by removals) answer as the fresh graph does.
            #expect(checkUTF8(g, s, a, r, now: now) == expected, "\(what): check(utf8:) \(s) \(a) \(r)")
        }
        for _ in 0..<6 {
            let a = actions.randomElement(using: &rng)!, r = refs.randomElement(using: &rng)!
            #expect(try collect { try g.listSubjects(action: a, resource: r, cursor: $0, limit: 50, now: now) }
                    == collect { try f.listSubjects(action: a, resource: r, cursor: $0, limit: 50, now: now) }, "\(what): listSubjects \(a) \(r)")
            let s = subjects.randomElement(using: &rng)!
            for t in ["claim", "document", "user", "org", "role"] {
                #expect(try collect { try g.listResources(subject: s, action: a, type: t, cursor: $0, limit: 50, now: now) }
                        == collect { try f.listResources(subject: s, action: a, type: t, cursor: $0, limit: 50, now: now) },
                        "\(what): listResources \(s) \(a) \(t)")
            }
            let target = d.users.randomElement(using: &rng)!.id, role = d.roles.randomElement(using: &rng)!.id
            #expect(g.canAssign(actor: s, target: target, role: role, now: now) == f.canAssign(actor: s, target: target, role: role, now: now),
                    "\(what): canAssign \(s) \(target) \(role)")
            let org = d.orgs.randomElement(using: &rng)!.id
            #expect(g.canGrantToOrg(actor: s, org: org, role: role, now: now) == f.canGrantToOrg(actor: s, org: org, role: role, now: now),
                    "\(what): canGrantToOrg \(s) \(org) \(role)")
        }
    }

    /// Records in a canonical order (permissions and aliases sorted, duplicates of the
    /// permission lists removed), so two graphs' records compare as sets.
    func normalized(_ d: GraphData) -> GraphData {
        var n = d
        n.orgs.sort { $0.id < $1.id }
        n.roles = n.roles.map { RoleRecord(id: $0.id, permissions: Array(Set($0.permissions)).sorted()) }.sorted { $0.id < $1.id }
        n.users = n.users.map { var u = $0; u.aliases.sort(); return u }.sorted { $0.id < $1.id }
        n.resources.sort { ($0.type, $0.id) < ($1.type, $1.id) }
        n.entitlements.sort { ($0.org, $0.role) < ($1.org, $1.role) }
        n.assignments.sort { ($0.user, $0.role, $0.scope ?? "") < ($1.user, $1.role, $1.scope ?? "") }
        n.orgGrants.sort { ($0.org, $0.role) < ($1.org, $1.role) }
        return n
    }
}

/// Random valid changes to a model graph, as the store would journal them: each names the keys
/// a transaction touched with their states afterwards, cascades included.
struct Mutator {
    var rng: SeededRNG
    var next = 0

    init(seed: UInt64) { rng = SeededRNG(seed: seed ^ 0xA5A5) }

    mutating func fresh(_ prefix: String) -> String {
        next += 1
        return "\(prefix)\(next)"
    }

    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }
    mutating func pick<T>(_ xs: [T]) -> T { xs.randomElement(using: &rng)! }

    mutating func expiry() -> Timestamp? { chance(0.7) ? nil : now + (chance(0.5) ? -day : day) }

    /// A grant's `granted_by` and `granted_at`: often shared (a bulk import), sometimes unknown,
    /// sometimes a granter that is no user (as recorded before the user was removed).
    mutating func provenance(_ d: GraphData) -> (String?, Timestamp?) {
        let by: String? = chance(0.2) ? nil : chance(0.1) ? "registration" : d.users.randomElement(using: &rng)?.id
        let at: Timestamp? = chance(0.2) ? nil : chance(0.5) ? now - 7 * day : now - Timestamp.random(in: 0..<(30 * day), using: &rng)
        return (by, at)
    }

    func isHost(_ d: GraphData, _ org: String) -> Bool { d.orgs.first { $0.id == org }!.kind == .host }

    func below(_ d: GraphData, _ org: String) -> Set<String> {
        var out: Set<String> = [org]
        var grew = true
        while grew {
            grew = false
            for o in d.orgs where !out.contains(o.id) && o.parent.map(out.contains) == true {
                out.insert(o.id)
                grew = true
            }
        }
        return out
    }

    /// The cascade of removing user `u`: its aliases and assignments go, owned resources lose
    /// their owner.
    func userRemoval(_ d: GraphData, _ u: UserRecord) -> [GraphChange] {
        var c: [GraphChange] = [.user(id: u.id, nil)]
        c += u.aliases.map { .alias($0, user: nil) }
        c += d.assignments.filter { $0.user == u.id }.map { .assignment(user: $0.user, role: $0.role, scope: $0.scope!, nil) }
        for r in d.resources where r.owner == u.id || u.aliases.contains(r.owner ?? "") {
            var r2 = r
            r2.owner = nil
            c.append(.resource(type: r.type, id: r.id, r2))
        }
        return c
    }

    mutating func randomChanges(_ d: inout GraphData) -> [GraphChange] {
        // Sometimes several "transactions" are applied as one batch.
        var all: [GraphChange] = []
        for _ in 0..<(chance(0.2) ? 3 : 1) {
            let c = oneChange(d)
            d.apply(c)
            all += c
        }
        return all
    }

    mutating func oneChange(_ d: GraphData) -> [GraphChange] {
        let orgIDs = d.orgs.map(\.id)
        switch Int.random(in: 0..<15, using: &rng) {
        case 0:  // a new user, sometimes with an alias
            let u = UserRecord(id: fresh("nu"), org: pick(orgIDs), status: chance(0.8) ? .active : .suspended, validUntil: expiry())
            return [.user(id: u.id, u)] + (chance(0.3) ? [.alias(fresh("na"), user: u.id)] : [])
        case 1:  // suspend, reactivate, expire, move
            guard var u = d.users.randomElement(using: &rng) else { return [] }
            switch Int.random(in: 0..<3, using: &rng) {
            case 0: u.status = u.status == .active ? .suspended : .active
            case 1: u.validUntil = expiry()
            default: u.org = pick(orgIDs)
            }
            return [.user(id: u.id, u)]
        case 2:
            guard let u = d.users.randomElement(using: &rng) else { return [] }
            return userRemoval(d, u)
        case 3:  // aliases
            guard let u = d.users.randomElement(using: &rng) else { return [] }
            if let a = u.aliases.first, chance(0.5) {
                if chance(0.5), let other = d.users.randomElement(using: &rng) { return [.alias(a, user: other.id)] }
                return [.alias(a, user: nil)]
            }
            return [.alias(fresh("na"), user: u.id)]
        case 4, 5:  // assignments
            if let a = d.assignments.randomElement(using: &rng), chance(0.5) {
                if chance(0.5) { return [.assignment(user: a.user, role: a.role, scope: a.scope!, nil)] }
                var a2 = a
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: a2.validUntil = expiry()
                case 1: (a2.grantedBy, a2.grantedAt) = provenance(d)  // re-granted by someone else
                default: a2.validUntil = expiry(); (a2.grantedBy, a2.grantedAt) = provenance(d)
                }
                return [.assignment(user: a.user, role: a.role, scope: a.scope!, a2)]
            }
            guard let u = d.users.randomElement(using: &rng) else { return [] }
            let (by, at) = provenance(d)
            let a = AssignmentRecord(user: u.id, role: pick(d.roles).id, scope: chance(0.5) ? u.org : pick(orgIDs), validUntil: expiry(),
                                     grantedBy: by, grantedAt: at)
            return [.assignment(user: a.user, role: a.role, scope: a.scope!, a)]
        case 6:  // resources
            if var r = d.resources.randomElement(using: &rng), chance(0.6) {
                if chance(0.3) { return [.resource(type: r.type, id: r.id, nil)] }
                r.org = pick(orgIDs)
                r.owner = chance(0.5) ? d.users.randomElement(using: &rng)?.id : nil
                r.shared = isHost(d, r.org) && chance(0.5)
                return [.resource(type: r.type, id: r.id, r)]
            }
            let org = pick(orgIDs)
            let type = chance(0.1) ? "ticket" : pick(["claim", "document"])
            let r = ResourceRecord(type: type, id: fresh("res"), org: org, owner: d.users.randomElement(using: &rng)?.id,
                                   shared: isHost(d, org) && chance(0.5))
            return [.resource(type: r.type, id: r.id, r)]
        case 7:  // entitlements
            let o = pick(orgIDs), r = pick(d.roles).id
            let present = d.entitlements.contains { $0.org == o && $0.role == r }
            return [.entitlement(org: o, role: r, present: !present)]
        case 8:  // org grants
            let o = pick(orgIDs), r = pick(d.roles).id
            if d.orgGrants.contains(where: { $0.org == o && $0.role == r }) && chance(0.5) {
                return [.orgGrant(org: o, role: r, nil)]
            }
            let (by, at) = provenance(d)
            let g = OrgGrantRecord(org: o, role: r, includeSuborgs: chance(0.5), validUntil: expiry(), grantedBy: by, grantedAt: at)
            return [.orgGrant(org: o, role: r, g)]
        case 9:  // role permission edits, new roles
            let types = ["claim", "document", "user", "org", "role", "ticket"]
            let actions = ["view", "read", "suspend", "remove", "assign_role", "approve", "submit", "grant", "define", "*"]
            var ps: [Permission] = []
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                ps.append(Permission(type: pick(types), action: pick(actions), ownerOnly: chance(0.2)))
            }
            let id = chance(0.3) ? fresh("role") : pick(d.roles).id
            return [.role(id: id, RoleRecord(id: id, permissions: ps))]
        case 10:  // role removal with its cascade
            guard d.roles.count > 3, let r = d.roles.randomElement(using: &rng) else { return [] }
            var c: [GraphChange] = [.role(id: r.id, nil)]
            c += d.assignments.filter { $0.role == r.id }.map { .assignment(user: $0.user, role: $0.role, scope: $0.scope!, nil) }
            c += d.orgGrants.filter { $0.role == r.id }.map { .orgGrant(org: $0.org, role: $0.role, nil) }
            c += d.entitlements.filter { $0.role == r.id }.map { .entitlement(org: $0.org, role: $0.role, present: false) }
            return c
        case 11:  // a new org
            let parent = pick(d.orgs)
            let kind: OrgKind = parent.kind == .partner || chance(0.7) ? .partner : .host
            let o = OrgRecord(id: fresh("org"), parent: parent.id, kind: kind, status: chance(0.8) ? .active : .pending)
            return [.org(id: o.id, o)]
        case 12:  // move an org (never below itself, never a host below a partner)
            guard var o = d.orgs.filter({ $0.parent != nil }).randomElement(using: &rng) else { return [] }
            let forbidden = below(d, o.id)
            let targets = d.orgs.filter { !forbidden.contains($0.id) && !(o.kind == .host && $0.kind == .partner) }
            guard let t = targets.randomElement(using: &rng) else { return [] }
            o.parent = t.id
            return [.org(id: o.id, o)]
        case 13:  // status, or kind where the tree allows it
            guard var o = d.orgs.filter({ $0.parent != nil }).randomElement(using: &rng) else { return [] }
            let parentKind = d.orgs.first { $0.id == o.parent }!.kind
            let hostChildren = d.orgs.contains { $0.parent == o.id && $0.kind == .host }
            if chance(0.3) && parentKind == .host && !hostChildren {
                o.kind = o.kind == .host ? .partner : .host
            } else {
                o.status = [.active, .suspended, .pending].randomElement(using: &rng)!
            }
            return [.org(id: o.id, o)]
        default:  // remove a leaf org with nothing in it; its entitlements, grants and scopes go
            let leaves = d.orgs.filter { o in
                o.parent != nil && !d.orgs.contains { $0.parent == o.id } && !d.users.contains { $0.org == o.id }
                    && !d.resources.contains { $0.org == o.id }
            }
            guard let o = leaves.randomElement(using: &rng) else { return [] }
            var c: [GraphChange] = [.org(id: o.id, nil)]
            c += d.entitlements.filter { $0.org == o.id }.map { .entitlement(org: $0.org, role: $0.role, present: false) }
            c += d.orgGrants.filter { $0.org == o.id }.map { .orgGrant(org: $0.org, role: $0.role, nil) }
            c += d.assignments.filter { $0.scope == o.id }.map { .assignment(user: $0.user, role: $0.role, scope: $0.scope!, nil) }
            return c
        }
    }
}

/// `check(utf8:)` on copies of the strings' bytes (no storage shared with the graph's strings).
func checkUTF8(_ g: AccessGraph, _ s: String, _ a: String, _ r: ResourceRef, now: Timestamp) -> Decision {
    let parts = [s, a, r.type, r.id, r.org ?? "", r.owner ?? ""].map { Array($0.utf8) }
    return parts[0].withUnsafeBytes { sb in parts[1].withUnsafeBytes { ab in parts[2].withUnsafeBytes { tb in
        parts[3].withUnsafeBytes { ib in parts[4].withUnsafeBytes { ob in parts[5].withUnsafeBytes { wb in
            g.check(utf8: CheckBytes(subject: sb, action: ab, resourceType: tb, resourceID: ib,
                                     org: r.org == nil ? nil : ob, owner: r.owner == nil ? nil : wb), now: now)
        } } }
    } } }
}

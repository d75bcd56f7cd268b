// What a change does to people's access: the engine's half of "what-if" (the store decides and
// performs the operations in a transaction it rolls back; the engine says whom the resulting
// changes can touch and diffs their effective permissions before and after).
//
// Cost: in proportion to the people the change can touch, never to the graph. A user, an
// assignment: that user. An org (status, parent, kind) or an entitlement: the members of the
// org's subtree. An org grant: the members of its org (and of its subtree when it includes
// sub-orgs). A role's permissions: its holders — the users of its assignments (the role's
// holder list) and the members reached by its org grants. Aliases and resources change no one's
// permissions.

/// The change in effective permissions that a change of the graph makes, per person.
///
/// The unit is ``AccessReport/Effective``: one permission over one scope. A person's *access*
/// is the effective permissions of its access report when it may act at all (its
/// ``AccessReport/subjectState`` is `allowed`), and nothing otherwise: suspending someone loses
/// them everything, reactivating gives it back.
public struct AccessDiff: Sendable, Hashable, Codable {
    /// One person whose access changes.
    public struct Person: Sendable, Hashable, Codable {
        /// The user's id.
        public var user: String
        /// The user's org after the change (before it, for a removed user).
        public var org: String
        /// Permissions the person holds after the change and not before (`via`: after).
        public var gained: [AccessReport.Effective]
        /// Permissions the person held before the change and not after (`via`: before).
        public var lost: [AccessReport.Effective]

        public init(user: String, org: String, gained: [AccessReport.Effective], lost: [AccessReport.Effective]) {
            self.user = user
            self.org = org
            self.gained = gained
            self.lost = lost
        }
    }

    /// The people whose access changes, sorted by user id (by bytes).
    public var people: [Person]
    /// How many people the change could touch and were compared (those with no difference are
    /// not in ``people``).
    public var considered: Int

    public init(people: [Person], considered: Int) {
        self.people = people
        self.considered = considered
    }

    /// How many permissions are gained, over everyone.
    public var gainedCount: Int { people.reduce(0) { $0 + $1.gained.count } }
    /// How many permissions are lost, over everyone.
    public var lostCount: Int { people.reduce(0) { $0 + $1.lost.count } }

    /// The diff between two graphs for the people `changes` can touch, at `now`.
    ///
    /// `after` must be `before` with `changes` applied (``AccessGraph/applying(_:)``): the
    /// people considered are ``AccessGraph/usersAffected(by:)`` of both graphs.
    public static func between(_ before: AccessGraph, _ after: AccessGraph, changes: [GraphChange], now: Timestamp) -> AccessDiff {
        var candidates = before.usersAffected(by: changes)
        candidates.formUnion(after.usersAffected(by: changes))
        var people: [Person] = []
        for u in candidates {
            let a = before.access(of: u, now: now), b = after.access(of: u, now: now)
            if a.effective == b.effective { continue }
            let beforeKeys = Set(a.effective.map { EffectiveKey($0) }), afterKeys = Set(b.effective.map { EffectiveKey($0) })
            let gained = b.effective.filter { !beforeKeys.contains(EffectiveKey($0)) }
            let lost = a.effective.filter { !afterKeys.contains(EffectiveKey($0)) }
            if gained.isEmpty && lost.isEmpty { continue }  // only the `via` changed
            people.append(Person(user: u, org: b.org ?? a.org ?? "", gained: gained, lost: lost))
        }
        people.sort { $0.user.utf8.lexicographicallyPrecedes($1.user.utf8) }
        return AccessDiff(people: people, considered: candidates.count)
    }

    /// (permission, scope): what is compared; `via` is not.
    struct EffectiveKey: Hashable {
        var permission: String
        var scope: String
        init(_ e: AccessReport.Effective) { permission = e.permission; scope = e.scope }
    }
}

extension AccessGraph {
    /// What user `id` may actually exercise at `now`: the effective permissions of its access
    /// report when it may act at all, else none; and its org (`nil` for an unknown user).
    public func access(of id: String, now: Timestamp) -> (org: String?, effective: [AccessReport.Effective]) {
        guard let u = userIndex[id], userIDs[Int(u)] == id, let report = accessReport(user: id, now: now) else { return (nil, []) }
        return (report.org, report.subjectState == .allowed ? report.effective : [])
    }

    /// The ids of the users of this graph whose access `changes` (keys and their new states,
    /// see ``GraphChange``) can alter: on the graph before the change and on the graph after
    /// it, the union of the two answers is everyone a diff must look at.
    ///
    /// Linear in the people found (plus the org grants of a changed role), not in the graph.
    public func usersAffected(by changes: [GraphChange]) -> Set<String> {
        var out: Set<String> = []
        var subtrees: Set<Int32> = [], orgMembers: Set<Int32> = []
        func addUser(_ id: String) {
            if let u = userIndex[id], userIDs[Int(u)] == id { out.insert(id) }
        }
        /// The org grant `g`'s members: its org's, and its subtree's when it includes sub-orgs.
        func addGrant(_ g: Int) {
            if grantIncludeSub[g] { subtrees.insert(grantOrg[g]) } else { orgMembers.insert(grantOrg[g]) }
        }
        for c in changes {
            switch c {
            case .user(let id, let rec):
                addUser(id)
                if let rec { addUser(rec.id) }
            case .assignment(let user, _, _, _):
                addUser(user)
            case .org(let id, _), .entitlement(let id, _, _):
                if let o = orgIndex[id] { subtrees.insert(o) }
            case .orgGrant(let org, let role, _):
                guard let o = orgIndex[org], let r = roleIndex[role] else { continue }
                if let g = grantOrg.indices.first(where: { grantOrg[$0] == o && grantRole[$0] == r }) {
                    addGrant(g)
                } else {
                    orgMembers.insert(o)
                }
            case .role(let id, _):
                guard let r = roleIndex[id] else { continue }
                for a in assignByRole[Int(r)] {
                    let u = assignUser[Int(a)]
                    if u >= 0 { out.insert(userIDs[Int(u)]) }
                }
                for g in grantRole.indices where grantRole[g] == r { addGrant(g) }
            case .alias, .resource:
                continue
            }
        }
        for o in subtrees where orgs[Int(o)].pre >= 0 {
            for pre in subtree(o) {
                for u in usersByOrg[Int(orgByPre[pre])] { out.insert(userIDs[Int(u)]) }
            }
        }
        for o in orgMembers where orgs[Int(o)].pre >= 0 {
            for u in usersByOrg[Int(o)] { out.insert(userIDs[Int(u)]) }
        }
        out.remove("")
        return out
    }
}

// Delegated administration beyond `check` and `canAssign` (DESIGN §3): org grants, the
// last-admin rule's "who can still assign roles here", and the small lookups the store's
// administration layer needs to know which parts of the graph a decision depends on.

extension AccessGraph {
    /// Whether `actor` may give `role` to every member of `org` (an org grant): the rules of
    /// `can_assign` with the org in place of the user (DESIGN §3) —
    ///
    /// 1. `check(actor, grant_role, org:O)` is allowed (else that reason);
    /// 2. the role exists (else `unknown_role`);
    /// 3. the role is in the ceiling of O, unless O is a host org (else `outside_ceiling`);
    /// 4. rule 5 of `can_assign` at O (else `escalation`): `check(actor, grant, role:R)` is
    ///    allowed — the business's role administrators hand out any role — or every permission
    ///    of the role is covered at O by the actor's own effective holdings. It is the same
    ///    function ``canAssign(actor:target:role:scope:now:)`` calls.
    ///
    /// A grant with `include_suborgs` reaches only orgs below O, whose ceilings include O's, and
    /// whose scopes lie below O: covering the role at O covers it everywhere the grant acts.
    public func canGrantToOrg(actor: String, org: String, role: String, now: Timestamp) -> Decision {
        let d = check(subject: actor, action: "grant_role", resource: ResourceRef(type: BuiltinType.org, id: org), now: now)
        guard d.allowed, let a = userIndex[actor], let o = orgIndex[org] else { return d }
        guard let r = roleIndex[role] else { return .deny(.unknownRole) }
        if orgs[Int(o)].kind != .host && !inCeiling(org: o, role: r) { return .deny(.outsideCeiling) }
        return noEscalation(actor: a, role: r, at: o, now: now) ? .allow : .deny(.escalation)
    }

    /// The users at or below `org` who may act now (active, not expired, every org up to the
    /// root active) and hold an effective `user:assign_role` (or `user:*`, without `:owner`)
    /// over a scope that covers `org` itself — the people who can still hand out roles there.
    ///
    /// For a partner root these are its own delegated administrators (a partner user's scope
    /// never lies above its org, so only members of the root itself qualify). The store's
    /// last-admin rule refuses an operation by a partner user that would leave this list empty.
    /// Sorted by id.
    public func assignmentAdmins(of org: String, now: Timestamp) -> [String] {
        guard let o = orgIndex[org] else { return [] }
        let assign = actionID("assign_role")
        var out: [String] = []
        for pre in subtree(o) {
          for u in usersByOrg[Int(orgByPre[pre])] {
            guard subjectState(u, now: now) == .allowed else { continue }
            if covers(actor: u, actorIsHost: isHostUser(u), type: builtinUser, action: assign, ownerOnly: false, at: o, now: now) {
                out.append(userIDs[Int(u)])
            }
          }
        }
        return out.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// The org `id` and its ancestors up to the root, nearest first; `nil` for an unknown org.
    public func orgChain(_ id: String) -> [String]? {
        guard var o = orgIndex[id] else { return nil }
        var out = [orgIDs[Int(o)]]
        while orgs[Int(o)].parent >= 0 {
            o = orgs[Int(o)].parent
            out.append(orgIDs[Int(o)])
        }
        return out
    }

    /// Whether `role` is in the ceiling of org `id` — the entitlements of the org and of every
    /// org above it (DESIGN §2) — `false` for an unknown org or role.
    public func isInCeiling(role: String, of id: String) -> Bool {
        guard let o = orgIndex[id], let r = roleIndex[role] else { return false }
        return inCeiling(org: o, role: r)
    }

    /// The org of the user named by `idOrAlias`, or `nil` when there is no such user.
    public func org(ofUser idOrAlias: String) -> String? {
        userIndex[idOrAlias].map { orgIDs[Int(users[Int($0)].org)] }
    }

    /// Whether the org `id` is a host org (`false` for a partner org or an unknown id).
    public func isHostOrg(_ id: String) -> Bool {
        orgIndex[id].map { orgs[Int($0)].kind == .host } ?? false
    }
}

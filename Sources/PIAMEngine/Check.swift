// The decision rules of DESIGN §3. One generic evaluation serves `check` (with a tracer that
// the optimizer removes) and `explain` (with a tracer that records every holding), so the two
// can never disagree.

/// A resource after step 5: its type id, location, owner and sharing.
struct ResolvedResource {
    /// Interned type id; -2 for a type no role or resource mentions.
    var type: Int32
    /// Location org.
    var org: Int32
    /// Owning user; -1 for none.
    var owner: Int32
    var shared: Bool
    /// Whether the resource is registered in the graph (or is a user/org/role).
    var registered: Bool
}

/// Where a holding comes from.
enum HoldingSource {
    case assignment(Int32)
    case orgGrant(Int32)
}

/// What happened to one holding (and the permission that matched, if any) in step 7.
enum HoldingRule: String {
    case noMatchingPermission = "no_matching_permission"
    case expired
    case outsideCeiling = "outside_ceiling"
    case outOfBounds = "out_of_bounds"
    case outOfReach = "out_of_reach"
    case notOwner = "not_owner"
    case hostOnly = "host_only"
    case allowed
}

protocol EvalTracer {
    /// Whether evaluation must visit every holding even after one allows.
    static var visitsAll: Bool { get }
    mutating func holding(_ source: HoldingSource, role: Int32, scope: Int32, validUntil: Timestamp, permission: Int32, rule: HoldingRule)
}

struct NoTracer: EvalTracer {
    static var visitsAll: Bool { false }
    @inline(__always)
    mutating func holding(_ source: HoldingSource, role: Int32, scope: Int32, validUntil: Timestamp, permission: Int32, rule: HoldingRule) {}
}

// Step-7 failure flags, in precedence order (lowest bit wins).
private let flagOutOfScope: UInt8 = 1
private let flagNotOwner: UInt8 = 2
private let flagHostOnly: UInt8 = 4
private let flagOutsideCeiling: UInt8 = 8
private let flagExpired: UInt8 = 16

extension AccessGraph {
    // MARK: Public queries

    /// Decides one request at time `now` (DESIGN §3).
    public func check(_ request: CheckRequest, now: Timestamp) -> Decision {
        var t = NoTracer()
        return evaluate(request, now: now, tracer: &t)
    }

    /// Decides one request at time `now`.
    @inlinable
    public func check(subject: String, action: String, resource: ResourceRef, now: Timestamp) -> Decision {
        check(CheckRequest(subject: subject, action: action, resource: resource), now: now)
    }

    /// Decides one request given as UTF-8 bytes (the socket's allocation-free path); the same
    /// decision as ``check(_:now:)`` on the same ids as strings.
    public func check(utf8 request: CheckBytes, now: Timestamp) -> Decision {
        var t = NoTracer()
        return evaluate(request, now: now, tracer: &t)
    }

    /// Decides a batch with one of the AuthZEN semantics. The short-circuit semantics stop after
    /// the deciding item, so the result may be shorter than `requests`.
    public func checkBatch(_ requests: [CheckRequest], semantic: BatchSemantic, now: Timestamp) -> [Decision] {
        var out: [Decision] = []
        out.reserveCapacity(requests.count)
        for r in requests {
            let d = check(r, now: now)
            out.append(d)
            if semantic.stops(after: d) { break }
        }
        return out
    }

    // MARK: The evaluation

    @inline(__always)
    func evaluate<Q: CheckKeys, T: EvalTracer>(_ request: Q, now: Timestamp, tracer: inout T) -> Decision {
        guard let s = userIndex.find(request.subjectKey) else { return .deny(.unknownSubject) }
        let state = subjectState(s, now: now)
        guard state == .allowed else { return .deny(state) }
        guard let res = resolve(request) else { return .deny(.unknownResource) }
        return decide(subject: s, action: actionIndex.find(request.actionKey) ?? -2, resource: res, now: now, tracer: &tracer)
    }

    /// Steps 2–4 for a known subject.
    @inline(__always)
    func subjectState(_ s: Int32, now: Timestamp) -> Reason {
        let i = Int(s)
        if users[i].status != .active { return .subjectInactive }
        if users[i].validUntil <= now { return .subjectExpired }
        if !orgs[Int(users[i].org)].chainActive { return .orgInactive }
        return .allowed
    }

    @inline(__always)
    func actionID(_ action: String) -> Int32 { actionIndex[action] ?? -2 }

    /// Step 5: resolves a resource, or `nil` for `unknown_resource`.
    @inline(__always)
    func resolve<R: ResourceKeys>(_ r: R) -> ResolvedResource? {
        // Dispatch on the interned type id: one lookup instead of comparing the type with each
        // built-in name.
        let t = typeIndex.find(r.typeKey) ?? -2
        switch t {
        case builtinUser:
            guard let u = userIndex.find(r.idKey) else { return nil }
            return ResolvedResource(type: builtinUser, org: users[Int(u)].org, owner: u, shared: false, registered: true)
        case builtinOrg:
            guard let o = orgIndex.find(r.idKey) else { return nil }
            return ResolvedResource(type: builtinOrg, org: o, owner: -1, shared: false, registered: true)
        case builtinRole:
            // Every role, defined or not yet, is located at the root (not at slot 0).
            return ResolvedResource(type: builtinRole, org: rootOrg, owner: -1, shared: false, registered: roleIndex.find(r.idKey) != nil)
        default:
            if let x = resourceTables.find(r.idKey, inTable: t) {
                let i = Int(x)
                return ResolvedResource(type: t, org: res[i].org, owner: res[i].owner, shared: res[i].shared, registered: true)
            }
            guard let orgID = r.orgKey, let o = orgIndex.find(orgID) else { return nil }
            let owner = r.ownerKey.flatMap { userIndex.find($0) } ?? -1
            return ResolvedResource(type: t, org: o, owner: owner, shared: false, registered: false)
        }
    }

    /// Steps 6 and 7 for a subject that passed steps 1–4 and a resolved resource.
    @inline(__always)
    func decide<T: EvalTracer>(subject s: Int32, action a: Int32, resource res: ResolvedResource, now: Timestamp, tracer: inout T) -> Decision {
        let sOrg = users[Int(s)].org
        // Step 6: no self-action.
        if a >= 0 && (a == suspendAction || a == removeAction) {
            if res.type == builtinUser && res.owner == s { return .deny(.selfAction) }
            if res.type == builtinOrg && isWithin(sOrg, res.org) { return .deny(.selfAction) }
        }
        // Step 7.
        let host = orgs[Int(sOrg)].kind == .host
        let hostOnlyRequest = isHostOnly(type: res.type, action: a)
        let reachShared = res.shared && orgs[Int(res.org)].kind == .host
        var flags: UInt8 = 0
        var allowed = false
        forEachHolding(of: s) { source, role, scope, validUntil in
            guard roleMayMatch(role, type: res.type) else {
                tracer.holding(source, role: role, scope: scope, validUntil: validUntil, permission: -1, rule: .noMatchingPermission)
                return true
            }
            let r = Int(role)
            var p = Int(rolePermStart[r])
            let end = Int(rolePermStart[r + 1])
            var matched = false
            while p < end {
                let pa = perms[p].action
                if perms[p].type == res.type && (pa == -1 || pa == a) {
                    matched = true
                    if validUntil <= now {
                        flags |= flagExpired
                        tracer.holding(source, role: role, scope: scope, validUntil: validUntil, permission: Int32(p), rule: .expired)
                        break
                    }
                    if !host {
                        if !inCeiling(org: sOrg, role: role) {
                            flags |= flagOutsideCeiling
                            tracer.holding(source, role: role, scope: scope, validUntil: validUntil, permission: Int32(p), rule: .outsideCeiling)
                            break
                        }
                        if !isWithin(scope, sOrg) {
                            flags |= flagOutsideCeiling
                            tracer.holding(source, role: role, scope: scope, validUntil: validUntil, permission: Int32(p), rule: .outOfBounds)
                            break
                        }
                    }
                    if !(reachShared || isWithin(res.org, scope)) {
                        flags |= flagOutOfScope
                        tracer.holding(source, role: role, scope: scope, validUntil: validUntil, permission: Int32(p), rule: .outOfReach)
                    } else if perms[p].owner && res.owner != s {
                        flags |= flagNotOwner
                        tracer.holding(source, role: role, scope: scope, validUntil: validUntil, permission: Int32(p), rule: .notOwner)
                    } else if hostOnlyRequest && !host {
                        flags |= flagHostOnly
                        tracer.holding(source, role: role, scope: scope, validUntil: validUntil, permission: Int32(p), rule: .hostOnly)
                    } else {
                        tracer.holding(source, role: role, scope: scope, validUntil: validUntil, permission: Int32(p), rule: .allowed)
                        allowed = true
                        return T.visitsAll
                    }
                }
                p += 1
            }
            if !matched {
                tracer.holding(source, role: role, scope: scope, validUntil: validUntil, permission: -1, rule: .noMatchingPermission)
            }
            return true
        }
        if allowed { return .allow }
        return .deny(Self.reason(forFlags: flags))
    }

    @inline(__always)
    static func reason(forFlags flags: UInt8) -> Reason {
        if flags & flagOutOfScope != 0 { return .outOfScope }
        if flags & flagNotOwner != 0 { return .notOwner }
        if flags & flagHostOnly != 0 { return .hostOnly }
        if flags & flagOutsideCeiling != 0 { return .outsideCeiling }
        if flags & flagExpired != 0 { return .grantExpired }
        return .noPermission
    }

    /// Calls `body` for every holding of user `s` (its assignments, then the org grants its org's
    /// members hold: the org's own, then its ancestors' that include sub-orgs, from the root down)
    /// until it returns `false`. Holdings are not filtered: the caller applies the
    /// effectiveness rules.
    @inline(__always)
    func forEachHolding(of s: Int32, _ body: (HoldingSource, _ role: Int32, _ scope: Int32, _ validUntil: Timestamp) -> Bool) {
        let u = Int(s)
        var i = Int(users[u].assignStart)
        let end = Int(users[u].assignEnd)
        while i < end {
            if !body(.assignment(Int32(i)), assigns[i].role, assigns[i].scope, assigns[i].validUntil) { return }
            i += 1
        }
        let sOrg = users[u].org
        var k = Int(memberGrantStart[Int(sOrg)])
        let kEnd = Int(memberGrantStart[Int(sOrg) + 1])
        while k < kEnd {
            let m = memberGrants[k]
            if !body(.orgGrant(m.grant), m.role, sOrg, m.validUntil) { return }
            k += 1
        }
    }

    /// Whether a holding of user `s` is effective (DESIGN §3, rules 1–3).
    @inline(__always)
    func isEffective(subject s: Int32, role: Int32, scope: Int32, validUntil: Timestamp, now: Timestamp) -> Bool {
        if validUntil <= now { return false }
        let sOrg = users[Int(s)].org
        if orgs[Int(sOrg)].kind == .host { return true }
        return inCeiling(org: sOrg, role: role) && isWithin(scope, sOrg)
    }

    // MARK: can_assign

    /// Whether `actor` may give `role` to `target` over `scope` (default: the target's org),
    /// by the five rules of DESIGN §3:
    ///
    /// 1. `check(actor, assign_role, user:target)` is allowed (else that reason);
    /// 2. the role exists (else `unknown_role`), the scope exists (else `unknown_org`);
    /// 3. the role is in the ceiling of the target's org, or the target is a host user (else
    ///    `outside_ceiling`);
    /// 4. the scope is the target's org or below it, or the target is a host user (else
    ///    `out_of_scope`);
    /// 5. no escalation (else `escalation`): `check(actor, grant, role:R)` is allowed — the
    ///    business's role administrators (`host-admin` holds `role:*`) hand out any role — or
    ///    every permission of the role is covered at the scope by the actor's own effective
    ///    holdings (see ``canGrantToOrg(actor:org:role:now:)``, which shares this rule).
    public func canAssign(actor: String, target: String, role: String, scope: String? = nil, now: Timestamp) -> Decision {
        // Rule 1.
        let d = check(subject: actor, action: "assign_role", resource: ResourceRef(type: BuiltinType.user, id: target), now: now)
        guard d.allowed, let a = userIndex[actor], let t = userIndex[target] else { return d }
        // Rules 2–4.
        switch assignability(role: role, target: t, scope: scope.flatMap { $0.isEmpty ? nil : $0 }) {
        case .denied(let reason): return .deny(reason)
        // Rule 5.
        case .assignable(let r, let l): return noEscalation(actor: a, role: r, at: l, now: now) ? .allow : .deny(.escalation)
        }
    }

    /// Rules 2–4 of `can_assign`: those about the target, the role and the scope, whoever
    /// assigns — whether `role` may be held by `target` (id or alias) over `scope` at all.
    ///
    /// 2. the role exists (else `unknown_role`), the scope exists (else `unknown_org`);
    /// 3. the role is in the ceiling of the target's org, or the target is a host user (else
    ///    `outside_ceiling`);
    /// 4. the scope is the target's org or below it, or the target is a host user (else
    ///    `out_of_scope`).
    ///
    /// `scope` `nil` is the target's org; a given scope is looked up as it is. An unknown target
    /// is `unknown_resource`. The store refuses an access request nobody could approve with it
    /// (`request.create`), asking exactly what ``canAssign(actor:target:role:scope:now:)`` will
    /// ask the approver.
    public func assignable(role: String, to target: String, over scope: String?) -> Decision {
        guard let t = userIndex[target] else { return .deny(.unknownResource) }
        switch assignability(role: role, target: t, scope: scope) {
        case .denied(let reason): return .deny(reason)
        case .assignable: return .allow
        }
    }

    enum Assignability {
        case denied(Reason)
        case assignable(role: Int32, scope: Int32)
    }

    /// Rules 2–4 of `can_assign` for target `t` (see ``assignable(role:to:over:)``).
    func assignability(role: String, target t: Int32, scope: String?) -> Assignability {
        // Rule 2.
        guard let r = roleIndex[role] else { return .denied(.unknownRole) }
        let tOrg = users[Int(t)].org
        let l: Int32
        if let scope {
            guard let o = orgIndex[scope] else { return .denied(.unknownOrg) }
            l = o
        } else {
            l = tOrg
        }
        let targetIsHost = orgs[Int(tOrg)].kind == .host
        // Rule 3.
        if !targetIsHost && !inCeiling(org: tOrg, role: r) { return .denied(.outsideCeiling) }
        // Rule 4.
        if !targetIsHost && !isWithin(l, tOrg) { return .denied(.outOfScope) }
        return .assignable(role: r, scope: l)
    }

    /// Rule 5 of `can_assign`, which org grants share (at the org granted to): no escalation.
    /// Actor `a` may hand out role `r` at `l` when `check(a, grant, role:R)` is allowed (a role
    /// administrator hands out R whatever it holds itself), or when every permission of R is
    /// covered at `l` by `a`'s own effective holdings (``coversRole(actor:role:at:now:)``).
    func noEscalation(actor a: Int32, role r: Int32, at l: Int32, now: Timestamp) -> Bool {
        mayGrantRole(actor: a, role: r, now: now) || coversRole(actor: a, role: r, at: l, now: now)
    }

    /// `check(a, grant, role:R)` is allowed: steps 2–4 for the actor, then steps 6–7 on
    /// `role:R`, which always resolves (step 5) and is located at the root. `grant` on `role` is
    /// host-only, so only a host user whose holding's scope is the root (and whose role has
    /// `role:grant` or `role:*`) qualifies.
    func mayGrantRole(actor a: Int32, role r: Int32, now: Timestamp) -> Bool {
        guard subjectState(a, now: now) == .allowed else { return false }
        let res = ResolvedResource(type: builtinRole, org: rootOrg, owner: -1, shared: false, registered: true)
        var t = NoTracer()
        return decide(subject: a, action: grantAction, resource: res, now: now, tracer: &t).allowed
    }

    /// Whether every permission of role `r` is covered at `l` for actor `a` (the second half of
    /// rule 5).
    func coversRole(actor a: Int32, role r: Int32, at l: Int32, now: Timestamp) -> Bool {
        let actorIsHost = isHostUser(a)
        for p in Int(rolePermStart[Int(r)])..<Int(rolePermStart[Int(r) + 1]) {
            if !covers(actor: a, actorIsHost: actorIsHost, type: perms[p].type, action: perms[p].action, ownerOnly: perms[p].owner, at: l, now: now) {
                return false
            }
        }
        return true
    }

    /// Whether permission P = (type, action, ownerOnly) is *covered* at org `l` for actor `a`:
    /// `a` has an effective holding whose scope is `l` or above it, with a permission Q of P's
    /// type whose action is `*` or (P's action is not `*` and) equals P's action, and Q carries
    /// `:owner` only if P does. A host-only P (any on `role`, `org:approve`, `org:entitle`) is
    /// covered only for a host actor; `org:*` is not host-only, so a Q of `org:*` covers it for
    /// any actor.
    func covers(actor a: Int32, actorIsHost: Bool, type: Int32, action: Int32, ownerOnly: Bool, at l: Int32, now: Timestamp) -> Bool {
        if isHostOnly(type: type, action: action) && !actorIsHost { return false }
        var covered = false
        forEachHolding(of: a) { _, role, scope, validUntil in
            guard isEffective(subject: a, role: role, scope: scope, validUntil: validUntil, now: now), isWithin(l, scope) else { return true }
            let r = Int(role)
            for q in Int(rolePermStart[r])..<Int(rolePermStart[r + 1]) where perms[q].type == type {
                let qa = perms[q].action
                if (qa == -1 || (action != -1 && qa == action)) && (!perms[q].owner || ownerOnly) {
                    covered = true
                    return false
                }
            }
            return true
        }
        return covered
    }
}

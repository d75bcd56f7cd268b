import PIAMEngine
import Testing

@Suite("Decision rules (DESIGN §3)")
struct DecisionRuleTests {
    let g = fixture()

    @Test func everyCheckReasonCode() {
        #expect(g.decide("alice", "read", "claim:CLM-acme-1") == .allow)
        #expect(g.decide("nobody", "read", "claim:CLM-acme-1") == .deny(.unknownSubject))
        #expect(g.decide("invited-user", "view", "org:acme") == .deny(.subjectInactive))
        #expect(g.decide("suspended-user", "view", "org:acme") == .deny(.subjectInactive))
        #expect(g.decide("expired-user", "view", "org:acme") == .deny(.subjectExpired))
        #expect(g.decide("susp-user", "view", "org:suspco") == .deny(.orgInactive))
        #expect(g.decide("pend-user", "view", "org:pendco") == .deny(.orgInactive))
        #expect(g.decide("alice", "read", "claim:NOPE") == .deny(.unknownResource))
        #expect(g.decide("alice", "view", "user:ghost") == .deny(.unknownResource))
        #expect(g.decide("alice", "view", "org:nowhere") == .deny(.unknownResource))
        #expect(g.decide("alice", "read", "claim:EXT", org: "nowhere") == .deny(.unknownResource))
        #expect(g.decide("alice", "delete", "claim:CLM-acme-1") == .deny(.noPermission))
        #expect(g.decide("alice", "read", "claim:CLM-globex-1") == .deny(.outOfScope))
        #expect(g.decide("alice", "withdraw", "claim:CLM-north-1") == .deny(.notOwner))
        #expect(g.decide("south-user", "read", "claim:CLM-acme-1") == .deny(.outsideCeiling))
        #expect(g.decide("acme-user", "read", "claim:CLM-acme-1") == .deny(.grantExpired))
        #expect(g.decide("acme-admin", "suspend", "user:acme-admin") == .deny(.selfAction))
        #expect(g.decide("acme-user", "approve", "org:acme") == .deny(.hostOnly))
        #expect(g.canAssign(actor: "acme-admin", target: "alice", role: "statements", now: now) == .deny(.escalation))
        #expect(g.canAssign(actor: "acme-admin", target: "alice", role: "nope", now: now) == .deny(.unknownRole))
        #expect(g.canAssign(actor: "acme-admin", target: "alice", role: "claims-agent", scope: "nowhere", now: now) == .deny(.unknownOrg))
    }

    @Test func selfActionCoversOwnOrgAndAncestors() {
        #expect(g.decide("acme-admin", "remove", "user:acme-admin") == .deny(.selfAction))
        #expect(g.decide("acme-admin", "suspend", "org:acme") == .deny(.selfAction))
        #expect(g.decide("north-admin", "suspend", "org:acme-north") == .deny(.selfAction))
        #expect(g.decide("north-admin", "remove", "org:acme") == .deny(.selfAction))
        #expect(g.decide("hal", "suspend", "org:host") == .deny(.selfAction))
        // Others' records and orgs below are fine; other actions on oneself are not self-actions.
        #expect(g.decide("north-admin", "suspend", "org:acme-north-x") == .allow)
        #expect(g.decide("acme-admin", "update", "user:acme-admin") == .allow)
        #expect(g.decide("hal", "suspend", "org:acme") == .allow)
        // Named through an alias, it is still oneself; step 6 comes before any permission.
        #expect(g.decide("alice", "suspend", "user:idp|alice") == .deny(.selfAction))
    }

    /// Step 7's reasons, in precedence order: each one wins over all that follow it.
    @Test func stepSevenPrecedence() throws {
        // A partner user in P with five holdings on org:approve, each failing a different way.
        func graph(_ holdings: Set<String>) throws -> AccessGraph {
            var d = GraphData()
            d.orgs = [
                OrgRecord(id: "host", parent: nil, kind: .host, status: .active),
                OrgRecord(id: "p", parent: "host", kind: .partner, status: .active),
                OrgRecord(id: "p1", parent: "p", kind: .partner, status: .active),
                OrgRecord(id: "p2", parent: "p", kind: .partner, status: .active),
            ]
            d.roles = [
                RoleRecord(id: "scoped", permissions: perms("org:approve")),
                RoleRecord(id: "owned", permissions: perms("org:approve:owner")),
                RoleRecord(id: "hostonly", permissions: perms("org:approve")),
                RoleRecord(id: "unentitled", permissions: perms("org:approve")),
                RoleRecord(id: "expired", permissions: perms("org:approve")),
            ]
            d.entitlements = ["scoped", "owned", "hostonly", "expired"].map { EntitlementRecord(org: "p", role: $0) }
            d.users = [UserRecord(id: "u", org: "p", status: .active)]
            let all: [String: AssignmentRecord] = [
                "scoped": AssignmentRecord(user: "u", role: "scoped", scope: "p1"),
                "owned": AssignmentRecord(user: "u", role: "owned", scope: "p"),
                "hostonly": AssignmentRecord(user: "u", role: "hostonly", scope: "p"),
                "unentitled": AssignmentRecord(user: "u", role: "unentitled", scope: "p"),
                "expired": AssignmentRecord(user: "u", role: "expired", scope: "p", validUntil: now - 1),
            ]
            d.assignments = all.filter { holdings.contains($0.key) }.map(\.value)
            return try GraphBuilder.build(d)
        }
        let order: [(String, Reason)] = [
            ("scoped", .outOfScope), ("owned", .notOwner), ("hostonly", .hostOnly),
            ("unentitled", .outsideCeiling), ("expired", .grantExpired),
        ]
        var holdings = Set(order.map(\.0))
        for (name, reason) in order {
            let d = try graph(holdings).decide("u", "approve", "org:p2")
            #expect(d == .deny(reason), "with \(holdings.sorted()) expected \(reason)")
            holdings.remove(name)
        }
        #expect(try graph([]).decide("u", "approve", "org:p2") == .deny(.noPermission))
        // Out of bounds (scope above the user's org) counts as outside the ceiling.
        var d = GraphData()
        d.orgs = [
            OrgRecord(id: "host", parent: nil, kind: .host, status: .active),
            OrgRecord(id: "p", parent: "host", kind: .partner, status: .active),
            OrgRecord(id: "p1", parent: "p", kind: .partner, status: .active),
        ]
        d.roles = [RoleRecord(id: "r", permissions: perms("org:view"))]
        d.entitlements = [EntitlementRecord(org: "p", role: "r")]
        d.users = [UserRecord(id: "u", org: "p1", status: .active)]
        d.assignments = [AssignmentRecord(user: "u", role: "r", scope: "p"), AssignmentRecord(user: "u", role: "r", scope: "p", validUntil: now - 1)]
        #expect(try GraphBuilder.build(d).decide("u", "view", "org:p") == .deny(.outsideCeiling))
    }

    /// The EmpowerID delegation scenario (DESIGN §3).
    @Test func empowerIDDelegation() {
        // The User Admin at the partner root manages people of every sub-org, including the
        // sub-org's own admin.
        for target in ["nx-user", "south-user", "north-admin", "alice"] {
            for action in ["view", "update", "suspend", "reactivate", "remove", "assign_role"] {
                #expect(g.decide("acme-admin", action, "user:\(target)") == .allow, "acme-admin \(action) \(target)")
            }
        }
        for org in ["acme", "acme-north", "acme-north-x", "acme-south"] {
            #expect(g.decide("acme-admin", "create_suborg", "org:\(org)") == .allow)
        }
        // The sub-org admin manages its subtree...
        #expect(g.decide("north-admin", "suspend", "user:nx-user") == .allow)
        #expect(g.decide("north-admin", "invite_user", "org:acme-north-x") == .allow)
        // ...and cannot touch the parent's people or a sibling's.
        for target in ["acme-admin", "acme-user", "alice", "south-user"] {
            #expect(g.decide("north-admin", "suspend", "user:\(target)") == .deny(.outOfScope), "north-admin suspend \(target)")
        }
        #expect(g.decide("north-admin", "update", "org:acme") == .deny(.outOfScope))
        #expect(g.decide("north-admin", "view", "org:acme-south") == .deny(.outOfScope))
        // Neither sees another partner, nor the host.
        for admin in ["acme-admin", "north-admin"] {
            #expect(g.decide(admin, "view", "user:globex-user") == .deny(.outOfScope))
            #expect(g.decide(admin, "view", "user:east-user") == .deny(.outOfScope))
            #expect(g.decide(admin, "view", "org:globex") == .deny(.outOfScope))
            #expect(g.decide(admin, "view", "user:hal") == .deny(.outOfScope))
            #expect(g.decide(admin, "view", "org:partners") == .deny(.outOfScope))
        }
        #expect(g.decide("globex-admin", "view", "user:alice") == .deny(.outOfScope))
        #expect(g.decide("globex-admin", "suspend", "user:east-user") == .allow)
    }

    @Test func suspendingAPartnerRootCutsOffAndReactivatingRestoresExactly() throws {
        let subjects = ["acme-admin", "acme-user", "alice", "north-admin", "nx-user", "south-user", "globex-admin", "hal"]
        let actions = ["view", "suspend", "read", "withdraw", "assign_role", "approve", "request_role"]
        let resources = ["user:alice", "user:nx-user", "org:acme-north", "claim:CLM-acme-1", "claim:CLM-nx-1",
                         "document:price-list", "user:globex-user", "statement:ST-alice"]
        func answers(_ g: AccessGraph) -> [Decision] {
            subjects.flatMap { s in actions.flatMap { a in resources.map { g.decide(s, a, $0) } } }
        }
        var data = fixtureData()
        let before = answers(try GraphBuilder.build(data))
        let i = data.orgs.firstIndex { $0.id == "acme" }!
        for status in [OrgStatus.suspended, .pending] {
            data.orgs[i].status = status
            let cut = try GraphBuilder.build(data)
            for s in ["acme-admin", "acme-user", "alice", "north-admin", "nx-user", "south-user"] {
                for a in actions {
                    for r in resources {
                        #expect(cut.decide(s, a, r) == .deny(.orgInactive), "\(status): \(s) \(a) \(r)")
                    }
                }
            }
            // Other partners and the host are untouched.
            #expect(cut.decide("globex-admin", "suspend", "user:east-user") == .allow)
            #expect(cut.decide("hal", "view", "user:alice") == .allow)
        }
        data.orgs[i].status = .active
        #expect(answers(try GraphBuilder.build(data)) == before)
        // A suspended sub-org cuts off only its own subtree.
        let j = data.orgs.firstIndex { $0.id == "acme-north" }!
        data.orgs[j].status = .suspended
        let sub = try GraphBuilder.build(data)
        #expect(sub.decide("nx-user", "read", "claim:CLM-nx-1") == .deny(.orgInactive))
        #expect(sub.decide("north-admin", "view", "org:acme-north") == .deny(.orgInactive))
        #expect(sub.decide("alice", "read", "claim:CLM-acme-1") == .allow)
    }

    @Test func ceilingAndBounds() {
        // adjuster is entitled at acme-north: effective there and below, not at the sibling.
        #expect(g.decide("nx-user", "close", "claim:CLM-nx-1") == .allow)
        #expect(g.decide("south-user", "close", "claim:CLM-acme-1") == .deny(.outsideCeiling))
        // nx-user's scope is its own org: the claim at acme-north is above it.
        #expect(g.decide("nx-user", "read", "claim:CLM-north-1") == .deny(.outOfScope))
        // An assignment scoped above the partner user's own org never acts there.
        #expect(g.decide("north-admin", "read", "claim:CLM-acme-1") == .deny(.outsideCeiling))
        let e = g.explain(CheckRequest(subject: "north-admin", action: "read", resource: ResourceRef(type: "claim", id: "CLM-acme-1")), now: now)
        #expect(e.holdings.contains { $0.role == "claims-agent" && $0.rule == "out_of_bounds" })
        // Host users have no ceiling and no bounds.
        #expect(g.decide("hal", "close", "claim:CLM-globex-1") == .allow)
        #expect(g.decide("clara", "close", "claim:CLM-host-1") == .allow)
        #expect(g.decide("clara", "close", "claim:CLM-acme-1") == .deny(.outOfScope))
    }

    @Test func expiryOfUsersAndGrants() {
        #expect(g.decide("leaving-user", "read", "claim:CLM-acme-1") == .allow)
        #expect(g.decide("leaving-user", "read", "claim:CLM-acme-1", at: now + 2 * day) == .deny(.subjectExpired))
        // valid_until is exclusive: at that instant access has ended.
        #expect(g.decide("leaving-user", "read", "claim:CLM-acme-1", at: now + day) == .deny(.subjectExpired))
        #expect(g.decide("leaving-user", "read", "claim:CLM-acme-1", at: now + day - 1) == .allow)
        // A grant expiring: the org grant of claims-agent on globex runs out in 30 days.
        #expect(g.decide("globex-admin", "read", "claim:CLM-globex-1") == .allow)
        #expect(g.decide("globex-admin", "read", "claim:CLM-globex-1", at: now + 31 * day) == .deny(.grantExpired))
        #expect(g.decide("globex-user", "read", "claim:CLM-globex-1", at: now + 31 * day) == .allow)
        #expect(g.decide("acme-user", "submit", "claim:CLM-acme-1") == .deny(.grantExpired))
    }

    @Test func ownerQualifier() {
        #expect(g.decide("alice", "withdraw", "claim:CLM-acme-1") == .allow)
        #expect(g.decide("alice", "withdraw", "claim:CLM-nx-1") == .deny(.notOwner))
        #expect(g.decide("alice", "read", "statement:ST-alice") == .allow)
        #expect(g.decide("alice", "read", "statement:ST-acme-user") == .deny(.notOwner))
        // user:request_role:owner: a user may ask for a role for itself only.
        #expect(g.decide("acme-user", "request_role", "user:acme-user") == .allow)
        #expect(g.decide("acme-user", "request_role", "user:alice") == .deny(.notOwner))
        #expect(g.decide("idp|alice", "request_role", "user:alice@acme.example") == .allow)
    }

    @Test func hostOnlyPermissions() {
        #expect(g.decide("acme-user", "approve", "org:acme") == .deny(.hostOnly))
        #expect(g.decide("hal", "approve", "org:acme") == .allow)
        #expect(g.decide("hal", "entitle", "org:globex") == .allow)
        #expect(g.decide("hal", "update", "role:claims-agent") == .allow)
        #expect(g.decide("hal", "update", "role:not-yet-defined") == .allow)
        // A role resource lies at the root: a partner holding never reaches it.
        #expect(g.decide("acme-user", "read", "role:partner-admin") == .deny(.outOfScope))
        // The approver role's org:view is an ordinary permission and works.
        #expect(g.decide("acme-user", "view", "org:acme-south") == .allow)
    }

    @Test func sharedHostResources() {
        #expect(g.decide("alice", "read", "document:price-list") == .allow)
        #expect(g.decide("nx-user", "read", "document:price-list") == .allow)
        #expect(g.decide("alice", "read", "document:internal-memo") == .deny(.outOfScope))
        #expect(g.decide("alice", "read", "document:acme-handbook") == .allow)
        #expect(g.decide("globex-user", "read", "document:price-list") == .deny(.noPermission))
    }

    @Test func unregisteredResourcesThroughProperties() {
        #expect(g.decide("alice", "read", "claim:EXT-1", org: "acme") == .allow)
        #expect(g.decide("alice", "read", "claim:EXT-1", org: "acme-north-x") == .allow)
        #expect(g.decide("alice", "read", "claim:EXT-1", org: "globex") == .deny(.outOfScope))
        #expect(g.decide("alice", "withdraw", "claim:EXT-1", org: "acme", owner: "idp|alice") == .allow)
        #expect(g.decide("alice", "withdraw", "claim:EXT-1", org: "acme", owner: "acme-user") == .deny(.notOwner))
        #expect(g.decide("alice", "withdraw", "claim:EXT-1", org: "acme") == .deny(.notOwner))
        #expect(g.decide("alice", "read", "claim:EXT-1") == .deny(.unknownResource))
        #expect(g.decide("alice", "read", "widget:W-1", org: "acme") == .deny(.noPermission))
        // For a registered resource the properties are ignored.
        #expect(g.decide("alice", "read", "claim:CLM-globex-1", org: "acme") == .deny(.outOfScope))
        // Users and orgs never resolve through properties.
        #expect(g.decide("hal", "view", "user:ghost", org: "acme") == .deny(.unknownResource))
    }

    @Test func aliasesNameTheSameUser() {
        #expect(g.decide("idp|alice", "read", "claim:CLM-acme-1") == .allow)
        #expect(g.decide("alice@acme.example", "withdraw", "claim:CLM-acme-1") == .allow)
        #expect(g.decide("acme-admin", "suspend", "user:idp|alice") == .allow)
        #expect(g.decide("alice", "view", "user:idp|alice") == .allow)
        let e = g.explain(CheckRequest(subject: "idp|alice", action: "view", resource: ResourceRef(type: "user", id: "alice@acme.example")), now: now)
        #expect(e.subject?.id == "alice")
        #expect(e.resource?.id == "alice")
        #expect(g.userID(for: "idp|alice") == "alice")
    }

    @Test func canAssignFiveRules() {
        // Rule 1: the actor must be allowed assign_role on the target.
        #expect(g.canAssign(actor: "north-admin", target: "acme-user", role: "claims-agent", now: now) == .deny(.outOfScope))
        #expect(g.canAssign(actor: "alice", target: "acme-user", role: "claims-agent", now: now) == .deny(.noPermission))
        #expect(g.canAssign(actor: "nobody", target: "alice", role: "claims-agent", now: now) == .deny(.unknownSubject))
        #expect(g.canAssign(actor: "acme-admin", target: "ghost", role: "claims-agent", now: now) == .deny(.unknownResource))
        // Rule 2.
        #expect(g.canAssign(actor: "acme-admin", target: "alice", role: "no-such-role", now: now) == .deny(.unknownRole))
        #expect(g.canAssign(actor: "acme-admin", target: "alice", role: "claims-agent", scope: "no-such-org", now: now) == .deny(.unknownOrg))
        // Rule 3: a role outside the target's ceiling (adjuster is entitled only at acme-north).
        #expect(g.canAssign(actor: "acme-admin", target: "alice", role: "adjuster", now: now) == .deny(.outsideCeiling))
        #expect(g.canAssign(actor: "acme-admin", target: "south-user", role: "host-admin", now: now) == .deny(.outsideCeiling))
        // Rule 4: a partner admin handing out partner-admin at its parent org.
        #expect(g.canAssign(actor: "north-admin", target: "nx-user", role: "partner-admin", scope: "acme", now: now) == .deny(.outOfScope))
        #expect(g.canAssign(actor: "acme-admin", target: "alice", role: "partner-admin", scope: "partners", now: now) == .deny(.outOfScope))
        #expect(g.canAssign(actor: "acme-admin", target: "nx-user", role: "claims-agent", scope: "acme-north", now: now) == .deny(.outOfScope))
        // Rule 5: no escalation.
        #expect(g.canAssign(actor: "acme-admin", target: "alice", role: "statements", now: now) == .deny(.escalation))
        #expect(g.canAssign(actor: "acme-admin", target: "alice", role: "role-viewer", now: now) == .deny(.escalation))
        #expect(g.canAssign(actor: "acme-admin", target: "alice", role: "approver", now: now) == .deny(.escalation))
        // north-admin holds partner-admin only at acme-north: it covers there, not above.
        #expect(g.canAssign(actor: "north-admin", target: "nx-user", role: "partner-admin", scope: "acme-north-x", now: now) == .allow)
        #expect(g.canAssign(actor: "north-admin", target: "nx-user", role: "claims-agent", now: now) == .deny(.escalation))
        // Allowed.
        #expect(g.canAssign(actor: "acme-admin", target: "south-user", role: "claims-agent", now: now) == .allow)
        #expect(g.canAssign(actor: "acme-admin", target: "north-admin", role: "partner-admin", scope: "acme-north", now: now) == .allow)
        #expect(g.canAssign(actor: "hal", target: "alice", role: "role-viewer", now: now) == .allow)
        #expect(g.canAssign(actor: "hal", target: "clara", role: "host-admin", now: now) == .allow)
        // A host target has no ceiling and no bounds.
        #expect(g.canAssign(actor: "hal", target: "clara", role: "adjuster", scope: "host", now: now) == .allow)
    }

    @Test func canAssignOwnerCoverage() throws {
        var d = fixtureData()
        // A partner admin whose only claim power is withdraw:owner cannot hand out plain withdraw.
        d.roles.append(RoleRecord(id: "withdrawer", permissions: perms("claim:withdraw")))
        d.roles.append(RoleRecord(id: "self-withdrawer", permissions: perms("claim:withdraw:owner")))
        d.entitlements.append(EntitlementRecord(org: "acme", role: "withdrawer"))
        d.entitlements.append(EntitlementRecord(org: "acme", role: "self-withdrawer"))
        let g = try GraphBuilder.build(d)
        #expect(g.canAssign(actor: "acme-admin", target: "alice", role: "withdrawer", now: now) == .deny(.escalation))
        #expect(g.canAssign(actor: "acme-admin", target: "alice", role: "self-withdrawer", now: now) == .allow)
        // An expired holding covers nothing: the same power, held until yesterday.
        d.assignments.append(AssignmentRecord(user: "acme-admin", role: "withdrawer", validUntil: now - day))
        let h = try GraphBuilder.build(d)
        #expect(h.canAssign(actor: "acme-admin", target: "alice", role: "withdrawer", now: now) == .deny(.escalation))
        #expect(h.canAssign(actor: "acme-admin", target: "alice", role: "withdrawer", now: now - 2 * day) == .allow)
    }

    @Test func batchSemantics() {
        let allow = CheckRequest(subject: "alice", action: "read", resource: ResourceRef(type: "claim", id: "CLM-acme-1"))
        let deny = CheckRequest(subject: "alice", action: "read", resource: ResourceRef(type: "claim", id: "CLM-globex-1"))
        let reqs = [allow, deny, allow, deny]
        #expect(g.checkBatch(reqs, semantic: .executeAll, now: now) == [.allow, .deny(.outOfScope), .allow, .deny(.outOfScope)])
        #expect(g.checkBatch(reqs, semantic: .denyOnFirstDeny, now: now) == [.allow, .deny(.outOfScope)])
        #expect(g.checkBatch(reqs, semantic: .permitOnFirstPermit, now: now) == [.allow])
        #expect(g.checkBatch([deny, deny], semantic: .permitOnFirstPermit, now: now).count == 2)
        #expect(g.checkBatch([], semantic: .executeAll, now: now).isEmpty)
    }

    @Test func explainAgreesWithCheckAndNamesEveryHolding() {
        let subjects = g.allUserIDs + ["nobody"]
        let resources = ["claim:CLM-acme-1", "claim:CLM-nx-1", "user:alice", "org:acme", "org:globex", "document:price-list", "role:x", "claim:nope"]
        for s in subjects {
            for a in ["read", "withdraw", "suspend", "approve", "view"] {
                for r in resources {
                    let req = CheckRequest(subject: s, action: a, resource: ResourceRef(parsing: r)!)
                    #expect(g.explain(req, now: now).decision == g.check(req, now: now), "\(s) \(a) \(r)")
                }
            }
        }
        let e = g.explain(CheckRequest(subject: "acme-user", action: "read", resource: ResourceRef(type: "claim", id: "CLM-acme-1")), now: now)
        #expect(e.reason == .grantExpired)
        #expect(e.steps.map(\.step) == [1, 2, 3, 4, 5, 6, 7])
        #expect(e.holdings.contains { $0.role == "claims-agent" && $0.rule == "expired" && $0.permission == "claim:read" })
        #expect(e.holdings.contains { $0.source == "org_grant" && $0.role == "partner-user" && $0.grantOrg == "partners" && $0.rule == "no_matching_permission" })
        // Every holding of the subject is listed once per matching permission or once without one.
        #expect(Set(e.holdings.map(\.role)) == ["claims-agent", "statements", "role-viewer", "approver", "partner-user", "catalog-reader"])
        let early = g.explain(CheckRequest(subject: "susp-user", action: "view", resource: ResourceRef(type: "org", id: "suspco")), now: now)
        #expect(early.reason == .orgInactive && early.steps.last?.passed == false && early.holdings.isEmpty)
    }

    @Test func listsFollowTheRules() throws {
        #expect(try g.listResources(subject: "alice", action: "read", type: "claim", limit: 100, now: now).items == ["CLM-acme-1", "CLM-north-1", "CLM-nx-1"])
        #expect(try g.listResources(subject: "alice", action: "read", type: "document", limit: 100, now: now).items == ["acme-handbook", "price-list"])
        #expect(try g.listResources(subject: "north-admin", action: "suspend", type: "user", limit: 100, now: now).items == ["nx-user"])
        #expect(try g.listResources(subject: "north-admin", action: "view", type: "org", limit: 100, now: now).items == ["acme-north", "acme-north-x"])
        #expect(try g.listResources(subject: "hal", action: "update", type: "role", limit: 100, now: now).items.count == 10)
        #expect(try g.listResources(subject: "nobody", action: "read", type: "claim", limit: 100, now: now).items.isEmpty)
        #expect(try g.listSubjects(action: "read", resource: ResourceRef(type: "claim", id: "CLM-nx-1"), limit: 100, now: now).items
            == ["acme-admin", "alice", "hal", "leaving-user", "nx-user"])
        #expect(try g.listSubjects(action: "read", resource: ResourceRef(type: "document", id: "price-list"), limit: 100, now: now).items
            == ["acme-admin", "acme-user", "alice", "leaving-user", "north-admin", "nx-user", "south-user"])
        #expect(g.listActions(subject: "alice", resource: ResourceRef(type: "claim", id: "CLM-acme-1"), now: now) == ["read", "submit", "withdraw"])
        #expect(g.listActions(subject: "alice", resource: ResourceRef(type: "claim", id: "CLM-nx-1"), now: now) == ["read", "submit"])
        #expect(g.listActions(subject: "north-admin", resource: ResourceRef(type: "user", id: "north-admin"), now: now)
            == ["assign_role", "reactivate", "request_role", "revoke_role", "update", "view"])
        #expect(g.listActions(subject: "hal", resource: ResourceRef(type: "claim", id: "CLM-acme-1"), now: now) == g.vocabulary(ofType: "claim"))
    }

    @Test func pagingWalksEveryItemOnceAndRejectsForeignCursors() throws {
        let all = try g.listSubjects(action: "view", resource: ResourceRef(type: "org", id: "acme-north-x"), limit: 1000, now: now).items
        #expect(all.count >= 6)
        for pageSize in [1, 2, 3, 5] {
            var got: [String] = []
            var cursor: String? = nil
            repeat {
                let page = try g.listSubjects(action: "view", resource: ResourceRef(type: "org", id: "acme-north-x"), cursor: cursor, limit: pageSize, now: now)
                #expect(page.items.count <= pageSize)
                got += page.items
                cursor = page.nextCursor
            } while cursor != nil
            #expect(got == all, "page size \(pageSize)")
        }
        #expect(throws: PIAMError.self) { try g.listSubjects(action: "view", resource: ResourceRef(type: "org", id: "acme"), cursor: "garbage", limit: 5, now: now) }
        #expect(throws: PIAMError.self) { try g.listResources(subject: "hal", action: "view", type: "org", cursor: "c1zz", limit: 5, now: now) }
    }

    @Test func accessReportExplainsWherePowerComesFrom() throws {
        let r = try #require(g.accessReport(user: "idp|alice", now: now))
        #expect(r.user == "alice" && r.orgPath == ["acme", "partners", "host"] && !r.host)
        #expect(r.subjectState == .allowed)
        #expect(r.effective.contains { $0.permission == "claim:withdraw:owner" && $0.scope == "acme" && $0.via == ["assignment claims-agent"] })
        #expect(r.effective.contains { $0.permission == "document:read" && $0.via == ["org_grant catalog-reader on acme"] })
        let n = try #require(g.accessReport(user: "north-admin", now: now))
        #expect(n.holdings.contains { $0.role == "claims-agent" && $0.state == "out_of_bounds" })
        let u = try #require(g.accessReport(user: "acme-user", now: now))
        #expect(u.holdings.contains { $0.role == "claims-agent" && $0.state == "expired" })
        // Host-only permissions never take effect for a partner user.
        #expect(!u.effective.contains { $0.permission == "org:approve" })
        #expect(g.accessReport(user: "ghost", now: now) == nil)
    }
}

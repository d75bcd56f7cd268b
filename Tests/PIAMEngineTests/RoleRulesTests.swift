import PIAMEngine
import Testing

/// A host department listed before the root, so that it takes graph slot 0 (slots are given in
/// load order; the store loads orgs sorted by id, and "dept" < "host"):
///
/// ```
/// host (host)          hal: host-admin over host
/// └── dept (host)      ann: role-definer [role:define] over dept
/// ```
func deptFirstData() -> GraphData {
    var d = GraphData()
    d.orgs = [
        OrgRecord(id: "dept", parent: "host", kind: .host, status: .active),
        OrgRecord(id: "host", parent: nil, kind: .host, status: .active),
    ]
    d.roles = [
        RoleRecord(id: "role-definer", permissions: perms("role:define")),
        RoleRecord(id: "host-admin", permissions: perms("org:*", "user:*", "role:*")),
    ]
    d.users = [
        UserRecord(id: "ann", org: "dept", status: .active),
        UserRecord(id: "hal", org: "host", status: .active),
    ]
    d.assignments = [
        AssignmentRecord(user: "ann", role: "role-definer", scope: "dept"),
        AssignmentRecord(user: "hal", role: "host-admin", scope: "host"),
    ]
    return d
}

/// DESIGN §2–§3 on the built-in type `role` and on `org:*`: where roles are located, who may
/// hand a role out (rule 5 of `can_assign`, shared by org grants), and what `org:*` gives a
/// partner user.
@Suite("Roles, role administrators and org:* (DESIGN §2–§3)")
struct RoleRulesTests {
    // MARK: role:<id> is located at the root

    @Test func aRoleIsLocatedAtTheRootNotAtSlotZero() throws {
        let g = try GraphBuilder.build(deptFirstData())
        // ann's role:define acts over dept only; every role lies at the root, out of its reach.
        #expect(g.decide("ann", "define", "role:x") == .deny(.outOfScope))
        #expect(g.decide("ann", "define", "role:host-admin") == .deny(.outOfScope))
        #expect(g.decide("hal", "define", "role:x") == .allow)
        #expect(g.location(of: ResourceRef(type: "role", id: "x"))?.org == "host")
        let e = g.explain(CheckRequest(subject: "ann", action: "define", resource: ResourceRef(type: "role", id: "x")), now: now)
        #expect(e.resource?.org == "host" && e.decision == .deny(.outOfScope))
        // The lists say the same.
        #expect(try collect { try g.listResources(subject: "ann", action: "define", type: "role", cursor: $0, limit: 5, now: now) }.isEmpty)
        #expect(try collect { try g.listResources(subject: "hal", action: "define", type: "role", cursor: $0, limit: 5, now: now) }
            == ["host-admin", "role-definer"])
        #expect(try collect { try g.listSubjects(action: "define", resource: ResourceRef(type: "role", id: "x"), cursor: $0, limit: 5, now: now) }
            == ["hal"])
        #expect(g.listActions(subject: "ann", resource: ResourceRef(type: "role", id: "x"), now: now).isEmpty)
    }

    @Test func theRootStaysRightAcrossIncrementalApply() throws {
        var d = deptFirstData()
        var g = try GraphBuilder.build(d)
        // Remove dept (slot 0 becomes a hole) and ann with it.
        let removeDept: [GraphChange] = [
            .assignment(user: "ann", role: "role-definer", scope: "dept", nil), .user(id: "ann", nil), .org(id: "dept", nil),
        ]
        g = try g.applying(removeDept)
        d.apply(removeDept)
        #expect(g.decide("hal", "define", "role:x") == .allow)
        #expect(g.decide("hal", "grant", "role:role-definer") == .allow)
        // A new root above host: roles move to it, out of reach of hal's holding over host.
        let newRoot: [GraphChange] = [
            .org(id: "top", OrgRecord(id: "top", parent: nil, kind: .host, status: .active)),
            .org(id: "host", OrgRecord(id: "host", parent: "top", kind: .host, status: .active)),
            .user(id: "tina", UserRecord(id: "tina", org: "top", status: .active)),
            .assignment(user: "tina", role: "host-admin", scope: "top", AssignmentRecord(user: "tina", role: "host-admin", scope: "top")),
        ]
        g = try g.applying(newRoot)
        d.apply(newRoot)
        let fresh = try GraphBuilder.build(d)
        for (s, role) in [("hal", "x"), ("tina", "x"), ("hal", "host-admin"), ("tina", "role-definer")] {
            for a in ["define", "grant", "update"] {
                #expect(g.decide(s, a, "role:\(role)") == fresh.decide(s, a, "role:\(role)"), "\(s) \(a) role:\(role)")
            }
        }
        #expect(g.decide("hal", "define", "role:x") == .deny(.outOfScope))
        #expect(g.decide("tina", "define", "role:x") == .allow)
        #expect(g.location(of: ResourceRef(type: "role", id: "x"))?.org == "top")
    }

    // MARK: org:* is not host-only

    /// The fixture plus `org-steward` [org:*], entitled at acme, held by alice and acme-admin.
    func orgStarGraph() throws -> AccessGraph {
        var d = fixtureData()
        d.roles.append(RoleRecord(id: "org-steward", permissions: perms("org:*")))
        d.entitlements.append(EntitlementRecord(org: "acme", role: "org-steward"))
        d.assignments.append(AssignmentRecord(user: "alice", role: "org-steward", scope: "acme"))
        d.assignments.append(AssignmentRecord(user: "acme-admin", role: "org-steward", scope: "acme"))
        return try GraphBuilder.build(d)
    }

    @Test func orgStarHeldByAPartnerUserGrantsEveryOrgActionButApproveAndEntitle() throws {
        let g = try orgStarGraph()
        for a in ["view", "invite_user", "create_suborg", "update", "suspend", "reactivate", "remove", "grant_role"] {
            #expect(g.decide("alice", a, "org:acme-north") == .allow, "alice \(a) org:acme-north")
        }
        #expect(g.decide("alice", "approve", "org:acme-north") == .deny(.hostOnly))
        #expect(g.decide("alice", "entitle", "org:acme-north") == .deny(.hostOnly))
        #expect(g.decide("alice", "view", "org:globex") == .deny(.outOfScope))
        #expect(g.decide("alice", "suspend", "org:acme") == .deny(.selfAction))
        // list_actions agrees; the access report counts org:* among alice's effective permissions.
        #expect(g.listActions(subject: "alice", resource: ResourceRef(type: "org", id: "acme-south"), now: now)
            == ["create_suborg", "grant_role", "invite_user", "reactivate", "remove", "suspend", "update", "view"])
        let report = try #require(g.accessReport(user: "alice", now: now))
        #expect(report.effective.contains { $0.permission == "org:*" && $0.scope == "acme" })
    }

    @Test func aPartnerAdminHoldingOrgStarHandsOutARoleContainingIt() throws {
        let g = try orgStarGraph()
        // P = org:* is covered by acme-admin's Q = org:* at acme and below.
        #expect(g.canAssign(actor: "acme-admin", target: "acme-user", role: "org-steward", now: now) == .allow)
        #expect(g.canAssign(actor: "acme-admin", target: "nx-user", role: "org-steward", now: now) == .allow)
        #expect(g.canGrantToOrg(actor: "acme-admin", org: "acme-north", role: "org-steward", now: now) == .allow)
        // Not by an admin without org:* (partner-admin names org actions one by one).
        #expect(g.canAssign(actor: "north-admin", target: "nx-user", role: "org-steward", now: now) == .deny(.escalation))
        // A host-only P stays uncovered for a partner actor, org:* or not.
        #expect(g.canAssign(actor: "acme-admin", target: "alice", role: "approver", now: now) == .deny(.escalation))
        #expect(g.canGrantToOrg(actor: "acme-admin", org: "acme-north", role: "approver", now: now) == .deny(.escalation))
        // The business's org:* covers it too, and the host-only org:approve.
        #expect(g.canAssign(actor: "hal", target: "clara", role: "approver", now: now) == .allow)
    }

    // MARK: Rule 5: the business's role administrators

    @Test func hostAdminHandsOutRolesItDoesNotHold() throws {
        let g = fixture()
        // hal (host-admin: role:* over host) holds no statement, document or quote permission.
        #expect(g.decide("hal", "grant", "role:statements") == .allow)
        #expect(g.canAssign(actor: "hal", target: "alice", role: "statements", now: now) == .allow)
        #expect(g.canAssign(actor: "hal", target: "south-user", role: "catalog-reader", now: now) == .allow)
        #expect(g.canAssign(actor: "hal", target: "clara", role: "quote-maker", now: now) == .allow)
        // A new business role, org-granted to the partners container (a host org: no ceiling).
        #expect(g.canGrantToOrg(actor: "hal", org: "partners", role: "quote-maker", now: now) == .allow)
        #expect(g.canGrantToOrg(actor: "hal", org: "acme", role: "statements", now: now) == .allow)
        // Rules 1–4 still apply to the role administrator.
        #expect(g.canAssign(actor: "hal", target: "alice", role: "adjuster", now: now) == .deny(.outsideCeiling))
        #expect(g.canGrantToOrg(actor: "hal", org: "acme", role: "quote-maker", now: now) == .deny(.outsideCeiling))
        #expect(g.canAssign(actor: "hal", target: "alice", role: "statements", scope: "globex", now: now) == .deny(.outOfScope))
    }

    @Test func roleGrantCountsOnlyForAHostUserOverTheRoot() throws {
        var d = fixtureData()
        d.roles.append(RoleRecord(id: "role-granter", permissions: perms("role:grant", "user:assign_role")))
        d.entitlements.append(EntitlementRecord(org: "acme", role: "role-granter"))
        d.users.append(UserRecord(id: "gina", org: "claims-dept", status: .active))
        d.users.append(UserRecord(id: "gary", org: "claims-dept", status: .active))
        d.assignments.append(AssignmentRecord(user: "gina", role: "role-granter", scope: "claims-dept"))
        d.assignments.append(AssignmentRecord(user: "gary", role: "role-granter", scope: "host"))
        d.assignments.append(AssignmentRecord(user: "acme-user", role: "role-granter", scope: "acme"))
        let g = try GraphBuilder.build(d)
        // Over the root: gary hands out roles he holds nothing of.
        #expect(g.decide("gary", "grant", "role:catalog-reader") == .allow)
        #expect(g.canAssign(actor: "gary", target: "alice", role: "catalog-reader", now: now) == .allow)
        #expect(g.canAssign(actor: "gary", target: "clara", role: "host-admin", now: now) == .allow)
        // grant alone is not define/update/delete.
        #expect(g.decide("gary", "define", "role:new") == .deny(.noPermission))
        // Over a department: role:grant does not reach the roles (at the root).
        #expect(g.decide("gina", "grant", "role:catalog-reader") == .deny(.outOfScope))
        #expect(g.canAssign(actor: "gina", target: "clara", role: "catalog-reader", now: now) == .deny(.escalation))
        // A partner user: never (out of reach, and host-only).
        #expect(g.decide("acme-user", "grant", "role:claims-agent") == .deny(.outOfScope))
        #expect(g.canAssign(actor: "acme-user", target: "alice", role: "claims-agent", now: now) == .deny(.escalation))
        // An expired or inactive role administrator hands out nothing it does not hold.
        var e = d
        e.assignments = e.assignments.map { $0.user == "gary" ? AssignmentRecord(user: "gary", role: "role-granter", scope: "host", validUntil: now - 1) : $0 }
        e.assignments.append(AssignmentRecord(user: "gary", role: "partner-admin", scope: "host"))
        let h = try GraphBuilder.build(e)
        #expect(h.canAssign(actor: "gary", target: "alice", role: "catalog-reader", now: now) == .deny(.escalation))
    }

    @Test func roleVocabularyHasTheBuiltInActions() throws {
        let g = fixture()
        let vocabulary = g.vocabulary(ofType: "role")
        for a in ["define", "update", "delete", "grant"] { #expect(vocabulary.contains(a), "role vocabulary lacks \(a)") }
        #expect(g.listActions(subject: "hal", resource: ResourceRef(type: "role", id: "claims-agent"), now: now) == vocabulary)
        // A graph whose roles name no role action still has them.
        let d = try GraphBuilder.build(GraphData(
            orgs: [OrgRecord(id: "host", parent: nil, kind: .host, status: .active)],
            roles: [RoleRecord(id: "all", permissions: perms("role:*"))]))
        #expect(d.vocabulary(ofType: "role") == ["define", "delete", "grant", "update"])
    }
}

import PIAMEngine
import Testing

@Suite struct DelegationTests {
    let g = fixture()

    @Test func orgGrantFollowsTheCanAssignRules() {
        // A partner admin grants a role within the org's ceiling that it holds itself.
        #expect(g.canGrantToOrg(actor: "acme-admin", org: "acme-north", role: "claims-agent", now: now) == .allow)
        #expect(g.canGrantToOrg(actor: "acme-admin", org: "acme", role: "partner-user", now: now) == .allow)
        // Rule 1: grant_role on the org — partner isolation.
        #expect(g.canGrantToOrg(actor: "acme-admin", org: "globex", role: "claims-agent", now: now) == .deny(.outOfScope))
        #expect(g.canGrantToOrg(actor: "alice", org: "acme", role: "claims-agent", now: now) == .deny(.noPermission))
        #expect(g.canGrantToOrg(actor: "acme-admin", org: "nowhere", role: "claims-agent", now: now) == .deny(.unknownResource))
        // Rule 2.
        #expect(g.canGrantToOrg(actor: "acme-admin", org: "acme", role: "no-such-role", now: now) == .deny(.unknownRole))
        // Rule 3: adjuster is entitled only at acme-north.
        #expect(g.canGrantToOrg(actor: "acme-admin", org: "acme-south", role: "adjuster", now: now) == .deny(.outsideCeiling))
        #expect(g.canGrantToOrg(actor: "acme-admin", org: "acme", role: "host-admin", now: now) == .deny(.outsideCeiling))
        // Rule 4: acme-admin does not hold claim:* (adjuster) itself.
        #expect(g.canGrantToOrg(actor: "acme-admin", org: "acme-north", role: "adjuster", now: now) == .deny(.escalation))
        // A host-only permission is never covered for a partner actor, even when entitled.
        #expect(g.canGrantToOrg(actor: "acme-admin", org: "acme", role: "approver", now: now) == .deny(.escalation))
        // The business: everything it holds, host orgs need no ceiling.
        #expect(g.canGrantToOrg(actor: "hal", org: "acme-north", role: "adjuster", now: now) == .allow)
        #expect(g.canGrantToOrg(actor: "hal", org: "claims-dept", role: "adjuster", now: now) == .allow)
        // The sub-org admin cannot grant at the parent.
        #expect(g.canGrantToOrg(actor: "north-admin", org: "acme", role: "partner-user", now: now) == .deny(.outOfScope))
    }

    @Test func assignmentAdminsAreTheActiveMembersWhoCanAssignThere() {
        #expect(g.assignmentAdmins(of: "acme", now: now) == ["acme-admin"])
        // Only users at or below the org: acme-admin manages acme-north from above, but is not "there".
        #expect(g.assignmentAdmins(of: "acme-north", now: now) == ["north-admin"])
        #expect(g.assignmentAdmins(of: "globex", now: now) == ["globex-admin"])
        // Inactive orgs have nobody who may act.
        #expect(g.assignmentAdmins(of: "suspco", now: now).isEmpty)
        #expect(g.assignmentAdmins(of: "pendco", now: now).isEmpty)
        #expect(g.assignmentAdmins(of: "nowhere", now: now).isEmpty)
        // Host users at or below the org count (hal holds host-admin over host).
        #expect(g.assignmentAdmins(of: "host", now: now) == ["hal"])
    }

    @Test func lookups() {
        #expect(g.orgChain("acme-north-x") == ["acme-north-x", "acme-north", "acme", "partners", "host"])
        #expect(g.orgChain("nowhere") == nil)
        #expect(g.org(ofUser: "idp|alice") == "acme")
        #expect(g.org(ofUser: "nobody") == nil)
        #expect(g.isHostOrg("claims-dept") && !g.isHostOrg("acme") && !g.isHostOrg("nowhere"))
    }
}

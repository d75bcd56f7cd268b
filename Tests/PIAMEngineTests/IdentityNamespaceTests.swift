import PIAMEngine
import Testing

/// The alias rule and the roles a partner's SCIM token may hand out, on the engine's fixture.
@Suite struct IdentityNamespaceTests {
    let g = fixture()
    let declared: [String: [IdentityNamespace]] = [
        "acme": [try! IdentityNamespace(parsing: "okta-acme|"), try! IdentityNamespace(parsing: "@acme.example")],
    ]

    func decide(_ actor: String, _ org: String, _ alias: String) -> AliasDecision {
        g.aliasDecision(actor: actor, org: org, alias: alias) { declared[$0] ?? [] }
    }

    @Test func partnerActorsAliasOnlyInsideTheirPartnersNamespaces() {
        // Inside acme's namespaces, for its root admin and its sub-org admin alike.
        #expect(decide("acme-admin", "acme", "okta-acme|123") == .allowed)
        #expect(decide("north-admin", "acme-north", "Jane@ACME.example") == .allowed)
        // Outside: another partner's or the business's identifiers, a look-alike prefix.
        let outside = AliasDecision.outsideNamespace(partner: "acme", namespaces: declared["acme"]!.sorted())
        #expect(decide("acme-admin", "acme", "nina@northwind.example") == outside)
        #expect(decide("acme-admin", "acme-north", "okta-acme-evil|1") == outside)
        #expect(decide("north-admin", "acme-north", "okta|globex-newhire") == outside)
        // A partner with none declared gets no alias from its own admins.
        #expect(decide("globex-admin", "globex", "okta-globex|1") == .outsideNamespace(partner: "globex", namespaces: []))
        // The business assigns any alias; host users carry any.
        #expect(decide("hal", "acme", "nina@northwind.example") == .allowed)
        #expect(decide("hal", "claims-dept", "anything|x") == .allowed)
        #expect(AliasDecision.reasonCode == "outside_namespace")
    }

    @Test func grantableRolesAreTheCeilingTheActorCovers() {
        // acme-admin's grantable roles at acme: what canGrantToOrg allows, in the ceiling, sorted.
        let roles = g.grantableRoles(actor: "acme-admin", org: "acme", now: now)
        #expect(roles.contains("partner-user") && !roles.contains("approver") && !roles.contains("host-admin"), "\(roles)")
        #expect(roles == roles.sorted())
        #expect(roles.allSatisfy { g.canGrantToOrg(actor: "acme-admin", org: "acme", role: $0, now: now) == .allow })
        #expect(g.grantableRoles(actor: "acme-admin", org: "globex", now: now).isEmpty, "another partner: nothing")
    }

    @Test func theJITRuleCreatesOnlyUnknownSubjectsInsideAJITEnabledNamespace() throws {
        let jit = JITNamespaces(
            namespaces: [("acme", try IdentityNamespace(parsing: "okta-acme|")), ("acme", try IdentityNamespace(parsing: "@acme.example")),
                         ("globex", try IdentityNamespace(parsing: "okta-globex|"))],
            settings: [JITSetting(partner: "acme", org: "acme-north", role: "partner-user")])
        #expect(jit.entries.count == 2, "globex has namespaces but no setting: left out")
        let setting = JITSetting(partner: "acme", org: "acme-north", role: "partner-user")
        #expect(g.jitDecision(subject: "okta-acme|00u1", jit: jit) == .create(setting))
        #expect(g.jitDecision(subject: "New.Hire@ACME.example", jit: jit) == .create(setting))
        #expect(g.jitDecision(subject: "okta-globex|00u1", jit: jit) == .notEligible)
        #expect(g.jitDecision(subject: "okta-acme-evil|1", jit: jit) == .notEligible)
        #expect(g.jitDecision(subject: "acme-admin", jit: jit) == .known(user: "acme-admin"))
        #expect(g.jitDecision(subject: "okta-acme|00u1", jit: .empty) == .notEligible)
    }

    @Test func aJITSettingNeedsAnOrgOfThePartnerAndARoleItsAdminsCouldAssign() {
        #expect(g.jitSettingDecision(partner: "acme", org: "acme-north", role: "partner-user", now: now) == .allow)
        #expect(g.jitSettingDecision(partner: "acme", org: "globex", role: "partner-user", now: now) == .deny(.outOfScope))
        #expect(g.jitSettingDecision(partner: "acme", org: "nowhere", role: "partner-user", now: now) == .deny(.unknownOrg))
        #expect(g.jitSettingDecision(partner: "acme", org: "acme", role: "nope", now: now) == .deny(.unknownRole))
        #expect(g.jitSettingDecision(partner: "acme", org: "acme", role: "host-admin", now: now) == .deny(.outsideCeiling))
        #expect(g.jitSettingDecision(partner: "acme", org: "acme", role: "approver", now: now) != .allow)
    }
}

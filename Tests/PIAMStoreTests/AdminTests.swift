import Foundation
import PIAMDemo
import PIAMEngine
import Testing
@testable import PIAMStore

/// The delegation scenario of PIAMDemo (``DelegationScenario``): a business (nina) with two
/// partners, acme (ann, bob; acme-north: nora, nick) and globex (gus).
let adminFixture = DelegationScenario.document

let t0: Timestamp = 1_800_000_000_000

func adminStore(_ dir: TempDir) throws -> Store {
    let store = try freshStore(dir)
    _ = try store.importJSON(Data(adminFixture.utf8))
    return store
}

/// Everything an operation may change: the export and the revision (the audit log aside).
func snapshot(_ store: Store) throws -> (Data, Int64) {
    (try store.exportData(), try store.revision())
}

@Suite struct AdminStoreTests {
    /// Performs `op` and expects a refusal with `reason`, nothing written, and a refused audit row.
    func expectRefused(_ store: Store, _ op: AdminOperation, as actor: String, _ reason: String,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = try snapshot(store)
        let audits = try store.auditLog().count
        let r = try store.administer(op, as: actor, now: t0)
        #expect(!r.allowed && r.reason == reason, "\(op.name) as \(actor): \(r.reason) \(r.message)", sourceLocation: sourceLocation)
        let after = try snapshot(store)
        #expect(after.0 == before.0 && after.1 == before.1, "\(op.name) changed the graph", sourceLocation: sourceLocation)
        let log = try store.auditLog()
        #expect(log.count == audits + 1, sourceLocation: sourceLocation)
        #expect(log.last?.decision == "refused" && log.last?.reason == reason && log.last?.operation == op.name, sourceLocation: sourceLocation)
    }

    func expectAllowed(_ store: Store, _ op: AdminOperation, as actor: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> AdminResult {
        let before = try store.revision()
        let r = try store.administer(op, as: actor, now: t0)
        #expect(r.allowed, "\(op.name) as \(actor): \(r.reason) \(r.message)", sourceLocation: sourceLocation)
        #expect(r.revision >= before, sourceLocation: sourceLocation)
        #expect(try store.auditLog().last?.decision == "allowed", sourceLocation: sourceLocation)
        return r
    }

    @Test func escalationAttemptsAreRefusedWithTheRightReasonAndAudited() throws {
        let dir = TempDir()
        let store = try adminStore(dir)
        for e in DelegationScenario.escalations(now: t0) {
            try expectRefused(store, e.operation, as: e.actor, e.reason)
        }
        // The business may offboard a partner's last admin (the rule binds partner users).
        _ = try expectAllowed(store, .suspendUser(user: "gus"), as: "nina")
    }

    @Test func lastAdminRuleCountsTheOtherActiveAdmins() throws {
        let dir = TempDir()
        let store = try adminStore(dir)
        // A second admin at the root: now ann may step down, and then bob may not.
        _ = try expectAllowed(store, .grant(user: "bob", role: "partner-admin", scope: nil, validUntil: nil), as: "ann")
        _ = try expectAllowed(store, .revoke(user: "ann", role: "partner-admin", scope: nil), as: "ann")
        try expectRefused(store, .revoke(user: "bob", role: "partner-admin", scope: nil), as: "bob", "last_admin")
        try expectRefused(store, .moveUser(user: "bob", org: "acme-north"), as: "bob", "last_admin")
        // An org grant of partner-admin on acme makes every member an admin; revoking it would
        // leave none when it is the only source.
        _ = try expectAllowed(store, .grantToOrg(org: "acme", role: "partner-admin", includeSuborgs: false, validUntil: nil), as: "bob")
        _ = try expectAllowed(store, .revoke(user: "bob", role: "partner-admin", scope: nil), as: "bob")
        try expectRefused(store, .revokeFromOrg(org: "acme", role: "partner-admin"), as: "bob", "last_admin")
    }

    @Test func lastAdminRuleOnRemoval() throws {
        let dir = TempDir()
        let store = try adminStore(dir)
        // bob may remove people but not assign roles; ann is acme's only admin.
        _ = try expectAllowed(store, .defineRole(role: "offboarder", name: nil, description: nil, permissions: ["user:view", "user:remove", "user:suspend"]), as: "nina")
        _ = try expectAllowed(store, .entitle(org: "acme", role: "offboarder"), as: "nina")
        _ = try expectAllowed(store, .grant(user: "bob", role: "offboarder", scope: nil, validUntil: nil), as: "nina")
        try expectRefused(store, .removeUser(user: "ann"), as: "bob", "last_admin")
        try expectRefused(store, .suspendUser(user: "ann"), as: "bob", "last_admin")
        // Other people: fine. And the sub-org's admin is not the root's.
        _ = try expectAllowed(store, .suspendUser(user: "nora"), as: "bob")
        _ = try expectAllowed(store, .removeUser(user: "nick"), as: "bob")
    }

    @Test func approvingItsOwnRegistrationIsASelfAction() throws {
        let dir = TempDir()
        let store = try adminStore(dir)
        // A self-registration: allowed for anyone, creates a pending org and an invited admin.
        let reg = try expectAllowed(store, .registerOrg(org: "newco", name: "New Co", parent: nil, admin: "nell", adminName: "Nell", adminEmail: nil), as: "nell")
        #expect(reg.changed)
        #expect(try store.org(id: "newco")?.status == .pending)
        #expect(try store.user(idOrAlias: "nell")?.status == .invited)
        #expect(try store.assignments(user: "nell").map(\.role) == ["partner-admin"])
        // The first admin accepts the invitation the registration created (no self-activation).
        try expectRefused(store, .activateUser(user: "nell"), as: "nell", "invitation_required")
        let secret = try #require(reg.invitationToken)
        #expect(try store.acceptInvitation(secret: secret, identity: "okta|nell", now: t0).allowed)
        #expect(try store.user(idOrAlias: "okta|nell")?.status == .active)
        try expectRefused(store, .approveOrg(org: "newco", entitle: []), as: "nell", "self_action")
        try expectRefused(store, .rejectOrg(org: "newco"), as: "nell", "self_action")
        // Another partner's admin; a partner user holding org:approve cannot reach it.
        try expectRefused(store, .approveOrg(org: "newco", entitle: []), as: "ann", "no_permission")
        try expectRefused(store, .approveOrg(org: "newco", entitle: []), as: "bob", "out_of_scope")
        // Pending: its admin can do nothing yet.
        try expectRefused(store, .inviteUser(user: "x", org: "newco", name: nil, email: nil, aliases: [], validUntil: nil), as: "nell", "org_inactive")
        _ = try expectAllowed(store, .approveOrg(org: "newco", entitle: ["partner-admin"]), as: "nina")
        _ = try expectAllowed(store, .inviteUser(user: "x", org: "newco", name: nil, email: nil, aliases: [], validUntil: nil), as: "nell")
        // Approving twice is an error (audited as failed), not a refusal.
        #expect(throws: PIAMError.self) { try store.administer(.approveOrg(org: "newco", entitle: []), as: "nina", now: t0) }
        #expect(try store.auditLog().last?.decision == "failed")
        #expect(try store.auditLog().last?.reason == "conflict")
    }

    @Test func aSuspendedPartnersAdminCanDoNothing() throws {
        let dir = TempDir()
        let store = try adminStore(dir)
        _ = try expectAllowed(store, .suspendOrg(org: "acme"), as: "nina")
        let ops: [AdminOperation] = [
            .inviteUser(user: "zed", org: "acme", name: nil, email: nil, aliases: [], validUntil: nil),
            .suspendUser(user: "bob"), .reactivateUser(user: "bob"), .removeUser(user: "bob"),
            .grant(user: "bob", role: "claims-viewer", scope: nil, validUntil: nil),
            .createOrg(org: "acme-x", parent: "acme", name: nil, kind: nil),
            .reactivateOrg(org: "acme"), .suspendOrg(org: "acme-north"),
            .grantToOrg(org: "acme-north", role: "claims-viewer", includeSuborgs: false, validUntil: nil),
            .requestRole(role: "claims-viewer", scope: nil, note: nil),
        ]
        for op in ops { try expectRefused(store, op, as: "ann", "org_inactive") }
        for op in ops.prefix(3) { try expectRefused(store, op, as: "nora", "org_inactive") }
        // Reactivating restores them exactly.
        _ = try expectAllowed(store, .reactivateOrg(org: "acme"), as: "nina")
        _ = try expectAllowed(store, .suspendUser(user: "bob"), as: "ann")
    }

    @Test func authorityRemovedMeanwhileIsRefusedInsideTheTransaction() throws {
        let dir = TempDir()
        let store = try adminStore(dir)
        let req = try expectAllowed(store, .requestRole(role: "claims-viewer", scope: nil, note: "please"), as: "bob")
        let id = try #require(req.requestID)
        let invite = AdminOperation.inviteUser(user: "zed", org: "acme", name: nil, email: nil, aliases: [], validUntil: nil)
        let approve = AdminOperation.approveRequest(id: id, note: nil)
        // The pre-decision, on the graph as it was (a daemon's, or this process's): allowed.
        let stale = try store.loadGraph()
        for op in [invite, approve] {
            #expect(try store.adminQuestions(op, as: "ann").allSatisfy { $0.decide(on: stale.graph, now: t0).allowed })
        }
        // Meanwhile another writer takes ann's authority away.
        let other = try Store(path: dir.path("piam.db"))
        _ = try expectAllowed(other, .revoke(user: "ann", role: "partner-admin", scope: "acme"), as: "nina")
        // The store decides again inside its transaction, on the current state: refused.
        for op in [invite, approve] {
            let before = try snapshot(store)
            let r = try store.administer(op, as: "ann", now: t0, graph: stale)
            #expect(!r.allowed && r.reason == "no_permission")
            #expect(try snapshot(store).0 == before.0)
        }
        #expect(try store.accessRequest(id: id).status == "pending")
        #expect(try store.user(idOrAlias: "zed") == nil)
        #expect(try store.auditLog(AuditFilter(actor: "ann", refusedOnly: true)).map(\.operation) == ["user.invite", "request.approve"])
    }

    @Test func accessRequests() throws {
        let dir = TempDir()
        let store = try adminStore(dir)
        let r1 = try expectAllowed(store, .requestRole(role: "claims-viewer", scope: nil, note: "for March"), as: "nick")
        let id = try #require(r1.requestID)
        let rev = try store.revision()
        #expect(r1.changed && r1.revision == rev)
        // A request nobody could approve is refused at once.
        try expectRefused(store, .requestRole(role: "claims-adjuster", scope: nil, note: nil), as: "nick", "outside_ceiling")
        try expectRefused(store, .requestRole(role: "claims-viewer", scope: "acme", note: nil), as: "nick", "out_of_scope")
        try expectRefused(store, .requestRole(role: "nope", scope: nil, note: nil), as: "nick", "unknown_role")
        // For another user: request_role carries :owner.
        #expect(try store.adminQuestions(.requestRole(role: "claims-viewer", scope: nil, note: nil), as: "nick")
            == [.check(actor: "nick", action: "request_role", resource: ResourceRef(type: "user", id: "nick"))])
        #expect(throws: PIAMError.self) { try store.administer(.requestRole(role: "claims-viewer", scope: nil, note: nil), as: "nick", now: t0) }
        // Who may approve: exactly those can_assign allows (nora and ann hold claims-viewer? only ann does).
        let g = try store.loadGraph().graph
        #expect(try store.approvableRequests(approver: "ann", graph: g, now: t0).map(\.id) == [id])
        #expect(try store.approvableRequests(approver: "nora", graph: g, now: t0).isEmpty)  // escalation: nora lacks claim:read
        #expect(try store.approvableRequests(approver: "gus", graph: g, now: t0).isEmpty)
        #expect(try store.approvableRequests(approver: "nick", graph: g, now: t0).isEmpty)
        try expectRefused(store, .approveRequest(id: id, note: nil), as: "nora", "escalation")
        try expectRefused(store, .approveRequest(id: id, note: nil), as: "nick", "self_action")
        let ok = try expectAllowed(store, .approveRequest(id: id, note: "ok"), as: "ann")
        #expect(ok.requestID == id)
        #expect(try store.assignments(user: "nick").map { "\($0.role)@\($0.scope) by \($0.grantedBy ?? "-")" } == ["claims-viewer@acme-north-b1 by ann"])
        #expect(try store.accessRequest(id: id).status == "approved")
        #expect(try store.accessRequest(id: id).decidedBy == "ann")
        // Decided requests cannot be decided again.
        #expect(throws: PIAMError.self) { try store.administer(.denyRequest(id: id, note: nil), as: "ann", now: t0) }
        let r2 = try expectAllowed(store, .requestRole(role: "partner-admin", scope: nil, note: nil), as: "nick")
        _ = try expectAllowed(store, .denyRequest(id: r2.requestID!, note: "no"), as: "nora")
        #expect(try store.accessRequests(status: "denied").map(\.id) == [r2.requestID!])
    }

    @Test func rolesOrgsAndPeopleLifecycle() throws {
        let dir = TempDir()
        let store = try adminStore(dir)
        _ = try expectAllowed(store, .defineRole(role: "quoter", name: "Quoter", description: nil, permissions: ["claim:read"]), as: "nina")
        #expect(throws: PIAMError.self) { try store.administer(.defineRole(role: "bad", name: nil, description: nil, permissions: ["nope"]), as: "nina", now: t0) }
        _ = try expectAllowed(store, .entitle(org: "acme", role: "quoter"), as: "nina")
        _ = try expectAllowed(store, .grant(user: "ann", role: "quoter", scope: nil, validUntil: nil), as: "nina")
        _ = try expectAllowed(store, .grantToOrg(org: "acme-north", role: "quoter", includeSuborgs: true, validUntil: nil), as: "ann")
        // In use: needs force, which says what it revokes.
        #expect(throws: PIAMError.self) { try store.administer(.deleteRole(role: "quoter", force: false), as: "nina", now: t0) }
        let del = try expectAllowed(store, .deleteRole(role: "quoter", force: true), as: "nina")
        #expect(del.details == ["revoked assignment: user:ann over org:acme", "revoked org grant: org:acme-north", "revoked entitlement: org:acme"])
        // Orgs: create, rename, move within the partner, remove (non-empty needs cascade).
        _ = try expectAllowed(store, .createOrg(org: "acme-south", parent: "acme", name: "South", kind: nil), as: "ann")
        #expect(try store.org(id: "acme-south")?.kind == .partner)
        _ = try expectAllowed(store, .updateOrg(org: "acme-south", name: "Acme South"), as: "ann")
        _ = try expectAllowed(store, .moveOrg(org: "acme-north-b1", parent: "acme-south"), as: "ann")
        #expect(try store.org(id: "acme-north-b1")?.parent == "acme-south")
        try expectRefused(store, .moveOrg(org: "acme-north-b1", parent: "acme-north"), as: "nora", "out_of_scope")
        try expectRefused(store, .removeOrg(org: "acme-south", cascade: true), as: "ann", "no_permission")  // partner-admin has no org:remove
        #expect(throws: PIAMError.self) { try store.administer(.removeOrg(org: "acme-south", cascade: false), as: "nina", now: t0) }
        let rm = try expectAllowed(store, .removeOrg(org: "acme-south", cascade: true), as: "nina")
        #expect(rm.details == ["1 users", "1 assignments", "1 sub-orgs"] || rm.details.contains("1 users"))
        #expect(try store.user(idOrAlias: "nick") == nil)
        #expect(throws: PIAMError.self) { try store.administer(.removeOrg(org: "partners", cascade: true), as: "nina", now: t0) }
        // People: invite, accept, aliases, update, suspend, reactivate, remove. The business
        // first declares acme's identity namespaces: its admins give aliases only inside them.
        try expectRefused(store, .inviteUser(user: "dana", org: "acme-north", name: "Dana", email: nil, aliases: ["okta|dana"], validUntil: nil), as: "nora", "outside_namespace")
        try expectRefused(store, .addNamespace(org: "acme", namespace: "okta|"), as: "ann", "no_permission")
        _ = try expectAllowed(store, .addNamespace(org: "acme", namespace: "okta|"), as: "nina")
        _ = try expectAllowed(store, .addNamespace(org: "acme", namespace: "@acme.example"), as: "nina")
        _ = try expectAllowed(store, .inviteUser(user: "dana", org: "acme-north", name: "Dana", email: nil, aliases: ["okta|dana"], validUntil: nil), as: "nora")
        try expectRefused(store, .activateUser(user: "dana"), as: "bob", "no_permission")
        try expectRefused(store, .activateUser(user: "okta|dana"), as: "dana", "invitation_required")
        _ = try expectAllowed(store, .activateUser(user: "okta|dana"), as: "nora")
        _ = try expectAllowed(store, .addAlias(user: "dana", alias: "dana@acme.example"), as: "nora")
        #expect(throws: PIAMError.self) { try store.administer(.addAlias(user: "dana", alias: "bob"), as: "nora", now: t0) }
        try expectRefused(store, .addAlias(user: "dana", alias: "dana@globex.example"), as: "nora", "outside_namespace")
        _ = try expectAllowed(store, .removeAlias(user: "dana", alias: "okta|dana"), as: "nora")
        _ = try expectAllowed(store, .updateUser(user: "dana", name: .some("Dana R."), email: .some("d@acme.example"), validUntil: .some(t0 + 1000)), as: "nora")
        #expect(try store.user(idOrAlias: "dana")?.validUntil == t0 + 1000)
        _ = try expectAllowed(store, .suspendUser(user: "dana"), as: "nora")
        let again = try expectAllowed(store, .suspendUser(user: "dana"), as: "nora")
        #expect(!again.changed)
        _ = try expectAllowed(store, .reactivateUser(user: "dana"), as: "ann")
        _ = try expectAllowed(store, .removeUser(user: "dana"), as: "ann")
        #expect(try store.user(idOrAlias: "dana") == nil)
    }

    @Test func applyIsAllOrNothing() throws {
        let dir = TempDir()
        let store = try adminStore(dir)
        let file = """
            [
              {"op": "org.register", "org": "initech", "name": "Initech", "admin": "bill", "admin_email": "bill@initech.example", "as": "nina"},
              {"op": "org.approve", "org": "initech", "entitle": ["partner-admin", "claims-viewer"], "as": "nina"},
              {"op": "user.activate", "user": "bill", "as": "nina"},
              {"op": "user.invite", "user": "peter", "org": "initech", "as": "bill"},
              {"op": "grant", "user": "peter", "role": "claims-viewer", "as": "nina"},
              {"op": "grant", "user": "peter", "role": "claims-adjuster", "as": "bill"},
              {"op": "user.invite", "user": "milton", "org": "initech", "as": "bill"}
            ]
            """
        let items = try Store.parseApplyFile(Data(file.utf8), defaultActor: nil)
        #expect(items.count == 7)
        let before = try snapshot(store)
        let audits = try store.auditLog().count
        let result = try store.apply(items, now: t0)
        #expect(!result.committed)
        #expect(result.results.map(\.status) == ["rolled_back", "rolled_back", "rolled_back", "rolled_back", "rolled_back", "refused", "not_run"])
        #expect(result.results[5].reason == "outside_ceiling")
        let after = try snapshot(store)
        #expect(after.0 == before.0 && after.1 == before.1)
        // Only the refusal is audited, with the run's id.
        let log = try store.auditLog()
        #expect(log.count == audits + 1)
        #expect(log.last?.reason == "outside_ceiling" && log.last?.batch == result.batch)

        // Without the bad entry: everything, in one transaction, deciding on the state the
        // entries before produced (the org and its admin exist only inside the batch).
        var good = items
        good.remove(at: 5)
        let ok = try store.apply(good, now: t0)
        #expect(ok.committed, "\(ok.results.filter { $0.status != "ok" })")
        #expect(ok.results.allSatisfy { $0.status == "ok" })
        #expect(try store.org(id: "initech")?.status == .active)
        #expect(try store.user(idOrAlias: "milton")?.status == .invited)
        #expect(ok.revision > before.1)
        #expect(try store.auditLog(AuditFilter(partner: "initech")).filter { $0.batch == ok.batch }.count == 6)
        // A bad file: errors name the JSON path.
        #expect(throws: PIAMError(.invalidInput, "operations[1].role: missing")) {
            try Store.parseApplyFile(Data(#"[{"op": "entitle", "org": "a", "role": "r"}, {"op": "grant", "user": "x"}]"#.utf8), defaultActor: "nina")
        }
        #expect(throws: PIAMError.self) { try Store.parseApplyFile(Data(#"[{"op": "grant", "user": "x", "role": "r", "colour": 1}]"#.utf8), defaultActor: "nina") }
        #expect(throws: PIAMError.self) { try Store.parseApplyFile(Data(#"[{"op": "grant", "user": "x", "role": "r"}]"#.utf8), defaultActor: nil) }
    }

    @Test func operationsRoundTripThroughJSON() throws {
        let ops: [AdminOperation] = [
            .registerOrg(org: "o", name: "O", parent: "partners", admin: "a", adminName: "A", adminEmail: "a@x"),
            .approveOrg(org: "o", entitle: ["r"]), .rejectOrg(org: "o"), .entitle(org: "o", role: "r"), .unentitle(org: "o", role: "r"),
            .createOrg(org: "o2", parent: "o", name: nil, kind: .partner), .updateOrg(org: "o", name: "n"), .suspendOrg(org: "o"),
            .reactivateOrg(org: "o"), .removeOrg(org: "o", cascade: true), .moveOrg(org: "o", parent: "p"),
            .inviteUser(user: "u", org: "o", name: "U", email: "u@x", aliases: ["idp|u"], validUntil: t0),
            .inviteUser(user: "u", org: "o", name: nil, email: nil, aliases: [], validUntil: nil, invitationExpires: t0),
            .activateUser(user: "u"), .resendInvitation(user: "u"), .resendInvitation(user: "u", expires: t0),
            .revokeInvitation(user: "u"), .updateUser(user: "u", name: .some(nil), email: nil, validUntil: .some(nil)),
            .updateUser(user: "u", name: .some("N"), email: .some("e"), validUntil: .some(t0)),
            .suspendUser(user: "u"), .reactivateUser(user: "u"), .removeUser(user: "u"), .moveUser(user: "u", org: "o"),
            .addAlias(user: "u", alias: "x"), .removeAlias(user: "u", alias: "x"),
            .addNamespace(org: "o", namespace: "@o.example"), .removeNamespace(org: "o", namespace: "okta-o|"),
            .setJIT(org: "o", jitOrg: "o", role: "r"), .clearJIT(org: "o"), .createJIT(subject: "okta-o|x"),
            .mapSCIMGroup(group: "g", role: "r"), .unmapSCIMGroup(group: "g", role: "r"),
            .defineRole(role: "r", name: "R", description: "d", permissions: ["a:b"]), .updateRole(role: "r", name: nil, description: nil, permissions: ["a:c"]),
            .deleteRole(role: "r", force: true), .grant(user: "u", role: "r", scope: "o", validUntil: t0), .revoke(user: "u", role: "r", scope: nil),
            .grantToOrg(org: "o", role: "r", includeSuborgs: true, validUntil: nil), .revokeFromOrg(org: "o", role: "r"),
            .requestRole(role: "r", scope: nil, note: "n"), .approveRequest(id: 3, note: nil), .denyRequest(id: 4, note: "no"),
        ]
        #expect(Set(ops.map(\.name)) == Set(AdminOperation.names))
        for op in ops {
            let text = op.jsonText
            let obj = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            #expect(try AdminOperation(json: obj, path: "x") == op, "\(text)")
        }
    }

    @Test func aVersion1DatabaseMigratesToTheAdministrationSchema() throws {
        let dir = TempDir()
        let path = dir.path("old.db")
        do {
            let raw = try Database(path: path, create: true)
            try raw.execute(Schema.v1)
            try raw.execute("PRAGMA user_version = 1")
            try raw.execute("INSERT INTO orgs(id, parent, name, kind) VALUES ('host', NULL, 'Host', 'host')")
        }
        // Read-only: refused until migrated.
        #expect(throws: PIAMError.self) { try Store(path: path, readOnly: true) }
        let store = try Store(path: path)
        #expect(try store.schemaVersion == Schema.latestVersion)
        #expect(try store.auditLog().isEmpty)
        #expect(try store.accessRequests().isEmpty)
        #expect(try store.revision() == 1)  // the migration journals nothing
        _ = try Store(path: path, readOnly: true)
    }
}

import Foundation
import PIAMDemo
import PIAMEngine
import Testing
@testable import PIAMStore

/// The business's role administration through the store (DESIGN §2–§3): where roles are
/// located, and `host-admin`'s `role:grant` (rule 5 of `can_assign` and of org grants).
extension AdminStoreTests {
    /// A host department whose id sorts before `host`, so the store loads it first (graph slot 0).
    static let deptFixture = """
        {
          "orgs": [{"id": "dept", "parent": "host", "kind": "host"}],
          "roles": [{"id": "role-definer", "permissions": ["role:define", "role:update", "role:delete"]}],
          "users": [{"id": "ann", "org": "dept"}, {"id": "nina", "org": "host"}],
          "assignments": [
            {"user": "ann", "role": "role-definer", "scope": "dept"},
            {"user": "nina", "role": "host-admin", "scope": "host"}
          ]
        }
        """

    @Test func roleDefinePowerOverADepartmentDoesNotReachTheRoles() throws {
        let dir = TempDir()
        let store = try freshStore(dir)
        _ = try store.importJSON(Data(Self.deptFixture.utf8))
        let g = try store.loadGraph().graph
        #expect(g.allOrgIDs.first == "host")
        #expect(g.check(subject: "ann", action: "define", resource: ResourceRef(type: "role", id: "x"), now: t0) == .deny(.outOfScope))
        try expectRefused(store, .defineRole(role: "x", name: nil, description: nil, permissions: ["claim:read"]), as: "ann", "out_of_scope")
        try expectRefused(store, .updateRole(role: "host-admin", name: nil, description: nil, permissions: ["claim:read"]), as: "ann", "out_of_scope")
        try expectRefused(store, .deleteRole(role: "partner-user", force: true), as: "ann", "out_of_scope")
        _ = try expectAllowed(store, .defineRole(role: "x", name: nil, description: nil, permissions: ["claim:read"]), as: "nina")
    }

    /// The curated demo: the business's `host-admin` is nina.hq, who holds no business role.
    func demoStore(_ dir: TempDir) throws -> Store {
        let store = try freshStore(dir)
        _ = try store.importDocument(DemoGenerator(now: t0).document())
        return store
    }

    @Test func hostAdminGrantsBusinessRolesItDoesNotHold() throws {
        let dir = TempDir()
        let store = try demoStore(dir)
        let agent = "acme-brokers-north-b1-t1-agent3"
        for role in ["claims-viewer", "policy-viewer", "quote-manager"] {
            _ = try expectAllowed(store, .grant(user: agent, role: role, scope: nil, validUntil: nil), as: "nina.hq")
        }
        #expect(try store.assignments(user: agent).filter { $0.role == "claims-viewer" }.map(\.grantedBy) == ["nina.hq"])
        // Rules 1–4 still hold: outside the partner's ceiling is refused.
        try expectRefused(store, .grant(user: agent, role: "claims-adjuster", scope: nil, validUntil: nil), as: "nina.hq", "outside_ceiling")
        // A new business role, org-granted to the partners container.
        _ = try expectAllowed(store, .defineRole(role: "roadside-assist", name: nil, description: nil, permissions: ["assistance:dispatch"]), as: "nina.hq")
        _ = try expectAllowed(store, .grantToOrg(org: "partners", role: "roadside-assist", includeSuborgs: true, validUntil: nil), as: "nina.hq")
        // A partner admin still cannot hand out what it does not hold.
        try expectRefused(store, .grant(user: agent, role: "claims-viewer", scope: nil, validUntil: nil), as: "acme-brokers-north-admin", "escalation")
    }

    @Test func aRequestNoPartnerAdminCanApproveReachesTheBusiness() throws {
        let dir = TempDir()
        let store = try demoStore(dir)
        let agent = "acme-brokers-north-b2-agent1"
        // claims-viewer is in Acme's ceiling, but no Acme admin holds claim:read.
        let req = try expectAllowed(store, .requestRole(role: "claims-viewer", scope: nil, note: "covering claims in May"), as: agent)
        let id = try #require(req.requestID)
        let g = try store.loadGraph().graph
        for admin in ["acme-brokers-north-admin", "acme-brokers-admin", "pete.pm"] {
            #expect(try store.approvableRequests(approver: admin, graph: g, now: t0).isEmpty, "\(admin)")
        }
        #expect(try store.approvableRequests(approver: "nina.hq", graph: g, now: t0).map(\.id) == [id])
        try expectRefused(store, .approveRequest(id: id, note: nil), as: "acme-brokers-admin", "escalation")
        _ = try expectAllowed(store, .approveRequest(id: id, note: "ok"), as: "okta|nina")
        #expect(try store.assignments(user: agent).filter { $0.role == "claims-viewer" }.map(\.grantedBy) == ["nina.hq"])
        #expect(try store.accessRequest(id: id).status == "approved")
    }
}

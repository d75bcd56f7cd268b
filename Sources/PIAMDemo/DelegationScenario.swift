import PIAMEngine
import PIAMStore

/// A small administration scenario shared by the store's tests and the administration
/// service's tests over HTTP: the same people, the same escalation attempts, the same reasons.
public enum DelegationScenario {
    /// A business (nina, host-admin) with two partners:
    ///
    /// ```
    /// host ── partners ─┬─ acme ── acme-north ── acme-north-b1     ann (partner-admin@acme), bob (approver);
    ///                   │                                           nora (partner-admin@acme-north), nick (b1)
    ///                   └─ globex                                   gus (partner-admin@globex)
    /// ```
    public static let document = """
        {
          "orgs": [
            {"id": "acme", "parent": "partners", "kind": "partner"},
            {"id": "acme-north", "parent": "acme", "kind": "partner"},
            {"id": "acme-north-b1", "parent": "acme-north", "kind": "partner"},
            {"id": "globex", "parent": "partners", "kind": "partner"}
          ],
          "roles": [
            {"id": "claims-viewer", "permissions": ["claim:read"]},
            {"id": "claims-adjuster", "permissions": ["claim:*"]},
            {"id": "approver", "permissions": ["org:approve", "org:view"]}
          ],
          "users": [
            {"id": "nina", "org": "host"},
            {"id": "ann", "org": "acme", "aliases": ["okta|ann"]},
            {"id": "bob", "org": "acme"},
            {"id": "nora", "org": "acme-north"},
            {"id": "nick", "org": "acme-north-b1"},
            {"id": "gus", "org": "globex"}
          ],
          "entitlements": [
            {"org": "partners", "role": "partner-user"},
            {"org": "acme", "role": "partner-admin"}, {"org": "acme", "role": "claims-viewer"}, {"org": "acme", "role": "approver"},
            {"org": "globex", "role": "partner-admin"}
          ],
          "assignments": [
            {"user": "nina", "role": "host-admin", "scope": "host"},
            {"user": "nina", "role": "claims-adjuster", "scope": "host"},
            {"user": "bob", "role": "approver"},
            {"user": "ann", "role": "partner-admin", "scope": "acme"},
            {"user": "ann", "role": "claims-viewer", "scope": "acme"},
            {"user": "nora", "role": "partner-admin", "scope": "acme-north"},
            {"user": "gus", "role": "partner-admin", "scope": "globex"}
          ],
          "org_grants": [{"org": "partners", "role": "partner-user", "include_suborgs": true}]
        }
        """

    /// An administrative operation that must be refused, by whom, and why.
    public struct Escalation: Sendable {
        public var operation: AdminOperation
        public var actor: String
        public var reason: String
    }

    /// Every escalation attempt of the scenario, decided at `now`.
    public static func escalations(now: Timestamp) -> [Escalation] {
        func e(_ op: AdminOperation, _ actor: String, _ reason: String) -> Escalation {
            Escalation(operation: op, actor: actor, reason: reason)
        }
        return [
            // Granting a role outside its partner's ceiling.
            e(.grant(user: "bob", role: "claims-adjuster", scope: nil, validUntil: nil), "ann", "outside_ceiling"),
            // Granting partner-admin scoped at its parent (the region admin, for a branch user).
            e(.grant(user: "nick", role: "partner-admin", scope: "acme", validUntil: nil), "nora", "out_of_scope"),
            // A host-only role: not in any partner's ceiling; and entitled by mistake, still escalation.
            e(.grant(user: "bob", role: "host-admin", scope: nil, validUntil: nil), "ann", "outside_ceiling"),
            e(.grant(user: "bob", role: "approver", scope: nil, validUntil: nil), "ann", "escalation"),
            e(.grantToOrg(org: "acme-north", role: "approver", includeSuborgs: true, validUntil: nil), "ann", "escalation"),
            // Moving a user into another partner: the partner admin cannot reach it, the business may not do it.
            e(.moveUser(user: "bob", org: "globex"), "ann", "out_of_scope"),
            e(.moveUser(user: "bob", org: "globex"), "nina", "cross_partner"),
            e(.moveOrg(org: "acme-north", parent: "globex"), "nina", "cross_partner"),
            // Suspending its own org (or one above it), suspending itself, removing itself.
            e(.suspendOrg(org: "acme"), "ann", "self_action"),
            e(.suspendOrg(org: "acme"), "nora", "self_action"),
            e(.suspendUser(user: "okta|ann"), "ann", "self_action"),
            e(.removeUser(user: "ann"), "ann", "self_action"),
            // A sub-org admin cannot touch the parent's people; partners never reach each other.
            e(.suspendUser(user: "bob"), "nora", "out_of_scope"),
            e(.suspendUser(user: "gus"), "ann", "out_of_scope"),
            // Host-only operations.
            e(.entitle(org: "acme", role: "claims-adjuster"), "ann", "no_permission"),
            // A partner user holding a host-only permission (org:approve, entitled by mistake).
            e(.approveOrg(org: "acme-north", entitle: []), "bob", "host_only"),
            e(.defineRole(role: "mine", name: nil, description: nil, permissions: ["claim:read"]), "ann", "no_permission"),
            // Alias hijack: a partner admin attaching to its own people an identity of the
            // business or of another partner (acme has no identity namespace declared here, and
            // an alias outside a partner's namespaces is refused to its admins either way).
            e(.addAlias(user: "bob", alias: "nina@northwind.example"), "ann", "outside_namespace"),
            e(.addAlias(user: "bob", alias: "okta|globex-newhire"), "ann", "outside_namespace"),
            // Identity namespaces are the business's to declare.
            e(.addNamespace(org: "acme", namespace: "okta-acme|"), "ann", "no_permission"),
            // Removing the last admin: ann is acme's only admin, so it may not give up partner-admin.
            e(.revoke(user: "ann", role: "partner-admin", scope: nil), "ann", "last_admin"),
            e(.updateUser(user: "ann", name: nil, email: nil, validUntil: .some(now - 1)), "ann", "last_admin"),
        ]
    }
}

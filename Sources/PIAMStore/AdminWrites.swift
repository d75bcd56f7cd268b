import Foundation
import PIAMEngine

// What more than one operation writes or checks, shared by the operation types of
// `Operations/` (each operation's own write is in its file). The engine's questions were
// answered "allow" before an operation's `perform` runs (``AdminSession/perform(_:as:)``).

extension AdminSession {
    /// A suspended org becomes active again, or an active one suspended (`org.suspend`,
    /// `org.reactivate`): nothing else is rewritten, the decision rules cut off the subtree.
    func setOrgStatus(_ o: String, to status: OrgStatus, out: inout Outcome) throws {
        let info = try org(o)
        let verb = status == .active ? "reactivated" : "suspended"
        if info.status == status { out.message = "org:\(o) is already \(status.name)"; return }
        if info.status == .pending {
            throw PIAMError(.conflict, "org \"\(o)\" is pending: approve or reject its registration (org approve, org reject)")
        }
        try exec("UPDATE orgs SET status = ?2 WHERE id = ?1", o, status.name)
        out.message = "\(verb) org:\(o)" + (status == .suspended ? " (everyone at or below it is denied: org_inactive)" : "")
    }

    /// The org `o` as it must be to decide on its registration (`org.approve`, `org.reject`).
    func requirePendingOrg(_ o: String, else problem: String) throws {
        let info = try org(o)
        guard info.status == .pending else {
            throw PIAMError(.conflict, "org \"\(o)\" is \(info.status.name), not pending: \(problem)")
        }
    }

    /// A role an entitlement names must exist (`entitle`, `org.approve`): the write's own
    /// precondition, refused as the engine would name it (`unknown_role`).
    func requireRoleToEntitle(_ r: String) throws {
        guard try roleExists(r) else { throw Refusal(reason: Reason.unknownRole.name, message: "no such role \"\(r)\"") }
    }

    func subtreeSQL(_ o: String) throws -> [String] { try store.subtreeSQL(o) }

    /// Deletes org `o`, its sub-orgs, their users (with aliases, assignments and requests),
    /// resources, entitlements and org grants. Returns what was removed, for people.
    func removeSubtree(_ o: String) throws -> [String] {
        let subtree = try subtreeSQL(o)
        let ids = JSONText.array(subtree)
        let inList = "(SELECT value FROM json_each(?1))"
        var details: [String] = []
        func note(_ n: Int, _ what: String) { if n > 0 { details.append("\(n) \(what)") } }
        note(try count("SELECT count(*) FROM resources WHERE org IN \(inList)", ids), "resources")
        try exec("DELETE FROM resources WHERE org IN \(inList)", ids)
        let userIDs = try db.prepare("SELECT id FROM users WHERE org IN \(inList)")
        userIDs.bind(1, ids)
        let removedUsers = try userIDs.rows { $0.text(0) }
        note(removedUsers.count, "users")
        note(try count("SELECT count(*) FROM assignments WHERE scope IN \(inList) OR user IN (SELECT id FROM users WHERE org IN \(inList))", ids), "assignments")
        note(try count("SELECT count(*) FROM org_grants WHERE org IN \(inList)", ids), "org grants")
        note(try count("SELECT count(*) FROM entitlements WHERE org IN \(inList)", ids), "entitlements")
        try exec("DELETE FROM users WHERE org IN \(inList)", ids)
        note(subtree.count - 1, "sub-orgs")
        for id in subtree { try exec("DELETE FROM orgs WHERE id = ?1", id) }
        return details
    }

    /// An access request must be pending to be decided (`request.approve`, `request.deny`).
    func requirePending(_ req: AccessRequestInfo) throws {
        guard req.status == "pending" else {
            throw PIAMError(.conflict, "request #\(req.id) was already \(req.status) by \(req.decidedBy ?? "-")")
        }
    }

    func decideRequest(_ id: Int64, status: String, actor: String, note: String?) throws {
        try exec("UPDATE access_requests SET status = ?2, decided_by = ?3, decided_at = ?4, decision_note = ?5 WHERE id = ?1",
                 id, status, actor, now, note)
    }
}

extension Store {
    /// The extended self-action rule for registrations (`org.approve`, `org.reject`): nobody
    /// decides on the registration of the org it stands in. The store's extension of the
    /// engine's self-action rule (which covers `suspend` and `remove`), asked before the
    /// engine and without a graph: `piamctl` asks it before any pre-decision.
    func ownRegistrationRefusal(actor: String, org o: String) throws(PIAMError) -> (reason: String, message: String)? {
        if let a = try userRecord(actor), try orgChainSQL(a.org).contains(o) {
            return (AdminReason.selfAction, "\(a.id) stands in org:\(o) and may not decide on its own organization's registration")
        }
        return nil
    }
}

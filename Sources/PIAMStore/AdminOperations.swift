import Foundation
import PIAMEngine

// The writes of each administrative operation. The engine's questions were answered "allow"
// before `run` is called (``AdminSession/perform(_:as:)``); what remains here is the state each
// operation needs (an org must be pending to be approved, …), the guards that are not engine
// questions, and the write itself.

extension AdminSession {
    func run(_ op: AdminOperation, actor: String, out: inout Outcome) throws {
        switch op {
        case let .registerOrg(o, name, parent, admin, adminName, adminEmail):
            try registerOrg(o, name: name, parent: parent ?? Seed.partnersOrgID, admin: admin, adminName: adminName,
                            adminEmail: adminEmail, actor: actor, out: &out)
        case let .approveOrg(o, entitle):
            let info = try org(o)
            guard info.status == .pending else {
                throw PIAMError(.conflict, "org \"\(o)\" is \(info.status.name), not pending: nothing to approve")
            }
            for r in entitle where try !roleExists(r) { throw Refusal(reason: Reason.unknownRole.name, message: "no such role \"\(r)\"") }
            try exec("UPDATE orgs SET status = 'active' WHERE id = ?1", o)
            for r in entitle { try exec("INSERT INTO entitlements(org, role) VALUES (?1, ?2) ON CONFLICT DO NOTHING", o, r) }
            out.message = "approved org:\(o)" + (entitle.isEmpty ? "" : ", entitled to \(entitle.joined(separator: ", "))")
            let ceiling = "SELECT count(*) FROM entitlements WHERE role = ?1 AND org IN (SELECT value FROM json_each(?2))"
            if try count(ceiling, Seed.partnerAdmin.id, JSONText.array(try store.orgChainSQL(o))) == 0 {
                out.details.append("note: \(Seed.partnerAdmin.id) is not in org:\(o)'s ceiling, so its admins can do nothing yet (entitle it)")
            }
        case let .rejectOrg(o):
            let info = try org(o)
            guard info.status == .pending else {
                throw PIAMError(.conflict, "org \"\(o)\" is \(info.status.name), not pending: only a pending registration is rejected")
            }
            out.details = try removeSubtree(o)
            out.message = "rejected the registration of org:\(o) (removed)"
        case let .entitle(o, r):
            _ = try org(o)
            guard try roleExists(r) else { throw Refusal(reason: Reason.unknownRole.name, message: "no such role \"\(r)\"") }
            try exec("INSERT INTO entitlements(org, role) VALUES (?1, ?2) ON CONFLICT DO NOTHING", o, r)
            out.message = "entitled org:\(o) to role \(r)"
        case let .unentitle(o, r):
            try exec("DELETE FROM entitlements WHERE org = ?1 AND role = ?2", o, r)
            out.message = db.changes > 0 ? "took role \(r) out of org:\(o)'s entitlements" : "org:\(o) was not entitled to role \(r)"
        case let .createOrg(o, parent, name, kind):
            try createOrg(o, parent: parent, name: name, kind: kind, out: &out)
        case let .updateOrg(o, name):
            _ = try org(o)
            try exec("UPDATE orgs SET name = ?2 WHERE id = ?1 AND name IS NOT ?2", o, name)
            out.message = "renamed org:\(o) to \"\(name)\""
        case let .suspendOrg(o):
            try setOrgStatus(o, to: .suspended, out: &out)
        case let .reactivateOrg(o):
            try setOrgStatus(o, to: .active, out: &out)
        case let .removeOrg(o, cascade):
            try removeOrg(o, cascade: cascade, out: &out)
        case let .moveOrg(o, parent):
            try moveOrg(o, to: parent, out: &out)
        case let .inviteUser(u, o, name, email, aliases, validUntil, invitationExpires):
            _ = try org(o)
            try requireFreeUserName(u, what: "user id")
            for a in aliases { try requireFreeUserName(a, what: "alias") }
            guard Set(aliases).count == aliases.count, !aliases.contains(u) else {
                throw PIAMError(.invalidInput, "user \"\(u)\": aliases repeat each other or the id")
            }
            try exec("INSERT INTO users(id, org, name, email, status, valid_until) VALUES (?1, ?2, ?3, ?4, 'invited', ?5)",
                     u, o, name, email, validUntil)
            for a in aliases {
                try exec("INSERT INTO user_aliases(alias, user) VALUES (?1, ?2)", a, u)
            }
            try createInvitation(user: u, validUntil: validUntil, expires: invitationExpires, createdBy: actor, out: &out)
            out.message = "invited user:\(u) to org:\(o)"
        case let .activateUser(u):
            let info = try user(u)
            guard info.status == .invited else {
                throw PIAMError(.conflict, "user \"\(info.id)\" is \(info.status.name), not invited: nothing to activate")
            }
            if let end = info.validUntil, end <= now {
                throw Refusal(reason: Reason.subjectExpired.name, message: "the access of user:\(info.id) ended at \(RFC3339.format(end))")
            }
            try exec("UPDATE users SET status = 'active' WHERE id = ?1", info.id)
            // Its invitations have nothing left to accept.
            let revoked = try revokeOpenInvitations(of: info.id)
            out.message = "activated invited user:\(info.id)" + (revoked > 0 ? " (its open invitation revoked)" : "")
        case let .resendInvitation(u, expires):
            let info = try user(u)
            guard info.status == .invited else {
                throw PIAMError(.conflict, "user \"\(info.id)\" is \(info.status.name), not invited: there is no invitation to resend")
            }
            let revoked = try revokeOpenInvitations(of: info.id)
            try createInvitation(user: info.id, validUntil: info.validUntil, expires: expires, createdBy: actor, out: &out)
            out.changed = true
            out.message = "sent user:\(info.id) a new invitation" + (revoked > 0 ? " (revoking \(revoked) open one\(revoked == 1 ? "" : "s"))" : "")
        case let .revokeInvitation(u):
            let info = try user(u)
            let revoked = try revokeOpenInvitations(of: info.id)
            out.changed = revoked > 0
            out.message = revoked > 0 ? "revoked \(revoked) open invitation\(revoked == 1 ? "" : "s") of user:\(info.id)"
                : "user:\(info.id) has no open invitation"
        case let .updateUser(u, name, email, validUntil):
            let info = try user(u)
            let write = { [self] () throws in
                if let name { try exec("UPDATE users SET name = ?2 WHERE id = ?1 AND name IS NOT ?2", info.id, name) }
                if let email { try exec("UPDATE users SET email = ?2 WHERE id = ?1 AND email IS NOT ?2", info.id, email) }
                if let validUntil { try exec("UPDATE users SET valid_until = ?2 WHERE id = ?1 AND valid_until IS NOT ?2", info.id, validUntil) }
            }
            if validUntil != nil {
                try guardLastAdmin(actor: actor, root: try store.partnerRootSQL(info.org), affected: [info.id], removesAffected: false, write: write)
            } else {
                try write()
            }
            out.message = "updated user:\(info.id)"
        case let .suspendUser(u):
            let info = try user(u)
            guard info.status != .suspended else { out.message = "user:\(info.id) is already suspended"; return }
            try guardLastAdmin(actor: actor, root: try store.partnerRootSQL(info.org), affected: [info.id], removesAffected: true) {
                try exec("UPDATE users SET status = 'suspended' WHERE id = ?1", info.id)
            }
            out.message = "suspended user:\(info.id)"
        case let .reactivateUser(u):
            let info = try user(u)
            switch info.status {
            case .active: out.message = "user:\(info.id) is already active"
            case .invited: throw PIAMError(.conflict, "user \"\(info.id)\" is invited, not suspended: the user accepts its invitation (invitation accept), or an admin activates it (user activate)")
            case .suspended:
                try exec("UPDATE users SET status = 'active' WHERE id = ?1", info.id)
                out.message = "reactivated user:\(info.id)"
            }
        case let .removeUser(u):
            let info = try user(u)
            try guardLastAdmin(actor: actor, root: try store.partnerRootSQL(info.org), affected: [info.id], removesAffected: true) {
                try exec("DELETE FROM users WHERE id = ?1", info.id)
            }
            out.message = "removed user:\(info.id)"
        case let .moveUser(u, o):
            let info = try user(u)
            let to = try org(o)
            guard try store.partnerRootSQL(info.org) == store.partnerRootSQL(to.id), to.kind == (try org(info.org)).kind else {
                throw Refusal(reason: AdminReason.crossPartner,
                              message: "user:\(info.id) may move only within its own \(try store.partnerRootSQL(info.org).map { "partner (org:\($0))" } ?? "host organization")")
            }
            try guardLastAdmin(actor: actor, root: try store.partnerRootSQL(info.org), affected: [info.id], removesAffected: false) {
                try exec("UPDATE users SET org = ?2 WHERE id = ?1", info.id, to.id)
            }
            out.message = "moved user:\(info.id) from org:\(info.org) to org:\(to.id)"
        case let .addAlias(u, alias):
            let info = try user(u)
            try requireFreeUserName(alias, what: "alias")
            try exec("INSERT INTO user_aliases(alias, user) VALUES (?1, ?2)", alias, info.id)
            out.message = "added alias \"\(alias)\" to user:\(info.id)"
        case let .removeAlias(u, alias):
            let info = try user(u)
            guard info.aliases.contains(alias) else { throw PIAMError(.notFound, "user \"\(info.id)\" has no alias \"\(alias)\"") }
            try exec("DELETE FROM user_aliases WHERE alias = ?1", alias)
            out.message = "removed alias \"\(alias)\" from user:\(info.id)"
        case let .defineRole(r, name, description, permissions):
            try validateEntityID(r, what: "role id")
            guard try !roleExists(r) else { throw PIAMError(.conflict, "role \"\(r)\" already exists (role update changes it)") }
            try exec("INSERT INTO roles(id, name, description, permissions) VALUES (?1, ?2, ?3, ?4)",
                     r, name, description, JSONText.array(try parsePermissions(permissions)))
            out.message = "defined role \(r)"
        case let .updateRole(r, name, description, permissions):
            guard try roleExists(r) else { throw PIAMError(.notFound, "no such role \"\(r)\"") }
            if let name { try exec("UPDATE roles SET name = ?2 WHERE id = ?1 AND name IS NOT ?2", r, name) }
            if let description { try exec("UPDATE roles SET description = ?2 WHERE id = ?1 AND description IS NOT ?2", r, description) }
            if let permissions {
                try exec("UPDATE roles SET permissions = ?2 WHERE id = ?1 AND permissions IS NOT ?2", r, JSONText.array(try parsePermissions(permissions)))
            }
            out.message = "updated role \(r)"
        case let .deleteRole(r, force):
            try deleteRole(r, force: force, out: &out)
        case let .grant(u, r, scope, validUntil):
            let info = try user(u)
            let l = scope ?? info.org
            // A re-grant that changes nothing keeps who granted it and when.
            try exec("""
                INSERT INTO assignments(user, role, scope, valid_until, granted_by, granted_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                ON CONFLICT(user, role, scope) DO UPDATE SET valid_until = excluded.valid_until, granted_by = excluded.granted_by,
                  granted_at = excluded.granted_at
                WHERE valid_until IS NOT excluded.valid_until
                """, info.id, r, l, validUntil, actor, now)
            out.message = "granted role \(r) to user:\(info.id) over org:\(l)" + (validUntil.map { " until \(RFC3339.format($0))" } ?? "")
        case let .revoke(u, r, scope):
            let info = try user(u)
            let l = scope ?? info.org
            guard try count("SELECT count(*) FROM assignments WHERE user = ?1 AND role = ?2 AND scope = ?3", info.id, r, l) > 0 else {
                throw PIAMError(.notFound, "user \"\(info.id)\" holds no role \(r) over org \"\(l)\"")
            }
            try guardLastAdmin(actor: actor, root: try store.partnerRootSQL(info.org), affected: [info.id], removesAffected: false) {
                try exec("DELETE FROM assignments WHERE user = ?1 AND role = ?2 AND scope = ?3", info.id, r, l)
            }
            out.message = "revoked role \(r) over org:\(l) from user:\(info.id)"
        case let .grantToOrg(o, r, include, validUntil):
            try exec("""
                INSERT INTO org_grants(org, role, include_suborgs, valid_until, granted_by, granted_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                ON CONFLICT(org, role) DO UPDATE SET include_suborgs = excluded.include_suborgs, valid_until = excluded.valid_until,
                  granted_by = excluded.granted_by, granted_at = excluded.granted_at
                WHERE include_suborgs IS NOT excluded.include_suborgs OR valid_until IS NOT excluded.valid_until
                """, o, r, include, validUntil, actor, now)
            out.message = "granted role \(r) to every member of org:\(o)\(include ? " and its sub-orgs" : "")"
        case let .revokeFromOrg(o, r):
            guard try count("SELECT count(*) FROM org_grants WHERE org = ?1 AND role = ?2", o, r) > 0 else {
                throw PIAMError(.notFound, "org \"\(o)\" has no org grant of role \(r)")
            }
            try guardLastAdmin(actor: actor, root: try store.partnerRootSQL(o), affected: nil, removesAffected: false) {
                try exec("DELETE FROM org_grants WHERE org = ?1 AND role = ?2", o, r)
            }
            out.message = "revoked the org grant of role \(r) on org:\(o)"
        case let .requestRole(r, scope, note):
            try requestRole(r, scope: scope, note: note, actor: actor, out: &out)
        case let .approveRequest(id, note):
            let req = try store.accessRequest(id: id)
            try requirePending(req)
            try exec("""
                INSERT INTO assignments(user, role, scope, valid_until, granted_by, granted_at) VALUES (?1, ?2, ?3, NULL, ?4, ?5)
                ON CONFLICT(user, role, scope) DO UPDATE SET valid_until = NULL, granted_by = excluded.granted_by,
                  granted_at = excluded.granted_at
                WHERE valid_until IS NOT NULL
                """, req.user, req.role, req.scope, actor, now)
            try decideRequest(id, status: "approved", actor: actor, note: note)
            out.requestID = id
            out.changed = true
            out.message = "approved request #\(id): granted role \(req.role) to user:\(req.user) over org:\(req.scope)"
        case let .denyRequest(id, note):
            let req = try store.accessRequest(id: id)
            try requirePending(req)
            try decideRequest(id, status: "denied", actor: actor, note: note)
            out.requestID = id
            out.changed = true
            out.message = "denied request #\(id) (role \(req.role) for user:\(req.user))"
        }
    }

    // MARK: Onboarding and orgs

    func registerOrg(_ o: String, name: String?, parent: String, admin: String, adminName: String?,
                              adminEmail: String?, actor: String, out: inout Outcome) throws {
        try validateEntityID(o, what: "org id")
        let p = try org(parent)
        guard p.kind == .host else {
            throw PIAMError(.invalidInput, "a partner registers under a host org (\(Seed.partnersOrgID)), not under partner org \"\(parent)\"")
        }
        guard try store.org(id: o) == nil else { throw PIAMError(.conflict, "org \"\(o)\" already exists") }
        try requireFreeUserName(admin, what: "admin user id")
        guard try roleExists(Seed.partnerAdmin.id) else {
            throw PIAMError(.notFound, "role \(Seed.partnerAdmin.id) is not defined: a registration's first admin needs it")
        }
        try exec("INSERT INTO orgs(id, parent, name, kind, status) VALUES (?1, ?2, ?3, 'partner', 'pending')", o, parent, name ?? o)
        try exec("INSERT INTO users(id, org, name, email, status) VALUES (?1, ?2, ?3, ?4, 'invited')", admin, o, adminName, adminEmail)
        // In effect once the org is approved, partner-admin entitled, and the invitation accepted.
        try exec("INSERT INTO assignments(user, role, scope, granted_by, granted_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                 admin, Seed.partnerAdmin.id, o, actor == admin ? "registration" : actor, now)
        try createInvitation(user: admin, validUntil: nil, expires: nil, createdBy: actor == admin ? "registration" : actor, out: &out)
        out.message = "registered org:\(o) (pending approval) with its first admin user:\(admin) (invited)"
    }

    func createOrg(_ o: String, parent: String, name: String?, kind: OrgKind?, out: inout Outcome) throws {
        try validateEntityID(o, what: "org id")
        let p = try org(parent)
        guard try store.org(id: o) == nil else { throw PIAMError(.conflict, "org \"\(o)\" already exists") }
        let k = kind ?? (p.kind == .partner || parent == Seed.partnersOrgID ? .partner : .host)
        if k == .host && p.kind == .partner {
            throw PIAMError(.invalidGraph, "a host org may not lie below partner org \"\(parent)\"")
        }
        try exec("INSERT INTO orgs(id, parent, name, kind, status) VALUES (?1, ?2, ?3, ?4, 'active')", o, parent, name ?? o, k.name)
        out.message = "created \(k.name) org:\(o) under org:\(parent)"
    }

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

    func removeOrg(_ o: String, cascade: Bool, out: inout Outcome) throws {
        let info = try org(o)
        if info.parent == nil || o == Seed.partnersOrgID {
            throw PIAMError(.invalidInput, "org \"\(o)\" is seeded by init and may not be removed")
        }
        let subtree = try subtreeSQL(o)
        let inList = "(SELECT value FROM json_each(?1))"
        let ids = JSONText.array(subtree)
        let users = try count("SELECT count(*) FROM users WHERE org IN \(inList)", ids)
        let resources = try count("SELECT count(*) FROM resources WHERE org IN \(inList)", ids)
        if !cascade && (subtree.count > 1 || users > 0 || resources > 0) {
            throw PIAMError(.conflict, "org \"\(o)\" is not empty: \(subtree.count - 1) sub-orgs, \(users) users, \(resources) resources (--cascade removes them all)")
        }
        out.details = try removeSubtree(o)
        out.message = "removed org:\(o)" + (out.details.isEmpty ? "" : " and everything in it")
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

    func moveOrg(_ o: String, to parent: String, out: inout Outcome) throws {
        let info = try org(o)
        let to = try org(parent)
        let root = try store.partnerRootSQL(o)
        let sameHost = info.kind == .host && to.kind == .host
        let destinationRoot = try store.partnerRootSQL(parent)
        let samePartner = info.kind == .partner && root != o && root != nil && destinationRoot == root
        guard sameHost || samePartner else {
            throw Refusal(reason: AdminReason.crossPartner,
                          message: root == o ? "org:\(o) is a partner root: it may not move" : "org:\(o) may move only within its own \(root.map { "partner (org:\($0))" } ?? "host organization")")
        }
        if try store.orgChainSQL(parent).contains(o) {
            throw PIAMError(.invalidGraph, "org \"\(o)\" may not move below itself or one of its sub-orgs")
        }
        if info.parent == parent { out.message = "org:\(o) is already under org:\(parent)"; return }
        try exec("UPDATE orgs SET parent = ?2 WHERE id = ?1", o, parent)
        out.message = "moved org:\(o) from org:\(info.parent ?? "-") to org:\(parent)"
    }

    // MARK: Roles

    func deleteRole(_ r: String, force: Bool, out: inout Outcome) throws {
        guard try roleExists(r) else { throw PIAMError(.notFound, "no such role \"\(r)\"") }
        let assignments = try db.prepare("SELECT user, scope FROM assignments WHERE role = ?1 ORDER BY user, scope")
        assignments.bind(1, r)
        let uses = try assignments.rows { "assignment: user:\($0.text(0)) over org:\($0.text(1))" }
        let grants = try db.prepare("SELECT org FROM org_grants WHERE role = ?1 ORDER BY org")
        grants.bind(1, r)
        let grantUses = try grants.rows { "org grant: org:\($0.text(0))" }
        let ents = try db.prepare("SELECT org FROM entitlements WHERE role = ?1 ORDER BY org")
        ents.bind(1, r)
        let entUses = try ents.rows { "entitlement: org:\($0.text(0))" }
        let pending = try count("SELECT count(*) FROM access_requests WHERE role = ?1 AND status = 'pending'", r)
        let all = uses + grantUses + entUses + (pending > 0 ? ["\(pending) pending access requests"] : [])
        if !all.isEmpty && !force {
            throw PIAMError(.conflict, "role \"\(r)\" is in use: \(uses.count) assignments, \(grantUses.count) org grants, \(entUses.count) entitlements, \(pending) pending requests (--force revokes them all)")
        }
        try exec("DELETE FROM roles WHERE id = ?1", r)
        out.details = all.map { "revoked \($0)" }
        out.message = "deleted role \(r)" + (all.isEmpty ? "" : ", revoking \(all.count) uses")
    }

    // MARK: Access requests

    func requestRole(_ r: String, scope: String?, note: String?, actor: String, out: inout Outcome) throws {
        let me = try user(actor)
        guard try roleExists(r) else { throw Refusal(reason: Reason.unknownRole.name, message: "no such role \"\(r)\"") }
        let l = scope ?? me.org
        guard try store.org(id: l) != nil else { throw Refusal(reason: Reason.unknownOrg.name, message: "no such org \"\(l)\"") }
        // The can_assign rules that do not depend on an approver: a request nobody could approve is refused now.
        if try org(me.org).kind == .partner {
            let chain = try store.orgChainSQL(me.org)
            guard try count("SELECT count(*) FROM entitlements WHERE role = ?1 AND org IN (SELECT value FROM json_each(?2))", r, JSONText.array(chain)) > 0 else {
                throw Refusal(reason: Reason.outsideCeiling.name, message: "role \(r) is not in the ceiling of org:\(me.org)")
            }
            guard try store.orgChainSQL(l).contains(me.org) else {
                throw Refusal(reason: Reason.outOfScope.name, message: "a partner user's role acts at its org or below, not over org:\(l)")
            }
        }
        if try count("SELECT count(*) FROM access_requests WHERE user = ?1 AND role = ?2 AND scope = ?3 AND status = 'pending'", me.id, r, l) > 0 {
            throw PIAMError(.conflict, "user \"\(me.id)\" already has a pending request for role \(r) over org \"\(l)\"")
        }
        try exec("INSERT INTO access_requests(user, role, scope, note, created_at) VALUES (?1, ?2, ?3, ?4, ?5)", me.id, r, l, note, now)
        out.requestID = db.lastInsertRowID
        out.changed = true
        out.message = "request #\(db.lastInsertRowID): user:\(me.id) asks for role \(r) over org:\(l)"
    }

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

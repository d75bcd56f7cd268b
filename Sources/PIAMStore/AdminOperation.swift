import Foundation
import PIAMEngine

/// One administrative operation: what `piamctl` performs for `org …`, `user …`, `role …`,
/// `grant`, `request …` and the rest, what ``Store/administer(_:as:now:graph:)`` runs, and one
/// entry of an `apply` file.
///
/// Each operation is decided by the engine for the actor performing it (see
/// <doc:Administration> for the action each one needs) and written in one transaction.
public enum AdminOperation: Sendable, Hashable {
    // Partner onboarding.
    /// A pending partner org (kind partner, under `parent`, default `partners`) plus its first
    /// admin as an invited user holding `partner-admin` over the org.
    case registerOrg(org: String, name: String?, parent: String?, admin: String, adminName: String?, adminEmail: String?)
    /// A pending org becomes active; optionally entitles roles in the same transaction.
    case approveOrg(org: String, entitle: [String])
    /// A pending registration is withdrawn: the org, its sub-orgs and its people are deleted.
    case rejectOrg(org: String)
    /// The business makes `role` available to `org`'s subtree.
    case entitle(org: String, role: String)
    /// Takes an entitlement back.
    case unentitle(org: String, role: String)

    // Organizations.
    /// A sub-org of `parent` (kind: the parent's, or partner below `partners`; status active).
    case createOrg(org: String, parent: String, name: String?, kind: OrgKind?)
    /// Renames an org.
    case updateOrg(org: String, name: String)
    /// Suspends an org: every user at or below it is denied (`org_inactive`).
    case suspendOrg(org: String)
    /// Reactivates a suspended org.
    case reactivateOrg(org: String)
    /// Deletes an org; one that holds sub-orgs, users or resources only with `cascade`.
    case removeOrg(org: String, cascade: Bool)
    /// Moves an org below another parent of the same partner.
    case moveOrg(org: String, parent: String)

    // People.
    /// A new user with status `invited`, and its invitation: a single-use secret returned once
    /// in ``AdminResult/invitationToken``, expiring at `invitationExpires` (default: 7 days
    /// after the operation, never later than the user's `validUntil`).
    case inviteUser(user: String, org: String, name: String?, email: String?, aliases: [String], validUntil: Timestamp?,
                    invitationExpires: Timestamp? = nil)
    /// An admin with `user:reactivate` makes an invited user active without its invitation.
    /// (An invitee accepts with ``Store/acceptInvitation(secret:identity:now:)``; the invitee
    /// itself may not perform this: ``AdminReason/invitationRequired``.)
    case activateUser(user: String)
    /// A new invitation for a user still `invited`: its open invitations are revoked and a new
    /// secret is returned once (expiring at `expires`, default 7 days, capped as for
    /// `user.invite`). Needs `invite_user` on the user's org.
    case resendInvitation(user: String, expires: Timestamp? = nil)
    /// Revokes a user's open invitations. Needs `invite_user` on the user's org.
    case revokeInvitation(user: String)
    /// Changes display fields or the end of access. `nil` keeps a field; `.some(nil)` clears it.
    case updateUser(user: String, name: String??, email: String??, validUntil: Timestamp??)
    /// Suspends a user (`subject_inactive`).
    case suspendUser(user: String)
    /// Reactivates a suspended user.
    case reactivateUser(user: String)
    /// Deletes a user with its aliases and assignments.
    case removeUser(user: String)
    /// Moves a user to another org of the same partner.
    case moveUser(user: String, org: String)
    /// Adds an alias (an IdP subject, a login) to a user.
    case addAlias(user: String, alias: String)
    /// Removes an alias.
    case removeAlias(user: String, alias: String)

    // Roles and grants.
    /// Defines a new role (host-only).
    case defineRole(role: String, name: String?, description: String?, permissions: [String])
    /// Changes a role (host-only); `nil` keeps a field.
    case updateRole(role: String, name: String?, description: String?, permissions: [String]?)
    /// Deletes a role (host-only); one in use only with `force`, which revokes its uses.
    case deleteRole(role: String, force: Bool)
    /// Gives `role` to `user` over `scope` (default: the user's org), by `can_assign`.
    case grant(user: String, role: String, scope: String?, validUntil: Timestamp?)
    /// Takes an assignment back.
    case revoke(user: String, role: String, scope: String?)
    /// Gives `role` to every member of `org` (and of its sub-orgs with `includeSuborgs`).
    case grantToOrg(org: String, role: String, includeSuborgs: Bool, validUntil: Timestamp?)
    /// Takes an org grant back.
    case revokeFromOrg(org: String, role: String)

    // Access requests.
    /// The actor asks for `role` for itself, over `scope` (default: its org).
    case requestRole(role: String, scope: String?, note: String?)
    /// Approves a pending request: a grant by `can_assign`.
    case approveRequest(id: Int64, note: String?)
    /// Denies a pending request.
    case denyRequest(id: Int64, note: String?)

    /// The operation's stable name, as in `apply` files and the audit log (`user.suspend`).
    public var name: String {
        switch self {
        case .registerOrg: "org.register"
        case .approveOrg: "org.approve"
        case .rejectOrg: "org.reject"
        case .entitle: "entitle"
        case .unentitle: "unentitle"
        case .createOrg: "org.create"
        case .updateOrg: "org.update"
        case .suspendOrg: "org.suspend"
        case .reactivateOrg: "org.reactivate"
        case .removeOrg: "org.remove"
        case .moveOrg: "org.move"
        case .inviteUser: "user.invite"
        case .activateUser: "user.activate"
        case .resendInvitation: "invitation.resend"
        case .revokeInvitation: "invitation.revoke"
        case .updateUser: "user.update"
        case .suspendUser: "user.suspend"
        case .reactivateUser: "user.reactivate"
        case .removeUser: "user.remove"
        case .moveUser: "user.move"
        case .addAlias: "user.alias.add"
        case .removeAlias: "user.alias.remove"
        case .defineRole: "role.define"
        case .updateRole: "role.update"
        case .deleteRole: "role.delete"
        case .grant: "grant"
        case .revoke: "revoke"
        case .grantToOrg: "org-grant"
        case .revokeFromOrg: "org-revoke"
        case .requestRole: "request.create"
        case .approveRequest: "request.approve"
        case .denyRequest: "request.deny"
        }
    }

    /// Every operation name, in the order above.
    public static let names = [
        "org.register", "org.approve", "org.reject", "entitle", "unentitle", "org.create", "org.update",
        "org.suspend", "org.reactivate", "org.remove", "org.move", "user.invite", "user.activate",
        "invitation.resend", "invitation.revoke", "user.update",
        "user.suspend", "user.reactivate", "user.remove", "user.move", "user.alias.add", "user.alias.remove",
        "role.define", "role.update", "role.delete", "grant", "revoke", "org-grant", "org-revoke",
        "request.create", "request.approve", "request.deny",
    ]

    /// The entity acted on, `TYPE:ID` (`org:acme`, `user:bob`, `role:x`, `request:12`).
    /// `request.create` names the actor's own user record.
    public func target(actor: String) -> String {
        switch self {
        case .registerOrg(let o, _, _, _, _, _), .approveOrg(let o, _), .rejectOrg(let o), .entitle(let o, _),
             .unentitle(let o, _), .createOrg(let o, _, _, _), .updateOrg(let o, _), .suspendOrg(let o),
             .reactivateOrg(let o), .removeOrg(let o, _), .moveOrg(let o, _), .grantToOrg(let o, _, _, _),
             .revokeFromOrg(let o, _):
            "org:\(o)"
        case .inviteUser(let u, _, _, _, _, _, _), .activateUser(let u), .resendInvitation(let u, _), .revokeInvitation(let u),
             .updateUser(let u, _, _, _), .suspendUser(let u),
             .reactivateUser(let u), .removeUser(let u), .moveUser(let u, _), .addAlias(let u, _), .removeAlias(let u, _),
             .grant(let u, _, _, _), .revoke(let u, _, _):
            "user:\(u)"
        case .defineRole(let r, _, _, _), .updateRole(let r, _, _, _), .deleteRole(let r, _):
            "role:\(r)"
        case .requestRole:
            "user:\(actor)"
        case .approveRequest(let id, _), .denyRequest(let id, _):
            "request:\(id)"
        }
    }
}

// MARK: JSON (apply files and the audit log's detail)

extension AdminOperation {
    /// The operation as a JSON object: `{"op": NAME, …fields}` with snake_case keys, times in
    /// RFC 3339. The inverse of ``init(json:path:)``.
    public var json: [String: Any] {
        var o: [String: Any] = ["op": name]
        func put(_ k: String, _ v: Any?) { if let v { o[k] = v } }
        func time(_ t: Timestamp?) -> Any { t.map(RFC3339.format) ?? NSNull() }
        switch self {
        case let .registerOrg(org, name, parent, admin, adminName, adminEmail):
            o["org"] = org; put("name", name); put("parent", parent); o["admin"] = admin
            put("admin_name", adminName); put("admin_email", adminEmail)
        case let .approveOrg(org, entitle):
            o["org"] = org; if !entitle.isEmpty { o["entitle"] = entitle }
        case let .rejectOrg(org), let .suspendOrg(org), let .reactivateOrg(org):
            o["org"] = org
        case let .entitle(org, role), let .unentitle(org, role), let .revokeFromOrg(org, role):
            o["org"] = org; o["role"] = role
        case let .createOrg(org, parent, name, kind):
            o["org"] = org; o["parent"] = parent; put("name", name); put("kind", kind?.name)
        case let .updateOrg(org, name):
            o["org"] = org; o["name"] = name
        case let .removeOrg(org, cascade):
            o["org"] = org; if cascade { o["cascade"] = true }
        case let .moveOrg(org, parent):
            o["org"] = org; o["parent"] = parent
        case let .inviteUser(user, org, name, email, aliases, validUntil, invitationExpires):
            o["user"] = user; o["org"] = org; put("name", name); put("email", email)
            if !aliases.isEmpty { o["aliases"] = aliases }
            if let validUntil { o["valid_until"] = RFC3339.format(validUntil) }
            if let invitationExpires { o["invitation_expires"] = RFC3339.format(invitationExpires) }
        case let .resendInvitation(user, expires):
            o["user"] = user
            if let expires { o["expires"] = RFC3339.format(expires) }
        case let .activateUser(user), let .suspendUser(user), let .reactivateUser(user), let .removeUser(user), let .revokeInvitation(user):
            o["user"] = user
        case let .updateUser(user, name, email, validUntil):
            o["user"] = user
            if let name { o["name"] = name ?? NSNull() }
            if let email { o["email"] = email ?? NSNull() }
            if let validUntil { o["valid_until"] = time(validUntil) }
        case let .moveUser(user, org):
            o["user"] = user; o["org"] = org
        case let .addAlias(user, alias), let .removeAlias(user, alias):
            o["user"] = user; o["alias"] = alias
        case let .defineRole(role, name, description, permissions):
            o["role"] = role; put("name", name); put("description", description); o["permissions"] = permissions
        case let .updateRole(role, name, description, permissions):
            o["role"] = role; put("name", name); put("description", description); put("permissions", permissions)
        case let .deleteRole(role, force):
            o["role"] = role; if force { o["force"] = true }
        case let .grant(user, role, scope, validUntil):
            o["user"] = user; o["role"] = role; put("scope", scope)
            if let validUntil { o["valid_until"] = RFC3339.format(validUntil) }
        case let .revoke(user, role, scope):
            o["user"] = user; o["role"] = role; put("scope", scope)
        case let .grantToOrg(org, role, includeSuborgs, validUntil):
            o["org"] = org; o["role"] = role; if includeSuborgs { o["include_suborgs"] = true }
            if let validUntil { o["valid_until"] = RFC3339.format(validUntil) }
        case let .requestRole(role, scope, note):
            o["role"] = role; put("scope", scope); put("note", note)
        case let .approveRequest(id, note), let .denyRequest(id, note):
            o["id"] = id; put("note", note)
        }
        return o
    }

    /// The operation as compact JSON text (sorted keys), for the audit log. Written by hand:
    /// a bulk run writes one per operation, and Foundation's serializer costs more than the
    /// operation itself.
    public var jsonText: String {
        let o = json
        var out: [UInt8] = [0x7B]
        for (i, k) in o.keys.sorted().enumerated() {
            if i > 0 { out.append(0x2C) }
            JSONText.appendString(k, to: &out)
            out.append(0x3A)
            switch o[k] {
            case let s as String: JSONText.appendString(s, to: &out)
            case let b as Bool: out.append(contentsOf: Array((b ? "true" : "false").utf8))
            case let n as Int64: out.append(contentsOf: Array(String(n).utf8))
            case let a as [String]: out.append(contentsOf: Array(JSONText.array(a).utf8))
            default: out.append(contentsOf: Array("null".utf8))
            }
        }
        out.append(0x7D)
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses one operation object of an `apply` file. Errors name the JSON path
    /// (`operations[3].role: missing`); unknown keys are an error. The key `as` (the actor of
    /// this operation) is read by the caller and ignored here.
    public init(json: [String: Any], path: String) throws(PIAMError) {
        var f = FieldReader(json, path: path)
        let op = try f.string("op")
        switch op {
        case "org.register":
            self = .registerOrg(org: try f.id("org"), name: try f.optString("name"), parent: try f.optString("parent"),
                                admin: try f.id("admin"), adminName: try f.optString("admin_name"), adminEmail: try f.optString("admin_email"))
        case "org.approve": self = .approveOrg(org: try f.id("org"), entitle: try f.strings("entitle") ?? [])
        case "org.reject": self = .rejectOrg(org: try f.id("org"))
        case "entitle": self = .entitle(org: try f.id("org"), role: try f.id("role"))
        case "unentitle": self = .unentitle(org: try f.id("org"), role: try f.id("role"))
        case "org.create":
            let kind = try f.optString("kind")
            var k: OrgKind?
            if let kind {
                guard let parsed = OrgKind(name: kind) else { throw f.fail("kind", "must be host or partner, not \"\(kind)\"") }
                k = parsed
            }
            self = .createOrg(org: try f.id("org"), parent: try f.id("parent"), name: try f.optString("name"), kind: k)
        case "org.update": self = .updateOrg(org: try f.id("org"), name: try f.string("name"))
        case "org.suspend": self = .suspendOrg(org: try f.id("org"))
        case "org.reactivate": self = .reactivateOrg(org: try f.id("org"))
        case "org.remove": self = .removeOrg(org: try f.id("org"), cascade: try f.bool("cascade"))
        case "org.move": self = .moveOrg(org: try f.id("org"), parent: try f.id("parent"))
        case "user.invite":
            self = .inviteUser(user: try f.id("user"), org: try f.id("org"), name: try f.optString("name"),
                               email: try f.optString("email"), aliases: try f.strings("aliases") ?? [],
                               validUntil: try f.time("valid_until") ?? nil, invitationExpires: try f.time("invitation_expires") ?? nil)
        case "user.activate": self = .activateUser(user: try f.id("user"))
        case "invitation.resend": self = .resendInvitation(user: try f.id("user"), expires: try f.time("expires") ?? nil)
        case "invitation.revoke": self = .revokeInvitation(user: try f.id("user"))
        case "user.update":
            self = .updateUser(user: try f.id("user"), name: try f.clearableString("name"),
                               email: try f.clearableString("email"), validUntil: try f.time("valid_until"))
        case "user.suspend": self = .suspendUser(user: try f.id("user"))
        case "user.reactivate": self = .reactivateUser(user: try f.id("user"))
        case "user.remove": self = .removeUser(user: try f.id("user"))
        case "user.move": self = .moveUser(user: try f.id("user"), org: try f.id("org"))
        case "user.alias.add": self = .addAlias(user: try f.id("user"), alias: try f.id("alias"))
        case "user.alias.remove": self = .removeAlias(user: try f.id("user"), alias: try f.id("alias"))
        case "role.define":
            self = .defineRole(role: try f.id("role"), name: try f.optString("name"), description: try f.optString("description"),
                               permissions: try f.permissions("permissions") ?? [])
        case "role.update":
            self = .updateRole(role: try f.id("role"), name: try f.optString("name"), description: try f.optString("description"),
                               permissions: try f.permissions("permissions"))
        case "role.delete": self = .deleteRole(role: try f.id("role"), force: try f.bool("force"))
        case "grant":
            self = .grant(user: try f.id("user"), role: try f.id("role"), scope: try f.optString("scope"),
                          validUntil: try f.time("valid_until") ?? nil)
        case "revoke": self = .revoke(user: try f.id("user"), role: try f.id("role"), scope: try f.optString("scope"))
        case "org-grant":
            self = .grantToOrg(org: try f.id("org"), role: try f.id("role"), includeSuborgs: try f.bool("include_suborgs"),
                               validUntil: try f.time("valid_until") ?? nil)
        case "org-revoke": self = .revokeFromOrg(org: try f.id("org"), role: try f.id("role"))
        case "request.create": self = .requestRole(role: try f.id("role"), scope: try f.optString("scope"), note: try f.optString("note"))
        case "request.approve": self = .approveRequest(id: try f.int("id"), note: try f.optString("note"))
        case "request.deny": self = .denyRequest(id: try f.int("id"), note: try f.optString("note"))
        default:
            throw f.fail("op", "unknown operation \"\(op)\" (one of: \(AdminOperation.names.joined(separator: ", ")))")
        }
        try f.finish(allowing: ["as"])
    }
}

/// Reads the fields of one JSON object, tracking which keys were used; errors name the path.
struct FieldReader {
    let object: [String: Any]
    let path: String
    var used: Set<String> = ["op"]

    init(_ object: [String: Any], path: String) {
        self.object = object
        self.path = path
    }

    func fail(_ key: String, _ message: String) -> PIAMError {
        PIAMError(.invalidInput, "\(path).\(key): \(message)")
    }

    mutating func value(_ key: String) -> Any? {
        used.insert(key)
        guard let v = object[key], !(v is NSNull) else { return nil }
        return v
    }

    mutating func optString(_ key: String) throws(PIAMError) -> String? {
        guard let v = value(key) else { return nil }
        guard let s = v as? String else { throw fail(key, "must be a string") }
        return s
    }

    mutating func string(_ key: String) throws(PIAMError) -> String {
        guard let s = try optString(key) else { throw fail(key, "missing") }
        return s
    }

    /// A required entity id (1–255 bytes).
    mutating func id(_ key: String) throws(PIAMError) -> String {
        let s = try string(key)
        if let problem = entityIDProblem(s) { throw fail(key, problem) }
        return s
    }

    /// Absent: `nil` (keep); `null`: `.some(nil)` (clear); a string: that string.
    mutating func clearableString(_ key: String) throws(PIAMError) -> String?? {
        used.insert(key)
        guard let v = object[key] else { return nil }
        if v is NSNull { return .some(nil) }
        guard let s = v as? String else { throw fail(key, "must be a string or null") }
        return .some(s)
    }

    /// Absent: `nil` (keep); `null`: `.some(nil)` (no end); RFC 3339 text: that instant.
    mutating func time(_ key: String) throws(PIAMError) -> Timestamp?? {
        used.insert(key)
        guard let v = object[key] else { return nil }
        if v is NSNull { return .some(nil) }
        guard let s = v as? String, let t = RFC3339.parse(s) else {
            throw fail(key, "must be an RFC 3339 time (e.g. 2027-06-30T00:00:00Z) or null")
        }
        return .some(t)
    }

    mutating func bool(_ key: String) throws(PIAMError) -> Bool {
        guard let v = value(key) else { return false }
        guard let b = v as? Bool else { throw fail(key, "must be true or false") }
        return b
    }

    mutating func int(_ key: String) throws(PIAMError) -> Int64 {
        guard let v = value(key) else { throw fail(key, "missing") }
        if let n = v as? NSNumber {
            // Integral JSON numbers keep their 64 bits (a double would round the large ones);
            // true and false (objCType "c") are not numbers.
            let type = String(cString: n.objCType)
            if type == "c" { throw fail(key, "must be an integer") }
            if type != "d" && type != "f" { return n.int64Value }
            if let i = Int64(exactly: n.doubleValue) { return i }
        }
        if let s = v as? String, let i = Int64(s) { return i }
        throw fail(key, "must be an integer")
    }

    mutating func strings(_ key: String) throws(PIAMError) -> [String]? {
        guard let v = value(key) else { return nil }
        guard let a = v as? [Any] else { throw fail(key, "must be an array of strings") }
        var out: [String] = []
        for (i, x) in a.enumerated() {
            guard let s = x as? String else { throw PIAMError(.invalidInput, "\(path).\(key)[\(i)]: must be a string") }
            out.append(s)
        }
        return out
    }

    /// A list of permissions (`TYPE:ACTION[:owner]`), each checked for its syntax.
    mutating func permissions(_ key: String) throws(PIAMError) -> [String]? {
        guard let list = try strings(key) else { return nil }
        for (i, p) in list.enumerated() {
            do {
                _ = try Permission(parsing: p)
            } catch {
                throw PIAMError(.invalidInput, "\(path).\(key)[\(i)]: \(error.message)")
            }
        }
        return list
    }

    func finish(allowing extra: Set<String> = []) throws(PIAMError) {
        for k in object.keys.sorted() where !used.contains(k) && !extra.contains(k) {
            throw PIAMError(.invalidInput, "\(path).\(k): unknown key for \"\(object["op"] as? String ?? "?")\"")
        }
    }
}

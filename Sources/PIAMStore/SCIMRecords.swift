import Foundation
import PIAMEngine

/// The SCIM view of a user provisioned through SCIM (schema v5, `scim_users`): what PIAM keeps
/// beside the user itself. Status, name and e-mail are read from the user.
public struct SCIMUserRecord: Sendable, Hashable {
    /// The PIAM user id (the SCIM `id`).
    public var user: String
    /// The partner root whose endpoint provisioned it.
    public var partner: String
    /// The SCIM userName (unique per partner, without case).
    public var userName: String
    /// The identity provider's id of the user.
    public var externalID: String?
    /// The rest of the SCIM resource as JSON text (attributes with no PIAM column).
    public var resource: String
    /// When SCIM created it.
    public var createdAt: Timestamp
    /// When SCIM last wrote it (`meta.lastModified`).
    public var modifiedAt: Timestamp

    /// A record with every field.
    public init(user: String, partner: String, userName: String, externalID: String?, resource: String, createdAt: Timestamp,
                modifiedAt: Timestamp) {
        self.user = user; self.partner = partner; self.userName = userName; self.externalID = externalID
        self.resource = resource; self.createdAt = createdAt; self.modifiedAt = modifiedAt
    }
}

/// A partner's SCIM group (`scim_groups`), its members and the PIAM roles it maps to.
public struct SCIMGroupRecord: Sendable, Hashable {
    /// The group's id (the SCIM `id`).
    public var id: String
    /// The partner root it belongs to.
    public var partner: String
    /// Its name, unique per partner.
    public var displayName: String
    /// The identity provider's id of the group.
    public var externalID: String?
    /// Member user ids, sorted.
    public var members: [String]
    /// The roles the group maps to (maintained by the partner's admin), sorted.
    public var roles: [String]
    /// When SCIM created it.
    public var createdAt: Timestamp
    /// When SCIM last wrote it.
    public var modifiedAt: Timestamp

    /// A record with every field.
    public init(id: String, partner: String, displayName: String, externalID: String?, members: [String], roles: [String],
                createdAt: Timestamp, modifiedAt: Timestamp) {
        self.id = id; self.partner = partner; self.displayName = displayName; self.externalID = externalID
        self.members = members; self.roles = roles; self.createdAt = createdAt; self.modifiedAt = modifiedAt
    }
}

extension Store {
    static let scimUserColumns = "user, partner, user_name, external_id, resource, created_at, modified_at"

    static func scimUserRecord(_ s: Statement) -> SCIMUserRecord {
        SCIMUserRecord(user: s.text(0), partner: s.text(1), userName: s.text(2), externalID: s.optionalText(3), resource: s.text(4),
                       createdAt: s.int64(5), modifiedAt: s.int64(6))
    }

    /// The SCIM record of user `id` (its id, not an alias), or `nil`.
    public func scimUser(_ id: String) throws(PIAMError) -> SCIMUserRecord? {
        let s = try cached("SELECT \(Self.scimUserColumns) FROM scim_users WHERE user = ?1")
        s.bind(1, id)
        defer { s.reset() }
        return try s.step() ? Self.scimUserRecord(s) : nil
    }

    /// The SCIM records of partner `partner`, by user id.
    public func scimUsers(partner: String) throws(PIAMError) -> [SCIMUserRecord] {
        let s = try db.prepare("SELECT \(Self.scimUserColumns) FROM scim_users WHERE partner = ?1 ORDER BY user")
        s.bind(1, partner)
        return try s.rows(Self.scimUserRecord)
    }

    /// Writes (inserts or replaces) a SCIM user record; the user must exist. For the SCIM
    /// endpoint's `finishing` step, inside the transaction of the operations it ran.
    /// - Throws: `conflict` when another user of the partner has that userName.
    public func saveSCIMUser(_ r: SCIMUserRecord) throws(PIAMError) {
        let dup = try cached("SELECT user FROM scim_users WHERE partner = ?1 AND user_name = ?2 COLLATE NOCASE AND user <> ?3")
        dup.bind(1, r.partner); dup.bind(2, r.userName); dup.bind(3, r.user)
        let taken = try dup.step()
        dup.reset()
        if taken { throw PIAMError(.conflict, "userName \"\(r.userName)\" is already provisioned for partner \(r.partner)") }
        let s = try cached("""
            INSERT INTO scim_users(user, partner, user_name, external_id, resource, created_at, modified_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
            ON CONFLICT(user) DO UPDATE SET partner = excluded.partner, user_name = excluded.user_name,
              external_id = excluded.external_id, resource = excluded.resource, modified_at = excluded.modified_at
            """)
        s.bind(1, r.user); s.bind(2, r.partner); s.bind(3, r.userName); s.bind(4, r.externalID); s.bind(5, r.resource)
        s.bind(6, r.createdAt); s.bind(7, r.modifiedAt)
        try s.run()
    }

    // MARK: Groups

    static let scimGroupColumns = "id, partner, display_name, external_id, created_at, modified_at"

    func scimGroupRecord(_ s: Statement) throws(PIAMError) -> SCIMGroupRecord {
        let id = s.text(0)
        let m = try db.prepare("SELECT user FROM scim_group_members WHERE group_id = ?1 ORDER BY user")
        m.bind(1, id)
        let r = try db.prepare("SELECT role FROM scim_group_roles WHERE group_id = ?1 ORDER BY role")
        r.bind(1, id)
        return SCIMGroupRecord(id: id, partner: s.text(1), displayName: s.text(2), externalID: s.optionalText(3),
                               members: try m.rows { $0.text(0) }, roles: try r.rows { $0.text(0) }, createdAt: s.int64(4),
                               modifiedAt: s.int64(5))
    }

    /// One SCIM group, or `nil`.
    public func scimGroup(_ id: String) throws(PIAMError) -> SCIMGroupRecord? {
        let s = try db.prepare("SELECT \(Self.scimGroupColumns) FROM scim_groups WHERE id = ?1")
        s.bind(1, id)
        return try s.step() ? try scimGroupRecord(s) : nil
    }

    /// A partner's SCIM groups, by id.
    public func scimGroups(partner: String) throws(PIAMError) -> [SCIMGroupRecord] {
        let s = try db.prepare("SELECT \(Self.scimGroupColumns) FROM scim_groups WHERE partner = ?1 ORDER BY id")
        s.bind(1, partner)
        var out: [SCIMGroupRecord] = []
        while try s.step() { out.append(try scimGroupRecord(s)) }
        return out
    }

    /// Writes a group (inserting or replacing its name, external id and members; its role
    /// mapping is left as it is). Inside the SCIM endpoint's transaction.
    /// - Throws: `conflict` when another group of the partner has that displayName.
    public func saveSCIMGroup(_ g: SCIMGroupRecord) throws(PIAMError) {
        let dup = try db.prepare("SELECT id FROM scim_groups WHERE partner = ?1 AND display_name = ?2 AND id <> ?3")
        dup.bind(1, g.partner); dup.bind(2, g.displayName); dup.bind(3, g.id)
        if try dup.step() { throw PIAMError(.conflict, "displayName \"\(g.displayName)\" is already a group of partner \(g.partner)") }
        let s = try db.prepare("""
            INSERT INTO scim_groups(id, partner, display_name, external_id, created_at, modified_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
            ON CONFLICT(id) DO UPDATE SET display_name = excluded.display_name, external_id = excluded.external_id,
              modified_at = excluded.modified_at
            """)
        s.bind(1, g.id); s.bind(2, g.partner); s.bind(3, g.displayName); s.bind(4, g.externalID); s.bind(5, g.createdAt)
        s.bind(6, g.modifiedAt)
        try s.run()
        let del = try db.prepare("DELETE FROM scim_group_members WHERE group_id = ?1")
        del.bind(1, g.id)
        try del.run()
        for u in Set(g.members) {
            let ins = try db.prepare("INSERT INTO scim_group_members(group_id, user) VALUES (?1, ?2)")
            ins.bind(1, g.id); ins.bind(2, u)
            try ins.run()
        }
    }

    /// Deletes a group (its members and mapping go with it).
    public func deleteSCIMGroup(_ id: String) throws(PIAMError) {
        let s = try db.prepare("DELETE FROM scim_groups WHERE id = ?1")
        s.bind(1, id)
        try s.run()
    }

    /// Replaces the roles group `id` maps to (the partner admin's mapping).
    public func setSCIMGroupRoles(_ id: String, roles: [String]) throws(PIAMError) {
        let del = try db.prepare("DELETE FROM scim_group_roles WHERE group_id = ?1")
        del.bind(1, id)
        try del.run()
        for r in Set(roles) {
            let ins = try db.prepare("INSERT INTO scim_group_roles(group_id, role) VALUES (?1, ?2)")
            ins.bind(1, id); ins.bind(2, r)
            try ins.run()
        }
    }

    /// The roles user `id` receives through the SCIM groups it is a member of, sorted.
    public func scimGroupRoles(ofUser id: String) throws(PIAMError) -> [String] {
        let s = try db.prepare("""
            SELECT DISTINCT r.role FROM scim_group_members m JOIN scim_group_roles r ON r.group_id = m.group_id
            WHERE m.user = ?1 ORDER BY r.role
            """)
        s.bind(1, id)
        return try s.rows { $0.text(0) }
    }

    /// The assignments of user `id` made by `grantor` at scope `scope`: (role) list, sorted.
    public func assignedRoles(user id: String, grantedBy grantor: String, scope: String) throws(PIAMError) -> [String] {
        let s = try db.prepare("SELECT role FROM assignments WHERE user = ?1 AND granted_by = ?2 AND scope = ?3 ORDER BY role")
        s.bind(1, id); s.bind(2, grantor); s.bind(3, scope)
        return try s.rows { $0.text(0) }
    }
}

extension Store {
    /// The SCIM groups user `id` is a member of: (id, displayName), by id.
    public func scimGroupMemberships(user id: String) throws(PIAMError) -> [(id: String, displayName: String)] {
        let s = try cached("""
            SELECT g.id, g.display_name FROM scim_group_members m JOIN scim_groups g ON g.id = m.group_id WHERE m.user = ?1 ORDER BY g.id
            """)
        s.bind(1, id)
        return try s.rows { ($0.text(0), $0.text(1)) }
    }
}

extension Store {
    /// The roles user `id` receives through its SCIM groups other than `group`, sorted.
    public func scimGroupRoles(ofUser id: String, excluding group: String) throws(PIAMError) -> [String] {
        let s = try db.prepare("""
            SELECT DISTINCT r.role FROM scim_group_members m JOIN scim_group_roles r ON r.group_id = m.group_id
            WHERE m.user = ?1 AND m.group_id <> ?2 ORDER BY r.role
            """)
        s.bind(1, id); s.bind(2, group)
        return try s.rows { $0.text(0) }
    }

    /// The roles user `id` asked for directly through SCIM (its resource's `roles`), sorted.
    public func scimDirectRoles(ofUser id: String) throws(PIAMError) -> [String] {
        guard let rec = try scimUser(id),
              let o = try? JSONSerialization.jsonObject(with: Data(rec.resource.utf8)) as? [String: Any] else { return [] }
        let roles = (o.first { $0.key.lowercased() == "roles" }?.value as? [Any]) ?? []
        return roles.compactMap { ($0 as? [String: Any])?["value"] as? String }.sorted()
    }
}

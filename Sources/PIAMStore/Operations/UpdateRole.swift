import PIAMEngine

extension AdminOperation {
    /// Changes a role (host-only); `nil` keeps a field.
    public static func updateRole(role: String, name: String?, description: String?, permissions: [String]?) -> AdminOperation {
        AdminOperation(AdminOps.UpdateRole(role: role, name: name, description: description, permissions: permissions))
    }
}

extension AdminOps {
    /// `role.update`: a role's name, description or permissions.
    struct UpdateRole: AdministrativeOperation {
        static let name = "role.update"
        var role: String
        var name: String?
        var description: String?
        var permissions: [String]?

        init(role: String, name: String?, description: String?, permissions: [String]?) {
            self.role = role; self.name = name; self.description = description; self.permissions = permissions
        }

        init(reading f: inout FieldReader) throws(PIAMError) {
            self.init(role: try f.id("role"), name: try f.optString("name"), description: try f.optString("description"),
                      permissions: try f.permissions("permissions"))
        }

        func write(to f: inout FieldWriter) {
            f.set("role", role); f.optional("name", name); f.optional("description", description); f.optional("permissions", permissions)
        }

        func target(actor: String) -> String { "role:\(role)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [Self.check(actor, "update", BuiltinType.role, role)]
        }

        /// Roles belong to no partner.
        func auditPartner(actor: String, in store: Store) throws(PIAMError) -> String? { nil }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            guard try s.roleExists(role) else { throw PIAMError(.notFound, "no such role \"\(role)\"") }
            if let name { try s.exec("UPDATE roles SET name = ?2 WHERE id = ?1 AND name IS NOT ?2", role, name) }
            if let description { try s.exec("UPDATE roles SET description = ?2 WHERE id = ?1 AND description IS NOT ?2", role, description) }
            if let permissions {
                try s.exec("UPDATE roles SET permissions = ?2 WHERE id = ?1 AND permissions IS NOT ?2", role,
                           JSONText.array(try s.parsePermissions(permissions)))
            }
            out.message = "updated role \(role)"
        }
    }
}

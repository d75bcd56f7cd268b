import PIAMEngine

extension AdminOperation {
    /// Defines a new role (host-only).
    public static func defineRole(role: String, name: String?, description: String?, permissions: [String]) -> AdminOperation {
        AdminOperation(AdminOps.DefineRole(role: role, name: name, description: description, permissions: permissions))
    }
}

extension AdminOps {
    /// `role.define`: the business's catalogue of roles.
    struct DefineRole: AdministrativeOperation {
        static let name = "role.define"
        var role: String
        var name: String?
        var description: String?
        var permissions: [String]

        init(role: String, name: String?, description: String?, permissions: [String]) {
            self.role = role; self.name = name; self.description = description; self.permissions = permissions
        }

        init(reading f: inout FieldReader) throws(PIAMError) {
            self.init(role: try f.id("role"), name: try f.optString("name"), description: try f.optString("description"),
                      permissions: try f.permissions("permissions") ?? [])
        }

        func write(to f: inout FieldWriter) {
            f.set("role", role); f.optional("name", name); f.optional("description", description); f.set("permissions", permissions)
        }

        func target(actor: String) -> String { "role:\(role)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [Self.check(actor, "define", BuiltinType.role, role)]
        }

        /// Roles belong to no partner.
        func auditPartner(actor: String, in store: Store) throws(PIAMError) -> String? { nil }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            try validateEntityID(role, what: "role id")
            guard try !s.roleExists(role) else { throw PIAMError(.conflict, "role \"\(role)\" already exists (role update changes it)") }
            try s.exec("INSERT INTO roles(id, name, description, permissions) VALUES (?1, ?2, ?3, ?4)",
                       role, name, description, JSONText.array(try s.parsePermissions(permissions)))
            out.message = "defined role \(role)"
        }
    }
}

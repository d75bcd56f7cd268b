import Foundation
import PIAMEngine

extension AdminOperation {
    /// Changes display fields or the end of access. `nil` keeps a field; `.some(nil)` clears it.
    public static func updateUser(user: String, name: String??, email: String??, validUntil: Timestamp??) -> AdminOperation {
        AdminOperation(AdminOps.UpdateUser(user: user, name: name, email: email, validUntil: validUntil))
    }
}

extension AdminOps {
    /// `user.update`: name, email, the end of access.
    struct UpdateUser: AdministrativeOperation {
        static let name = "user.update"
        var user: String
        var name: String??
        var email: String??
        var validUntil: Timestamp??

        init(user: String, name: String??, email: String??, validUntil: Timestamp??) {
            self.user = user; self.name = name; self.email = email; self.validUntil = validUntil
        }

        init(reading f: inout FieldReader) throws(PIAMError) {
            self.init(user: try f.id("user"), name: try f.clearableString("name"),
                      email: try f.clearableString("email"), validUntil: try f.time("valid_until"))
        }

        func write(to f: inout FieldWriter) {
            f.set("user", user); f.clearable("name", name); f.clearable("email", email); f.clearableTime("valid_until", validUntil)
        }

        func target(actor: String) -> String { "user:\(user)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [Self.check(actor, "update", BuiltinType.user, user)]
        }

        /// The last-admin guard when `valid_until` changes (an end of access is a removal to come).
        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            let info = try s.user(user)
            let write = { [name, email, validUntil] () throws in
                if let name { try s.exec("UPDATE users SET name = ?2 WHERE id = ?1 AND name IS NOT ?2", info.id, name) }
                if let email { try s.exec("UPDATE users SET email = ?2 WHERE id = ?1 AND email IS NOT ?2", info.id, email) }
                if let validUntil { try s.exec("UPDATE users SET valid_until = ?2 WHERE id = ?1 AND valid_until IS NOT ?2", info.id, validUntil) }
            }
            if validUntil != nil {
                try s.guardLastAdmin(actor: actor, root: try s.store.partnerRootSQL(info.org), affected: [info.id], removesAffected: false, write: write)
            } else {
                try write()
            }
            out.message = "updated user:\(info.id)"
        }
    }
}

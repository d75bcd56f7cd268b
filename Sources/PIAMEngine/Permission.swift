/// A permission of a role: `TYPE:ACTION` or `TYPE:ACTION:owner` (DESIGN §2).
///
/// `ACTION` may be `*`, standing for every action on `TYPE`. The `:owner` qualifier limits the
/// permission to resources whose owner is the subject itself.
public struct Permission: Sendable, Hashable, CustomStringConvertible, Comparable {
    /// The resource type, e.g. `claim`, or one of the built-in `user`, `org`, `role`.
    public var type: String
    /// The verb, e.g. `read`, or `*`.
    public var action: String
    /// Limited to resources the subject owns.
    public var ownerOnly: Bool

    /// The wildcard action.
    public static let anyAction = "*"

    public init(type: String, action: String, ownerOnly: Bool = false) {
        self.type = type
        self.action = action
        self.ownerOnly = ownerOnly
    }

    /// Parses `TYPE:ACTION` or `TYPE:ACTION:owner`.
    ///
    /// `TYPE` and `ACTION` are 1–64 bytes of letters, digits, `_`, `-` and `.`; `ACTION` may
    /// also be `*`.
    /// - Throws: ``PIAMError`` with code ``PIAMError/Code/invalidInput``.
    public init(parsing text: String) throws(PIAMError) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3 else {
            throw PIAMError(.invalidInput, "permission \"\(text)\" is not TYPE:ACTION or TYPE:ACTION:owner")
        }
        if parts.count == 3 && parts[2] != "owner" {
            throw PIAMError(.invalidInput, "permission \"\(text)\": the only qualifier is \":owner\"")
        }
        let type = String(parts[0])
        let action = String(parts[1])
        guard Permission.isValidName(type) else {
            throw PIAMError(.invalidInput, "permission \"\(text)\": bad type \"\(type)\" (letters, digits, _ - . only)")
        }
        guard action == Permission.anyAction || Permission.isValidName(action) else {
            throw PIAMError(.invalidInput, "permission \"\(text)\": bad action \"\(action)\" (letters, digits, _ - . or *)")
        }
        self.init(type: type, action: action, ownerOnly: parts.count == 3)
    }

    /// The canonical spelling.
    public var description: String { ownerOnly ? "\(type):\(action):owner" : "\(type):\(action)" }

    /// Whether this permission is host-only (DESIGN §2): any on `role`, and `org:approve`,
    /// `org:entitle`. Such a permission takes effect only for host users, whatever roles a
    /// partner user is given.
    ///
    /// `org:*` is *not* host-only: held by a partner user it grants every org action except
    /// `approve` and `entitle` (the check asks whether the requested action is host-only).
    public var isHostOnly: Bool { Permission.isHostOnly(type: type, action: action) }

    /// Whether the action on the type is host-only: any action on `role`, or `approve`/`entitle`
    /// on `org`. (`*` on `org` is not: it stands for the host-only actions only for host users.)
    public static func isHostOnly(type: String, action: String) -> Bool {
        if type == BuiltinType.role { return true }
        if type == BuiltinType.org { return action == "approve" || action == "entitle" }
        return false
    }

    public static func < (lhs: Permission, rhs: Permission) -> Bool {
        (lhs.type, lhs.action, lhs.ownerOnly ? 1 : 0) < (rhs.type, rhs.action, rhs.ownerOnly ? 1 : 0)
    }

    /// Whether `s` is a valid resource type or action name: 1–64 bytes of ASCII letters, digits,
    /// `_`, `-` and `.`.
    public static func isValidName(_ s: String) -> Bool {
        let bytes = s.utf8
        guard !bytes.isEmpty, bytes.count <= 64 else { return false }
        return bytes.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                || b == 0x5F || b == 0x2D || b == 0x2E
        }
    }
}

/// The built-in resource types and their action vocabularies (DESIGN §3).
public enum BuiltinType {
    public static let user = "user"
    public static let org = "org"
    public static let role = "role"

    /// Delegated-administration actions on `org:<O>`, host-only ones included.
    public static let orgActions = [
        "view", "invite_user", "create_suborg", "update", "suspend", "reactivate", "remove",
        "grant_role", "approve", "entitle",
    ]
    /// Delegated-administration actions on `user:<U>`.
    public static let userActions = [
        "view", "update", "suspend", "reactivate", "remove", "assign_role", "revoke_role", "request_role",
    ]
    /// The business's actions on `role:<R>`, all host-only (every role is located at the root):
    /// `define`, `update`, `delete`, and `grant` — hand out R whatever the actor itself holds
    /// (rule 5 of `can_assign`).
    public static let roleActions = ["define", "update", "delete", "grant"]

    /// Whether `type` is one of `user`, `org`, `role` (never registered as graph resources).
    public static func isBuiltin(_ type: String) -> Bool { type == user || type == org || type == role }
}

/// The length every entity id must have, in bytes of UTF-8 (DESIGN §2).
public let entityIDByteLength: ClosedRange<Int> = 1...255

/// The problem with an entity id, or `nil` when it is valid (1–255 bytes of UTF-8).
public func entityIDProblem(_ id: String) -> String? {
    let n = id.utf8.count
    return entityIDByteLength.contains(n) ? nil : "id must be 1-255 bytes of UTF-8, got \(n) bytes"
}

/// Validates an entity id: 1–255 bytes of UTF-8 (DESIGN §2).
public func validateEntityID(_ id: String, what: String) throws(PIAMError) {
    if let problem = entityIDProblem(id) { throw PIAMError(.invalidInput, "\(what) \(problem)") }
}

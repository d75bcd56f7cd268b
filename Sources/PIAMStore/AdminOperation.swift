import Foundation
import PIAMEngine

/// One administrative operation: what `piamctl` performs for `org …`, `user …`, `role …`,
/// `grant`, `request …` and the rest, what ``Store/administer(_:as:now:graph:)`` runs, and one
/// entry of an `apply` file.
///
/// Each operation is decided by the engine for the actor performing it (see
/// <doc:Administration> for the action each one needs) and written in one transaction.
///
/// A value is made with one of the static functions named after the operations
/// (`.suspendUser(user: "bob")`, `.grant(user:role:scope:validUntil:)`, …), or parsed from its
/// `apply` form with ``init(json:path:)``. Each kind of operation is one type of its own, in
/// `Sources/PIAMStore/Operations/`, which owns its name, its JSON form, its target, the
/// engine questions it asks, the store's guards and its write (see
/// <doc:Administration#Adding-an-operation>); this type carries one of them.
public struct AdminOperation: Sendable, Hashable {
    /// The operation itself.
    let base: any AdministrativeOperation

    /// Wraps one operation of a registered type.
    init(_ base: some AdministrativeOperation) {
        assert(Self.isRegistered(type(of: base)), "\(type(of: base)) is not in AdminOperation.registry")
        self.base = base
    }

    public static func == (a: AdminOperation, b: AdminOperation) -> Bool {
        AnyHashable(a.base) == AnyHashable(b.base)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(AnyHashable(base))
    }

    /// The operation's stable name, as in `apply` files and the audit log (`user.suspend`).
    public var name: String { type(of: base).name }

    /// The entity acted on, `TYPE:ID` (`org:acme`, `user:bob`, `role:x`, `request:12`).
    /// `request.create` names the actor's own user record.
    public func target(actor: String) -> String { base.target(actor: actor) }

    // MARK: The registry

    /// Every kind of operation, in the order of ``names``. An operation type that is not listed
    /// here cannot be parsed, and wrapping one is a programming error (an assertion).
    static let registry: [any AdministrativeOperation.Type] = [
        // Partner onboarding.
        AdminOps.RegisterOrg.self, AdminOps.ApproveOrg.self, AdminOps.RejectOrg.self, AdminOps.Entitle.self,
        AdminOps.Unentitle.self,
        // Organizations.
        AdminOps.CreateOrg.self, AdminOps.UpdateOrg.self, AdminOps.SuspendOrg.self, AdminOps.ReactivateOrg.self,
        AdminOps.RemoveOrg.self, AdminOps.MoveOrg.self,
        // People.
        AdminOps.InviteUser.self, AdminOps.ActivateUser.self, AdminOps.ResendInvitation.self,
        AdminOps.RevokeInvitation.self, AdminOps.UpdateUser.self, AdminOps.SuspendUser.self,
        AdminOps.ReactivateUser.self, AdminOps.RemoveUser.self, AdminOps.MoveUser.self, AdminOps.AddAlias.self,
        AdminOps.RemoveAlias.self,
        // Identity namespaces (the business declares them per partner).
        AdminOps.AddNamespace.self, AdminOps.RemoveNamespace.self,
        // Just-in-time creation (the business enables it per partner; piamd asks for it).
        AdminOps.SetJIT.self, AdminOps.ClearJIT.self, AdminOps.CreateJIT.self,
        // SCIM groups' role mapping (the partner's admin maintains it).
        AdminOps.MapSCIMGroup.self, AdminOps.UnmapSCIMGroup.self,
        // Roles and grants.
        AdminOps.DefineRole.self, AdminOps.UpdateRole.self, AdminOps.DeleteRole.self, AdminOps.Grant.self,
        AdminOps.Revoke.self, AdminOps.GrantToOrg.self, AdminOps.RevokeFromOrg.self,
        // Access requests.
        AdminOps.RequestRole.self, AdminOps.ApproveRequest.self, AdminOps.DenyRequest.self,
    ]

    /// Whether `type` is the type registered under its name.
    static func isRegistered(_ type: any AdministrativeOperation.Type) -> Bool {
        registered[type.name].map { ObjectIdentifier($0) == ObjectIdentifier(type) } ?? false
    }

    /// The registered types by name.
    static let registered: [String: any AdministrativeOperation.Type] = {
        var byName: [String: any AdministrativeOperation.Type] = [:]
        for t in registry {
            precondition(byName[t.name] == nil, "two operation types are named \(t.name)")
            byName[t.name] = t
        }
        return byName
    }()

    /// Every operation name, in the order of the registry (onboarding, organizations, people,
    /// roles and grants, access requests).
    public static let names = registry.map { $0.name }
}

/// One kind of administrative operation: everything the store knows about it, in one place.
///
/// A conforming type is the operation's fields (a value type, `Sendable` and `Hashable`) and
/// owns:
/// - its stable ``name`` and its `apply` form: parsing (``init(reading:)``, whose field reads
///   in order decide which error a bad object gets) and rendering (``write(to:)``);
/// - its ``target(actor:)`` and the partner its audit rows are filed under
///   (``auditPartner(actor:in:)``; by default the partner root of the target);
/// - the engine questions it needs answered "allow" (``questions(as:in:)``) — every
///   authorization rule is the engine's;
/// - the store's guards that need no engine (``precheck(as:in:)``, by default none);
/// - the write (``perform(in:actor:out:)``): the state it needs (an org must be pending to be
///   approved, …), the store's own guards inside the transaction (last admin, same partner),
///   and the SQL.
///
/// Register it in ``AdminOperation/registry`` and give it a static function on
/// ``AdminOperation`` to make one; piam-admind needs its HTTP route.
protocol AdministrativeOperation: Sendable, Hashable {
    /// The stable name, as in `apply` files and the audit log (`user.suspend`).
    static var name: String { get }

    /// Parses the fields of the operation's `apply` form (`op` was read; unknown keys are
    /// refused afterwards, so every field must be read, in the order that decides errors).
    init(reading f: inout FieldReader) throws(PIAMError)

    /// Renders the fields of the `apply` form (without `op`): the inverse of ``init(reading:)``.
    func write(to f: inout FieldWriter)

    /// The entity acted on, `TYPE:ID`.
    func target(actor: String) -> String

    /// The engine questions `actor` (as given) needs answered "allow", on the current database.
    func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion]

    /// A refusal the store decides without the engine, before anything else, or `nil`.
    func precheck(as actor: String, in store: Store) throws(PIAMError) -> (reason: String, message: String)?

    /// The partner root the audit row is filed under (`actor`: its user id).
    func auditPartner(actor: String, in store: Store) throws(PIAMError) -> String?

    /// Writes the operation in the session's open transaction, after the engine allowed it;
    /// throws a ``Refusal`` for a store guard, a `PIAMError` for bad input or a conflict.
    func perform(in session: AdminSession, actor: String, out: inout AdminSession.Outcome) throws
}

extension AdministrativeOperation {
    func precheck(as actor: String, in store: Store) throws(PIAMError) -> (reason: String, message: String)? { nil }

    /// The partner root of the target: of the org, or of the user's org.
    func auditPartner(actor: String, in store: Store) throws(PIAMError) -> String? {
        let t = target(actor: actor)
        let id = String(t[t.index(after: t.firstIndex(of: ":")!)...])
        return t.hasPrefix("org:") ? try store.partnerRootSQL(id) : try store.userPartnerRoot(id)
    }

    /// A `check(actor, action, TYPE:ID)` question.
    static func check(_ actor: String, _ action: String, _ type: String, _ id: String) -> AdminQuestion {
        .check(actor: actor, action: action, resource: ResourceRef(type: type, id: id))
    }
}

/// The operation types, one per file in `Sources/PIAMStore/Operations/`.
enum AdminOps {}

extension Store {
    /// The partner root of a user's org (`nil` for a host user or no such user).
    func userPartnerRoot(_ idOrAlias: String) throws(PIAMError) -> String? {
        guard let info = try userRecord(idOrAlias) else { return nil }
        return try partnerRootSQL(info.org)
    }
}

// MARK: JSON (apply files and the audit log's detail)

extension AdminOperation {
    /// The operation as a JSON object: `{"op": NAME, …fields}` with snake_case keys, times in
    /// RFC 3339. The inverse of ``init(json:path:)``.
    public var json: [String: Any] {
        var f = FieldWriter(object: ["op": name])
        base.write(to: &f)
        return f.object
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
        guard let type = Self.registered[op] else {
            throw f.fail("op", "unknown operation \"\(op)\" (one of: \(AdminOperation.names.joined(separator: ", ")))")
        }
        self.init(try type.init(reading: &f))
        try f.finish(allowing: ["as"])
    }
}

/// Builds the JSON object of an operation's `apply` form.
struct FieldWriter {
    var object: [String: Any]

    /// A field that is always present.
    mutating func set(_ key: String, _ value: Any) { object[key] = value }

    /// A field present only when given.
    mutating func optional(_ key: String, _ value: Any?) { if let value { object[key] = value } }

    /// A time present only when given, in RFC 3339.
    mutating func time(_ key: String, _ value: Timestamp?) { if let value { object[key] = RFC3339.format(value) } }

    /// Absent: keep; `null`: clear (or no end); else the value (a time in RFC 3339).
    mutating func clearable(_ key: String, _ value: String??) { if let value { object[key] = value ?? NSNull() } }
    mutating func clearableTime(_ key: String, _ value: Timestamp??) {
        if let value { object[key] = value.map(RFC3339.format) ?? NSNull() }
    }

    /// A flag present only when true.
    mutating func flag(_ key: String, _ value: Bool) { if value { object[key] = true } }

    /// A list present only when not empty.
    mutating func list(_ key: String, _ value: [String]) { if !value.isEmpty { object[key] = value } }
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
        if let n = v as? NSNumber {
            // JSON true and false only (objCType "c"): a number such as 0 or 1 is no boolean.
            guard String(cString: n.objCType) == "c" else { throw fail(key, "must be true or false") }
            return n.boolValue
        }
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
            // Past Int64.max JSON numbers arrive unsigned ("Q"): out of range, not wrapped.
            if type == "Q" || type == "L" {
                guard n.uint64Value <= UInt64(Int64.max) else { throw fail(key, "must be an integer of at most \(Int64.max)") }
                return Int64(n.uint64Value)
            }
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

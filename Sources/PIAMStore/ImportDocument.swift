import Foundation
import PIAMEngine

/// The import/export file (DESIGN §5): one JSON object of optional arrays.
///
/// Optional fields may be left out; unknown keys are an error. Times are RFC 3339 text, kept as
/// written here and parsed by the importer (which reports a bad time with its JSON path).
public struct ImportDocument: Codable, Sendable, Hashable {
    /// An organization. Defaults: `name` = `id`, `kind` = `partner`, `status` = `active`.
    public struct Org: Codable, Sendable, Hashable {
        public var id: String
        public var parent: String?
        public var name: String?
        public var kind: String?
        public var status: String?

        public init(id: String, parent: String? = nil, name: String? = nil, kind: String? = nil, status: String? = nil) {
            self.id = id; self.parent = parent; self.name = name; self.kind = kind; self.status = status
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case id, parent, name, kind, status }

        public init(from decoder: Decoder) throws {
            try rejectUnknownKeys(decoder, CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            id = try c.decode(String.self, forKey: .id)
            parent = try c.decodeIfPresent(String.self, forKey: .parent)
            name = try c.decodeIfPresent(String.self, forKey: .name)
            kind = try c.decodeIfPresent(String.self, forKey: .kind)
            status = try c.decodeIfPresent(String.self, forKey: .status)
        }
    }

    /// A role and its permissions (`TYPE:ACTION` or `TYPE:ACTION:owner`).
    public struct Role: Codable, Sendable, Hashable {
        public var id: String
        public var name: String?
        public var description: String?
        public var permissions: [String]?

        public init(id: String, name: String? = nil, description: String? = nil, permissions: [String]? = nil) {
            self.id = id; self.name = name; self.description = description; self.permissions = permissions
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case id, name, description, permissions }

        public init(from decoder: Decoder) throws {
            try rejectUnknownKeys(decoder, CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            id = try c.decode(String.self, forKey: .id)
            name = try c.decodeIfPresent(String.self, forKey: .name)
            description = try c.decodeIfPresent(String.self, forKey: .description)
            permissions = try c.decodeIfPresent([String].self, forKey: .permissions)
        }
    }

    /// A user. Defaults: `status` = `active`; `aliases` absent = keep the current aliases (merge)
    /// or none (replace).
    public struct User: Codable, Sendable, Hashable {
        public var id: String
        public var org: String
        public var name: String?
        public var email: String?
        public var aliases: [String]?
        public var status: String?
        /// RFC 3339, or `nil` for no end.
        public var validUntil: String?

        public init(id: String, org: String, name: String? = nil, email: String? = nil, aliases: [String]? = nil,
                    status: String? = nil, validUntil: String? = nil) {
            self.id = id; self.org = org; self.name = name; self.email = email; self.aliases = aliases
            self.status = status; self.validUntil = validUntil
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case id, org, name, email, aliases, status
            case validUntil = "valid_until"
        }

        public init(from decoder: Decoder) throws {
            try rejectUnknownKeys(decoder, CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            id = try c.decode(String.self, forKey: .id)
            org = try c.decode(String.self, forKey: .org)
            name = try c.decodeIfPresent(String.self, forKey: .name)
            email = try c.decodeIfPresent(String.self, forKey: .email)
            aliases = try c.decodeIfPresent([String].self, forKey: .aliases)
            status = try c.decodeIfPresent(String.self, forKey: .status)
            validUntil = try c.decodeIfPresent(String.self, forKey: .validUntil)
        }
    }

    /// A registered resource. Default `shared` = false.
    public struct Resource: Codable, Sendable, Hashable {
        public var type: String
        public var id: String
        public var org: String
        public var owner: String?
        public var shared: Bool?
        public var name: String?

        public init(type: String, id: String, org: String, owner: String? = nil, shared: Bool? = nil, name: String? = nil) {
            self.type = type; self.id = id; self.org = org; self.owner = owner; self.shared = shared; self.name = name
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case type, id, org, owner, shared, name }

        public init(from decoder: Decoder) throws {
            try rejectUnknownKeys(decoder, CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            type = try c.decode(String.self, forKey: .type)
            id = try c.decode(String.self, forKey: .id)
            org = try c.decode(String.self, forKey: .org)
            owner = try c.decodeIfPresent(String.self, forKey: .owner)
            shared = try c.decodeIfPresent(Bool.self, forKey: .shared)
            name = try c.decodeIfPresent(String.self, forKey: .name)
        }
    }

    /// The business makes `role` available to `org`'s subtree.
    public struct Entitlement: Codable, Sendable, Hashable {
        public var org: String
        public var role: String

        public init(org: String, role: String) { self.org = org; self.role = role }

        enum CodingKeys: String, CodingKey, CaseIterable { case org, role }

        public init(from decoder: Decoder) throws {
            try rejectUnknownKeys(decoder, CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            org = try c.decode(String.self, forKey: .org)
            role = try c.decode(String.self, forKey: .role)
        }
    }

    /// When a grant was made, as a file gives it (`granted_at`): the three cases differ for an
    /// import, so leaving the key out is not the same as writing `null`.
    public enum GrantedAt: Sendable, Hashable {
        /// The key is left out: a new row, or a row whose grant changes (validity, granter,
        /// sub-orgs), gets the import's time; an unchanged row keeps the time it has.
        case importTime
        /// `null`: unknown (as `export` writes rows from before schema v3); kept unknown.
        case unknown
        /// An RFC 3339 time, kept as written here; the importer parses it (and reports a bad
        /// one with its JSON path).
        case at(String)

        static func decode<K: CodingKey>(_ c: KeyedDecodingContainer<K>, _ key: K) throws -> GrantedAt {
            guard c.contains(key) else { return .importTime }
            if try c.decodeNil(forKey: key) { return .unknown }
            return .at(try c.decode(String.self, forKey: key))
        }

        func encode<K: CodingKey>(_ c: inout KeyedEncodingContainer<K>, _ key: K) throws {
            switch self {
            case .importTime: break
            case .unknown: try c.encodeNil(forKey: key)
            case .at(let t): try c.encode(t, forKey: key)
            }
        }
    }

    /// A role given to one user. Default `scope` = the user's org.
    public struct Assignment: Codable, Sendable, Hashable {
        public var user: String
        public var role: String
        public var scope: String?
        public var validUntil: String?
        /// Who granted it: a user id, of the file or of the database (or the value the
        /// database already records for this row).
        public var grantedBy: String?
        public var grantedAt: GrantedAt

        public init(user: String, role: String, scope: String? = nil, validUntil: String? = nil, grantedBy: String? = nil,
                    grantedAt: GrantedAt = .importTime) {
            self.user = user; self.role = role; self.scope = scope; self.validUntil = validUntil; self.grantedBy = grantedBy
            self.grantedAt = grantedAt
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case user, role, scope
            case validUntil = "valid_until"
            case grantedBy = "granted_by"
            case grantedAt = "granted_at"
        }

        public init(from decoder: Decoder) throws {
            try rejectUnknownKeys(decoder, CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            user = try c.decode(String.self, forKey: .user)
            role = try c.decode(String.self, forKey: .role)
            scope = try c.decodeIfPresent(String.self, forKey: .scope)
            validUntil = try c.decodeIfPresent(String.self, forKey: .validUntil)
            grantedBy = try c.decodeIfPresent(String.self, forKey: .grantedBy)
            grantedAt = try GrantedAt.decode(c, .grantedAt)
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(user, forKey: .user)
            try c.encode(role, forKey: .role)
            try c.encodeIfPresent(scope, forKey: .scope)
            try c.encodeIfPresent(validUntil, forKey: .validUntil)
            try c.encodeIfPresent(grantedBy, forKey: .grantedBy)
            try grantedAt.encode(&c, .grantedAt)
        }
    }

    /// A role given to every member of `org` (and of its sub-orgs with `include_suborgs`).
    public struct OrgGrant: Codable, Sendable, Hashable {
        public var org: String
        public var role: String
        public var includeSuborgs: Bool?
        public var validUntil: String?
        /// Who granted it, as for ``Assignment/grantedBy``.
        public var grantedBy: String?
        public var grantedAt: GrantedAt

        public init(org: String, role: String, includeSuborgs: Bool? = nil, validUntil: String? = nil, grantedBy: String? = nil,
                    grantedAt: GrantedAt = .importTime) {
            self.org = org; self.role = role; self.includeSuborgs = includeSuborgs; self.validUntil = validUntil
            self.grantedBy = grantedBy; self.grantedAt = grantedAt
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case org, role
            case includeSuborgs = "include_suborgs"
            case validUntil = "valid_until"
            case grantedBy = "granted_by"
            case grantedAt = "granted_at"
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(org, forKey: .org)
            try c.encode(role, forKey: .role)
            try c.encodeIfPresent(includeSuborgs, forKey: .includeSuborgs)
            try c.encodeIfPresent(validUntil, forKey: .validUntil)
            try c.encodeIfPresent(grantedBy, forKey: .grantedBy)
            try grantedAt.encode(&c, .grantedAt)
        }

        public init(from decoder: Decoder) throws {
            try rejectUnknownKeys(decoder, CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            org = try c.decode(String.self, forKey: .org)
            role = try c.decode(String.self, forKey: .role)
            includeSuborgs = try c.decodeIfPresent(Bool.self, forKey: .includeSuborgs)
            validUntil = try c.decodeIfPresent(String.self, forKey: .validUntil)
            grantedBy = try c.decodeIfPresent(String.self, forKey: .grantedBy)
            grantedAt = try GrantedAt.decode(c, .grantedAt)
        }
    }

    public var orgs: [Org]
    public var roles: [Role]
    public var users: [User]
    public var resources: [Resource]
    public var entitlements: [Entitlement]
    public var assignments: [Assignment]
    public var orgGrants: [OrgGrant]

    public init(orgs: [Org] = [], roles: [Role] = [], users: [User] = [], resources: [Resource] = [],
                entitlements: [Entitlement] = [], assignments: [Assignment] = [], orgGrants: [OrgGrant] = []) {
        self.orgs = orgs; self.roles = roles; self.users = users; self.resources = resources
        self.entitlements = entitlements; self.assignments = assignments; self.orgGrants = orgGrants
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case orgs, roles, users, resources, entitlements, assignments
        case orgGrants = "org_grants"
    }

    public init(from decoder: Decoder) throws {
        try rejectUnknownKeys(decoder, CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        orgs = try c.decodeIfPresent([Org].self, forKey: .orgs) ?? []
        roles = try c.decodeIfPresent([Role].self, forKey: .roles) ?? []
        users = try c.decodeIfPresent([User].self, forKey: .users) ?? []
        resources = try c.decodeIfPresent([Resource].self, forKey: .resources) ?? []
        entitlements = try c.decodeIfPresent([Entitlement].self, forKey: .entitlements) ?? []
        assignments = try c.decodeIfPresent([Assignment].self, forKey: .assignments) ?? []
        orgGrants = try c.decodeIfPresent([OrgGrant].self, forKey: .orgGrants) ?? []
    }

    /// Decodes a document, turning every decoding error into one line naming the JSON path,
    /// e.g. `users[17].valid_until: expected a string or null`.
    public static func decode(_ data: Data) throws(PIAMError) -> ImportDocument {
        do {
            return try JSONDecoder().decode(ImportDocument.self, from: data)
        } catch let e as DecodingError {
            if case let .dataCorrupted(ctx) = e, ctx.codingPath.isEmpty {
                // A syntax error: JSONSerialization says where.
                do { _ = try JSONSerialization.jsonObject(with: data) } catch {
                    let ns = error as NSError
                    let detail = ns.userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
                    throw PIAMError(.invalidInput, "invalid JSON: \(bounded(detail, limit: 4 * quoteLimit))")
                }
            }
            throw PIAMError(.invalidInput, describe(e))
        } catch {
            throw PIAMError(.invalidInput, "invalid JSON: \(bounded("\(error)", limit: 4 * quoteLimit))")
        }
    }

    /// Reads and decodes a file.
    public static func read(path: String) throws(PIAMError) -> ImportDocument {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw PIAMError(.io, "\(path): cannot read: \(error.localizedDescription)")
        }
        return try decode(data)
    }

    static func path(_ codingPath: [CodingKey]) -> String {
        var s = ""
        for k in codingPath {
            if let i = k.intValue {
                s += "[\(i)]"
            } else {
                if !s.isEmpty { s += "." }
                s += bounded(k.stringValue)  // an unknown key is the file's text
            }
        }
        return s
    }

    static func typeName(_ t: Any.Type) -> String {
        switch t {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is [String].Type: "an array of strings"
        case is Int.Type, is Int64.Type, is Double.Type: "a number"
        default:
            String(describing: t).hasPrefix("Array") ? "an array" : "an object"
        }
    }

    static func describe(_ e: DecodingError) -> String {
        func at(_ ctx: DecodingError.Context) -> String {
            let p = path(ctx.codingPath)
            return p.isEmpty ? "" : p + ": "
        }
        switch e {
        case let .typeMismatch(t, ctx):
            return "\(at(ctx))expected \(typeName(t))"
        case let .valueNotFound(t, ctx):
            return "\(at(ctx))expected \(typeName(t)), found null"
        case let .keyNotFound(key, ctx):
            return "\(path(ctx.codingPath + [key])): missing (required)"
        case let .dataCorrupted(ctx):
            var detail = ctx.debugDescription
            if let u = ctx.underlyingError {
                let ns = u as NSError
                if let d = ns.userInfo[NSDebugDescriptionErrorKey] as? String { detail += " " + d } else { detail += " \(u)" }
            }
            // The decoder's own words may cite the file's text: bounded like a quoted value.
            return "\(at(ctx))\(bounded(detail, limit: 4 * quoteLimit))"
        @unknown default:
            return "\(e)"
        }
    }
}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { self.stringValue = String(intValue); self.intValue = intValue }
}

func rejectUnknownKeys<K: CodingKey & CaseIterable>(_ decoder: Decoder, _: K.Type) throws {
    let c = try decoder.container(keyedBy: AnyKey.self)
    for k in c.allKeys where K(stringValue: k.stringValue) == nil {
        throw DecodingError.dataCorrupted(.init(
            codingPath: c.codingPath + [k], debugDescription: "unknown key \(quoted(k.stringValue))"))
    }
}

// MARK: Quoting values in error messages

/// Bytes of a value an import error quotes (about; the cut falls on a character boundary).
let quoteLimit = 100

/// A value from an import file as every import error message quotes it: in double quotes,
/// whole when it is at most ``quoteLimit`` bytes, else its first bytes up to a character
/// boundary, an ellipsis and the whole value's length — `"aaaa…" (10485760 bytes)`. The one
/// place import errors quote the file's values, so no message grows with its input.
func quoted(_ value: String) -> String {
    let n = value.utf8.count
    guard n > quoteLimit else { return "\"\(value)\"" }
    return "\"\(utf8Prefix(value, quoteLimit))…\" (\(n) bytes)"
}

/// `text` unquoted, cut like ``quoted(_:)`` when longer than `limit` bytes (for a JSON path's
/// keys and the decoder's messages).
func bounded(_ text: String, limit: Int = quoteLimit) -> String {
    let n = text.utf8.count
    guard n > limit else { return text }
    return "\(utf8Prefix(text, limit))… (\(n) bytes)"
}

/// The longest prefix of whole characters of at most `limit` UTF-8 bytes.
private func utf8Prefix(_ s: String, _ limit: Int) -> Substring {
    var end = s.startIndex
    var bytes = 0
    for i in s.indices {
        bytes += s[i].utf8.count
        if bytes > limit { break }
        end = s.index(after: i)
    }
    return s[..<end]
}

import HTTPTypes
import PIAMEngine
import PIAMStore

/// One field of an operation's HTTP form: where it comes from and its JSON type.
public struct APIField: Sendable, Hashable {
    /// The JSON types of the API's fields.
    public enum Kind: String, Sendable, Hashable {
        /// An entity id (1–255 bytes).
        case id
        case string
        /// A string, or `null` to clear it.
        case clearableString
        case bool
        /// An RFC 3339 instant (or `null`: no end).
        case time
        case strings
        case int
        /// A list's `next_cursor` (opaque).
        case cursor
        /// A list's `next_cursor` that is a row number (the audit log, access requests).
        case rowCursor
    }

    public var name: String
    public var kind: Kind
    public var required: Bool
    public var doc: String
    /// The only values a string field takes (its schema's `enum`), when it is so restricted.
    public var values: [String]?
    /// The range an integer field must lie in (its schema's `minimum` and `maximum`).
    public var range: ClosedRange<Int>?

    public init(_ name: String, _ kind: Kind, required: Bool = false, _ doc: String, values: [String]? = nil,
                range: ClosedRange<Int>? = nil) {
        self.name = name
        self.kind = kind
        self.required = required
        self.doc = doc
        self.values = values
        self.range = range
    }
}

/// An administrative operation's HTTP route: the method and path template, and which of the
/// operation's fields (its `apply` form, ``PIAMStore/AdminOperation/init(json:path:)``) come
/// from the path, the query and the body. The generic handler assembles the apply form from
/// them, so an operation's parsing, rules and audit stay in one place: the store.
public struct OperationRoute: Sendable, Hashable {
    public var method: HTTPRequest.Method
    /// The path template, `{name}` for a path parameter (whose field has the same name).
    public var path: String
    /// The operation's name (`user.suspend`).
    public var operation: String
    /// A short summary for the OpenAPI document.
    public var summary: String
    /// The OpenAPI tag.
    public var tag: String
    public var pathFields: [APIField]
    public var queryFields: [APIField]
    public var bodyFields: [APIField]
    /// 201 for operations that create, else 200.
    public var created: Bool

    init(_ method: HTTPRequest.Method, _ path: String, _ operation: String, _ tag: String, _ summary: String,
         path pathFields: [APIField] = [], query: [APIField] = [], body: [APIField] = [], created: Bool = false) {
        self.method = method
        self.path = path
        self.operation = operation
        self.tag = tag
        self.summary = summary
        self.pathFields = pathFields
        self.queryFields = query
        self.bodyFields = body
        self.created = created
    }
}

extension OperationRoute {
    static let prefix = "/admin/v1"

    private static func org(_ doc: String = "The organization's id.") -> APIField { APIField("org", .id, required: true, doc) }
    private static func user(_ doc: String = "The user's id or alias.") -> APIField { APIField("user", .id, required: true, doc) }
    private static func role(_ doc: String = "The role's id.") -> APIField { APIField("role", .id, required: true, doc) }
    private static let requestID = APIField("id", .int, required: true, "The access request's number.")
    private static let note = APIField("note", .string, "A note for the audit log and the requester.")
    private static let validUntil = APIField("valid_until", .time, "When it ends (RFC 3339); absent or null: no end.")

    /// Every administrative operation `piamctl` performs, as an HTTP route.
    public static let all: [OperationRoute] = [
        // Partner onboarding.
        OperationRoute(.post, "\(prefix)/registrations", "org.register", "onboarding",
                       "Register a partner: a pending org and its first admin (invited)",
                       body: [org("The new partner org's id."), APIField("name", .string, "Its display name."),
                              APIField("parent", .id, "Where it goes (default: partners)."),
                              APIField("admin", .id, required: true, "The first admin's user id."),
                              APIField("admin_name", .string, "The admin's display name."),
                              APIField("admin_email", .string, "The admin's email.")], created: true),
        OperationRoute(.post, "\(prefix)/orgs/{org}/approve", "org.approve", "onboarding", "Approve a pending registration",
                       path: [org()], body: [APIField("entitle", .strings, "Roles to entitle in the same transaction.")]),
        OperationRoute(.post, "\(prefix)/orgs/{org}/reject", "org.reject", "onboarding",
                       "Reject a pending registration (removes the org and its people)", path: [org()]),
        OperationRoute(.put, "\(prefix)/orgs/{org}/entitlements/{role}", "entitle", "onboarding",
                       "Make a role available to an org's subtree", path: [org(), role()]),
        OperationRoute(.delete, "\(prefix)/orgs/{org}/entitlements/{role}", "unentitle", "onboarding",
                       "Take an entitlement back", path: [org(), role()]),
        // Organizations.
        OperationRoute(.post, "\(prefix)/orgs", "org.create", "organizations", "Create a sub-organization",
                       body: [org("The new org's id."), APIField("parent", .id, required: true, "Its parent org."),
                              APIField("name", .string, "Its display name."),
                              APIField("kind", .string, "host or partner (default: the parent's).", values: ["host", "partner"])], created: true),
        OperationRoute(.patch, "\(prefix)/orgs/{org}", "org.update", "organizations", "Rename an organization",
                       path: [org()], body: [APIField("name", .string, required: true, "The new display name.")]),
        OperationRoute(.post, "\(prefix)/orgs/{org}/suspend", "org.suspend", "organizations",
                       "Suspend an organization (everyone at or below it is denied)", path: [org()]),
        OperationRoute(.post, "\(prefix)/orgs/{org}/reactivate", "org.reactivate", "organizations",
                       "Reactivate a suspended organization", path: [org()]),
        OperationRoute(.delete, "\(prefix)/orgs/{org}", "org.remove", "organizations", "Remove an organization",
                       path: [org()], query: [APIField("cascade", .bool, "Also remove its sub-orgs, people and resources.")]),
        OperationRoute(.post, "\(prefix)/orgs/{org}/move", "org.move", "organizations", "Move an organization within its partner",
                       path: [org()], body: [APIField("parent", .id, required: true, "The new parent.")]),
        // People.
        OperationRoute(.post, "\(prefix)/users", "user.invite", "people", "Invite a person (status invited)",
                       body: [user("The new user's id."), APIField("org", .id, required: true, "The user's org."),
                              APIField("name", .string, "Display name."), APIField("email", .string, "Email."),
                              APIField("aliases", .strings, "IdP subjects or logins that name the user."), validUntil,
                              APIField("invitation_expires", .time, "When the invitation expires (default: in 7 days, at most valid_until).")],
                       created: true),
        OperationRoute(.post, "\(prefix)/users/{user}/invitation", "invitation.resend", "people",
                       "Send an invited user a new invitation (the open ones are revoked); its secret is in the answer, once",
                       path: [user()], body: [APIField("expires", .time, "When it expires (default: in 7 days).")]),
        OperationRoute(.delete, "\(prefix)/users/{user}/invitation", "invitation.revoke", "people",
                       "Revoke an invited user's open invitations", path: [user()]),
        OperationRoute(.post, "\(prefix)/users/{user}/activate", "user.activate", "people",
                       "Activate an invited user (an administrator's override of the invitation)", path: [user()]),
        OperationRoute(.patch, "\(prefix)/users/{user}", "user.update", "people", "Change a user's name, email or end of access",
                       path: [user()], body: [APIField("name", .clearableString, "Display name (null clears it)."),
                                              APIField("email", .clearableString, "Email (null clears it)."), validUntil]),
        OperationRoute(.post, "\(prefix)/users/{user}/suspend", "user.suspend", "people", "Suspend a user", path: [user()]),
        OperationRoute(.post, "\(prefix)/users/{user}/reactivate", "user.reactivate", "people", "Reactivate a suspended user",
                       path: [user()]),
        OperationRoute(.delete, "\(prefix)/users/{user}", "user.remove", "people", "Remove a user", path: [user()]),
        OperationRoute(.post, "\(prefix)/users/{user}/move", "user.move", "people", "Move a user within its partner",
                       path: [user()], body: [APIField("org", .id, required: true, "The new org.")]),
        OperationRoute(.put, "\(prefix)/users/{user}/aliases/{alias}", "user.alias.add", "people", "Add an alias to a user",
                       path: [user(), APIField("alias", .id, required: true, "The alias (an IdP subject, a login).")]),
        OperationRoute(.delete, "\(prefix)/users/{user}/aliases/{alias}", "user.alias.remove", "people", "Remove an alias",
                       path: [user(), APIField("alias", .id, required: true, "The alias.")]),
        // Identity namespaces (the business declares them per partner root).
        OperationRoute(.put, "\(prefix)/orgs/{org}/namespaces/{namespace}", "namespace.add", "onboarding",
                       "Declare an identity namespace of a partner (the business only): its admins give aliases only inside its namespaces",
                       path: [org("The partner root."),
                              APIField("namespace", .string, required: true,
                                       "An IdP issuer prefix ending with a separator (okta-acme|) or an e-mail domain (@acme.example), percent-encoded.")]),
        OperationRoute(.delete, "\(prefix)/orgs/{org}/namespaces/{namespace}", "namespace.remove", "onboarding",
                       "Withdraw an identity namespace of a partner (the business only)",
                       path: [org("The partner root."), APIField("namespace", .string, required: true, "The namespace, percent-encoded.")]),
        // Just-in-time creation (the business enables it per partner root; piamd asks for it).
        OperationRoute(.put, "\(prefix)/orgs/{org}/jit", "jit.set", "onboarding",
                       "Enable just-in-time creation for a partner (the business only): unknown subjects inside its identity namespaces become active users of jit_org with role",
                       path: [org("The partner root.")],
                       body: [APIField("jit_org", .id, required: true, "The org in the partner's subtree where new people land."),
                              APIField("role", .id, required: true, "The role they get over jit_org (in its ceiling, one the partner's admins could assign).")]),
        OperationRoute(.delete, "\(prefix)/orgs/{org}/jit", "jit.clear", "onboarding",
                       "Switch just-in-time creation off for a partner (the business only)", path: [org("The partner root.")]),
        OperationRoute(.post, "\(prefix)/jit", "jit.create", "people",
                       "Create the user an unknown subject names, just in time (piamd's service user): 200 with the revision, also when it exists",
                       body: [APIField("subject", .id, required: true, "The subject (an alias inside a JIT-enabled partner's identity namespace).")]),
        // SCIM groups' role mapping (a partner's admin; the members' grants follow, made by SCIM).
        OperationRoute(.put, "\(prefix)/scim/groups/{group}/roles/{role}", "scim.group.map", "scim",
                       "Map a partner's SCIM group to a role it may assign: its members receive the role (granted by the partner's SCIM service user through can_assign)",
                       path: [APIField("group", .string, required: true, "The SCIM group's id."), role()]),
        OperationRoute(.delete, "\(prefix)/scim/groups/{group}/roles/{role}", "scim.group.unmap", "scim",
                       "Take a role out of a SCIM group's mapping: the grants it brought are revoked",
                       path: [APIField("group", .string, required: true, "The SCIM group's id."), role()]),
        // Roles.
        OperationRoute(.post, "\(prefix)/roles", "role.define", "roles", "Define a role (the business only)",
                       body: [role("The new role's id."), APIField("name", .string, "Display name."),
                              APIField("description", .string, "What it is for."),
                              APIField("permissions", .strings, "Permissions: type:action[:owner], * wildcards.")],
                       created: true),
        OperationRoute(.patch, "\(prefix)/roles/{role}", "role.update", "roles", "Change a role (the business only)",
                       path: [role()], body: [APIField("name", .string, "Display name."),
                                              APIField("description", .string, "What it is for."),
                                              APIField("permissions", .strings, "The new permission list.")]),
        OperationRoute(.delete, "\(prefix)/roles/{role}", "role.delete", "roles", "Delete a role (the business only)",
                       path: [role()], query: [APIField("force", .bool, "Also revoke its uses.")]),
        // Grants.
        OperationRoute(.post, "\(prefix)/users/{user}/grants", "grant", "grants", "Give a user a role over a scope",
                       path: [user()], body: [role(), APIField("scope", .id, "The org whose subtree it acts over (default: the user's org)."),
                                              validUntil], created: true),
        OperationRoute(.delete, "\(prefix)/users/{user}/grants/{role}", "revoke", "grants", "Take a user's role back",
                       path: [user(), role()], query: [APIField("scope", .id, "The grant's scope (default: the user's org).")]),
        OperationRoute(.post, "\(prefix)/orgs/{org}/grants", "org-grant", "grants", "Give a role to every member of an org",
                       path: [org()], body: [role(), APIField("include_suborgs", .bool, "Also the members of its sub-orgs."), validUntil],
                       created: true),
        OperationRoute(.delete, "\(prefix)/orgs/{org}/grants/{role}", "org-revoke", "grants", "Take an org grant back",
                       path: [org(), role()]),
        // Access requests.
        OperationRoute(.post, "\(prefix)/requests", "request.create", "requests", "Ask for a role for yourself",
                       body: [role(), APIField("scope", .id, "Over which org (default: your org)."), note], created: true),
        OperationRoute(.post, "\(prefix)/requests/{id}/approve", "request.approve", "requests", "Approve an access request",
                       path: [requestID], body: [note]),
        OperationRoute(.post, "\(prefix)/requests/{id}/deny", "request.deny", "requests", "Deny an access request",
                       path: [requestID], body: [note]),
    ]

    /// The apply form of the operation this route performs, from its path parameters, query
    /// items and body. Keys the route does not take are an error naming them.
    func applyForm(path params: [String: String], query: [String: String], body: [String: Any]) throws -> [String: Any] {
        var form: [String: Any] = ["op": operation]
        let allowed = Set(bodyFields.map(\.name))
        for k in body.keys.sorted() where !allowed.contains(k) {
            throw Problem(.badRequest, "invalid_input",
                          allowed.isEmpty ? "this operation takes no body (found \"\(k)\")" : "unknown field \"\(k)\" (takes: \(bodyFields.map(\.name).joined(separator: ", ")))")
        }
        for (k, v) in body { form[k] = v }
        for f in bodyFields where f.kind == .id {
            // Well-formed JSON, against a rule the schema states in characters only: 422.
            if let v = body[f.name] as? String, let problem = entityIDProblem(v) {
                throw Problem(.unprocessableContent, "invalid_input", "\(f.name): \(problem)")
            }
        }
        for f in pathFields {
            guard let v = params[f.name] else { throw Problem(.badRequest, "invalid_input", "missing path parameter \(f.name)") }
            // An id no entity can have (over 255 bytes of UTF-8) names nothing.
            if f.kind == .id, entityIDProblem(v) != nil { throw Problem.notFound("\(f.name) \"\(v.prefix(64))…\"") }
            form[f.name] = v
        }
        for f in queryFields {
            guard let v = query[f.name] else { continue }
            switch f.kind {
            case .id:
                if let problem = entityIDProblem(v) { throw Problem(.unprocessableContent, "invalid_input", "query \(f.name): \(problem)") }
                form[f.name] = v
            case .bool:
                guard v == "true" || v == "false" else { throw Problem(.badRequest, "invalid_input", "query \(f.name): true or false, not \"\(v)\"") }
                form[f.name] = v == "true"
            default: form[f.name] = v
            }
        }
        return form
    }
}

/// A read of the API (`GET`): the table the router and the OpenAPI document are built from.
public struct ReadRoute: Sendable, Hashable {
    public enum Name: String, Sendable, Hashable {
        case me, orgs, org, orgGrants, users, user, userGrants, roles, requests, audit, scimGroups, findings, usagePartners, usagePartner,
             usageUser, openapi
    }
    public var name: Name
    public var path: String
    public var tag: String
    public var summary: String
    public var pathFields: [APIField]
    public var queryFields: [APIField]
    /// The response's schema in the OpenAPI document's components.
    public var schema: String
    /// Whether it needs authentication.
    public var authenticated = true

    static let pageFields = [
        APIField("limit", .int, "Page size (1 to the configured maximum; default 100)."),
        APIField("cursor", .cursor, "next_cursor of the previous page."),
    ]
    static let rowPageFields = [
        APIField("limit", .int, "Page size (1 to the configured maximum; default 100)."),
        APIField("cursor", .rowCursor, "next_cursor of the previous page."),
    ]

    public static let all: [ReadRoute] = {
        let p = OperationRoute.prefix
        let org = APIField("org", .id, required: true, "The organization's id.")
        let user = APIField("user", .id, required: true, "The user's id or alias.")
        let usageFeatures = APIField("features", .int, "Features listed at most (default 20).", range: 1...1000)
        return [
            ReadRoute(name: .me, path: "\(p)/me", tag: "me", summary: "Who am I, and what may I do",
                      pathFields: [], queryFields: [], schema: "Me"),
            ReadRoute(name: .orgs, path: "\(p)/orgs", tag: "organizations", summary: "The organizations I may view",
                      pathFields: [], queryFields: pageFields, schema: "OrgPage"),
            ReadRoute(name: .org, path: "\(p)/orgs/{org}", tag: "organizations", summary: "One organization",
                      pathFields: [org], queryFields: [], schema: "OrgDetail"),
            ReadRoute(name: .orgGrants, path: "\(p)/orgs/{org}/grants", tag: "grants", summary: "An organization's org grants",
                      pathFields: [org], queryFields: [], schema: "OrgGrantPage"),
            ReadRoute(name: .users, path: "\(p)/users", tag: "people", summary: "The people I may view",
                      pathFields: [], queryFields: [APIField("org", .id, "Only the people of this org (not its sub-orgs).")] + pageFields,
                      schema: "UserPage"),
            ReadRoute(name: .user, path: "\(p)/users/{user}", tag: "people", summary: "One person",
                      pathFields: [user], queryFields: [], schema: "UserDetail"),
            ReadRoute(name: .userGrants, path: "\(p)/users/{user}/grants", tag: "grants",
                      summary: "A person's holdings and effective permissions", pathFields: [user], queryFields: [], schema: "UserGrants"),
            ReadRoute(name: .roles, path: "\(p)/roles", tag: "roles", summary: "The roles I may view",
                      pathFields: [], queryFields: pageFields, schema: "RolePage"),
            ReadRoute(name: .requests, path: "\(p)/requests", tag: "requests", summary: "Access requests I may see",
                      pathFields: [], queryFields: [APIField("status", .string, "pending, approved or denied.", values: ["pending", "approved", "denied"])] + rowPageFields,
                      schema: "RequestPage"),
            ReadRoute(name: .audit, path: "\(p)/audit", tag: "audit", summary: "The audit log I may read, newest first",
                      pathFields: [], queryFields: rowPageFields, schema: "AuditPage"),
            ReadRoute(name: .scimGroups, path: "\(p)/orgs/{org}/scim-groups", tag: "scim",
                      summary: "A partner's SCIM groups, their members and the roles each maps to",
                      pathFields: [org], queryFields: [], schema: "SCIMGroupPage"),
            ReadRoute(name: .findings, path: "\(p)/findings", tag: "findings",
                      summary: "Access that should no longer exist, each with the operation that removes it (those I may perform)",
                      pathFields: [], queryFields: [APIField("days", .int, "The dormancy window in days (default 90).", range: 0...36_500),
                                                    APIField("kind", .string, "Only findings of this kind.",
                                                             values: Finding.Kind.allCases.map(\.rawValue))]
                        + rowPageFields,
                      schema: "FindingPage"),
            ReadRoute(name: .usagePartners, path: "\(p)/usage/partners", tag: "usage",
                      summary: "Partners I may view ranked by activity: people active over 30 and 7 days, then decisions",
                      pathFields: [], queryFields: rowPageFields, schema: "UsagePartnerPage"),
            ReadRoute(name: .usagePartner, path: "\(p)/usage/partners/{org}", tag: "usage",
                      summary: "One partner's people by status, active people over 1/7/30/90 days and most used features",
                      pathFields: [APIField("org", .id, required: true, "The partner (its root org's id).")],
                      queryFields: [usageFeatures], schema: "UsagePartner"),
            ReadRoute(name: .usageUser, path: "\(p)/usage/users/{user}", tag: "usage",
                      summary: "One person's last activity, most used features and each holding with its last use",
                      pathFields: [user], queryFields: [usageFeatures], schema: "UsageUser"),
            ReadRoute(name: .openapi, path: "\(p)/openapi.json", tag: "meta", summary: "This document",
                      pathFields: [], queryFields: [], schema: "OpenAPI", authenticated: false),
        ]
    }()
}

/// Every route of the API as (method, template), and which methods a concrete path has: a
/// path the API knows asked with another method is a 405 with `Allow`, not a 404.
enum APIRoutes {
    static let all: [(method: String, template: [Substring])] = {
        var r = OperationRoute.all.map { ($0.method.rawValue, $0.path.split(separator: "/")) }
        r += ReadRoute.all.map { ("GET", $0.path.split(separator: "/")) }
        for extra in ["operations", "apply", "what-if", "invitations/accept"] {
            r.append(("POST", "\(OperationRoute.prefix)/\(extra)".split(separator: "/")))
        }
        for method in ["GET", "POST"] { r.append((method, AdminAPI.scimTokensPath.split(separator: "/"))) }
        r.append(("DELETE", (AdminAPI.scimTokensPath + "/{id}").split(separator: "/")))
        r += ReviewRoutes.all.map { ($0.method, $0.path.split(separator: "/")) }
        return r
    }()

    /// The methods the API answers on `path` (empty: no such path).
    static func methods(matching path: String) -> [String] {
        let parts = path.split(separator: "/")
        var out: Set<String> = []
        for (method, template) in all where template.count == parts.count {
            if zip(template, parts).allSatisfy({ t, p in t.hasPrefix("{") || t == p }) { out.insert(method) }
        }
        return out.sorted()
    }
}

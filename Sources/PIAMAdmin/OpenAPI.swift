import Foundation
import PIAMStore

/// The OpenAPI 3.1 document of the administration API, built from the same route tables the
/// router is built from (``OperationRoute/all``, ``ReadRoute/all``). The repository commits
/// it as `Docs/openapi/admin-v1.json` (`piam-admind openapi` prints it); a test keeps the two
/// equal, and the service serves it at `/admin/v1/openapi.json`.
public enum OpenAPIDocument {
    /// The document as pretty-printed JSON text with sorted keys and a final newline.
    public static let text: String = {
        let d = (try? JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: d, as: UTF8.self) + "\n"
    }()

    static func schema(_ f: APIField) -> [String: Any] {
        var s: [String: Any]
        switch f.kind {
        case .id: s = ["type": "string", "minLength": 1, "maxLength": 255]
        case .string: s = f.values.map { ["type": "string", "enum": $0] } ?? ["type": "string"]
        case .clearableString: s = ["type": ["string", "null"]]
        case .bool: s = ["type": "boolean"]
        case .time: s = ["type": ["string", "null"], "format": "date-time"]
        case .strings where f.name == "permissions":
            s = ["type": "array", "items": ["type": "string", "pattern": "^[A-Za-z0-9_.-]+:([A-Za-z0-9_.-]+|\\*)(:owner)?$"]]
        case .strings: s = ["type": "array", "items": ["type": "string"]]
        case .int: s = f.range.map { ["type": "integer", "minimum": $0.lowerBound, "maximum": $0.upperBound] } ?? ["type": "integer", "format": "int64"]
        case .cursor: s = ["type": "string", "pattern": "^(c1([2-7][0-9a-f])+)?$"]
        case .rowCursor: s = ["type": "string", "pattern": "^([0-9]{1,18})?$"]
        }
        s["description"] = f.doc
        return s
    }

    /// A body field's schema: an optional one may also be `null` (the same as absent).
    static func bodySchema(_ f: APIField) -> [String: Any] {
        var s = schema(f)
        guard !f.required else { return s }
        if let t = s["type"] as? String {
            s["type"] = [t, "null"]
        } else if let t = s["type"] as? [String], !t.contains("null") {
            s["type"] = t + ["null"]
        }
        if s["enum"] != nil { s["enum"] = (s["enum"] as! [Any]) + [NSNull()] }
        return s
    }

    static func parameters(_ route: (path: [APIField], query: [APIField])) -> [[String: Any]] {
        route.path.map { ["name": $0.name, "in": "path", "required": true, "description": $0.doc, "schema": schema($0)] }
            + route.query.map { f -> [String: Any] in
                var s = schema(f)
                if f.name == "limit" { s["minimum"] = 1; s["maximum"] = APISettings().maxPageSize }
                return ["name": f.name, "in": "query", "required": false, "description": f.doc, "schema": s]
            }
    }

    static func ref(_ name: String) -> [String: Any] { ["$ref": "#/components/schemas/\(name)"] }

    static func json(_ schema: String, _ description: String) -> [String: Any] {
        ["description": description, "content": ["application/json": ["schema": ref(schema)]]]
    }

    static var problem: [String: Any] { [
        "description": "An error (RFC 9457) carrying PIAM's reason code: 400 invalid input, 401 unauthenticated, 403 refused (with the engine's reason), 404 no such id or not yours to see, 409 conflict, 412 If-Match failed, 413 too large, 415 not JSON, 422 bulk run refused or Idempotency-Key reused.",
        "content": ["application/problem+json": ["schema": ref("Problem")]],
    ] }

    static var idempotencyKey: [String: Any] { [
        "name": "Idempotency-Key", "in": "header", "required": false,
        "description": "A retried request with the same key (per user) gets the first answer, and acts once.",
        "schema": ["type": "string", "minLength": 1, "maxLength": 255],
    ] }

    static var ifMatch: [String: Any] { [
        "name": "If-Match", "in": "header", "required": false,
        "description": "An ETag this API gave (\"REVISION\"): act only while the database is at that revision, else 412 (empty: no condition).",
        "schema": ["type": "string", "pattern": "^((W/)?\"[0-9]{1,18}\")?$"],
    ] }

    static var paths: [String: Any] {
        var paths: [String: [String: Any]] = [:]
        for r in OperationRoute.all {
            var op: [String: Any] = [
                "operationId": r.operation.replacingOccurrences(of: ".", with: "_").replacingOccurrences(of: "-", with: "_"),
                "summary": r.summary, "tags": [r.tag],
                "description": "Performs the administrative operation `\(r.operation)` for the authenticated user, decided by the engine and audited.",
                "parameters": parameters((r.pathFields, r.queryFields)) + (r.method == .post ? [idempotencyKey] : []) + [ifMatch],
                "responses": [r.created ? "201" : "200": json("AdminResult", "Done; the revision it produced (use it as min_revision on piamd)."),
                              "default": problem],
            ]
            if !r.bodyFields.isEmpty {
                let required = r.bodyFields.filter(\.required).map(\.name)
                var body: [String: Any] = ["type": "object", "additionalProperties": false,
                                           "properties": Dictionary(uniqueKeysWithValues: r.bodyFields.map { ($0.name, bodySchema($0)) })]
                if !required.isEmpty { body["required"] = required }
                op["requestBody"] = ["required": !required.isEmpty, "content": ["application/json": ["schema": body]]]
            }
            paths[r.path, default: [:]][r.method.rawValue.lowercased()] = op
        }
        paths["\(OperationRoute.prefix)/operations", default: [:]]["post"] = [
            "operationId": "operation", "summary": "Perform one operation in its apply form ({\"op\": NAME, …})", "tags": ["bulk"],
            "parameters": [idempotencyKey, ifMatch],
            "requestBody": ["required": true, "content": ["application/json": ["schema": ref("Operation")]]],
            "responses": ["200": json("AdminResult", "Done."), "default": problem],
        ] as [String: Any]
        paths["\(OperationRoute.prefix)/apply", default: [:]]["post"] = [
            "operationId": "apply", "summary": "Perform a list of operations as one transaction: all or nothing", "tags": ["bulk"],
            "parameters": [idempotencyKey, ifMatch],
            "requestBody": ["required": true, "content": ["application/json": ["schema": ["oneOf": [
                ["type": "object", "additionalProperties": false, "required": ["operations"],
                 "properties": ["operations": ["type": "array", "items": ref("Operation")]]] as [String: Any],
                ["type": "array", "items": ref("Operation"), "description": "The operations alone (an apply file's form)."],
            ]] as [String: Any]]]],
            "responses": ["200": json("ApplyResult", "Every operation done, committed."), "default": problem],
        ] as [String: Any]
        paths["\(OperationRoute.prefix)/what-if", default: [:]]["post"] = [
            "operationId": "what_if", "summary": "What a list of operations would do: decided as apply decides, nothing written", "tags": ["bulk"],
            "description": "The body of apply. Every operation is decided by the engine and performed in a transaction that is rolled back (no audit row). The answer lists each operation's outcome and, per person the change can touch and the caller may view, the permissions gained and lost over which scope. As for apply, an operation that is refused or fails makes the answer a 422 problem carrying every operation's result (results, would_commit false): a real run would commit nothing, so nobody gains or loses.",
            "requestBody": ["required": true, "content": ["application/json": ["schema": ["oneOf": [
                ["type": "object", "additionalProperties": false, "required": ["operations"],
                 "properties": ["operations": ["type": "array", "items": ref("Operation")]]] as [String: Any],
                ["type": "array", "items": ref("Operation"), "description": "The operations alone (an apply file's form)."],
            ]] as [String: Any]]]],
            "responses": ["200": json("WhatIfResult", "What would happen; nothing was written."), "default": problem],
        ] as [String: Any]
        let review: [String: Any] = ["name": "review", "in": "path", "required": true, "description": "The campaign's number.",
                                     "schema": ["type": "integer", "minimum": 1]]
        let rp = ReviewRoutes.prefix
        paths[rp, default: [:]]["post"] = [
            "operationId": "create_review", "tags": ["reviews"],
            "summary": "Start an access review campaign (the business: entitle on the partner, or on the root org)",
            "description": "Freezes every assignment in the scope at the current revision, each with its last use, a recommendation (revoke when unused for days) and its reviewers (the admins the engine allows to revoke it).",
            "requestBody": ["required": true, "content": ["application/json": ["schema": [
                "type": "object", "additionalProperties": false, "required": ["name", "scope", "due", "no_answer"],
                "properties": ["name": ["type": "string", "minLength": 1, "maxLength": 200],
                               "scope": ["type": "string", "enum": ["all_partners", "partner", "role"]],
                               "scope_id": ["type": "string", "minLength": 1, "maxLength": 255, "description": "The partner root org, or the role."],
                               "due": ["type": "string", "format": "date-time"],
                               "no_answer": ["type": "string", "enum": ReviewCampaign.NoAnswer.allCases.map(\.rawValue)],
                               "days": ["type": "integer", "minimum": 0, "maximum": 36500]],
            ] as [String: Any]]]],
            "responses": ["201": json("ReviewResult", "Created."), "default": problem],
        ] as [String: Any]
        paths[rp, default: [:]]["get"] = [
            "operationId": "get_reviews", "tags": ["reviews"], "summary": "The review campaigns",
            "responses": ["200": json("ReviewPage", "OK."), "default": problem],
        ] as [String: Any]
        paths["\(rp)/{review}/items", default: [:]]["get"] = [
            "operationId": "get_review_items", "tags": ["reviews"], "summary": "The items of a campaign I may decide",
            "parameters": [review] + parameters(([], ReadRoute.rowPageFields)),
            "responses": ["200": json("ReviewItemPage", "OK."), "default": problem],
        ] as [String: Any]
        paths["\(rp)/{review}/items/{item}/decision", default: [:]]["post"] = [
            "operationId": "decide_review_item", "tags": ["reviews"],
            "summary": "Keep or revoke one item, with a comment (revoke is the revoke operation, decided by the rules)",
            "parameters": [review, ["name": "item", "in": "path", "required": true, "description": "The item's number.",
                                    "schema": ["type": "integer", "minimum": 1]] as [String: Any]],
            "requestBody": ["required": true, "content": ["application/json": ["schema": [
                "type": "object", "additionalProperties": false, "required": ["decision"],
                "properties": ["decision": ["type": "string", "enum": ["keep", "revoke"]], "comment": ["type": "string"]],
            ] as [String: Any]]]],
            "responses": ["200": json("ReviewResult", "Decided."), "default": problem],
        ] as [String: Any]
        paths["\(rp)/{review}/close", default: [:]]["post"] = [
            "operationId": "close_review", "tags": ["reviews"],
            "summary": "Close a campaign, applying its no-answer policy; revocations need confirm_revocations (else 409 with the count)",
            "parameters": [review],
            "requestBody": ["required": false, "content": ["application/json": ["schema": [
                "type": "object", "additionalProperties": false,
                "properties": ["confirm_revocations": ["type": "integer", "minimum": 0, "maximum": 1_000_000_000]],
            ] as [String: Any]]]],
            "responses": ["200": json("ReviewResult", "Closed."), "default": problem],
        ] as [String: Any]
        paths["\(rp)/{review}/report", default: [:]]["get"] = [
            "operationId": "get_review_report", "tags": ["reviews"], "summary": "A campaign's completion per partner",
            "parameters": [review],
            "responses": ["200": json("ReviewReport", "OK."), "default": problem],
        ] as [String: Any]
        paths["\(OperationRoute.prefix)/invitations/accept", default: [:]]["post"] = [
            "operationId": "accept_invitation", "tags": ["people"],
            "summary": "Accept an invitation: activate the invited user and bind an IdP identity as its alias",
            "description": "The invitation's secret is the credential. When the request is also authenticated (a JWT or the proxy's header) as an identity that names no user yet, that identity is the one bound.",
            "security": [[:], ["bearer": []], ["proxyHeader": []]] as [Any],
            "requestBody": ["required": true, "content": ["application/json": ["schema": [
                "type": "object", "additionalProperties": false, "required": ["token"],
                "properties": ["token": ["type": "string", "minLength": 1, "description": "The invitation's secret."],
                               "identity": ["type": "string", "minLength": 1, "maxLength": 255,
                                            "description": "The IdP identity to bind (an alias)."]],
            ] as [String: Any]]]],
            "responses": ["200": json("AdminResult", "The user is active."), "default": problem],
        ] as [String: Any]
        // SCIM tokens (the business manages each partner's; the SCIM endpoint itself,
        // /scim/v2/orgs/{partner}/, describes itself through SCIM's own discovery).
        let tokenOrg: [String: Any] = ["name": "org", "in": "path", "required": true, "description": "The partner root.",
                                       "schema": ["type": "string", "minLength": 1, "maxLength": 255]]
        paths[AdminAPI.scimTokensPath, default: [:]]["post"] = [
            "operationId": "create_scim_token", "tags": ["scim"],
            "summary": "Create a SCIM token for a partner (the business only; at most two live per partner); its secret is in the answer, once",
            "parameters": [tokenOrg],
            "requestBody": ["required": true, "content": ["application/json": ["schema": [
                "type": "object", "additionalProperties": false, "required": ["roles"],
                "properties": ["roles": ["type": "array", "minItems": 1,
                                         "items": ["type": "string", "minLength": 1, "maxLength": 255],
                                         "description": "The roles of the partner's SCIM service user over its root (each in the partner's ceiling)."],
                               "expires": ["type": ["string", "null"], "format": "date-time", "description": "When it stops working (absent: never)."]],
            ] as [String: Any]]]],
            "responses": ["201": json("SCIMToken", "Created; secret shown once."), "default": problem],
        ] as [String: Any]
        paths[AdminAPI.scimTokensPath, default: [:]]["get"] = [
            "operationId": "list_scim_tokens", "tags": ["scim"], "summary": "A partner's SCIM tokens (never their secrets; the business only)",
            "parameters": [tokenOrg], "responses": ["200": json("SCIMTokenList", "OK."), "default": problem],
        ] as [String: Any]
        paths[AdminAPI.scimTokensPath + "/{id}", default: [:]]["delete"] = [
            "operationId": "revoke_scim_token", "tags": ["scim"], "summary": "Revoke a partner's SCIM token (the business only)",
            "parameters": [tokenOrg, ["name": "id", "in": "path", "required": true, "description": "The token's id.",
                                      "schema": ["type": "integer", "format": "int64"]] as [String: Any]],
            "responses": ["200": json("SCIMToken", "Revoked."), "default": problem],
        ] as [String: Any]
        for r in ReadRoute.all {
            var op: [String: Any] = [
                "operationId": "get_\(r.name.rawValue)", "summary": r.summary, "tags": [r.tag],
                "responses": ["200": json(r.schema, "OK."), "default": problem],
            ]
            let params = parameters((r.pathFields, r.queryFields))
            if !params.isEmpty { op["parameters"] = params }
            if !r.authenticated { op["security"] = [] as [Any] }
            paths[r.path, default: [:]]["get"] = op
        }
        return paths
    }

    static var string: [String: Any] { ["type": "string"] }
    static var nullableString: [String: Any] { ["type": ["string", "null"]] }
    static var integer: [String: Any] { ["type": "integer"] }
    static var boolean: [String: Any] { ["type": "boolean"] }
    static var strings: [String: Any] { ["type": "array", "items": ["type": "string"]] }

    /// One operation's apply form: `op` and every field of its route.
    static func applyForm(_ r: OperationRoute) -> [String: Any] {
        let fields = r.pathFields + r.queryFields + r.bodyFields
        var properties: [String: Any] = ["op": ["const": r.operation]]
        for f in fields { properties[f.name] = bodySchema(f) }
        return ["type": "object", "additionalProperties": false, "properties": properties,
                "required": ["op"] + fields.filter(\.required).map(\.name), "title": r.operation]
    }

    static func object(_ properties: [String: Any], required: [String]? = nil) -> [String: Any] {
        ["type": "object", "properties": properties, "required": required ?? properties.keys.sorted()]
    }

    static func page(_ item: String) -> [String: Any] {
        object(["items": ["type": "array", "items": ref(item)], "next_cursor": nullableString, "revision": integer])
    }

    static var schemas: [String: Any] {
        let org = object(["id": string, "parent": nullableString, "name": string, "kind": string, "status": string, "partner": nullableString])
        let user = object(["id": string, "org": string, "name": nullableString, "email": nullableString, "aliases": strings,
                           "status": string, "valid_until": nullableString, "partner": nullableString])
        var orgDetail = org
        var orgProps = org["properties"] as! [String: Any]
        orgProps["entitlements"] = strings
        orgProps["revision"] = integer
        orgDetail["properties"] = orgProps
        orgDetail["required"] = orgProps.keys.sorted()
        var userDetail = user
        var userProps = user["properties"] as! [String: Any]
        userProps["revision"] = integer
        userDetail["properties"] = userProps
        userDetail["required"] = userProps.keys.sorted()
        let permission = object(["permission": string, "scope": string, "via": strings])
        return [
            "Problem": object(["type": string, "title": string, "status": integer, "detail": string, "code": string]),
            "AdminResult": object(["operation": string, "target": string, "actor": string, "allowed": boolean, "reason": string,
                                   "message": string, "changed": boolean, "revision": integer, "details": strings,
                                   "request_id": integer, "invitation_token": string, "invitation_expires": string],
                                  required: ["operation", "target", "actor", "allowed", "reason", "message", "changed", "revision"]),
            "ApplyResult": object(["batch": string, "committed": boolean, "previous_revision": integer, "revision": integer,
                                   "results": ["type": "array", "items": ["type": "object"]]]),
            "ReviewCampaign": object(["id": integer, "name": string, "scope": string, "scope_id": nullableString, "due": string,
                                      "no_answer": string, "days": integer, "status": string, "revision": integer,
                                      "created_by": string, "created_at": string, "closed_by": nullableString, "closed_at": nullableString]),
            "ReviewPage": page("ReviewCampaign"),
            "ReviewItem": object(["id": integer, "campaign": integer, "user": string, "org": string, "partner": nullableString,
                                  "role": string, "scope": string, "granted_by": nullableString, "granted_at": nullableString,
                                  "last_use": nullableString, "recommendation": string, "reviewers": strings, "decision": nullableString,
                                  "decided_by": nullableString, "decided_at": nullableString, "comment": nullableString,
                                  "outcome": nullableString]),
            "ReviewItemPage": page("ReviewItem"),
            "ReviewResult": object(["campaign": integer, "message": string, "details": strings, "revision": integer]),
            "ReviewReport": object(["campaign": ref("ReviewCampaign"), "revision": integer,
                                    "partners": ["type": "array", "items": object(["partner": nullableString, "items": integer,
                                                                                   "decided": integer, "kept": integer, "revoked": integer,
                                                                                   "recommended_revoke": integer,
                                                                                   "percent_decided": integer])]]),
            "Finding": object(["kind": ["type": "string", "enum": Finding.Kind.allCases.map(\.rawValue)], "user": nullableString,
                               "org": string, "partner": nullableString, "source": string, "role": string, "scope": string,
                               "grant_org": string, "last_use": nullableString, "since": string, "granted_by": nullableString,
                               "granted_at": nullableString, "message": string, "remedy": ref("Operation")],
                              required: ["kind", "user", "org", "partner", "last_use", "message", "remedy"]),
            "FindingPage": page("Finding"),
            "UsageFeature": object(["feature": string, "people": integer, "allowed": integer, "denied": integer,
                                    "last_allowed": nullableString]),
            "UsagePartnerActivity": object(["partner": string, "active_30d": integer, "active_7d": integer, "allowed": integer,
                                            "denied": integer, "last_activity": nullableString]),
            "UsagePartnerPage": page("UsagePartnerActivity"),
            "UsagePartner": object(["partner": string, "users_by_status": ["type": "object", "additionalProperties": integer],
                                    "active": object(["1d": integer, "7d": integer, "30d": integer, "90d": integer]),
                                    "features": ["type": "array", "items": ref("UsageFeature")], "revision": integer]),
            "UsageUser": object(["user": string, "partner": nullableString, "status": string, "last_activity": nullableString,
                                 "features": ["type": "array", "items": ref("UsageFeature")],
                                 "holdings": ["type": "array", "items": object(["source": string, "role": string, "scope": string,
                                                                                "grant_org": nullableString, "state": string,
                                                                                "uses": integer, "last_used": nullableString])],
                                 "revision": integer]),
            "WhatIfResult": object(["would_commit": boolean, "revision": integer, "considered": integer, "hidden": integer,
                                    "seconds": ["type": "number"],
                                    "results": ["type": "array", "items": ["type": "object"]],
                                    "people": ["type": "array", "items": object(["user": string, "org": string,
                                                                                 "gained": ["type": "array", "items": permission],
                                                                                 "lost": ["type": "array", "items": permission]])]]),
            "Operation": ["oneOf": OperationRoute.all.map(applyForm),
                          "description": "An operation in its apply form: op plus the fields of its route (path, query and body fields together)."],
            "Org": org, "OrgDetail": orgDetail, "OrgPage": page("Org"),
            "User": user, "UserDetail": userDetail, "UserPage": page("User"),
            "OrgGrant": object(["org": string, "role": string, "include_suborgs": boolean, "valid_until": nullableString,
                                "granted_by": nullableString, "granted_at": nullableString]),
            "OrgGrantPage": page("OrgGrant"),
            "Holding": object(["source": string, "role": string, "scope": string, "org_grant": nullableString,
                               "include_suborgs": ["type": ["boolean", "null"]], "valid_until": nullableString,
                               "state": string, "permissions": strings]),
            "UserGrants": object(["user": string, "items": ["type": "array", "items": ref("Holding")],
                                  "effective": ["type": "array", "items": permission], "revision": integer, "next_cursor": ["type": "null"]]),
            "Role": object(["id": string, "name": nullableString, "description": nullableString, "permissions": strings]),
            "RolePage": page("Role"),
            "Request": object(["id": integer, "user": string, "role": string, "scope": string, "note": nullableString, "status": string,
                               "created_at": string, "decided_by": nullableString, "decided_at": nullableString,
                               "decision_note": nullableString]),
            "RequestPage": page("Request"),
            "AuditEntry": object(["id": integer, "at": string, "actor": string, "operation": string, "target": string,
                                  "partner": nullableString, "actor_partner": nullableString, "decision": string, "reason": string,
                                  "message": nullableString, "revision": integer, "batch": nullableString,
                                  "credential": nullableString, "detail": ["type": ["object", "null"]]]),
            "AuditPage": page("AuditEntry"),
            "Me": object(["user": string, "name": nullableString, "email": nullableString, "org": string, "org_path": strings,
                          "partner": nullableString, "host": boolean, "status": string, "state": string, "credential": string,
                          "org_actions": strings, "user_actions": strings, "permissions": ["type": "array", "items": permission], "revision": integer]),
            "OpenAPI": ["type": "object"],
            "SCIMToken": object(["id": integer, "partner": string, "service_user": string, "status": string, "created_at": string,
                                 "created_by": nullableString, "expires_at": nullableString, "revoked_at": nullableString,
                                 "last_used_at": nullableString, "endpoint": string, "secret": string, "secret_note": string],
                                required: ["id", "partner", "service_user", "status", "created_at", "endpoint"]),
            "SCIMTokenList": object(["items": ["type": "array", "items": ref("SCIMToken")]]),
            "SCIMGroup": object(["id": string, "display_name": string, "external_id": nullableString, "members": strings, "roles": strings]),
            "SCIMGroupPage": page("SCIMGroup"),
        ]
    }

    static var document: [String: Any] {
        [
            "openapi": "3.1.0",
            "info": [
                "title": "PIAM administration API", "version": "1.0.0",
                "description": "piam-admind: every administrative operation of PIAM, decided by the engine for the authenticated user and audited. Errors are application/problem+json with PIAM's reason code; ids of another partner answer 404; lists are cursor-paged; every write answers with the revision it produced (ETag), usable as min_revision on piamd.",
            ] as [String: Any],
            "servers": [["url": "/"]],
            "security": [["bearer": []], ["proxyHeader": []]] as [Any],
            "paths": paths,
            "components": [
                "schemas": schemas,
                "securitySchemes": [
                    "bearer": ["type": "http", "scheme": "bearer",
                               "description": "A PIAM API token (piam_…, piamctl token create) or a JWT from the configured identity provider."],
                    "proxyHeader": ["type": "apiKey", "in": "header", "name": "X-Forwarded-User",
                                    "description": "The identity the business's reverse proxy authenticated (the configured header; trusted only on the listeners configured to trust it)."],
                ] as [String: Any],
            ] as [String: Any],
        ]
    }
}

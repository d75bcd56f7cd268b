import Foundation

/// The SCIM schemas PIAM publishes, and its discovery documents (RFC 7643 §5–7).
enum SCIMSchemas {
    static let user = "urn:ietf:params:scim:schemas:core:2.0:User"
    static let group = "urn:ietf:params:scim:schemas:core:2.0:Group"
    static let enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    static let role = "urn:piam:params:scim:schemas:2.0:Role"
    static let listResponse = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
    static let error = "urn:ietf:params:scim:api:messages:2.0:Error"
    static let serviceProviderConfig = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
    static let resourceType = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
    static let schema = "urn:ietf:params:scim:schemas:core:2.0:Schema"

    /// The extension schemas a User may carry.
    static let extensions = [enterprise]

    /// The multi-valued attributes of a User and a Group (lowercased).
    static let userMultiValued: Set<String> = ["emails", "roles", "groups", "phonenumbers"]
    static let groupMultiValued: Set<String> = ["members"]

    // MARK: Attribute definitions

    static func attr(_ name: String, _ type: String = "string", multi: Bool = false, required: Bool = false, caseExact: Bool = false,
                     mutability: String = "readWrite", returned: String = "default", uniqueness: String = "none",
                     description: String, sub: [[String: Any]] = [], canonical: [String]? = nil,
                     referenceTypes: [String]? = nil) -> [String: Any] {
        var a: [String: Any] = ["name": name, "type": type, "multiValued": multi, "description": description, "required": required,
                                "caseExact": caseExact, "mutability": mutability, "returned": returned, "uniqueness": uniqueness]
        if !sub.isEmpty { a["subAttributes"] = sub }
        if let canonical { a["canonicalValues"] = canonical }
        if let referenceTypes { a["referenceTypes"] = referenceTypes }
        return a
    }

    static func userAttributes(roles: [String]) -> [[String: Any]] { [
        attr("userName", required: true, uniqueness: "server",
             description: "Unique within the partner; becomes an alias of the user inside the partner's identity namespaces."),
        attr("externalId", caseExact: true, description: "The identity provider's id of the user; becomes an alias inside the partner's namespaces."),
        attr("name", "complex", description: "The person's name.", sub: [
            attr("formatted", description: "The full name."), attr("familyName", description: "Family name."),
            attr("givenName", description: "Given name."),
        ]),
        attr("displayName", description: "The name shown for the user (PIAM's user name)."),
        attr("active", "boolean", required: true,
             description: "false suspends the user (reversible, its grants are kept); true reactivates it. Every PIAM user has a status: absent on creation means true, absent on replacement keeps it, and it cannot be removed."),
        attr("emails", "complex", multi: true, description: "E-mail addresses; the primary (else work, else first) is PIAM's e-mail.", sub: [
            attr("value", description: "The address."), attr("type", description: "work, home or other.", canonical: ["work", "home", "other"]),
            attr("primary", "boolean", description: "The primary address."),
        ]),
        attr("roles", "complex", multi: true,
             description: "PIAM roles held over the user's org; adding one is a grant through can_assign (ceiling, scope, no escalation). See the Roles endpoint.",
             sub: [attr("value", description: "The role's id: one of the canonical values, those this partner's SCIM token may hand out.",
                        canonical: roles),
                   attr("display", description: "The role's name."),
                   attr("type", description: "Always piam."), attr("primary", "boolean", description: "Ignored.")]),
        attr("groups", "complex", multi: true, mutability: "readOnly", description: "The SCIM groups the user is a member of.", sub: [
            attr("value", mutability: "readOnly", description: "The group's id."),
            attr("display", mutability: "readOnly", description: "The group's displayName."),
            attr("$ref", "reference", mutability: "readOnly", description: "The group's URI.", referenceTypes: ["Group"]),
        ]),
    ] }

    static var groupAttributes: [[String: Any]] { [
        attr("displayName", required: true, uniqueness: "server", description: "Unique within the partner."),
        attr("externalId", caseExact: true, description: "The identity provider's id of the group."),
        attr("members", "complex", multi: true,
             description: "Member users; each member receives the PIAM roles the partner's admin mapped to the group.",
             sub: [attr("value", mutability: "immutable", description: "The user's id."),
                   attr("display", mutability: "readOnly", description: "The user's displayName."),
                   attr("$ref", "reference", mutability: "immutable", description: "The user's URI.", referenceTypes: ["User"]),
                   attr("type", mutability: "immutable", description: "User.", canonical: ["User"])]),
    ] }

    static var enterpriseAttributes: [[String: Any]] { [
        attr("employeeNumber", description: "Kept as given."), attr("department", description: "Kept as given."),
        attr("organization", description: "Kept as given."),
    ] }

    static func schemaDocument(_ id: String, _ name: String, _ description: String, _ attributes: [[String: Any]], base: String) -> [String: Any] {
        ["schemas": [schema], "id": id, "name": name, "description": description, "attributes": attributes,
         "meta": ["resourceType": "Schema", "location": "\(base)/Schemas/\(id)"]]
    }

    static func schemas(base: String, roles: [String]) -> [[String: Any]] {
        [schemaDocument(user, "User", "A partner's person", userAttributes(roles: roles), base: base),
         schemaDocument(group, "Group", "A partner's group, mapped to PIAM roles", groupAttributes, base: base),
         schemaDocument(enterprise, "EnterpriseUser", "Enterprise attributes (kept as given)", enterpriseAttributes, base: base)]
    }

    static func resourceTypes(base: String) -> [[String: Any]] {
        [["schemas": [resourceType], "id": "User", "name": "User", "endpoint": "/Users", "description": "A partner's person",
          "schema": user, "schemaExtensions": [["schema": enterprise, "required": false]],
          "meta": ["resourceType": "ResourceType", "location": "\(base)/ResourceTypes/User"]],
         ["schemas": [resourceType], "id": "Group", "name": "Group", "endpoint": "/Groups", "description": "A partner's group",
          "schema": group, "meta": ["resourceType": "ResourceType", "location": "\(base)/ResourceTypes/Group"]]]
    }

    static func serviceProviderConfig(base: String) -> [String: Any] {
        ["schemas": [serviceProviderConfig],
         "documentationUri": "https://github.com/piam/piam#scim",
         "patch": ["supported": true],
         "bulk": ["supported": false, "maxOperations": 0, "maxPayloadSize": 0],
         "filter": ["supported": true, "maxResults": 1000],
         "changePassword": ["supported": false],
         "sort": ["supported": false],
         "etag": ["supported": true],
         "authenticationSchemes": [["type": "oauthbearertoken", "name": "Bearer token",
                                    "description": "A SCIM token of the partner (piamctl scim token create), in Authorization: Bearer.",
                                    "primary": true]],
         "meta": ["resourceType": "ServiceProviderConfig", "location": "\(base)/ServiceProviderConfig"]]
    }
}

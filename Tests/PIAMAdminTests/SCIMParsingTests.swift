import Foundation
@testable import PIAMAdmin
import Testing

/// SCIM filters and PATCH, in process: the shapes real clients send.
@Suite("SCIM filters and PATCH")
struct SCIMParsingTests {
    let user: [String: Any] = [
        "id": "u1", "userName": "Jane@Acme.example", "externalId": "00u1", "active": true,
        "name": ["givenName": "Jane", "familyName": "Doe"],
        "emails": [["value": "jane@acme.example", "type": "work", "primary": true], ["value": "j@home.example", "type": "home"]],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": ["department": "Claims"],
    ]

    func matches(_ f: String) throws -> Bool { try SCIMFilter.parse(f).matches(user) }

    @Test func filtersMatchAsRFC7644Says() throws {
        #expect(try matches(#"userName eq "jane@acme.EXAMPLE""#), "userName is caseExact false")
        #expect(try !matches(#"externalId eq "00U1""#), "externalId is caseExact")
        #expect(try matches(#"emails[type eq "work"].value eq "jane@acme.example""#))
        #expect(try !matches(#"emails[type eq "home"].value eq "jane@acme.example""#))
        #expect(try matches(#"emails[type eq "work" and primary eq true]"#))
        #expect(try matches(#"userName sw "jane" and (name.familyName co "oe" or active eq false)"#))
        #expect(try matches(#"not (active eq false) and externalId pr and title pr or id eq "u1""#))
        #expect(try matches(#"urn:ietf:params:scim:schemas:core:2.0:User:userName ew ".example""#))
        #expect(try matches(#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "claims""#))
        #expect(try matches(#"emails.value eq "j@home.example""#))
        #expect(try matches(#"userName ne "bob""#))
        for bad in [#"userName zz "x""#, #"userName eq"#, #"(userName eq "x""#, #"userName eq "x" junk"#, #"emails[type eq "work""#, #"userName eq "x"#] {
            #expect(throws: SCIMError.self, "\(bad)") { try SCIMFilter.parse(bad) }
        }
        do {
            _ = try SCIMFilter.parse(#"userName zz "x""#)
        } catch let e as SCIMError {
            #expect(e.status == .badRequest && e.scimType == "invalidFilter")
        }
    }

    func patched(_ ops: [[String: Any]], _ r: [String: Any]? = nil) throws -> [String: Any] {
        var out = r ?? user
        try SCIMPatch.apply(ops, to: &out, multiValued: SCIMSchemas.userMultiValued)
        return out
    }

    @Test func patchAcceptsWhatOktaAndEntraSend() throws {
        // PascalCase, "False", no path with an object value, dotted and URN keys.
        var r = try patched([["op": "Replace", "path": "active", "value": "False"]])
        #expect(r["active"] as? String == "False")
        #expect(try SCIMAPI.bool(r["active"], "active") == false)
        r = try patched([["op": "replace", "value": ["active": false, "name.givenName": "Janet",
                                                     "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Sales"]]])
        #expect(r["active"] as? Bool == false && (r["name"] as? [String: Any])?["givenName"] as? String == "Janet")
        #expect((r["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] as? [String: Any])?["department"] as? String == "Sales")
        // A value path, updating the matching element; creating one when none matches.
        r = try patched([["op": "Replace", "path": #"emails[type eq "work"].value"#, "value": "janet@acme.example"]])
        #expect(((r["emails"] as? [[String: Any]]) ?? []).first?["value"] as? String == "janet@acme.example")
        r = try patched([["op": "replace", "path": #"emails[type eq "work"].value"#, "value": "x@acme.example"]], ["userName": "u"])
        #expect((r["emails"] as? [[String: Any]])?.first.map { $0["type"] as? String == "work" && $0["value"] as? String == "x@acme.example" } == true)
        // Roles as JSON text (Entra ID), added to the list.
        r = try patched([["op": "Add", "path": "roles", "value": #"[{"value":"claims-viewer","primary":false}]"#]])
        #expect(((r["roles"] as? [Any]) ?? []).count == 1 && SCIMAPI.roleID((r["roles"] as! [Any])[0]) == "claims-viewer")
        #expect(SCIMAPI.roleID(["value": #"{"id":"x","value":"claims-viewer"}"#]) == "claims-viewer")
        // Removing an element by filter; removing a whole attribute; remove needs a path.
        r = try patched([["op": "remove", "path": #"emails[type eq "home"]"#]])
        #expect((r["emails"] as? [Any])?.count == 1)
        r = try patched([["op": "remove", "path": "name.familyName"]])
        #expect((r["name"] as? [String: Any])?["familyName"] == nil)
        #expect(throws: SCIMError.self) { try patched([["op": "remove"]]) }
        #expect(throws: SCIMError.self) { try patched([["op": "move", "path": "active", "value": true]]) }
        #expect(throws: SCIMError.self) { try SCIMPatch.operations(["schemas": [SCIMPatch.schema]]) }
    }

    @Test func groupMembershipShapesOfOktaAndEntra() throws {
        let group: [String: Any] = ["displayName": "G", "members": [["value": "a"], ["value": "b"]]]
        func apply(_ ops: [[String: Any]]) throws -> [String] {
            var g = group
            try SCIMPatch.apply(ops, to: &g, multiValued: SCIMSchemas.groupMultiValued)
            return ((g["members"] as? [Any]) ?? []).compactMap(SCIMPatch.elementKey)
        }
        #expect(try apply([["op": "add", "path": "members", "value": [["value": "c"], ["value": "a"]]]]) == ["a", "b", "c"])
        #expect(try apply([["op": "Remove", "path": "members", "value": [["value": "a"]]]]) == ["b"])
        #expect(try apply([["op": "remove", "path": #"members[value eq "b"]"#]]) == ["a"])
        #expect(try apply([["op": "replace", "path": "members", "value": [["value": "z"]]]]) == ["z"])
        #expect(try apply([["op": "replace", "value": ["id": "g1", "displayName": "H"]]]) == ["a", "b"])
    }

    @Test func listQueriesReadTheFormAsClientsSendIt() throws {
        let q = SCIMAPI.ListQuery.form("filter=userName+eq+%22a%2Bb%40x.example%22&StartIndex=2&count=5")
        #expect(q["filter"] == #"userName eq "a+b@x.example""# && q["startIndex"] == "2" && q["count"] == "5")
        #expect(SCIMAPI.methods(matching: "/scim/v2/orgs/acme/Users/u1") == ["DELETE", "GET", "PATCH", "PUT"])
        #expect(SCIMAPI.methods(matching: "/scim/v2/orgs/acme/ServiceProviderConfig") == ["GET"])
        #expect(SCIMAPI.methods(matching: "/scim/v2/orgs/acme/Users/.search") == ["POST"])
        #expect(SCIMAPI.methods(matching: "/scim/v2/orgs/acme/Nope").isEmpty)
    }
}

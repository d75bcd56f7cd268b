import Foundation
import PIAMAdmin
import PIAMClient
import PIAMDemo
import PIAMEngine
import PIAMStore
import Testing

/// The delegation scenario with SCIM set up as the business would: identity namespaces for
/// both partners, and a SCIM token for each (acme's service user holds partner-admin and
/// claims-viewer over acme; globex's partner-admin).
struct SCIMSetup {
    let fixture: Fixture
    let acme: String
    let acmeToken: SCIMTokenInfo
    let globex: String

    init() throws {
        fixture = try Fixture.delegation()
        let store = try Store(path: fixture.db)
        for (org, ns) in [("acme", "okta-acme|"), ("acme", "@acme.example"), ("globex", "okta-globex|")] {
            let r = try store.administer(.addNamespace(org: org, namespace: ns), as: "nina")
            precondition(r.allowed, r.message)
        }
        let a = try store.createSCIMToken(partner: "acme", roles: ["partner-admin", "claims-viewer"], createdBy: "nina")
        acme = a.secret
        acmeToken = a.info
        globex = try store.createSCIMToken(partner: "globex", roles: ["partner-admin"], createdBy: "nina").secret
    }
}

extension AdmindProcess {
    /// A SCIM request to `/scim/v2/orgs/PARTNER` + `path` with a bearer token, as IdPs send it.
    func scim(_ method: String, _ partner: String, _ path: String, token: String?, body: Any? = nil,
              headers: [String: String] = [:]) throws -> HTTPReply {
        var h = headers
        if let token { h["Authorization"] = "Bearer \(token)" }
        var bytes: [UInt8] = []
        if let body {
            bytes = Array(try JSONSerialization.data(withJSONObject: body))
            h["Content-Type"] = "application/scim+json"
        }
        return try httpRequest(tcp, method, "/scim/v2/orgs/\(partner)\(path)", headers: h, body: bytes)
    }
}

extension HTTPReply {
    var scimType: String? { json?["scimType"] as? String }
    var code: String? { header("X-PIAM-Error-Code") }
    var resources: [[String: Any]] { (json?["Resources"] as? [[String: Any]]) ?? [] }
}

@Suite("SCIM 2.0 provisioning in piam-admind (the real processes)", .serialized)
struct SCIMTests {
    static let patchSchema = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

    static func patch(_ ops: [[String: Any]]) -> [String: Any] { ["schemas": [patchSchema], "Operations": ops] }

    /// Users end to end: create (aliases inside the namespaces), read, filter, paging, ETags,
    /// PUT, PATCH in its tolerated shapes, errors in RFC 7644's format, DELETE — and piamd denies
    /// a deprovisioned user on the next check carrying the SCIM write's revision.
    @Test func usersLifecycleAndPiamdSeesTheDeprovisioningAtItsRevision() async throws {
        let s = try SCIMSetup()
        let f = s.fixture
        let piamd = try await DaemonProcess(f, env: ["PIAMD_RELOAD_POLL_MS": "50", "PIAMD_CONSISTENCY_TIMEOUT_MS": "5000"])
        defer { Task { await piamd.stop() } }
        let admind = try await AdmindProcess(f)
        defer { Task { await admind.stop() } }

        let config = try admind.scim("GET", "acme", "/ServiceProviderConfig", token: s.acme)
        #expect(config.status == 200 && config.header("Content-Type") == "application/scim+json", "\(config)")
        #expect((config.json?["patch"] as? [String: Any])?["supported"] as? Bool == true)
        #expect(try admind.scim("GET", "acme", "/ResourceTypes", token: s.acme).resources.count == 2)
        #expect(try admind.scim("GET", "acme", "/Schemas", token: s.acme).resources.count == 3)

        let created = try admind.scim("POST", "acme", "/Users", token: s.acme, body: [
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "dana@acme.example", "externalId": "00u-dana",
            "name": ["givenName": "Dana", "familyName": "Reyes"], "emails": [["value": "dana@acme.example", "type": "work", "primary": true]],
        ])
        #expect(created.status == 201, "\(created)")
        let id = try #require(created.json?["id"] as? String)
        #expect(created.header("Location") == "/scim/v2/orgs/acme/Users/\(id)")
        let etag = try #require(created.header("ETag"))
        #expect(etag.hasPrefix("W/\"") && (created.json?["meta"] as? [String: Any])?["version"] as? String == etag)
        // The user is a PIAM user of acme, active, its identifiers aliases inside acme's namespaces.
        let store = try Store(path: f.db, readOnly: true)
        let user = try #require(try store.user(idOrAlias: "dana@acme.example"))
        #expect(user.id == id && user.org == "acme" && user.status == .active && user.name == "Dana Reyes" && user.email == "dana@acme.example")
        #expect(Set(user.aliases) == ["dana@acme.example", "okta-acme|00u-dana"], "\(user.aliases)")
        // Audited as the SCIM service user with the token's credential.
        let audit = try store.auditLog(AuditFilter(limit: 10)).filter { $0.operation == "user.invite" }.last
        #expect(audit?.actor == "scim.acme" && audit?.credential == s.acmeToken.credential, "\(String(describing: audit))")

        // Filters: eq, and, the e-mail value path; paging.
        _ = try admind.scim("POST", "acme", "/Users", token: s.acme, body: ["userName": "erin@acme.example", "active": false])
        for filter in ["userName eq \"DANA@acme.example\"", "externalId eq \"00u-dana\"", "emails[type eq \"work\"].value eq \"dana@acme.example\"",
                       "userName eq \"dana@acme.example\" and active eq true"] {
            let q = filter.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let r = try admind.scim("GET", "acme", "/Users?filter=\(q)", token: s.acme)
            #expect(r.status == 200 && r.json?["totalResults"] as? Int == 1 && r.resources.first?["id"] as? String == id, "\(filter): \(r)")
        }
        let page = try admind.scim("GET", "acme", "/Users?startIndex=2&count=1", token: s.acme)
        #expect(page.json?["totalResults"] as? Int == 2 && page.json?["itemsPerPage"] as? Int == 1 && page.json?["startIndex"] as? Int == 2)
        let bad = try admind.scim("GET", "acme", "/Users?filter=userName%20zz%20%22x%22", token: s.acme)
        #expect(bad.status == 400 && bad.scimType == "invalidFilter" && (bad.json?["schemas"] as? [String])?.first?.hasSuffix(":Error") == true, "\(bad)")
        #expect(try admind.scim("GET", "globex", "/Users", token: s.globex).json?["totalResults"] as? Int == 0, "globex sees none of acme's")

        // ETags: a stale If-Match is 412; the current one works.
        let stale = try admind.scim("PATCH", "acme", "/Users/\(id)", token: s.acme, body: Self.patch([["op": "replace", "path": "displayName", "value": "D"]]),
                                    headers: ["If-Match": "W/\"0000000000000000\""])
        #expect(stale.status == 412, "\(stale)")
        let renamed = try admind.scim("PATCH", "acme", "/Users/\(id)", token: s.acme,
                                      body: Self.patch([["op": "Replace", "path": "name.familyName", "value": "Reyes-Ortiz"],
                                                        ["op": "replace", "path": "displayName", "value": "Dana Reyes-Ortiz"]]),
                                      headers: ["If-Match": etag])
        #expect(renamed.status == 200 && renamed.header("ETag") != etag, "\(renamed)")
        #expect(try Store(path: f.db, readOnly: true).user(idOrAlias: id)?.name == "Dana Reyes-Ortiz")

        // A userName outside the namespaces is qualified into the partner's issuer prefix —
        // never someone else's identity.
        let outside = try admind.scim("POST", "acme", "/Users", token: s.acme, body: ["userName": "nina@northwind.example"])
        #expect(outside.status == 201, "\(outside)")
        let oid = try #require(outside.json?["id"] as? String)
        #expect(try Store(path: f.db, readOnly: true).user(idOrAlias: "okta-acme|nina@northwind.example")?.id == oid)
        #expect(try Store(path: f.db, readOnly: true).user(idOrAlias: "nina@northwind.example") == nil)
        let dup = try admind.scim("POST", "acme", "/Users", token: s.acme, body: ["userName": "Dana@acme.example"])
        #expect(dup.status == 409 && dup.scimType == "uniqueness", "\(dup)")
        let missing = try admind.scim("POST", "acme", "/Users", token: s.acme, body: ["name": ["givenName": "X"]])
        #expect(missing.status == 400 && missing.scimType == "invalidValue", "\(missing)")

        // Deprovisioning: active "False" suspends; piamd denies at the write's revision.
        let c = try await piamd.client()
        let probe = CheckRequest(subject: "dana@acme.example", action: "view", resource: ResourceRef(type: "org", id: "acme"))
        #expect(try await c.check(probe, minRevision: try Store(path: f.db, readOnly: true).revision()).value.allowed)
        let off = try admind.scim("PATCH", "acme", "/Users/\(id)", token: s.acme, body: Self.patch([["op": "Replace", "path": "active", "value": "False"]]))
        #expect(off.status == 200 && off.json?["active"] as? Bool == false, "\(off)")
        let revision = try #require(off.header("X-PIAM-Revision").flatMap { Int64($0) })
        let denied = try await c.check(probe, minRevision: revision)
        #expect(denied.revision >= revision && !denied.value.allowed && denied.value.reason == .subjectInactive, "\(denied)")
        #expect(try Store(path: f.db, readOnly: true).assignments(user: id).isEmpty == true)
        // Reversible: active true reactivates.
        let on = try admind.scim("PATCH", "acme", "/Users/\(id)", token: s.acme, body: Self.patch([["op": "replace", "value": ["active": true]]]))
        #expect(on.status == 200 && on.json?["active"] as? Bool == true, "\(on)")
        let back = try await c.check(probe, minRevision: try #require(on.header("X-PIAM-Revision").flatMap { Int64($0) }))
        #expect(back.value.allowed, "\(back)")
        // PUT replaces: a new externalId moves its alias.
        let put = try admind.scim("PUT", "acme", "/Users/\(id)", token: s.acme, body: [
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "dana@acme.example", "externalId": "00u-dana-2",
            "displayName": "Dana R.", "active": true,
        ])
        #expect(put.status == 200, "\(put)")
        let after = try #require(try Store(path: f.db, readOnly: true).user(idOrAlias: id))
        #expect(Set(after.aliases) == ["dana@acme.example", "okta-acme|00u-dana-2"] && after.name == "Dana R.", "\(after)")
        // DELETE removes; the id is then 404, in SCIM's format.
        let del = try admind.scim("DELETE", "acme", "/Users/\(id)", token: s.acme)
        #expect(del.status == 204, "\(del)")
        let gone = try admind.scim("GET", "acme", "/Users/\(id)", token: s.acme)
        #expect(gone.status == 404 && gone.json?["status"] as? String == "404", "\(gone)")
        let removed = try await c.check(probe, minRevision: try #require(del.header("X-PIAM-Revision").flatMap { Int64($0) }))
        #expect(removed.value.reason == .unknownSubject)
        await c.close()
    }

    /// Isolation: another partner's token, a token of a suspended partner, an expired and a
    /// revoked token, and another partner's user ids — each refused as it should be, and audited.
    @Test func tokensAreIsolatedAndEveryRefusalIsAudited() async throws {
        let s = try SCIMSetup()
        let f = s.fixture
        let store = try Store(path: f.db)
        let now = AdminAPI.now()
        let expiring = try store.createSCIMToken(partner: "globex", roles: ["partner-admin"], expires: now + 1500, createdBy: "nina")
        let revoked = try store.createSCIMToken(partner: "acme", roles: ["partner-admin", "claims-viewer"], createdBy: "nina")
        try store.revokeSCIMToken(id: revoked.info.id, revokedBy: "nina")
        let admind = try await AdmindProcess(f)
        defer { Task { await admind.stop() } }
        let dana = try admind.scim("POST", "acme", "/Users", token: s.acme, body: ["userName": "dana@acme.example"])
        let danaID = try #require(dana.json?["id"] as? String)

        func lastSCIMAudit() throws -> AuditEntry? {
            try Store(path: f.db, readOnly: true).auditLog(AuditFilter(limit: 50)).last { $0.operation == "scim.auth" }
        }
        // Partner A's token on partner B's endpoint: 404 (B's endpoint looks like none), audited.
        let cross = try admind.scim("GET", "globex", "/Users", token: s.acme)
        #expect(cross.status == 404 && cross.code == "not_found", "\(cross)")
        #expect(try lastSCIMAudit().map { $0.reason == "out_of_scope" && $0.decision == "refused" && $0.actor == "scim.acme" } == true)
        // Another partner's user id on one's own endpoint: 404 like a missing one.
        #expect(try admind.scim("GET", "globex", "/Users/\(danaID)", token: s.globex).status == 404)
        #expect(try admind.scim("PATCH", "globex", "/Users/\(danaID)", token: s.globex,
                                body: Self.patch([["op": "replace", "value": ["active": false]]])).status == 404)
        #expect(try admind.scim("DELETE", "globex", "/Users/gus", token: s.globex).status == 404, "a user not provisioned by SCIM")
        #expect(try Store(path: f.db, readOnly: true).user(idOrAlias: danaID)?.status == .active)
        // No token, an unknown one, a revoked one: 401.
        #expect(try admind.scim("GET", "acme", "/Users", token: nil).status == 401)
        #expect(try admind.scim("GET", "acme", "/Users", token: "piamscim_nope").status == 401)
        let rev = try admind.scim("GET", "acme", "/Users", token: revoked.secret)
        #expect(rev.status == 401 && rev.header("WWW-Authenticate") != nil, "\(rev)")
        #expect(try lastSCIMAudit().map { $0.reason == "token_revoked" } == true)
        // An admin API token is no SCIM token, nor the reverse.
        #expect(try admind.scim("GET", "acme", "/Users", token: try store.createToken(user: "ann", name: "portal", createdBy: "nina").secret).status == 401)
        #expect(try admind.call("GET", "/admin/v1/me", bearer: s.acme).status == 401)
        // Expired: wait for the expiry (a deadline, not a sleep as synchronisation).
        let deadline = ContinuousClock.now + .seconds(30)
        var expired = try admind.scim("GET", "globex", "/Users", token: expiring.secret)
        while expired.status == 200 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            expired = try admind.scim("GET", "globex", "/Users", token: expiring.secret)
        }
        #expect(expired.status == 401, "\(expired)")
        #expect(try lastSCIMAudit().map { $0.reason == "token_expired" } == true)
        // The business suspends the partner: its token is 403 org_inactive, audited.
        #expect(try admind.perform(.suspendOrg(org: "globex"), as: "nina").status == 200)
        let suspended = try admind.scim("GET", "globex", "/Users", token: s.globex)
        #expect(suspended.status == 403 && suspended.code == "org_inactive", "\(suspended)")
        #expect(try lastSCIMAudit().map { $0.reason == "org_inactive" && $0.actor == "scim.globex" } == true)
        // Every use is audited: reads too.
        #expect(try admind.scim("GET", "acme", "/Users/\(danaID)", token: s.acme).status == 200)
        let reads = try Store(path: f.db, readOnly: true).auditLog(AuditFilter(limit: 200)).filter { $0.operation == "scim.read" }
        #expect(reads.contains { $0.credential == s.acmeToken.credential })
    }

    /// A SCIM request can never do what the partner's admin could not do by hand: a role outside
    /// the partner's ceiling, or one the service user does not cover, is refused with the
    /// engine's reason, nothing written, audited.
    @Test func escalationThroughSCIMIsRefusedWithTheReason() async throws {
        let s = try SCIMSetup()
        let f = s.fixture
        let admind = try await AdmindProcess(f)
        defer { Task { await admind.stop() } }
        let dana = try admind.scim("POST", "acme", "/Users", token: s.acme, body: ["userName": "dana@acme.example"])
        let id = try #require(dana.json?["id"] as? String)
        let before = try Store(path: f.db, readOnly: true).revision()
        for (role, reason) in [("claims-adjuster", "outside_ceiling"), ("approver", "escalation"), ("host-admin", "outside_ceiling")] {
            let r = try admind.scim("PATCH", "acme", "/Users/\(id)", token: s.acme,
                                    body: Self.patch([["op": "add", "path": "roles", "value": [["value": role]]]]))
            #expect(r.status == 403 && r.code == reason && (r.json?["detail"] as? String)?.contains(role) == true, "\(role): \(r)")
            let audit = try #require(try Store(path: f.db, readOnly: true).auditLog(AuditFilter(limit: 1)).last)
            #expect(audit.decision == "refused" && audit.reason == reason && audit.operation == "grant" && audit.actor == "scim.acme")
        }
        // Creating a user with such a role: refused whole, the user is not created either.
        let create = try admind.scim("POST", "acme", "/Users", token: s.acme, body: ["userName": "evan@acme.example", "roles": [["value": "approver"]]])
        #expect(create.status == 403 && create.code == "escalation", "\(create)")
        #expect(try Store(path: f.db, readOnly: true).user(idOrAlias: "evan@acme.example") == nil)
        #expect(try Store(path: f.db, readOnly: true).revision() == before, "a refusal wrote something")
        // A role it covers, granted through can_assign and recorded as made by SCIM.
        let ok = try admind.scim("PATCH", "acme", "/Users/\(id)", token: s.acme,
                                 body: Self.patch([["op": "add", "path": "roles", "value": [["value": "claims-viewer"]]]]))
        #expect(ok.status == 200, "\(ok)")
        let a = try Store(path: f.db, readOnly: true).assignments(user: id)
        #expect(a.map(\.role) == ["claims-viewer"] && a.first?.grantedBy == "scim.acme", "\(a)")
        // The Roles endpoint publishes acme's ceiling, saying which ones SCIM may hand out.
        let roles = try admind.scim("GET", "acme", "/Roles", token: s.acme)
        let byID = Dictionary(uniqueKeysWithValues: roles.resources.map { ($0["id"] as? String ?? "", $0["assignable"] as? Bool ?? false) })
        #expect(byID["claims-viewer"] == true && byID["approver"] == false && byID["claims-adjuster"] == nil, "\(roles)")
    }

    /// The alias hijack through the admin API: refused `outside_namespace` (403), audited;
    /// inside the namespaces it works; the business assigns any alias.
    @Test func theAliasHijackIsRefusedThroughTheAdminAPI() async throws {
        let s = try SCIMSetup()
        let f = s.fixture
        let admind = try await AdmindProcess(f)
        defer { Task { await admind.stop() } }
        for alias in ["nina@northwind.example", "okta-globex|newhire", "okta|bluesky-agency-newhire"] {
            let enc = alias.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let r = try admind.call("PUT", "/admin/v1/users/nick/aliases/\(enc)", as: "nora")
            #expect(r.status == 403 && r.json?["code"] as? String == "outside_namespace", "\(alias): \(r)")
            let audit = try #require(try f.lastAudit())
            #expect(audit.decision == "refused" && audit.reason == "outside_namespace" && audit.actor == "nora")
        }
        #expect(try admind.call("PUT", "/admin/v1/users/nick/aliases/okta-acme%7Cnick", as: "nora").status == 200)
        #expect(try admind.call("PUT", "/admin/v1/users/nick/aliases/nick%40northwind-partners.example", as: "nina").status == 200)
        // Namespaces are the business's: a partner admin may not declare one.
        let declare = try admind.call("PUT", "/admin/v1/orgs/acme/namespaces/okta%7C", as: "ann")
        #expect(declare.status == 403 && declare.json?["code"] as? String == "no_permission", "\(declare)")
        #expect(try admind.call("PUT", "/admin/v1/orgs/acme/namespaces/%40acme-eu.example", as: "nina").status == 200)
    }

    /// Groups: the partner's admin maps a group to a role it may assign; membership changes
    /// become grants and revocations made by SCIM; an unmapped group grants nothing; a mapping
    /// to a role outside the admin's reach is refused.
    @Test func groupsMapToRolesThroughCanAssign() async throws {
        let s = try SCIMSetup()
        let f = s.fixture
        let admind = try await AdmindProcess(f)
        defer { Task { await admind.stop() } }
        let dana = try #require(try admind.scim("POST", "acme", "/Users", token: s.acme, body: ["userName": "dana@acme.example"]).json?["id"] as? String)
        let group = try admind.scim("POST", "acme", "/Groups", token: s.acme, body: ["displayName": "Claims", "members": [["value": dana]]])
        #expect(group.status == 201, "\(group)")
        let gid = try #require(group.json?["id"] as? String)
        #expect(try Store(path: f.db, readOnly: true).assignments(user: dana).isEmpty, "an unmapped group grants nothing")
        // The mapping: only roles the admin may assign.
        let refused = try admind.call("PUT", "/admin/v1/scim/groups/\(gid)/roles/approver", as: "ann")
        #expect(refused.status == 403 && refused.json?["code"] as? String == "escalation", "\(refused)")
        #expect(try admind.call("PUT", "/admin/v1/scim/groups/\(gid)/roles/claims-viewer", as: "gus").status == 404, "another partner's group")
        let mapped = try admind.call("PUT", "/admin/v1/scim/groups/\(gid)/roles/claims-viewer", as: "ann")
        #expect(mapped.status == 200, "\(mapped)")
        // The admin reads its groups and their mapping; another partner's admin sees 404.
        let listed = try admind.call("GET", "/admin/v1/orgs/acme/scim-groups", as: "ann")
        let item = (listed.json?["items"] as? [[String: Any]])?.first
        #expect(item?["id"] as? String == gid && item?["roles"] as? [String] == ["claims-viewer"] && item?["members"] as? [String] == [dana], "\(listed)")
        #expect(try admind.call("GET", "/admin/v1/orgs/acme/scim-groups", as: "gus").status == 404)
        var a = try Store(path: f.db, readOnly: true).assignments(user: dana)
        #expect(a.map(\.role) == ["claims-viewer"] && a.first?.grantedBy == "scim.acme", "\(a)")
        // Leaving the group revokes; joining grants again.
        let leave = try admind.scim("PATCH", "acme", "/Groups/\(gid)", token: s.acme,
                                    body: Self.patch([["op": "remove", "path": "members[value eq \"\(dana)\"]"]]))
        #expect(leave.status == 200, "\(leave)")
        #expect(try Store(path: f.db, readOnly: true).assignments(user: dana).isEmpty)
        #expect(try admind.scim("PATCH", "acme", "/Groups/\(gid)", token: s.acme,
                                body: Self.patch([["op": "Add", "path": "members", "value": [["value": dana]]]])).status == 200)
        a = try Store(path: f.db, readOnly: true).assignments(user: dana)
        #expect(a.map(\.role) == ["claims-viewer"])
        // A member that is not the partner's: 400, nothing changed.
        let foreign = try admind.scim("PATCH", "acme", "/Groups/\(gid)", token: s.acme,
                                      body: Self.patch([["op": "add", "path": "members", "value": [["value": "gus"]]]]))
        #expect(foreign.status == 400 && foreign.scimType == "invalidValue", "\(foreign)")
        // Unmapping revokes what the mapping granted; deleting the group too.
        #expect(try admind.call("DELETE", "/admin/v1/scim/groups/\(gid)/roles/claims-viewer", as: "ann").status == 200)
        #expect(try Store(path: f.db, readOnly: true).assignments(user: dana).isEmpty)
        #expect(try admind.call("PUT", "/admin/v1/scim/groups/\(gid)/roles/claims-viewer", as: "ann").status == 200)
        #expect(try admind.scim("DELETE", "acme", "/Groups/\(gid)", token: s.acme).status == 204)
        #expect(try Store(path: f.db, readOnly: true).assignments(user: dana).isEmpty)
    }

    /// The business manages SCIM tokens through the admin API; a partner's admin may not.
    @Test func scimTokensThroughTheAdminAPI() async throws {
        let s = try SCIMSetup()
        let f = s.fixture
        let admind = try await AdmindProcess(f)
        defer { Task { await admind.stop() } }
        let denied = try admind.call("POST", "/admin/v1/orgs/acme/scim-tokens", as: "ann", body: ["roles": ["partner-admin"]])
        #expect(denied.status == 403 && denied.json?["code"] as? String == "no_permission", "\(denied)")
        #expect(try admind.call("GET", "/admin/v1/orgs/acme/scim-tokens", as: "gus").status == 404)
        // acme already has one live token: a second is allowed, a third is not.
        let made = try admind.call("POST", "/admin/v1/orgs/acme/scim-tokens", as: "nina", body: ["roles": ["partner-admin"]])
        #expect(made.status == 201, "\(made)")
        let secret = try #require(made.json?["secret"] as? String)
        #expect(try admind.scim("GET", "acme", "/Users", token: secret).status == 200)
        let third = try admind.call("POST", "/admin/v1/orgs/acme/scim-tokens", as: "nina", body: ["roles": ["partner-admin"]])
        #expect(third.status == 409, "\(third)")
        let list = try admind.call("GET", "/admin/v1/orgs/acme/scim-tokens", as: "nina")
        #expect((list.json?["items"] as? [[String: Any]])?.count == 2 && !list.text.contains(secret))
        let id = try #require(made.json?["id"] as? Int)
        #expect(try admind.call("DELETE", "/admin/v1/orgs/acme/scim-tokens/\(id)", as: "nina").status == 200)
        #expect(try admind.scim("GET", "acme", "/Users", token: secret).status == 401)
    }

    // MARK: Recorded client sequences

    /// Replays a recorded sequence (`Tests/Fixtures/scim/NAME.json`) against partner acme;
    /// returns the saved values.
    func replay(_ name: String, _ admind: AdmindProcess, token: String) throws -> [String: String] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/scim/\(name).json")
        let steps = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [[String: Any]])
        var saved: [String: String] = [:]
        func fill(_ s: String) -> String {
            var out = s
            for (k, v) in saved { out = out.replacingOccurrences(of: "${\(k)}", with: v) }
            return out
        }
        for step in steps {
            let label = "\(name): \(step["name"] as? String ?? "?")"
            var body: Any?
            if let b = step["body"] {
                let text = fill(String(decoding: try JSONSerialization.data(withJSONObject: b), as: UTF8.self))
                body = try JSONSerialization.jsonObject(with: Data(text.utf8))
            }
            let r = try admind.scim(step["method"] as! String, "acme", fill(step["path"] as! String), token: token, body: body)
            #expect(r.status == step["status"] as? Int, "\(label): \(r)")
            if r.status >= 400 { #expect(r.header("Content-Type") == "application/scim+json", "\(label)") }
            for (k, member) in (step["save"] as? [String: String]) ?? [:] { saved[k] = r.json?[member] as? String }
        }
        return saved
    }

    @Test func replaysOktasRequestsAndTheGraphFollows() async throws {
        let s = try SCIMSetup()
        let f = s.fixture
        let admind = try await AdmindProcess(f)
        defer { Task { await admind.stop() } }
        let map = { (gid: String) in try admind.call("PUT", "/admin/v1/scim/groups/\(gid)/roles/claims-viewer", as: "ann") }
        let saved = try replay("okta", admind, token: s.acme)
        let jane = try #require(saved["jane"]), group = try #require(saved["group"])
        _ = try map(group)
        let store = try Store(path: f.db, readOnly: true)
        let u = try #require(try store.user(idOrAlias: jane))
        #expect(u.status == .active && u.org == "acme" && u.name == "Jane Doe-Smith" && u.email == "jane.doe-smith@acme.example", "\(u)")
        #expect(Set(u.aliases) == ["jane.doe@acme.example", "okta-acme|00u1a2b3c4JaneDoe"], "\(u.aliases)")
        #expect(try store.scimGroup(group)?.displayName == "Claims viewers (Okta)" && store.scimGroup(group)?.members == [jane])
        #expect(try store.assignments(user: jane).map(\.role) == ["claims-viewer"], "the group's mapping reaches its member")
        // The password Okta sent is kept nowhere.
        #expect(try store.scimUser(jane).map { !$0.resource.contains("1mP0ssibl3") } == true)
        // Okta's suspension went through user.suspend, its reactivation through user.reactivate.
        let ops = try store.auditLog(AuditFilter(limit: 100)).filter { $0.actor == "scim.acme" }.map(\.operation)
        #expect(ops.contains("user.suspend") && ops.contains("user.reactivate") && ops.contains("user.update"), "\(ops)")
    }

    @Test func replaysEntraIDsRequestsAndTheGraphFollows() async throws {
        let s = try SCIMSetup()
        let f = s.fixture
        let admind = try await AdmindProcess(f)
        defer { Task { await admind.stop() } }
        // Replay up to the deletion, checking the graph in between through the audit log, then
        // check what the deletion left.
        let saved = try replay("entra", admind, token: s.acme)
        let john = try #require(saved["john"]), group = try #require(saved["group"])
        let store = try Store(path: f.db, readOnly: true)
        #expect(try store.user(idOrAlias: john) == nil && store.user(idOrAlias: "jdoe@acme.example") == nil, "deleted")
        #expect(try store.scimGroup(group)?.members == [])
        let log = try store.auditLog(AuditFilter(limit: 200)).filter { $0.actor == "scim.acme" && $0.decision == "allowed" && $0.operation != "scim.read" }
        let ops = log.map(\.operation)
        #expect(ops.contains("grant"), "the role sent as JSON text was granted: \(ops)")
        #expect(log.contains { $0.operation == "user.alias.add" || $0.operation == "user.invite" })
        #expect(ops.filter { $0 == "user.suspend" }.count == 2 && ops.contains("user.reactivate") && ops.last == "user.remove", "\(ops)")
        #expect(log.allSatisfy { $0.credential == s.acmeToken.credential })
    }

    /// Entra ID's user between its steps: the PascalCase PATCH with roles as JSON text, read
    /// back from the graph.
    @Test func entraPatchShapesLandInTheGraph() async throws {
        let s = try SCIMSetup()
        let f = s.fixture
        let admind = try await AdmindProcess(f)
        defer { Task { await admind.stop() } }
        let made = try admind.scim("POST", "acme", "/Users", token: s.acme, body: [
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "externalId": "jdoe", "userName": "jdoe@acme.example", "active": true,
            "displayName": "John Doe", "emails": [["primary": true, "type": "work", "value": "jdoe@acme.example"]]])
        let id = try #require(made.json?["id"] as? String)
        let p = try admind.scim("PATCH", "acme", "/Users/\(id)", token: s.acme, body: Self.patch([
            ["op": "Replace", "path": "emails[type eq \"work\"].value", "value": "johnny@acme.example"],
            ["op": "Add", "path": "roles", "value": "[{\"primary\":false,\"display\":\"Claims viewer\",\"value\":\"claims-viewer\"}]"],
            ["op": "Replace", "path": "active", "value": "False"]]))
        #expect(p.status == 200, "\(p)")
        let u = try #require(try Store(path: f.db, readOnly: true).user(idOrAlias: id))
        #expect(u.email == "johnny@acme.example" && u.status == .suspended, "\(u)")
        #expect(try Store(path: f.db, readOnly: true).assignments(user: id).map(\.role) == ["claims-viewer"], "holdings kept while suspended")
        #expect(((p.json?["roles"] as? [[String: Any]]) ?? []).map { $0["value"] as? String } == ["claims-viewer"])
        // No-path replace with an object carrying a dotted key and the enterprise URN.
        let q = try admind.scim("PATCH", "acme", "/Users/\(id)", token: s.acme, body: Self.patch([
            ["op": "replace", "value": ["name.givenName": "Johnny", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Claims"]]]))
        #expect(q.status == 200 && (q.json?["name"] as? [String: Any])?["givenName"] as? String == "Johnny", "\(q)")
        #expect((q.json?["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] as? [String: Any])?["department"] as? String == "Claims")
    }
}

extension SCIMTests {
    /// Accepting an invitation over HTTP binds an identity only inside the invitee's partner's
    /// namespaces once the business declared some: 403 outside_namespace, nothing bound.
    @Test func invitationAcceptanceKeepsTheAliasRule() async throws {
        let s = try SCIMSetup()
        let f = s.fixture
        let admind = try await AdmindProcess(f)
        defer { Task { await admind.stop() } }
        let invite = try admind.call("POST", "/admin/v1/users", as: "ann", body: ["user": "ivy", "org": "acme"])
        let secret = try #require(invite.json?["invitation_token"] as? String)
        let refused = try admind.call("POST", "/admin/v1/invitations/accept", body: ["token": secret, "identity": "nina@northwind.example"])
        #expect(refused.status == 403 && refused.json?["code"] as? String == "outside_namespace", "\(refused)")
        #expect(try Store(path: f.db, readOnly: true).user(idOrAlias: "ivy")?.status == .invited)
        let ok = try admind.call("POST", "/admin/v1/invitations/accept", body: ["token": secret, "identity": "okta-acme|ivy"])
        #expect(ok.status == 200, "\(ok)")
    }
}

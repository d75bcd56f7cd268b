import Foundation
import PIAMDemo
import PIAMEngine
import Testing
@testable import PIAMStore

/// Each administrative operation is one type (`Sources/PIAMStore/Operations/`), known to the
/// store only through ``AdminOperation/registry``: an operation type left out of it could not be
/// parsed from an `apply` file, an HTTP request or the audit log.
@Suite struct OperationRegistryTests {
    /// One operation of every kind, made with the public static functions.
    static let oneOfEach: [AdminOperation] = [
        .registerOrg(org: "o", name: "O", parent: "partners", admin: "a", adminName: "A", adminEmail: "a@x"),
        .approveOrg(org: "o", entitle: ["r"]), .rejectOrg(org: "o"), .entitle(org: "o", role: "r"), .unentitle(org: "o", role: "r"),
        .createOrg(org: "o2", parent: "o", name: nil, kind: .host), .updateOrg(org: "o", name: "n"), .suspendOrg(org: "o"),
        .reactivateOrg(org: "o"), .removeOrg(org: "o", cascade: false), .moveOrg(org: "o", parent: "p"),
        .inviteUser(user: "u", org: "o", name: "U", email: nil, aliases: ["idp|u"], validUntil: t0, invitationExpires: t0),
        .activateUser(user: "u"), .resendInvitation(user: "u", expires: t0), .revokeInvitation(user: "u"),
        .updateUser(user: "u", name: .some("N"), email: .some(nil), validUntil: nil),
        .suspendUser(user: "u"), .reactivateUser(user: "u"), .removeUser(user: "u"), .moveUser(user: "u", org: "o"),
        .addAlias(user: "u", alias: "x"), .removeAlias(user: "u", alias: "x"),
        .addNamespace(org: "o", namespace: "okta-o|"), .removeNamespace(org: "o", namespace: "@o.example"),
        .setJIT(org: "o", jitOrg: "o-staff", role: "r"), .clearJIT(org: "o"), .createJIT(subject: "okta-o|00u1"),
        .mapSCIMGroup(group: "g", role: "r"), .unmapSCIMGroup(group: "g", role: "r"),
        .defineRole(role: "r", name: nil, description: nil, permissions: []), .updateRole(role: "r", name: "R", description: "d", permissions: nil),
        .deleteRole(role: "r", force: false), .grant(user: "u", role: "r", scope: nil, validUntil: nil), .revoke(user: "u", role: "r", scope: "o"),
        .grantToOrg(org: "o", role: "r", includeSuborgs: false, validUntil: t0), .revokeFromOrg(org: "o", role: "r"),
        .requestRole(role: "r", scope: "o", note: nil), .approveRequest(id: 12, note: "ok"), .denyRequest(id: 1, note: nil),
    ]

    /// Not in the registry.
    struct Unregistered: AdministrativeOperation {
        static let name = "user.unregistered"
        var user: String
        init(reading f: inout FieldReader) throws(PIAMError) { user = try f.id("user") }
        func write(to f: inout FieldWriter) { f.set("user", user) }
        func target(actor: String) -> String { "user:\(user)" }
        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] { [] }
        func perform(in session: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {}
    }

    @Test func everyOperationTypeIsRegisteredOnceUnderItsName() throws {
        let names = AdminOperation.registry.map { $0.name }
        #expect(Set(names).count == names.count, "two operation types share a name: \(names)")
        #expect(names == AdminOperation.names)
        #expect(AdminOperation.registered.count == names.count)
        for name in names { #expect(AdminOperation.isRegistered(try #require(AdminOperation.registered[name]))) }
        #expect(!AdminOperation.isRegistered(Unregistered.self))

        // Every kind the public functions make is a registered type, and each registered type
        // is made by one of them.
        #expect(Self.oneOfEach.count == names.count)
        #expect(Set(Self.oneOfEach.map(\.name)) == Set(names))
        for op in Self.oneOfEach {
            #expect(AdminOperation.isRegistered(type(of: op.base)), "\(type(of: op.base)) is not registered")
        }
    }

    @Test func everyRegisteredOperationRoundTripsThroughItsJSON() throws {
        for op in Self.oneOfEach {
            let text = op.jsonText
            let obj = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            #expect(obj["op"] as? String == op.name)
            let back = try AdminOperation(json: obj, path: "x")
            #expect(back == op, "\(text)")
            #expect(ObjectIdentifier(type(of: back.base)) == ObjectIdentifier(type(of: op.base)))
            #expect(back.jsonText == text)
            // The `as` key belongs to the caller; any other unknown key is an error.
            var extra = obj
            extra["as"] = "someone"
            #expect(try AdminOperation(json: extra, path: "x") == op)
            extra["colour"] = 1
            #expect(throws: PIAMError(.invalidInput, "x.colour: unknown key for \"\(op.name)\"")) { try AdminOperation(json: extra, path: "x") }
        }
        #expect(throws: PIAMError(.invalidInput, "x.op: unknown operation \"user.unregistered\" (one of: \(AdminOperation.names.joined(separator: ", ")))")) {
            try AdminOperation(json: ["op": "user.unregistered", "user": "u"], path: "x")
        }
    }

    @Test("integer fields: 64 bits kept, past Int64.max refused rather than wrapped, no booleans or fractions")
    func integerFields() throws {
        func parse(_ json: String) throws -> AdminOperation {
            let obj = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
            return try AdminOperation(json: obj, path: "x")
        }
        #expect(try parse(#"{"op": "request.approve", "id": 9223372036854775807}"#) == .approveRequest(id: Int64.max, note: nil))
        #expect(try parse(#"{"op": "request.approve", "id": 7}"#) == .approveRequest(id: 7, note: nil))
        for bad in ["9223372036854775808", "18446744073709551615", "true", "1.5"] {
            #expect(throws: PIAMError.self, "\(bad)") { try parse(#"{"op": "request.approve", "id": \#(bad)}"#) }
        }
    }

    @Test func operationsAreEqualByKindAndFields() {
        #expect(AdminOperation.suspendUser(user: "u") == .suspendUser(user: "u"))
        #expect(AdminOperation.suspendUser(user: "u") != .reactivateUser(user: "u"))
        #expect(AdminOperation.entitle(org: "o", role: "r") != .unentitle(org: "o", role: "r"))
        #expect(AdminOperation.resendInvitation(user: "u") != .resendInvitation(user: "u", expires: t0))
        let set: Set<AdminOperation> = [.suspendUser(user: "u"), .suspendUser(user: "u"), .removeUser(user: "u"), .removeUser(user: "v")]
        #expect(set.count == 3)
    }

    // MARK: The engine answers, the store writes

    /// An access request nobody could approve is refused with the reason the approver's
    /// `can_assign` would give: the same engine rules (2–4), asked once.
    @Test func aRequestIsRefusedForTheReasonCanAssignWouldGive() throws {
        let dir = TempDir()
        let store = try adminStore(dir)
        let graph = try store.loadGraph().graph
        for (role, scope, reason) in [("claims-adjuster", nil, "outside_ceiling"), ("claims-viewer", "acme", "out_of_scope"),
                                      ("nope", nil, "unknown_role"), ("claims-viewer", "no-such-org", "unknown_org")] as [(String, String?, String)] {
            let r = try store.administer(.requestRole(role: role, scope: scope, note: nil), as: "nick", now: t0)
            #expect(!r.allowed && r.reason == reason, "\(role) over \(scope ?? "-"): \(r.reason) \(r.message)")
            // The business's role administrator may assign anything, so only rules 2–4 refuse it.
            #expect(graph.canAssign(actor: "nina", target: "nick", role: role, scope: scope, now: t0).reason.name == reason)
            #expect(graph.assignable(role: role, to: "nick", over: scope ?? graph.org(ofUser: "nick")).reason.name == reason)
        }
        #expect(graph.assignable(role: "claims-viewer", to: "nick", over: nil).allowed)
    }

    /// Approving a registration notes when `partner-admin` is outside the new partner's
    /// ceiling: the engine's ceiling, on the graph with the approval applied.
    @Test func approvingNotesAPartnerAdminOutsideTheCeiling() throws {
        let dir = TempDir()
        let store = try adminStore(dir)
        for org in ["newco", "otherco"] {
            let reg = try store.administer(.registerOrg(org: org, name: nil, parent: nil, admin: "\(org)-admin", adminName: nil, adminEmail: nil),
                                           as: "\(org)-admin", now: t0)
            #expect(reg.allowed)
        }
        let bare = try store.administer(.approveOrg(org: "newco", entitle: []), as: "nina", now: t0)
        #expect(bare.allowed)
        #expect(bare.details == ["note: partner-admin is not in org:newco's ceiling, so its admins can do nothing yet (entitle it)"])
        let entitled = try store.administer(.approveOrg(org: "otherco", entitle: ["partner-admin"]), as: "nina", now: t0)
        #expect(entitled.allowed && entitled.details.isEmpty)
    }
}

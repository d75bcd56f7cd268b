import PIAMEngine

extension AdminOperation {
    /// A pending org becomes active; optionally entitles roles in the same transaction.
    public static func approveOrg(org: String, entitle: [String]) -> AdminOperation {
        AdminOperation(AdminOps.ApproveOrg(org: org, entitle: entitle))
    }
}

extension AdminOps {
    /// `org.approve`: the business accepts a registration.
    struct ApproveOrg: AdministrativeOperation {
        static let name = "org.approve"
        var org: String
        var entitle: [String]

        init(org: String, entitle: [String]) { self.org = org; self.entitle = entitle }

        init(reading f: inout FieldReader) throws(PIAMError) {
            self.init(org: try f.id("org"), entitle: try f.strings("entitle") ?? [])
        }

        func write(to f: inout FieldWriter) { f.set("org", org); f.list("entitle", entitle) }

        func target(actor: String) -> String { "org:\(org)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [Self.check(actor, "approve", BuiltinType.org, org)] + (entitle.isEmpty ? [] : [Self.check(actor, "entitle", BuiltinType.org, org)])
        }

        func precheck(as actor: String, in store: Store) throws(PIAMError) -> (reason: String, message: String)? {
            try store.ownRegistrationRefusal(actor: actor, org: org)
        }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            try s.requirePendingOrg(org, else: "nothing to approve")
            for r in entitle { try s.requireRoleToEntitle(r) }
            try s.exec("UPDATE orgs SET status = 'active' WHERE id = ?1", org)
            for r in entitle { try s.exec("INSERT INTO entitlements(org, role) VALUES (?1, ?2) ON CONFLICT DO NOTHING", org, r) }
            out.message = "approved org:\(org)" + (entitle.isEmpty ? "" : ", entitled to \(entitle.joined(separator: ", "))")
            // The ceiling is the engine's: asked on the graph with this write applied.
            try s.catchUp()
            if !s.graph.isInCeiling(role: Seed.partnerAdmin.id, of: org) {
                out.details.append("note: \(Seed.partnerAdmin.id) is not in org:\(org)'s ceiling, so its admins can do nothing yet (entitle it)")
            }
        }
    }
}

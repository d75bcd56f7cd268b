import PIAMEngine

extension AdminOperation {
    /// Moves an org below another parent of the same partner.
    public static func moveOrg(org: String, parent: String) -> AdminOperation { AdminOperation(AdminOps.MoveOrg(org: org, parent: parent)) }
}

extension AdminOps {
    /// `org.move`: within its own partner (or among host orgs) only; a partner root never moves.
    struct MoveOrg: AdministrativeOperation {
        static let name = "org.move"
        var org: String
        var parent: String

        init(org: String, parent: String) { self.org = org; self.parent = parent }
        init(reading f: inout FieldReader) throws(PIAMError) { self.init(org: try f.id("org"), parent: try f.id("parent")) }
        func write(to f: inout FieldWriter) { f.set("org", org); f.set("parent", parent) }
        func target(actor: String) -> String { "org:\(org)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [Self.check(actor, "update", BuiltinType.org, org), Self.check(actor, "create_suborg", BuiltinType.org, parent)]
        }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            let info = try s.org(org)
            let to = try s.org(parent)
            // The same-partner guard (cross_partner): a store guard, not an engine rule — the
            // engine decides who may act at both ends; which moves keep the tree's partners
            // whole is the store's.
            let root = try s.store.partnerRootSQL(org)
            let sameHost = info.kind == .host && to.kind == .host
            let destinationRoot = try s.store.partnerRootSQL(parent)
            let samePartner = info.kind == .partner && root != org && root != nil && destinationRoot == root
            guard sameHost || samePartner else {
                throw Refusal(reason: AdminReason.crossPartner,
                              message: root == org ? "org:\(org) is a partner root: it may not move" : "org:\(org) may move only within its own \(root.map { "partner (org:\($0))" } ?? "host organization")")
            }
            if try s.store.orgChainSQL(parent).contains(org) {
                throw PIAMError(.invalidGraph, "org \"\(org)\" may not move below itself or one of its sub-orgs")
            }
            if info.parent == parent { out.message = "org:\(org) is already under org:\(parent)"; return }
            try s.exec("UPDATE orgs SET parent = ?2 WHERE id = ?1", org, parent)
            out.message = "moved org:\(org) from org:\(info.parent ?? "-") to org:\(parent)"
        }
    }
}

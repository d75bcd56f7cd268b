import PIAMEngine

extension AdminOperation {
    /// A sub-org of `parent` (kind: the parent's, or partner below `partners`; status active).
    public static func createOrg(org: String, parent: String, name: String?, kind: OrgKind?) -> AdminOperation {
        AdminOperation(AdminOps.CreateOrg(org: org, parent: parent, name: name, kind: kind))
    }
}

extension AdminOps {
    /// `org.create`: a sub-organization (a division, a branch, a region).
    struct CreateOrg: AdministrativeOperation {
        static let name = "org.create"
        var org: String
        var parent: String
        var name: String?
        var kind: OrgKind?

        init(org: String, parent: String, name: String?, kind: OrgKind?) {
            self.org = org; self.parent = parent; self.name = name; self.kind = kind
        }

        init(reading f: inout FieldReader) throws(PIAMError) {
            // `kind` first: a bad kind is the error reported, whatever else is wrong.
            let kind = try f.optString("kind")
            var k: OrgKind?
            if let kind {
                guard let parsed = OrgKind(name: kind) else { throw f.fail("kind", "must be host or partner, not \"\(kind)\"") }
                k = parsed
            }
            self.init(org: try f.id("org"), parent: try f.id("parent"), name: try f.optString("name"), kind: k)
        }

        func write(to f: inout FieldWriter) {
            f.set("org", org); f.set("parent", parent); f.optional("name", name); f.optional("kind", kind?.name)
        }

        func target(actor: String) -> String { "org:\(org)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [Self.check(actor, "create_suborg", BuiltinType.org, parent)]
        }

        /// The new org's partner root: its own once it exists, else its parent's, else itself
        /// when it is to be a partner root.
        func auditPartner(actor: String, in store: Store) throws(PIAMError) -> String? {
            if let p = try store.partnerRootSQL(org) { return p }
            if let p = try store.partnerRootSQL(parent) { return p }
            return kind == .partner || parent == Seed.partnersOrgID ? org : nil
        }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            try validateEntityID(org, what: "org id")
            let p = try s.org(parent)
            guard try s.store.org(id: org) == nil else { throw PIAMError(.conflict, "org \"\(org)\" already exists") }
            let k = kind ?? (p.kind == .partner || parent == Seed.partnersOrgID ? .partner : .host)
            if k == .host && p.kind == .partner {
                throw PIAMError(.invalidGraph, "a host org may not lie below partner org \"\(parent)\"")
            }
            try s.exec("INSERT INTO orgs(id, parent, name, kind, status) VALUES (?1, ?2, ?3, ?4, 'active')", org, parent, name ?? org, k.name)
            out.message = "created \(k.name) org:\(org) under org:\(parent)"
        }
    }
}

import PIAMEngine

extension AdminOperation {
    /// The business declares an identity namespace (`okta-acme|`, `@acme.example`) for a
    /// partner root: its people's aliases may use it.
    public static func addNamespace(org: String, namespace: String) -> AdminOperation {
        AdminOperation(AdminOps.AddNamespace(org: org, namespace: namespace))
    }

    /// The business withdraws an identity namespace of a partner (existing aliases stay; new
    /// ones inside it are refused to the partner's admins).
    public static func removeNamespace(org: String, namespace: String) -> AdminOperation {
        AdminOperation(AdminOps.RemoveNamespace(org: org, namespace: namespace))
    }
}

extension AdminOps {
    /// `namespace.add`: host-only (`org:entitle` on the partner root, like its ceiling). The
    /// namespace must parse (``PIAMEngine/IdentityNamespace/init(parsing:)``), the org must be
    /// a partner root, and no other partner may hold an overlapping namespace (`conflict`).
    struct AddNamespace: AdministrativeOperation {
        static let name = "namespace.add"
        var org: String
        var namespace: String

        init(org: String, namespace: String) { self.org = org; self.namespace = namespace }
        init(reading f: inout FieldReader) throws(PIAMError) {
            self.init(org: try f.id("org"), namespace: try f.string("namespace"))
        }
        func write(to f: inout FieldWriter) { f.set("org", org); f.set("namespace", namespace) }
        func target(actor: String) -> String { "org:\(org)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [Self.check(actor, "entitle", BuiltinType.org, org)]
        }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            let ns = try IdentityNamespace(parsing: namespace)
            try s.requirePartnerRoot(org)
            for (p, other) in try s.store.allIdentityNamespaces() where p != org && other.overlaps(ns) {
                throw PIAMError(.conflict, "identity namespace \"\(ns.text)\" overlaps \"\(other.text)\" of partner \(p)")
            }
            try s.exec("INSERT INTO identity_namespaces(partner, namespace, created_at, created_by) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                       org, ns.text, s.now, actor)
            out.changed = s.db.changes > 0
            out.message = out.changed == true ? "declared identity namespace \"\(ns.text)\" for partner \(org)"
                : "partner \(org) already has identity namespace \"\(ns.text)\""
        }
    }

    /// `namespace.remove`: host-only, as `namespace.add`.
    struct RemoveNamespace: AdministrativeOperation {
        static let name = "namespace.remove"
        var org: String
        var namespace: String

        init(org: String, namespace: String) { self.org = org; self.namespace = namespace }
        init(reading f: inout FieldReader) throws(PIAMError) {
            self.init(org: try f.id("org"), namespace: try f.string("namespace"))
        }
        func write(to f: inout FieldWriter) { f.set("org", org); f.set("namespace", namespace) }
        func target(actor: String) -> String { "org:\(org)" }

        func questions(as actor: String, in store: Store) throws(PIAMError) -> [AdminQuestion] {
            [Self.check(actor, "entitle", BuiltinType.org, org)]
        }

        func perform(in s: AdminSession, actor: String, out: inout AdminSession.Outcome) throws {
            _ = try s.org(org)
            let text = (try? IdentityNamespace(parsing: namespace).text) ?? namespace
            try s.exec("DELETE FROM identity_namespaces WHERE partner = ?1 AND namespace = ?2", org, text)
            guard s.db.changes > 0 else { throw PIAMError(.notFound, "partner \(org) has no identity namespace \"\(text)\"") }
            out.changed = true
            out.message = "withdrew identity namespace \"\(text)\" of partner \(org)"
        }
    }
}

extension AdminSession {
    /// `org` exists and is a partner root (a partner org whose parent is a host org).
    func requirePartnerRoot(_ id: String) throws {
        let o = try org(id)
        guard o.kind == .partner, let parent = o.parent, try org(parent).kind == .host else {
            throw PIAMError(.invalidInput, "org \"\(id)\" is not a partner root (a partner org directly below the business)")
        }
    }
}

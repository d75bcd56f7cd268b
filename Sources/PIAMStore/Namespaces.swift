import PIAMEngine

/// An alias that lies outside every identity namespace declared for its user's partner: what
/// ``Store/namespaceViolations()`` reports (after an import, or on demand).
public struct NamespaceViolation: Sendable, Hashable {
    /// The partner root.
    public var partner: String
    /// The user (its id) carrying the alias.
    public var user: String
    /// The alias.
    public var alias: String
}

extension Store {
    /// The identity namespaces declared for partner root `partner`, sorted.
    public func identityNamespaces(partner: String) throws(PIAMError) -> [IdentityNamespace] {
        let s = try cached("SELECT namespace FROM identity_namespaces WHERE partner = ?1 ORDER BY namespace")
        s.bind(1, partner)
        let texts = try s.rows { $0.text(0) }
        return texts.compactMap { try? IdentityNamespace(parsing: $0) }
    }

    /// Every declared namespace, by partner root (sorted by partner, then namespace).
    public func allIdentityNamespaces() throws(PIAMError) -> [(partner: String, namespace: IdentityNamespace)] {
        let s = try db.prepare("SELECT partner, namespace FROM identity_namespaces ORDER BY partner, namespace")
        let rows = try s.rows { ($0.text(0), $0.text(1)) }
        return rows.compactMap { p, n in (try? IdentityNamespace(parsing: n)).map { (p, $0) } }
    }

    /// The aliases of partner users that lie outside their partner's declared namespaces, for
    /// the partners that declared at least one (a partner with none declared gets no alias from
    /// its own admins, but its existing aliases are not reported one by one). Sorted by
    /// partner, user, alias.
    public func namespaceViolations() throws(PIAMError) -> [NamespaceViolation] {
        var byPartner: [String: [IdentityNamespace]] = [:]
        for (p, n) in try allIdentityNamespaces() { byPartner[p, default: []].append(n) }
        guard !byPartner.isEmpty else { return [] }
        let s = try db.prepare("SELECT a.alias, a.user, u.org FROM user_aliases a JOIN users u ON u.id = a.user ORDER BY a.user, a.alias")
        let rows = try s.rows { ($0.text(0), $0.text(1), $0.text(2)) }
        var roots: [String: String?] = [:]
        var out: [NamespaceViolation] = []
        for (alias, user, org) in rows {
            let root: String?
            if let r = roots[org] { root = r } else { root = try partnerRootSQL(org); roots[org] = root }
            guard let root, let declared = byPartner[root] else { continue }
            if !declared.contains(where: { $0.contains(alias) }) {
                out.append(NamespaceViolation(partner: root, user: user, alias: alias))
            }
        }
        return out.sorted { ($0.partner, $0.user, $0.alias) < ($1.partner, $1.user, $1.alias) }
    }
}

extension AdminSession {
    /// The alias rule (``PIAMEngine/AccessGraph/aliasDecision(actor:org:alias:namespaces:)``),
    /// decided by the engine on the session's graph with the namespaces declared in the
    /// database: refuses `outside_namespace` when a partner actor gives a user of `org` an
    /// alias outside its partner's namespaces.
    func requireAliasInNamespace(actor: String, org: String, alias: String) throws {
        try catchUp()
        let store = self.store
        let d = graph.aliasDecision(actor: actor, org: org, alias: alias) { partner in
            (try? store.identityNamespaces(partner: partner)) ?? []
        }
        if case .outsideNamespace(let partner, let namespaces) = d {
            let declared = namespaces.isEmpty
                ? "the business declared no identity namespace for partner \(partner)"
                : "partner \(partner)'s identity namespaces are \(namespaces.map(\.text).joined(separator: ", "))"
            throw Refusal(reason: AliasDecision.reasonCode,
                          message: "alias \"\(alias)\" lies outside its partner's identity namespaces (\(declared)); only the business may assign it")
        }
    }
}

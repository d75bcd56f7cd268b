// Identity namespaces: which aliases a partner's people may carry (the alias rule).
//
// Aliases name users for the proxy and the AuthZEN clients: whoever logs in with subject X is
// the user whose id or alias is X. The business therefore declares, per partner, the identity
// namespaces its people's aliases may use — an IdP issuer prefix (`okta-acme|`) or an e-mail
// domain (`@acme-brokers.example`) — and a partner's admin (or its SCIM token) may give its
// people aliases only inside them. Host users may assign any alias.

/// One identity namespace a partner's aliases may use: an IdP issuer prefix such as
/// `okta-acme|`, or an e-mail domain written with its `@`, such as `@acme-brokers.example`.
public struct IdentityNamespace: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The two kinds of namespace.
    public enum Kind: String, Sendable, Hashable {
        /// Aliases that start with the text (an IdP issuer prefix, case-sensitive).
        case prefix
        /// E-mail addresses in the domain (`local@domain`, the domain compared without case).
        case domain
    }

    /// The namespace as declared (`okta-acme|`, `@acme-brokers.example`; a domain is kept in
    /// lowercase).
    public let text: String

    /// Which kind it is: a text starting with `@` is an e-mail domain, anything else a prefix.
    public var kind: Kind { text.hasPrefix("@") ? .domain : .prefix }

    /// The namespace as declared.
    public var description: String { text }

    /// Byte order of the texts (a stable listing order).
    public static func < (a: IdentityNamespace, b: IdentityNamespace) -> Bool {
        a.text.utf8.lexicographicallyPrecedes(b.text.utf8)
    }

    /// Parses a declared namespace.
    ///
    /// - An e-mail domain is `@` and a domain name of at least two labels (`@acme.example`),
    ///   letters, digits, `-` and `.` only; it is kept in lowercase.
    /// - A prefix is 2–200 bytes without control characters or white space, and must end with
    ///   a separator (`|`, `:`, `/`, `#`, `!` or `@`) so that `okta-acme|` cannot also claim
    ///   `okta-acme-evil|…`.
    /// - Throws: `PIAMError` `invalid_input` naming the problem.
    public init(parsing raw: String) throws(PIAMError) {
        let s = raw
        if s.hasPrefix("@") {
            let domain = s.dropFirst().lowercased()
            let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
            guard labels.count >= 2, domain.utf8.count <= 253,
                  labels.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 63 && !$0.hasPrefix("-") && !$0.hasSuffix("-") }),
                  domain.unicodeScalars.allSatisfy({ ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "-" || $0 == "." })
            else {
                throw PIAMError(.invalidInput, "identity namespace \"\(raw)\": an e-mail domain is @ and a domain name (@acme-brokers.example)")
            }
            text = "@" + domain
            return
        }
        let n = s.utf8.count
        guard n >= 2, n <= 200 else {
            throw PIAMError(.invalidInput, "identity namespace \"\(raw)\": a prefix is 2 to 200 bytes, not \(n)")
        }
        if s.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0.properties.isWhitespace }) {
            throw PIAMError(.invalidInput, "identity namespace \"\(raw)\": no white space or control characters")
        }
        guard let last = s.last, Self.separators.contains(last) else {
            throw PIAMError(.invalidInput,
                            "identity namespace \"\(raw)\": a prefix ends with a separator (one of | : / # ! @), e.g. \"okta-acme|\"")
        }
        text = s
    }

    /// The characters a prefix must end with.
    public static let separators: Set<Character> = ["|", ":", "/", "#", "!", "@"]

    /// Whether `alias` lies inside this namespace: it starts with the prefix and goes on, or it
    /// is an e-mail address (a non-empty local part, one `@`) in the domain.
    public func contains(_ alias: String) -> Bool {
        switch kind {
        case .prefix:
            return alias.utf8.count > text.utf8.count && alias.hasPrefix(text)
        case .domain:
            guard let at = alias.lastIndex(of: "@"), at != alias.startIndex else { return false }
            return alias[at...].lowercased() == text
        }
    }

    /// Whether the two namespaces could hold the same alias (two partners may not declare
    /// overlapping namespaces): equal domains, or one prefix a prefix of the other.
    public func overlaps(_ other: IdentityNamespace) -> Bool {
        switch (kind, other.kind) {
        case (.domain, .domain): return text == other.text
        case (.prefix, .prefix): return text.hasPrefix(other.text) || other.text.hasPrefix(text)
        case (.prefix, .domain): return other.text.hasPrefix(text) || text.hasSuffix(other.text)
        case (.domain, .prefix): return text.hasPrefix(other.text) || other.text.hasSuffix(text)
        }
    }
}

/// The answer of the alias rule (``AccessGraph/aliasDecision(actor:org:alias:namespaces:)``).
public enum AliasDecision: Sendable, Hashable {
    /// The alias may be given.
    case allowed
    /// The alias lies outside every namespace the business declared for the user's partner
    /// (`namespaces`, empty when it declared none); reason ``reasonCode``.
    case outsideNamespace(partner: String, namespaces: [IdentityNamespace])

    /// The refusal's reason code: `outside_namespace`.
    public static let reasonCode = "outside_namespace"

    /// Whether the alias may be given.
    public var allowed: Bool { self == .allowed }
}

extension AccessGraph {
    /// The alias rule: whether `actor` may give a user of org `org` the alias `alias`.
    ///
    /// - A host actor (the business's staff) may give any alias.
    /// - A user of a host org may be given any alias (only host actors reach one anyway).
    /// - Otherwise the alias must lie inside one of `namespaces(P)`, the namespaces the business
    ///   declared for the user's partner root P; a partner with none declared gets no aliases
    ///   from its own admins (nor its SCIM token).
    ///
    /// Whether the actor may update that user at all is `check(actor, update, user:U)`, asked
    /// separately; this rule only adds to it.
    public func aliasDecision(actor: String, org: String, alias: String,
                              namespaces: (String) -> [IdentityNamespace]) -> AliasDecision {
        if let a = userIndex[actor], isHostUser(a) { return .allowed }
        if orgIndex[org] == nil || isHostOrg(org) { return .allowed }
        guard let partner = partnerRoot(ofOrg: org) else { return .allowed }
        let declared = namespaces(partner)
        if declared.contains(where: { $0.contains(alias) }) { return .allowed }
        return .outsideNamespace(partner: partner, namespaces: declared.sorted())
    }
}

extension AccessGraph {
    /// The roles in the ceiling of `org` that `actor` may give every member of it
    /// (``canGrantToOrg(actor:org:role:now:)``), sorted by id: what a partner's SCIM token may
    /// hand out at its partner root, published as the canonical values of SCIM's `roles`.
    public func grantableRoles(actor: String, org: String, now: Timestamp) -> [String] {
        var seen: Set<String> = []
        return roleIDs.filter { seen.insert($0).inserted && isInCeiling(role: $0, of: org) && canGrantToOrg(actor: actor, org: org, role: $0, now: now).allowed }
            .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }
}

// MARK: Just-in-time creation

/// A partner's just-in-time creation setting (`jit.set`): people who log in with a subject
/// inside one of the partner's identity namespaces, and whom the graph does not know yet, are
/// created as active users of `org` holding `role` over it.
public struct JITSetting: Sendable, Hashable {
    /// The partner root the setting belongs to.
    public var partner: String
    /// The org inside the partner's subtree where new people land.
    public var org: String
    /// The role they are given over `org`.
    public var role: String

    /// A setting: partner root `partner` creates unknown people in `org` holding `role`.
    public init(partner: String, org: String, role: String) {
        self.partner = partner
        self.org = org
        self.role = role
    }
}

/// The identity namespaces of the partners whose just-in-time creation is enabled, each with
/// its partner's setting: what piamd loads beside the graph to know, without asking anyone,
/// whether an unknown subject may be created at all.
public struct JITNamespaces: Sendable, Hashable {
    /// One namespace of a JIT-enabled partner.
    public struct Entry: Sendable, Hashable {
        /// A namespace the partner declared.
        public var namespace: IdentityNamespace
        /// The partner's JIT setting.
        public var setting: JITSetting
    }

    /// The entries, sorted by namespace.
    public let entries: [Entry]

    /// No partner has JIT enabled.
    public static let empty = JITNamespaces(entries: [])

    init(entries: [Entry]) { self.entries = entries }

    /// The namespaces of the partners that have a setting (namespaces of other partners are
    /// dropped).
    public init(namespaces: [(partner: String, namespace: IdentityNamespace)], settings: [JITSetting]) {
        var byPartner: [String: JITSetting] = [:]
        for s in settings { byPartner[s.partner] = s }
        entries = namespaces.compactMap { p, n in byPartner[p].map { Entry(namespace: n, setting: $0) } }
            .sorted { $0.namespace < $1.namespace }
    }

    /// Whether no partner has JIT enabled.
    public var isEmpty: Bool { entries.isEmpty }

    /// The setting of the JIT-enabled partner whose namespace holds `subject`, or `nil`.
    /// (Two partners may not declare overlapping namespaces, so there is at most one.)
    public func setting(for subject: String) -> JITSetting? {
        for e in entries where e.namespace.contains(subject) { return e.setting }
        return nil
    }
}

/// The answer of the just-in-time rule (``AccessGraph/jitDecision(subject:jit:)``).
public enum JITDecision: Sendable, Hashable {
    /// The subject already names a user (its id): nothing to create.
    case known(user: String)
    /// The subject is unknown and lies inside a namespace of a JIT-enabled partner: create it
    /// with this setting.
    case create(JITSetting)
    /// The subject is unknown and lies inside no namespace of a JIT-enabled partner; reason
    /// ``reasonCode``.
    case notEligible

    /// The refusal's reason code: `jit_not_eligible`.
    public static let reasonCode = "jit_not_eligible"
}

extension AccessGraph {
    /// The just-in-time rule: a subject the graph does not know (no user has it as id or alias)
    /// may be created when it lies inside an identity namespace of a partner whose JIT creation
    /// is enabled; it is created in that partner's chosen org with its default role.
    public func jitDecision(subject: String, jit: JITNamespaces) -> JITDecision {
        if let id = userID(for: subject) { return .known(user: id) }
        if let s = jit.setting(for: subject) { return .create(s) }
        return .notEligible
    }

    /// Whether the business may make (`org`, `role`) partner root `partner`'s JIT setting:
    ///
    /// 1. `org` exists (else `unknown_org`) and lies in the partner's subtree (else
    ///    `out_of_scope`);
    /// 2. `role` exists (else `unknown_role`) and is in the ceiling of `org` (else
    ///    `outside_ceiling`);
    /// 3. one of the partner's own administrators (``assignmentAdmins(of:now:)`` of the root)
    ///    could give it there by rule 5 of `can_assign` — no escalation — (else `escalation`):
    ///    JIT hands out only what the partner's admins could hand out by hand.
    public func jitSettingDecision(partner: String, org: String, role: String, now: Timestamp) -> Decision {
        guard let o = orgIndex[org] else { return .deny(.unknownOrg) }
        guard partnerRoot(ofOrg: org) == partner else { return .deny(.outOfScope) }
        guard let r = roleIndex[role] else { return .deny(.unknownRole) }
        guard inCeiling(org: o, role: r) else { return .deny(.outsideCeiling) }
        for admin in assignmentAdmins(of: partner, now: now) {
            if let a = userIndex[admin], noEscalation(actor: a, role: r, at: o, now: now) { return .allow }
        }
        return .deny(.escalation)
    }
}

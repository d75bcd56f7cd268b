import PIAMEngine
import PIAMStore

/// Writes realistic partner graphs: the curated demo of `piamctl demo`, and large generated
/// graphs of the same shape for scale work (`--orgs N --users N --resources N`).
///
/// The business is an insurer, *Northwind Mutual* (the host org `host`), with its departments,
/// the `partners` container, and partner companies — brokers, agencies and claims adjusters —
/// each with regions, branches and teams (three levels below the partner root). The insurer
/// defines the roles (claims, policies, quotes, commission statements, the product catalog),
/// entitles each kind of partner to the roles it may hand out, and grants some roles to whole
/// orgs. Partner admins sit at the partner root and at region level.
///
/// The curated demo also has: an expiring assignment, an expired one, a contractor whose
/// access ends, an expiring org grant, an invited user, a suspended user, a suspended partner
/// and a pending partner registration with its invited first admin.
///
/// Every grant is recorded as made by someone who could have made it by the administration
/// rules (DESIGN §3): grants are decided through the engine in the order the business and its
/// partners would make them (``Granting``). A partner admin is the granter only where
/// `can_assign` (or the org-grant rules) allows it; elsewhere — a role no partner admin holds, a
/// suspended partner whose admins can do nothing — it is the business's host administrator,
/// whose `host-admin` (`role:*`) may hand out any role. The first host administrator's own
/// `host-admin` is the bootstrap, written by the installation: it has no `granted_by`.
public struct DemoGenerator: Sendable {
    /// Sizes for a generated graph; `nil` for the curated demo.
    public struct Scale: Sendable, Hashable {
        public var orgs: Int
        public var users: Int
        public var resources: Int

        public init(orgs: Int, users: Int, resources: Int) {
            self.orgs = orgs
            self.users = users
            self.resources = resources
        }
    }

    public var scale: Scale?
    public var seed: UInt64
    /// The time the demo is written at: expiries are placed around it.
    public var now: Timestamp

    public init(scale: Scale? = nil, seed: UInt64 = 1, now: Timestamp) {
        self.scale = scale
        self.seed = seed
        self.now = now
    }

    static let day: Timestamp = 86_400_000

    /// The insurer's roles (the defaults of DESIGN §6 are seeded by `init` and kept).
    public static let roles: [ImportDocument.Role] = [
        .init(id: "claims-viewer", name: "Claims viewer", description: "Reads claims in its scope",
              permissions: ["claim:read"]),
        .init(id: "claims-handler", name: "Claims handler", description: "Files and updates claims; withdraws its own",
              permissions: ["claim:read", "claim:submit", "claim:update", "claim:withdraw:owner", "document:read"]),
        .init(id: "claims-adjuster", name: "Claims adjuster", description: "Everything on claims in its scope",
              permissions: ["claim:*", "document:read", "policy:read"]),
        .init(id: "policy-viewer", name: "Policy viewer", permissions: ["policy:read"]),
        .init(id: "policy-servicer", name: "Policy servicer", description: "Endorses and renews policies",
              permissions: ["policy:read", "policy:endorse", "policy:renew"]),
        .init(id: "quote-creator", name: "Quote creator", description: "Creates quotes; reads and submits its own",
              permissions: ["quote:create", "quote:read:owner", "quote:submit:owner"]),
        .init(id: "quote-manager", name: "Quote manager", permissions: ["quote:create", "quote:read", "quote:submit", "quote:approve"]),
        .init(id: "commission-viewer", name: "Commission statements (own)", permissions: ["statement:read:owner"]),
        .init(id: "commission-manager", name: "Commission statements (all in scope)", permissions: ["statement:read", "statement:download"]),
        .init(id: "catalog-reader", name: "Product catalog", permissions: ["document:read"]),
        .init(id: "claims-supervisor", name: "Claims supervisor (insurer staff)", permissions: ["claim:*", "policy:read", "document:*"]),
        .init(id: "underwriter", name: "Underwriter (insurer staff)", permissions: ["policy:*", "quote:*", "document:read"]),
        .init(id: "partner-manager", name: "Partner manager (insurer staff)",
              permissions: ["org:view", "org:approve", "org:entitle", "org:suspend", "org:reactivate", "org:grant_role", "user:view", "statement:read"]),
    ]

    /// Roles each kind of partner is entitled to (at its partner root, so the whole subtree).
    static let brokerRoles = ["partner-admin", "quote-creator", "quote-manager", "policy-viewer", "policy-servicer",
                              "commission-viewer", "commission-manager", "catalog-reader", "claims-viewer"]
    static let adjusterRoles = ["partner-admin", "claims-adjuster", "claims-handler", "claims-viewer", "catalog-reader"]

    /// The document to import into a freshly initialized database.
    public func document() -> ImportDocument {
        var doc = scale.map(generated) ?? curated()
        // Every grant was made 30 days before `now` (granted_at): the same seed and time write
        // the same file, and no grant expired before it was made.
        let at = ImportDocument.GrantedAt.at(RFC3339.format(now - 30 * Self.day))
        for i in doc.assignments.indices { doc.assignments[i].grantedAt = at }
        for i in doc.orgGrants.indices { doc.orgGrants[i].grantedAt = at }
        return doc
    }

    // MARK: The curated demo

    struct PartnerSpec {
        var id: String
        var name: String
        var kind: String  // broker, agency, adjuster
        var status: String
        var regions: [String]
    }

    static let partners: [PartnerSpec] = [
        .init(id: "acme-brokers", name: "Acme Brokers", kind: "broker", status: "active", regions: ["north", "south", "east"]),
        .init(id: "bluesky-agency", name: "Bluesky Insurance Agency", kind: "agency", status: "active", regions: ["metro", "coast"]),
        .init(id: "harbor-adjusters", name: "Harbor Claims Adjusters", kind: "adjuster", status: "active", regions: ["marine", "property"]),
        .init(id: "summit-brokerage", name: "Summit Brokerage", kind: "broker", status: "active", regions: ["alpine", "valley"]),
        .init(id: "pinecrest-agency", name: "Pinecrest Agency", kind: "agency", status: "active", regions: ["west"]),
        .init(id: "redwood-partners", name: "Redwood Partners", kind: "broker", status: "active", regions: ["central", "lakes"]),
        .init(id: "lakeside-brokers", name: "Lakeside Brokers", kind: "broker", status: "active", regions: ["shore"]),
        .init(id: "meridian-agency", name: "Meridian Agency", kind: "agency", status: "active", regions: ["urban", "rural"]),
        .init(id: "oakridge-services", name: "Oakridge Insurance Services", kind: "agency", status: "active", regions: ["hills"]),
        .init(id: "coastal-claims", name: "Coastal Claims Services", kind: "adjuster", status: "active", regions: ["gulf"]),
        .init(id: "granite-brokers", name: "Granite Brokers", kind: "broker", status: "suspended", regions: ["quarry"]),
        .init(id: "newleaf-agency", name: "Newleaf Agency", kind: "agency", status: "pending", regions: []),
    ]

    func curated() -> ImportDocument {
        var doc = ImportDocument()
        var rng = SplitMix64(seed: seed)
        let hostAdmin = "nina.hq", partnerManager = "pete.pm"
        var grants = Granting(hostAdmin: hostAdmin, now: now)
        doc.roles = Self.roles
        doc.orgs = [
            .init(id: "hq-claims", parent: "host", name: "Northwind Mutual — Claims", kind: "host"),
            .init(id: "hq-underwriting", parent: "host", name: "Northwind Mutual — Underwriting", kind: "host"),
            .init(id: "hq-partner-mgmt", parent: "host", name: "Northwind Mutual — Partner management", kind: "host"),
        ]
        doc.users = [
            .init(id: hostAdmin, org: "host", name: "Nina Alvarez", email: "nina@northwind.example", aliases: ["okta|nina"]),
            .init(id: "carl.claims", org: "hq-claims", name: "Carl Jensen", email: "carl@northwind.example", aliases: ["okta|carl"]),
            .init(id: "uma.uw", org: "hq-underwriting", name: "Uma Patel", email: "uma@northwind.example"),
            .init(id: partnerManager, org: "hq-partner-mgmt", name: "Pete Okafor", email: "pete@northwind.example"),
        ]
        // The bootstrap: the first host administrator, made by the installation.
        doc.assignments = [.init(user: hostAdmin, role: "host-admin", scope: "host")]
        // Phase 1: the business — its staff, each partner's first admin, its org grants.
        grants.nextPhase()
        grants.assign(.init(user: "carl.claims", role: "claims-supervisor", scope: "host"))
        grants.assign(.init(user: "uma.uw", role: "underwriter", scope: "host"))
        grants.assign(.init(user: partnerManager, role: "partner-manager", scope: "partners"))
        doc.resources = [
            .init(type: "document", id: "product-guide-2027", org: "host", shared: true, name: "Product guide 2027"),
            .init(type: "document", id: "rate-card-q1", org: "host", shared: true, name: "Rate card Q1"),
            .init(type: "document", id: "board-minutes", org: "host", shared: false, name: "Board minutes (internal)"),
            .init(type: "claim", id: "CLM-HQ-0001", org: "hq-claims", name: "Head-office claim"),
        ]
        doc.entitlements = [.init(org: "partners", role: "partner-user")]
        grants.grantToOrg(.init(org: "partners", role: "partner-user", includeSuborgs: true), by: [partnerManager])
        let first = ["Ava", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hugo", "Iris", "Jonas", "Kira", "Liam", "Maya", "Noah", "Olga", "Priya"]
        let last = ["Smith", "Nguyen", "Garcia", "Kowalski", "Brown", "Haddad", "Lee", "Rossi", "Müller", "Silva"]
        func person(_ id: String, org: String, domain: String, name: String? = nil, status: String? = nil, validUntil: Timestamp? = nil) -> String {
            let name = name ?? "\(first[Int(rng.next() % UInt64(first.count))]) \(last[Int(rng.next() % UInt64(last.count))])"
            doc.users.append(.init(id: id, org: org, name: name, email: "\(id)@\(domain)", aliases: ["okta|\(id)"],
                                   status: status, validUntil: validUntil.map(RFC3339.format)))
            return id
        }
        // Phases 2 and 3: what each partner's root admin, then its region admins, hand out.
        var byRootAdmins: [Granting.Planned] = [], byRegionAdmins: [Granting.Planned] = []
        var claimNo = 1
        for p in Self.partners {
            doc.orgs.append(.init(id: p.id, parent: "partners", name: p.name, kind: "partner", status: p.status))
            for r in p.kind == "adjuster" ? Self.adjusterRoles : Self.brokerRoles {
                doc.entitlements.append(.init(org: p.id, role: r))
            }
            grants.grantToOrg(.init(org: p.id, role: "catalog-reader", includeSuborgs: true), by: [partnerManager])
            let domain = "\(p.id).example"
            if p.status == "pending" {
                // A registration awaiting approval: the org and its invited first admin.
                let admin = person("\(p.id)-admin", org: p.id, domain: domain, status: "invited")
                grants.assign(.init(user: admin, role: "partner-admin", scope: p.id), by: [partnerManager])
                continue
            }
            let rootAdmin = person("\(p.id)-admin", org: p.id, domain: domain)
            grants.assign(.init(user: rootAdmin, role: "partner-admin", scope: p.id), by: [partnerManager])
            if p.kind != "adjuster" {
                grants.assign(.init(user: rootAdmin, role: "commission-manager", scope: p.id), by: [partnerManager])
                grants.assign(.init(user: rootAdmin, role: "quote-manager", scope: p.id), by: [partnerManager])
            } else {
                grants.assign(.init(user: rootAdmin, role: "claims-adjuster", scope: p.id), by: [partnerManager])
            }
            for region in p.regions {
                let rOrg = "\(p.id)-\(region)"
                doc.orgs.append(.init(id: rOrg, parent: p.id, name: "\(p.name) — \(region.capitalized) region", kind: "partner"))
                let rAdmin = person("\(rOrg)-admin", org: rOrg, domain: domain)
                byRootAdmins.append(.assignment(.init(user: rAdmin, role: "partner-admin", scope: rOrg), candidates: [rootAdmin]))
                if p.kind != "adjuster" {
                    byRootAdmins.append(.orgGrant(.init(org: rOrg, role: "policy-viewer", includeSuborgs: true), candidates: [rootAdmin, partnerManager]))
                }
                for b in 1...2 {
                    let bOrg = "\(rOrg)-b\(b)"
                    doc.orgs.append(.init(id: bOrg, parent: rOrg, name: "\(p.name) — \(region.capitalized) branch \(b)", kind: "partner"))
                    let tOrg = "\(bOrg)-t1"
                    doc.orgs.append(.init(id: tOrg, parent: bOrg, name: "\(p.name) — \(region.capitalized) branch \(b) team 1", kind: "partner"))
                    for (k, org) in [bOrg, bOrg, tOrg].enumerated() {
                        let agent = person("\(org)-agent\(k + 1)", org: org, domain: domain)
                        let roles = p.kind == "adjuster" ? ["claims-handler"] : ["quote-creator", "policy-servicer", "commission-viewer"]
                        for role in roles {
                            byRegionAdmins.append(.assignment(.init(user: agent, role: role), candidates: [rAdmin, rootAdmin]))
                        }
                        if p.kind != "adjuster" {
                            doc.resources.append(.init(type: "statement", id: "ST-2026-10-\(agent)", org: org, owner: agent, name: "Commission statement Oct 2026"))
                            doc.resources.append(.init(type: "quote", id: "Q-\(agent)-1", org: org, owner: agent, name: "Home quote"))
                        }
                        doc.resources.append(.init(type: "policy", id: "POL-\(org)-\(k + 1)", org: org, owner: agent, name: "Policy"))
                        let claim = String(format0(claimNo, width: 5))
                        doc.resources.append(.init(type: "claim", id: "CLM-\(claim)", org: org, owner: agent, name: "Claim \(claim)"))
                        claimNo += 1
                    }
                }
            }
        }
        // The lifecycle cases, on Acme's north region.
        let acme = "acme-brokers", acmeAdmin = "\(acme)-admin", northAdmin = "\(acme)-north-admin"
        _ = person("temp.agent", org: "\(acme)-north-b1", domain: "\(acme).example", name: "Tom Temp", validUntil: now + 90 * Self.day)
        byRegionAdmins.append(.assignment(.init(user: "temp.agent", role: "quote-creator", validUntil: RFC3339.format(now + 90 * Self.day)),
                                          candidates: [northAdmin, acmeAdmin]))
        byRegionAdmins.append(.assignment(.init(user: "\(acme)-north-b1-agent1", role: "claims-viewer", validUntil: RFC3339.format(now + 14 * Self.day)),
                                          candidates: [northAdmin, acmeAdmin]))
        byRegionAdmins.append(.assignment(.init(user: "\(acme)-north-b1-agent2", role: "claims-viewer", validUntil: RFC3339.format(now - 10 * Self.day)),
                                          candidates: [northAdmin, acmeAdmin]))
        byRootAdmins.append(.orgGrant(.init(org: "\(acme)-south", role: "quote-manager", includeSuborgs: true, validUntil: RFC3339.format(now + 30 * Self.day)),
                                      candidates: [acmeAdmin]))
        _ = person("new.hire", org: "\(acme)-north-b2", domain: "\(acme).example", name: "Nora Newhire", status: "invited")
        _ = person("ex.agent", org: "\(acme)-north-b2", domain: "\(acme).example", name: "Ezra Former", status: "suspended")
        byRegionAdmins.append(.assignment(.init(user: "ex.agent", role: "quote-creator"), candidates: [northAdmin, acmeAdmin]))
        grants.phases.append(byRootAdmins)
        grants.phases.append(byRegionAdmins)
        grants.record(into: &doc)
        return doc
    }

    // MARK: Generated graphs

    /// A graph of `scale` sizes and the curated demo's shape: partner trees of a root, three
    /// regions, two branches per region and a team per branch (16 orgs); about 100 people per
    /// org with three assignments each; the business's host administrator (`hq.admin`, the
    /// first of the `users`) and partner admins at root and region level; org grants at partner
    /// roots and regions; claims, policies, quotes and statements owned by agents. Every grant
    /// is decided through the rules, as in the curated demo (``Granting``).
    func generated(_ scale: Scale) -> ImportDocument {
        var rng = SplitMix64(seed: seed)
        var doc = ImportDocument()
        let hostAdmin = "hq.admin"
        var grants = Granting(hostAdmin: hostAdmin, now: now)
        doc.roles = Self.roles
        doc.orgs = [.init(id: "hq-claims", parent: "host", name: "Claims", kind: "host")]
        doc.entitlements = [.init(org: "partners", role: "partner-user")]
        doc.resources = [
            .init(type: "document", id: "product-guide", org: "host", shared: true, name: "Product guide"),
            .init(type: "document", id: "rate-card", org: "host", shared: true, name: "Rate card"),
        ]
        // The bootstrap (no granter), then phase 1: the business.
        doc.users = [.init(id: hostAdmin, org: "host", name: "Host administrator", email: "admin@host.example")]
        doc.assignments = [.init(user: hostAdmin, role: "host-admin", scope: "host")]
        grants.nextPhase()
        grants.grantToOrg(.init(org: "partners", role: "partner-user", includeSuborgs: true))
        let partnerCount = max(1, (scale.orgs - 3) / 16)
        struct Partner { var root: String; var regions: [String] = []; var orgs: [String] = []; var adjuster: Bool }
        var partners: [Partner] = []
        partners.reserveCapacity(partnerCount)
        doc.orgs.reserveCapacity(partnerCount * 16 + 2)
        var byRootAdmins: [Granting.Planned] = [], byRegionAdmins: [Granting.Planned] = []
        for p in 0..<partnerCount {
            let root = "p\(format0(p, width: 5))"
            let adjuster = p % 7 == 3
            let status = p % 97 == 13 ? "suspended" : (p % 101 == 17 ? "pending" : "active")
            doc.orgs.append(.init(id: root, parent: "partners", name: "Partner \(p)", kind: "partner", status: status))
            for r in adjuster ? Self.adjusterRoles : Self.brokerRoles { doc.entitlements.append(.init(org: root, role: r)) }
            grants.grantToOrg(.init(org: root, role: "catalog-reader", includeSuborgs: true))
            var partner = Partner(root: root, orgs: [root], adjuster: adjuster)
            for r in 1...3 {
                let region = "\(root)-r\(r)"
                doc.orgs.append(.init(id: region, parent: root, name: "Partner \(p) region \(r)", kind: "partner"))
                partner.regions.append(region)
                partner.orgs.append(region)
                for b in 1...2 {
                    let branch = "\(region)b\(b)"
                    let team = "\(branch)t1"
                    doc.orgs.append(.init(id: branch, parent: region, name: "Branch \(b)", kind: "partner"))
                    doc.orgs.append(.init(id: team, parent: branch, name: "Team 1", kind: "partner"))
                    partner.orgs.append(branch)
                    partner.orgs.append(team)
                }
            }
            partners.append(partner)
        }
        // People: the host administrator, admins (root and regions), then agents spread over
        // every org.
        doc.users.reserveCapacity(scale.users)
        var agentsByOrg: [String: [String]] = [:]
        var n = 1  // the host administrator
        func newUser(_ org: String, status: String? = nil) -> String {
            let id = "u\(format0(n, width: 7))"
            n += 1
            let alias: [String]? = n % 10 == 0 ? ["idp|\(id)"] : nil
            doc.users.append(.init(id: id, org: org, name: "User \(n)", email: "\(id)@partner.example", aliases: alias, status: status))
            return id
        }
        // The admin over each org: its region's admin (the root's for the root), then the root's.
        var adminsOver: [String: [String]] = [:]
        for partner in partners {
            let root = partner.root
            guard n < scale.users else { break }
            let admin = newUser(root)
            adminsOver[root] = [admin]
            grants.assign(.init(user: admin, role: "partner-admin", scope: root))
            grants.assign(.init(user: admin, role: "catalog-reader"))
            grants.assign(.init(user: admin, role: "claims-viewer"))
            for region in partner.regions {
                if !partner.adjuster { byRootAdmins.append(.orgGrant(.init(org: region, role: "policy-viewer", includeSuborgs: true), candidates: [admin])) }
                guard n < scale.users else { continue }
                let ra = newUser(region)
                for o in partner.orgs where o == region || o.hasPrefix(region + "b") { adminsOver[o] = [ra, admin] }
                byRootAdmins.append(.assignment(.init(user: ra, role: "partner-admin", scope: region), candidates: [admin]))
                // (policy-viewer is not in an adjuster's ceiling: its region admins handle claims.)
                byRootAdmins.append(.assignment(.init(user: ra, role: partner.adjuster ? "claims-handler" : "policy-viewer"), candidates: [admin]))
                byRootAdmins.append(.assignment(.init(user: ra, role: "claims-viewer"), candidates: [admin]))
            }
        }
        for partner in partners where adminsOver[partner.root] == nil {
            // Not enough users for this partner's admins: its region org grants come from the business.
            if !partner.adjuster {
                for region in partner.regions { grants.grantToOrg(.init(org: region, role: "policy-viewer", includeSuborgs: true)) }
            }
        }
        let agentRoles = [["quote-creator", "policy-servicer", "commission-viewer"], ["claims-handler", "claims-viewer", "catalog-reader"]]
        while n < scale.users {
            let partner = partners[Int(rng.next() % UInt64(partners.count))]
            let org = partner.orgs[Int(rng.next() % UInt64(partner.orgs.count))]
            let r = rng.next() % 1000
            let status: String? = r < 5 ? "suspended" : (r < 10 ? "invited" : nil)
            let u = newUser(org, status: status)
            for (k, role) in agentRoles[partner.adjuster ? 1 : 0].enumerated() {
                let expiring = k == 2 && r % 50 == 7
                byRegionAdmins.append(.assignment(.init(user: u, role: role, validUntil: expiring ? RFC3339.format(now + Timestamp(r) * Self.day / 10) : nil),
                                                  candidates: adminsOver[org] ?? []))
            }
            if agentsByOrg[org, default: []].count < 64 { agentsByOrg[org, default: []].append(u) }
        }
        grants.phases.append(byRootAdmins)
        grants.phases.append(byRegionAdmins)
        grants.record(into: &doc)
        // Resources at the agents' orgs, owned by one of them.
        let types = ["claim", "policy", "quote", "statement"]
        var i = 0
        doc.resources.reserveCapacity(scale.resources)
        while doc.resources.count < scale.resources {
            let partner = partners[Int(rng.next() % UInt64(partners.count))]
            let org = partner.orgs[Int(rng.next() % UInt64(partner.orgs.count))]
            let owners = agentsByOrg[org] ?? []
            let owner = owners.isEmpty ? nil : owners[Int(rng.next() % UInt64(owners.count))]
            let type = types[i % types.count]
            doc.resources.append(.init(type: type, id: "\(type.prefix(2).uppercased())\(format0(i, width: 7))", org: org, owner: owner))
            i += 1
        }
        return doc
    }
}

/// Zero-padded decimal.
func format0(_ v: Int, width: Int) -> String {
    let s = String(v)
    return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
}

/// SplitMix64: a small seeded generator, so a generated graph (or a benchmark's request mix)
/// is the same for the same seed on every machine.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

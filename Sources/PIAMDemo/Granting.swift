import PIAMEngine
import PIAMStore

/// Records who granted each assignment and org grant of a generated document, through the
/// administration rules (DESIGN §3), so that every `granted_by` names someone who could have
/// made that grant.
///
/// Grants are planned in *phases*, in the order an organization is set up: the business first
/// (its staff, the partners' first admins, its org grants), then what the partner root admins
/// hand out, then what the region admins hand out. Every grant of a phase is decided on the graph
/// as it stood before that phase (orgs, users, roles and entitlements as in the final document,
/// plus the grants of the earlier phases): its granter is the first of its candidates for whom
/// the engine's ``AccessGraph/canAssign(actor:target:role:scope:now:)`` or
/// ``AccessGraph/canGrantToOrg(actor:org:role:now:)`` allows it, else the business's host
/// administrator, who holds `role:*` and so may hand out any role (rule 5) wherever rules 1–4
/// let it be given. More holdings never take a power away, so a grant allowed on the graph
/// before its phase stays allowed whatever else the phase grants first: the phases are an
/// honest order in which the grants could have been made.
///
/// The one grant no user made is the bootstrap: the first host administrator's `host-admin`,
/// written by whoever installed PIAM. It keeps `granted_by` absent.
struct Granting {
    /// A grant to make, and who would be asked first: the admin the story has in mind, then
    /// the admins above it.
    enum Planned {
        case assignment(ImportDocument.Assignment, candidates: [String])
        case orgGrant(ImportDocument.OrgGrant, candidates: [String])
    }

    /// The business's host administrator: the granter of last resort.
    let hostAdmin: String
    let now: Timestamp
    /// Phases of planned grants, in order.
    var phases: [[Planned]] = []

    init(hostAdmin: String, now: Timestamp) {
        self.hostAdmin = hostAdmin
        self.now = now
    }

    /// Starts a new phase: the grants planned after this are decided on the graph that includes
    /// every grant planned before it.
    mutating func nextPhase() { phases.append([]) }

    mutating func assign(_ a: ImportDocument.Assignment, by candidates: [String?] = []) {
        if phases.isEmpty { phases.append([]) }
        phases[phases.count - 1].append(.assignment(a, candidates: candidates.compactMap { $0 }))
    }

    mutating func grantToOrg(_ g: ImportDocument.OrgGrant, by candidates: [String?] = []) {
        if phases.isEmpty { phases.append([]) }
        phases[phases.count - 1].append(.orgGrant(g, candidates: candidates.compactMap { $0 }))
    }

    /// can_assign depends on the target only through its org and whether it is the actor itself
    /// (rule 1's check on `user:T`, rules 3 and 4), so one decision serves every target of the
    /// same org: the memo's key.
    struct Key: Hashable {
        var candidates: [String]
        var org: String
        var role: String
        var scope: String?
        var selfGrant: [Bool]
    }

    /// Decides every planned grant and appends it to `doc` with its granter. `doc` holds the
    /// orgs, roles, users and entitlements, and the bootstrap assignment(s) (no granter).
    func record(into doc: inout ImportDocument) {
        var data = Self.graphData(doc)
        let orgOf = Dictionary(data.users.map { ($0.id, $0.org) }, uniquingKeysWith: { a, _ in a })
        for phase in phases where !phase.isEmpty {
            let graph: AccessGraph
            do { graph = try GraphBuilder.build(data) } catch {
                preconditionFailure("demo: the generated graph is invalid: \(error)")
            }
            var memo: [Key: String] = [:]
            var added: [ImportDocument.Assignment] = [], addedGrants: [ImportDocument.OrgGrant] = []
            for item in phase {
                switch item {
                case .assignment(var a, let candidates):
                    let key = Key(candidates: candidates, org: orgOf[a.user] ?? "", role: a.role, scope: a.scope,
                                  selfGrant: candidates.map { $0 == a.user })
                    if let by = memo[key] {
                        a.grantedBy = by
                    } else {
                        let by = (candidates + [hostAdmin]).first {
                            graph.canAssign(actor: $0, target: a.user, role: a.role, scope: a.scope, now: now).allowed
                        }
                        guard let by else {
                            preconditionFailure("demo: nobody may grant \(a.role) to \(a.user): \(graph.canAssign(actor: hostAdmin, target: a.user, role: a.role, scope: a.scope, now: now))")
                        }
                        memo[key] = by
                        a.grantedBy = by
                    }
                    added.append(a)
                case .orgGrant(var g, let candidates):
                    let by = (candidates + [hostAdmin]).first {
                        graph.canGrantToOrg(actor: $0, org: g.org, role: g.role, now: now).allowed
                    }
                    guard let by else {
                        preconditionFailure("demo: nobody may grant \(g.role) to org \(g.org): \(graph.canGrantToOrg(actor: hostAdmin, org: g.org, role: g.role, now: now))")
                    }
                    g.grantedBy = by
                    addedGrants.append(g)
                }
            }
            doc.assignments += added
            doc.orgGrants += addedGrants
            data.assignments += added.map(Self.record)
            data.orgGrants += addedGrants.map(Self.record)
        }
    }

    // MARK: The document as engine records

    /// What `piamctl init` seeds plus the document's orgs, roles, users, entitlements and
    /// grants (resources play no part in who may grant what).
    static func graphData(_ doc: ImportDocument) -> GraphData {
        var d = GraphData()
        d.orgs = Seed.orgs.map { OrgRecord(id: $0.id, parent: $0.parent, kind: $0.kind, status: .active) }
        d.orgs += doc.orgs.map {
            OrgRecord(id: $0.id, parent: $0.parent, kind: $0.kind.flatMap(OrgKind.init(name:)) ?? .partner,
                      status: $0.status.flatMap(OrgStatus.init(name:)) ?? .active)
        }
        d.roles = Seed.roles.map { RoleRecord(id: $0.id, permissions: $0.permissions.map(permission)) }
        d.roles += doc.roles.map { RoleRecord(id: $0.id, permissions: ($0.permissions ?? []).map(permission)) }
        d.users = doc.users.map {
            UserRecord(id: $0.id, org: $0.org, aliases: $0.aliases ?? [], status: $0.status.flatMap(UserStatus.init(name:)) ?? .active,
                       validUntil: $0.validUntil.flatMap(RFC3339.parse))
        }
        d.entitlements = doc.entitlements.map { EntitlementRecord(org: $0.org, role: $0.role) }
        d.assignments = doc.assignments.map(record)
        d.orgGrants = doc.orgGrants.map(record)
        return d
    }

    static func permission(_ text: String) -> Permission {
        do { return try Permission(parsing: text) } catch { preconditionFailure("demo: bad permission \(text)") }
    }

    static func record(_ a: ImportDocument.Assignment) -> AssignmentRecord {
        AssignmentRecord(user: a.user, role: a.role, scope: a.scope, validUntil: a.validUntil.flatMap(RFC3339.parse))
    }

    static func record(_ g: ImportDocument.OrgGrant) -> OrgGrantRecord {
        OrgGrantRecord(org: g.org, role: g.role, includeSuborgs: g.includeSuborgs ?? false, validUntil: g.validUntil.flatMap(RFC3339.parse))
    }
}

import Foundation
import PIAMDemo
import PIAMEngine
@testable import PIAMStore
import Testing

/// Usage facts with known values (the interface piamd's usage files will implement).
struct KnownUsage: UsageFacts {
    var allowed: [String: Timestamp] = [:]
    var used: [HoldingKey: Timestamp] = [:]
    func lastAllowed(user: String) -> Timestamp? { allowed[user] }
    func lastUse(of holding: HoldingKey) -> Timestamp? { used[holding] }
}

/// Dormant-access findings on a graph whose dormant people and grants are known: exact.
@Suite("findings: access that should no longer exist")
struct FindingsTests {
    static let now: Timestamp = 1_800_000_000_000
    static let day: Timestamp = 86_400_000

    /// DelegationScenario's graph, then (as the business and ann, at known times): a grant to
    /// nick 100 days ago, one to nora 5 days ago, bob's access ended yesterday (still active),
    /// ivy invited 40 days ago and ian 5 days ago.
    static func store(_ dir: TempDir) throws -> Store {
        let store = try freshStore(dir)
        _ = try store.importJSON(Data(DelegationScenario.document.utf8))
        func run(_ op: AdminOperation, _ actor: String, daysAgo: Timestamp) throws {
            let r = try store.administer(op, as: actor, now: now - daysAgo * day)
            precondition(r.allowed, "\(r)")
        }
        try run(.grant(user: "nick", role: "claims-viewer", scope: nil, validUntil: nil), "nina", daysAgo: 100)
        try run(.grant(user: "nora", role: "claims-viewer", scope: nil, validUntil: nil), "ann", daysAgo: 5)
        try run(.updateUser(user: "bob", name: nil, email: nil, validUntil: .some(now - day)), "nina", daysAgo: 50)
        try run(.inviteUser(user: "ivy", org: "acme", name: nil, email: nil, aliases: [], validUntil: nil), "ann", daysAgo: 40)
        try run(.inviteUser(user: "ian", org: "acme", name: nil, email: nil, aliases: [], validUntil: nil), "ann", daysAgo: 5)
        return store
    }

    static let usage = KnownUsage(
        allowed: ["ann": now - day, "nora": now - 10 * day, "nick": now - 40 * day, "nina": now - day],
        used: [.assignment(user: "ann", role: "partner-admin", scope: "acme"): now - day,
               .orgGrant(org: "partners", role: "partner-user"): now - day,
               .assignment(user: "nina", role: "claims-adjuster", scope: "host"): now - 31 * day])

    static func summary(_ fs: [Finding]) -> [String] {
        fs.map { f in
            var s = "\(f.kind.rawValue) \(f.user ?? "org:\(f.org)")"
            switch f.holding {
            case .assignment(_, let r, let sc)?: s += " \(r)@\(sc)"
            case .orgGrant(_, let r)?: s += " \(r)"
            case nil: break
            }
            return s
        }
    }

    @Test func exactOnAKnownGraph() throws {
        let dir = TempDir()
        let store = try Self.store(dir)
        let found = try store.findings(usage: Self.usage, days: 30, now: Self.now)
        #expect(Self.summary(found) == [
            "dormant_person nick",
            "dormant_person gus",
            "dormant_holding nina claims-adjuster@host",
            "dormant_holding nina host-admin@host",
            "dormant_holding ann claims-viewer@acme",
            "dormant_holding bob approver@acme",
            "dormant_holding nora partner-admin@acme-north",
            "dormant_holding nick claims-viewer@acme-north-b1",
            "dormant_holding gus partner-admin@globex",
            "invitation_not_accepted ivy",
            "expired_still_active bob",
        ], "\(Self.summary(found))")
        // Who granted it and when: the audit log's grant (nick's), else the record (none here).
        let nick = try #require(found.first { $0.kind == .dormantHolding && $0.user == "nick" })
        #expect(nick.grantedBy == "nina" && nick.grantedAt == Self.now - 100 * Self.day && nick.lastUse == nil)
        #expect(nick.remedy == .revoke(user: "nick", role: "claims-viewer", scope: "acme-north-b1"))
        #expect(nick.json["remedy"] as? [String: String] == ["op": "revoke", "user": "nick", "role": "claims-viewer", "scope": "acme-north-b1"])
        let nina = try #require(found.first { $0.holding == .assignment(user: "nina", role: "claims-adjuster", scope: "host") })
        #expect(nina.lastUse == Self.now - 31 * Self.day && nina.grantedBy == nil)
        #expect(found.first { $0.user == "gus" && $0.kind == .dormantPerson }?.remedy == .suspendUser(user: "gus"))
        #expect(found.first { $0.user == "ivy" }?.remedy == .removeUser(user: "ivy"))
        #expect(found.first { $0.user == "ivy" }?.since == Self.now - 40 * Self.day)
        #expect(found.first { $0.kind == .expiredStillActive }?.since == Self.now - Self.day)
        #expect(found.first { $0.partner == "acme" && $0.user == "nora" }?.partner == "acme")
        // A wider window makes nothing recent dormant: nick (40 days) and ivy are out at 60.
        let wide = Self.summary(try store.findings(usage: Self.usage, days: 60, now: Self.now))
        #expect(!wide.contains("dormant_person nick") && !wide.contains("invitation_not_accepted ivy") && wide.contains("dormant_person gus"))
    }

    @Test func noUsageMakesEveryoneAndEveryHoldingDormant() throws {
        let dir = TempDir()
        let store = try Self.store(dir)
        let found = try store.findings(usage: NoUsage(), days: 30, now: Self.now)
        let people = Set(found.filter { $0.kind == .dormantPerson }.compactMap(\.user))
        #expect(people == ["nina", "ann", "nora", "nick", "gus"])
        let holdings = Set(Self.summary(found.filter { $0.kind == .dormantHolding }))
        // Every assignment and org grant older than the window; nora's 5-day-old grant is not.
        #expect(holdings.contains("dormant_holding org:partners partner-user") && holdings.contains("dormant_holding ann partner-admin@acme"))
        #expect(!holdings.contains("dormant_holding nora claims-viewer@acme-north"))
        #expect(holdings.count == 9, "\(holdings)")
    }

    @Test func aPartnerAdminSeesWhatItMayRemoveAndTheRemediesRemoveIt() throws {
        let dir = TempDir()
        let store = try Self.store(dir)
        let ann = try store.findings(usage: Self.usage, days: 30, now: Self.now, viewer: "ann")
        #expect(Self.summary(ann) == [
            "dormant_person nick",
            "dormant_holding ann claims-viewer@acme",
            "dormant_holding bob approver@acme",
            "dormant_holding nora partner-admin@acme-north",
            "dormant_holding nick claims-viewer@acme-north-b1",
            "invitation_not_accepted ivy",
            "expired_still_active bob",
        ], "\(Self.summary(ann))")
        let nora = Self.summary(try store.findings(usage: Self.usage, days: 30, now: Self.now, viewer: "nora"))
        #expect(nora == ["dormant_person nick", "dormant_holding nora partner-admin@acme-north", "dormant_holding nick claims-viewer@acme-north-b1"],
                "a region admin: its region's, its own grant included (revoke_role on itself is no self-action): \(nora)")
        #expect(try store.findings(usage: Self.usage, days: 30, now: Self.now, viewer: "nick").isEmpty)
        // The remedies, in apply form, fed to apply as ann: every finding ann saw is gone.
        let file = try JSONSerialization.data(withJSONObject: ann.map(\.remedy.json))
        let items = try Store.parseApplyFile(file, defaultActor: "ann")
        let result = try store.apply(items, now: Self.now)
        #expect(result.committed, "\(result.results.map { "\($0.status) \($0.message)" })")
        #expect(try store.findings(usage: Self.usage, days: 30, now: Self.now, viewer: "ann").isEmpty)
        #expect(Self.summary(try store.findings(usage: Self.usage, days: 30, now: Self.now)).count == 4, "the others remain")
    }
}

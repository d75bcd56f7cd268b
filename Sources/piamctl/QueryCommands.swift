import ArgumentParser
import Foundation
import PIAMEngine
import PIAMStore

struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "May SUBJECT do ACTION to TYPE:ID? Prints allow or deny and the reason.",
        discussion: """
            SUBJECT is a user id or alias. Exit status: 0 allow, 1 deny, 2 error.
            A resource the graph does not hold is located with --prop org=ORG (and --prop owner=USER).
            Reasons: allowed unknown_subject subject_inactive subject_expired org_inactive \
            unknown_resource no_permission out_of_scope not_owner outside_ceiling grant_expired \
            self_action host_only.
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The user (id or alias).") var subject: String
    @Argument(help: "The action, e.g. read, suspend, assign_role.") var action: String
    @OptionGroup var resource: ResourceOptions
    @OptionGroup var time: TimeOptions

    func run() async throws {
        let backend = try global.queryBackend()
        let d = try await backend.check(CheckRequest(subject: subject, action: action, resource: try resource.ref()), at: try time.instant())
        try Output.report(d, revision: backend.revision, json: global.json)
    }
}

struct ExplainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Decide like check, and show every rule and holding considered.",
        discussion: "Exit status as check: 0 allow, 1 deny, 2 error.")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The user (id or alias).") var subject: String
    @Argument(help: "The action.") var action: String
    @OptionGroup var resource: ResourceOptions
    @OptionGroup var time: TimeOptions

    func run() async throws {
        let backend = try global.queryBackend()
        let e = try await backend.explain(CheckRequest(subject: subject, action: action, resource: try resource.ref()), at: try time.instant())
        if global.json {
            Output.printJSON(ExplainJSON(explanation: e, revision: backend.revision))
        } else {
            print("\(e.allowed ? "allow" : "deny") \(e.reason.name)  (revision \(backend.revision))")
            if let s = e.subject {
                print("subject   \(s.id) in \(s.org) (\(s.host ? "host" : "partner") user, \(s.status), valid until \(Output.time(s.validUntil)))")
            }
            if let r = e.resource {
                print("resource  \(r.type):\(r.id) at \(r.org)\(r.owner.map { ", owner \($0)" } ?? "")\(r.shared ? ", shared" : "")\(r.registered ? "" : ", unregistered (located by --prop)")")
            }
            print("rules     " + e.steps.map { "\($0.step) \($0.rule) \($0.passed ? "ok" : "FAILED")" }.joined(separator: "\n          "))
            if let inactive = e.inactiveOrgs, !inactive.isEmpty {
                print("inactive  " + inactive.map { "org:\($0.id) \($0.status)" }.joined(separator: ", "))
            }
            if !e.holdings.isEmpty {
                print("holdings")
                print(Output.table(e.holdings.map { h in
                    [h.source, h.role, "scope \(h.scope)" + (h.grantOrg.map { " (grant on \($0)\(h.includeSuborgs == true ? " +suborgs" : ""))" } ?? ""),
                     "until \(Output.time(h.validUntil))", "granted by \(h.grantedBy ?? "-") at \(Output.time(h.grantedAt))",
                     h.permission ?? "-", h.rule]
                }, indent: "  "))
            }
        }
        if !e.allowed { throw ExitCode(1) }
    }

    struct ExplainJSON: Encodable {
        var explanation: Explanation
        var revision: Int64

        func encode(to encoder: any Encoder) throws {
            try explanation.encode(to: encoder)
            var c = encoder.container(keyedBy: Keys.self)
            try c.encode(explanation.allowed ? "allow" : "deny", forKey: .decision)
            try c.encode(revision, forKey: .revision)
        }
        enum Keys: String, CodingKey { case decision, revision }
    }
}

struct WhoCanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "who-can",
        abstract: "List every user allowed to do ACTION to TYPE:ID.",
        discussion: "Users are listed by id, sorted. Every page is fetched unless --limit is given.")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The action.") var action: String
    @OptionGroup var resource: ResourceOptions
    @OptionGroup var paging: PageOptions
    @OptionGroup var time: TimeOptions

    func run() async throws {
        let backend = try global.queryBackend()
        let ref = try resource.ref()
        let now = try time.instant()
        let page = try await paging.collect { c, l in try await backend.listSubjects(action: action, resource: ref, cursor: c, limit: l, at: now) }
        if global.json {
            Output.printJSON(PageJSON(items: page.items, nextCursor: page.nextCursor, revision: backend.revision))
        } else {
            for u in page.items { print(u) }
            if let next = page.nextCursor { print("(more: --cursor \(next))") }
        }
    }
}

struct CanAssignCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "can-assign",
        abstract: "May ACTOR give ROLE to USER (over --scope ORG, default the user's org)?",
        discussion: """
            The five rules of delegated assignment: the actor may assign_role on the user; the \
            role and scope exist; the role is in the user's ceiling; the scope is the user's org \
            or below; and no escalation: the actor is a role administrator (check ACTOR grant \
            role:ROLE allows, as for host-admin) or holds every permission of the role at that \
            scope itself. Exit status: 0 allow, 1 deny, 2 error.
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The admin acting (id or alias).") var actor: String
    @Argument(help: "The user receiving the role.") var user: String
    @Argument(help: "The role.") var role: String
    @Option(help: "The org whose subtree the role acts over (default: the user's org).") var scope: String?
    @OptionGroup var time: TimeOptions

    func run() async throws {
        let backend = try global.queryBackend()
        let d = try await backend.canAssign(actor: actor, target: user, role: role, scope: scope, at: try time.instant())
        try Output.report(d, revision: backend.revision, json: global.json)
    }
}

struct AccessCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "access",
        abstract: "Report a user's roles, scopes and effective permissions, and where each comes from.",
        discussion: "For security reviews: every assignment and org grant the user holds, whether it is in effect and why not, and the permissions in effect over each scope.")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The user (id or alias).") var user: String
    @OptionGroup var time: TimeOptions

    func run() throws {
        let store = try global.openStore(readOnly: true)
        let loaded = try store.loadGraph()
        guard let r = loaded.graph.accessReport(user: user, now: try time.instant()) else {
            throw PIAMError(.notFound, "no such user \"\(user)\"")
        }
        let info = try store.user(idOrAlias: r.user)
        if global.json {
            Output.printJSON(AccessJSON(report: r, name: info?.name, email: info?.email, aliases: info?.aliases ?? [], revision: loaded.revision))
            return
        }
        print("\(r.user)\(info?.name.map { " (\($0))" } ?? "")\(info?.email.map { " <\($0)>" } ?? "")")
        print(Output.table([
            ["org", r.orgPath.joined(separator: " < ")],
            ["kind", r.host ? "host user" : "partner user (partner \(loaded.graph.partnerRoot(ofOrg: r.org) ?? "-"))"],
            ["status", r.status + (r.validUntil.map { ", valid until \(RFC3339.format($0))" } ?? "")],
            ["aliases", (info?.aliases ?? []).joined(separator: ", ").isEmpty ? "-" : (info?.aliases ?? []).joined(separator: ", ")],
            ["may act", r.subjectState == .allowed ? "yes" : "no: \(r.subjectState.name)"],
            ["ceiling", r.ceiling.map { $0.isEmpty ? "(none)" : $0.joined(separator: ", ") } ?? "(host user: none applies)"],
        ]))
        print("holdings")
        if r.holdings.isEmpty { print("  (none)") }
        print(Output.table(r.holdings.map { h in
            [h.source, h.role, "scope \(h.scope)" + (h.grantOrg.map { " (grant on \($0)\(h.includeSuborgs == true ? " +suborgs" : ""))" } ?? ""),
             "until \(Output.time(h.validUntil))", h.state]
        }, indent: "  "))
        print("effective permissions")
        if r.effective.isEmpty { print("  (none)") }
        print(Output.table(r.effective.map { [$0.permission, "over \($0.scope)", "via " + $0.via.joined(separator: "; ")] }, indent: "  "))
        print("(revision \(loaded.revision))")
    }

    struct AccessJSON: Encodable {
        var report: AccessReport
        var name: String?
        var email: String?
        var aliases: [String]
        var revision: Int64

        func encode(to encoder: any Encoder) throws {
            try report.encode(to: encoder)
            var c = encoder.container(keyedBy: Keys.self)
            try c.encode(name, forKey: .name)
            try c.encode(email, forKey: .email)
            try c.encode(aliases, forKey: .aliases)
            try c.encode(revision, forKey: .revision)
        }
        enum Keys: String, CodingKey { case name, email, aliases, revision }
    }
}

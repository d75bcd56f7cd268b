import ArgumentParser
import Foundation
import PIAMEngine
import PIAMStore

struct JITCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jit",
        abstract: "Just-in-time creation of a partner's people (the business only; off by default).",
        discussion: """
            With JIT enabled for a partner root, a subject the graph does not know but that lies \
            inside one of the partner's identity namespaces ('piamctl namespace') is created on \
            its first forward-auth or AuthZEN request — when piamd is configured for it \
            (jit.admind, jit.token_file) — as an active user of the chosen org, with the subject \
            as alias and the partner's default role over that org; audited as jit.create. The \
            org must lie in the partner's subtree, the role in its ceiling and be one the \
            partner's admins could assign.
            """,
        subcommands: [JITSet.self, JITClear.self, JITShow.self])
}

struct JITSet: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Enable JIT for partner root ORG: new people land in --in with --role (host-only, org:entitle).",
        discussion: """
            \(Admin.common)

            EXAMPLES
              piamctl jit set acme --in acme-staff --role broker --as nina.hq
            """)
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: OrgArgument
    @Option(name: .customLong("in"), help: ArgumentHelp("The org in the partner's subtree where new people land.", valueName: "org")) var jitOrg: String
    @Option(help: ArgumentHelp("The role they get over that org.", valueName: "role")) var role: String
    func operation() -> AdminOperation { .setJIT(org: target.org, jitOrg: jitOrg, role: role) }
}

struct JITClear: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "clear",
        abstract: "Switch JIT off for partner root ORG (host-only); the people it created stay.",
        discussion: Admin.common)
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: OrgArgument
    func operation() -> AdminOperation { .clearJIT(org: target.org) }
}

struct JITShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Show the partners with JIT enabled (one partner with --partner), and their namespaces.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Only this partner root.") var partner: String?

    func run() throws {
        let store = try global.openStore(readOnly: true)
        let settings = try store.jitSettings().filter { partner == nil || $0.partner == partner }
        var namespaces: [String: [String]] = [:]
        for (p, n) in try store.allIdentityNamespaces() { namespaces[p, default: []].append(n.text) }
        if global.json {
            struct Row: Encodable { var partner, org, role: String; var namespaces: [String] }
            Output.printJSON(["jit": settings.map { Row(partner: $0.partner, org: $0.org, role: $0.role, namespaces: namespaces[$0.partner] ?? []) }])
            return
        }
        if settings.isEmpty {
            print(partner.map { "just-in-time creation is off for \($0)" } ?? "(no partner has just-in-time creation enabled)")
            return
        }
        print(Output.table([["PARTNER", "ORG", "ROLE", "NAMESPACES"]] + settings.map {
            [$0.partner, $0.org, $0.role, (namespaces[$0.partner] ?? []).joined(separator: " ")]
        }))
    }
}

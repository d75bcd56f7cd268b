import ArgumentParser
import Foundation
import PIAMEngine
import PIAMStore

struct NamespaceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "namespace",
        abstract: "Declare the identity namespaces a partner's aliases may use (the business only).",
        discussion: """
            Aliases name users for the proxy and AuthZEN clients: whoever logs in with subject X \
            is the user carrying X. The business declares, per partner root, the namespaces its \
            people's aliases may use — an IdP issuer prefix ending with a separator \
            ('okta-acme|') or an e-mail domain ('@acme-brokers.example'). A partner's admin (or \
            its SCIM token) may then add aliases to its people only inside them (else refused \
            outside_namespace, audited); a partner without any gets no aliases from its own \
            admins. Host users may assign any alias. Two partners may not declare overlapping \
            namespaces.
            """,
        subcommands: [NamespaceAdd.self, NamespaceRemove.self, NamespaceList.self, NamespaceCheck.self])
}

struct NamespaceAdd: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Declare NAMESPACE for partner root ORG (needs org:entitle, host-only).",
        discussion: """
            \(Admin.common)

            EXAMPLES
              piamctl namespace add acme 'okta-acme|' --as nina.hq
              piamctl namespace add acme @acme-brokers.example --as nina.hq
            """)
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: OrgArgument
    @Argument(help: ArgumentHelp("An issuer prefix ending with | : / # ! or @, or @DOMAIN.", valueName: "namespace")) var namespace: String
    func operation() -> AdminOperation { .addNamespace(org: target.org, namespace: namespace) }
}

struct NamespaceRemove: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Withdraw NAMESPACE of partner root ORG (host-only); existing aliases stay.",
        discussion: Admin.common)
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: OrgArgument
    @Argument(help: ArgumentHelp("The namespace.", valueName: "namespace")) var namespace: String
    func operation() -> AdminOperation { .removeNamespace(org: target.org, namespace: namespace) }
}

struct NamespaceList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List the declared identity namespaces (of one partner with --partner).")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Only this partner root's namespaces.") var partner: String?

    func run() throws {
        let all = try global.openStore().allIdentityNamespaces().filter { partner == nil || $0.partner == partner }
        if global.json {
            Output.printJSON(["namespaces": all.map { ["partner": $0.partner, "namespace": $0.namespace.text, "kind": $0.namespace.kind.rawValue] }])
            return
        }
        if all.isEmpty { print("(no identity namespaces)"); return }
        print(Output.table([["PARTNER", "NAMESPACE", "KIND"]] + all.map { [$0.partner, $0.namespace.text, $0.namespace.kind.rawValue] }))
    }
}

struct NamespaceCheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Report aliases outside their partner's declared namespaces (exit 1 when there are any).",
        discussion: "The same report import prints after a run. Only partners with at least one declared namespace are checked.")
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let v = try global.openStore().namespaceViolations()
        if global.json {
            Output.printJSON(["violations": v.map { ["partner": $0.partner, "user": $0.user, "alias": $0.alias] }])
        } else if v.isEmpty {
            print("every alias lies inside its partner's identity namespaces")
        } else {
            print(Output.table([["PARTNER", "USER", "ALIAS"]] + v.map { [$0.partner, $0.user, $0.alias] }))
        }
        if !v.isEmpty { throw ExitCode(1) }
    }
}

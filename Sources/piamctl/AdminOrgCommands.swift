import ArgumentParser
import Foundation
import PIAMEngine
import PIAMStore

struct OrgCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "org",
        abstract: "Onboard partners and manage organizations.",
        discussion: """
            A partner registers (a pending org under partners with its first admin, invited); \
            the business approves or rejects it and entitles it to roles. Partner admins then \
            create, rename, suspend and reactivate their own sub-orgs; the business removes \
            orgs and moves them within a partner.

            \(Admin.common)
            """,
        subcommands: [
            OrgRegister.self, OrgApprove.self, OrgReject.self, OrgCreate.self, OrgUpdate.self,
            OrgSuspend.self, OrgReactivate.self, OrgRemove.self, OrgMove.self,
        ])
}

struct OrgArgument: ParsableArguments {
    @Argument(help: ArgumentHelp("The organization's id.", valueName: "org")) var org: String
}

struct OrgRegister: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "register",
        abstract: "Register a partner: a pending org under partners and its first admin, invited.",
        discussion: """
            Creates ORG (kind partner, status pending) under --parent (default partners, a host \
            org), and the user --admin (status invited) in it holding partner-admin over ORG. \
            Nothing takes effect before the business approves the org (org approve) with \
            partner-admin among its entitlements, and the admin accepts the invitation (user \
            activate).

            --as names who registers. A host user needs create_suborg on the parent (host-admin \
            has it). Without --as, or with --as equal to --admin, it is a self-registration from \
            a sign-up form: allowed for anyone, since a pending org can do nothing.

            \(Admin.common)

            EXAMPLES
              piamctl org register acme --name "Acme Brokers" --admin ann \\
                  --admin-email ann@acme.example
              piamctl org approve acme --entitle partner-admin --entitle quote-creator \\
                  --as nina.hq
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var target: OrgArgument
    @Option(help: "The org's display name (default: its id).") var name: String?
    @Option(help: "The host org to register under (default: partners).") var parent: String?
    @Option(help: ArgumentHelp("The first admin's user id.", valueName: "user")) var admin: String
    @Option(help: "The first admin's display name.") var adminName: String?
    @Option(help: "The first admin's e-mail.") var adminEmail: String?
    @Option(name: .customLong("as"), help: ArgumentHelp("Who registers (default: the new admin itself, a self-registration).", valueName: "actor"))
    var actor: String?

    func run() async throws {
        try await Admin.perform(.registerOrg(org: target.org, name: name, parent: parent, admin: admin, adminName: adminName, adminEmail: adminEmail),
                                actor: actor ?? admin, global: global)
    }
}

struct OrgApprove: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve",
        abstract: "Approve a pending partner registration (host-only), optionally entitling roles.",
        discussion: """
            Needs org:approve (host-only), and org:entitle with --entitle. The org becomes \
            active. Nobody approves the registration of the org it stands in (self_action).

            \(Admin.common)

            EXAMPLE
              piamctl org approve acme --entitle partner-admin --entitle claims-viewer \\
                  --as nina.hq
            """)
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: OrgArgument
    @Option(help: ArgumentHelp("A role to entitle the org to at once (repeatable).", valueName: "role")) var entitle: [String] = []
    func operation() -> AdminOperation { .approveOrg(org: target.org, entitle: entitle) }
}

struct OrgReject: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "reject",
        abstract: "Reject a pending partner registration (host-only): the org and its people are removed.",
        discussion: "Needs org:approve (host-only); only a pending org can be rejected.\n\n\(Admin.common)")
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: OrgArgument
    func operation() -> AdminOperation { .rejectOrg(org: target.org) }
}

struct OrgCreate: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a sub-organization (a division, region, branch) under --parent.",
        discussion: """
            Needs create_suborg on the parent. The new org is active; its kind is the parent's \
            (partner below partners), or --kind. A host org may not lie below a partner org.

            \(Admin.common)

            EXAMPLE
              piamctl org create acme-north-b3 --parent acme-north \\
                  --name "Acme North, branch 3" --as acme-north-admin
            """)
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: OrgArgument
    @Option(help: "The parent org.") var parent: String
    @Option(help: "The display name (default: the id).") var name: String?
    @Option(help: "host or partner (default: the parent's kind; partner below partners).") var kind: String?
    func operation() throws -> AdminOperation {
        var k: OrgKind?
        if let kind {
            guard let parsed = OrgKind(name: kind) else { throw PIAMError(.invalidInput, "--kind must be host or partner, not \"\(kind)\"") }
            k = parsed
        }
        return .createOrg(org: target.org, parent: parent, name: name, kind: k)
    }
}

struct OrgUpdate: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "update", abstract: "Rename an organization.",
        discussion: "Needs org:update on the org.\n\n\(Admin.common)")
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: OrgArgument
    @Option(help: "The new display name.") var name: String
    func operation() -> AdminOperation { .updateOrg(org: target.org, name: name) }
}

struct OrgSuspend: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "suspend",
        abstract: "Suspend an organization: everyone at or below it is denied (org_inactive).",
        discussion: """
            Needs org:suspend. Nothing is rewritten: the decision rules cut off the subtree \
            while the org is suspended, and reactivating restores everyone exactly as they were. \
            Nobody suspends the org it stands in or one above it (self_action).

            \(Admin.common)
            """)
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: OrgArgument
    func operation() -> AdminOperation { .suspendOrg(org: target.org) }
}

struct OrgReactivate: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "reactivate", abstract: "Reactivate a suspended organization.",
        discussion: "Needs org:reactivate. A pending org is approved (org approve), not reactivated.\n\n\(Admin.common)")
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: OrgArgument
    func operation() -> AdminOperation { .reactivateOrg(org: target.org) }
}

struct OrgRemove: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Remove an organization (refuses a non-empty one unless --cascade).",
        discussion: """
            Needs org:remove (partner-admin does not have it). An org with sub-orgs, users or \
            resources is refused unless --cascade, which removes all of them with their \
            assignments, org grants and entitlements, and says what it removed. The root and \
            partners may not be removed.

            \(Admin.common)
            """)
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: OrgArgument
    @Flag(help: "Remove the sub-orgs, users and resources too.") var cascade = false
    func operation() -> AdminOperation { .removeOrg(org: target.org, cascade: cascade) }
}

struct OrgMove: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "move",
        abstract: "Move an organization below another parent of the same partner.",
        discussion: """
            Needs org:update on the org and create_suborg on the new parent (rights at both \
            ends). A partner org moves only within its partner, and a partner root not at all \
            (cross_partner); a host org moves only among host orgs.

            \(Admin.common)
            """)
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: OrgArgument
    @Option(help: "The new parent org.") var parent: String
    func operation() -> AdminOperation { .moveOrg(org: target.org, parent: parent) }
}

struct EntitleCommand: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "entitle",
        abstract: "Make ROLE available to ORG and its whole subtree (host-only).",
        discussion: """
            Needs org:entitle (host-only). The org's ceiling is the union of its and its \
            ancestors' entitlements; partner admins hand out only roles within it.

            \(Admin.common)

            EXAMPLE
              piamctl entitle acme claims-viewer --as nina.hq
            """)
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: OrgArgument
    @Argument(help: "The role.") var role: String
    func operation() -> AdminOperation { .entitle(org: target.org, role: role) }
}

struct UnentitleCommand: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "unentitle",
        abstract: "Take ROLE out of ORG's entitlements (host-only).",
        discussion: "Needs org:entitle. Holdings of the role below the org stop taking effect (outside_ceiling); nothing is rewritten.\n\n\(Admin.common)")
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: OrgArgument
    @Argument(help: "The role.") var role: String
    func operation() -> AdminOperation { .unentitle(org: target.org, role: role) }
}

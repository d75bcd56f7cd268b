import ArgumentParser
import Foundation
import PIAMEngine
import PIAMStore

struct RoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "role",
        abstract: "Define, change and delete roles (host-only).",
        discussion: """
            Roles are the business's: every action on role:<id> — define, update, delete, and \
            grant (hand the role out whatever one holds) — is host-only, and every role is \
            located at the root org, so only a host user whose holding is scoped at the root \
            has them (host-admin has role:*). A permission is TYPE:ACTION or \
            TYPE:ACTION:owner; ACTION may be *. Host-only permissions (any on role, \
            org:approve, org:entitle) take effect only for host users; org:* held by a \
            partner user grants every org action except approve and entitle.

            \(Admin.common)
            """,
        subcommands: [RoleDefine.self, RoleUpdate.self, RoleDelete.self])
}

struct RoleArgument: ParsableArguments {
    @Argument(help: ArgumentHelp("The role's id.", valueName: "role")) var role: String
}

struct RoleDefine: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "define", abstract: "Define a new role (needs role:define, host-only).",
        discussion: """
            \(Admin.common)

            EXAMPLE
              piamctl role define claims-viewer --name "Claims viewer" \\
                  --permission claim:read --as nina.hq
            """)
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: RoleArgument
    @Option(help: "Display name.") var name: String?
    @Option(help: "Description.") var description: String?
    @Option(help: ArgumentHelp("A permission, TYPE:ACTION or TYPE:ACTION:owner (repeatable).", valueName: "perm")) var permission: [String] = []
    func operation() -> AdminOperation { .defineRole(role: target.role, name: name, description: description, permissions: permission) }
}

struct RoleUpdate: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "update", abstract: "Change a role (needs role:update, host-only).",
        discussion: "With --permission, the role's permissions become exactly the ones given; everyone holding the role gets them at once.\n\n\(Admin.common)")
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: RoleArgument
    @Option(help: "Display name.") var name: String?
    @Option(help: "Description.") var description: String?
    @Option(help: ArgumentHelp("A permission (repeatable); replaces the role's permissions.", valueName: "perm")) var permission: [String] = []
    func operation() throws -> AdminOperation {
        guard name != nil || description != nil || !permission.isEmpty else {
            throw PIAMError(.invalidInput, "nothing to update: give --name, --description or --permission")
        }
        return .updateRole(role: target.role, name: name, description: description, permissions: permission.isEmpty ? nil : permission)
    }
}

struct RoleDelete: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a role (needs role:delete, host-only).",
        discussion: """
            A role in use (assignments, org grants, entitlements, pending requests) is refused \
            unless --force, which revokes every use and lists them.

            \(Admin.common)
            """)
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: RoleArgument
    @Flag(help: "Delete it even in use, revoking every use.") var force = false
    func operation() -> AdminOperation { .deleteRole(role: target.role, force: force) }
}

struct GrantCommand: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "grant",
        abstract: "Give ROLE to USER over --scope ORG (default: the user's org), by can_assign.",
        discussion: """
            Allowed when can_assign is: the actor may assign_role on the user; the role and scope \
            exist; the role is in the user's ceiling (outside_ceiling); the scope is the user's \
            org or below (out_of_scope); and no escalation (escalation): the actor is one of \
            the business's role administrators (role:grant over the root, as host-admin has), \
            or itself holds every permission of the role at that scope. Granting an existing assignment \
            again sets its --until.

            \(Admin.common)

            EXAMPLES
              piamctl grant dana quote-creator --as acme-north-admin
              piamctl grant dana claims-viewer --scope acme-north-b1 \\
                  --until 2027-03-31T00:00:00Z --as acme-north-admin
            """)
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: UserArgument
    @Argument(help: "The role.") var role: String
    @Option(help: "The org whose subtree the role acts over (default: the user's org).") var scope: String?
    @Option(help: ArgumentHelp("When the assignment ends (RFC 3339).", valueName: "time")) var until: String?
    func operation() throws -> AdminOperation {
        .grant(user: target.user, role: role, scope: scope, validUntil: try until.flatMap { try Admin.time($0, option: "until") })
    }
}

struct RevokeCommand: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Take ROLE over --scope ORG (default: the user's org) back from USER.",
        discussion: "Needs user:revoke_role. The last admin of a partner root keeps its power (last_admin).\n\n\(Admin.common)")
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: UserArgument
    @Argument(help: "The role.") var role: String
    @Option(help: "The assignment's scope (default: the user's org).") var scope: String?
    func operation() -> AdminOperation { .revoke(user: target.user, role: role, scope: scope) }
}

struct OrgGrantCommand: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "org-grant",
        abstract: "Give ROLE to every member of ORG (and its sub-orgs with --include-suborgs).",
        discussion: """
            Needs org:grant_role on the org, the role within the org's ceiling unless it is a host \
            org (outside_ceiling), and no escalation: the actor is a role administrator \
            (role:grant, as host-admin has) or holds every permission of the role at the org. Granting \
            again updates --include-suborgs and --until.

            \(Admin.common)

            EXAMPLE
              piamctl org-grant acme-north policy-viewer --include-suborgs \\
                  --as acme-admin
            """)
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: OrgArgument
    @Argument(help: "The role.") var role: String
    @Flag(help: "Members of every org below ORG hold it too.") var includeSuborgs = false
    @Option(help: ArgumentHelp("When the grant ends (RFC 3339).", valueName: "time")) var until: String?
    func operation() throws -> AdminOperation {
        .grantToOrg(org: target.org, role: role, includeSuborgs: includeSuborgs,
                    validUntil: try until.flatMap { try Admin.time($0, option: "until") })
    }
}

struct OrgRevokeCommand: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "org-revoke", abstract: "Take the org grant of ROLE on ORG back.",
        discussion: "Needs org:grant_role on the org.\n\n\(Admin.common)")
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: OrgArgument
    @Argument(help: "The role.") var role: String
    func operation() -> AdminOperation { .revokeFromOrg(org: target.org, role: role) }
}

import ArgumentParser
import Foundation
import PIAMEngine
import PIAMStore

struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user",
        abstract: "Invite, update, suspend, reactivate, move and remove people.",
        discussion: """
            A partner admin manages exactly the people of its scope's subtree. Nobody suspends \
            or removes itself (self_action), and a partner admin may not leave its partner root \
            without an active user able to assign roles there (last_admin).

            \(Admin.common)
            """,
        subcommands: [
            UserInvite.self, UserActivate.self, UserUpdate.self, UserSuspend.self, UserReactivate.self,
            UserRemove.self, UserMove.self, UserAlias.self,
        ])
}

struct UserArgument: ParsableArguments {
    @Argument(help: ArgumentHelp("The user (id or alias).", valueName: "user")) var user: String
}

struct UserInvite: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "invite",
        abstract: "Invite a new user into --org (status invited) and print its invitation.",
        discussion: """
            Needs org:invite_user on the org. Creates the user (status invited) and, in the \
            same transaction, a single-use invitation whose secret is printed this once \
            (--json: invitation_token); the database keeps only its SHA-256. The invitation \
            expires after 7 days (--invitation-expires), never after --valid-until. The user \
            can do nothing until it accepts with that secret and its identity-provider \
            identity (piamctl invitation accept SECRET --identity ID); a lost or expired \
            invitation is replaced with piamctl invitation resend. Ids and aliases share one \
            namespace.

            \(Admin.common)

            EXAMPLE
              piamctl user invite dana --org acme-north --name "Dana Reyes" \\
                  --email dana@acme.example --alias 'okta|dana' --as acme-north-admin
            """)
    @OptionGroup var admin: AdminOptions
    @Argument(help: ArgumentHelp("The new user's id.", valueName: "user")) var user: String
    @Option(help: "The org the user belongs to.") var org: String
    @Option(help: "Display name.") var name: String?
    @Option(help: "E-mail.") var email: String?
    @Option(help: ArgumentHelp("An alias (an IdP subject, a login; repeatable).", valueName: "alias")) var alias: [String] = []
    @Option(help: ArgumentHelp("When the user's access ends (RFC 3339).", valueName: "time")) var validUntil: String?
    @Option(help: ArgumentHelp("When the invitation expires: RFC 3339 or a duration (72h, 14d); default 7d.", valueName: "time"))
    var invitationExpires: String?
    func operation() throws -> AdminOperation {
        .inviteUser(user: user, org: org, name: name, email: email, aliases: alias,
                    validUntil: try validUntil.flatMap { try Admin.time($0, option: "valid-until") },
                    invitationExpires: try invitationExpires.flatMap {
                        try Admin.expiry($0, option: "invitation-expires", now: Output.now(), allowNone: false)
                    })
    }
}

struct UserActivate: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "activate",
        abstract: "Activate an invited user without its invitation (an admin with user:reactivate).",
        discussion: """
            An admin with user:reactivate on the user makes it active at once, revoking its \
            open invitation. The invited user itself cannot: it accepts its invitation with \
            the secret it was given (piamctl invitation accept SECRET --identity ID); \
            "user activate USER --as USER" is refused (invitation_required). A user whose \
            valid-until has passed is refused (subject_expired).

            \(Admin.common)
            """)
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: UserArgument
    func operation() -> AdminOperation { .activateUser(user: target.user) }
}

struct UserUpdate: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "update",
        abstract: "Change a user's name, e-mail or end of access.",
        discussion: "Needs user:update. --valid-until none removes the end.\n\n\(Admin.common)")
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: UserArgument
    @Option(help: "Display name.") var name: String?
    @Option(help: "E-mail.") var email: String?
    @Option(help: ArgumentHelp("When access ends (RFC 3339), or none.", valueName: "time")) var validUntil: String?
    func operation() throws -> AdminOperation {
        let until: Timestamp?? = try validUntil.map { try Admin.time($0, option: "valid-until") }
        guard name != nil || email != nil || until != nil else {
            throw PIAMError(.invalidInput, "nothing to update: give --name, --email or --valid-until")
        }
        return .updateUser(user: target.user, name: name.map { .some($0) }, email: email.map { .some($0) }, validUntil: until)
    }
}

struct UserSuspend: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "suspend",
        abstract: "Suspend a user (subject_inactive) until reactivated.",
        discussion: "Needs user:suspend. Nobody suspends itself (self_action); the last admin of a partner root stays (last_admin).\n\n\(Admin.common)")
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: UserArgument
    func operation() -> AdminOperation { .suspendUser(user: target.user) }
}

struct UserReactivate: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "reactivate", abstract: "Reactivate a suspended user.",
        discussion: "Needs user:reactivate.\n\n\(Admin.common)")
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: UserArgument
    func operation() -> AdminOperation { .reactivateUser(user: target.user) }
}

struct UserRemove: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Remove a user with its aliases, assignments and access requests.",
        discussion: "Needs user:remove. Resources it owned keep existing without an owner. Nobody removes itself (self_action); the last admin of a partner root stays (last_admin).\n\n\(Admin.common)")
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: UserArgument
    func operation() -> AdminOperation { .removeUser(user: target.user) }
}

struct UserMove: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "move",
        abstract: "Move a user to another org of the same partner.",
        discussion: """
            Needs user:update on the user and org:invite_user on the destination (rights at \
            both ends). A partner user stays within its partner, a host user among host orgs \
            (cross_partner). Assignments keep their scope; those that end up above the user's \
            new org stop taking effect (a partner user never acts above its org).

            \(Admin.common)
            """)
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: UserArgument
    @Option(help: "The destination org.") var to: String
    func operation() -> AdminOperation { .moveUser(user: target.user, org: to) }
}

struct UserAlias: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alias", abstract: "Add or remove a user's aliases (needs user:update).",
        subcommands: [UserAliasAdd.self, UserAliasRemove.self])
}

struct UserAliasAdd: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Add an alias (an IdP subject, a login, an e-mail) to a user.",
        discussion: "Needs user:update. An alias may equal no user id or other alias.\n\n\(Admin.common)")
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: UserArgument
    @Argument(help: "The alias.") var alias: String
    func operation() -> AdminOperation { .addAlias(user: target.user, alias: alias) }
}

struct UserAliasRemove: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove", abstract: "Remove one of a user's aliases.",
        discussion: "Needs user:update.\n\n\(Admin.common)")
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: UserArgument
    @Argument(help: "The alias.") var alias: String
    func operation() -> AdminOperation { .removeAlias(user: target.user, alias: alias) }
}

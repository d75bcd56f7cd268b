import ArgumentParser
import Foundation
import PIAMEngine
import PIAMStore

struct InvitationCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "invitation",
        abstract: "Accept, resend, revoke and list invitations.",
        discussion: """
            Inviting a user (user invite, org register) creates the user with status invited \
            and a single-use invitation whose secret is printed once; the database keeps only \
            its SHA-256. The invitee accepts with the secret and its identity-provider identity \
            (invitation accept), which makes it active and binds the identity as an alias. An \
            invitation expires (7 days by default, never after the user's valid-until); a lost \
            or expired one is replaced (invitation resend) or withdrawn (invitation revoke) by \
            an admin with org:invite_user on the user's org.
            """,
        subcommands: [InvitationAccept.self, InvitationResend.self, InvitationRevoke.self, InvitationList.self])
}

struct InvitationAccept: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "accept",
        abstract: "Accept an invitation: the invited user becomes active, with --identity as an alias.",
        discussion: """
            The secret is the invitee's only proof, so there is no --as: in one transaction the \
            invitation's user becomes active (user.activate as itself) and --identity — its \
            identity provider's subject or login — becomes its alias (user.alias.add), unless it \
            already names that user; the invitation is marked used. Both are audited with the \
            user as actor and credential invitation.

            Errors (exit 2, one line): invitation_invalid (no such secret, revoked, or the user \
            is no longer invited), invitation_expired, invitation_used, conflict (the identity \
            names another user).

            EXAMPLE
              piamctl invitation accept piam_inv_3q2f… --identity 'okta|00u1dana'
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: ArgumentHelp("The invitation's secret (piam_inv_…).", valueName: "secret")) var secret: String
    @Option(help: ArgumentHelp("The invitee's identity (an IdP subject, a login), bound as an alias.", valueName: "id"))
    var identity: String

    func run() throws {
        let store = try global.openStore()
        try Admin.report(try store.acceptInvitation(secret: secret, identity: identity, now: Output.now()), json: global.json)
    }
}

struct InvitationResend: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "resend",
        abstract: "Send an invited user a new invitation (its open ones are revoked).",
        discussion: """
            Needs org:invite_user on the user's org; the user must still be invited. Prints the \
            new secret once (--json: invitation_token).

            \(Admin.common)
            """)
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: UserArgument
    @Option(help: ArgumentHelp("When the invitation expires: RFC 3339 or a duration (72h, 14d); default 7d.", valueName: "time"))
    var expires: String?
    func operation() throws -> AdminOperation {
        .resendInvitation(user: target.user,
                          expires: try expires.flatMap { try Admin.expiry($0, option: "expires", now: Output.now(), allowNone: false) })
    }
}

struct InvitationRevoke: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revoke a user's open invitations.",
        discussion: "Needs org:invite_user on the user's org. The user stays (invited); remove it with user remove.\n\n\(Admin.common)")
    @OptionGroup var admin: AdminOptions
    @OptionGroup var target: UserArgument
    func operation() -> AdminOperation { .revokeInvitation(user: target.user) }
}

struct InvitationList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List invitations (never their secrets) with their status: open, used, revoked, expired.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Only this user's (id or alias).") var user: String?

    func run() throws {
        let store = try global.openStore()
        let now = Output.now()
        let rows = try store.invitations(user: user)
        if global.json {
            Output.printJSON(["invitations": rows.map { InvitationJSON($0, now: now) }])
            return
        }
        if rows.isEmpty { print("(no invitations)"); return }
        print(Output.table([["ID", "USER", "STATUS", "CREATED", "BY", "EXPIRES"]] + rows.map {
            ["\($0.id)", $0.user, $0.status(at: now), Output.time($0.createdAt), $0.createdBy ?? "-", Output.time($0.expiresAt)]
        }))
    }

    struct InvitationJSON: Encodable {
        var id: Int64
        var user, status, createdAt, expiresAt: String
        var createdBy, usedAt, revokedAt: String?

        init(_ i: InvitationInfo, now: Timestamp) {
            id = i.id; user = i.user; status = i.status(at: now); createdAt = RFC3339.format(i.createdAt)
            expiresAt = RFC3339.format(i.expiresAt); createdBy = i.createdBy
            usedAt = i.usedAt.map(RFC3339.format); revokedAt = i.revokedAt.map(RFC3339.format)
        }

        enum CodingKeys: String, CodingKey {
            case id, user, status
            case createdAt = "created_at", expiresAt = "expires_at", createdBy = "created_by", usedAt = "used_at", revokedAt = "revoked_at"
        }
    }
}

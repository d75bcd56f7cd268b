import ArgumentParser
import Foundation
import PIAMEngine
import PIAMStore

struct SCIMCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scim",
        abstract: "SCIM 2.0 provisioning: the partners' identity-provider tokens.",
        discussion: """
            Each partner's identity provider (Okta, Entra ID, Google) provisions its people \
            through piam-admind's SCIM endpoint /scim/v2/orgs/PARTNER/ with a bearer token the \
            business creates here. The token acts as the partner's SCIM service user \
            (scim.PARTNER, at the partner root, holding the --role roles over it): every SCIM \
            write is an administrative operation decided by the engine like its admin's.
            """,
        subcommands: [SCIMToken.self])
}

struct SCIMToken: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Create, list and revoke SCIM tokens (at most two live per partner).",
        subcommands: [SCIMTokenCreate.self, SCIMTokenList.self, SCIMTokenRevoke.self])
}

/// A SCIM token as the commands print it with --json.
struct SCIMTokenJSON: Encodable {
    var id: Int64
    var partner, serviceUser, status, createdAt, endpoint: String
    var createdBy, expiresAt, revokedAt, lastUsedAt, secret: String?

    init(_ t: SCIMTokenInfo, now: Timestamp, secret: String? = nil) {
        id = t.id; partner = t.partner; serviceUser = t.serviceUser; status = t.status(at: now); createdAt = RFC3339.format(t.createdAt)
        endpoint = "/scim/v2/orgs/\(t.partner)"
        createdBy = t.createdBy; expiresAt = t.expiresAt.map(RFC3339.format); revokedAt = t.revokedAt.map(RFC3339.format)
        lastUsedAt = t.lastUsedAt.map(RFC3339.format); self.secret = secret
    }

    enum CodingKeys: String, CodingKey {
        case id, partner, status, secret, endpoint
        case serviceUser = "service_user", createdAt = "created_at", createdBy = "created_by", expiresAt = "expires_at"
        case revokedAt = "revoked_at", lastUsedAt = "last_used_at"
    }
}

struct SCIMTokenCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a SCIM token for partner root --partner and print its secret once.",
        discussion: """
            --role (repeatable) is what the partner's identity provider may do: the SCIM service \
            user holds exactly these roles over the partner root (each must be in the partner's \
            ceiling), and hands out only what they cover (can_assign: no escalation). A partner \
            has at most two live tokens: create the new one, switch the IdP, revoke the old one. \
            Audited as scim.token.create (actor os:NAME, credential cli).

            EXAMPLE
              piamctl scim token create --partner acme --role partner-admin --role claims-viewer --expires 365d
            """)
    @OptionGroup var global: GlobalOptions
    @Option(help: "The partner root.") var partner: String
    @Option(help: ArgumentHelp("A role of the SCIM service user (repeatable).", valueName: "role")) var role: [String] = []
    @Option(help: ArgumentHelp("When it stops working: RFC 3339 or a duration (90m, 12h, 30d).", valueName: "time"))
    var expires: String?

    func run() throws {
        let now = Output.now()
        let until = try expires.flatMap { try Admin.expiry($0, option: "expires", now: now, allowNone: true) }
        let store = try global.openStore()
        let (info, secret) = try store.createSCIMToken(partner: partner, roles: role, expires: until, createdBy: TokenOutput.actor,
                                                       now: now, credential: "cli")
        if global.json {
            Output.printJSON(SCIMTokenJSON(info, now: now, secret: secret))
            return
        }
        print("created SCIM token #\(info.id) for partner \(info.partner), acting as user:\(info.serviceUser), \(info.expiresAt.map { "expires \(RFC3339.format($0))" } ?? "no expiry")")
        print("endpoint /scim/v2/orgs/\(info.partner)")
        print(secret)
        print("This secret will not be shown again: store it now (the database keeps only its SHA-256).")
    }
}

struct SCIMTokenList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List SCIM tokens (never their secrets).")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Only this partner's tokens.") var partner: String?

    func run() throws {
        let now = Output.now()
        let rows = try global.openStore().scimTokens(partner: partner)
        if global.json {
            Output.printJSON(["tokens": rows.map { SCIMTokenJSON($0, now: now) }])
            return
        }
        if rows.isEmpty { print("(no SCIM tokens)"); return }
        print(Output.table([["ID", "PARTNER", "SERVICE USER", "STATUS", "CREATED", "EXPIRES", "LAST USED"]] + rows.map {
            ["\($0.id)", $0.partner, $0.serviceUser, $0.status(at: now), Output.time($0.createdAt), Output.time($0.expiresAt), Output.time($0.lastUsedAt)]
        }))
    }
}

struct SCIMTokenRevoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke", abstract: "Revoke a SCIM token by id; it stops working at once.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: ArgumentHelp("The token's id (from scim token list).", valueName: "id")) var id: Int64

    func run() throws {
        let now = Output.now()
        let t = try global.openStore().revokeSCIMToken(id: id, revokedBy: TokenOutput.actor, now: now, credential: "cli")
        if global.json { Output.printJSON(SCIMTokenJSON(t, now: now)); return }
        print("revoked SCIM token #\(t.id) of partner \(t.partner)")
    }
}

import ArgumentParser
import Foundation
import PIAMEngine
import PIAMStore

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Create, list and revoke API tokens for portals and automation.",
        discussion: """
            An API token authenticates a program to piam-admind as one PIAM user, whose \
            operations the engine then decides like anyone else's. Its secret (piam_ and 43 \
            base64url characters) is printed once, at creation; the database keeps only its \
            SHA-256, so neither a listing nor a copy of the database reveals it. Creating and \
            revoking are audited (token.create, token.revoke; actor os:NAME, the operating-system \
            user running piamctl, credential cli). Like import, these commands are for whoever \
            may write the database file.
            """,
        subcommands: [TokenCreate.self, TokenList.self, TokenRevoke.self])
}

/// A token as the token commands print it with --json.
struct TokenJSON: Encodable {
    var id: Int64
    var user, name, status, createdAt: String
    var createdBy, expiresAt, revokedAt, lastUsedAt: String?
    var secret: String?

    init(_ t: TokenInfo, now: Timestamp, secret: String? = nil) {
        id = t.id; user = t.user; name = t.name; status = t.status(at: now); createdAt = RFC3339.format(t.createdAt)
        createdBy = t.createdBy; expiresAt = t.expiresAt.map(RFC3339.format); revokedAt = t.revokedAt.map(RFC3339.format)
        lastUsedAt = t.lastUsedAt.map(RFC3339.format); self.secret = secret
    }

    enum CodingKeys: String, CodingKey {
        case id, user, name, status, secret
        case createdAt = "created_at", createdBy = "created_by", expiresAt = "expires_at", revokedAt = "revoked_at"
        case lastUsedAt = "last_used_at"
    }
}

enum TokenOutput {
    /// Who the CLI records as creator or revoker: the operating-system user.
    static var actor: String { "os:\(Output.osUser())" }
}

struct TokenCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create an API token for --user and print its secret once.",
        discussion: """
            --name is unique among the user's tokens (billing-portal, nightly-sync). --expires \
            is an RFC 3339 time or a duration from now (90m, 12h, 30d); without it the token \
            works until revoked.

            EXAMPLE
              piamctl token create --user portal-bot --name billing-portal --expires 90d
            """)
    @OptionGroup var global: GlobalOptions
    @Option(help: "The user the token authenticates as (id or alias).") var user: String
    @Option(help: "The token's name, unique per user.") var name: String
    @Option(help: ArgumentHelp("When it stops working: RFC 3339 or a duration (90m, 12h, 30d).", valueName: "time"))
    var expires: String?

    func run() throws {
        let now = Output.now()
        let until = try expires.flatMap { try Admin.expiry($0, option: "expires", now: now, allowNone: true) }
        let store = try global.openStore()
        let (info, secret) = try store.createToken(user: user, name: name, expires: until, createdBy: TokenOutput.actor, now: now,
                                                   credential: "cli")
        if global.json {
            Output.printJSON(TokenJSON(info, now: now, secret: secret))
            return
        }
        print("created token \"\(info.name)\" (#\(info.id)) for user:\(info.user), \(info.expiresAt.map { "expires \(RFC3339.format($0))" } ?? "no expiry")")
        print(secret)
        print("This secret will not be shown again: store it now (the database keeps only its SHA-256).")
    }
}

struct TokenList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List API tokens (never their secrets): id, user, name, status, expiry, last use.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Only this user's tokens (id or alias).") var user: String?

    func run() throws {
        let now = Output.now()
        let rows = try global.openStore().tokens(user: user)
        if global.json {
            Output.printJSON(["tokens": rows.map { TokenJSON($0, now: now) }])
            return
        }
        if rows.isEmpty { print("(no tokens)"); return }
        print(Output.table([["ID", "USER", "NAME", "STATUS", "CREATED", "EXPIRES", "LAST USED"]] + rows.map {
            ["\($0.id)", $0.user, $0.name, $0.status(at: now), Output.time($0.createdAt), Output.time($0.expiresAt), Output.time($0.lastUsedAt)]
        }))
    }
}

struct TokenRevoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revoke an API token, by id or by --user and --name.",
        discussion: """
            A revoked token stops working at once (piam-admind checks every request). Revoking \
            a revoked token changes nothing.

            EXAMPLES
              piamctl token revoke 12
              piamctl token revoke --user portal-bot --name billing-portal
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: ArgumentHelp("The token's id (from token list).", valueName: "id")) var id: Int64?
    @Option(help: "The token's user (id or alias), with --name.") var user: String?
    @Option(help: "The token's name, with --user.") var name: String?

    func validate() throws {
        switch (id, user, name) {
        case (.some, nil, nil), (nil, .some, .some): return
        default: throw ValidationError("give the token's id, or --user and --name (not both)")
        }
    }

    func run() throws {
        let now = Output.now()
        let store = try global.openStore()
        let before: TokenInfo?
        let t: TokenInfo
        if let id {
            before = try store.token(id: id)
            t = try store.revokeToken(id: id, revokedBy: TokenOutput.actor, now: now, credential: "cli")
        } else {
            before = try store.tokens(user: user!).first { $0.name == name! }
            t = try store.revokeToken(user: user!, name: name!, revokedBy: TokenOutput.actor, now: now, credential: "cli")
        }
        if global.json {
            Output.printJSON(TokenJSON(t, now: now))
        } else if before?.revokedAt != nil {
            print("token \"\(t.name)\" (#\(t.id)) of user:\(t.user) was already revoked at \(Output.time(t.revokedAt)) (no change)")
        } else {
            print("revoked token \"\(t.name)\" (#\(t.id)) of user:\(t.user)")
        }
    }
}

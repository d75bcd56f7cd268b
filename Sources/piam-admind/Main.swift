import ArgumentParser
import Foundation
import PIAMAdmin
import Logging
import PIAMEngine

/// `piam-admind`: the PIAM administration service.
@main
struct PiamAdmind: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "piam-admind",
        abstract: "Serve PIAM's administration API: every administrative operation, authenticated, decided by the engine, audited.",
        discussion: """
            piam-admind is the writer of a PIAM deployment besides piamctl: it holds the partner \
            graph in memory, follows the change journal, and performs each administrative \
            operation (organizations, registration and approval, entitlements, people, aliases, \
            invitations, roles, grants, org grants, access requests, bulk runs) in one SQLite \
            transaction: BEGIN IMMEDIATE, catch up with the journal, ask the engine for the \
            authenticated user, write, audit, COMMIT. A write costs the change, not the graph. \
            piamd keeps answering decisions read-only; every write's answer carries the revision \
            to pass to piamd as min_revision (read-your-writes).

            CONSOLES
              /console/...             the web consoles of the business, of partners' admins and
                                       of each person, on the same authentication and operations
                                       (every form is one operation, decided and audited like the
                                       API's); --demo adds a demo sign-in on loopback listeners.

            API
              /admin/v1/...            JSON; errors are application/problem+json with PIAM's
                                       reason code; ids of another partner answer 404; lists
                                       are cursor-paged. The OpenAPI 3.1 document is served at
                                       /admin/v1/openapi.json (also: piam-admind openapi).

            AUTHENTICATION (never a bare claim)
              Authorization: Bearer piam_...   an API token (piamctl token create --user U --name N)
              Authorization: Bearer <JWT>      verified against auth.jwt.jwks (issuer, audience,
                                               expiry); auth.jwt.user_claim names the PIAM user
              <auth.trusted_header>: USER      set by the business's reverse proxy after it
                                               authenticated the person; believed only on Unix
                                               socket and loopback listeners (auth.header_listeners)
              Anything else: 401.

            CONFIGURATION
              --config FILE reads a JSON file (Config/piam-admind.json documents every key); \
            PIAM_ADMIND_ + the key in upper case with dots as underscores overrides it \
            (database.path <- PIAM_ADMIND_DATABASE_PATH; lists comma-separated); the options \
            below override both. Keys and defaults:
                database.path                /var/lib/piam/piam.db   the graph database (read-write)
                listen                       ["unix:/run/piam-admin/admin.sock"]  unix:/path or HOST:PORT
                socket_mode                  "0660"                  Unix socket file permissions
                socket_group                 (the service's)         Unix socket file group (the proxy's)
                auth.trusted_header          null                    the proxy's identity header
                auth.header_listeners        (every local listener)  where that header is believed
                auth.jwt.jwks                null                    JWKS file; null: no JWTs
                auth.jwt.issuer / audience   (required with jwks)    required iss and aud
                auth.jwt.user_claim          "sub"                   claim naming the user (id or alias)
                auth.jwt.leeway_seconds      60                      clock skew on exp and nbf
                api.max_body_bytes           4194304                 larger bodies: 413
                api.default_page_size        100                     list page size
                api.max_page_size            1000                    largest list page
                api.idle_timeout_ms          60000                   close connections idle this long
                api.max_connections          256                     open connections per listener
                follow.poll_ms               500                     follow other writers this often
                idempotency.retention_hours  24                      Idempotency-Key answers kept
                log.level                    info                    trace ... critical

            SYSTEMD
              Type=notify: READY=1 once every listener is bound; WATCHDOG=1 while the database \
            answers through the service's threads; STATUS= shows the revision. See \
            systemd/piam-admind.service.

            EXIT STATUS
              0 after SIGTERM/SIGINT; 1 when the configuration or the database is unusable (one \
            line on stderr says why).

            EXAMPLES
              piam-admind --db /var/lib/piam/piam.db --listen unix:/run/piam-admin/admin.sock --trusted-header X-Forwarded-User
              piam-admind --config /etc/piam/piam-admind.json
              piam-admind openapi > admin-v1.json
            """,
        version: AdminDaemon.version,
        subcommands: [Serve.self, PrintOpenAPI.self],
        defaultSubcommand: Serve.self
    )
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the service (the default).")

    @Option(name: .long, help: "A JSON configuration file.") var config: String?
    @Option(name: .long, help: "The graph database (overrides database.path).") var db: String?
    @Option(name: .long, help: "unix:/path or HOST:PORT; repeat for several (overrides listen).") var listen: [String] = []
    @Option(name: .customLong("trusted-header"), help: "The proxy's identity header (overrides auth.trusted_header).")
    var trustedHeader: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.") var logLevel: String?
    @Flag(name: .long, help: "Offer the consoles' demo sign-in (pick any user) on loopback TCP listeners only. Never in production.")
    var demo = false

    func run() async throws {
        do {
            var c = try AdminConfig.load(file: config)
            if let db { c.databasePath = db }
            if !listen.isEmpty { c.listen = try listen.map { (s: String) throws(PIAMError) in try AdminListenAddress(parsing: s) } }
            if let trustedHeader { c.trustedHeader = trustedHeader }
            if demo {
                guard c.listen.contains(where: \.isLoopbackTCP) else {
                    throw PIAMError(.invalidInput, "--demo: the demo sign-in is offered only on a loopback TCP listener (--listen 127.0.0.1:PORT); none is configured")
                }
                c.demo = true
            }
            if let logLevel {
                guard let l = Logger.Level(rawValue: logLevel.lowercased()) else {
                    throw PIAMError(.invalidInput, "--log-level: one of trace, debug, info, notice, warning, error, critical")
                }
                c.logLevel = l
            }
            try c.validate()
            try await AdminServer.run(c)
        } catch let e as PIAMError {
            FileHandle.standardError.write(Data("piam-admind: \(e.message)\n".utf8))
            throw ExitCode(1)
        } catch let e as ExitCode {
            throw e
        } catch {
            FileHandle.standardError.write(Data("piam-admind: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct PrintOpenAPI: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "openapi", abstract: "Print the API's OpenAPI 3.1 document.")
    func run() {
        print(OpenAPIDocument.text, terminator: "")
    }
}

import ArgumentParser
import Foundation
import PIAMEngine
import PIAMServer

/// `piamd`: the PIAM decision daemon.
@main
struct Piamd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "piamd",
        abstract: "Answer partner-access decisions from an in-memory PIAM graph over a Unix socket.",
        discussion: """
            piamd loads the PIAM graph (organizations, users, roles, entitlements, grants, \
            resources) from its SQLite database into memory, read-only, and answers wire protocol \
            v1 queries (CHECK, CHECK_BATCH, EXPLAIN, LIST_RESOURCES, LIST_SUBJECTS, LIST_ACTIONS, \
            CAN_ASSIGN, STATUS, PING) on a Unix domain socket. Every answer carries the graph \
            revision it was computed on; a request may carry a minimum revision and then waits \
            (up to consistency.timeout_ms) for the graph to catch up, else gets STALE.

            CONFIGURATION
              --config FILE reads a JSON file; environment variables named PIAMD_ + the key in \
            upper case with dots as underscores override it (socket.path <- PIAMD_SOCKET_PATH; \
            lists comma-separated). --db and --socket override both. Keys and defaults:
                database.path           /var/lib/piam/piam.db  the graph database (read-only)
                database.replica        false                  a Litestream replica: never held open between
                                                               reads; age from the primary's heartbeat
                database.replica_max_age_ms  30000             replica older than this (or no heartbeat): degraded
                socket.path             /run/piam/piamd.sock   the protocol socket
                socket.mode             "0660"                 socket file permissions (octal string)
                socket.owner            (daemon's)             socket file owner, name or uid
                socket.group            (daemon's)             socket file group, name or gid
                socket.allowed_uids     []                     SO_PEERCRED allowlist of peer uids
                socket.allowed_gids     []                     ... and of peer primary gids
                                                               (both empty: anyone who can open the socket)
                limits.max_frame_bytes  1048576                larger request frames: FRAME_TOO_LARGE, close
                limits.max_connections  1024                   per face; beyond it: OVERLOADED (HTTP 503), close
                                                               (piamd's own watchdog probe is always let in)
                limits.max_connections_per_uid  512            per face and peer uid (unix sockets); beyond it:
                                                               OVERLOADED (HTTP 503), close (0 = no limit)
                limits.max_list         10000                  largest list page (limit 0 = min(1000, this))
                limits.idle_timeout_ms  300000                 close connections with nothing read or owed this
                                                               long, and peers that read none of their answers
                limits.frame_timeout_ms 10000                  a frame / HTTP request head+body must arrive whole
                                                               this soon once begun: BAD_REQUEST (HTTP 408), close
                limits.max_output_bytes 262144                 unread answers above this: stop reading the peer
                                                               until half has drained (backpressure)
                limits.max_waiting_requests  128               requests held behind a min_revision wait per
                                                               connection; beyond it: stop reading the peer
                consistency.timeout_ms  1000                   how long a min_revision request may wait
                reload.poll_ms          1000                   prove the graph current this often: reopen,
                                                               compare revisions, catch up (0 = 1000)
                reload.reclaim_slots    1048576                full reload once applies abandoned this many
                                                               slots, to give their memory back (0 = never)
                server.threads          0                      the socket's event-loop threads (0 = one per core)
                log.level               info                   trace, debug, info, notice, warning, error, critical
                http.listen             (off)                  the HTTP face: unix:/path or 127.0.0.1:PORT ([::1], localhost)
                http.public_url         (from Host)            base URL in the AuthZEN discovery document
                http.socket_mode        "0660"                 HTTP socket file permissions (unix: listen)
                http.socket_group       (daemon's)             HTTP socket file group, name or gid
                http.max_body_bytes     1048576                larger request bodies: 413
                http.threads            0                      the HTTP face's own event-loop threads
                                                               (0 = half the cores, at least 1)
                forward_auth.subject_header  X-Forwarded-User  the header naming the subject (missing: 401)
                forward_auth.no_route   deny                   a request no route matches: deny (403) or allow
                forward_auth.routes     []                     the route table (objects; PIAMD_FORWARD_AUTH_ROUTES as JSON)
                jit.admind              (off)                  just-in-time creation: piam-admind's address,
                                                               unix:/path or http://127.0.0.1:PORT
                jit.token_file          (none)                 file with the API token piamd presents to it
                jit.timeout_ms          2000                   longest a request waits for a creation
                jit.max_in_flight       8                      creations asked for at once (more: deny at once)

            HTTP FACE
              With http.listen set, piamd also speaks HTTP/1.1: the AuthZEN Authorization API 1.0 \
            (POST /access/v1/evaluation, /access/v1/evaluations, /access/v1/search/subject, \
            /access/v1/search/resource, /access/v1/search/action; GET \
            /.well-known/authzen-configuration), GET|POST /forward-auth for nginx auth_request, Caddy \
            forward_auth and Traefik forwardAuth (200 allow, 403 deny, 401 no identity), GET /metrics \
            (Prometheus text) and GET /healthz (200 serving, 503 loading or degraded; with the lag behind \
            the database and the last verification). Answers carry \
            X-PIAM-Revision; a request with X-PIAM-Min-Revision waits for that revision like \
            min_revision on the socket. See Config/ for proxy snippets.

            SYSTEMD
              Run as Type=notify: READY=1 once the graph is loaded and the socket listens; \
            STATUS= with the revision and counts; EXTEND_TIMEOUT_USEC= during a long first load; \
            WATCHDOG=1 every WatchdogSec/2 only after a probe through the real query path \
            succeeded; RELOADING=1 (with MONOTONIC_USEC) and READY=1 around a SIGHUP reload \
            (the unit's ExecReload= is `piamctl reload`, which waits for it to finish); \
            STOPPING=1 on shutdown. With socket activation the socket passed by systemd \
            (FileDescriptorName=piamd, or the only one passed) is used instead of socket.path. \
            Under systemd (JOURNAL_STREAM set) log lines carry syslog priorities for journald.

            SIGNALS
              SIGHUP   full reload from the database; queries keep being answered meanwhile
              SIGTERM, SIGINT  graceful shutdown: stop accepting, answer what was read, close

            EXIT STATUS
              0 after a graceful shutdown; 1 on a fatal error (one line on stderr), e.g. the \
            database cannot be loaded at start or the socket cannot be bound.

            EXAMPLES
              piamd --db /var/lib/piam/piam.db --socket /run/piam/piamd.sock
              piamd --config /etc/piam/piamd.json
              PIAMD_LOG_LEVEL=debug piamd --config /etc/piam/piamd.json
              piamctl check --socket /run/piam/piamd.sock alice read claim:CLM-1
            """,
        version: piamdVersion
    )

    @Option(name: .long, help: ArgumentHelp("JSON configuration file (see CONFIGURATION).", valueName: "file"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp("The graph database; overrides database.path.", valueName: "path"))
    var db: String?

    @Option(name: .long, help: ArgumentHelp("The socket to listen on; overrides socket.path.", valueName: "path"))
    var socket: String?

    @Option(name: .long, help: ArgumentHelp("The HTTP face's address, unix:/path or 127.0.0.1:PORT; overrides http.listen.", valueName: "listen"))
    var http: String?

    @Flag(name: .long, help: "Print the effective configuration as JSON and exit.")
    var printConfig = false

    func run() async throws {
        do {
            var c = try await DaemonConfig.load(file: config)
            if let db { c.databasePath = db }
            if let socket { c.socketPath = socket }
            if let http {
                _ = try HTTPListenAddress(parsing: http)
                c.httpListen = http
            }
            if printConfig {
                print(c.json())
                return
            }
            try await Daemon.run(config: c)
        } catch let e as PIAMError {
            FileHandle.standardError.write(Data("piamd: \(e.message)\n".utf8))
            throw ExitCode(1)
        }
    }
}

import ArgumentParser
import Foundation
import PIAMEngine
import PIAMStore

/// Options of every administrative command: the database (or daemon) and the actor.
struct AdminOptions: ParsableArguments {
    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("as"), help: ArgumentHelp(
        "The user performing the operation (id or alias).",
        discussion: "The engine decides whether this user may do it; the business's own staff are host users.",
        valueName: "actor"))
    var actor: String

    func perform(_ op: AdminOperation) async throws {
        try await Admin.perform(op, actor: actor, global: global)
    }
}

/// An administrative command: builds one operation; `run` performs it.
protocol AdminCommand: AsyncParsableCommand {
    var admin: AdminOptions { get }
    func operation() throws -> AdminOperation
}

extension AdminCommand {
    func run() async throws {
        try await admin.perform(try operation())
    }
}

enum Admin {
    /// Shared discussion text: what every administrative command does and prints.
    static let common = """
        The actor (--as) must be allowed by the engine: with --socket the daemon decides first, \
        else the database; the write then happens in one transaction that decides again on the \
        state inside it. Every attempt, allowed or refused, is recorded in the audit log \
        (piamctl audit).

        Prints what was done and the revision the transaction produced, or "refused REASON: …" \
        (exit status 1). Errors (bad input, no such entity, a conflict) exit 2 with one line on \
        stderr.
        """

    /// Performs one operation: store-level guards, the pre-decision through the query backend
    /// (the daemon's with --socket), then the store's transaction, which decides again inside.
    static func perform(_ op: AdminOperation, actor: String, global: GlobalOptions) async throws {
        // Writable first: it migrates an older schema, which read-only backends refuse.
        let store = try global.openStore()
        let now = Output.now()
        if let (reason, message) = try store.adminPrecheck(op, as: actor) {
            try report(try store.recordRefusal(op, as: actor, reason: reason, message: message, now: now), json: global.json)
            return
        }
        var hint: LoadedGraph?
        let questions = try store.adminQuestions(op, as: actor)
        if !questions.isEmpty {
            // With --socket the daemon decides, on a graph at least as new as the database
            // this write starts from (read-your-writes for the pre-decision).
            let backend: any QueryBackend
            if let path = global.socketPath {
                backend = DaemonBackend(socketPath: path, minRevision: max(global.minRevision ?? 0, try store.revision()))
            } else {
                backend = try global.queryBackend()
            }
            for q in questions {
                let d = try await ask(backend, q, now: now)
                if !d.allowed {
                    let r = try store.recordRefusal(op, as: actor, reason: d.reason.name, message: "\(actor) may not \(q) (pre-decision)", now: now)
                    try report(r, json: global.json)
                }
            }
            if let local = backend as? LocalBackend { hint = LoadedGraph(graph: local.graph, revision: local.revision) }
        }
        try report(try store.administer(op, as: actor, now: now, graph: hint), json: global.json)
    }

    static func ask(_ backend: any QueryBackend, _ q: AdminQuestion, now: Timestamp) async throws -> Decision {
        if case let .canAssign(a, t, r, s) = q {
            return try await backend.canAssign(actor: a, target: t, role: r, scope: s, at: now)
        }
        return try await backend.check(q.preDecisionCheck!, at: now)
    }

    /// Prints a result; exits 1 for a refusal.
    static func report(_ r: AdminResult, json: Bool) throws {
        if json {
            Output.printJSON(ResultJSON(r))
        } else if r.allowed {
            print("\(r.message)\(r.changed ? "" : " (no change)") — revision \(r.revision)")
            for d in r.details { print("  \(d)") }
            if let secret = r.invitationToken { printInvitation(secret, expires: r.invitationExpires, user: r.target) }
        } else {
            print("refused \(r.reason): \(r.message)")
        }
        if !r.allowed { throw ExitCode(1) }
    }

    struct ResultJSON: Encodable {
        var decision: String
        var allowed: Bool
        var reason: String
        var operation: String
        var target: String
        var actor: String
        var message: String
        var changed: Bool
        var revision: Int64
        var details: [String]
        var requestID: Int64?
        var invitationToken: String?
        var invitationExpires: String?

        init(_ r: AdminResult) {
            decision = r.allowed ? "allowed" : "refused"
            allowed = r.allowed; reason = r.reason; operation = r.operation; target = r.target; actor = r.actor
            message = r.message; changed = r.changed; revision = r.revision; details = r.details; requestID = r.requestID
            invitationToken = r.invitationToken; invitationExpires = r.invitationExpires.map(RFC3339.format)
        }

        enum CodingKeys: String, CodingKey {
            case decision, allowed, reason, operation, target, actor, message, changed, revision, details
            case requestID = "request_id", invitationToken = "invitation_token", invitationExpires = "invitation_expires"
        }
    }

    /// Prints an invitation's secret, which is shown this once.
    static func printInvitation(_ secret: String, expires: Timestamp?, user: String) {
        print("  invitation for \(user), valid until \(Output.time(expires)):")
        print("  \(secret)")
        print("  (shown once: the database keeps only its hash; the invitee runs piamctl invitation accept SECRET --identity ID)")
    }

    /// Parses `--until`/`--valid-until`: RFC 3339, or `none` for no end.
    static func time(_ text: String, option: String) throws -> Timestamp? {
        if text == "none" { return nil }
        guard let t = RFC3339.parse(text) else {
            throw PIAMError(.invalidInput, "--\(option): \"\(text)\" is not an RFC 3339 time (e.g. 2027-06-30T00:00:00Z) or none")
        }
        return t
    }

    /// Parses an expiry (`--expires`, `--invitation-expires`): RFC 3339, a duration from now
    /// such as `90m`, `12h`, `30d`, or (when `allowNone`) `none`/`never` for no end.
    static func expiry(_ text: String, option: String, now: Timestamp, allowNone: Bool) throws -> Timestamp? {
        if allowNone && (text == "none" || text == "never") { return nil }
        if let t = RFC3339.parse(text) { return t }
        let units: [Character: Timestamp] = ["m": 60_000, "h": 3_600_000, "d": 86_400_000]
        if let u = text.last, let ms = units[u], let n = Timestamp(text.dropLast()), n > 0, n < 100_000 { return now + n * ms }
        throw PIAMError(.invalidInput, "--\(option): \"\(text)\" is neither an RFC 3339 time nor a duration like 90m, 12h, 30d\(allowNone ? " (or none)" : "")")
    }

    /// Parses `--since`: RFC 3339, or an age such as `30m`, `12h`, `7d`.
    static func since(_ text: String, now: Timestamp) throws -> Timestamp {
        if let t = RFC3339.parse(text) { return t }
        let units: [Character: Timestamp] = ["s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000]
        if let u = text.last, let ms = units[u], let n = Timestamp(text.dropLast()), n >= 0 { return now - n * ms }
        throw PIAMError(.invalidInput, "--since: \"\(text)\" is neither an RFC 3339 time nor an age like 30m, 12h, 7d")
    }
}

import ArgumentParser
import Foundation
import PIAMEngine
import PIAMStore

struct RequestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "request",
        abstract: "Access requests: a user asks for a role, an admin approves or denies.",
        discussion: """
            A user asks for a role for itself (user:request_role with :owner, which \
            partner-user has). An approver sees exactly the requests it may approve — those \
            can_assign allows it to grant — and approving grants the role by can_assign. A \
            request for a role no partner admin holds reaches the business: host-admin \
            (role:grant) may hand out any role. Nobody approves its own request (self_action).

            EXAMPLES
              piamctl request create claims-viewer --note "covering in March" --as dana
              piamctl request list --as acme-north-admin
              piamctl request approve 7 --as acme-north-admin
            """,
        subcommands: [RequestCreate.self, RequestList.self, RequestApprove.self, RequestDeny.self])
}

struct RequestCreate: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Ask for ROLE for yourself (the --as user), over --scope (default: your org).",
        discussion: """
            Needs user:request_role on the actor's own user record. A request nobody could \
            approve is refused at once: the role must exist (unknown_role) and be in the user's \
            ceiling (outside_ceiling), the scope at or below its org (out_of_scope). Prints the \
            request's number.

            \(Admin.common)
            """)
    @OptionGroup var admin: AdminOptions
    @Argument(help: "The role.") var role: String
    @Option(help: "The org the role would act over (default: your org).") var scope: String?
    @Option(help: "Why (for the approver).") var note: String?
    func operation() -> AdminOperation { .requestRole(role: role, scope: scope, note: note) }
}

struct RequestApprove: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve", abstract: "Approve pending request ID: grant its role, by can_assign.",
        discussion: "\(Admin.common)")
    @OptionGroup var admin: AdminOptions
    @Argument(help: "The request's number.") var id: Int64
    @Option(help: "A note for the requester.") var note: String?
    func operation() -> AdminOperation { .approveRequest(id: id, note: note) }
}

struct RequestDeny: AdminCommand {
    static let configuration = CommandConfiguration(
        commandName: "deny", abstract: "Deny pending request ID.",
        discussion: "Needs user:assign_role on the requester.\n\n\(Admin.common)")
    @OptionGroup var admin: AdminOptions
    @Argument(help: "The request's number.") var id: Int64
    @Option(help: "Why (for the requester).") var note: String?
    func operation() -> AdminOperation { .denyRequest(id: id, note: note) }
}

struct RequestList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "The pending requests the --as user may approve (or, with --mine, its own).",
        discussion: "Approvable means can_assign(actor, requester, role, scope) is allowed now, and the request is not the actor's own.")

    @OptionGroup var admin: AdminOptions
    @Flag(help: "The actor's own requests, in any status.") var mine = false

    func run() throws {
        let store = try admin.global.openStore()
        let loaded = try store.loadGraph()
        let now = Output.now()
        let list: [AccessRequestInfo]
        if mine {
            list = try store.accessRequests(user: loaded.graph.userID(for: admin.actor) ?? admin.actor)
        } else {
            list = try store.approvableRequests(approver: admin.actor, graph: loaded.graph, now: now)
        }
        if admin.global.json {
            Output.printJSON(ListJSON(requests: list.map(RequestJSON.init), revision: loaded.revision))
            return
        }
        if list.isEmpty { print(mine ? "(no requests)" : "(nothing to approve)") }
        print(Output.table(list.map { r in
            ["#\(r.id)", r.user, r.role, "over \(r.scope)", r.status, Output.time(r.createdAt), r.note.map { "\"\($0)\"" } ?? ""]
        }))
    }

    struct RequestJSON: Encodable {
        var id: Int64
        var user, role, scope, status: String
        var note: String?
        var createdAt: String
        var decidedBy: String?
        var decidedAt: String?
        var decisionNote: String?

        init(_ r: AccessRequestInfo) {
            id = r.id; user = r.user; role = r.role; scope = r.scope; status = r.status; note = r.note
            createdAt = RFC3339.format(r.createdAt); decidedBy = r.decidedBy; decidedAt = r.decidedAt.map(RFC3339.format)
            decisionNote = r.decisionNote
        }

        enum CodingKeys: String, CodingKey {
            case id, user, role, scope, status, note
            case createdAt = "created_at", decidedBy = "decided_by", decidedAt = "decided_at", decisionNote = "decision_note"
        }
    }

    struct ListJSON: Encodable {
        var requests: [RequestJSON]
        var revision: Int64
    }
}

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Read the audit log: every administrative attempt, allowed or refused.",
        discussion: """
            Each row: time, actor, operation, target, decision (allowed, refused, failed), \
            reason, the revision it produced (or the revision at the time), and the apply run \
            it belonged to. Oldest first.

            --partner P matches rows whose target or actor belongs to partner P (a partner \
            root's id). --since takes an RFC 3339 time or an age (30m, 12h, 7d). --refused \
            keeps refused and failed attempts.

            EXAMPLES
              piamctl audit --partner acme-brokers --since 7d
              piamctl audit --actor acme-brokers-admin --refused --json
            """)

    @OptionGroup var global: GlobalOptions
    @Option(help: "Only this actor (user id or alias).") var actor: String?
    @Option(help: "Only rows of this partner (target or actor).") var partner: String?
    @Option(help: ArgumentHelp("Only rows at or after this time (RFC 3339, or an age: 30m, 12h, 7d).", valueName: "time")) var since: String?
    @Flag(help: "Only refused and failed attempts.") var refused = false
    @Option(help: "At most this many rows (the most recent).") var limit: Int?

    func run() throws {
        let store = try global.openStore()
        let actorID = try actor.map { try store.user(idOrAlias: $0)?.id ?? $0 }
        let rows = try store.auditLog(AuditFilter(actor: actorID, partner: partner, since: try since.map { try Admin.since($0, now: Output.now()) },
                                                  refusedOnly: refused, limit: limit))
        if global.json {
            Output.printJSON(rows.map(EntryJSON.init))
            return
        }
        if rows.isEmpty { print("(no audit rows)") }
        print(Output.table(rows.map { e in
            [RFC3339.format(e.at), e.actor, e.operation, e.target, e.decision == "allowed" ? "allowed" : "\(e.decision) \(e.reason)",
             "rev \(e.revision)", e.message ?? ""]
        }))
    }

    struct EntryJSON: Encodable {
        var id: Int64
        var at, actor, operation, target, decision, reason: String
        var partner, actorPartner, message, batch, credential: String?
        var detail: AnyJSON?
        var revision: Int64

        init(_ e: AuditEntry) {
            id = e.id; at = RFC3339.format(e.at); actor = e.actor; operation = e.operation; target = e.target
            decision = e.decision; reason = e.reason; partner = e.partner; actorPartner = e.actorPartner
            message = e.message; batch = e.batch; revision = e.revision; credential = e.credential
            detail = e.detail.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) }.map(AnyJSON.init)
        }

        enum CodingKeys: String, CodingKey {
            case id, at, actor, operation, target, decision, reason, partner, message, batch, detail, revision, credential
            case actorPartner = "actor_partner"
        }
    }
}

/// A value from JSONSerialization, re-encoded as is.
struct AnyJSON: Encodable {
    let value: Any
    init(_ value: Any) { self.value = value }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch value {
        case let b as Bool where type(of: value) == Bool.self: try c.encode(b)
        case let n as NSNumber: if let i = Int64(exactly: n.doubleValue) { try c.encode(i) } else { try c.encode(n.doubleValue) }
        case let s as String: try c.encode(s)
        case let a as [Any]: try c.encode(a.map(AnyJSON.init))
        case let o as [String: Any]: try c.encode(o.mapValues(AnyJSON.init))
        default: try c.encodeNil()
        }
    }
}

struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Run a JSON list of administrative operations as ONE transaction: all or nothing.",
        discussion: """
            FILE (or - for standard input) is a JSON array of operations, each an object with \
            "op" and the operation's fields, and optionally "as" (its actor; default --as):

              [{"op": "org.register", "org": "acme", "admin": "ann", "as": "nina.hq"},
               {"op": "org.approve", "org": "acme", "entitle": ["partner-admin"]},
               {"op": "user.invite", "user": "bob", "org": "acme", "as": "nina.hq"},
               {"op": "grant", "user": "bob", "role": "partner-admin", "as": "nina.hq"}]

            EXAMPLE
              piamctl apply onboarding.json --as pete.pm --progress

            Operations: \(AdminOperation.names.joined(separator: ", ")). Field names are the \
            command options in snake_case (include_suborgs, valid_until, admin_email, …); \
            times are RFC 3339, and null clears a field of user.update.

            Every operation is decided by the engine on the state the operations before it \
            produced (so a batch may create an org and then invite people into it) and audited \
            in the same transaction. The first refusal or error rolls everything back — the \
            database is left exactly as it was — and is itself audited. Because later entries \
            depend on earlier ones, a batch is decided inside its transaction only, never by \
            the daemon beforehand.

            Operations that invite (org.register, user.invite, invitation.resend) print the \
            invitation's secret once, when the run commits: hand it to the invitee, who \
            accepts with piamctl invitation accept.

            Prints one line per operation (or --json: every result) and the final revision. \
            Exit status: 0 all applied, 1 an operation was refused, 2 an error. Progress on \
            stderr on a terminal, or with --progress.

            --what-if writes nothing: the operations are decided and performed exactly as \
            above, in a transaction that is then rolled back (no audit row either), and the \
            output says who would gain and who would lose which permission over which scope \
            (effective permissions of the people the change can touch, before and after). A \
            refused operation is reported as refused, with nothing gained or lost, because a \
            real run would change nothing. Exit status as for a real run.
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: ArgumentHelp("The JSON file, or - for standard input.", valueName: "file")) var file: String
    @Option(name: .customLong("as"), help: ArgumentHelp("The actor of every operation without its own \"as\".", valueName: "actor"))
    var actor: String?
    @Flag(help: "Show progress even when stderr is not a terminal.") var progress = false
    @Flag(name: .customLong("what-if"), help: "Write nothing: report who would gain and lose which permissions.")
    var whatIf = false

    func run() throws {
        let data: Data
        if file == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            guard let d = FileManager.default.contents(atPath: file) else { throw PIAMError(.io, "\(file): cannot read the file") }
            data = d
        }
        let items = try Store.parseApplyFile(data, defaultActor: actor)
        let store = try global.openStore()
        if whatIf { return try runWhatIf(items, store) }
        var bar = Output.Progress(label: "apply", force: progress)
        bar.note("\(items.count) operations in one transaction")
        let started = Date()
        let result = try store.apply(items) { done, total in bar.update(done, total) }
        let seconds = Date().timeIntervalSince(started)
        if global.json {
            Output.printJSON(ApplyJSON(result, seconds: seconds))
        } else {
            for r in result.results where r.status != "not_run" {
                switch r.status {
                case "ok":
                    print("ok        #\(r.index) \(r.operation) \(r.target): \(r.message)")
                    if let secret = r.invitationToken {
                        print("          invitation (shown once, valid until \(Output.time(r.invitationExpires))): \(secret)")
                    }
                case "rolled_back": print("undone    #\(r.index) \(r.operation) \(r.target)")
                default: print("\(r.status.padding(toLength: 9, withPad: " ", startingAt: 0)) #\(r.index) \(r.operation) \(r.target) as \(r.actor): \(r.reason): \(r.message)")
                }
            }
            let notRun = result.results.filter { $0.status == "not_run" }.count
            if result.committed {
                print("applied \(result.results.count) operations: revision \(result.previousRevision) -> \(result.revision) (\(String(format: "%.2f", seconds)) s, graph loaded \(result.graphLoads)×)")
            } else {
                print("nothing applied (revision \(result.revision))\(notRun > 0 ? "; \(notRun) operations not run" : "")")
            }
        }
        if !result.committed {
            throw ExitCode(result.results.contains { $0.status == "failed" } ? 2 : 1)
        }
    }

    func runWhatIf(_ items: [AdminBatchItem], _ store: Store) throws {
        let started = Date()
        let result = try store.whatIf(items)
        let seconds = Date().timeIntervalSince(started)
        if global.json {
            Output.printJSON(WhatIfJSON(result, seconds: seconds))
        } else {
            print("what-if at revision \(result.revision): nothing is written")
            for r in result.results where r.status != "not_run" {
                if r.status == "ok" {
                    print("ok        #\(r.index) \(r.operation) \(r.target): \(r.message)")
                } else {
                    print("\(r.status.padding(toLength: 9, withPad: " ", startingAt: 0)) #\(r.index) \(r.operation) \(r.target) as \(r.actor): \(r.reason): \(r.message)")
                }
            }
            if result.wouldCommit {
                print(Self.describe(result.diff))
            } else {
                let notRun = result.results.filter { $0.status == "not_run" }.count
                print("a real run would apply nothing\(notRun > 0 ? " (\(notRun) operations not run)" : ""): nobody gains or loses anything")
            }
        }
        if !result.wouldCommit {
            throw ExitCode(result.results.contains { $0.status == "failed" } ? 2 : 1)
        }
    }

    /// The diff for people: one block per person, `+` gained and `-` lost.
    static func describe(_ d: AccessDiff) -> String {
        let gaining = d.people.filter { !$0.gained.isEmpty }.count, losing = d.people.filter { !$0.lost.isEmpty }.count
        var lines = ["\(gaining) people would gain \(d.gainedCount) permissions, \(losing) would lose \(d.lostCount) (\(d.considered) people the change can touch)"]
        for p in d.people {
            lines.append("user:\(p.user) (org:\(p.org))")
            for e in p.gained { lines.append("  + \(e.permission) over org:\(e.scope)  via \(e.via.joined(separator: ", "))") }
            for e in p.lost { lines.append("  - \(e.permission) over org:\(e.scope)  via \(e.via.joined(separator: ", "))") }
        }
        return lines.joined(separator: "\n")
    }

    struct WhatIfJSON: Encodable {
        var whatIf = true
        var wouldCommit: Bool
        var revision: Int64
        var seconds: Double
        var results: [ApplyJSON.Item]
        var considered: Int
        var people: [AccessDiff.Person]

        init(_ r: WhatIfResult, seconds: Double) {
            wouldCommit = r.wouldCommit; revision = r.revision; self.seconds = seconds
            results = r.results.map {
                ApplyJSON.Item(index: $0.index, op: $0.operation, target: $0.target, actor: $0.actor, status: $0.status, reason: $0.reason,
                               message: $0.message, revision: nil, details: $0.details, requestID: nil, invitationToken: nil,
                               invitationExpires: nil)
            }
            considered = r.diff.considered
            people = r.diff.people
        }

        enum CodingKeys: String, CodingKey {
            case revision, seconds, results, considered, people
            case whatIf = "what_if", wouldCommit = "would_commit"
        }
    }

    struct ApplyJSON: Encodable {
        struct Item: Encodable {
            var index: Int
            var op, target, actor, status, reason, message: String
            var revision: Int64?
            var details: [String]
            var requestID: Int64?
            var invitationToken: String?
            var invitationExpires: String?
            enum CodingKeys: String, CodingKey {
                case index, op, target, status, reason, message, revision, details
                case actor = "as", requestID = "request_id", invitationToken = "invitation_token", invitationExpires = "invitation_expires"
            }
        }
        var batch: String
        var committed: Bool
        var previousRevision: Int64
        var revision: Int64
        var graphLoads: Int
        var seconds: Double
        var results: [Item]

        init(_ r: ApplyResult, seconds: Double) {
            batch = r.batch; committed = r.committed; previousRevision = r.previousRevision; revision = r.revision
            graphLoads = r.graphLoads; self.seconds = seconds
            results = r.results.map {
                Item(index: $0.index, op: $0.operation, target: $0.target, actor: $0.actor, status: $0.status, reason: $0.reason,
                     message: $0.message, revision: $0.revision, details: $0.details, requestID: $0.requestID,
                     invitationToken: $0.invitationToken, invitationExpires: $0.invitationExpires.map(RFC3339.format))
            }
        }

        enum CodingKeys: String, CodingKey {
            case batch, committed, revision, results, seconds
            case previousRevision = "previous_revision", graphLoads = "graph_loads"
        }
    }
}

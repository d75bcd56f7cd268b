import ArgumentParser
import Foundation
import PIAMEngine
import PIAMStore

/// Options every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The graph database.", discussion: "Default: $PIAM_DB, else /var/lib/piam/piam.db.", valueName: "path"))
    var db: String?

    @Option(name: .long, help: ArgumentHelp(
        "Ask the piamd daemon on this socket instead of evaluating the database in-process.",
        discussion: "Default: $PIAM_SOCKET. Applies to check, explain, who-can, can-assign, list resources|actions and status.",
        valueName: "path"))
    var socket: String?

    @Option(name: .long, help: ArgumentHelp(
        "With --socket: answer only from a graph at least this new (the revision a write printed).",
        valueName: "revision"))
    var minRevision: Int64?

    @Flag(name: .long, help: "Print JSON for programs instead of text.")
    var json = false

    static let defaultDatabase = "/var/lib/piam/piam.db"

    /// The database path: --db, else $PIAM_DB, else the default.
    var databasePath: String {
        if let db { return db }
        if let env = ProcessInfo.processInfo.environment["PIAM_DB"], !env.isEmpty { return env }
        return Self.defaultDatabase
    }

    /// The daemon socket: --socket, else $PIAM_SOCKET, else nil (evaluate in-process).
    var socketPath: String? {
        if let socket { return socket }
        if let env = ProcessInfo.processInfo.environment["PIAM_SOCKET"], !env.isEmpty { return env }
        return nil
    }

    /// The backend that answers queries: the daemon with --socket/$PIAM_SOCKET, else the
    /// database evaluated in-process.
    func queryBackend() throws -> any QueryBackend {
        if let path = socketPath { return DaemonBackend(socketPath: path, minRevision: minRevision ?? 0) }
        if minRevision != nil { throw PIAMError(.invalidInput, "--min-revision needs --socket (the database is always current)") }
        return try LocalBackend(options: self)
    }

    /// Opens the store (it must exist and hold a PIAM schema).
    func openStore(readOnly: Bool = false) throws -> Store {
        try Store(path: databasePath, readOnly: readOnly)
    }
}

/// `--at TIME` for queries: evaluate at another instant (default: now).
struct TimeOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Evaluate at this instant instead of now.", valueName: "rfc3339"))
    var at: String?

    func instant() throws -> Timestamp {
        guard let at else { return Output.now() }
        guard let t = RFC3339.parse(at) else {
            throw PIAMError(.invalidInput, "--at: \"\(at)\" is not an RFC 3339 time (e.g. 2027-01-31T12:00:00Z)")
        }
        return t
    }
}

/// A resource argument `TYPE:ID` plus repeated `--prop key=value`.
struct ResourceOptions: ParsableArguments {
    @Argument(help: ArgumentHelp("The resource, TYPE:ID (e.g. claim:CLM-1, user:alice, org:acme).", valueName: "type:id"))
    var resource: String

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp(
        "A resource property, org=ORG or owner=USER, locating a resource the graph does not hold.", valueName: "key=value"))
    var prop: [String] = []

    func ref() throws -> ResourceRef {
        guard var r = ResourceRef(parsing: resource) else {
            throw PIAMError(.invalidInput, "resource \"\(resource)\" is not TYPE:ID")
        }
        for p in prop {
            guard let eq = p.firstIndex(of: "=") else {
                throw PIAMError(.invalidInput, "--prop \"\(p)\" is not key=value")
            }
            let key = String(p[..<eq])
            let value = String(p[p.index(after: eq)...])
            switch key {
            case "org": r.org = value
            case "owner": r.owner = value
            default: throw PIAMError(.invalidInput, "--prop \(key): the properties understood are org and owner")
            }
        }
        return r
    }
}

/// Where query commands get their answers. Today: the database, evaluated in-process with the
/// daemon's engine. The daemon (`--socket`) is a second implementation of the same protocol.
protocol QueryBackend {
    /// The graph revision answers are computed on.
    var revision: Int64 { get }
    func check(_ request: CheckRequest, at now: Timestamp) async throws -> Decision
    func explain(_ request: CheckRequest, at now: Timestamp) async throws -> Explanation
    func listSubjects(action: String, resource: ResourceRef, cursor: String?, limit: Int, at now: Timestamp) async throws -> Page
    func listResources(subject: String, action: String, type: String, cursor: String?, limit: Int, at now: Timestamp) async throws -> Page
    func listActions(subject: String, resource: ResourceRef, at now: Timestamp) async throws -> [String]
    func canAssign(actor: String, target: String, role: String, scope: String?, at now: Timestamp) async throws -> Decision
}

/// Answers from a graph loaded from the database in one read transaction.
struct LocalBackend: QueryBackend {
    let graph: AccessGraph
    let revision: Int64

    init(options: GlobalOptions) throws {
        let loaded = try options.openStore(readOnly: true).loadGraph()
        graph = loaded.graph
        revision = loaded.revision
    }

    func check(_ request: CheckRequest, at now: Timestamp) -> Decision { graph.check(request, now: now) }
    func explain(_ request: CheckRequest, at now: Timestamp) -> Explanation { graph.explain(request, now: now) }
    func listSubjects(action: String, resource: ResourceRef, cursor: String?, limit: Int, at now: Timestamp) throws -> Page {
        try graph.listSubjects(action: action, resource: resource, cursor: cursor, limit: limit, now: now)
    }
    func listResources(subject: String, action: String, type: String, cursor: String?, limit: Int, at now: Timestamp) throws -> Page {
        try graph.listResources(subject: subject, action: action, type: type, cursor: cursor, limit: limit, now: now)
    }
    func listActions(subject: String, resource: ResourceRef, at now: Timestamp) -> [String] {
        graph.listActions(subject: subject, resource: resource, now: now)
    }
    func canAssign(actor: String, target: String, role: String, scope: String?, at now: Timestamp) -> Decision {
        graph.canAssign(actor: actor, target: target, role: role, scope: scope, now: now)
    }
}

/// Paging options of list commands: by default every page is fetched.
struct PageOptions: ParsableArguments {
    @Option(name: .long, help: "Return at most this many items (one page) and print the cursor for the next.")
    var limit: Int?

    @Option(name: .long, help: "Continue after this cursor (from a previous --limit page).")
    var cursor: String?

    static let pageSize = 1000

    /// Fetches one page (with --limit) or all of them.
    func collect(_ fetch: (String?, Int) async throws -> Page) async throws -> Page {
        if let limit {
            guard limit > 0 else { throw PIAMError(.invalidInput, "--limit must be at least 1") }
            return try await fetch(cursor, limit)
        }
        var items: [String] = []
        var c = cursor
        repeat {
            let p = try await fetch(c, Self.pageSize)
            items += p.items
            c = p.nextCursor
        } while c != nil
        return Page(items: items, nextCursor: nil)
    }
}

enum Output {
    static func now() -> Timestamp { Timestamp(Date().timeIntervalSince1970 * 1000) }

    static func printJSON<T: Encodable>(_ value: T) {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = (try? enc.encode(value)) ?? Data("{}".utf8)
        data.append(0x0A)
        write(data)
    }

    /// Writes to standard output; a reader that has gone (`| head`, `| grep -q`) ends piamctl
    /// quietly with the status a SIGPIPE would give (141), not a crash.
    static func write(_ data: Data) {
        do {
            try FileHandle.standardOutput.write(contentsOf: data)
        } catch {
            exit(141)
        }
    }

    static func time(_ t: Timestamp?) -> String { t.map(RFC3339.format) ?? "-" }

    /// The operating-system user running piamctl (the effective user), as audit rows name it.
    static func osUser() -> String {
        if let pw = getpwuid(geteuid()), let name = pw.pointee.pw_name { return String(cString: name) }
        return "uid \(geteuid())"
    }

    /// Left-aligned columns.
    static func table(_ rows: [[String]], indent: String = "") -> String {
        guard let width = rows.map(\.count).max() else { return "" }
        var widths = [Int](repeating: 0, count: width)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        return rows.map { r in
            indent + r.enumerated().map { i, c in i == r.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }.joined(separator: "\n")
    }

    /// Progress on stderr: one line rewritten in place on a terminal; with `--progress` on a
    /// pipe or log, plain lines every two seconds.
    struct Progress {
        let enabled: Bool
        let terminal: Bool
        let label: String
        var last = Date.distantPast

        init(label: String, force: Bool) {
            self.label = label
            terminal = isatty(2) != 0
            enabled = force || terminal
        }

        mutating func update(_ done: Int, _ total: Int) {
            guard enabled else { return }
            let t = Date()
            guard done == total || t.timeIntervalSince(last) >= (terminal ? 0.2 : 2) else { return }
            last = t
            let pct = total > 0 ? Double(done) * 100 / Double(total) : 100
            let line = String(format: "%@: %d/%d rows (%.0f%%)", label, done, total, pct)
            if terminal {
                FileHandle.standardError.write(Data(("\r" + line + (done == total ? "\n" : "")).utf8))
            } else {
                FileHandle.standardError.write(Data((line + "\n").utf8))
            }
        }

        func note(_ text: String) {
            guard enabled else { return }
            FileHandle.standardError.write(Data("\(label): \(text)\n".utf8))
        }
    }

    /// A byte count for people: 512 B, 3.4 KB, 506.1 MB.
    static func bytes(_ n: Int64) -> String {
        if n < 1024 { return "\(n) B" }
        let units = ["KB", "MB", "GB", "TB"]
        var v = Double(n) / 1024
        var i = 0
        while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
        return String(format: "%.1f %@", v, units[i])
    }
}

/// JSON shapes shared by several commands.
struct DecisionJSON: Encodable {
    var decision: String
    var allowed: Bool
    var reason: String
    var revision: Int64

    init(_ d: Decision, revision: Int64) {
        decision = d.allowed ? "allow" : "deny"
        allowed = d.allowed
        reason = d.reason.name
        self.revision = revision
    }
}

extension Output {
    /// Prints a decision (`allow` / `deny REASON`, or JSON) and exits 1 on deny, as DESIGN §7
    /// asks of check-like commands.
    static func report(_ d: Decision, revision: Int64, json: Bool) throws {
        if json {
            printJSON(DecisionJSON(d, revision: revision))
        } else {
            print(d.allowed ? "allow" : "deny \(d.reason.name)")
        }
        if !d.allowed { throw ExitCode(1) }
    }
}

struct PageJSON: Encodable {
    var items: [String]
    var nextCursor: String?
    var revision: Int64

    enum CodingKeys: String, CodingKey {
        case items, revision
        case nextCursor = "next_cursor"
    }
}

extension PIAMError: LocalizedError {
    public var errorDescription: String? { message }
}

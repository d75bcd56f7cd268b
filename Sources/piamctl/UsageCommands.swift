import ArgumentParser
import Foundation
import PIAMEngine
import PIAMStore

struct UsageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usage",
        abstract: "Who uses what: reports from the usage files piamd writes (usage.path).",
        discussion: """
            piamd records every decision it answers (socket, AuthZEN, forward-auth) when its \
            usage.path is set: per person and feature (type:action) the decisions allowed and \
            denied and the last allowed one, per holding (assignment or org grant) the decisions \
            it was the one to allow and the last, per partner the people active each day. Each \
            piamd host writes its own file; these reports merge every file given (counts added, \
            times the latest). People and holdings come from the graph database (--db).

            USAGE FILES
              --usage PATH, repeatable: a usage file, or a directory whose *.db files are read. \
            Default: $PIAM_USAGE (paths separated by ':'), else /var/lib/piam-usage.

            EXAMPLES
              piamctl usage partners --usage /var/lib/piam-usage
              piamctl usage partner acme-brokers --usage host1.db --usage host2.db
              piamctl usage user acme-brokers-north-b1-agent1 --json
              piamctl usage dormant --days 90 --usage /var/lib/piam-usage
            """,
        subcommands: [UsagePartners.self, UsagePartner.self, UsageUser.self, UsageDormant.self])
}

/// The options every usage report takes.
struct UsageOptions: ParsableArguments {
    @Option(name: .customLong("usage"), help: ArgumentHelp(
        "A usage file, or a directory of them (repeatable).", discussion: "Default: $PIAM_USAGE, else /var/lib/piam-usage.",
        valueName: "path"))
    var paths: [String] = []

    @Flag(help: "Print CSV (the report's main table) instead of text.")
    var csv = false

    @Option(help: "Features listed at most.") var limit = 20

    static let defaultDirectory = "/var/lib/piam-usage"

    /// The files to read: each --usage (a directory's *.db files), else $PIAM_USAGE, else the
    /// default directory.
    func files() throws -> [String] {
        if !paths.isEmpty { return try UsageReader.files(paths) }
        if let env = ProcessInfo.processInfo.environment["PIAM_USAGE"], !env.isEmpty {
            return try UsageReader.files(env.split(separator: ":").map(String.init))
        }
        return try UsageReader.files([Self.defaultDirectory])
    }

    func reader() throws -> UsageReader { try UsageReader(paths: files()) }
}

enum CSV {
    /// One CSV line (RFC 4180 quoting).
    static func line(_ fields: [String]) -> String {
        fields.map { f in
            f.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                ? "\"" + f.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : f
        }.joined(separator: ",")
    }

    static func features(_ fs: [UsageReport.Feature]) {
        print(line(["feature", "people", "allowed", "denied", "last_allowed"]))
        for f in fs { print(line([f.feature, String(f.people), String(f.allowed), String(f.denied), f.lastAllowed ?? ""])) }
    }
}

enum UsageText {
    static func features(_ fs: [UsageReport.Feature]) {
        if fs.isEmpty {
            print("  (none recorded)")
            return
        }
        let w = max(7, fs.map(\.feature.count).max() ?? 0)
        print("  " + "feature".padding(toLength: w, withPad: " ", startingAt: 0) + "  people   allowed    denied  last allowed")
        for f in fs {
            print("  " + f.feature.padding(toLength: w, withPad: " ", startingAt: 0)
                  + String(format: "  %6d  %8d  %8d  ", f.people, f.allowed, f.denied) + (f.lastAllowed ?? "never"))
        }
    }
}

struct UsagePartners: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "partners",
        abstract: "Partners ranked by activity: people active over 30 and 7 days, then decisions.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var usage: UsageOptions

    func run() throws {
        let ranking = try usage.reader().partnerRanking(now: Output.now())
        if global.json { return Output.printJSON(ranking) }
        if usage.csv {
            print(CSV.line(["partner", "active_30d", "active_7d", "allowed", "denied", "last_activity"]))
            for p in ranking {
                print(CSV.line([p.partner, String(p.active30), String(p.active7), String(p.allowed), String(p.denied), p.lastActivity ?? ""]))
            }
            return
        }
        if ranking.isEmpty { return print("no partner activity recorded") }
        let w = max(7, ranking.map(\.partner.count).max() ?? 0)
        print("partner".padding(toLength: w, withPad: " ", startingAt: 0) + "  active 30d  active 7d    allowed     denied  last activity")
        for p in ranking {
            print(p.partner.padding(toLength: w, withPad: " ", startingAt: 0)
                  + String(format: "  %10d  %9d  %9d  %9d  ", p.active30, p.active7, p.allowed, p.denied) + (p.lastActivity ?? "never"))
        }
    }
}

struct UsagePartner: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "partner",
        abstract: "One partner: its people by status, active people over 1/7/30/90 days, most used features.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var usage: UsageOptions
    @Argument(help: "The partner (its root org id).") var partner: String

    func run() throws {
        let now = Output.now()
        let graph = try global.openStore(readOnly: true).loadGraph().graph
        let r = try usage.reader().partnerReport(partner, graph: graph, now: now, limit: usage.limit)
        if global.json { return Output.printJSON(r) }
        if usage.csv { return CSV.features(r.features) }
        print("partner \(r.partner)")
        print("people: " + r.usersByStatus.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))
        print("active: " + ["1d", "7d", "30d", "90d"].map { "\(r.active[$0] ?? 0) over \($0)" }.joined(separator: ", "))
        print("most used features (by people, then decisions):")
        UsageText.features(r.features)
    }
}

struct UsageUser: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user",
        abstract: "One person: last activity, most used features, each holding with its last use.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var usage: UsageOptions
    @Argument(help: "The user (id or alias).") var user: String

    func run() throws {
        let now = Output.now()
        let graph = try global.openStore(readOnly: true).loadGraph().graph
        let r = try usage.reader().userReport(user, graph: graph, now: now, limit: usage.limit)
        if global.json { return Output.printJSON(r) }
        if usage.csv {
            print(CSV.line(["source", "role", "scope", "grant_org", "state", "uses", "last_used"]))
            for h in r.holdings {
                print(CSV.line([h.source, h.role, h.scope, h.grantOrg ?? "", h.state, String(h.uses), h.lastUsed ?? ""]))
            }
            return
        }
        print("user \(r.user) (\(r.status)\(r.partner.map { ", partner \($0)" } ?? ", host"))")
        print("last activity: \(r.lastActivity ?? "never")")
        print("most used features:")
        UsageText.features(r.features)
        print("holdings:")
        if r.holdings.isEmpty { print("  (none)") }
        for h in r.holdings {
            let what = h.source == "org_grant" ? "org grant \(h.role) on \(h.grantOrg ?? h.scope)" : "\(h.role) over \(h.scope)"
            print("  \(what) [\(h.state)]: \(h.uses) decisions, last \(h.lastUsed ?? "never")")
        }
    }
}

struct UsageDormant: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dormant",
        abstract: "Access nobody uses: dormant people and dormant holdings, each with the operation that removes it.",
        discussion: """
            The dormant_person and dormant_holding findings of `piamctl findings` (which also \
            lists invitations never accepted and people past valid_until), read from the usage \
            files: a person active with effective holdings and no allowed decision in --days days; \
            an assignment or org grant that allowed no decision in --days days and was granted \
            before them, with who granted it and when. --json remedies are in apply form.
            """)
    @OptionGroup var global: GlobalOptions
    @OptionGroup var usage: UsageOptions
    @Option(help: ArgumentHelp("The dormancy window in days.", valueName: "n")) var days = 90
    @Option(name: .customLong("as"), help: ArgumentHelp("Only what this user may view and remove.", valueName: "actor")) var actor: String?

    func run() throws {
        let facts = try usage.reader().facts()
        let now = Output.now()
        let found = try global.openStore(readOnly: true).findings(usage: facts, days: days, now: now, viewer: actor)
            .filter { $0.kind == .dormantPerson || $0.kind == .dormantHolding }
        FindingsCommand.print(found, days: days, now: now, json: global.json, csv: usage.csv)
    }
}

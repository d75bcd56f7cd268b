import ArgumentParser
import Foundation
import PIAMEngine
import PIAMStore

/// The usage facts of the usage files at `paths` (piamd's usage databases, or directories of
/// them); ``NoUsage`` when none are given, so that every person and holding counts as unused.
func loadUsageFacts(paths: [String]) throws -> any UsageFacts {
    if paths.isEmpty { return NoUsage() }
    return try UsageReader(paths: UsageReader.files(paths)).facts()
}

struct FindingsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "findings",
        abstract: "Access that should no longer exist, each with the operation that removes it.",
        discussion: """
            Four kinds of finding:
              dormant_person           active, with effective holdings, and no allowed decision \
            in N days (remedy: user.suspend)
              dormant_holding          an assignment or org grant that allowed nothing in N days \
            and was granted more than N days ago, with who granted it and when (from the audit \
            log, else the grant's record) (remedy: revoke / org-revoke)
              invitation_not_accepted  invited N days ago or more, never accepted (remedy: user.remove)
              expired_still_active     past valid_until but still active (remedy: user.suspend)

            Usage comes from piamd's usage files (--usage PATH…); without them every person and \
            holding counts as unused. --as ACTOR shows only what that user may view (a partner \
            admin: its partner's findings).

            --json prints {"findings": [...]} where each remedy is an operation in apply form: \
            feed the ones you choose to piamctl apply (as whoever may perform them):

              piamctl findings --days 90 --json | jq '[.findings[].remedy]' > cleanup.json
              piamctl apply cleanup.json --as nina.hq --what-if

            --csv prints one row per finding, the remedy as JSON in the last column.
            """)

    @OptionGroup var global: GlobalOptions
    @Option(help: ArgumentHelp("The dormancy window in days.", valueName: "n")) var days = 90
    @Option(parsing: .upToNextOption, help: ArgumentHelp("piamd usage files to read.", valueName: "path"))
    var usage: [String] = []
    @Option(name: .customLong("as"), help: ArgumentHelp("Only what this user may view.", valueName: "actor")) var actor: String?
    @Flag(help: "Print CSV.") var csv = false

    func run() throws {
        let facts = try loadUsageFacts(paths: usage)
        let store = try global.openStore(readOnly: true)
        let now = Timestamp(Date().timeIntervalSince1970 * 1000)
        let found = try store.findings(usage: facts, days: days, now: now, viewer: actor)
        Self.print(found, days: days, now: now, json: global.json, csv: csv)
    }

    /// Prints findings as text, `--json` or `--csv` (also `piamctl usage dormant`'s output).
    static func print(_ found: [Finding], days: Int, now: Timestamp, json: Bool, csv: Bool) {
        if json {
            Output.printJSON(AnyJSON(["days": days, "at": RFC3339.format(now), "findings": found.map(\.json)] as [String: Any]))
        } else if csv {
            Swift.print("kind,partner,org,user,source,role,scope,last_use,since,granted_by,granted_at,message,remedy")
            for f in found {
                let j = f.json
                func v(_ k: String) -> String { (j[k] as? String) ?? "" }
                let remedy = String(decoding: (try? JSONSerialization.data(withJSONObject: f.remedy.json, options: [.sortedKeys])) ?? Data(), as: UTF8.self)
                Swift.print(CSV.line([f.kind.rawValue, v("partner"), f.org, v("user"), v("source"), v("role"), v("scope"), v("last_use"), v("since"),
                                      v("granted_by"), v("granted_at"), f.message, remedy]))
            }
        } else {
            let byKind = Dictionary(grouping: found, by: \.kind)
            Swift.print("\(found.count) findings (\(days) days): " + Finding.Kind.allCases.map { "\(byKind[$0]?.count ?? 0) \($0.rawValue)" }.joined(separator: ", "))
            for f in found {
                let who = f.user.map { "user:\($0)" } ?? "org:\(f.org)"
                var line = "\(f.kind.rawValue.padding(toLength: 24, withPad: " ", startingAt: 0)) \(who): \(f.message)"
                if f.holding != nil { line += "; granted by \(f.grantedBy ?? "-") at \(f.grantedAt.map(RFC3339.format) ?? "-")" }
                Swift.print(line)
                Swift.print("  remedy: \(f.remedy.jsonText)")
            }
        }
    }
}

import ArgumentParser
import Foundation
import PIAMEngine
import PIAMStore

struct ReviewCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "review",
        abstract: "Access reviews: the business asks partners' admins to keep or revoke who holds what.",
        discussion: """
            A campaign (created by the business: entitle on the partner, or on the root org) \
            freezes every assignment in its scope — all partners, one partner, or one role — at \
            the current revision, each with its last use (--usage), a recommendation (revoke \
            when unused for --days) and its reviewers: the admins the engine allows to revoke \
            it (revoke_role on the person), the partner's own before the business's.

            A reviewer (--as) sees the items it may revoke and answers keep or revoke with a \
            comment; a revoke is the revoke operation, decided by the rules and audited as one. \
            Closing applies the no-answer policy (keep, revoke, or the recommendation); when it \
            revokes anything, close shows how many and needs --confirm with that number.

            EXAMPLE
              piamctl review create "Q1 2027" --all-partners --due 30d --no-answer recommendation --as nina.hq
              piamctl review items 1 --as acme-brokers-admin
              piamctl review decide 17 revoke --comment "left the team" --as acme-brokers-admin
              piamctl review report 1
              piamctl review close 1 --as nina.hq               # says how many it would revoke
              piamctl review close 1 --as nina.hq --confirm 42
            """,
        subcommands: [Create.self, List.self, Items.self, Decide.self, Close.self, Report.self])

    static func printResult(_ r: ReviewResult, json: Bool) throws {
        if json {
            Output.printJSON(AnyJSON(["allowed": r.allowed, "decision": r.allowed ? "allowed" : "refused", "reason": r.reason,
                                      "message": r.message, "campaign": r.campaign, "revision": r.revision, "details": r.details] as [String: Any]))
        } else if r.allowed {
            print("\(r.message) — revision \(r.revision)")
            for d in r.details { print("  \(d)") }
        } else {
            print("refused \(r.reason): \(r.message)")
        }
        if !r.allowed { throw ExitCode(1) }
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start a campaign (the business).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The campaign's name.") var name: String
        @Flag(name: .customLong("all-partners"), help: "Every partner user's assignments.") var allPartners = false
        @Option(help: ArgumentHelp("One partner's (a partner root org).", valueName: "org")) var partner: String?
        @Option(help: ArgumentHelp("Every assignment of one role.", valueName: "role")) var role: String?
        @Option(help: ArgumentHelp("When it is due: RFC 3339 or a duration (30d).", valueName: "time")) var due: String
        @Option(name: .customLong("no-answer"), help: ArgumentHelp("keep, revoke or recommendation.", valueName: "policy"))
        var noAnswer: String
        @Option(help: ArgumentHelp("Unused for this many days: recommend revoking.", valueName: "n")) var days = 90
        @Option(parsing: .upToNextOption, help: ArgumentHelp("piamd usage files to read.", valueName: "path")) var usage: [String] = []
        @Option(name: .customLong("as"), help: ArgumentHelp("The business user creating it.", valueName: "actor")) var actor: String

        func run() throws {
            let scopes = [allPartners ? ReviewCampaign.Scope.allPartners : nil, partner.map { .partner($0) }, role.map { .role($0) }].compactMap { $0 }
            guard scopes.count == 1 else { throw PIAMError(.invalidInput, "give exactly one of --all-partners, --partner ORG, --role ROLE") }
            guard let policy = ReviewCampaign.NoAnswer(rawValue: noAnswer) else {
                throw PIAMError(.invalidInput, "--no-answer: keep, revoke or recommendation, not \"\(noAnswer)\"")
            }
            let now = Output.now()
            guard let dueAt = try Admin.expiry(due, option: "due", now: now, allowNone: false) else { throw PIAMError(.invalidInput, "--due") }
            let facts = try loadUsageFacts(paths: usage)
            let store = try global.openStore()
            try ReviewCommand.printResult(try store.createReview(name: name, scope: scopes[0], dueAt: dueAt, noAnswer: policy, days: days,
                                                                 usage: facts, as: actor, now: now, credential: "cli"), json: global.json)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every campaign, newest first.")
        @OptionGroup var global: GlobalOptions
        func run() throws {
            let all = try global.openStore().reviews()
            if global.json { return Output.printJSON(AnyJSON(["items": all.map(\.json)] as [String: Any])) }
            for c in all {
                print("\(c.id)  \(c.status.padding(toLength: 6, withPad: " ", startingAt: 0)) \(c.name)  (\(c.scope.description), due \(RFC3339.format(c.dueAt)), no answer: \(c.noAnswer.rawValue), revision \(c.revision))")
            }
        }
    }

    struct Items: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A campaign's items (with --as: those that user may decide).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The campaign's id.") var campaign: Int64
        @Option(name: .customLong("as"), help: ArgumentHelp("Only the items this reviewer may decide.", valueName: "actor")) var actor: String?
        func run() throws {
            let items = try global.openStore(readOnly: true).reviewItems(campaign: campaign, viewer: actor, now: Output.now())
            if global.json { return Output.printJSON(AnyJSON(["items": items.map(\.json)] as [String: Any])) }
            for i in items {
                let state = i.decision.map { "\($0) by \(i.decidedBy ?? "?")" } ?? "open"
                print("\(i.id)  user:\(i.user) \(i.role) over org:\(i.scope)  last use \(Output.time(i.lastUse)), recommend \(i.recommendation); \(state)\(i.outcome.map { " -> \($0)" } ?? "")")
            }
        }
    }

    struct Decide: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Keep or revoke one item (a reviewer).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The item's id.") var item: Int64
        @Argument(help: "keep or revoke.") var decision: String
        @Option(help: "Why.") var comment: String?
        @Option(name: .customLong("as"), help: ArgumentHelp("The reviewer.", valueName: "actor")) var actor: String
        func run() throws {
            let store = try global.openStore()
            try ReviewCommand.printResult(try store.decideReview(item: item, decision: decision, comment: comment, as: actor,
                                                                 now: Output.now(), credential: "cli"), json: global.json)
        }
    }

    struct Close: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Close a campaign, applying its no-answer policy (the business).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The campaign's id.") var campaign: Int64
        @Option(help: ArgumentHelp("The number of unanswered items the policy revokes, as close printed it.", valueName: "n")) var confirm: Int?
        @Option(name: .customLong("as"), help: ArgumentHelp("The business user closing it.", valueName: "actor")) var actor: String
        func run() throws {
            let store = try global.openStore()
            do {
                try ReviewCommand.printResult(try store.closeReview(campaign, confirmRevocations: confirm, as: actor, now: Output.now(),
                                                                    credential: "cli"), json: global.json)
            } catch let e as PIAMError where e.code == Store.confirmationRequired {
                let items = try store.reviewRevocationsAtClose(campaign)
                if global.json {
                    Output.printJSON(AnyJSON(["error": ["code": e.code.rawValue, "message": e.message], "revocations": items.count,
                                              "items": items.map(\.json)] as [String: Any]))
                } else {
                    print("closing would revoke \(items.count) unanswered items:")
                    for i in items { print("  \(i.id)  user:\(i.user) \(i.role) over org:\(i.scope) (last use \(Output.time(i.lastUse)))") }
                    print("nothing done: run again with --confirm \(items.count)")
                }
                throw ExitCode(1)
            }
        }
    }

    struct Report: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Completion per partner.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The campaign's id.") var campaign: Int64
        func run() throws {
            let store = try global.openStore(readOnly: true)
            let c = try store.review(campaign)
            let rows = try store.reviewReport(campaign)
            if global.json { return Output.printJSON(AnyJSON(["campaign": c.json, "partners": rows.map(\.json)] as [String: Any])) }
            print("\(c.name) (\(c.status), due \(RFC3339.format(c.dueAt)))")
            print("partner                  items  decided  kept  revoked  recommend-revoke")
            for r in rows {
                print("\((r.partner ?? "(host)").padding(toLength: 24, withPad: " ", startingAt: 0)) \(String(r.items).leftPad(5))  \(String(r.decided).leftPad(3)) \(String(r.percentDecided).leftPad(3))%  \(String(r.kept).leftPad(4))  \(String(r.revoked).leftPad(7))  \(String(r.recommendedRevoke).leftPad(16))")
            }
        }
    }
}

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}

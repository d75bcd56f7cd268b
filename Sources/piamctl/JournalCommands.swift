import ArgumentParser
import Foundation
import PIAMStore

/// `piamctl journal`: the change journal's maintenance.
struct JournalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "journal",
        abstract: "Maintain the change journal.",
        subcommands: [JournalCompactCommand.self])
}

struct JournalCompactCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compact",
        abstract: "Delete all but the newest journal rows, bounding the journal's growth.",
        discussion: """
            Keeps the newest --keep rows and deletes the older ones in one transaction, and records \
            the compaction point in meta (journal_compacted_through). The revision does not change. \
            A daemon whose graph is older than the compaction point notices it and loads the whole \
            graph once (a full reload) instead of applying the journal; so keep enough rows to cover \
            how far a running daemon may lag (normally milliseconds of writes).

            Prints the rows removed, the compaction point and the rows kept.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Journal rows to keep (the newest).", valueName: "n"))
    var keep: Int

    func run() throws {
        let store = try global.openStore()
        let (removed, through) = try store.compactJournal(keep: keep)
        let result = CompactJSON(removed: removed, compactedThrough: through, kept: try store.journalCount(),
                                 revision: try store.revision())
        if global.json {
            Output.printJSON(result)
        } else {
            print("removed \(removed) journal rows (compacted through revision \(through)); kept \(result.kept) rows; revision \(result.revision)")
        }
    }

    struct CompactJSON: Encodable {
        var removed: Int
        var compactedThrough: Int64
        var kept: Int
        var revision: Int64
        enum CodingKeys: String, CodingKey {
            case removed, kept, revision
            case compactedThrough = "compacted_through"
        }
    }
}

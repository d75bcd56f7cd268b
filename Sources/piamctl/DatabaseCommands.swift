import ArgumentParser
import Foundation
import PIAMDemo
import PIAMEngine
import PIAMStore

struct InitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create the graph database, or migrate an existing one to the current schema.",
        discussion: """
            Creates the file if needed, applies schema migrations (PRAGMA user_version) and seeds \
            what is missing: the root org "host" (kind host), "partners" (kind host, under host) \
            where partner companies are registered, and the default roles:
              partner-admin  org: view invite_user create_suborg update suspend reactivate grant_role;
                             user: view update suspend reactivate remove assign_role revoke_role
              partner-user   org:view user:view user:request_role:owner
              host-admin     org:* user:* role:* (host-only actions included: org:approve,
                             org:entitle, and role:define/update/delete/grant — it may hand out
                             any role, whatever it holds itself)
            Running it again changes nothing. Prints the revision.
            """)

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let path = global.databasePath
        let existed = FileManager.default.fileExists(atPath: path)
        let store = try Store.initialize(path: path)
        let revision = try store.revision()
        if global.json {
            Output.printJSON(InitJSON(path: path, created: !existed, schemaVersion: try store.schemaVersion, revision: revision))
        } else {
            print("\(existed ? "migrated" : "created") \(path) (schema v\(try store.schemaVersion), revision \(revision))")
        }
    }

    struct InitJSON: Encodable {
        var path: String
        var created: Bool
        var schemaVersion: Int
        var revision: Int64
        enum CodingKeys: String, CodingKey {
            case path, created, revision
            case schemaVersion = "schema_version"
        }
    }
}

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Write a realistic demo database (or a large generated one).",
        discussion: """
            Without sizes: an insurer (Northwind Mutual, the host) with its departments; the \
            partners container; a dozen partner companies (brokers, agencies, claims adjusters) \
            with regions, branches and teams three levels deep; partner admins at root and region \
            level; agents; the insurer's roles for claims, policies, quotes and commission \
            statements; entitlements; org grants; expiring and expired grants; an invited and a \
            suspended user; a suspended partner (granite-brokers) and a pending registration \
            (newleaf-agency).

            With --orgs/--users/--resources: a generated graph of the same shape and those sizes, \
            e.g. --orgs 10000 --users 1000000 --resources 100000 (about 3 million grants); the \
            users include the business's administrator, hq.admin.

            Every grant is decided through the administration rules: its granted_by is a \
            partner admin where can_assign (or the org-grant rules) let that admin make it, \
            else the business's host-admin, who may hand out any role. The first host \
            administrator's own host-admin has no granted_by (the installation made it).

            Writes to --db, else $PIAM_DB, else ./piam-demo.db. The file must not exist unless \
            --force is given.
            """)

    @Option(name: .long, help: ArgumentHelp("Where to write the demo.", discussion: "Default: $PIAM_DB, else ./piam-demo.db.", valueName: "path"))
    var db: String?

    @Flag(name: .long, help: "Print JSON for programs instead of text.")
    var json = false

    @Option(help: "Generate about this many orgs.") var orgs: Int?
    @Option(help: "Generate this many users.") var users: Int?
    @Option(help: "Generate this many registered resources.") var resources: Int?
    @Option(help: "Seed of the generator (the same seed writes the same graph).") var seed: UInt64 = 1
    @Flag(help: "Replace the file if it exists.") var force = false
    @Flag(help: "Show progress even when stderr is not a terminal.") var progress = false

    func validate() throws {
        let given = [orgs, users, resources].compactMap { $0 }
        if !given.isEmpty && given.count != 3 {
            throw ValidationError("give all of --orgs, --users and --resources, or none")
        }
        if given.contains(where: { $0 < 0 }) { throw ValidationError("sizes must not be negative") }
    }

    func run() throws {
        let path = db ?? ProcessInfo.processInfo.environment["PIAM_DB"].flatMap { $0.isEmpty ? nil : $0 } ?? "piam-demo.db"
        let fm = FileManager.default
        if fm.fileExists(atPath: path) {
            guard force else { throw PIAMError(.conflict, "\(path) exists (use --force to replace it)") }
            for suffix in ["", "-wal", "-shm"] where fm.fileExists(atPath: path + suffix) {
                do { try fm.removeItem(atPath: path + suffix) } catch {
                    throw PIAMError(.io, "\(path + suffix): \(error.localizedDescription)")
                }
            }
        }
        var bar = Output.Progress(label: "demo", force: progress)
        let started = Date()
        let scale = orgs.map { DemoGenerator.Scale(orgs: $0, users: users!, resources: resources!) }
        bar.note("generating \(scale.map { "\($0.orgs) orgs, \($0.users) users, \($0.resources) resources" } ?? "the curated demo")")
        let doc = DemoGenerator(scale: scale, seed: seed, now: Output.now() / 1000 * 1000).document()
        let generated = Date()
        let store = try Store.initialize(path: path)
        let result = try store.importDocument(doc, mode: .merge) { done, total in bar.update(done, total) }
        let finished = Date()
        let counts = try store.tableCounts()
        if json {
            Output.printJSON(DemoJSON(
                path: path, revision: result.revision,
                counts: Dictionary(uniqueKeysWithValues: counts.map { ($0.table, $0.rows) }),
                generateSeconds: generated.timeIntervalSince(started), importSeconds: finished.timeIntervalSince(generated)))
        } else {
            print("wrote \(path) (revision \(result.revision)) in \(String(format: "%.1f", finished.timeIntervalSince(started))) s")
            print(Output.table(counts.map { [$0.table, String($0.rows)] }, indent: "  "))
            if scale == nil {
                print("""

                    try:
                      piamctl check --db \(path) acme-brokers-north-admin suspend user:acme-brokers-north-b1-agent1
                      piamctl explain --db \(path) acme-brokers-north-admin view user:bluesky-agency-admin
                      piamctl who-can --db \(path) read claim:CLM-00001
                      piamctl access --db \(path) okta|acme-brokers-north-b1-agent1
                    """)
            }
        }
    }

    struct DemoJSON: Encodable {
        var path: String
        var revision: Int64
        var counts: [String: Int]
        var generateSeconds: Double
        var importSeconds: Double
        enum CodingKeys: String, CodingKey {
            case path, revision, counts
            case generateSeconds = "generate_seconds"
            case importSeconds = "import_seconds"
        }
    }
}

struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import a JSON graph file in one transaction (all or nothing).",
        discussion: """
            The format is DESIGN §5: {"orgs", "roles", "users", "resources", "entitlements", \
            "assignments", "org_grants"}, each an array; optional fields may be left out and \
            times are RFC 3339.

            --mode merge (default) inserts or updates by key and never deletes; importing the \
            same file twice changes nothing the second time. --mode replace makes the database \
            equal to the file (the seeds included: export first, edit, import).

            On any error nothing is written, not even the revision, and the error names the \
            JSON path, e.g. users[17].org: no such org "acme-eu" (quoting at most about 100 \
            bytes of a value).

            Each run is audited (piamctl audit): one row with the operating-system user as \
            actor, the mode, the file's name, size and SHA-256, the revision before and after \
            and the rows per table, written in the import's transaction. A failed import writes \
            nothing but, afterwards, one failed row with its error.

            A grant's granted_by must name a user (of the file or the database); granted_at \
            (RFC 3339) left out means the import's time for a new or changed grant, null means \
            unknown.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The JSON file, or - for standard input.", valueName: "file"))
    var file: String

    @Option(help: "merge (upsert by key, never delete) or replace (make the database equal to the file).")
    var mode: String = "merge"

    @Flag(help: "Show progress even when stderr is not a terminal.") var progress = false

    func run() throws {
        guard let m = ImportMode(rawValue: mode) else {
            throw PIAMError(.invalidInput, "--mode must be merge or replace, not \"\(mode)\"")
        }
        let store = try global.openStore()
        var bar = Output.Progress(label: "import", force: progress)
        let onProgress: ImportProgress = { done, total in bar.update(done, total) }
        let before = try store.revision()
        let result: ImportResult
        let actor = Output.osUser()
        if file == "-" {
            let data = FileHandle.standardInput.readDataToEndOfFile()
            result = try store.importJSON(data, mode: m, audit: ImportAudit(actor: actor, file: "-"), progress: onProgress)
        } else {
            let bytes = ((try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? NSNumber)?.int64Value ?? 0
            bar.note("reading \(file) (\(Output.bytes(bytes)); a large file takes a while to decode before rows are written)")
            result = try store.importFile(path: file, mode: m, actor: actor, progress: onProgress)
        }
        // The alias rule is the business's to keep: an import (which only whoever may write the
        // database runs) is not refused for it, but reports every alias that breaks it.
        let violations = try store.namespaceViolations()
        if global.json {
            var out = ImportJSON(result, before: before)
            out.namespaceViolations = violations.map { ImportJSON.Violation(partner: $0.partner, user: $0.user, alias: $0.alias) }
            Output.printJSON(out)
        } else {
            print(result.changed ? "imported: revision \(before) -> \(result.revision)" : "no changes (revision \(result.revision))")
            print(Output.table([["table", "inserted", "updated", "deleted", "unchanged"]] + result.tables.map {
                [$0.table, String($0.inserted), String($0.updated), String($0.deleted), String($0.unchanged)]
            }, indent: "  "))
            if !violations.isEmpty {
                print("warning: \(violations.count) alias(es) outside their partner's identity namespaces (outside_namespace):")
                for v in violations { print("  partner \(v.partner)  user:\(v.user)  alias \"\(v.alias)\"") }
            }
        }
    }

    struct ImportJSON: Encodable {
        struct Table: Encodable {
            var inserted, updated, deleted, unchanged: Int
        }
        var revision: Int64
        var previousRevision: Int64
        var changed: Bool
        var tables: [String: Table]
        /// Aliases outside their partner's identity namespaces (after the import).
        var namespaceViolations: [Violation] = []
        struct Violation: Encodable { var partner, user, alias: String }

        init(_ r: ImportResult, before: Int64) {
            revision = r.revision
            previousRevision = before
            changed = r.changed
            tables = Dictionary(uniqueKeysWithValues: r.tables.map {
                ($0.table, Table(inserted: $0.inserted, updated: $0.updated, deleted: $0.deleted, unchanged: $0.unchanged))
            })
        }
        enum CodingKeys: String, CodingKey {
            case revision, changed, tables
            case previousRevision = "previous_revision"
            case namespaceViolations = "namespace_violations"
        }
    }
}

struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export the whole graph as JSON (the import format), canonical and sorted.",
        discussion: "Streams to FILE or standard output; one entity per line, every field explicit, so exports diff well.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("Where to write (default: standard output).", valueName: "file"))
    var file: String?

    func run() throws {
        let store = try global.openStore(readOnly: true)
        if let file, file != "-" {
            let revision = try store.export(toFile: file)
            FileHandle.standardError.write(Data("exported revision \(revision) to \(file)\n".utf8))
        } else {
            _ = try store.export(to: FileHandle.standardOutput)
        }
    }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the database (schema, revision, journal, counts), or with --socket the daemon's status.")

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        if let socket = global.socketPath {
            let (json, _) = try await DaemonBackend(socketPath: socket, minRevision: 0).status()
            if global.json {
                print(json)
                return
            }
            guard let doc = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else {
                print(json)
                return
            }
            let counts = doc["counts"] as? [String: Any] ?? [:]
            let reload = doc["last_reload"] as? [String: Any] ?? [:]
            var rows: [[String]] = [
                ["daemon", "\(socket) (piamd \(doc["version"] ?? "?"))"],
                ["state", "\(doc["state"] ?? "?")" + (doc["degraded_reason"].map { ": \($0)" } ?? "")],
                ["revision", "\(doc["revision"] ?? "?")"],
            ]
            if let f = doc["freshness"] as? [String: Any] {
                rows.append(["verified", "\(f["last_verified"] ?? "never") (\(f["verified_ms_ago"] ?? "?") ms ago): database at \(f["database_revision"] ?? "?"), lag \(f["lag"] ?? "?")"])
            }
            rows += [
                ["uptime", "\(doc["uptime_s"] ?? "?") s"],
                ["last reload", "\(reload["at"] ?? "?") (\(reload["cause"] ?? "?"), \(reload["duration_ms"] ?? "?") ms)"],
                ["connections", "\(doc["connections"] ?? "?")"],
                ["requests", "\(doc["requests"] ?? "?")"],
            ]
            rows.append(["counts", counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")])
            print(Output.table(rows))
            return
        }
        let path = global.databasePath
        let store = try global.openStore(readOnly: true)
        let attrs = try? FileManager.default.attributesOfItem(atPath: path)
        let size = (attrs?[.size] as? NSNumber)?.int64Value ?? 0
        let walSize = ((try? FileManager.default.attributesOfItem(atPath: path + "-wal"))?[.size] as? NSNumber)?.int64Value ?? 0
        let s = StatusJSON(
            database: path, schemaVersion: try store.schemaVersion, revision: try store.revision(),
            journalRows: try store.journalCount(), fileBytes: size, walBytes: walSize,
            counts: Dictionary(uniqueKeysWithValues: try store.tableCounts().map { ($0.table, $0.rows) }))
        if global.json {
            Output.printJSON(s)
        } else {
            print(Output.table([
                ["database", path],
                ["schema", "v\(s.schemaVersion)"],
                ["revision", String(s.revision)],
                ["journal", "\(s.journalRows) rows"],
                ["size", "\(Output.bytes(s.fileBytes)) (+\(Output.bytes(s.walBytes)) WAL)"],
            ]))
            print("counts")
            print(Output.table(s.counts.sorted { $0.key < $1.key }.map { [$0.key, String($0.value)] }, indent: "  "))
        }
    }

    struct StatusJSON: Encodable {
        var database: String
        var schemaVersion: Int
        var revision: Int64
        var journalRows: Int
        var fileBytes: Int64
        var walBytes: Int64
        var counts: [String: Int]
        enum CodingKeys: String, CodingKey {
            case database, revision, counts
            case schemaVersion = "schema_version"
            case journalRows = "journal_rows"
            case fileBytes = "file_bytes"
            case walBytes = "wal_bytes"
        }
    }
}

import ArgumentParser
import Foundation
import PIAMEngine

/// `piamctl`: creates and fills the PIAM graph database and asks it questions.
struct Piamctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "piamctl",
        abstract: "Administer and query a PIAM partner graph.",
        discussion: """
            piamctl creates and migrates the graph database (SQLite), imports and exports it, and \
            answers authorization questions with the same engine the piamd daemon uses. It \
            performs delegated administration (org, user, role, grant, request, apply) as the \
            user named by --as, decided by that engine and audited (piamctl audit).

            The database is --db PATH, else $PIAM_DB, else /var/lib/piam/piam.db.
            Every command prints text for people, or JSON with --json.

            EXIT STATUS
              0  success; for check and can-assign: allowed
              1  for check and can-assign: denied; for administrative commands
                 (org, user, role, grant, …, apply): refused
              2  error (bad arguments, bad input, database problem); one line on stderr

            EXAMPLES
              piamctl demo --db demo.db
              piamctl check --db demo.db acme-brokers-north-admin suspend user:acme-brokers-north-b1-agent1
              piamctl explain --db demo.db acme-brokers-north-admin view user:bluesky-agency-admin
              piamctl who-can --db demo.db read claim:CLM-00001
              piamctl access --db demo.db okta|acme-brokers-admin
              piamctl user suspend --db demo.db acme-brokers-north-b1-agent1 \\
                  --as acme-brokers-north-admin
            """,
        version: "0.1.0",
        subcommands: [
            InitCommand.self, DemoCommand.self, ImportCommand.self, ExportCommand.self,
            CheckCommand.self, ExplainCommand.self, WhoCanCommand.self, CanAssignCommand.self,
            AccessCommand.self, ListCommand.self, StatusCommand.self, ReloadCommand.self, JournalCommand.self,
            HeartbeatCommand.self,
            // Delegated administration (AdminCommands*.swift).
            OrgCommand.self, EntitleCommand.self, UnentitleCommand.self, UserCommand.self, RoleCommand.self,
            GrantCommand.self, RevokeCommand.self, OrgGrantCommand.self, OrgRevokeCommand.self,
            RequestCommand.self, AuditCommand.self, ApplyCommand.self, FindingsCommand.self, ReviewCommand.self,
            // Credentials for piam-admind (InvitationCommands.swift, TokenCommands.swift).
            InvitationCommand.self, TokenCommand.self,
            // Who uses what (UsageCommands.swift).
            UsageCommand.self,
            // Identity namespaces and SCIM provisioning (NamespaceCommands.swift, SCIMCommands.swift).
            NamespaceCommand.self, SCIMCommand.self, JITCommand.self,
        ]
    )
}

@main
enum Entry {
    static func main() async {
        do {
            var command = try Piamctl.parseAsRoot()
            if var c = command as? AsyncParsableCommand {
                try await c.run()
            } else {
                try command.run()
            }
        } catch let error as PIAMError {
            fail(error.message, code: error.code.rawValue)
        } catch let error as ExitCode {
            exit(error.rawValue)
        } catch {
            let code = Piamctl.exitCode(for: error)
            if code == .success {
                Piamctl.exit(withError: error)  // --help, --version
            }
            // Usage errors: ArgumentParser's message (with the usage line), exit status 2.
            FileHandle.standardError.write(Data((Piamctl.fullMessage(for: error) + "\n").utf8))
            exit(2)
        }
    }

    /// Prints one error line on stderr (and a JSON error object on stdout with --json), exit 2.
    static func fail(_ message: String, code: String) -> Never {
        FileHandle.standardError.write(Data("piamctl: \(message)\n".utf8))
        if CommandLine.arguments.contains("--json") {
            Output.printJSON(["error": ["code": code, "message": message]])
        }
        exit(2)
    }
}

import ArgumentParser
import Foundation
import PIAMStore

/// `piamctl heartbeat`: the primary's proof of life for its replicas.
struct HeartbeatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "heartbeat",
        abstract: "Write the primary's heartbeat every interval, for replicas to measure their age.",
        discussion: """
            Run on the primary of a replicated deployment (systemd/piam-heartbeat.service). Each \
            interval it records the current time in the database's meta table (key heartbeat_at, \
            milliseconds since the epoch), in a transaction of its own. The row is not journaled: \
            it moves no revision and changes no decision, but the replication engine (Litestream) \
            carries it to every replica, where piamd in replica mode (database.replica) reads it: \
            now minus the last heartbeat is the replica's age (STATUS freshness.replica_age_ms, \
            /metrics piam_replica_age_seconds), and past database.replica_max_age_ms the replica \
            says degraded (503 on /healthz) while it keeps answering from what it has.

            Each heartbeat is one small commit, so one replication upload per interval: 5 s keeps \
            a replica's age under about 5 s + the replication delay at 17,280 commits a day. \
            Keep the interval well under piamd's database.replica_max_age_ms (default 30 s).

            Runs until SIGTERM or SIGINT; --once writes one heartbeat and exits. Prints nothing \
            per beat (errors go to stderr and the beat is retried at the next interval).
            """)

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("interval-ms"), help: ArgumentHelp("Milliseconds between heartbeats.", valueName: "ms"))
    var intervalMS: Int = 5000

    @Flag(help: "Write one heartbeat and exit.")
    var once = false

    func validate() throws {
        guard intervalMS >= 10 else { throw ValidationError("--interval-ms must be at least 10") }
    }

    func run() async throws {
        let store = try global.openStore()
        if once {
            let now = Output.now()
            try store.writeHeartbeat(now: now)
            if global.json { Output.printJSON(["heartbeat_at": now]) } else { print("heartbeat \(now)") }
            return
        }
        var failing = false
        while !Task.isCancelled {
            do {
                try store.writeHeartbeat(now: Output.now())
                if failing {
                    FileHandle.standardError.write(Data("piamctl heartbeat: writing again\n".utf8))
                    failing = false
                }
            } catch {
                // Said once per failure spell, not once per beat.
                if !failing { FileHandle.standardError.write(Data("piamctl heartbeat: \(error.message) (retrying every interval)\n".utf8)) }
                failing = true
            }
            try await Task.sleep(for: .milliseconds(intervalMS))
        }
    }
}

import ArgumentParser
import Foundation
import PIAMEngine

/// `piamctl reload`: SIGHUP to piamd, then wait until the daemon says the reload is over.
///
/// This is the unit's `ExecReload=`. systemd 252 (Debian 12) has no `Type=notify-reload`: with
/// `ExecReload=kill -HUP`, `systemctl reload` returns as soon as `kill` exits, and the daemon's
/// `RELOADING=1` can arrive after that, putting the unit back into "reloading" after the reload
/// job has already ended. Waiting here until piamd has handled the signal (`reloads.sighups` in
/// STATUS moves, counted after piamd has sent `READY=1`) makes `systemctl reload` return once
/// the new graph is served — or fail when the reload failed.
struct ReloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract: "Tell piamd to reload its graph from the database (SIGHUP) and wait until it has.",
        discussion: """
            Reads the daemon's STATUS on --socket, sends SIGHUP to its process (--pid, else the \
            pid STATUS reports), and waits until the daemon has handled that signal. Meant for \
            the unit's ExecReload= (see systemd/piamd.service), so that `systemctl reload piamd` \
            returns when the reload is over and fails when it failed.

            A failed reload (the database unreadable or invalid) leaves piamd serving its last \
            good graph, degraded; this command then prints the reason and exits 1.

            EXIT STATUS
              0  reloaded: piamd serves the database's current graph
              1  the reload failed; piamd still serves its previous graph
              2  error: no daemon on the socket, the signal could not be sent, or no answer
                 within --timeout
            """)

    @Option(name: .long, help: ArgumentHelp(
        "piamd's socket.", discussion: "Default: $PIAM_SOCKET, else /run/piam/piamd.sock.", valueName: "path"))
    var socket: String?

    @Option(name: .long, help: ArgumentHelp(
        "The process to signal (in a unit: $MAINPID).", discussion: "Default: the pid piamd reports in STATUS.",
        valueName: "pid"))
    var pid: Int32?

    @Option(name: .long, help: ArgumentHelp("Give up after this many seconds.", valueName: "seconds"))
    var timeout: Double = 25

    @Flag(name: .long, help: "Print JSON for programs instead of text.")
    var json = false

    static let defaultSocket = "/run/piam/piamd.sock"

    func validate() throws {
        guard timeout > 0, timeout.isFinite else { throw ValidationError("--timeout must be a positive number of seconds") }
        if let pid, pid <= 1 { throw ValidationError("--pid must be a process id above 1") }
    }

    func run() async throws {
        let env = ProcessInfo.processInfo.environment["PIAM_SOCKET"]
        let path = socket ?? (env?.isEmpty == false ? env! : Self.defaultSocket)
        let daemon = DaemonBackend(socketPath: path, minRevision: 0)
        let before = try await Self.status(daemon)
        guard let handled = before.sighups else {
            throw PIAMError(.invalidInput, "piamd on \(path) (version \(before.version)) does not report handled SIGHUPs; it needs piamd 0.3.1 or later (or send SIGHUP yourself)")
        }
        guard let target = pid ?? before.pid else {
            throw PIAMError(.invalidInput, "piamd on \(path) does not report its pid; pass --pid")
        }
        let started = ContinuousClock.now
        if kill(target, SIGHUP) != 0 {
            let why = String(cString: strerror(errno))
            throw PIAMError(.io, "cannot send SIGHUP to process \(target): \(why)")
        }
        let deadline = started + .milliseconds(Int(timeout * 1000))
        var after = before
        while (after.sighups ?? 0) <= handled {
            if ContinuousClock.now >= deadline {
                throw PIAMError(Self.timeoutCode, "piamd did not finish the reload within \(Self.seconds(timeout)) s (SIGHUP sent to process \(target)); it keeps serving revision \(after.revision)")
            }
            try await Task.sleep(for: .milliseconds(10))
            after = try await Self.status(daemon)
        }
        let waited = (ContinuousClock.now - started) / .milliseconds(1)
        let ok = after.state == "serving"
        let result = Result(reloaded: ok, state: after.state, degradedReason: after.degradedReason, revision: after.revision,
                            pid: target, waitedMS: (waited * 10).rounded() / 10)
        if json {
            Output.printJSON(result)
        } else if ok {
            print("reloaded: serving revision \(after.revision) (process \(target), \(Self.seconds(waited / 1000)) s)")
        }
        if !ok {
            FileHandle.standardError.write(Data("piamctl: reload failed: \(after.degradedReason ?? "piamd is degraded"); still serving revision \(after.revision)\n".utf8))
            throw ExitCode(1)
        }
    }

    static let timeoutCode = PIAMError.Code("timeout")

    static func seconds(_ s: Double) -> String { String(format: "%.3g", s) }

    /// The STATUS fields this command reads.
    struct Status: Decodable {
        struct Reloads: Decodable { var sighups: Int? }
        var state: String
        var degradedReason: String?
        var revision: Int64
        var version: String
        var pid: Int32?
        var reloads: Reloads?
        var sighups: Int? { reloads?.sighups }
        enum CodingKeys: String, CodingKey {
            case state, revision, version, pid, reloads
            case degradedReason = "degraded_reason"
        }
    }

    static func status(_ daemon: DaemonBackend) async throws -> Status {
        let (text, _) = try await daemon.status()
        do {
            return try JSONDecoder().decode(Status.self, from: Data(text.utf8))
        } catch {
            throw PIAMError(.protocolViolation, "piamd sent a STATUS document this piamctl cannot read: \(error)")
        }
    }

    struct Result: Encodable {
        var reloaded: Bool
        var state: String
        var degradedReason: String?
        var revision: Int64
        var pid: Int32
        var waitedMS: Double
        enum CodingKeys: String, CodingKey {
            case reloaded, state, revision, pid
            case degradedReason = "degraded_reason"
            case waitedMS = "waited_ms"
        }
    }
}

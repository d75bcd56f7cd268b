import Foundation
import PIAMClient
import PIAMEngine

/// Answers queries through the piamd daemon (`--socket`), so the decision is the daemon's.
/// Connects on first use; remembers the revision of the last answer.
final class DaemonBackend: QueryBackend {
    let socketPath: String
    let minRevision: Int64
    private var client: PIAMClient?
    private(set) var revision: Int64 = 0

    init(socketPath: String, minRevision: Int64) {
        self.socketPath = socketPath
        self.minRevision = minRevision
    }

    private func connected() async throws -> PIAMClient {
        if let client { return client }
        let c = try await PIAMClient.connect(socketPath: socketPath)
        client = c
        return c
    }

    /// The daemon decides at its own clock: refuse an --at that is not now.
    private func requireNow(_ at: Timestamp) throws {
        if abs(at - Output.now()) > 2000 {
            throw PIAMError(.invalidInput, "--at cannot be used with --socket: the daemon decides at the current time")
        }
    }

    private func note<T>(_ a: Answer<T>) -> T {
        revision = a.revision
        return a.value
    }

    func check(_ request: CheckRequest, at now: Timestamp) async throws -> Decision {
        try requireNow(now)
        return note(try await connected().check(request, minRevision: minRevision))
    }

    func explain(_ request: CheckRequest, at now: Timestamp) async throws -> Explanation {
        try requireNow(now)
        let a = try await connected().explain(request, minRevision: minRevision)
        revision = a.revision
        do {
            return try JSONDecoder().decode(Explanation.self, from: Data(a.value.trace.utf8))
        } catch {
            throw PIAMError(.protocolViolation, "piamd sent an EXPLAIN trace this piamctl cannot read: \(error)")
        }
    }

    func listSubjects(action: String, resource: ResourceRef, cursor: String?, limit: Int, at now: Timestamp) async throws -> Page {
        try requireNow(now)
        return note(try await connected().listSubjects(action: action, resource: resource, cursor: cursor, limit: limit, minRevision: max(minRevision, revision)))
    }

    func listResources(subject: String, action: String, type: String, cursor: String?, limit: Int, at now: Timestamp) async throws -> Page {
        try requireNow(now)
        return note(try await connected().listResources(subject: subject, action: action, type: type, cursor: cursor, limit: limit, minRevision: max(minRevision, revision)))
    }

    func listActions(subject: String, resource: ResourceRef, at now: Timestamp) async throws -> [String] {
        try requireNow(now)
        return note(try await connected().listActions(subject: subject, resource: resource, minRevision: minRevision))
    }

    func canAssign(actor: String, target: String, role: String, scope: String?, at now: Timestamp) async throws -> Decision {
        try requireNow(now)
        return note(try await connected().canAssign(actor: actor, target: target, role: role, scope: scope, minRevision: minRevision))
    }

    /// The daemon's STATUS document.
    func status() async throws -> (json: String, revision: Int64) {
        let s = try await connected().status()
        return (s.json, s.revision)
    }
}

import Foundation
import PIAMEngine
@testable import PIAMServer
import Testing

/// GraphState's freshness rules (in-process: the rule itself; the daemon tests show it end to end).
@Suite("GraphState: never serving while behind or unverified")
struct GraphStateFreshnessTests {
    /// Waits (30 s at most: a loaded machine may not schedule this task for a while) until
    /// `state.degraded` is non-nil; returns it.
    func degradedWithin(_ state: GraphState) async throws -> String? {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let d = state.degraded { return d }
            try await Task.sleep(for: .milliseconds(5))
        }
        return nil
    }

    @Test("verified and current: serving; a verification older than poll + timeout: degraded, and serving again when renewed")
    func unverified() async throws {
        // Graces of a second: the checks right after a verification must not race a slow thread.
        let state = GraphState(pollMS: 500, timeoutMS: 500) {}
        state.publish(Snapshot(graph: try tinyGraph(), revision: 5, loadSeconds: 0, cause: "test"))
        state.recordVerification(databaseRevision: 5, at: .now, wall: Date())
        #expect(state.degraded == nil)
        let d = try await degradedWithin(state)
        #expect(d?.contains("not verified current") == true, "\(String(describing: d))")
        state.recordVerification(databaseRevision: 5, at: .now, wall: Date())
        #expect(state.degraded == nil)
        // A full reload in progress is catching up: not held against the daemon.
        state.setReloading(true)
        try await Task.sleep(for: .milliseconds(1200))  // past the grace: a reload in progress is not held against it
        #expect(state.degraded == nil)
        state.setReloading(false)
        #expect(state.degraded?.contains("not verified current") == true)
    }

    @Test("behind the database: serving within consistency.timeout_ms, degraded after it, serving once the newer graph is published")
    func behind() async throws {
        let state = GraphState(pollMS: 60_000, timeoutMS: 500) {}
        state.publish(Snapshot(graph: try tinyGraph(), revision: 5, loadSeconds: 0, cause: "test"))
        state.recordVerification(databaseRevision: 7, at: .now, wall: Date())
        #expect(state.degraded == nil, "within the grace")
        #expect(state.freshness.databaseRevision == 7)
        let d = try await degradedWithin(state)
        #expect(d?.contains("behind the database: serving revision 5, the database is at 7") == true, "\(String(describing: d))")
        state.publish(Snapshot(graph: try tinyGraph(), revision: 7, loadSeconds: 0, cause: "test"))
        #expect(state.degraded == nil)
        #expect(state.freshness.behindSince == nil)
    }

    @Test("a fault outranks freshness and clearing it leaves freshness in charge")
    func faultFirst() throws {
        let state = GraphState(pollMS: 60_000, timeoutMS: 60_000) {}
        state.publish(Snapshot(graph: try tinyGraph(), revision: 5, loadSeconds: 0, cause: "test"))
        state.recordVerification(databaseRevision: 5, at: .now, wall: Date())
        #expect(state.setDegraded("database locked"))
        #expect(state.degraded == "database locked")
        #expect(state.setDegraded(nil))
        #expect(state.degraded == nil)
    }
}

import Foundation
import PIAMEngine
import PIAMStore
import Testing

/// Just-in-time creation across the real processes: piamd (read-only) asks piam-admind (the
/// writer) to create an unknown subject inside a JIT-enabled namespace, follows the journal to
/// the answered revision and decides again.
@Suite(.serialized) struct JITEndToEndTests {
    /// The delegation scenario, with piamd's host service user and its token, `okta-acme|` for
    /// acme, and JIT enabled for acme (new people land in acme-north as claims-viewer).
    static func fixture() throws -> (Fixture, tokenFile: String) {
        let f = try Fixture.delegation()
        let store = try Store(path: f.db)
        _ = try store.importJSON(Data("""
            {"roles": [{"id": "jit-provisioner", "permissions": ["org:invite_user"]}],
             "users": [{"id": "svc.piamd", "org": "host"}],
             "assignments": [{"user": "svc.piamd", "role": "jit-provisioner", "scope": "host"}]}
            """.utf8))
        let token = try store.createToken(user: "svc.piamd", name: "jit", createdBy: "nina").secret
        let tokenFile = f.path("jit.token")
        try (token + "\n").write(toFile: tokenFile, atomically: true, encoding: .utf8)
        for op in [AdminOperation.addNamespace(org: "acme", namespace: "okta-acme|"),
                   .setJIT(org: "acme", jitOrg: "acme-north", role: "claims-viewer")] {
            let r = try store.administer(op, as: "nina")
            #expect(r.allowed, "\(r)")
        }
        return (f, tokenFile)
    }

    static let routes = #"[{"method": "GET", "path": "/p/{org}/claims/{id}", "action": "read", "type": "claim", "id": "{id}", "org": "{org}"}]"#

    static func piamd(_ f: Fixture, admind: String, tokenFile: String, timeoutMS: Int = 5000) async throws -> (DaemonProcess, HTTPTarget) {
        try await startHTTPDaemon(f, env: [
            "PIAMD_JIT_ADMIND": admind, "PIAMD_JIT_TOKEN_FILE": tokenFile, "PIAMD_JIT_TIMEOUT_MS": String(timeoutMS),
            "PIAMD_FORWARD_AUTH_ROUTES": routes,
        ])
    }

    static func forwardAuth(_ http: HTTPTarget, _ subject: String, org: String = "acme-north") throws -> HTTPReply {
        try httpRequest(http, "GET", "/forward-auth", headers: ["X-Forwarded-User": subject, "X-Original-URI": "/p/\(org)/claims/c-1"])
    }

    static func jitCount(_ http: HTTPTarget, _ result: String) throws -> Double {
        try scrapedMetric(http, "piam_jit_total", ["result": result])
    }

    /// `piam_decisions_total`, all of it or with `labels`.
    static func decisions(_ http: HTTPTarget, _ labels: [String: String] = [:]) throws -> Double {
        try scrapedMetric(http, "piam_decisions_total", labels)
    }

    static func jitAudits(_ f: Fixture) throws -> [AuditEntry] {
        try Store(path: f.db, readOnly: true).auditLog().filter { $0.operation == "jit.create" }
    }

    @Test func anUnknownSubjectInsideAJITNamespaceIsCreatedAndAllowed() async throws {
        let (f, tokenFile) = try Self.fixture()
        let admind = try await AdmindProcess(f)
        defer { Task { await admind.stop() } }
        guard case .tcp(let port) = admind.tcp else { Issue.record("no tcp target"); return }
        let (piamd, http) = try await Self.piamd(f, admind: "http://127.0.0.1:\(port)", tokenFile: tokenFile)
        defer { Task { await piamd.stop() } }

        // Forward-auth: the first request of a new person is allowed, for its default role,
        // and decided once (not a deny `unknown_subject` first, then the allow).
        let subject = "okta-acme|00u1new"
        let decided = try Self.decisions(http)
        let r = try Self.forwardAuth(http, subject)
        #expect(r.status == 200, "\(r) \(piamd.log) \(admind.daemon.log)")
        #expect(try Self.decisions(http) == decided + 1)
        #expect(try Self.decisions(http, ["reason": "unknown_subject"]) == 0)
        let id = Store.jitUserID(subject: subject)
        #expect(r.header("X-PIAM-Subject") == id && r.header("X-PIAM-Org") == "acme-north")
        let user = try #require(try Store(path: f.db, readOnly: true).user(idOrAlias: subject))
        #expect(user.id == id && user.org == "acme-north" && user.status == .active && user.aliases == [subject])
        let holdings = try f.loaded().graph.accessReport(user: id, now: Timestamp(Date().timeIntervalSince1970 * 1000))?.holdings ?? []
        #expect(holdings.filter { $0.source == "assignment" }.map(\.role) == ["claims-viewer"], "\(holdings)")
        let audits = try Self.jitAudits(f)
        #expect(audits.count == 1 && audits[0].actor == "svc.piamd" && audits[0].decision == "allowed"
                && audits[0].partner == "acme" && audits[0].credential?.hasPrefix("token:") == true, "\(audits)")
        #expect(try Self.jitCount(http, "created") == 1)
        // The user exists now: its next request is an ordinary decision, nothing is asked.
        #expect(try Self.forwardAuth(http, subject).status == 200)
        #expect(try Self.jitAudits(f).count == 1)

        // AuthZEN: the same for another new person.
        let other = "okta-acme|00u2new"
        let e = try postJSON(http, "/access/v1/evaluation", [
            "subject": ["type": "user", "id": other], "action": ["name": "read"],
            "resource": ["type": "claim", "id": "c-9", "properties": ["org": "acme-north"]],
        ])
        #expect(e.status == 200 && String(decoding: e.body, as: UTF8.self) == #"{"decision":true}"#, "\(e) \(piamd.log)")
        #expect(try Self.decisions(http, ["reason": "unknown_subject"]) == 0, "the evaluation was decided once, allowed")

        // A batch (a portal asking what a new person may do on its page): created, then every
        // item decided once on the graph that has the person.
        let third = "okta-acme|00u4new"
        let before = try Self.decisions(http)
        let b = try postJSON(http, "/access/v1/evaluations", [
            "subject": ["type": "user", "id": third], "action": ["name": "read"],
            "evaluations": [
                ["resource": ["type": "claim", "id": "c-10", "properties": ["org": "acme-north"]]],
                ["resource": ["type": "claim", "id": "c-11", "properties": ["org": "acme"]]],
            ],
        ])
        #expect(b.status == 200 && String(decoding: b.body, as: UTF8.self) == #"{"evaluations":[{"decision":true},{"decision":false}]}"#,
                "\(b) \(piamd.log)")
        #expect(try Store(path: f.db, readOnly: true).user(idOrAlias: third)?.id == Store.jitUserID(subject: third))
        #expect(try Self.decisions(http) == before + 2)
        #expect(try Self.decisions(http, ["reason": "unknown_subject"]) == 0)
        #expect(try Store(path: f.db, readOnly: true).user(idOrAlias: other)?.id == Store.jitUserID(subject: other))

        // A batch about several new people (an admin's page listing them): each is created, at
        // once, and every item decided once on a graph that has them all.
        let (fourth, fifth) = ("okta-acme|00u5new", "okta-acme|00u6new")
        let several = try Self.decisions(http)
        let s = try postJSON(http, "/access/v1/evaluations", [
            "action": ["name": "read"], "resource": ["type": "claim", "id": "c-12", "properties": ["org": "acme-north"]],
            "evaluations": [
                ["subject": ["type": "user", "id": fourth]],
                ["subject": ["type": "user", "id": fifth]],
                ["subject": ["type": "user", "id": fourth], "resource": ["type": "claim", "id": "c-13", "properties": ["org": "acme"]]],
            ],
        ])
        #expect(s.status == 200 && String(decoding: s.body, as: UTF8.self) == #"{"evaluations":[{"decision":true},{"decision":true},{"decision":false}]}"#,
                "\(s) \(piamd.log)")
        for subject in [fourth, fifth] {
            #expect(try Store(path: f.db, readOnly: true).user(idOrAlias: subject)?.id == Store.jitUserID(subject: subject))
        }
        #expect(try Self.decisions(http) == several + 3)
        #expect(try Self.decisions(http, ["reason": "unknown_subject"]) == 0)

        // A subject outside every namespace never leaves piamd.
        let creations = try Self.jitAudits(f).count
        let outside = try Self.forwardAuth(http, "okta-globex|00u9")
        #expect(outside.status == 403 && outside.header("X-PIAM-Reason") == "unknown_subject")
        let stranger = try Self.forwardAuth(http, "mallory")
        #expect(stranger.status == 403 && stranger.header("X-PIAM-Reason") == "unknown_subject")
        #expect(try Self.jitAudits(f).count == creations, "piam-admind was not asked")
        #expect(try Store(path: f.db, readOnly: true).auditLog().filter { $0.operation == "jit.create" && $0.decision != "allowed" }.isEmpty)
        let total = try ["created", "existing", "refused", "failed", "timeout", "busy", "skipped"].map { try Self.jitCount(http, $0) }.reduce(0, +)
        #expect(total == 5, "five creations asked for, nothing else")

        // JIT switched off by the business: piamd follows and denies.
        let cleared = try Store(path: f.db).administer(.clearJIT(org: "acme"), as: "nina")
        let off = try httpRequest(http, "GET", "/forward-auth", headers: [
            "X-Forwarded-User": "okta-acme|00u3new", "X-Original-URI": "/p/acme-north/claims/c-1",
            "X-PIAM-Min-Revision": String(cleared.revision),
        ])
        #expect(off.status == 403 && off.header("X-PIAM-Reason") == "unknown_subject", "\(off)")
        #expect(try Self.jitAudits(f).count == creations)
    }

    @Test func piamdDeniesWithinTheTimeoutWhenAdmindIsDownOrRefuses() async throws {
        let (f, tokenFile) = try Self.fixture()
        // Nothing listens on this port: every call fails.
        let port = freeLoopbackPort()
        let (piamd, http) = try await Self.piamd(f, admind: "http://127.0.0.1:\(port)", tokenFile: tokenFile, timeoutMS: 1500)
        defer { Task { await piamd.stop() } }
        let start = ContinuousClock.now
        let decided = try Self.decisions(http)
        let r = try Self.forwardAuth(http, "okta-acme|00u7")
        let took = ContinuousClock.now - start
        #expect(r.status == 403 && r.header("X-PIAM-Reason") == "unknown_subject", "\(r)")
        #expect(try Self.decisions(http) == decided + 1, "the failed creation's request is decided once, as it was")
        #expect(try Self.decisions(http, ["reason": "unknown_subject"]) == 1)
        #expect(took < .milliseconds(1500) + .seconds(2), "\(took)")
        #expect(try Self.jitCount(http, "failed") + Self.jitCount(http, "timeout") == 1)
        #expect(try Store(path: f.db, readOnly: true).user(idOrAlias: "okta-acme|00u7") == nil)

        // A piam-admind that refuses (a token of a partner user: host_only): the original deny,
        // and the refused subject is not asked again until the revision moves.
        let admind = try await AdmindProcess(f)
        defer { Task { await admind.stop() } }
        guard case .tcp(let admindPort) = admind.tcp else { Issue.record("no tcp target"); return }
        let partnerToken = f.path("partner.token")
        try Store(path: f.db).createToken(user: "ann", name: "jit", createdBy: "nina").secret.write(toFile: partnerToken, atomically: true, encoding: .utf8)
        await piamd.stop()
        let (piamd2, http2) = try await Self.piamd(f, admind: "http://127.0.0.1:\(admindPort)", tokenFile: partnerToken)
        defer { Task { await piamd2.stop() } }
        let refused = try Self.forwardAuth(http2, "okta-acme|00u8")
        #expect(refused.status == 403 && refused.header("X-PIAM-Reason") == "unknown_subject")
        #expect(try Self.jitCount(http2, "refused") == 1)
        #expect(try Self.forwardAuth(http2, "okta-acme|00u8").status == 403)
        #expect(try Self.jitCount(http2, "skipped") == 1 && Self.jitCount(http2, "refused") == 1)
        let rows = try Self.jitAudits(f)
        #expect(rows.count == 1 && rows[0].decision == "refused" && rows[0].reason == "host_only", "\(rows)")
    }
}

/// A stand-in for piam-admind on a Unix socket that records which subjects piamd asks for and
/// holds every answer until the test releases them: what shows piamd's bounds (one call per
/// subject, `jit.max_in_flight`, no second call for a refused subject at one revision).
final class HeldAdmind: @unchecked Sendable {
    let path: String
    private let fd: Int32
    private let cond = NSCondition()
    private var calls: [String] = []
    private var released = false
    private var status = 500

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        let bound = withUnixAddress(path) { bind(fd, $0, $1) }
        guard fd >= 0, bound == 0, listen(fd, 64) == 0 else { throw PIAMError(.connection, "held admind: bind/listen errno \(errno)") }
        let t = Thread { [self] in acceptLoop() }
        t.start()
    }

    private func acceptLoop() {
        while true {
            let c = accept(fd, nil, nil)
            if c < 0 { return }
            Thread { [self] in serve(c) }.start()
        }
    }

    private func serve(_ c: Int32) {
        defer { close(c) }
        var raw: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        var subject = "?"
        while true {
            let n = chunk.withUnsafeMutableBytes { read(c, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            raw += chunk[0..<n]
            let text = String(decoding: raw, as: UTF8.self)
            guard let end = text.range(of: "\r\n\r\n") else { continue }
            let head = text[..<end.lowerBound].lowercased()
            let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                .flatMap { Int($0.dropFirst(15).trimmingCharacters(in: .whitespaces)) } ?? 0
            let body = Array(text[end.upperBound...].utf8)
            guard body.count >= length else { continue }
            let o = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
            subject = o?["subject"] as? String ?? "?"
            break
        }
        cond.lock()
        calls.append(subject)
        cond.broadcast()
        while !released { cond.wait() }
        let s = status
        cond.unlock()
        let body = #"{"code":"jit_not_eligible","status":\#(s)}"#
        let answer = Array("HTTP/1.1 \(s) Refused\r\nContent-Type: application/problem+json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)".utf8)
        _ = answer.withUnsafeBytes { write(c, $0.baseAddress, $0.count) }
    }

    /// The subjects asked for, in order.
    var subjects: [String] { cond.lock(); defer { cond.unlock() }; return calls }

    /// Waits (10 s at most) until `n` calls arrived.
    func waitForCalls(_ n: Int) -> Bool {
        cond.lock()
        defer { cond.unlock() }
        let deadline = Date().addingTimeInterval(10)
        while calls.count < n { if !cond.wait(until: deadline) { return calls.count >= n } }
        return true
    }

    /// Answers every held call, and every later one at once, with `status`.
    func release(status: Int) {
        cond.lock()
        self.status = status
        released = true
        cond.broadcast()
        cond.unlock()
    }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }
}

/// Runs blocking requests on threads of their own; `wait` returns their replies.
final class BackgroundRequests: @unchecked Sendable {
    private let group = DispatchGroup()
    private let lock = NSLock()
    private var replies: [Result<HTTPReply, any Error>] = []

    func start(_ body: @escaping @Sendable () throws -> HTTPReply) {
        group.enter()
        Thread { [self] in
            let r = Result { try body() }
            lock.lock(); replies.append(r); lock.unlock()
            group.leave()
        }.start()
    }

    func wait() async -> [Result<HTTPReply, any Error>] {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in group.notify(queue: .global()) { c.resume() } }
        return lock.withLock { replies }
    }
}

extension JITEndToEndTests {
    @Test func creationsAreBoundedSharedAndARefusalIsNotRepeatedAtOneRevision() async throws {
        let (f, tokenFile) = try Self.fixture()
        let admind = try HeldAdmind(path: f.path("held.sock"))
        defer { admind.stop() }
        let (piamd, http) = try await startHTTPDaemon(f, env: [
            "PIAMD_JIT_ADMIND": "unix:" + admind.path, "PIAMD_JIT_TOKEN_FILE": tokenFile, "PIAMD_JIT_TIMEOUT_MS": "20000",
            "PIAMD_JIT_MAX_IN_FLIGHT": "2", "PIAMD_FORWARD_AUTH_ROUTES": Self.routes,
        ])
        defer { Task { await piamd.stop() } }
        let background = BackgroundRequests()
        // Five requests for one new subject: one call.
        for _ in 0..<5 { background.start { try Self.forwardAuth(http, "okta-acme|00uA") } }
        #expect(admind.waitForCalls(1))
        // A second subject: a second call (max_in_flight 2).
        background.start { try Self.forwardAuth(http, "okta-acme|00uB") }
        #expect(admind.waitForCalls(2))
        // A third while both are held: denied at once, no call.
        let busy = try Self.forwardAuth(http, "okta-acme|00uC")
        #expect(busy.status == 403 && busy.header("X-PIAM-Reason") == "unknown_subject")
        #expect(try Self.jitCount(http, "busy") == 1)
        admind.release(status: 403)
        let replies = await background.wait()
        #expect(replies.count == 6)
        for r in replies {
            let reply = try r.get()
            #expect(reply.status == 403 && reply.header("X-PIAM-Reason") == "unknown_subject", "\(reply)")
        }
        #expect(admind.subjects.sorted() == ["okta-acme|00uA", "okta-acme|00uB"], "\(admind.subjects)")
        #expect(try Self.jitCount(http, "refused") == 2)
        // Refused at this revision: not asked again ...
        #expect(try Self.forwardAuth(http, "okta-acme|00uA").status == 403)
        #expect(try Self.jitCount(http, "skipped") == 1 && admind.subjects.count == 2)
        // ... until the revision moves.
        let revision = try Store(path: f.db).importJSON(Data(#"{"users": [{"id": "bob", "org": "acme", "name": "Bob \#(UUID())"}]}"#.utf8)).revision
        let again = try httpRequest(http, "GET", "/forward-auth", headers: [
            "X-Forwarded-User": "okta-acme|00uA", "X-Original-URI": "/p/acme-north/claims/c-1", "X-PIAM-Min-Revision": String(revision),
        ])
        #expect(again.status == 403)
        #expect(admind.subjects.count == 3 && admind.subjects.last == "okta-acme|00uA", "\(admind.subjects)")
        #expect(try Self.jitCount(http, "created") == 0)
    }
}

extension JITEndToEndTests {
    /// `POST /admin/v1/jit` itself: 200 with the revision, 200 with the current revision for a
    /// subject that exists, problem+json with a code for a refusal; one audit row each.
    @Test func theAdmindEndpointAnswersTheRevisionAndRefusesWithACode() async throws {
        let (f, tokenFile) = try Self.fixture()
        let token = try String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let admind = try await AdmindProcess(f)
        defer { Task { await admind.stop() } }
        let made = try admind.call("POST", "/admin/v1/jit", bearer: token, body: ["subject": "okta-acme|00uZ"])
        #expect(made.status == 200, "\(made)")
        let revision = try #require(made.json?["revision"] as? Int)
        #expect(made.json?["changed"] as? Bool == true && made.header("X-PIAM-Revision") == String(revision))
        #expect(try Store(path: f.db, readOnly: true).revision() == Int64(revision))
        let again = try admind.call("POST", "/admin/v1/jit", bearer: token, body: ["subject": "okta-acme|00uZ"])
        #expect(again.status == 200 && again.json?["changed"] as? Bool == false && again.json?["revision"] as? Int == revision, "\(again)")
        let outside = try admind.call("POST", "/admin/v1/jit", bearer: token, body: ["subject": "okta-globex|00uZ"])
        #expect(outside.status == 403 && outside.header("Content-Type")?.hasPrefix("application/problem+json") == true
                && outside.json?["code"] as? String == "jit_not_eligible", "\(outside)")
        let bad = try admind.call("POST", "/admin/v1/jit", bearer: token, body: ["subject": ""])
        #expect(bad.status == 422 || bad.status == 400, "\(bad)")
        let partner = try Store(path: f.db).createToken(user: "ann", name: "mine", createdBy: "nina").secret
        let byPartner = try admind.call("POST", "/admin/v1/jit", bearer: partner, body: ["subject": "okta-acme|00uY"])
        #expect(byPartner.status == 403 && byPartner.json?["code"] as? String == "host_only", "\(byPartner)")
        let rows = try Self.jitAudits(f)
        #expect(rows.map { "\($0.decision) \($0.reason)" } == ["allowed allowed", "allowed allowed", "refused jit_not_eligible", "refused host_only"],
                "\(rows.map { "\($0.decision) \($0.reason)" })")
        #expect(rows.allSatisfy { $0.credential?.hasPrefix("token:") == true })
    }
}

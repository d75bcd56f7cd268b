import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Synchronization

/// A console session: a random id in an HttpOnly, SameSite=Strict cookie, mapped here (never in
/// the cookie) to the authenticated user and the CSRF token every state-changing form carries.
struct ConsoleSession: Sendable, Hashable {
    var id: String
    /// The user the session acts for: set by the listener's authentication (the proxy's header,
    /// a bearer credential) or by the demo sign-in; `nil` before signing in.
    var user: String?
    /// How the user was authenticated, for the audit log (`header`, `console-demo`, …).
    var credential: String
    /// Checked on every POST.
    var csrf: String
    /// A message for the next page (after a redirect).
    var flash: Flash?
    var lastSeen: ContinuousClock.Instant

    struct Flash: Sendable, Hashable {
        var kind: String
        var text: String
        var link: String?
    }
}

/// The console's sessions, in memory (a restart signs everyone out), bounded in number and idle time.
public final class ConsoleSessions: Sendable {
    public init() {}
    static let cookieName = "piam_console"
    static let idleLimit = Duration.seconds(8 * 3600)
    static let maxSessions = 20_000
    private let sessions = Mutex<[String: ConsoleSession]>([:])

    static func random() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &g)) }.joined()
    }

    func get(_ id: String) -> ConsoleSession? {
        sessions.withLock { s in
            guard var v = s[id] else { return nil }
            if ContinuousClock.now - v.lastSeen > Self.idleLimit { s[id] = nil; return nil }
            v.lastSeen = .now
            s[id] = v
            return v
        }
    }

    func create(user: String?, credential: String) -> ConsoleSession {
        let v = ConsoleSession(id: Self.random(), user: user, credential: credential, csrf: Self.random(), flash: nil, lastSeen: .now)
        sessions.withLock { s in
            if s.count >= Self.maxSessions {
                let now = ContinuousClock.now
                s = s.filter { now - $0.value.lastSeen <= Self.idleLimit }
                if s.count >= Self.maxSessions, let oldest = s.min(by: { $0.value.lastSeen < $1.value.lastSeen })?.key { s[oldest] = nil }
            }
            s[v.id] = v
        }
        return v
    }

    func update(_ id: String, _ body: (inout ConsoleSession) -> Void) {
        sessions.withLock { s in if var v = s[id] { body(&v); s[id] = v } }
    }

    /// Takes the flash message (shown once).
    func takeFlash(_ id: String) -> ConsoleSession.Flash? {
        sessions.withLock { s in
            let f = s[id]?.flash
            s[id]?.flash = nil
            return f
        }
    }

    func remove(_ id: String) { _ = sessions.withLock { $0.removeValue(forKey: id) } }

    /// The session cookie: HttpOnly, SameSite=Strict, Path=/console; Secure when served over TLS.
    static func cookie(_ id: String, secure: Bool) -> String {
        "\(cookieName)=\(id); Path=/console; HttpOnly; SameSite=Strict\(secure ? "; Secure" : "")"
    }

    /// The session id in a request's Cookie header.
    static func id(in request: Request) -> String? {
        for header in request.headers[values: .cookie] {
            for part in header.split(separator: ";") {
                let kv = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
                if kv.count == 2, kv[0] == cookieName { return String(kv[1]) }
            }
        }
        return nil
    }
}

/// A refusal the console shows as a page (CSRF, demo sign-in off, a missing session).
struct ConsoleError: Error {
    var status: HTTPResponse.Status
    var code: String
    var message: String
}

/// Constant-time comparison for the CSRF token.
func constantTimeEqual(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    guard x.count == y.count else { return false }
    var d: UInt8 = 0
    for i in x.indices { d |= x[i] ^ y[i] }
    return d == 0
}

/// `application/x-www-form-urlencoded` bodies: every field, repeated ones kept in order.
struct FormBody {
    var fields: [(String, String)] = []

    init(_ text: String) {
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String {
                let plus = s.replacingOccurrences(of: "+", with: " ")
                return plus.removingPercentEncoding ?? plus
            }
            fields.append((decode(kv[0]), kv.count > 1 ? decode(kv[1]) : ""))
        }
    }

    subscript(_ name: String) -> String? { fields.first { $0.0 == name }?.1 }
    func all(_ name: String) -> [String] { fields.filter { $0.0 == name }.map(\.1) }
}

import Foundation
import Logging
import PIAMEngine

/// Where piam-admind listens: a Unix socket or a TCP address.
public enum AdminListenAddress: Sendable, Hashable, CustomStringConvertible {
    case unix(String)
    case tcp(host: String, port: Int)

    /// `unix:/path` or `HOST:PORT` (`127.0.0.1:8181`, `[::1]:8181`, `localhost:8181`).
    public init(parsing text: String) throws(PIAMError) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard path.hasPrefix("/") else { throw PIAMError(.invalidInput, "listen \(text): unix: takes an absolute path") }
            self = .unix(path)
            return
        }
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw PIAMError(.invalidInput, "listen \(text): unix:/path or HOST:PORT")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw PIAMError(.invalidInput, "listen \(text): no host") }
        self = .tcp(host: host, port: port)
    }

    /// A Unix socket, or a loopback TCP address: where only this machine's processes connect.
    public var isLocal: Bool {
        switch self {
        case .unix: true
        case .tcp(let host, _): host == "localhost" || host == "::1" || host.hasPrefix("127.")
        }
    }

    /// A loopback TCP address (not a Unix socket, which a proxy may expose to anyone).
    public var isLoopbackTCP: Bool {
        if case .tcp = self { return isLocal }
        return false
    }

    public var description: String {
        switch self {
        case .unix(let p): "unix:\(p)"
        case .tcp(let h, let p): h.contains(":") ? "[\(h)]:\(p)" : "\(h):\(p)"
        }
    }
}

/// piam-admind's configuration: a JSON file (every key optional), `PIAM_ADMIND_*` environment
/// variables over it, and the command line over both. See `Config/piam-admind.json`.
public struct AdminConfig: Sendable, Hashable {
    public var databasePath = "/var/lib/piam/piam.db"
    /// Where to listen (several allowed).
    public var listen: [AdminListenAddress] = [.unix("/run/piam-admin/admin.sock")]
    /// Permissions of Unix socket files piam-admind creates.
    public var socketMode: UInt32 = 0o660
    /// The group Unix socket files are given (name or gid; `nil`: the service's own).
    public var socketGroup: String?
    /// The header the reverse proxy puts the authenticated identity in (`nil`: not used).
    public var trustedHeader: String?
    /// The listeners on which the header is trusted (default: every local one). Only local
    /// listeners (Unix sockets, loopback) may trust it.
    public var headerListeners: [AdminListenAddress]?
    public var jwt: JWTSettings?
    public var api = APISettings()
    /// How often the service follows the journal outside its own writes.
    public var followMS = 500
    /// How long an Idempotency-Key's answer is kept.
    public var idempotencyHours = 24
    public var logLevel: Logger.Level = .info
    /// piamd's usage files (or directories of them) that findings, access reviews and the
    /// consoles' usage pages read; empty:
    /// none (every person and holding counts as unused).
    public var usagePaths: [String] = []
    /// How old a merge of the usage files may grow before a request that finds them changed
    /// merges them again (``UsageCache``).
    public var usageRefreshMS = 30_000
    /// The consoles' address as people reach them (`https://partners.example.com`): the base of
    /// invitation links, and with `https` the session cookie is `Secure`. `nil`: links use
    /// `http://` and the request's `Host` (fine on loopback, wrong behind a TLS proxy).
    public var consolePublicURL: String?
    /// The consoles' dashboard and partner pages count dormant people and holdings only on a
    /// graph of at most this many people (the count is the findings' scan over everyone: about
    /// 13 s at a million); above it they link to the dormant-access page instead.
    public var dormantTilesMaxPeople = 100_000
    /// `--demo`: the consoles offer a demo sign-in (pick any user of the database) on loopback
    /// listeners only; never set from the file or the environment.
    public var demo = false

    public init() {}

    /// The keys of the file and their meaning, for `--help` and errors.
    public static let keys: [(key: String, type: String, help: String)] = [
        ("database.path", "string", "the graph database (piam-admind is its writer)"),
        ("listen", "list", "unix:/path or HOST:PORT, one or more"),
        ("socket_mode", "string", "octal permissions of Unix socket files"),
        ("socket_group", "string", "group of Unix socket files (the proxy's), name or gid"),
        ("auth.trusted_header", "string", "the proxy's identity header (null: not used)"),
        ("auth.header_listeners", "list", "listeners where that header is trusted (default: every local one)"),
        ("auth.jwt.jwks", "string", "JWKS file of the identity provider (null: no JWTs)"),
        ("auth.jwt.issuer", "string", "required iss"),
        ("auth.jwt.audience", "string", "required aud"),
        ("auth.jwt.user_claim", "string", "the claim naming the PIAM user (id or alias)"),
        ("auth.jwt.leeway_seconds", "int", "clock skew allowed on exp and nbf"),
        ("api.max_body_bytes", "int", "larger request bodies get 413"),
        ("api.default_page_size", "int", "list page size when none is asked"),
        ("api.max_page_size", "int", "largest list page"),
        ("api.idle_timeout_ms", "int", "close connections idle this long"),
        ("api.max_connections", "int", "open connections per listener"),
        ("follow.poll_ms", "int", "follow other writers' commits this often"),
        ("idempotency.retention_hours", "int", "how long an Idempotency-Key's answer is kept"),
        ("usage.paths", "list", "piamd's usage files or directories that usage reports, findings, reviews and the consoles' usage pages read (empty: none)"),
        ("usage.refresh_ms", "int", "merge changed usage files again once the last merge is this old"),
        ("console.public_url", "string", "the consoles' address as people reach them: invitation links; https makes the cookie Secure"),
        ("console.dormant_tiles_max_people", "int", "count dormant access on the dashboard only on graphs of at most this many people"),
        ("log.level", "string", "trace, debug, info, notice, warning, error, critical"),
    ]

    /// The environment variable that overrides `key`.
    public static func environmentName(_ key: String) -> String {
        "PIAM_ADMIND_" + key.uppercased().replacingOccurrences(of: ".", with: "_")
    }

    /// Reads the file (when given) and the environment. Call ``validate()`` once the command
    /// line's overrides are applied too.
    public static func load(file: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws(PIAMError) -> AdminConfig {
        var values: [String: Any] = [:]
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else { throw PIAMError(.io, "\(file): cannot read the configuration") }
            guard let top = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw PIAMError(.invalidInput, "\(file): not a JSON object")
            }
            func flatten(_ o: [String: Any], _ prefix: String) {
                for (k, v) in o where !k.hasPrefix("_") {
                    let key = prefix.isEmpty ? k : "\(prefix).\(k)"
                    if let sub = v as? [String: Any], key != "listen" { flatten(sub, key) } else { values[key] = v }
                }
            }
            flatten(top, "")
        }
        let known = Dictionary(uniqueKeysWithValues: keys.map { ($0.key, $0.type) })
        for k in values.keys.sorted() where known[k] == nil {
            throw PIAMError(.invalidInput, "\(file ?? "config"): unknown key \(k) (see piam-admind --help)")
        }
        for (name, value) in environment where name.hasPrefix("PIAM_ADMIND_") {
            guard let key = keys.first(where: { environmentName($0.key) == name })?.key else {
                throw PIAMError(.invalidInput, "environment: unknown variable \(name) (see piam-admind --help)")
            }
            values[key] = known[key] == "list" ? value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } as [Any] : value
        }
        var c = AdminConfig()
        func string(_ key: String) throws(PIAMError) -> String? {
            guard let v = values[key], !(v is NSNull) else { return nil }
            guard let s = v as? String else { throw PIAMError(.invalidInput, "config \(key): must be a string") }
            return s
        }
        func int(_ key: String, min lo: Int) throws(PIAMError) -> Int? {
            guard let v = values[key], !(v is NSNull) else { return nil }
            let n: Int? = (v as? String).flatMap { Int($0) } ?? ((v as? NSNumber).flatMap { Int(exactly: $0.doubleValue) })
            guard let n, n >= lo else { throw PIAMError(.invalidInput, "config \(key): an integer of at least \(lo)") }
            return n
        }
        func list(_ key: String) throws(PIAMError) -> [AdminListenAddress]? {
            guard let v = values[key], !(v is NSNull) else { return nil }
            let items: [Any] = (v as? [Any]) ?? ((v as? String).map { [$0] } ?? [])
            var out: [AdminListenAddress] = []
            for x in items {
                guard let s = x as? String else { throw PIAMError(.invalidInput, "config \(key): a list of unix:/path or HOST:PORT") }
                out.append(try AdminListenAddress(parsing: s))
            }
            return out
        }
        c.databasePath = try string("database.path") ?? c.databasePath
        if let l = try list("listen") {
            guard !l.isEmpty else { throw PIAMError(.invalidInput, "config listen: at least one address") }
            c.listen = l
        }
        if let m = try string("socket_mode") {
            guard let v = UInt32(m, radix: 8), v <= 0o777 else { throw PIAMError(.invalidInput, "config socket_mode: an octal mode such as 0660") }
            c.socketMode = v
        }
        c.socketGroup = try string("socket_group").flatMap { $0.isEmpty ? nil : $0 }
        c.trustedHeader = try string("auth.trusted_header").flatMap { $0.isEmpty ? nil : $0 }
        c.headerListeners = try list("auth.header_listeners")
        if let v = values["usage.paths"], !(v is NSNull) {
            let items: [Any] = (v as? [Any]) ?? ((v as? String).map { [$0] } ?? [])
            c.usagePaths = try items.map { x throws(PIAMError) in
                guard let s = x as? String, !s.isEmpty else { throw PIAMError(.invalidInput, "config usage.paths: a list of file or directory paths") }
                return s
            }
        }
        if let jwks = try string("auth.jwt.jwks"), !jwks.isEmpty {
            guard let issuer = try string("auth.jwt.issuer"), let audience = try string("auth.jwt.audience") else {
                throw PIAMError(.invalidInput, "config auth.jwt: jwks needs issuer and audience too")
            }
            c.jwt = JWTSettings(jwksPath: jwks, issuer: issuer, audience: audience,
                                userClaim: try string("auth.jwt.user_claim") ?? "sub",
                                leewaySeconds: try int("auth.jwt.leeway_seconds", min: 0) ?? 60)
        }
        c.api.maxBodyBytes = try int("api.max_body_bytes", min: 1024) ?? c.api.maxBodyBytes
        c.api.defaultPageSize = try int("api.default_page_size", min: 1) ?? c.api.defaultPageSize
        c.api.maxPageSize = try int("api.max_page_size", min: 1) ?? c.api.maxPageSize
        c.api.idleTimeoutMS = try int("api.idle_timeout_ms", min: 100) ?? c.api.idleTimeoutMS
        c.api.maxConnections = try int("api.max_connections", min: 1) ?? c.api.maxConnections
        c.followMS = try int("follow.poll_ms", min: 10) ?? c.followMS
        c.usageRefreshMS = try int("usage.refresh_ms", min: 0) ?? c.usageRefreshMS
        c.dormantTilesMaxPeople = try int("console.dormant_tiles_max_people", min: 0) ?? c.dormantTilesMaxPeople
        if var u = try string("console.public_url"), !u.isEmpty {
            while u.hasSuffix("/") { u.removeLast() }
            let rest = u.hasPrefix("https://") ? u.dropFirst(8) : u.hasPrefix("http://") ? u.dropFirst(7) : ""
            guard !rest.isEmpty, !rest.contains(where: { $0 == "?" || $0 == "#" || $0.isWhitespace }) else {
                throw PIAMError(.invalidInput, "config console.public_url: an http:// or https:// address such as https://partners.example.com, not \"\(u)\"")
            }
            c.consolePublicURL = u
        }
        c.idempotencyHours = try int("idempotency.retention_hours", min: 1) ?? c.idempotencyHours
        if let l = try string("log.level") {
            guard let level = Logger.Level(rawValue: l.lowercased()) else {
                throw PIAMError(.invalidInput, "config log.level: one of trace, debug, info, notice, warning, error, critical")
            }
            c.logLevel = level
        }
        return c
    }

    /// The checks that hold whatever set the values (the command line included).
    public func validate() throws(PIAMError) {
        if let h = trustedHeader {
            guard h.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: ":") }) else {
                throw PIAMError(.invalidInput, "auth.trusted_header: \"\(h)\" is not an HTTP header name")
            }
            guard h.lowercased() != "authorization" else {
                throw PIAMError(.invalidInput, "auth.trusted_header: not Authorization (bearer credentials use it)")
            }
        }
        for l in headerListeners ?? [] {
            guard listen.contains(l) else { throw PIAMError(.invalidInput, "auth.header_listeners: \(l) is not a listen address") }
            guard l.isLocal else {
                throw PIAMError(.invalidInput, "auth.header_listeners: \(l) is not a Unix socket or loopback address: a header there could come from anyone")
            }
        }
        guard api.defaultPageSize <= api.maxPageSize else {
            throw PIAMError(.invalidInput, "api.default_page_size: at most api.max_page_size (\(api.maxPageSize))")
        }
    }

    /// Whether the trusted header is believed on `listener`.
    public func trustsHeader(on listener: AdminListenAddress) -> Bool {
        guard trustedHeader != nil, listener.isLocal else { return false }
        return headerListeners?.contains(listener) ?? true
    }
}

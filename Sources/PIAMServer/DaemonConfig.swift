import Configuration
import Foundation
import Logging
import PIAMEngine
import SystemPackage

/// piamd's configuration (DESIGN.md §8), read from a JSON file with environment overrides.
///
/// Every key of ``keys`` may be set in the JSON file (nested objects: `{"socket": {"path":
/// …}}`) and overridden by an environment variable named `PIAMD_` + the key in upper case with
/// dots as underscores (`socket.path` ← `PIAMD_SOCKET_PATH`; lists are comma-separated:
/// `PIAMD_SOCKET_ALLOWED_UIDS=0,1000`). The `PIAMD_` prefix keeps unrelated variables such as
/// `PATH` from being read as configuration. Unknown keys in the file are an error (a typo would
/// otherwise be silently ignored).
public struct DaemonConfig: Sendable, Hashable {
    /// The graph database, opened read-only.
    public var databasePath = "/var/lib/piam/piam.db"
    /// The database is a replica a replication engine (Litestream's `restore -f`) keeps current:
    /// piamd never holds it open between reads (a long-held connection freezes the follower), and
    /// reports the replica's age from the primary's heartbeat (`piamctl heartbeat`).
    public var databaseReplica = false
    /// A replica whose last heartbeat from the primary is older than this is degraded (503 on
    /// `/healthz`): it keeps answering from what it has, and says how old that is.
    public var replicaMaxAgeMS = 30_000
    /// The binary protocol's socket path (used when systemd passes no socket).
    public var socketPath = "/run/piam/piamd.sock"
    /// The socket file's permission bits.
    public var socketMode: UInt32 = 0o660
    /// The socket file's owner (user name or uid); nil keeps the daemon's.
    public var socketOwner: String?
    /// The socket file's group (group name or gid); nil keeps the daemon's.
    public var socketGroup: String?
    /// Peer uids allowed to connect (SO_PEERCRED); empty with `allowedGIDs` empty = anyone.
    public var allowedUIDs: [UInt32] = []
    /// Peer gids allowed to connect (primary group from SO_PEERCRED).
    public var allowedGIDs: [UInt32] = []
    /// The HTTP face's listen address, `unix:/path` or a loopback `HOST:PORT`
    /// (``HTTPListenAddress``); nil: no HTTP face.
    public var httpListen: String?
    /// The public base URL of the HTTP face, published in the AuthZEN discovery document (nil:
    /// derived from the request's `Host` header).
    public var httpPublicURL: String?
    /// The HTTP socket file's permission bits (with `unix:` listen addresses).
    public var httpSocketMode: UInt32 = 0o660
    /// The HTTP socket file's group (group name or gid); nil keeps the daemon's.
    public var httpSocketGroup: String?
    /// Largest HTTP request body accepted; larger ones get 413.
    public var httpMaxBodyBytes = 1_048_576
    /// Event-loop threads of the HTTP face, its own beside the socket's (0: half the cores, at
    /// least one). The face's clients are proxies on the same host, one request per connection at
    /// a time: fewer loops each find more connections ready per wake-up, so a decision costs fewer
    /// context switches (2 cores: 9.0 µs of CPU per AuthZEN evaluation with one loop, 12 µs with
    /// two; README, Performance).
    public var httpThreads = 0
    /// The HTTP face's event-loop threads in effect (``httpThreads``, or its default).
    public var httpThreadsInEffect: Int { httpThreads > 0 ? httpThreads : max(1, ProcessInfo.processInfo.activeProcessorCount / 2) }
    /// The request header naming the subject of a forward-auth request.
    public var forwardAuthSubjectHeader = "X-Forwarded-User"
    /// Whether a forward-auth request that matches no route is allowed (default: denied, 403).
    public var forwardAuthAllowUnrouted = false
    /// The forward-auth route table, tried in order.
    public var forwardAuthRoutes: [ForwardAuthRoute] = []
    /// Largest frame payload accepted.
    public var maxFrameBytes = 1_048_576
    /// Connections served at once; beyond it new connections get OVERLOADED and are closed.
    public var maxConnections = 1024
    /// Largest list page; a request's limit is capped to it.
    public var maxList = 10_000
    /// Connections one peer uid may hold open on a face (Unix sockets: `SO_PEERCRED`); beyond
    /// it that uid's new connections get OVERLOADED (HTTP: 503). 0: no limit per uid.
    public var maxConnectionsPerUID = 512
    /// A connection with nothing read and nothing owed for this long is closed; so is one whose
    /// peer takes none of its answers for this long.
    public var idleTimeoutMS = 300_000
    /// A message begun — a binary frame, an HTTP request head and body — must be complete within
    /// this long, else the peer is told so and the connection is closed.
    public var frameTimeoutMS = 10_000
    /// Answers a peer has not taken (the write buffer's high-water mark): above it piamd reads
    /// nothing more from that connection until half of it has drained.
    public var maxOutputBytes = 262_144
    /// Requests of one connection held behind a `min_revision` wait; beyond it piamd reads nothing
    /// more from that connection until they are answered.
    public var maxWaitingRequests = 128
    /// How long a request with `min_revision` may wait for the graph to catch up.
    public var consistencyTimeoutMS = 1000
    /// How often piamd proves it is current: it reopens its connection and compares the
    /// database's revision with the served one (catching up when behind). inotify and
    /// `min_revision` requests find commits at once in between. See ``reloadVerifyMS``.
    public var reloadPollMS = 1000
    /// The verification interval in effect: `reload.poll_ms`, where 0 (which once turned polling
    /// off) means the default 1000 — piamd never runs unverified.
    public var reloadVerifyMS: Int { reloadPollMS > 0 ? reloadPollMS : 1000 }
    /// A full reload (cause `reclaim`) once incremental applies have abandoned this many slots
    /// (old assignment lists, removed users and resources: 16–100 bytes each); 0 = never.
    public var reloadReclaimSlots = 1_048_576
    /// Event-loop threads of the socket (0: one per core); the HTTP face has its own
    /// (``httpThreads``).
    public var threads = 0
    /// The usage database piamd writes (a separate SQLite file in a writable directory of its
    /// own; never the graph database); nil: usage is not recorded.
    public var usagePath: String?
    /// How often the event loops' usage tallies are merged and written to ``usagePath`` (a crash
    /// loses at most this much usage).
    public var usageFlushMS = 1000
    /// Distinct keys (person × feature, and holdings) one event loop tallies per flush interval;
    /// decisions past it are not recorded and are counted (`piam_usage_dropped_total`). Memory:
    /// 32-byte slots (16 for a holding moved out of a feature's entry) in tables that double and
    /// stay ≤ 75 % full, 43–86 bytes per key (1M keys: 64 MB), so at most (the socket's loops +
    /// the HTTP face's) × this × 86
    /// bytes.
    public var usageMaxKeys = 1_048_576
    /// The decision log: one NDJSON line per selected decision (decision id, time, subject,
    /// action, resource, result, reason, revision, allowing holding), appended every
    /// `usage.flush_ms`; nil: no log.
    public var decisionLogPath: String?
    /// `decision_log.mode`: `deny` logs denials only; `all` every decision.
    public var decisionLogDenyOnly = true
    /// Of the decisions the mode selects, one in this many is logged (1: all of them).
    public var decisionLogSample = 1
    /// The log file is rotated (to PATH.1 … PATH.keep) when it would pass this size.
    public var decisionLogMaxBytes = 67_108_864
    /// Rotated files kept.
    public var decisionLogKeep = 4
    /// Record bytes one event loop buffers per flush interval; past it selected decisions are
    /// dropped and counted (`piam_decision_log_dropped_total`).
    public var decisionLogBufferBytes = 8_388_608
    /// The log threshold.
    public var logLevel: Logger.Level = .info
    /// Just-in-time creation: piam-admind's address (`unix:/path`, a socket path, or
    /// `http://127.0.0.1:PORT`); nil: JIT is off. Only the forward-auth and AuthZEN faces use it.
    public var jitAdmind: String?
    /// The file holding the API token (of a host service user with `org:invite_user` on the
    /// partners' JIT orgs) piamd presents to piam-admind.
    public var jitTokenFile: String?
    /// How long a request may wait for a JIT creation (the call and the graph catching up);
    /// past it the request is decided as it is (`unknown_subject`).
    public var jitTimeoutMS = 2000
    /// Creations piamd asks for at once; beyond it a request is decided at once, as it is.
    public var jitMaxInFlight = 8

    public init() {}

    /// The list page used when a request's limit is 0.
    public var defaultListPage: Int { min(1000, maxList) }

    /// The keys understood, with their JSON types, in documentation order.
    public static let keys: [(key: String, type: KeyType)] = [
        ("database.path", .string), ("database.replica", .bool), ("database.replica_max_age_ms", .int),
        ("socket.path", .string), ("socket.mode", .string), ("socket.owner", .string), ("socket.group", .string),
        ("socket.allowed_uids", .intArray), ("socket.allowed_gids", .intArray),
        ("http.listen", .string), ("http.public_url", .string), ("http.socket_mode", .string),
        ("http.socket_group", .string), ("http.max_body_bytes", .int), ("http.threads", .int),
        ("forward_auth.subject_header", .string), ("forward_auth.no_route", .string),
        ("forward_auth.routes", .objectArray),
        ("limits.max_frame_bytes", .int), ("limits.max_connections", .int), ("limits.max_list", .int),
        ("limits.max_connections_per_uid", .int), ("limits.idle_timeout_ms", .int), ("limits.frame_timeout_ms", .int),
        ("limits.max_output_bytes", .int), ("limits.max_waiting_requests", .int),
        ("consistency.timeout_ms", .int),
        ("reload.poll_ms", .int), ("reload.reclaim_slots", .int),
        ("server.threads", .int),
        ("usage.path", .string), ("usage.flush_ms", .int), ("usage.max_keys", .int),
        ("decision_log.path", .string), ("decision_log.mode", .string), ("decision_log.sample", .int),
        ("decision_log.max_bytes", .int), ("decision_log.keep", .int), ("decision_log.buffer_bytes", .int),
        ("log.level", .string),
        ("jit.admind", .string), ("jit.token_file", .string), ("jit.timeout_ms", .int), ("jit.max_in_flight", .int),
    ]

    /// A key's JSON type. `objectArray` keys (the route table) are read from the file, or from
    /// their environment variable as JSON text.
    public enum KeyType: Sendable { case string, int, bool, intArray, objectArray }

    /// The environment variable that overrides `key`.
    public static func environmentName(_ key: String) -> String {
        "PIAMD_" + key.uppercased().replacingOccurrences(of: ".", with: "_")
    }

    /// Reads the file (when given), then the `PIAMD_*` environment, then validates.
    public static func load(file: String?, environment: [String: String] = ProcessInfo.processInfo.environment) async throws(PIAMError) -> DaemonConfig {
        var providers: [any ConfigProvider] = []
        // Environment first: providers are asked in order.
        var env: [String: String] = [:]
        let known = Set(keys.map { environmentName($0.key) })
        for (k, v) in environment where k.hasPrefix("PIAMD_") {
            guard known.contains(k) else {
                throw PIAMError(.invalidInput, "environment: unknown variable \(k) (see piamd --help for the keys)")
            }
            // EnvironmentVariablesProvider maps socket.path to SOCKET_PATH: drop our prefix.
            env[String(k.dropFirst("PIAMD_".count))] = v
        }
        providers.append(EnvironmentVariablesProvider(environmentVariables: env))
        var fileValues: [String: Any] = [:]
        if let file {
            fileValues = try validateFile(file)
            var values: [AbsoluteConfigKey: ConfigValue] = [:]
            for (key, type) in keys {
                guard let v = fileValues[key] else { continue }
                let content: ConfigContent
                switch type {
                case .string: content = .string(v as! String)
                case .int: content = .int((v as! NSNumber).intValue)
                case .bool: content = .bool((v as! NSNumber).boolValue)
                case .intArray: content = .intArray((v as! [NSNumber]).map(\.intValue))
                case .objectArray: continue
                }
                values[AbsoluteConfigKey(key.split(separator: ".").map(String.init))] = ConfigValue(content, isSecret: false)
            }
            providers.append(InMemoryProvider(name: file, values: values))
        }
        let reader = ConfigReader(providers: providers)
        var c = DaemonConfig()
        func str(_ key: String) -> String? { reader.string(forKey: ConfigKey(key)) }
        func int(_ key: String, _ current: Int, min lo: Int = 0) throws(PIAMError) -> Int {
            if let v = reader.int(forKey: ConfigKey(key)) {
                guard v >= lo else { throw PIAMError(.invalidInput, "config \(key): \(v) is below the minimum \(lo)") }
                return v
            }
            if let s = str(key) { throw PIAMError(.invalidInput, "config \(key): \"\(s)\" is not an integer") }
            return current
        }
        func ids(_ key: String) throws(PIAMError) -> [UInt32] {
            if let v = reader.intArray(forKey: ConfigKey(key)) {
                return try v.map { (i: Int) throws(PIAMError) -> UInt32 in
                    guard let u = UInt32(exactly: i) else { throw PIAMError(.invalidInput, "config \(key): \(i) is not a uid/gid") }
                    return u
                }
            }
            if let s = str(key) {
                if s.trimmingCharacters(in: .whitespaces).isEmpty { return [] }
                throw PIAMError(.invalidInput, "config \(key): \"\(s)\" is not a list of integers")
            }
            return []
        }
        c.databasePath = str("database.path") ?? c.databasePath
        if let b = reader.bool(forKey: ConfigKey("database.replica")) {
            c.databaseReplica = b
        } else if let s = str("database.replica") {
            throw PIAMError(.invalidInput, "config database.replica: \"\(s)\" is not true or false")
        }
        c.socketPath = str("socket.path") ?? c.socketPath
        func mode(_ key: String) throws(PIAMError) -> UInt32? {
            guard let m = str(key) else { return nil }
            guard let v = UInt32(m, radix: 8), v <= 0o777 else {
                throw PIAMError(.invalidInput, "config \(key): \"\(m)\" is not an octal mode such as 0660")
            }
            return v
        }
        c.socketOwner = str("socket.owner").flatMap { $0.isEmpty ? nil : $0 }
        c.socketGroup = str("socket.group").flatMap { $0.isEmpty ? nil : $0 }
        c.allowedUIDs = try ids("socket.allowed_uids")
        c.allowedGIDs = try ids("socket.allowed_gids")
        c.httpListen = str("http.listen").flatMap { $0.isEmpty ? nil : $0 }
        if let l = c.httpListen { _ = try HTTPListenAddress(parsing: l) }
        c.httpPublicURL = str("http.public_url").flatMap { $0.isEmpty ? nil : $0 }
        if let u = c.httpPublicURL {
            guard u.hasPrefix("http://") || u.hasPrefix("https://") else {
                throw PIAMError(.invalidInput, "config http.public_url: \"\(u)\" is not an http:// or https:// URL")
            }
            while c.httpPublicURL!.hasSuffix("/") { c.httpPublicURL!.removeLast() }
        }
        c.socketMode = try mode("socket.mode") ?? c.socketMode
        c.httpSocketMode = try mode("http.socket_mode") ?? c.httpSocketMode
        c.httpSocketGroup = str("http.socket_group").flatMap { $0.isEmpty ? nil : $0 }
        c.httpMaxBodyBytes = try int("http.max_body_bytes", c.httpMaxBodyBytes, min: 1)
        c.httpThreads = try int("http.threads", c.httpThreads)
        if let h = str("forward_auth.subject_header") {
            guard !h.isEmpty, h.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: ":") }) else {
                throw PIAMError(.invalidInput, "config forward_auth.subject_header: \"\(h)\" is not an HTTP header name")
            }
            c.forwardAuthSubjectHeader = h
        }
        switch str("forward_auth.no_route") {
        case nil, "deny": c.forwardAuthAllowUnrouted = false
        case "allow": c.forwardAuthAllowUnrouted = true
        case let other?: throw PIAMError(.invalidInput, "config forward_auth.no_route: \"\(other)\" is not deny or allow")
        }
        let routesVariable = environmentName("forward_auth.routes")
        if let text = environment[routesVariable] {
            let parsed = try? JSONSerialization.jsonObject(with: Data(text.utf8))
            guard let list = parsed as? [Any] else {
                throw PIAMError(.invalidInput, "environment \(routesVariable): not a JSON list of route objects")
            }
            c.forwardAuthRoutes = try ForwardAuthRoute.parseTable(list, source: routesVariable)
        } else if let list = fileValues["forward_auth.routes"] as? [Any] {
            c.forwardAuthRoutes = try ForwardAuthRoute.parseTable(list, source: "\(file ?? "config") forward_auth.routes")
        }
        c.maxFrameBytes = try int("limits.max_frame_bytes", c.maxFrameBytes, min: requestHeaderMinimum)
        c.maxConnections = try int("limits.max_connections", c.maxConnections, min: 1)
        c.maxList = try int("limits.max_list", c.maxList, min: 1)
        c.maxConnectionsPerUID = try int("limits.max_connections_per_uid", c.maxConnectionsPerUID)
        c.idleTimeoutMS = try int("limits.idle_timeout_ms", c.idleTimeoutMS, min: 1)
        c.frameTimeoutMS = try int("limits.frame_timeout_ms", c.frameTimeoutMS, min: 1)
        c.maxOutputBytes = try int("limits.max_output_bytes", c.maxOutputBytes, min: 1024)
        c.maxWaitingRequests = try int("limits.max_waiting_requests", c.maxWaitingRequests, min: 1)
        c.consistencyTimeoutMS = try int("consistency.timeout_ms", c.consistencyTimeoutMS)
        c.reloadPollMS = try int("reload.poll_ms", c.reloadPollMS)
        c.replicaMaxAgeMS = try int("database.replica_max_age_ms", c.replicaMaxAgeMS, min: 1)
        c.reloadReclaimSlots = try int("reload.reclaim_slots", c.reloadReclaimSlots)
        c.threads = try int("server.threads", c.threads)
        c.usagePath = str("usage.path").flatMap { $0.isEmpty ? nil : $0 }
        if let u = c.usagePath, u == c.databasePath {
            throw PIAMError(.invalidInput, "config usage.path: \"\(u)\" is the graph database; piamd only reads that one — give the usage file a path of its own")
        }
        c.usageFlushMS = try int("usage.flush_ms", c.usageFlushMS, min: 10)
        c.usageMaxKeys = try int("usage.max_keys", c.usageMaxKeys, min: 16)
        c.decisionLogPath = str("decision_log.path").flatMap { $0.isEmpty ? nil : $0 }
        if let l = c.decisionLogPath, l == c.databasePath || l == c.usagePath {
            throw PIAMError(.invalidInput, "config decision_log.path: \"\(l)\" is another file of piamd's; give the log a path of its own")
        }
        switch str("decision_log.mode") {
        case nil, "deny": c.decisionLogDenyOnly = true
        case "all": c.decisionLogDenyOnly = false
        case let other?: throw PIAMError(.invalidInput, "config decision_log.mode: \"\(other)\" is not deny or all")
        }
        c.decisionLogSample = try int("decision_log.sample", c.decisionLogSample, min: 1)
        c.decisionLogMaxBytes = try int("decision_log.max_bytes", c.decisionLogMaxBytes, min: 4096)
        c.decisionLogKeep = try int("decision_log.keep", c.decisionLogKeep)
        c.decisionLogBufferBytes = try int("decision_log.buffer_bytes", c.decisionLogBufferBytes, min: 4096)
        c.jitAdmind = str("jit.admind").flatMap { $0.isEmpty ? nil : $0 }
        c.jitTokenFile = str("jit.token_file").flatMap { $0.isEmpty ? nil : $0 }
        c.jitTimeoutMS = try int("jit.timeout_ms", c.jitTimeoutMS, min: 1)
        c.jitMaxInFlight = try int("jit.max_in_flight", c.jitMaxInFlight, min: 1)
        if let a = c.jitAdmind {
            _ = try JITAddress(parsing: a)
            guard c.jitTokenFile != nil else {
                throw PIAMError(.invalidInput, "config jit.admind is set but jit.token_file is not: piamd needs a token for piam-admind")
            }
        }
        if let l = str("log.level") {
            guard let level = Logger.Level(rawValue: l.lowercased()) else {
                throw PIAMError(.invalidInput, "config log.level: \"\(l)\" is not one of trace, debug, info, notice, warning, error, critical")
            }
            c.logLevel = level
        }
        guard c.maxFrameBytes <= Int(UInt32.max) else {
            throw PIAMError(.invalidInput, "config limits.max_frame_bytes: at most \(UInt32.max)")
        }
        return c
    }

    /// The smallest sensible frame limit: a request header.
    static let requestHeaderMinimum = 16

    /// Whether a JSONSerialization value is `true` or `false` (on Linux every NSNumber bridges
    /// to `Bool`; a JSON boolean is the one whose type encoding is `c`).
    static func isJSONBool(_ v: Any) -> Bool {
        guard let n = v as? NSNumber else { return false }
        return String(cString: n.objCType) == "c"
    }

    /// Refuses unknown keys and values of the wrong JSON type, naming the key; returns the
    /// values by dotted key (nulls left out).
    static func validateFile(_ file: String) throws(PIAMError) -> [String: Any] {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: file)) } catch {
            throw PIAMError(.io, "\(file): cannot read: \((error as NSError).localizedDescription)")
        }
        let root: Any
        do { root = try JSONSerialization.jsonObject(with: data) } catch {
            throw PIAMError(.invalidInput, "\(file): not valid JSON")
        }
        guard let top = root as? [String: Any] else { throw PIAMError(.invalidInput, "\(file): the top level must be an object") }
        let types = Dictionary(uniqueKeysWithValues: keys.map { ($0.key, $0.type) })
        var values: [String: Any] = [:]
        func walk(_ obj: [String: Any], _ prefix: String) throws(PIAMError) {
            for (k, v) in obj {
                let key = prefix.isEmpty ? k : prefix + "." + k
                if k.hasPrefix("_") || k == "$comment" { continue }  // comments
                if let sub = v as? [String: Any], types[key] == nil {
                    guard keys.contains(where: { $0.key.hasPrefix(key + ".") }) else {
                        throw PIAMError(.invalidInput, "\(file): unknown key \(key)")
                    }
                    try walk(sub, key)
                    continue
                }
                guard let t = types[key] else { throw PIAMError(.invalidInput, "\(file): unknown key \(key)") }
                if v is NSNull { continue }
                let ok: Bool
                switch t {
                case .string: ok = v is String
                case .int: ok = !(v is String) && !isJSONBool(v) && (v as? NSNumber).map { $0.doubleValue.rounded() == $0.doubleValue } ?? false
                case .bool: ok = isJSONBool(v)
                case .intArray: ok = (v as? [Any])?.allSatisfy { $0 is NSNumber } ?? false
                case .objectArray: ok = (v as? [Any])?.allSatisfy { $0 is [String: Any] } ?? false
                }
                guard ok else {
                    let want = switch t {
                    case .string: "a string"
                    case .int: "an integer"
                    case .bool: "true or false"
                    case .intArray: "a list of integers"
                    case .objectArray: "a list of objects"
                    }
                    throw PIAMError(.invalidInput, "\(file): \(key) must be \(want)")
                }
                values[key] = v
            }
        }
        try walk(top, "")
        return values
    }
}

extension DaemonConfig {
    /// The effective configuration as a JSON document in the file's nested shape.
    public func json() -> String {
        let doc: [String: Any] = [
            "database": ["path": databasePath, "replica": databaseReplica, "replica_max_age_ms": replicaMaxAgeMS] as [String: Any],
            "socket": [
                "path": socketPath, "mode": "0" + String(socketMode, radix: 8),
                "owner": socketOwner ?? NSNull(), "group": socketGroup ?? NSNull(),
                "allowed_uids": allowedUIDs.map(Int.init), "allowed_gids": allowedGIDs.map(Int.init),
            ] as [String: Any],
            "http": [
                "listen": httpListen ?? NSNull(), "public_url": httpPublicURL ?? NSNull(),
                "socket_mode": "0" + String(httpSocketMode, radix: 8), "socket_group": httpSocketGroup ?? NSNull(),
                "max_body_bytes": httpMaxBodyBytes, "threads": httpThreads,
            ] as [String: Any],
            "forward_auth": [
                "subject_header": forwardAuthSubjectHeader, "no_route": forwardAuthAllowUnrouted ? "allow" : "deny",
                "routes": forwardAuthRoutes.map(\.json),
            ] as [String: Any],
            "limits": [
                "max_frame_bytes": maxFrameBytes, "max_connections": maxConnections, "max_list": maxList,
                "idle_timeout_ms": idleTimeoutMS, "max_connections_per_uid": maxConnectionsPerUID,
                "frame_timeout_ms": frameTimeoutMS, "max_output_bytes": maxOutputBytes, "max_waiting_requests": maxWaitingRequests,
            ],
            "consistency": ["timeout_ms": consistencyTimeoutMS],
            "reload": ["poll_ms": reloadPollMS, "reclaim_slots": reloadReclaimSlots],
            "server": ["threads": threads],
            "usage": ["path": usagePath ?? NSNull(), "flush_ms": usageFlushMS, "max_keys": usageMaxKeys] as [String: Any],
            "decision_log": [
                "path": decisionLogPath ?? NSNull(), "mode": decisionLogDenyOnly ? "deny" : "all", "sample": decisionLogSample,
                "max_bytes": decisionLogMaxBytes, "keep": decisionLogKeep, "buffer_bytes": decisionLogBufferBytes,
            ] as [String: Any],
            "log": ["level": logLevel.rawValue],
            "jit": [
                "admind": jitAdmind ?? NSNull(), "token_file": jitTokenFile ?? NSNull(), "timeout_ms": jitTimeoutMS,
                "max_in_flight": jitMaxInFlight,
            ] as [String: Any],
        ]
        let data = (try? JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

import Foundation
import PIAMEngine

/// One line of the forward-auth route table (`forward_auth.routes`): which original requests
/// it matches, and the check they become.
///
/// ```json
/// {"method": "GET", "path": "/partners/{org}/claims/{id}",
///  "action": "read", "type": "claim", "id": "{id}", "org": "{org}"}
/// ```
///
/// `path` is a template of literal segments and `{name}` segments (each matches one non-empty
/// path segment, percent-decoded). `action`, `type`, `id`, `org` and `owner` are templates too:
/// every `{name}` in them is replaced by that path parameter. `method` is one method, a
/// comma-separated list, or `*` (also when left out). `org`/`owner` become the resource's
/// properties (DESIGN §2: they locate a resource the graph does not hold).
public struct ForwardAuthRoute: Sendable, Hashable {
    /// Upper-case methods matched; empty matches any method.
    public var methods: [String]
    /// The path template as configured.
    public var path: String
    public var action: String
    public var type: String
    public var id: String
    public var org: String?
    public var owner: String?

    /// The path template's segments: a literal, or a parameter name.
    enum Segment: Sendable, Hashable {
        case literal(String)
        case parameter(String)
    }
    let segments: [Segment]
    /// The same route compiled for ``HTTPFastPath``'s byte-level matcher.
    let compiled: Compiled

    /// A template as bytes: literal runs and path-segment positions.
    enum Part: Sendable, Hashable {
        case literal([UInt8])
        /// The path segment at this position.
        case segment(Int)
    }

    /// The route in the form the fast path matches request bytes against (no `String`, no
    /// dictionary per request).
    struct Compiled: Sendable, Hashable {
        /// Upper-case methods as bytes; empty matches any.
        var methods: [[UInt8]]
        /// Per path segment: its literal bytes, or nil for a parameter.
        var literals: [[UInt8]?]
        var action, type, id: [Part]
        var org, owner: [Part]?
    }

    /// Builds and validates a route. The `field` names in errors are prefixed with `source`.
    public init(methods: [String], path: String, action: String, type: String, id: String,
                org: String? = nil, owner: String? = nil, source: String = "route") throws(PIAMError) {
        guard path.hasPrefix("/") else { throw PIAMError(.invalidInput, "\(source).path: \"\(path)\" must start with /") }
        var segments: [Segment] = []
        var names = Set<String>()
        for raw in path.split(separator: "/", omittingEmptySubsequences: true) {
            let s = String(raw)
            if s.hasPrefix("{") && s.hasSuffix("}") && s.count > 2 {
                let name = String(s.dropFirst().dropLast())
                guard Self.isName(name) else { throw PIAMError(.invalidInput, "\(source).path: \"{\(name)}\" is not a parameter name (letters, digits, _)") }
                guard names.insert(name).inserted else { throw PIAMError(.invalidInput, "\(source).path: parameter {\(name)} appears twice") }
                segments.append(.parameter(name))
            } else {
                guard !s.contains("{") && !s.contains("}") else {
                    throw PIAMError(.invalidInput, "\(source).path: segment \"\(s)\" mixes text and a {parameter}; a parameter must be a whole segment")
                }
                segments.append(.literal(s))
            }
        }
        for (field, value) in [("action", action), ("type", type), ("id", id), ("org", org ?? "x"), ("owner", owner ?? "x")] {
            guard !value.isEmpty else { throw PIAMError(.invalidInput, "\(source).\(field): must not be empty") }
            for name in Self.placeholders(in: value) where !names.contains(name) {
                throw PIAMError(.invalidInput, "\(source).\(field): {\(name)} is not a parameter of the path \(path)")
            }
        }
        let methods = methods.map { $0.uppercased() }.filter { $0 != "*" }
        for m in methods where m.isEmpty || !m.utf8.allSatisfy({ $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) {
            throw PIAMError(.invalidInput, "\(source).method: \"\(m)\" is not an HTTP method")
        }
        self.methods = methods
        self.path = path
        self.action = action
        self.type = type
        self.id = id
        self.org = org
        self.owner = owner
        self.segments = segments
        var position: [String: Int] = [:]
        for (i, s) in segments.enumerated() { if case .parameter(let name) = s { position[name] = i } }
        func parts(_ template: String) -> [Part] {
            // As `match` fills it: each `{name}` of a path parameter replaced, the rest literal.
            var out: [Part] = []
            var literal: [UInt8] = []
            var rest = template[...]
            while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
                let name = String(rest[rest.index(after: open)..<close])
                literal += Array(rest[..<open].utf8)
                if let p = position[name] {
                    if !literal.isEmpty { out.append(.literal(literal)); literal = [] }
                    out.append(.segment(p))
                } else {
                    literal += Array(rest[open...close].utf8)
                }
                rest = rest[rest.index(after: close)...]
            }
            literal += Array(rest.utf8)
            if !literal.isEmpty { out.append(.literal(literal)) }
            return out
        }
        compiled = Compiled(
            methods: methods.map { Array($0.utf8) },
            literals: segments.map { s -> [UInt8]? in
                switch s {
                case .literal(let l): return Array(l.utf8)
                case .parameter: return nil
                }
            },
            action: parts(action), type: parts(type), id: parts(id), org: org.map(parts), owner: owner.map(parts))
    }

    /// Parses the route table from its JSON form (a list of objects).
    public static func parseTable(_ list: [Any], source: String) throws(PIAMError) -> [ForwardAuthRoute] {
        var out: [ForwardAuthRoute] = []
        for (i, item) in list.enumerated() {
            let here = "\(source)[\(i)]"
            guard let o = item as? [String: Any] else { throw PIAMError(.invalidInput, "\(here): must be an object") }
            let known: Set<String> = ["method", "path", "action", "type", "id", "org", "owner"]
            if let unknown = o.keys.sorted().first(where: { !known.contains($0) && !$0.hasPrefix("_") }) {
                throw PIAMError(.invalidInput, "\(here): unknown key \(unknown)")
            }
            func string(_ key: String, required: Bool) throws(PIAMError) -> String? {
                guard let v = o[key], !(v is NSNull) else {
                    if required { throw PIAMError(.invalidInput, "\(here).\(key): required") }
                    return nil
                }
                guard let s = v as? String else { throw PIAMError(.invalidInput, "\(here).\(key): must be a string") }
                return s
            }
            let method = try string("method", required: false) ?? "*"
            let methods = method.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            out.append(try ForwardAuthRoute(
                methods: methods, path: try string("path", required: true)!, action: try string("action", required: true)!,
                type: try string("type", required: true)!, id: try string("id", required: true)!,
                org: try string("org", required: false), owner: try string("owner", required: false), source: here))
        }
        return out
    }

    /// The route as its configuration object.
    public var json: [String: Any] {
        var o: [String: Any] = ["method": methods.isEmpty ? "*" : methods.joined(separator: ","), "path": path,
                                "action": action, "type": type, "id": id]
        if let org { o["org"] = org }
        if let owner { o["owner"] = owner }
        return o
    }

    /// The check an original request becomes, when this route matches it.
    func match(method: String, pathSegments: [String]) -> (action: String, resource: ResourceRef)? {
        guard methods.isEmpty || methods.contains(method), pathSegments.count == segments.count else { return nil }
        var params: [String: String] = [:]
        for (segment, actual) in zip(segments, pathSegments) {
            switch segment {
            case .literal(let l): guard l == actual else { return nil }
            case .parameter(let name): params[name] = actual
            }
        }
        func fill(_ template: String) -> String {
            var out = template
            for (name, value) in params { out = out.replacingOccurrences(of: "{\(name)}", with: value) }
            return out
        }
        return (fill(action), ResourceRef(type: fill(type), id: fill(id), org: org.map(fill), owner: owner.map(fill)))
    }

    static func isName(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { c in
            (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
                || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "_")
        }
    }

    /// The `{name}` placeholders of a template.
    static func placeholders(in template: String) -> [String] {
        var names: [String] = []
        var rest = template[...]
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            names.append(String(rest[rest.index(after: open)..<close]))
            rest = rest[rest.index(after: close)...]
        }
        return names
    }

    /// Splits an original request URI into percent-decoded path segments: the query and
    /// fragment are dropped, empty segments are ignored. Nil for a URI that must not be
    /// matched: not a path, invalid percent-encoding, a `.`/`..` segment, or a decoded `/`
    /// (the upstream could read those differently from the route table).
    static func pathSegments(of uri: String) -> [String]? {
        var path = Substring(uri)
        if let q = path.firstIndex(where: { $0 == "?" || $0 == "#" }) { path = path[..<q] }
        guard path.hasPrefix("/") else { return nil }
        var out: [String] = []
        for raw in path.split(separator: "/", omittingEmptySubsequences: true) {
            guard let s = String(raw).removingPercentEncoding, s != ".", s != "..", !s.contains("/") else { return nil }
            out.append(s)
        }
        return out
    }
}

/// The listen address of the HTTP face (`http.listen`).
public enum HTTPListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// `unix:/path`: a Unix socket (nginx: `proxy_pass http://unix:/path:`).
    case unix(path: String)
    /// `127.0.0.1:PORT`, `[::1]:PORT` or `localhost:PORT`: a loopback TCP port.
    case tcp(host: String, port: Int)

    /// Parses `unix:/path` or a loopback `HOST:PORT`. Other hosts are refused: the HTTP face
    /// has no authentication of its own, so it is reached through a local reverse proxy.
    public init(parsing text: String) throws(PIAMError) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard path.hasPrefix("/") else {
                throw PIAMError(.invalidInput, "http.listen: \"\(text)\": a unix socket path must be absolute (unix:/run/piam/http.sock)")
            }
            guard path.utf8.count < 108 else { throw PIAMError(.invalidInput, "http.listen: socket path \(path) is too long for a Unix socket") }
            self = .unix(path: path)
            return
        }
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw PIAMError(.invalidInput, "http.listen: \"\(text)\" is neither unix:/path nor HOST:PORT")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard host == "localhost" || host == "::1" || host.hasPrefix("127.") && host.split(separator: ".").count == 4 else {
            throw PIAMError(.invalidInput, "http.listen: \"\(host)\" is not a loopback address; the HTTP face listens on 127.0.0.1, [::1], localhost or a unix socket (put a reverse proxy in front of it)")
        }
        self = .tcp(host: host, port: port)
    }

    public var description: String {
        switch self {
        case .unix(let path): "unix:\(path)"
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }
}

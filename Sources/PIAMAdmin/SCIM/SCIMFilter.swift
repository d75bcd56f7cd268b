import Foundation

/// A SCIM filter (RFC 7644 §3.4.2.2), parsed, and evaluated against a resource's JSON.
///
/// Supported: `eq ne co sw ew gt ge lt le pr`, `and`, `or`, `not ( … )`, parentheses, value
/// paths (`emails[type eq "work"]`, also followed by a sub-attribute and a comparison:
/// `emails[type eq "work"].value eq "a@b.example"`), and attribute names with their schema URN
/// (`urn:ietf:params:scim:schemas:core:2.0:User:userName`). Strings compare without case
/// (the attributes PIAM publishes are `caseExact: false`, except `id` and `externalId`).
indirect enum SCIMFilter: Sendable {
    case and(SCIMFilter, SCIMFilter)
    case or(SCIMFilter, SCIMFilter)
    case not(SCIMFilter)
    case compare(path: SCIMPath, op: String, value: SCIMValue)
    case present(path: SCIMPath)
    /// `attr[filter]` with an optional sub-attribute comparison after it.
    case valuePath(attr: SCIMPath, filter: SCIMFilter, sub: String?, op: String?, value: SCIMValue?)

    static let operators: Set<String> = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]

    /// Parses filter text. Throws a 400 `invalidFilter`.
    static func parse(_ text: String) throws -> SCIMFilter {
        var p = Parser(tokens: try tokenize(text))
        let f = try p.parseOr()
        guard p.atEnd else { throw SCIMError.invalidFilter("unexpected \"\(p.peek()?.text ?? "")\" in filter") }
        return f
    }

    /// Whether `resource` matches.
    func matches(_ resource: [String: Any]) -> Bool {
        switch self {
        case .and(let a, let b): return a.matches(resource) && b.matches(resource)
        case .or(let a, let b): return a.matches(resource) || b.matches(resource)
        case .not(let a): return !a.matches(resource)
        case .present(let path):
            return path.values(in: resource).contains { v in
                if v is NSNull { return false }
                if let s = v as? String { return !s.isEmpty }
                if let a = v as? [Any] { return !a.isEmpty }
                return true
            }
        case .compare(let path, let op, let value):
            let values = path.values(in: resource)
            if values.isEmpty { return op == "ne" && !value.isNull ? true : (op == "eq" && value.isNull) }
            if op == "ne" { return !values.contains { value.compare("eq", $0, caseExact: path.caseExact) } }
            return values.contains { value.compare(op, $0, caseExact: path.caseExact) }
        case .valuePath(let attr, let filter, let sub, let op, let value):
            let elements = attr.values(in: resource).compactMap { $0 as? [String: Any] }
            let chosen = elements.filter { filter.matches($0) }
            guard let op else {
                if let sub { return chosen.contains { $0[sub] != nil } }
                return !chosen.isEmpty
            }
            let subPath = SCIMPath(components: [sub ?? "value"], schema: nil)
            return chosen.contains { element in
                if op == "pr" { return !subPath.values(in: element).isEmpty }
                return subPath.values(in: element).contains { value?.compare(op, $0, caseExact: false) ?? false }
            }
        }
    }

    // MARK: Tokens

    struct Token: Equatable {
        enum Kind { case word, string, lparen, rparen, lbracket, rbracket }
        var kind: Kind
        var text: String
    }

    static func tokenize(_ text: String) throws -> [Token] {
        var out: [Token] = []
        let chars = Array(text.unicodeScalars)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == " " || c == "\t" || c == "\n" { i += 1; continue }
            switch c {
            case "(": out.append(Token(kind: .lparen, text: "(")); i += 1
            case ")": out.append(Token(kind: .rparen, text: ")")); i += 1
            case "[": out.append(Token(kind: .lbracket, text: "[")); i += 1
            case "]": out.append(Token(kind: .rbracket, text: "]")); i += 1
            case "\"":
                // A JSON string: find its end, honouring escapes, and decode it as JSON.
                var j = i + 1
                var escaped = false
                while j < chars.count {
                    if escaped { escaped = false } else if chars[j] == "\\" { escaped = true } else if chars[j] == "\"" { break }
                    j += 1
                }
                guard j < chars.count else { throw SCIMError.invalidFilter("unterminated string in filter") }
                var raw = String.UnicodeScalarView()
                raw.append(contentsOf: chars[i...j])
                guard let decoded = try? JSONSerialization.jsonObject(with: Data(String(raw).utf8), options: [.fragmentsAllowed]) as? String else {
                    throw SCIMError.invalidFilter("bad string \(String(raw)) in filter")
                }
                out.append(Token(kind: .string, text: decoded))
                i = j + 1
            default:
                var j = i
                var word = String.UnicodeScalarView()
                while j < chars.count, !" \t\n()[]\"".unicodeScalars.contains(chars[j]) {
                    word.append(chars[j]); j += 1
                }
                // "].value": a sub-attribute after a value path arrives as ".value".
                out.append(Token(kind: .word, text: String(word)))
                i = j
            }
        }
        return out
    }

    struct Parser {
        var tokens: [Token]
        var at = 0
        var atEnd: Bool { at >= tokens.count }
        func peek() -> Token? { atEnd ? nil : tokens[at] }
        func peekWord() -> String? { peek().flatMap { $0.kind == .word ? $0.text.lowercased() : nil } }
        mutating func next() throws -> Token {
            guard let t = peek() else { throw SCIMError.invalidFilter("the filter ends too early") }
            at += 1
            return t
        }

        mutating func parseOr() throws -> SCIMFilter {
            var f = try parseAnd()
            while peekWord() == "or" { at += 1; f = .or(f, try parseAnd()) }
            return f
        }

        mutating func parseAnd() throws -> SCIMFilter {
            var f = try parseNot()
            while peekWord() == "and" { at += 1; f = .and(f, try parseNot()) }
            return f
        }

        mutating func parseNot() throws -> SCIMFilter {
            if peekWord() == "not" {
                at += 1
                guard try next().kind == .lparen else { throw SCIMError.invalidFilter("not must be followed by (") }
                let f = try parseOr()
                guard try next().kind == .rparen else { throw SCIMError.invalidFilter("missing )") }
                return .not(f)
            }
            if peek()?.kind == .lparen {
                at += 1
                let f = try parseOr()
                guard try next().kind == .rparen else { throw SCIMError.invalidFilter("missing )") }
                return f
            }
            return try parseAttribute()
        }

        mutating func parseAttribute() throws -> SCIMFilter {
            let name = try next()
            guard name.kind == .word else { throw SCIMError.invalidFilter("expected an attribute, found \"\(name.text)\"") }
            let path = try SCIMPath.parse(name.text)
            if peek()?.kind == .lbracket {
                at += 1
                let inner = try parseOr()
                guard try next().kind == .rbracket else { throw SCIMError.invalidFilter("missing ]") }
                var sub: String?
                if let w = peek(), w.kind == .word, w.text.hasPrefix(".") {
                    at += 1
                    sub = String(w.text.dropFirst())
                }
                guard let opWord = peekWord(), SCIMFilter.operators.contains(opWord) || opWord == "pr" else {
                    return .valuePath(attr: path, filter: inner, sub: sub, op: nil, value: nil)
                }
                at += 1
                if opWord == "pr" { return .valuePath(attr: path, filter: inner, sub: sub, op: "pr", value: nil) }
                return .valuePath(attr: path, filter: inner, sub: sub, op: opWord, value: try parseValue())
            }
            guard let opWord = peekWord() else { throw SCIMError.invalidFilter("expected an operator after \(name.text)") }
            at += 1
            if opWord == "pr" { return .present(path: path) }
            guard SCIMFilter.operators.contains(opWord) else { throw SCIMError.invalidFilter("unknown operator \"\(opWord)\"") }
            return .compare(path: path, op: opWord, value: try parseValue())
        }

        mutating func parseValue() throws -> SCIMValue {
            let t = try next()
            switch t.kind {
            case .string: return .string(t.text)
            case .word:
                switch t.text.lowercased() {
                case "true": return .bool(true)
                case "false": return .bool(false)
                case "null": return .null
                default:
                    if let d = Double(t.text) { return .number(d) }
                    throw SCIMError.invalidFilter("bad value \"\(t.text)\"")
                }
            default: throw SCIMError.invalidFilter("expected a value, found \"\(t.text)\"")
            }
        }
    }
}

/// A comparison value of a filter.
enum SCIMValue: Sendable {
    case string(String), number(Double), bool(Bool), null

    var isNull: Bool { if case .null = self { return true }; return false }

    func compare(_ op: String, _ actual: Any, caseExact: Bool) -> Bool {
        switch self {
        case .null: return op == "eq" ? actual is NSNull : !(actual is NSNull)
        case .bool(let b):
            let a: Bool? = (actual as? Bool) ?? (actual as? String).flatMap { Bool($0.lowercased()) }
            guard let a else { return false }
            return op == "eq" ? a == b : op == "ne" ? a != b : false
        case .number(let n):
            guard let a = (actual as? NSNumber)?.doubleValue ?? (actual as? String).flatMap(Double.init) else { return false }
            switch op {
            case "eq": return a == n
            case "ne": return a != n
            case "gt": return a > n
            case "ge": return a >= n
            case "lt": return a < n
            case "le": return a <= n
            default: return false
            }
        case .string(let s):
            if let b = actual as? Bool, let want = Bool(s.lowercased()) {
                // Entra ID writes booleans as strings: roles[primary eq "True"].
                return op == "eq" ? b == want : op == "ne" ? b != want : false
            }
            guard let raw = actual as? String else { return false }
            let a = caseExact ? raw : raw.lowercased(), b = caseExact ? s : s.lowercased()
            switch op {
            case "eq": return a == b
            case "ne": return a != b
            case "co": return a.contains(b)
            case "sw": return a.hasPrefix(b)
            case "ew": return a.hasSuffix(b)
            case "gt": return a > b
            case "ge": return a >= b
            case "lt": return a < b
            case "le": return a <= b
            default: return false
            }
        }
    }
}

/// An attribute path: `userName`, `name.givenName`, `emails.value`, with an optional schema
/// URN (`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`).
struct SCIMPath: Sendable, Hashable {
    /// The attribute and sub-attribute names.
    var components: [String]
    /// The extension schema the attribute belongs to (`nil`: the core schema).
    var schema: String?

    /// `id` and `externalId` are case-exact; the other attributes PIAM publishes are not.
    var caseExact: Bool { schema == nil && components.count == 1 && (components[0] == "id" || components[0] == "externalId") }

    static let coreSchemas = [SCIMSchemas.user, SCIMSchemas.group]

    /// Parses a path; the core schemas' URNs are dropped, an extension's kept.
    static func parse(_ text: String) throws -> SCIMPath {
        var rest = text
        var schema: String?
        if rest.lowercased().hasPrefix("urn:") {
            if let core = coreSchemas.first(where: { rest.lowercased().hasPrefix($0.lowercased() + ":") }) {
                rest = String(rest.dropFirst(core.count + 1))
            } else if let colon = rest.lastIndex(of: ":") {
                schema = String(rest[..<colon])
                rest = String(rest[rest.index(after: colon)...])
            }
        }
        let parts = rest.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !parts.isEmpty, parts.allSatisfy({ !$0.isEmpty && $0.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || $0 == "_" || $0 == "-" || $0 == "$" } }) else {
            throw SCIMError.invalidPath("bad attribute path \"\(text)\"")
        }
        return SCIMPath(components: parts, schema: schema)
    }

    /// The values at this path (arrays flattened), matching attribute names without case.
    func values(in resource: [String: Any]) -> [Any] {
        var current: [Any] = [resource]
        if let schema {
            current = current.compactMap { ($0 as? [String: Any]).flatMap { SCIMJSON.member($0, schema) } }
        }
        for name in components {
            var next: [Any] = []
            for c in current {
                let objects: [[String: Any]] = (c as? [String: Any]).map { [$0] } ?? ((c as? [Any])?.compactMap { $0 as? [String: Any] } ?? [])
                for o in objects {
                    guard let v = SCIMJSON.member(o, name) else { continue }
                    if let a = v as? [Any] { next.append(contentsOf: a) } else { next.append(v) }
                }
            }
            current = next
        }
        return current
    }
}

/// Helpers for SCIM's case-insensitive attribute names.
enum SCIMJSON {
    /// `o[name]`, matching the key without case.
    static func member(_ o: [String: Any], _ name: String) -> Any? {
        if let v = o[name] { return v }
        let lower = name.lowercased()
        return o.first { $0.key.lowercased() == lower }?.value
    }

    /// The key of `o` that names `name` without case, else `name`.
    static func key(_ o: [String: Any], _ name: String) -> String {
        if o[name] != nil { return name }
        let lower = name.lowercased()
        return o.keys.first { $0.lowercased() == lower } ?? name
    }
}

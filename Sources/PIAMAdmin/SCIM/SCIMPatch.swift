import Foundation

/// SCIM PATCH (RFC 7644 §3.5.2) applied to a resource's JSON, tolerant of what real clients
/// send: op names in any case (`Replace`), booleans as strings (`"False"`), `replace` with an
/// object value and no path, dotted and URN-qualified keys in that object, value-path filters
/// (`emails[type eq "work"].value`, creating the element when none matches), Okta's
/// `replace members` and Entra ID's `add`/`remove` with `path: "members"` and a list of
/// `{"value": ID}`, `remove` with a filter (`members[value eq "ID"]`), and a multi-valued
/// value sent as a JSON string (Entra ID's `roles`).
enum SCIMPatch {
    static let schema = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

    /// The operations of a PATCH body. Throws 400 `invalidSyntax`.
    static func operations(_ body: [String: Any]) throws -> [[String: Any]] {
        guard let ops = SCIMJSON.member(body, "Operations") as? [Any], !ops.isEmpty else {
            throw SCIMError.invalidSyntax("a PATCH body is {\"schemas\": [\"\(schema)\"], \"Operations\": [...]}")
        }
        return try ops.enumerated().map { i, o in
            guard let d = o as? [String: Any] else { throw SCIMError.invalidSyntax("Operations[\(i)] must be an object") }
            return d
        }
    }

    /// Applies `operations` to `resource`. `multiValued` names the resource's multi-valued
    /// attributes (lowercased).
    static func apply(_ operations: [[String: Any]], to resource: inout [String: Any], multiValued: Set<String>) throws {
        for (i, op) in operations.enumerated() {
            guard let name = (SCIMJSON.member(op, "op") as? String)?.lowercased(), ["add", "replace", "remove"].contains(name) else {
                throw SCIMError.invalidSyntax("Operations[\(i)].op must be add, replace or remove")
            }
            let pathText = (SCIMJSON.member(op, "path") as? String).flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0 }
            var value = SCIMJSON.member(op, "value")
            if let pathText {
                let target = try Target.parse(pathText)
                if let s = value as? String, multiValued.contains(target.attribute.lowercased()), let parsed = jsonText(s) {
                    value = parsed
                }
                try apply(name, target, value, to: &resource, multiValued: multiValued)
            } else {
                guard name != "remove" else { throw SCIMError(.badRequest, scimType: "noTarget", "remove needs a path") }
                guard let object = value as? [String: Any] else {
                    throw SCIMError.invalidSyntax("Operations[\(i)]: without a path, the value must be an object")
                }
                for key in object.keys.sorted() {
                    let v = object[key]!
                    if key.lowercased().hasPrefix("urn:"), let ext = v as? [String: Any],
                       !SCIMPath.coreSchemas.contains(where: { key.lowercased().hasPrefix($0.lowercased() + ":") }),
                       key.split(separator: ":").count >= 7, SCIMSchemas.extensions.contains(where: { $0.lowercased() == key.lowercased() }) {
                        var current = (SCIMJSON.member(resource, key) as? [String: Any]) ?? [:]
                        for (k, x) in ext { current[SCIMJSON.key(current, k)] = x }
                        resource[SCIMJSON.key(resource, key)] = current
                        continue
                    }
                    if SCIMPath.coreSchemas.contains(where: { $0.lowercased() == key.lowercased() }), let core = v as? [String: Any] {
                        for (k, x) in core { try apply(name, try Target.parse(k), x, to: &resource, multiValued: multiValued) }
                        continue
                    }
                    var x: Any = v
                    let target = try Target.parse(key)
                    if let s = v as? String, multiValued.contains(target.attribute.lowercased()), let parsed = jsonText(s) { x = parsed }
                    try apply(name, target, x, to: &resource, multiValued: multiValued)
                }
            }
        }
    }

    /// A JSON array or object sent as a string (Entra ID), else `nil`.
    static func jsonText(_ s: String) -> Any? {
        let t = s.trimmingCharacters(in: .whitespaces)
        guard t.hasPrefix("[") || t.hasPrefix("{") else { return nil }
        guard let v = try? JSONSerialization.jsonObject(with: Data(t.utf8)) else { return nil }
        return v is [Any] ? v : [v]
    }

    /// A PATCH path: `attr`, `attr.sub`, `attr[filter]`, `attr[filter].sub`, each with an
    /// optional schema URN.
    struct Target {
        var schema: String?
        var attribute: String
        var sub: String?
        var filter: SCIMFilter?

        static func parse(_ text: String) throws -> Target {
            // An extension schema's URN alone names its whole object.
            if let ext = SCIMSchemas.extensions.first(where: { $0.lowercased() == text.lowercased() }) {
                return Target(schema: nil, attribute: ext, sub: nil, filter: nil)
            }
            if let open = text.firstIndex(of: "[") {
                guard let close = text.lastIndex(of: "]"), close > open else { throw SCIMError.invalidPath("bad path \"\(text)\"") }
                let head = try SCIMPath.parse(String(text[..<open]))
                guard head.components.count == 1 else { throw SCIMError.invalidPath("bad path \"\(text)\"") }
                let filter = try SCIMFilter.parse(String(text[text.index(after: open)..<close]))
                var sub: String?
                let after = text[text.index(after: close)...]
                if !after.isEmpty {
                    guard after.hasPrefix("."), after.count > 1 else { throw SCIMError.invalidPath("bad path \"\(text)\"") }
                    sub = String(after.dropFirst())
                }
                return Target(schema: head.schema, attribute: head.components[0], sub: sub, filter: filter)
            }
            let p = try SCIMPath.parse(text)
            guard p.components.count <= 2 else { throw SCIMError.invalidPath("bad path \"\(text)\"") }
            return Target(schema: p.schema, attribute: p.components[0], sub: p.components.count == 2 ? p.components[1] : nil, filter: nil)
        }
    }

    static func apply(_ op: String, _ t: Target, _ value: Any?, to resource: inout [String: Any], multiValued: Set<String>) throws {
        if let schema = t.schema {
            var ext = (SCIMJSON.member(resource, schema) as? [String: Any]) ?? [:]
            try apply(op, Target(schema: nil, attribute: t.attribute, sub: t.sub, filter: t.filter), value, to: &ext, multiValued: multiValued)
            resource[SCIMJSON.key(resource, schema)] = ext
            return
        }
        let key = SCIMJSON.key(resource, t.attribute)
        let isMulti = multiValued.contains(t.attribute.lowercased()) || resource[key] is [Any]
        if op != "remove" && value == nil { throw SCIMError.invalidValue("\(op) \(t.attribute) needs a value") }

        if let filter = t.filter {
            var elements = (resource[key] as? [Any])?.compactMap { $0 as? [String: Any] } ?? []
            let matching = elements.indices.filter { filter.matches(elements[$0]) }
            switch op {
            case "remove":
                if let sub = t.sub {
                    for i in matching { elements[i].removeValue(forKey: SCIMJSON.key(elements[i], sub)) }
                } else {
                    for i in matching.reversed() { elements.remove(at: i) }
                }
            default:
                if matching.isEmpty {
                    // Entra ID replaces emails[type eq "work"].value on a user without one: add it.
                    var element = seed(from: filter)
                    if let sub = t.sub { element[sub] = value } else if let o = value as? [String: Any] { for (k, v) in o { element[k] = v } }
                    elements.append(element)
                } else {
                    for i in matching {
                        if let sub = t.sub {
                            elements[i][SCIMJSON.key(elements[i], sub)] = value
                        } else if let o = value as? [String: Any] {
                            for (k, v) in o { elements[i][SCIMJSON.key(elements[i], k)] = v }
                        }
                    }
                }
            }
            resource[key] = elements
            return
        }

        if let sub = t.sub {
            if isMulti {
                // emails.value: every element's sub-attribute.
                var elements = (resource[key] as? [Any])?.compactMap { $0 as? [String: Any] } ?? []
                if op == "remove" {
                    for i in elements.indices { elements[i].removeValue(forKey: SCIMJSON.key(elements[i], sub)) }
                } else if elements.isEmpty {
                    elements = [[sub: value!]]
                } else {
                    for i in elements.indices { elements[i][SCIMJSON.key(elements[i], sub)] = value }
                }
                resource[key] = elements
                return
            }
            var object = (resource[key] as? [String: Any]) ?? [:]
            if op == "remove" { object.removeValue(forKey: SCIMJSON.key(object, sub)) } else { object[SCIMJSON.key(object, sub)] = value }
            resource[key] = object
            return
        }

        switch op {
        case "remove":
            if isMulti, let given = value.map(list), !given.isEmpty {
                // Entra ID: remove path "members" with value [{"value": ID}].
                let drop = Set(given.compactMap(elementKey))
                resource[key] = ((resource[key] as? [Any]) ?? []).filter { e in elementKey(e).map { !drop.contains($0) } ?? true }
            } else {
                resource.removeValue(forKey: key)
            }
        case "add" where isMulti:
            var elements = (resource[key] as? [Any]) ?? []
            let have = Set(elements.compactMap(elementKey))
            for e in list(value!) where elementKey(e).map({ !have.contains($0) }) ?? true { elements.append(e) }
            resource[key] = elements
        case "add", "replace":
            if isMulti { resource[key] = list(value!) } else if op == "add", var current = resource[key] as? [String: Any], let o = value as? [String: Any] {
                for (k, v) in o { current[SCIMJSON.key(current, k)] = v }
                resource[key] = current
            } else {
                resource[key] = value
            }
        default: break
        }
    }

    /// A value as a list (a single value becomes a list of one).
    static func list(_ v: Any) -> [Any] { (v as? [Any]) ?? [v] }

    /// The identity of a multi-valued element: its `value` (or the element itself, a string).
    static func elementKey(_ e: Any) -> String? {
        if let d = e as? [String: Any], let v = SCIMJSON.member(d, "value") { return "\(v)" }
        if let s = e as? String { return s }
        return nil
    }

    /// A new element carrying the equality conditions of a filter (`type eq "work"`).
    static func seed(from filter: SCIMFilter) -> [String: Any] {
        switch filter {
        case .compare(let path, "eq", .string(let s)) where path.components.count == 1: return [path.components[0]: s]
        case .compare(let path, "eq", .bool(let b)) where path.components.count == 1: return [path.components[0]: b]
        case .and(let a, let b): return seed(from: a).merging(seed(from: b)) { x, _ in x }
        default: return [:]
        }
    }
}

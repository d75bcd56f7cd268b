import Foundation
import PIAMEngine

extension Store {
    /// Writes the whole graph in the import format (DESIGN §5), canonical and deterministic:
    /// top-level keys in §5's order, one entity per line with every field written (null where
    /// absent, `[]` for no aliases; `"granted_at": null` where the time is unknown, which an
    /// import keeps unknown), entities sorted by key (byte order). Streams: `sink` receives
    /// chunks of about 1 MiB. Reads in one transaction, so the file is one consistent revision.
    ///
    /// - Returns: the revision exported.
    @discardableResult
    public func export(to sink: (UnsafeRawBufferPointer) throws(PIAMError) -> Void) throws(PIAMError) -> Int64 {
        try db.withTransaction { () throws(PIAMError) -> Int64 in
            let revision = try revision()
            let grantedAt = try grantedAtColumn()
            var out: [UInt8] = []
            out.reserveCapacity(1 << 20 + 4096)
            func flush(_ force: Bool) throws(PIAMError) {
                if force || out.count >= 1 << 20 {
                    var failure: PIAMError?
                    out.withUnsafeBytes { buf in
                        do throws(PIAMError) { try sink(buf) } catch { failure = error }
                    }
                    if let failure { throw failure }
                    out.removeAll(keepingCapacity: true)
                }
            }
            func lit(_ s: StaticString) {
                s.withUTF8Buffer { out.append(contentsOf: $0) }
            }
            func str(_ s: Statement, _ i: Int32) {
                if s.isNull(i) { lit("null"); return }
                JSONText.appendString(s.text(i), to: &out)
            }
            func time(_ s: Statement, _ i: Int32) {
                guard let t = s.optionalInt64(i) else { lit("null"); return }
                JSONText.appendString(RFC3339.format(t), to: &out)
            }
            func bool(_ s: Statement, _ i: Int32) {
                if s.int64(i) != 0 { lit("true") } else { lit("false") }
            }
            /// One top-level array: `row` writes an object's fields.
            func section(_ key: StaticString, last: Bool = false, _ sql: String, _ row: (Statement) -> Void) throws(PIAMError) {
                lit("  \""); lit(key); lit("\": [")
                let s = try db.prepare(sql)
                var first = true
                while try s.step() {
                    lit(first ? "\n    {" : ",\n    {")
                    first = false
                    row(s)
                    lit("}")
                    try flush(false)
                }
                if !first { lit("\n  ") }
                lit(last ? "]\n" : "],\n")
            }
            lit("{\n")
            try section("orgs", "SELECT id, parent, name, kind, status FROM orgs ORDER BY id") { s in
                lit("\"id\": "); str(s, 0); lit(", \"parent\": "); str(s, 1); lit(", \"name\": "); str(s, 2)
                lit(", \"kind\": "); str(s, 3); lit(", \"status\": "); str(s, 4)
            }
            try section("roles", "SELECT id, name, description, permissions FROM roles ORDER BY id") { s in
                lit("\"id\": "); str(s, 0); lit(", \"name\": "); str(s, 1); lit(", \"description\": "); str(s, 2)
                lit(", \"permissions\": [")
                for (k, p) in (JSONText.parseStringArray(s.text(3)) ?? []).enumerated() {
                    if k > 0 { lit(", ") }
                    JSONText.appendString(p, to: &out)
                }
                lit("]")
            }
            try section("users", """
                SELECT u.id, u.org, u.name, u.email,
                  (SELECT json_group_array(alias) FROM (SELECT alias FROM user_aliases a WHERE a.user = u.id ORDER BY alias)),
                  u.status, u.valid_until
                FROM users u ORDER BY u.id
                """) { s in
                lit("\"id\": "); str(s, 0); lit(", \"org\": "); str(s, 1); lit(", \"name\": "); str(s, 2)
                lit(", \"email\": "); str(s, 3); lit(", \"aliases\": [")
                for (k, a) in (JSONText.parseStringArray(s.text(4)) ?? []).enumerated() {
                    if k > 0 { lit(", ") }
                    JSONText.appendString(a, to: &out)
                }
                lit("], \"status\": "); str(s, 5); lit(", \"valid_until\": "); time(s, 6)
            }
            try section("resources", "SELECT type, id, org, owner, shared, name FROM resources ORDER BY type, id") { s in
                lit("\"type\": "); str(s, 0); lit(", \"id\": "); str(s, 1); lit(", \"org\": "); str(s, 2)
                lit(", \"owner\": "); str(s, 3); lit(", \"shared\": "); bool(s, 4); lit(", \"name\": "); str(s, 5)
            }
            try section("entitlements", "SELECT org, role FROM entitlements ORDER BY org, role") { s in
                lit("\"org\": "); str(s, 0); lit(", \"role\": "); str(s, 1)
            }
            try section("assignments", """
                SELECT user, role, scope, valid_until, granted_by, \(grantedAt) FROM assignments ORDER BY user, role, scope
                """) { s in
                lit("\"user\": "); str(s, 0); lit(", \"role\": "); str(s, 1); lit(", \"scope\": "); str(s, 2)
                lit(", \"valid_until\": "); time(s, 3); lit(", \"granted_by\": "); str(s, 4); lit(", \"granted_at\": "); time(s, 5)
            }
            try section("org_grants", last: true, """
                SELECT org, role, include_suborgs, valid_until, granted_by, \(grantedAt) FROM org_grants ORDER BY org, role
                """) { s in
                lit("\"org\": "); str(s, 0); lit(", \"role\": "); str(s, 1); lit(", \"include_suborgs\": "); bool(s, 2)
                lit(", \"valid_until\": "); time(s, 3); lit(", \"granted_by\": "); str(s, 4); lit(", \"granted_at\": "); time(s, 5)
            }
            lit("}\n")
            try flush(true)
            return revision
        }
    }

    /// Exports to an open file handle; see the streaming `export(to:)` that takes a sink.
    @discardableResult
    public func export(to handle: FileHandle) throws(PIAMError) -> Int64 {
        try export { (buf) throws(PIAMError) in
            do { try handle.write(contentsOf: buf) } catch { throw PIAMError(.io, "export: write failed: \(error.localizedDescription)") }
        }
    }

    /// Exports to a file (created or truncated); see the streaming `export(to:)` that takes a sink.
    @discardableResult
    public func export(toFile path: String) throws(PIAMError) -> Int64 {
        guard FileManager.default.createFile(atPath: path, contents: nil),
              let handle = FileHandle(forWritingAtPath: path) else {
            throw PIAMError(.io, "\(path): cannot create the file")
        }
        defer { try? handle.close() }
        return try export(to: handle)
    }

    /// Exports into memory (for tests and small databases).
    public func exportData() throws(PIAMError) -> Data {
        var data = Data()
        try export { (buf) throws(PIAMError) in data.append(contentsOf: buf) }
        return data
    }
}

import Foundation
import PIAMEngine
@testable import PIAMStore

/// A fresh temp directory per test, removed at deinit.
final class TempDir {
    let url: URL
    init() {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("piamstore-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    deinit { try? FileManager.default.removeItem(at: url) }
}

func freshStore(_ dir: TempDir, _ name: String = "piam.db") throws -> Store {
    try Store.initialize(path: dir.path(name), now: 1_700_000_000_000)
}

func journalRows(_ store: Store, after seq: Int64) throws -> [String] {
    try store.journal(after: seq).map { "\($0.table) \($0.key) \($0.op)" }
}

/// Expects `body` to throw a PIAMError and returns its message.
func errorMessage(_ body: () throws -> Void) -> String? {
    do {
        try body()
        return nil
    } catch let e as PIAMError {
        return e.message
    } catch {
        return "\(error)"
    }
}

/// A small canonical fixture, in export format.
let canonicalFixture = """
{
  "orgs": [
    {"id": "acme", "parent": "partners", "name": "Acme Brokers", "kind": "partner", "status": "active"},
    {"id": "acme-eu", "parent": "acme", "name": "Acme \\"EU\\" \\u0001 Ünïcode", "kind": "partner", "status": "suspended"},
    {"id": "host", "parent": null, "name": "Host", "kind": "host", "status": "active"},
    {"id": "partners", "parent": "host", "name": "Partners", "kind": "host", "status": "active"}
  ],
  "roles": [
    {"id": "claims-agent", "name": "Claims agent", "description": null, "permissions": ["claim:read", "claim:submit", "claim:withdraw:owner"]},
    {"id": "host-admin", "name": "Host administrator", "description": "Every action on orgs, users and roles, host-only ones included", "permissions": ["org:*", "user:*", "role:*"]},
    {"id": "partner-admin", "name": "Partner administrator", "description": "Manages the people and sub-organizations of its scope", "permissions": ["org:view", "org:invite_user", "org:create_suborg", "org:update", "org:suspend", "org:reactivate", "org:grant_role", "user:view", "user:update", "user:suspend", "user:reactivate", "user:remove", "user:assign_role", "user:revoke_role"]},
    {"id": "partner-user", "name": "Partner user", "description": "Sees its organization and colleagues, may request roles for itself", "permissions": ["org:view", "user:view", "user:request_role:owner"]}
  ],
  "users": [
    {"id": "alice", "org": "acme", "name": "Alice", "email": "alice@acme.example", "aliases": ["alice@idp", "idp|123"], "status": "active", "valid_until": "2027-06-30T00:00:00Z"},
    {"id": "bob", "org": "acme-eu", "name": null, "email": null, "aliases": [], "status": "invited", "valid_until": "2027-06-30T00:00:00.250Z"},
    {"id": "root", "org": "host", "name": "Root", "email": null, "aliases": [], "status": "active", "valid_until": null}
  ],
  "resources": [
    {"type": "claim", "id": "CLM-1", "org": "acme", "owner": "alice", "shared": false, "name": "First claim"},
    {"type": "document", "id": "catalog", "org": "host", "owner": null, "shared": true, "name": null}
  ],
  "entitlements": [
    {"org": "acme", "role": "claims-agent"},
    {"org": "acme", "role": "partner-admin"}
  ],
  "assignments": [
    {"user": "alice", "role": "partner-admin", "scope": "acme", "valid_until": null, "granted_by": "root", "granted_at": "2026-03-01T09:30:00Z"},
    {"user": "bob", "role": "claims-agent", "scope": "acme-eu", "valid_until": "2030-01-01T00:00:00Z", "granted_by": null, "granted_at": "2026-03-02T10:00:00.125Z"},
    {"user": "root", "role": "host-admin", "scope": "host", "valid_until": null, "granted_by": null, "granted_at": null}
  ],
  "org_grants": [
    {"org": "acme", "role": "claims-agent", "include_suborgs": true, "valid_until": null, "granted_by": "root", "granted_at": "2026-03-01T09:31:00Z"}
  ]
}

"""

import Foundation
import PIAMStore
import Testing

/// The AuthZEN working group's interop vectors (`Tests/Fixtures/authzen-interop/`, an unchanged
/// copy of the contract's `../shared/reference/authzen-interop/`, so a fresh CI clone has them),
/// each scenario expressed as a PIAM graph, every case run through piamd's HTTP face.
@Suite("AuthZEN interop vectors through the HTTP face", .serialized)
struct AuthZENInteropTests {
    static let reference: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/authzen-interop").standardizedFileURL

    static func vectors(_ path: String) throws -> [String: Any] {
        let url = reference.appendingPathComponent(path)
        let data = try Data(contentsOf: url)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any], "\(url.path)")
    }

    /// The Todo and API-gateway scenarios share their users and roles. Mapping:
    /// - one partner org `todo-app`, entitled to the four roles; the five users with their
    ///   opaque interop id and their e-mail as aliases (subjects name them by id, resources
    ///   of type `user` by e-mail);
    /// - roles: `viewer` reads users and todos; `editor` also creates, and updates and
    ///   deletes its own todos (`:owner`); `admin` as editor but deletes any todo;
    ///   `evil_genius` updates any todo. Each gets the gateway's HTTP methods on `route`
    ///   (viewer GET only);
    /// - todos are graph resources with the owner the vectors give in `ownerID` (the PDP
    ///   knows each todo's owner, so the request's `ownerID` property is not needed); the
    ///   placeholder `todo-1` is an ownerless todo; the gateway's three route templates are
    ///   `route` resources.
    static let todoGraph = #"""
    {"orgs": [{"id": "todo-app", "parent": "partners", "name": "Todo app", "kind": "partner", "status": "active"}],
     "roles": [
       {"id": "viewer", "name": "Viewer", "permissions": ["user:can_read_user", "todo:can_read_todos", "route:GET"]},
       {"id": "editor", "name": "Editor", "permissions": ["user:can_read_user", "todo:can_read_todos", "todo:can_create_todo",
          "todo:can_update_todo:owner", "todo:can_delete_todo:owner", "route:GET", "route:POST", "route:PUT", "route:DELETE"]},
       {"id": "admin", "name": "Admin", "permissions": ["user:can_read_user", "todo:can_read_todos", "todo:can_create_todo",
          "todo:can_update_todo:owner", "todo:can_delete_todo", "route:GET", "route:POST", "route:PUT", "route:DELETE"]},
       {"id": "evil_genius", "name": "Evil genius", "permissions": ["todo:can_update_todo"]}],
     "entitlements": [{"org": "todo-app", "role": "viewer"}, {"org": "todo-app", "role": "editor"},
                      {"org": "todo-app", "role": "admin"}, {"org": "todo-app", "role": "evil_genius"}],
     "users": [
       {"id": "rick", "org": "todo-app", "name": "Rick Sanchez", "email": "rick@the-citadel.com", "status": "active",
        "aliases": ["CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs", "rick@the-citadel.com"]},
       {"id": "morty", "org": "todo-app", "name": "Morty Smith", "email": "morty@the-citadel.com", "status": "active",
        "aliases": ["CiRmZDE2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs", "morty@the-citadel.com"]},
       {"id": "summer", "org": "todo-app", "name": "Summer Smith", "email": "summer@the-smiths.com", "status": "active",
        "aliases": ["CiRmZDI2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs", "summer@the-smiths.com"]},
       {"id": "beth", "org": "todo-app", "name": "Beth Smith", "email": "beth@the-smiths.com", "status": "active",
        "aliases": ["CiRmZDM2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs", "beth@the-smiths.com"]},
       {"id": "jerry", "org": "todo-app", "name": "Jerry Smith", "email": "jerry@the-smiths.com", "status": "active",
        "aliases": ["CiRmZDQ2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs", "jerry@the-smiths.com"]}],
     "assignments": [{"user": "rick", "role": "admin"}, {"user": "rick", "role": "evil_genius"},
                     {"user": "morty", "role": "editor"}, {"user": "summer", "role": "editor"},
                     {"user": "beth", "role": "viewer"}, {"user": "jerry", "role": "viewer"}],
     "resources": [
       {"type": "todo", "id": "todo-1", "org": "todo-app"},
       {"type": "todo", "id": "7240d0db-8ff0-41ec-98b2-34a096273b91", "org": "todo-app", "owner": "morty"},
       {"type": "todo", "id": "7240d0db-8ff0-41ec-98b2-34a096273b92", "org": "todo-app", "owner": "rick"},
       {"type": "todo", "id": "7240d0db-8ff0-41ec-98b2-34a096273b93", "org": "todo-app", "owner": "summer"},
       {"type": "todo", "id": "7240d0db-8ff0-41ec-98b2-34a096273b94", "org": "todo-app", "owner": "beth"},
       {"type": "todo", "id": "7240d0db-8ff0-41ec-98b2-34a096273b95", "org": "todo-app", "owner": "jerry"},
       {"type": "route", "id": "/users/{userId}", "org": "todo-app"},
       {"type": "route", "id": "/todos", "org": "todo-app"},
       {"type": "route", "id": "/todos/{todoId}", "org": "todo-app"}]}
    """#

    /// The search scenario: the company is the host; its departments are host orgs below the
    /// root; the six users are members of their department. Rules as roles:
    /// - everyone holds `record-owner` (view, edit, delete `:owner`) over the whole company;
    /// - every department's members hold `record-viewer` there (an org grant): same department;
    /// - managers hold `record-viewer` over the whole company and `record-editor` over their
    ///   own department.
    /// Records are resources located at their department, owned by their owner.
    static func searchGraph() throws -> String {
        let users = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: reference.appendingPathComponent("search/data/users.json"))) as? [[String: Any]])
        let records = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: reference.appendingPathComponent("search/data/records.json"))) as? [[String: Any]])
        func dept(_ name: Any?) -> String { "dept-" + (name as! String).lowercased() }
        let departments = Set(users.map { dept($0["department"]) } + records.map { dept($0["department"]) }).sorted()
        var assignments: [[String: Any]] = []
        for u in users {
            let id = u["id"] as! String
            assignments.append(["user": id, "role": "record-owner", "scope": "host"])
            if u["role"] as? String == "manager" {
                assignments.append(["user": id, "role": "record-viewer", "scope": "host"])
                assignments.append(["user": id, "role": "record-editor", "scope": dept(u["department"])])
            }
        }
        let doc: [String: Any] = [
            "orgs": departments.map { ["id": $0, "parent": "host", "name": $0, "kind": "host", "status": "active"] },
            "roles": [
                ["id": "record-owner", "name": "Record owner", "permissions": ["record:view:owner", "record:edit:owner", "record:delete:owner"]],
                ["id": "record-viewer", "name": "Record viewer", "permissions": ["record:view"]],
                ["id": "record-editor", "name": "Record editor", "permissions": ["record:edit"]],
            ],
            "users": users.map { ["id": $0["id"]!, "org": dept($0["department"]), "name": $0["id"]!, "status": "active"] },
            "assignments": assignments,
            "org_grants": departments.map { ["org": $0, "role": "record-viewer"] },
            "resources": records.map { ["type": "record", "id": "\($0["id"]!)", "org": dept($0["department"]), "owner": $0["owner"]!,
                                        "name": $0["title"]!] },
        ]
        return String(decoding: try JSONSerialization.data(withJSONObject: doc), as: UTF8.self)
    }

    static func daemon(graph: String) async throws -> (Fixture, DaemonProcess, HTTPTarget) {
        let f = try Fixture(demo: false)
        _ = try Store(path: f.db).importJSON(Data(graph.utf8))
        let (d, http) = try await startHTTPDaemon(f)
        return (f, d, http)
    }

    @Test("Todo: 40 + 40 single evaluations and 3 batches; API gateway: 25 evaluations")
    func todoAndGateway() async throws {
        let (_, d, http) = try await Self.daemon(graph: Self.todoGraph)
        var singles = 0, batches = 0
        for file in ["todo/decisions-authorization-api-1_0-01.json", "todo/decisions-authorization-api-1_0-02.json",
                     "api-gateway/decisions.json"] {
            let v = try Self.vectors(file)
            for case let c as [String: Any] in try #require(v["evaluation"] as? [Any]) {
                let r = try postJSON(http, "/access/v1/evaluation", c["request"]!)
                #expect(r.status == 200 && r.json?["decision"] as? Bool == c["expected"] as? Bool, "\(file): \(c["request"]!) → \(r)")
                singles += 1
            }
            for case let c as [String: Any] in (v["evaluations"] as? [Any]) ?? [] {
                let r = try postJSON(http, "/access/v1/evaluations", c["request"]!)
                let got = (r.json?["evaluations"] as? [[String: Any]])?.map { $0["decision"] as? Bool }
                let want = (c["expected"] as? [[String: Any]])?.map { $0["decision"] as? Bool }
                #expect(r.status == 200 && got != nil && got == want, "\(file): \(c["request"]!) → \(r)")
                batches += 1
            }
        }
        #expect(singles == 40 + 40 + 25 && batches == 3)
        await d.stop()
    }

    @Test("Search: 60 subject, 18 resource and 120 action searches, compared as sets across pages")
    func search() async throws {
        let (_, d, http) = try await Self.daemon(graph: try Self.searchGraph())
        var counts: [String: Int] = [:]
        for kind in ["subject", "resource", "action"] {
            let v = try Self.vectors("search/\(kind)/results.json")
            for case let c as [String: Any] in try #require(v["evaluation"] as? [Any]) {
                var request = try #require(c["request"] as? [String: Any])
                let key = kind == "action" ? "name" : "id"
                // Pages of 2 so that paging through next_token is part of every case.
                var token = ""
                var got: [String] = []
                var pages = 0
                repeat {
                    request["page"] = ["limit": 2, "token": token]
                    let r = try postJSON(http, "/access/v1/search/\(kind)", request)
                    try #require(r.status == 200, "\(r)")
                    got += (r.json?["results"] as? [[String: Any]] ?? []).map { ($0[key] as? String) ?? "?" }
                    token = (r.json?["page"] as? [String: Any])?["next_token"] as? String ?? ""
                    pages += 1
                } while !token.isEmpty && pages < 100
                let expected = (c["expected"] as? [String: Any])?["results"] as? [[String: Any]] ?? []
                #expect(Set(got) == Set(expected.map { ($0[key] as? String) ?? "?" }) && got.count == Set(got).count,
                        "\(kind): \(c["request"]!) → \(got)")
                if kind != "action" {
                    let type = ((c["request"] as? [String: Any])?[kind] as? [String: Any])?["type"] as? String
                    #expect(expected.allSatisfy { $0["type"] as? String == type })
                }
                counts[kind, default: 0] += 1
            }
        }
        #expect(counts == ["subject": 60, "resource": 18, "action": 120])
        await d.stop()
    }
}

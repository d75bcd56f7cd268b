import ArgumentParser
import Foundation
import PIAMEngine
import PIAMStore

struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List what a user may reach, or the graph's entities.",
        subcommands: [
            ListResources.self, ListActions.self, ListOrgs.self, ListUsers.self, ListRoles.self, ListGrants.self,
        ])
}

struct ListResources: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resources",
        abstract: "Every resource of TYPE that SUBJECT may do ACTION to (ids, sorted).",
        discussion: "TYPE is a registered type (claim, policy, …) or user, org or role. Every page is fetched unless --limit is given.")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The user (id or alias).") var subject: String
    @Argument(help: "The action.") var action: String
    @Argument(help: "The resource type.") var type: String
    @OptionGroup var paging: PageOptions
    @OptionGroup var time: TimeOptions

    func run() async throws {
        let backend = try global.queryBackend()
        let now = try time.instant()
        let page = try await paging.collect { c, l in
            try await backend.listResources(subject: subject, action: action, type: type, cursor: c, limit: l, at: now)
        }
        if global.json {
            Output.printJSON(PageJSON(items: page.items, nextCursor: page.nextCursor, revision: backend.revision))
        } else {
            for id in page.items { print("\(type):\(id)") }
            if let next = page.nextCursor { print("(more: --cursor \(next))") }
        }
    }
}

struct ListActions: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "actions",
        abstract: "The actions SUBJECT may do to TYPE:ID (from the type's vocabulary).")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The user (id or alias).") var subject: String
    @OptionGroup var resource: ResourceOptions
    @OptionGroup var time: TimeOptions

    func run() async throws {
        let backend = try global.queryBackend()
        let actions = try await backend.listActions(subject: subject, resource: try resource.ref(), at: try time.instant())
        if global.json {
            Output.printJSON(ActionsJSON(actions: actions, revision: backend.revision))
        } else {
            for a in actions { print(a) }
        }
    }

    struct ActionsJSON: Encodable {
        var actions: [String]
        var revision: Int64
    }
}

struct ListOrgs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "orgs", abstract: "Organizations, as a tree (or the children of --parent).")

    @OptionGroup var global: GlobalOptions
    @Option(help: "Only the direct children of this org.") var parent: String?

    func run() throws {
        let store = try global.openStore(readOnly: true)
        let orgs = try store.listOrgs(parent: parent)
        if global.json {
            Output.printJSON(orgs.map { OrgJSON(id: $0.id, parent: $0.parent, name: $0.name, kind: $0.kind.name, status: $0.status.name) })
            return
        }
        if parent != nil {
            print(Output.table(orgs.map { [$0.id, $0.kind.name, $0.status.name, $0.name] }))
            return
        }
        // The whole tree, depth-first, children by id.
        var children: [String: [OrgInfo]] = [:]
        var roots: [OrgInfo] = []
        for o in orgs {
            if let p = o.parent { children[p, default: []].append(o) } else { roots.append(o) }
        }
        var rows: [[String]] = []
        func walk(_ o: OrgInfo, _ depth: Int) {
            rows.append([String(repeating: "  ", count: depth) + o.id, o.kind.name, o.status.name, o.name])
            for c in (children[o.id] ?? []).sorted(by: { $0.id < $1.id }) { walk(c, depth + 1) }
        }
        for r in roots { walk(r, 0) }
        print(Output.table(rows))
    }

    struct OrgJSON: Encodable {
        var id: String
        var parent: String?
        var name: String
        var kind: String
        var status: String
    }
}

struct ListUsers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "users", abstract: "Users, sorted by id (optionally of one org).")

    @OptionGroup var global: GlobalOptions
    @Option(help: "Only the users of this org.") var org: String?
    @Option(help: "At most this many.") var limit: Int?
    @Option(help: "Start after this user id.") var after: String?

    func run() throws {
        let store = try global.openStore(readOnly: true)
        let users = try store.listUsers(org: org, after: after, limit: limit ?? Int(Int32.max))
        if global.json {
            Output.printJSON(users.map {
                UserJSON(id: $0.id, org: $0.org, name: $0.name, email: $0.email, aliases: $0.aliases,
                         status: $0.status.name, validUntil: $0.validUntil.map(RFC3339.format))
            })
            return
        }
        print(Output.table(users.map {
            [$0.id, $0.org, $0.status.name, $0.validUntil.map { "until " + RFC3339.format($0) } ?? "", $0.name ?? "", $0.email ?? ""]
        }))
    }

    struct UserJSON: Encodable {
        var id: String
        var org: String
        var name: String?
        var email: String?
        var aliases: [String]
        var status: String
        var validUntil: String?
        enum CodingKeys: String, CodingKey {
            case id, org, name, email, aliases, status
            case validUntil = "valid_until"
        }
    }
}

struct ListRoles: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "roles", abstract: "Roles and their permissions.")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let roles = try global.openStore(readOnly: true).listRoles()
        if global.json {
            Output.printJSON(roles.map { RoleJSON(id: $0.id, name: $0.name, description: $0.description, permissions: $0.permissions) })
            return
        }
        print(Output.table(roles.map { [$0.id, $0.permissions.joined(separator: " ")] }))
    }

    struct RoleJSON: Encodable {
        var id: String
        var name: String?
        var description: String?
        var permissions: [String]
    }
}

struct ListGrants: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grants",
        abstract: "Assignments of a user (--user) or org grants and entitlements of an org (--org).")

    @OptionGroup var global: GlobalOptions
    @Option(help: "The user whose assignments to list.") var user: String?
    @Option(help: "The org whose org grants and entitlements to list.") var org: String?

    func validate() throws {
        if (user == nil) == (org == nil) { throw ValidationError("give exactly one of --user and --org") }
    }

    func run() throws {
        let store = try global.openStore(readOnly: true)
        if let user {
            guard let u = try store.user(idOrAlias: user) else { throw PIAMError(.notFound, "no such user \"\(user)\"") }
            let rows = try store.assignments(user: u.id)
            if global.json {
                Output.printJSON(rows.map {
                    GrantJSON(kind: "assignment", user: $0.user, org: nil, role: $0.role, scope: $0.scope, includeSuborgs: nil,
                              validUntil: $0.validUntil.map(RFC3339.format), grantedBy: $0.grantedBy, grantedAt: $0.grantedAt.map(RFC3339.format))
                })
            } else {
                print(Output.table(rows.map {
                    [$0.role, "scope \($0.scope)", "until \(Output.time($0.validUntil))", "by \($0.grantedBy ?? "-")", "at \(Output.time($0.grantedAt))"]
                }))
            }
        } else if let org {
            guard try store.org(id: org) != nil else { throw PIAMError(.notFound, "no such org \"\(org)\"") }
            let grants = try store.orgGrants(org: org)
            let ents = try store.entitlements(org: org)
            if global.json {
                Output.printJSON(OrgGrantsJSON(
                    entitlements: ents,
                    orgGrants: grants.map {
                        GrantJSON(kind: "org_grant", user: nil, org: $0.org, role: $0.role, scope: nil, includeSuborgs: $0.includeSuborgs,
                                  validUntil: $0.validUntil.map(RFC3339.format), grantedBy: $0.grantedBy,
                                  grantedAt: $0.grantedAt.map(RFC3339.format))
                    }))
            } else {
                print("entitlements  \(ents.isEmpty ? "(none)" : ents.joined(separator: ", "))")
                print("org grants")
                print(Output.table(grants.map {
                    [$0.role, $0.includeSuborgs ? "+suborgs" : "org only", "until \(Output.time($0.validUntil))", "by \($0.grantedBy ?? "-")",
                     "at \(Output.time($0.grantedAt))"]
                }, indent: "  "))
            }
        }
    }

    struct GrantJSON: Encodable {
        var kind: String
        var user: String?
        var org: String?
        var role: String
        var scope: String?
        var includeSuborgs: Bool?
        var validUntil: String?
        var grantedBy: String?
        var grantedAt: String?
        enum CodingKeys: String, CodingKey {
            case kind, user, org, role, scope
            case includeSuborgs = "include_suborgs"
            case validUntil = "valid_until"
            case grantedBy = "granted_by"
            case grantedAt = "granted_at"
        }
    }

    struct OrgGrantsJSON: Encodable {
        var entitlements: [String]
        var orgGrants: [GrantJSON]
        enum CodingKeys: String, CodingKey {
            case entitlements
            case orgGrants = "org_grants"
        }
    }
}

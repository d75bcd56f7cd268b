extension AccessGraph {
    /// The graph as plain records (assignment scopes resolved; aliases with their users), in no
    /// particular order. Rebuilding from it gives a graph that answers every query the same.
    public func graphData() -> GraphData {
        var d = GraphData()
        for o in orgByPre {
            let r = orgs[Int(o)]
            let id = orgIDs[Int(o)]
            d.orgs.append(OrgRecord(id: id, parent: r.parent >= 0 ? orgIDs[Int(r.parent)] : nil, kind: r.kind, status: r.status))
            for role in orgEntitlements[Int(o)] { d.entitlements.append(EntitlementRecord(org: id, role: roleIDs[Int(role)])) }
        }
        for r in roleIDs.indices where !roleIDs[r].isEmpty {
            d.roles.append(RoleRecord(id: roleIDs[r], permissions: rolePermissions[r]))
        }
        var aliases: [Int32: [String]] = [:]
        for (key, u) in userIndex.entries where userIDs[Int(u)] != key { aliases[u, default: []].append(key) }
        for u in userIDs.indices where !userIDs[u].isEmpty {
            let rec = users[u]
            d.users.append(UserRecord(id: userIDs[u], org: orgIDs[Int(rec.org)], aliases: (aliases[Int32(u)] ?? []).sorted(),
                                      status: rec.status, validUntil: rec.validUntil == noExpiry ? nil : rec.validUntil))
            for i in Int(rec.assignStart)..<Int(rec.assignEnd) {
                let a = assigns[i]
                let p = provenanceFields(assignProvenance[i])
                d.assignments.append(AssignmentRecord(user: userIDs[u], role: roleIDs[Int(a.role)], scope: orgIDs[Int(a.scope)],
                                                      validUntil: a.validUntil == noExpiry ? nil : a.validUntil,
                                                      grantedBy: p.grantedBy, grantedAt: p.grantedAt))
            }
        }
        for r in resIDs.indices where !resIDs[r].isEmpty {
            d.resources.append(ResourceRecord(type: typeNames[Int(res[r].type)], id: resIDs[r], org: orgIDs[Int(res[r].org)],
                                              owner: res[r].owner >= 0 ? userIDs[Int(res[r].owner)] : nil, shared: res[r].shared))
        }
        for g in grantRole.indices {
            let p = provenanceFields(grantProvenance[g])
            d.orgGrants.append(OrgGrantRecord(org: orgIDs[Int(grantOrg[g])], role: roleIDs[Int(grantRole[g])],
                                              includeSuborgs: grantIncludeSub[g],
                                              validUntil: grantValidUntil[g] == noExpiry ? nil : grantValidUntil[g],
                                              grantedBy: p.grantedBy, grantedAt: p.grantedAt))
        }
        return d
    }
}

extension AccessGraph {
    /// The graph as plain records (assignment scopes resolved; aliases with their users), in no
    /// particular order. Rebuilding from it gives a graph that answers every query the same.
    public func graphData() -> GraphData {
        var d = GraphData()
        for o in orgIDs.indices {
            let r = orgs[o]
            d.orgs.append(OrgRecord(id: orgIDs[o], parent: r.parent >= 0 ? orgIDs[Int(r.parent)] : nil,
                                    kind: r.kind, status: r.status))
            for role in orgEntitlements[o] { d.entitlements.append(EntitlementRecord(org: orgIDs[o], role: roleIDs[Int(role)])) }
        }
        for r in roleIDs.indices { d.roles.append(RoleRecord(id: roleIDs[r], permissions: rolePermissions[r])) }
        var aliases = [[String]](repeating: [], count: userIDs.count)
        for slot in userIndex.slots where slot.value >= 0 && userIDs[Int(slot.value)] != slot.key {
            aliases[Int(slot.value)].append(slot.key)
        }
        for u in userIDs.indices {
            d.users.append(UserRecord(id: userIDs[u], org: orgIDs[Int(users[u].org)], aliases: aliases[u].sorted(),
                                      status: users[u].status,
                                      validUntil: users[u].validUntil == noExpiry ? nil : users[u].validUntil))
        }
        for r in resIDs.indices {
            d.resources.append(ResourceRecord(type: typeNames[Int(res[r].type)], id: resIDs[r], org: orgIDs[Int(res[r].org)],
                                              owner: res[r].owner >= 0 ? userIDs[Int(res[r].owner)] : nil, shared: res[r].shared))
        }
        for i in assigns.indices {
            let a = assigns[i]
            d.assignments.append(AssignmentRecord(user: userIDs[Int(assignUser[i])], role: roleIDs[Int(a.role)],
                                                  scope: orgIDs[Int(a.scope)], validUntil: a.validUntil == noExpiry ? nil : a.validUntil))
        }
        for g in grantRole.indices {
            d.orgGrants.append(OrgGrantRecord(org: orgIDs[Int(grantOrgOf(Int32(g)))], role: roleIDs[Int(grantRole[g])],
                                              includeSuborgs: grantIncludeSub[g],
                                              validUntil: grantValidUntil[g] == noExpiry ? nil : grantValidUntil[g]))
        }
        return d
    }

    /// The graph after `changes` (the keys' current states, see ``GraphChange``), sharing every
    /// part the changes do not touch with this graph, which stays valid and unchanged.
    ///
    /// - Throws: ``PIAMError`` when the changes leave the graph invalid (a reference to a
    ///   missing entity, a broken tree); this graph is unaffected.
    public func applying(_ changes: [GraphChange]) throws(PIAMError) -> AccessGraph {
        var d = graphData()
        d.apply(changes)
        return try GraphBuilder.build(d)
    }
}

// list_resources, list_subjects, list_actions (DESIGN §3).
//
// Each list first gathers a superset of candidates through the graph's indexes (subtree slices,
// assignments by scope, org grants on the path) and then runs the very same decision as `check`
// on every candidate, so a list can never disagree with `check`. Results are ordered by id
// (byte order) and paged with an opaque cursor that encodes the last id returned: paging stays
// stable across graph revisions and never silently drops or repeats an item that did not change.

extension AccessGraph {
    /// Every resource of `type` that `subject` may do `action` to: graph resources, and users,
    /// orgs or (defined) roles for the built-in types.
    ///
    /// - Parameters:
    ///   - subject: the user, by id or alias.
    ///   - action: the action, e.g. `read`.
    ///   - type: a registered resource type, or `user`, `org` or `role`.
    ///   - cursor: `nil` or `""` for the first page, else a `nextCursor` from the previous page.
    ///   - limit: the page size (at least 1).
    ///   - now: the time the rules are evaluated at.
    /// - Throws: ``PIAMError/Code/badCursor`` for a cursor this engine did not produce.
    public func listResources(subject: String, action: String, type: String, cursor: String? = nil, limit: Int, now: Timestamp) throws(PIAMError) -> Page {
        let after = try Cursor.decode(cursor)
        guard let s = userIndex[subject], subjectState(s, now: now) == .allowed,
              let t = typeIndex[type] else { return Page(items: [], nextCursor: nil) }
        let a = actionID(action)
        // Scopes of effective holdings with a matching permission.
        var scopes: [Int32] = []
        forEachHolding(of: s) { _, role, scope, validUntil in
            if isEffective(subject: s, role: role, scope: scope, validUntil: validUntil, now: now) && roleMatches(role, type: t, action: a) {
                scopes.append(scope)
            }
            return true
        }
        if scopes.isEmpty { return Page(items: [], nextCursor: nil) }
        let intervals = disjointSubtrees(scopes)
        var ids: [String] = []
        var nt = NoTracer()
        func consider(_ res: ResolvedResource, _ id: String) {
            if let after, !after.utf8.lexicographicallyPrecedes(id.utf8) { return }  // at or before the cursor
            if decide(subject: s, action: a, resource: res, now: now, tracer: &nt).allowed { ids.append(id) }
        }
        switch t {
        case builtinUser:
            for (lo, hi) in intervals {
                for pre in Int(lo)..<Int(hi) {
                    let o = orgByPre[pre]
                    for u in usersByOrg[Int(o)] {
                        consider(ResolvedResource(type: t, org: o, owner: u, shared: false, registered: true), userIDs[Int(u)])
                    }
                }
            }
        case builtinOrg:
            for (lo, hi) in intervals {
                for pre in Int(lo)..<Int(hi) {
                    let o = orgByPre[pre]
                    consider(ResolvedResource(type: t, org: o, owner: -1, shared: false, registered: true), orgIDs[Int(o)])
                }
            }
        case builtinRole:
            // Roles are located at the root (pre-order number 0, whatever its slot): only a
            // holding scoped there reaches them.
            if intervals.first?.0 == 0 {
                for r in roleIDs where !r.isEmpty {
                    consider(ResolvedResource(type: t, org: rootOrg, owner: -1, shared: false, registered: true), r)
                }
            }
        default:
            let lists = resByOrg[Int(t)]
            for (lo, hi) in intervals {
                for pre in Int(lo)..<Int(hi) {
                    for r32 in lists[Int(orgByPre[pre])] {
                        let r = Int(r32)
                        consider(ResolvedResource(type: t, org: res[r].org, owner: res[r].owner, shared: res[r].shared, registered: true), resIDs[r])
                    }
                }
            }
            for r32 in sharedHostResources[Int(t)] {
                let r = Int(r32)
                let pre = orgs[Int(res[r].org)].pre
                if intervals.contains(where: { $0.0 <= pre && pre < $0.1 }) { continue }  // seen above
                consider(ResolvedResource(type: t, org: res[r].org, owner: res[r].owner, shared: true, registered: true), resIDs[r])
            }
        }
        return Cursor.page(ids, limit: limit)
    }

    /// Every user allowed to do `action` to `resource` (by user id, never alias).
    /// - Throws: ``PIAMError/Code/badCursor`` for a cursor this engine did not produce.
    public func listSubjects(action: String, resource: ResourceRef, cursor: String? = nil, limit: Int, now: Timestamp) throws(PIAMError) -> Page {
        let after = try Cursor.decode(cursor)
        guard let res = resolve(resource) else { return Page(items: [], nextCursor: nil) }
        let a = actionID(action)
        var matching = [Bool](repeating: false, count: roleIDs.count)
        var any = false
        for r in 0..<roleIDs.count where roleMatches(Int32(r), type: res.type, action: a) {
            matching[r] = true
            any = true
        }
        if !any { return Page(items: [], nextCursor: nil) }

        var seen = Set<Int32>()
        func addUsers(ofOrg o: Int32) {
            for u in usersByOrg[Int(o)] { seen.insert(u) }
        }
        // Holdings whose scope is the location or above it: assignments scoped on the path,
        // and members of orgs on the path that hold a matching org grant.
        var o = res.org
        while o >= 0 {
            for i in assignByScope[Int(o)] where matching[Int(assigns[Int(i)].role)] { seen.insert(assignUser[Int(i)]) }
            if hasMatchingGrant(forMembersOf: o, matching) { addUsers(ofOrg: o) }
            o = orgs[Int(o)].parent
        }
        // A shared host resource is within reach of any holding at all.
        if res.shared && orgs[Int(res.org)].kind == .host {
            for r in 0..<roleIDs.count where matching[r] {
                for i in assignByRole[r] { seen.insert(assignUser[Int(i)]) }
            }
            for g in 0..<grantRole.count where matching[Int(grantRole[g])] {
                let go = grantOrg[g]
                if grantIncludeSub[g] {
                    for pre in subtree(go) { for u in usersByOrg[Int(orgByPre[pre])] { seen.insert(u) } }
                } else {
                    addUsers(ofOrg: go)
                }
            }
        }
        var ids: [String] = []
        var nt = NoTracer()
        for u in seen {
            let id = userIDs[Int(u)]
            if let after, !(after.utf8.lexicographicallyPrecedes(id.utf8)) { continue }
            guard subjectState(u, now: now) == .allowed else { continue }
            if decide(subject: u, action: a, resource: res, now: now, tracer: &nt).allowed { ids.append(id) }
        }
        return Cursor.page(ids, limit: limit)
    }

    /// The actions of the resource type's vocabulary that `subject` may do to `resource`, by name.
    public func listActions(subject: String, resource: ResourceRef, now: Timestamp) -> [String] {
        guard let s = userIndex[subject], subjectState(s, now: now) == .allowed,
              let res = resolve(resource), res.type >= 0 else { return [] }
        var out: [String] = []
        var nt = NoTracer()
        for a in typeVocabulary[Int(res.type)] where decide(subject: s, action: a, resource: res, now: now, tracer: &nt).allowed {
            out.append(actionNames[Int(a)])
        }
        return out
    }

    /// The vocabulary of a resource type: every action any role names for it, plus the
    /// built-in actions for `user`, `org` and `role` (``BuiltinType``), sorted.
    public func vocabulary(ofType type: String) -> [String] {
        guard let t = typeIndex[type] else { return [] }
        return typeVocabulary[Int(t)].map { actionNames[Int($0)] }
    }

    // MARK: Helpers

    /// Whether role `r` has a permission on type `t` for action `a` (or `*`).
    func roleMatches(_ r: Int32, type t: Int32, action a: Int32) -> Bool {
        for p in Int(rolePermStart[Int(r)])..<Int(rolePermStart[Int(r) + 1]) where perms[p].type == t {
            if perms[p].action == -1 || perms[p].action == a { return true }
        }
        return false
    }

    /// Whether a member of org `o` holds, through some org grant, a role in `matching`.
    private func hasMatchingGrant(forMembersOf o: Int32, _ matching: [Bool]) -> Bool {
        (Int(memberGrantStart[Int(o)])..<Int(memberGrantStart[Int(o) + 1])).contains { matching[Int(memberGrants[$0].role)] }
    }

    /// The subtrees of `scopes` as disjoint, sorted pre-order intervals `[lo, hi)`.
    func disjointSubtrees(_ scopes: [Int32]) -> [(Int32, Int32)] {
        var out: [(Int32, Int32)] = []
        for l in Set(scopes.map { orgs[Int($0)].pre }).sorted() {
            if let last = out.last, l < last.1 { continue }  // inside the previous subtree
            out.append((l, orgs[Int(orgByPre[Int(l)])].end))
        }
        return out
    }
}

/// Opaque paging cursors: `c1` followed by the hex of the last id returned.
public enum Cursor {
    /// The cursor that continues after `id`.
    public static func encode(_ id: String) -> String {
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var out: [UInt8] = [0x63, 0x31]  // "c1"
        out.reserveCapacity(2 + id.utf8.count * 2)
        for b in id.utf8 {
            out.append(hex[Int(b >> 4)])
            out.append(hex[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The id a cursor continues after (`nil` for none or an empty one).
    /// - Throws: ``PIAMError/Code/badCursor`` for text that is not a cursor.
    public static func decode(_ cursor: String?) throws(PIAMError) -> String? {
        guard let cursor, !cursor.isEmpty else { return nil }
        let bytes = Array(cursor.utf8)
        guard bytes.count > 2, bytes.count % 2 == 0, bytes[0] == 0x63, bytes[1] == 0x31 else {
            throw PIAMError(.badCursor, "not a cursor this server produced")
        }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x61...0x66: c - 0x61 + 10
            default: nil
            }
        }
        var raw: [UInt8] = []
        raw.reserveCapacity(bytes.count / 2 - 1)
        var i = 2
        while i < bytes.count {
            guard let hi = nibble(bytes[i]), let lo = nibble(bytes[i + 1]) else {
                throw PIAMError(.badCursor, "not a cursor this server produced")
            }
            raw.append(hi << 4 | lo)
            i += 2
        }
        guard let s = String(validating: raw, as: UTF8.self) else {
            throw PIAMError(.badCursor, "not a cursor this server produced")
        }
        return s
    }

    /// Sorts `ids` (all after the cursor) by bytes and cuts the first page.
    static func page(_ ids: [String], limit: Int) -> Page {
        let limit = max(1, limit)
        let byBytes: (String, String) -> Bool = { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        let first: [String]
        if ids.count > limit * 4 {
            first = smallest(limit + 1, of: ids, by: byBytes)
        } else {
            first = ids.sorted(by: byBytes)
        }
        if first.count > limit {
            let items = Array(first.prefix(limit))
            return Page(items: items, nextCursor: encode(items[limit - 1]))
        }
        return Page(items: first, nextCursor: nil)
    }

    /// The `k` smallest elements, sorted, in O(n log k) (a bounded max-heap).
    static func smallest(_ k: Int, of xs: [String], by less: (String, String) -> Bool) -> [String] {
        var heap: [String] = []
        heap.reserveCapacity(k)
        func siftUp(_ i0: Int) {
            var i = i0
            while i > 0 {
                let p = (i - 1) / 2
                if less(heap[p], heap[i]) { heap.swapAt(p, i); i = p } else { return }
            }
        }
        func siftDown(_ i0: Int) {
            var i = i0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count && less(heap[m], heap[l]) { m = l }
                if r < heap.count && less(heap[m], heap[r]) { m = r }
                if m == i { return }
                heap.swapAt(i, m)
                i = m
            }
        }
        for x in xs {
            if heap.count < k {
                heap.append(x)
                siftUp(heap.count - 1)
            } else if less(x, heap[0]) {
                heap[0] = x
                siftDown(0)
            }
        }
        return heap.sorted(by: less)
    }
}

@testable import PIAMEngine
import Testing

/// The per-key lists of assignments (by scope org, by role), kept in groups of keys: adds,
/// removals and new keys across group boundaries agree with a plain dictionary of sets, and a
/// copy changed afterwards (what `AccessGraph.applying` does) leaves the original as it was.
@Suite struct KeyedListsTests {
    func contents(_ l: KeyedLists) -> [[Int32]] {
        (0..<l.keyCount).map { Array(l[$0]).sorted() }
    }

    @Test("adds, removals and new keys over several groups agree with a reference; copies stay independent")
    func agreesWithAReference() {
        var rng = SystemRandomNumberGenerator()
        let keys = 230  // several groups of 64, the last one partial; new keys cross into the next
        let items = 5_000
        let keyOf = (0..<items).map { _ in Int32.random(in: 0..<Int32(keys), using: &rng) }
        var lists = KeyedLists(keys: keyOf, count: keys)
        var model: [[Int32]] = Array(repeating: [], count: keys)
        var itemKey: [Int32: Int32] = [:]
        for (i, k) in keyOf.enumerated() {
            model[Int(k)].append(Int32(i))
            itemKey[Int32(i)] = k
        }
        #expect(lists.keyCount == keys)
        #expect(contents(lists) == model.map { $0.sorted() })

        var next = Int32(items)
        for step in 0..<2_000 {
            let check = step % 10 == 0
            let before = lists, beforeContents = check ? contents(lists) : []
            switch step % 4 {
            case 0, 1:  // remove a present item
                guard let (item, k) = itemKey.randomElement(using: &rng) else { continue }
                lists.remove(item, key: k)
                model[Int(k)].removeAll { $0 == item }
                itemKey[item] = nil
            case 2:  // add a new item under a random key
                let k = Int32.random(in: 0..<Int32(lists.keyCount), using: &rng)
                lists.add(next, key: k)
                model[Int(k)].append(next)
                itemKey[next] = k
                next += 1
            default:  // now and then a new key (crossing into a new group), with an item
                if step % 40 == 3 {
                    lists.addKey()
                    model.append([])
                }
                let k = Int32(lists.keyCount - 1)
                lists.add(next, key: k)
                model[Int(k)].append(next)
                itemKey[next] = k
                next += 1
            }
            if check { #expect(contents(before) == beforeContents, "step \(step): the copy taken before the change moved") }
            if step % 50 == 0 || step == 1_999 {
                #expect(contents(lists) == model.map { $0.sorted() }, "step \(step)")
            }
        }
        #expect(lists.keyCount > 256)
        #expect(contents(lists) == model.map { $0.sorted() })
    }

    @Test("keys added one by one from none")
    func fromEmpty() {
        var lists = KeyedLists()
        for k in 0..<130 {
            lists.addKey()
            lists.add(Int32(k), key: Int32(k))
        }
        lists.remove(64, key: 64)
        #expect(lists.keyCount == 130)
        #expect(lists[64].isEmpty && Array(lists[65]) == [65] && Array(lists[129]) == [129] && Array(lists[0]) == [0])
    }
}

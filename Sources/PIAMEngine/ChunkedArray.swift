/// An array stored as fixed-size chunks, each its own copy-on-write buffer: a copy of the array
/// shares every chunk, and changing one element afterwards copies one chunk (4,096 elements)
/// and the chunk directory, not the whole array.
///
/// This is what lets ``AccessGraph/applying(_:)`` produce a new graph that shares all but a few
/// chunks with the old one: the cost of a change tracks its size, not the graph's, and the old
/// graph stays intact for the queries still reading it.
struct ChunkedArray<Element: Sendable>: Sendable, RandomAccessCollection {
    @usableFromInline static var shift: Int { 12 }
    @usableFromInline static var chunkSize: Int { 1 << shift }
    @usableFromInline static var chunkMask: Int { chunkSize - 1 }

    @usableFromInline var chunks: [[Element]] = []
    @usableFromInline private(set) var count = 0

    init() {}

    /// Chunks hold exactly their elements (a per-org list of three users takes three slots,
    /// not a reserved chunk); appends grow the last chunk as an array grows.
    init<S: Sequence>(_ elements: S) where S.Element == Element {
        let all = ContiguousArray(elements)
        count = all.count
        var i = 0
        while i < all.count {
            let j = Swift.min(i + Self.chunkSize, all.count)
            chunks.append(Array(all[i..<j]))
            i = j
        }
    }

    var startIndex: Int { 0 }
    var endIndex: Int { count }

    @inline(__always)
    subscript(i: Int) -> Element {
        get { chunks[i &>> Self.shift][i & Self.chunkMask] }
        set { chunks[i &>> Self.shift][i & Self.chunkMask] = newValue }
    }

    mutating func append(_ e: Element) {
        if count & Self.chunkMask == 0 { chunks.append([]) }
        chunks[chunks.count - 1].append(e)
        count += 1
    }

    mutating func removeLast() {
        precondition(count > 0)
        chunks[chunks.count - 1].removeLast()
        if chunks[chunks.count - 1].isEmpty { chunks.removeLast() }
        count -= 1
    }

    /// Removes one element equal to `value` by moving the last element into its place (order
    /// is not kept). Returns whether one was found.
    @discardableResult
    mutating func swapRemove(_ value: Element) -> Bool where Element: Equatable {
        guard let i = firstIndex(of: value) else { return false }
        let last = count - 1
        if i != last { self[i] = self[last] }
        removeLast()
        return true
    }

    func firstIndex(of value: Element) -> Int? where Element: Equatable {
        for (c, chunk) in chunks.enumerated() {
            if let j = chunk.firstIndex(of: value) { return c << Self.shift + j }
        }
        return nil
    }
}

/// Item indices grouped by key (assignments by scope org, by role), each item's position in its
/// list kept beside it, so adding or removing an item costs O(1) however long its list is.
struct KeyedLists: Sendable {
    private(set) var lists: [ChunkedArray<Int32>] = []
    /// Per item: its position in its key's list, -1 when it is in none.
    private var position = ChunkedArray<Int32>()

    init() {}

    /// Lists from a key per item (items `0 ..< keys.count`), grouped as the builder groups.
    init(keys: [Int32], count: Int) {
        lists = GraphBuilder.grouped(keys: keys, buckets: count)
        var pos = [Int32](repeating: -1, count: keys.count)
        for list in lists {
            for (i, item) in list.enumerated() { pos[Int(item)] = Int32(i) }
        }
        position = ChunkedArray(pos)
    }

    @inline(__always) subscript(key: Int) -> ChunkedArray<Int32> { lists[key] }

    mutating func addKey() { lists.append(ChunkedArray()) }

    mutating func add(_ item: Int32, key: Int32) {
        while position.count <= Int(item) { position.append(-1) }
        position[Int(item)] = Int32(lists[Int(key)].count)
        lists[Int(key)].append(item)
    }

    mutating func remove(_ item: Int32, key: Int32) {
        let p = Int(position[Int(item)])
        let k = Int(key)
        let last = lists[k][lists[k].count - 1]
        lists[k][p] = last
        position[Int(last)] = Int32(p)
        lists[k].removeLast()
        position[Int(item)] = -1
    }
}
